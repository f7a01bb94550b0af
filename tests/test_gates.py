from pathlib import Path

from synthchain.gates import Batch, metrics_frame, run_gate, threshold
from synthchain.tabular.expectations import as_profile_types, profile_expectations


def test_real_data_passes_its_own_profile(split, tmp_path):
    train, _, profile = split
    result = run_gate("generation", [Batch("rows", as_profile_types(train, profile),
                                           profile_expectations(profile, strict=True))], workdir=tmp_path)
    assert result.success, result.message()
    assert result.evaluated == len(profile_expectations(profile, strict=True))
    assert Path(result.docs_dir, "index.html").exists()


def test_failures_name_hop_expectation_and_observation(split, tmp_path):
    train, _, profile = split
    bad = train.copy()
    bad.loc[: len(bad) // 10, "funded_amnt"] = 10**7
    bad["Class"] = "good"
    result = run_gate("filtering", [
        Batch("kept", as_profile_types(bad, profile), profile_expectations(profile, strict=False)),
        Batch("metrics", metrics_frame({"kept_fraction": 0.2, "note": "ignored"}), [threshold("kept_fraction", 0.4)]),
    ], workdir=tmp_path)
    assert not result.success
    text = result.message()
    assert "gate 'filtering' failed 3 of" in text
    assert "[filtering/kept] expect_column_values_to_be_between(column='funded_amnt'" in text
    assert "unexpected (" in text and "10000000" in text
    assert "expect_column_distinct_values_to_contain_set(column='Class'" in text and "missing ['bad']" in text
    assert "[filtering/metrics] expect_column_values_to_be_between(column='kept_fraction', min_value=0.4): observed 0.2" in text
    by_column = {f["column"]: f for f in result.failures}
    assert by_column["kept_fraction"]["observed"] == 0.2


def test_metrics_frame_keeps_scalars_only():
    frame = metrics_frame({"a": 1, "b": 0.5, "c": "text", "d": {"x": 1}, "e": None})
    assert list(frame.columns) == ["a", "b"]
