"""Provenance: PostgreSQL (or embedded SQLite) record of generators, runs, versions and rows.

Core: imports no modality package; migrations (Alembic) live in `migrations/`."""
from .store import ProvenanceStore, default_db_url

__all__ = ["ProvenanceStore", "default_db_url"]
