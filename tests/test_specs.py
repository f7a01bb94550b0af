import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import base_spec, environment
from synthchain.catalog import CURRENT_VERSIONS, builtin_versions
from synthchain.ops.cli import main
from synthchain.specs import DEFAULT_TARGET_ROWS, SpecError, discover_specs, load_spec


def test_shipped_specs_validate():
    paths = discover_specs()
    assert any(p.name == "lending_club.yaml" for p in paths)
    for path in paths:
        spec = load_spec(path)
        assert spec.generators and spec.target_rows > 0


def test_valid_spec_and_defaults(spec_file):
    spec = load_spec(spec_file(base_spec()))
    assert spec.blend.mode == "accumulate"
    assert spec.schedule == "0 2 * * *"
    assert spec.generator_shares() == {"gaussian_copula": 0.5, "cart": 0.5}
    assert spec.generators_key() == "cart@1.0+gaussian_copula@1.0"


@pytest.mark.parametrize("change, field", [
    ({"task": "ranking"}, "task"),
    ({"generators": [{"name": "cart", "version": "1.0", "weight": -1}]}, "generators.0.weight"),
    ({"holdout": {"fraction": 1.5}}, "holdout.fraction"),
    ({"blend": {"real_fraction": 0}}, "blend.real_fraction"),
    ({"name": "Bad Name"}, "name"),
    ({"unknown_field": 1}, "unknown_field"),
    ({"target_rows": 0}, "target_rows"),
])
def test_bad_spec_names_file_and_field(spec_file, change, field):
    path = spec_file(base_spec(**change))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert f"field '{field}'" in str(err.value)


def test_missing_field_and_duplicate_generators(spec_file):
    data = base_spec()
    del data["target"]
    with pytest.raises(SpecError, match="field 'target': Field required"):
        load_spec(spec_file(data))
    dup = base_spec(generators=[{"name": "cart", "version": "1.0"}, {"name": "cart", "version": "1.1"}])
    with pytest.raises(SpecError, match="generator listed twice: cart"):
        load_spec(spec_file(dup))


def test_not_yaml_and_not_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpecError, match="bad.yaml: not valid YAML"):
        load_spec(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(SpecError, match="must be a YAML mapping"):
        load_spec(bad)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "absent.yaml")


def test_relative_source_resolves_against_spec_dir(spec_file, tmp_path):
    spec = load_spec(spec_file(base_spec(source="data/real.csv")))
    assert spec.source.uri == str((tmp_path / "data" / "real.csv").resolve())


def test_sql_source_needs_table(spec_file):
    with pytest.raises(SpecError, match="needs 'table'"):
        load_spec(spec_file(base_spec(source={"connection": "warehouse"})))
    with pytest.raises(SpecError, match="needs 'table'"):  # an allowed database URL as well
        load_spec(spec_file(base_spec(source={"uri": "postgresql://x@localhost/db"})))
    with environment(SYNTHCHAIN_ALLOWED_SQL="postgresql://x@localhost/db"):
        spec = load_spec(spec_file(base_spec(source={"uri": "postgresql://x@localhost/db", "table": "loans"})))
    assert spec.source.table == "loans"
    with pytest.raises(SpecError, match="field 'source.uri': a database URL in a spec is refused"):
        load_spec(spec_file(base_spec(source={"uri": "postgresql://x@localhost/db", "table": "loans"})))


# --- a minimal spec: name, source, target and task (tabular) or text_column (text) -------------------------------

def minimal_csv(folder: Path, rows: int = 500, seed: int = 3) -> str:
    """A small classification table: two numeric features, a segment, a label that depends on all three."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    segment = rng.choice(["a", "b", "c"], size=rows)
    score = x1 + 0.5 * x2 + np.select([segment == "a", segment == "b"], [0.5, -0.5], 0.0) + rng.normal(0, 0.5, rows)
    pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "segment": segment,
                  "label": np.where(score > 0, "yes", "no")}).to_csv(folder / "real.csv", index=False)
    return "real.csv"


MINIMAL = {"name": "minimal", "source": "real.csv", "target": "label", "task": "classification"}


def test_minimal_tabular_spec_gets_the_default_generators(spec_file, tmp_path):
    minimal_csv(tmp_path)
    spec = load_spec(spec_file(MINIMAL))
    assert [(g.name, g.version, g.weight) for g in spec.generators] == [
        ("gaussian_copula", CURRENT_VERSIONS["gaussian_copula"], 1.0), ("cart", CURRENT_VERSIONS["cart"], 1.0)]
    assert spec.target_rows == DEFAULT_TARGET_ROWS == 1000
    # the defaults are real entries: the same configuration written out is the same version
    written = load_spec(spec_file({**MINIMAL, "target_rows": 1000, "generators": [
        {"name": "gaussian_copula", "version": "1.0"}, {"name": "cart", "version": "1.0"}]}, "written.yaml"))
    assert written.config_hash() == spec.config_hash() and written.generators_key() == spec.generators_key()
    assert spec.with_overrides({"generator_versions": {"cart": "1.1"}}).generators_key() == \
        "cart@1.1+gaussian_copula@1.0"
    for name, version in CURRENT_VERSIONS.items():
        assert version in builtin_versions(name)


def test_minimal_text_spec_gets_kn_ngram(spec_file):
    spec = load_spec(spec_file({"name": "reviews", "modality": "text", "source": "reviews.csv",
                                "text_column": "review"}))
    assert [g.key for g in spec.generators] == [f"kn_ngram@{CURRENT_VERSIONS['kn_ngram']}"]
    assert spec.target_rows == DEFAULT_TARGET_ROWS


def test_a_code_spec_must_name_its_generator(spec_file):
    with pytest.raises(SpecError, match="field 'generators': Field required: a code spec has no default "
                                        "generators; list at least one, e.g. {name: openai_compatible"):
        load_spec(spec_file({"name": "code", "modality": "code", "source": "humaneval://HumanEval",
                             "fields": {"instruction": "prompt", "response": "solution"}}))
    with pytest.raises(SpecError, match="field 'generators': List should have at least 1 item"):
        load_spec(spec_file({**MINIMAL, "generators": []}))  # an explicit empty list is not "use the defaults"


def test_minimal_tabular_spec_runs_and_publishes(spec_file, tmp_path, capsys):
    minimal_csv(tmp_path)
    path = spec_file(MINIMAL)
    args = ["--storage", str(tmp_path / "storage"), "--db-url", f"sqlite:///{tmp_path / 'provenance.db'}"]
    assert main(["run", str(path), "--logical-date", "2026-02-01", *args]) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["generators"] == "cart@1.0+gaussian_copula@1.0" and summary["synthetic_rows"] > 0
    assert Path(summary["data_uri"].removeprefix("file://")).is_file()
    assert main(["versions", "--json", *args[2:]]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [v["status"] for v in versions] == ["published"]


def test_overrides_are_validated(spec_file):
    spec = load_spec(spec_file(base_spec()))
    changed = spec.with_overrides({"target_rows": 300, "real_fraction": 0.9, "generator_versions": {"cart": "1.1"}})
    assert changed.target_rows == 300 and changed.blend.real_fraction == 0.9
    assert changed.generators_key() == "cart@1.1+gaussian_copula@1.0"
    assert changed.line == "cart_1_1" and spec.line == "main"
    refusals = {  # each names the key and why; Airflow's form may clamp to a bound, the run still refuses
        "real_fraction": ({"real_fraction": 1.5}, "above the maximum 1"),
        "target_rows": ({"target_rows": 1}, "below the minimum 100"),
        "seed": ({"seed": "7"}, "must be a whole number"),
        "blend_mode": ({"blend_mode": "mix"}, "must be one of"),
        "generator_versions": ({"generator_versions": {"nope": "1"}}, "not in the spec"),
        "target_rowz": ({"target_rowz": 10}, "not known"),
    }
    for key, (conf, why) in refusals.items():
        with pytest.raises(SpecError, match=f"{key}.*{why}"):
            spec.with_overrides(conf)


def test_config_hash_is_the_version_identity(spec_file):
    spec = load_spec(spec_file(base_spec()))
    same = spec.with_overrides({"target_rows": spec.target_rows})
    assert same.config_hash() == spec.config_hash()  # re-running one configuration replaces its version
    for other in ({"target_rows": spec.target_rows + 1}, {"real_fraction": 0.3}, {"seed": 9},
                  {"generator_versions": {"cart": "1.1"}}):
        assert spec.with_overrides(other).config_hash() != spec.config_hash(), other
    relabelled = load_spec(spec_file(base_spec(schedule=None, tags=["x"], description="other words")))
    assert relabelled.config_hash() == spec.config_hash()  # scheduling and labels are not the data's identity


def test_candidates_make_lines(spec_file):
    spec = load_spec(spec_file(base_spec(candidates=[{"cart": "1.1"}])))
    lines = spec.lines()
    assert list(lines) == ["main", "cart_1_1"]
    assert lines["cart_1_1"].generators_key() == "cart@1.1+gaussian_copula@1.0"
    assert lines["cart_1_1"].config_hash() != spec.config_hash()
    for bad, why in (([{"nope": "1"}], "not in this spec"), ([{"cart": "1.0"}], "main line"),
                     ([{"cart": "1.1"}, {"cart": "1.1"}], "same line"), ([{}], "at least one")):
        with pytest.raises(SpecError, match=f"candidates.*{why}"):
            load_spec(spec_file(base_spec(candidates=bad)))
