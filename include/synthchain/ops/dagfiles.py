"""One thin DAG file per spec in the Airflow dags folder, kept in step with the spec folder.

Airflow's dag-processor marks every DAG of a file that fails to import as stale: with all specs
in one file, one broken spec took every spec's DAG down. With a file per spec, a broken spec
fails only its own file, and its import error names its YAML file and field.
`synthchain dags sync` writes the missing files and removes those whose spec is gone;
`--check` only reports (CI and the dags folder's own check file use it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

MARKER = "# synthchain: generated DAG file"
PREFIX = "synthchain__"

TEMPLATE = '''{marker} for spec `{stem}` ({stem}.yaml in the spec folder); edit the spec, not this file.
"""Airflow DAGs of spec `{stem}`: its main line and one DAG per candidate line (see plugins/synthchain_dags.py).

One file per spec: a spec that fails validation fails only this file, and the other specs' DAGs stay active.
"""
from synthchain_dags import spec_dags

globals().update(spec_dags("{stem}"))
'''


@dataclass
class SyncPlan:
    write: list[Path] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)

    @property
    def in_step(self) -> bool:
        return not (self.write or self.remove)


def dag_file_text(stem: str) -> str:
    return TEMPLATE.format(marker=MARKER, stem=stem)


def plan_sync(specs_dir: str | Path, dags_dir: str | Path) -> SyncPlan:
    """Which DAG files to write (missing or different) and which to remove (generated, spec gone)."""
    specs_dir, dags_dir = Path(specs_dir), Path(dags_dir)
    stems = {p.stem for p in specs_dir.glob("*.yaml")}
    plan = SyncPlan()
    for stem in sorted(stems):
        target = dags_dir / f"{PREFIX}{stem}.py"
        if not target.exists():
            plan.write.append(target)
        elif target.read_text().startswith(MARKER) and target.read_text() != dag_file_text(stem):
            plan.write.append(target)  # written by an older synthchain: refresh; a hand-written file stays
    for existing in sorted(dags_dir.glob(f"{PREFIX}*.py")):
        generated = existing.read_text().startswith(MARKER)
        if generated and existing.stem[len(PREFIX):] not in stems:
            plan.remove.append(existing)
    return plan


def default_dags_dir() -> Path:
    """$AIRFLOW__CORE__DAGS_FOLDER, else the project's dags/ beside include/."""
    import os

    from ..specs import spec_dir

    return Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or spec_dir().parent.parent / "dags")


def sync(specs_dir: str | Path, dags_dir: str | Path) -> SyncPlan:
    """Bring the dags folder in step with the spec folder; hand-written files are never touched."""
    plan = plan_sync(specs_dir, dags_dir)
    Path(dags_dir).mkdir(parents=True, exist_ok=True)
    for target in plan.write:
        stem = target.stem[len(PREFIX):]
        target.write_text(dag_file_text(stem))
    for stale in plan.remove:
        stale.unlink()
    return plan
