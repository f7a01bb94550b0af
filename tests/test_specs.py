
import pytest

from conftest import base_spec
from synthchain.specs import SpecError, discover_specs, load_spec


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
        load_spec(spec_file(base_spec(source={"uri": "postgresql://x@localhost/db"})))


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
