"""Runs that start side by side register the same generator version once, on real PostgreSQL.

The race (seen in a CI run: two first runs of a backfill both found no row and both inserted, and the loser
stopped with the unique key's IntegrityError) is forced here: the store's first look for the row is made to
miss a row another run has just written, as it would between the two runs' SELECT and INSERT.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import func, select

from synthchain.provenance.models import GeneratorVersion


class _MissesItsFirstLook:
    """A connection whose first SELECT sees no row: it ran before the other run's INSERT committed."""

    def __init__(self, conn):
        self._conn, self.missed = conn, False

    def scalar(self, *args, **kwargs):
        if not self.missed:
            self.missed = True
            return None
        return self._conn.scalar(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_a_generator_registered_by_another_run_meanwhile_is_read_not_refused(store, monkeypatch):
    theirs = store.register_generator("cart", "9.9", "tree", {"a": 1}, "h-race")  # the other run won
    real_begin, wrapped = store.engine.begin, []

    @contextmanager
    def begin():
        with real_begin() as conn:
            if not wrapped:
                wrapped.append(_MissesItsFirstLook(conn))
                yield wrapped[0]
            else:
                yield conn

    monkeypatch.setattr(store.engine, "begin", begin)
    assert store.register_generator("cart", "9.9", "tree", {"a": 1}, "h-race") == theirs
    assert wrapped[0].missed  # the race happened: the INSERT met the unique key, and the row was read instead
    with real_begin() as conn:
        assert conn.scalar(select(func.count()).select_from(GeneratorVersion).where(
            GeneratorVersion.params_hash == "h-race")) == 1


def test_many_runs_registering_at_once_share_one_row(store):
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: store.register_generator("copula", "7.0", "copula", {}, "h-many"), range(32)))
    assert len(set(ids)) == 1
