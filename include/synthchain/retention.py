"""What a run leaves in storage and when it goes: the end of a run (here) and `synthchain gc` (ops/gc.py)
share these rules.

- A published attempt's staging tree goes at publish (SYNTHCHAIN_KEEP_STAGING keeps it, minus real rows).
- Copies of real rows (train, holdout, fit data, blend) go when the run ends, whatever its outcome,
  unless SYNTHCHAIN_KEEP_REAL_COPIES; the published blend is the one copy meant to last.
- A failed, abandoned or quarantined attempt's staging stays SYNTHCHAIN_FAILED_DAYS for inspection,
  its quarantined batches SYNTHCHAIN_QUARANTINE_DAYS.
- A published copy replaced by a re-run stays readable SYNTHCHAIN_SUPERSEDED_DAYS (default 0: gone at once).
- Under published/ only what the database calls published (or a swap in progress) may stay: anything
  else is what a run killed inside publish left, and goes.
- Runs whose lease ran out (see provenance/lifecycle.py) are marked abandoned first.
"""
from __future__ import annotations

from .settings import Retention

# Files of an attempt, relative to its staging or quarantine prefix, that hold real rows.
REAL_COPIES = ("profiling/real_train.parquet", "profiling/holdout.parquet", "profiling/fit_data.parquet",
               "profiling/slices", "blending/blend.parquet")  # slices/: each targeted slice's real rows


def drop_real_copies(storage, store, attempt: dict | None) -> int:
    """Remove an attempt's copies of real rows (unless configured to keep them); returns files removed."""
    if attempt is None or Retention.from_env().keep_real_copies:
        return 0
    removed = sum(storage.delete_prefix(f"{root}/{rel}")
                  for root in (attempt["staging_prefix"], attempt["quarantine_prefix"]) if root
                  for rel in REAL_COPIES)
    store.mark_cleaned(attempt["id"], "real_copies")
    return removed
