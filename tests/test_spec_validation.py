"""Spec and source validation matches what runs: each refusal names the file and the field, key or columns.

Real files only (YAML, CSV, Parquet under tmp_path); nothing here runs a pipeline.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import base_spec
from pydantic import ValidationError
from synthchain.sources import SourceError, _read_bytes_as_frame, read_source
from synthchain.specs import AIRFLOW_PRESETS, DatasetSpec, SourceSpec, SpecError, discover_specs, load_spec
from synthchain.tabular.profile import load_real_data

SYNTHCHAIN = Path(sys.executable).with_name("synthchain")  # .venv/bin/synthchain beside .venv/bin/python


def write_yaml(tmp_path: Path, text: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert len(message) < 1000, "an error names the problem, it does not dump the spec"
    return message


def text_spec(**overrides) -> dict:
    spec = {"name": "reviews", "modality": "text", "source": "reviews.csv", "text_column": "review",
            "label_column": "score", "target_rows": 10, "generators": [{"name": "kn_ngram", "version": "1.0"}],
            "text": {"length_quantiles": [0, 1],
                     "judge": {"connection": "llm", "model": "judge-m", "rubric": "a specific, plausible review",
                               "scale": [1, 10], "threshold": 6}}}
    spec.update(overrides)
    return spec


# --- schedule -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("schedule", [None, *AIRFLOW_PRESETS, "0 2 * * *", "*/15 8-18 * * MON-FRI", "0 0 1 */3 *"])
def test_schedules_airflow_accepts_load(spec_file, schedule):
    assert load_spec(spec_file(base_spec(schedule=schedule))).schedule == schedule


@pytest.mark.parametrize("schedule, why", [
    ("every night", "'every night' is not a cron expression or an Airflow preset (@once, @continuous, @hourly, @daily"),
    ("61 2 * * *", "'61 2 * * *' is not a cron expression or an Airflow preset"),
    ("0 2 * *", "'0 2 * *' is not a cron expression"),
    ("@nightly", "'@nightly' is not a cron expression or an Airflow preset"),
    ("0 0 2 * * *", "'0 0 2 * * *' has 6 fields: Airflow cron schedules have 5"),
    ("0 0 2 * * * 2030", "'0 0 2 * * * 2030' has 7 fields"),
])
def test_bad_schedule_names_file_and_field(spec_file, schedule, why):
    message = refusal(spec_file(base_spec(schedule=schedule)))
    assert f"field 'schedule': {why}" in message


def test_schedule_must_be_a_string(spec_file):
    message = refusal(spec_file(base_spec(schedule=2)))
    assert "field 'schedule': Input should be a valid string, got the number 2" in message


# --- strict types -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, field, got", [
    ({"target_rows": True}, "target_rows", "got the boolean true"),
    ({"target_rows": "100"}, "target_rows", "got the string '100'"),
    ({"target_rows": 100.0}, "target_rows", "got the number 100.0"),
    ({"target_rows": 100.5}, "target_rows", "got the number 100.5"),
    ({"seed": False}, "seed", "got the boolean false"),
    ({"holdout": {"fraction": "0.2"}}, "holdout.fraction", "got the string '0.2'"),
    ({"blend": {"real_fraction": True}}, "blend.real_fraction", "got the boolean true"),
    ({"gates": {"min_real_rows": 1000.0}}, "gates.min_real_rows", "got the number 1000.0"),
    ({"generators": [{"name": "cart", "version": "1.0", "weight": True}]}, "generators.0.weight", "boolean true"),
    ({"collapse": {"limits": {"tstr": "0.1"}}}, "collapse.limits.tstr", "got the string '0.1'"),
    ({"generations": {"include_real": 1}}, "generations.include_real", "got the number 1"),
    ({"text": {"length_quantiles": [True, 0.9]}}, "text.length_quantiles.0", "got the boolean true"),
])
def test_no_type_coercion(spec_file, change, field, got):
    message = refusal(spec_file(base_spec(**change)))
    assert f"field '{field}': Input should be a valid" in message and got in message


def test_floats_still_take_whole_numbers_and_lists_make_tuples(spec_file, tmp_path):
    spec = load_spec(spec_file(base_spec(blend={"real_fraction": 1}, holdout={"fraction": 0.2, "seed": 7},
                                         generators=[{"name": "cart", "version": "1.0", "weight": 2}])))
    assert spec.blend.real_fraction == 1.0 and isinstance(spec.blend.real_fraction, float)
    assert spec.generators[0].weight == 2.0
    text = load_spec(write_yaml(tmp_path, yaml.safe_dump(text_spec()), "reviews.yaml"))
    assert text.text.length_quantiles == (0.0, 1.0) and text.text.judge.scale == (1, 10)
    message = refusal(write_yaml(tmp_path, yaml.safe_dump(text_spec(text={"judge": {
        "connection": "llm", "model": "m", "rubric": "a specific, plausible review", "scale": [1.0, 5]}})), "bad.yaml"))
    assert "field 'text.judge.scale.0': Input should be a valid integer" in message


def test_shipped_specs_and_run_time_overrides_still_work(tmp_path):
    for path in discover_specs():
        spec = load_spec(path)
        conf = json.loads('{"target_rows": 500, "real_fraction": 1, "seed": 3, "blend_mode": "replace"}')
        changed = spec.with_overrides(conf)  # JSON from Airflow conf: an int where the field is a float
        assert changed.blend.real_fraction == 1.0 and changed.target_rows == 500, path
        assert spec.with_overrides({"real_fraction": 0.5, "target_rows": None}).blend.real_fraction == 0.5
        assert len(spec.lines()) == 1 + len(spec.candidates)
    text = load_spec(write_yaml(tmp_path, yaml.safe_dump(text_spec()), "reviews.yaml"))
    again = text.with_overrides({"target_rows": 20, "real_fraction": 0.25})  # a dump holds tuples: re-validates
    assert again.text.judge.scale == (1, 10) and again.text.length_quantiles == (0.0, 1.0)
    with pytest.raises(SpecError, match="run parameter 'target_rows' = True refused: must be a whole number"):
        text.with_overrides({"target_rows": True})
    with pytest.raises(SpecError, match="run parameter 'real_fraction' = '0.5' refused: must be a number"):
        text.with_overrides({"real_fraction": "0.5"})


def test_python_construction_is_strict_too():
    assert DatasetSpec.model_validate(base_spec()).target_rows == 1600
    with pytest.raises(ValidationError, match="target_rows"):
        DatasetSpec.model_validate(base_spec(target_rows=True))


# --- the YAML itself ----------------------------------------------------------------------------------------------

def test_source_construction_is_strict_and_names_one_place():
    assert SourceSpec(connection="warehouse", table="risk.loans").label == "connection 'warehouse' table 'risk.loans'"
    assert SourceSpec(uri="postgresql://u:pw@db/x", table="t").label == "postgresql://u:***@db/x"
    for bad in ({"connection": 5, "table": "t"}, {"connection": "a b", "table": "t"}, {},
                {"uri": "x.csv", "connection": "c", "table": "t"}, {"connection": "c", "table": ""}):
        with pytest.raises(ValidationError):
            SourceSpec.model_validate(bad)
    assert "connection" not in SourceSpec(uri="x.csv").model_dump()  # unset: not part of the config hash


def test_duplicate_top_level_key_names_key_and_line(tmp_path):
    text = yaml.safe_dump(base_spec(), sort_keys=False) + "target_rows: 7\n"  # today the last one would win
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("target_rows:"))
    message = refusal(write_yaml(tmp_path, text, "dup.yaml"))
    assert f"dup.yaml: line {len(lines)}: duplicate key 'target_rows' (first at line {first})" in message


def test_duplicate_nested_keys_are_refused_at_any_depth(tmp_path):
    nested = write_yaml(tmp_path, "name: a\nblend:\n  real_fraction: 0.5\n  mode: replace\n  mode: accumulate\n")
    assert "x.yaml: line 5: duplicate key 'mode' (first at line 4)" in refusal(nested)
    in_list = write_yaml(tmp_path, "name: a\ngenerators:\n  - name: cart\n    version: '1.0'\n    version: '1.1'\n",
                         "list.yaml")
    assert "list.yaml: line 5: duplicate key 'version'" in refusal(in_list)
    flow = write_yaml(tmp_path, "name: a\ngenerators: [{name: cart, version: '1.0', name: copula}]\n", "flow.yaml")
    assert "flow.yaml: line 2: duplicate key 'name'" in refusal(flow)
    as_loaded = write_yaml(tmp_path, "name: a\nparams: {1: x, 01: y}\n", "ints.yaml")  # both load as the key 1
    assert "ints.yaml: line 2: duplicate key '01'" in refusal(as_loaded)


def test_merge_keys_may_override(tmp_path):
    data = base_spec()
    del data["generators"]
    text = yaml.safe_dump(data, sort_keys=False) + (
        "generators:\n"
        "  - &copula {name: gaussian_copula, version: '1.0', weight: 0.5}\n"
        "  - {<<: *copula, name: cart}\n")  # a key after `<<` overrides the merged one: no duplicate
    spec = load_spec(write_yaml(tmp_path, text, "merge.yaml"))
    assert spec.generators_key() == "cart@1.0+gaussian_copula@1.0"
    assert [g.weight for g in spec.generators] == [0.5, 0.5]


def test_alias_bomb_is_refused_quickly(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    previous = "a"
    for name in "bcdefg":  # g expands to 10**7 leaves
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
        previous = name
    path = write_yaml(tmp_path, "\n".join(lines) + "\nname: bomb\n", "bomb.yaml")
    assert path.stat().st_size < 1000
    started = time.perf_counter()
    message = refusal(path)
    assert time.perf_counter() - started < 1.0
    assert "bomb.yaml: aliases expand to more than 100,000 YAML nodes" in message
    assert "lol" not in message


def test_recursive_alias_is_refused(tmp_path):
    assert "r.yaml: line 1: an alias refers to a node that contains it" in refusal(
        write_yaml(tmp_path, "name: &n [1, *n]\n", "r.yaml"))


def test_unreadable_spec_paths_name_the_path(tmp_path):
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: a\ndescription: caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    assert "latin1.yaml: not UTF-8 text (byte 0xe9 on line 2)" in refusal(latin1)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert "folder.yaml: is a directory, not a spec file" in refusal(folder)
    assert "absent.yaml: spec file not found" in refusal(tmp_path / "absent.yaml")


def test_yaml_pyyaml_cannot_construct_names_the_file(tmp_path):
    bad_date = write_yaml(tmp_path, "name: a\ndescription: 2024-13-01\n", "date.yaml")  # a timestamp to PyYAML
    assert "date.yaml: not valid YAML: a value cannot be read: month must be in 1..12" in refusal(bad_date)
    deep = write_yaml(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")
    assert "deep.yaml: YAML nested too deeply" in refusal(deep)


# --- CSV and Parquet sources --------------------------------------------------------------------------------------

LOANS_HEADER = "id,term,funded_amnt,grade,int_rate,Class,funded_amnt"


def test_csv_duplicate_header_is_refused_with_file_and_columns(tmp_path):
    path = tmp_path / "loans.csv"
    path.write_text(f"{LOANS_HEADER}\n1,36,1000,A,0.1,good,2000\n")
    with pytest.raises(SourceError) as err:
        read_source(SourceSpec(uri=str(path)))
    assert f"{path}: duplicate column header(s) ['funded_amnt'] (columns 3 and 7)" in str(err.value)
    spec = DatasetSpec.model_validate(base_spec(source=str(path), drop_columns=[]))
    with pytest.raises(SourceError, match=r"loans.csv: duplicate column header\(s\) \['funded_amnt'\]"):
        load_real_data(spec)


def test_csv_header_read_as_pandas_reads_it(tmp_path):
    several = tmp_path / "several.csv"  # BOM, blank lines, quotes: the header pandas would use
    several.write_text('\ufeff\n\n"a",b,"a",c,b\n1,2,3,4,5\n', encoding="utf-8")
    with pytest.raises(SourceError, match=r"several.csv: duplicate column header\(s\) \['a', 'b'\] "
                                          r"\('a': columns 1 and 3; 'b': columns 2 and 5\)"):
        read_source(SourceSpec(uri=str(several)))
    gz = tmp_path / "loans.csv.gz"
    gz.write_bytes(gzip.compress(f"{LOANS_HEADER}\n1,36,1000,A,0.1,good,2000\n".encode()))
    with pytest.raises(SourceError, match=r"loans.csv.gz: duplicate column header\(s\) \['funded_amnt'\]"):
        read_source(SourceSpec(uri=str(gz)))
    fine = tmp_path / "fine.csv"  # distinct names, and empty headers pandas names apart, still read
    fine.write_text("a,a.1,,\n1,2,3,4\n")
    assert list(read_source(SourceSpec(uri=str(fine))).columns) == ["a", "a.1", "Unnamed: 2", "Unnamed: 3"]


def test_s3_bytes_with_duplicate_header_name_the_object():
    data = f"{LOANS_HEADER}\n1,36,1000,A,0.1,good,2000\n".encode()
    with pytest.raises(SourceError, match=r"s3://real/loans.csv: duplicate column header\(s\) \['funded_amnt'\] "
                                          r"\(columns 3 and 7\)"):
        _read_bytes_as_frame(data, "/loans.csv", "source s3://real/loans.csv")


def test_parquet_duplicate_column_names_are_refused(tmp_path):
    path = tmp_path / "loans.parquet"
    table = pa.table([pa.array([1]), pa.array([1000]), pa.array(["good"]), pa.array([2000])],
                     names=["id", "funded_amnt", "Class", "funded_amnt"])
    pq.write_table(table, path)
    with pytest.raises(SourceError, match=r"loans.parquet: duplicate column name\(s\) \['funded_amnt'\] "
                                          r"\(columns 2 and 4\)"):
        read_source(SourceSpec(uri=str(path)))
    pd.DataFrame({"id": [1], "Class": ["good"]}).to_parquet(tmp_path / "ok.parquet")
    assert list(read_source(SourceSpec(uri=str(tmp_path / "ok.parquet"))).columns) == ["id", "Class"]


# --- the command line ---------------------------------------------------------------------------------------------

def test_validate_spec_cli_exits_2_with_a_message_not_a_traceback(tmp_path):
    good = yaml.safe_dump(base_spec(), sort_keys=False)
    cases = {
        "schedule.yaml": (yaml.safe_dump(base_spec(schedule="every night")),
                          "schedule.yaml: field 'schedule': 'every night' is not a cron expression"),
        "dupkey.yaml": (good + "target_rows: 9\n",
                        f"dupkey.yaml: line {len(good.splitlines()) + 1}: duplicate key 'target_rows'"),
        "boolrows.yaml": (yaml.safe_dump(base_spec(target_rows=True)),
                          "boolrows.yaml: field 'target_rows': Input should be a valid integer, got the boolean true"),
    }
    running = {}
    for name, (text, _) in cases.items():  # side by side: each process spends its time importing
        path = write_yaml(tmp_path, text, name)
        running[name] = subprocess.Popen([str(SYNTHCHAIN), "validate-spec", str(path)], stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True)
    for name, (_, expected) in cases.items():
        stdout, stderr = running[name].communicate(timeout=120)
        assert running[name].returncode == 2, (name, stdout, stderr)
        assert expected in stderr, (name, stderr)
        assert "Traceback" not in stdout + stderr
