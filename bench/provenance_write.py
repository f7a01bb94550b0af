"""Provenance bulk write: synthchain's store vs a raw psycopg 3 COPY of the same rows.

Both write the same 1M lineage rows into the same table (with its primary key and
index) on the local PostgreSQL server; each side runs twice and keeps its best.
Run: .venv/bin/python bench/provenance_write.py [--rows N]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import psycopg

from synthchain.provenance import ProvenanceStore
from synthchain.provenance.store import LINEAGE_COLUMNS

PG = os.environ.get("SYNTHCHAIN_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DB = "synthchain_bench"


def ensure_db() -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB}"')
    return f"{PG}/{DB}"


def make_rows(n: int, version_id: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    synthetic = rng.random(n) < 0.4
    gen = np.where(rng.random(n) < 0.5, "gaussian_copula", "cart")
    return pd.DataFrame({
        "dataset_version_id": version_id,
        "row_id": [f"cart@1.0/2026-11-21/s{i // 5000}/{i}" for i in range(n)],
        "origin": np.where(synthetic, "synthetic", "real"),
        "generator_name": pd.Series(np.where(synthetic, gen, None), dtype=object),
        "generator_version": pd.Series(np.where(synthetic, "1.0", None), dtype=object),
        "generation": pd.Series(np.where(synthetic, 0, -1), dtype="Int64").where(synthetic),
        "created_in_version_id": pd.Series(np.where(synthetic, version_id, 0), dtype="Int64").where(synthetic),
        "content_hash": [f"{h:016x}" for h in rng.integers(0, 2**63, n)],
    })[LINEAGE_COLUMNS]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    url = ensure_db()
    store = ProvenanceStore(url)
    store.drop_all()
    store.migrate()
    from datetime import date
    run = store.start_run("bench", "bench", date(2026, 11, 21), "bench", "x")
    version = store.open_version("bench", date(2026, 11, 21), "bench", run, config_hash="bench")
    frame = make_rows(args.rows, version)
    tuples = list(frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None))

    def truncate():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE row_lineage")
            conn.execute("VACUUM ANALYZE row_lineage")

    def ours() -> float:
        truncate()
        start = time.perf_counter()
        written = store.write_lineage_rows(frame)
        elapsed = time.perf_counter() - start
        assert written == args.rows
        return elapsed

    def raw_copy() -> float:
        truncate()
        start = time.perf_counter()
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY row_lineage ({', '.join(LINEAGE_COLUMNS)}) FROM STDIN") as copy:
                for row in tuples:
                    copy.write_row(row)
        return time.perf_counter() - start

    timings = {"synthchain": [], "psycopg3_copy": []}
    for _ in range(args.repeats):  # interleaved so drift hits both sides alike
        timings["synthchain"].append(ours())
        timings["psycopg3_copy"].append(raw_copy())
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM row_lineage").fetchone()[0] == args.rows
    best = {k: min(v) for k, v in timings.items()}
    ours_rps = args.rows / best["synthchain"]
    copy_rps = args.rows / best["psycopg3_copy"]
    for name, values in timings.items():
        print(f"{name:>15}: " + ", ".join(f"{v:.2f}s" for v in values))
    print(f"BENCH provenance ratio={ours_rps / copy_rps:.2f} rows_per_s={ours_rps:.0f} "
          f"copy_rows_per_s={copy_rps:.0f} rows={args.rows}")


if __name__ == "__main__":
    main()
