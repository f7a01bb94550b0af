"""Near-duplicate removal: planted near duplicates found, unrelated texts never merged, no chaining."""
import numpy as np
import pytest
from datasketch import MinHash

from synthchain.text import neardup
from synthchain.text.neardup import find_near_duplicates, minhash_signatures, near_duplicates_of, shingle_hash
from synthchain.text.tokens import normalize

BASE = ("the coffee arrived quickly and tastes rich with a smooth finish that my whole family "
        "enjoyed every single morning this month")


def word_jaccard(a: str, b: str) -> float:
    x, y = set(normalize(a).split()), set(normalize(b).split())
    return len(x & y) / len(x | y)


def random_texts(n: int, seed: int = 0, vocab_size: int = 5000) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{k}" for k in rng.integers(0, vocab_size, size=rng.integers(10, 30))) for _ in range(n)]


def test_planted_near_duplicates_are_found_with_their_original_and_true_jaccard():
    texts = [
        BASE,
        "I would never buy this brand of dog food again because my dog refused to eat it",
        BASE.replace("quickly", "quikly"),  # character edit: one word of 20 changes
        BASE.replace("rich with", "with rich"),  # word swap: same word set
        BASE.upper().replace(" AND ", ", AND ") + "!!!",  # case and punctuation
        BASE.replace("smooth", "very smooth"),  # insert
        "Great tea, lovely aroma, and the tin keeps it fresh for weeks after opening the box",
    ]
    result = find_near_duplicates(texts, threshold=0.8)
    assert result.keep.tolist() == [True, True, False, False, False, False, True]
    assert result.duplicate_of.tolist() == [-1, -1, 0, 0, 0, 0, -1]
    assert result.jaccard[2:6] == pytest.approx([20 / 22, 1.0, 1.0, 21 / 22])  # BASE has 21 distinct words
    assert np.isnan(result.jaccard[[0, 1, 6]]).all()
    # All six pairs among texts 0, 2, 3, 5 are confirmed, and text 4 is an exact repeat of text 0.
    assert result.confirmed_pairs == 7 and result.candidate_pairs >= 7


def test_unrelated_texts_are_never_merged():
    texts = random_texts(3000)
    result = find_near_duplicates(texts)
    assert result.keep.all() and result.confirmed_pairs == 0
    assert (result.duplicate_of == -1).all() and np.isnan(result.jaccard).all()


def test_no_chaining_through_a_dropped_text():
    # A~B and B~C at Jaccard 9/11 each, but A~C only 8/12: C stays, since B, its only match, is dropped.
    a = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    b = "alpha beta gamma delta epsilon zeta eta theta iota lambda"
    c = "alpha beta gamma delta epsilon zeta eta theta mu lambda"
    assert word_jaccard(a, c) < 0.8 <= min(word_jaccard(a, b), word_jaccard(b, c))
    result = find_near_duplicates([a, b, c], threshold=0.8)
    assert result.keep.tolist() == [True, False, True]
    assert result.duplicate_of.tolist() == [-1, 0, -1]
    assert find_near_duplicates([b, c], threshold=0.8).duplicate_of.tolist() == [-1, 0]  # C is B's duplicate


def test_every_drop_is_confirmed_against_a_kept_earlier_text():
    # Long chains of one-word edits: neighbours are near duplicates, texts a few steps apart are not.
    rng = np.random.default_rng(3)
    texts = []
    for chain in range(60):
        words = [f"c{chain}w{k}" for k in range(12)]
        for step in range(8):
            texts.append(" ".join(words))
            words[int(rng.integers(0, 12))] = f"c{chain}x{step}"
    texts += random_texts(300, seed=4)
    order = rng.permutation(len(texts))
    texts = [texts[i] for i in order]
    result = find_near_duplicates(texts, threshold=0.8)
    dropped = np.flatnonzero(~result.keep)
    assert dropped.size > 0
    for j in dropped:
        i = result.duplicate_of[j]
        assert i < j and result.keep[i]
        assert result.jaccard[j] == pytest.approx(word_jaccard(texts[i], texts[j])) and result.jaccard[j] >= 0.8


def test_exact_duplicates_and_repeats_of_a_dropped_text():
    near = BASE.replace("family", "famly")
    texts = [BASE] + ["same words here"] * 50 + [BASE.title() + ".", near, near, near.upper()]
    result = find_near_duplicates(texts)
    assert result.keep[[0, 1]].all() and not result.keep[2:].any()
    assert (result.duplicate_of[2:51] == 1).all() and result.duplicate_of[51] == 0
    assert result.jaccard[51] == 1.0
    # Copies of a dropped text point at the kept text it was dropped for, with its Jaccard.
    assert result.duplicate_of[52:].tolist() == [0, 0, 0]
    assert result.jaccard[52:] == pytest.approx([20 / 22] * 3)


def test_empty_and_very_short_texts():
    texts = ["", "   ", "!!! ...", "x", "x", "X!", "a b", "a c", ""]
    result = find_near_duplicates(texts)
    assert result.keep.tolist() == [True, True, True, True, False, False, True, True, True]
    assert result.duplicate_of.tolist() == [-1, -1, -1, -1, 3, 3, -1, -1, -1]
    empty = find_near_duplicates([])
    assert empty.keep.shape == (0,) and empty.candidate_pairs == 0
    assert find_near_duplicates(["", ""]).keep.tolist() == [True, True]
    match, jaccard = near_duplicates_of([], ["a text"])
    assert match.tolist() == [-1] and np.isnan(jaccard).all()


def test_unicode_texts_are_normalised_like_tokens_normalize():
    texts = ["Crème brûlée, très BIEN — déjà vu", "crème BRÛLÉE très bien déjà vu!", "creme brulee tres bien deja vu"]
    result = find_near_duplicates(texts)
    assert result.keep.tolist() == [True, False, True] and result.duplicate_of[1] == 0


def test_deterministic_and_independent_of_chunking(monkeypatch):
    texts = random_texts(400, seed=1)
    texts += [t.replace("w1", "w9", 1) for t in texts[:100]] + texts[50:80]
    first, second = find_near_duplicates(texts), find_near_duplicates(texts)
    monkeypatch.setattr(neardup, "_TEXTS_PER_CHUNK", 37)
    chunked = find_near_duplicates(texts)
    for other in (second, chunked):
        assert (first.keep == other.keep).all() and (first.duplicate_of == other.duplicate_of).all()
        assert np.array_equal(first.jaccard, other.jaccard, equal_nan=True)
        assert first.candidate_pairs == other.candidate_pairs
    assert (~first.keep).sum() >= 30


@pytest.mark.parametrize("shingle_size", [1, 2, 3])
def test_signatures_equal_datasketch_minhash(shingle_size):
    texts = [BASE, "Hello, World!", "one", "", "naïve CAFÉ au lait", "a b c d e"]
    sig = minhash_signatures(texts, num_perm=64, shingle_size=shingle_size, seed=7)
    for text, row in zip(texts, sig):
        words = normalize(text).split()
        shingles = {" ".join(words[k:k + shingle_size]) for k in range(max(len(words) - shingle_size + 1, 1))}
        m = MinHash(num_perm=64, seed=7, hashfunc=shingle_hash)
        for shingle in shingles if words else ():
            m.update(shingle.encode())
        assert np.array_equal(m.hashvalues, row)


def test_word_order_counts_with_bigger_shingles():
    shuffled = " ".join(reversed(BASE.split()))
    assert find_near_duplicates([BASE, shuffled]).duplicate_of.tolist() == [-1, 0]
    assert find_near_duplicates([BASE, shuffled], shingle_size=3).keep.all()
    edited = BASE.replace("arrived", "came")
    assert find_near_duplicates([BASE, edited], threshold=0.7, shingle_size=2).duplicate_of.tolist() == [-1, 0]


def test_near_duplicates_of_a_reference_corpus():
    reference = random_texts(500, seed=2) + [BASE, BASE.replace("coffee", "tea")]
    copy = BASE.replace("family", "famly")
    match, jaccard = near_duplicates_of(reference, [copy, "nothing alike at all here", "", reference[7]])
    assert match.tolist() == [500, -1, -1, 7]
    assert jaccard[0] == pytest.approx(word_jaccard(copy, BASE)) and jaccard[3] == 1.0
    assert np.isnan(jaccard[[1, 2]]).all()


def test_a_stored_reference_sketch_finds_what_sketching_the_reference_again_finds():
    """Verification builds the real corpus's bands once (stored as arrays) and every record shard queries
    them: the same matches as sketching reference and texts together, and a sketch of another corpus or
    threshold is refused rather than read wrongly."""
    reference = random_texts(2000, seed=3) + [BASE, "", BASE.replace("coffee", "tea")]
    texts = [BASE.replace("family", "famly"), reference[11], " ".join(reversed(reference[40].split())),
             "nothing alike at all here", ""] + random_texts(200, seed=4)
    stored = {k: v.copy() for k, v in neardup.reference_sketch(reference).arrays().items()}  # as np.save keeps them
    sketch = neardup.ReferenceSketch.from_arrays(**stored)
    got, want = near_duplicates_of(reference, texts, sketch=sketch), near_duplicates_of(reference, texts)
    assert np.array_equal(got[0], want[0]) and np.array_equal(np.isnan(got[1]), np.isnan(want[1]))
    np.testing.assert_array_equal(got[1][~np.isnan(got[1])], want[1][~np.isnan(want[1])])
    assert got[0][:4].tolist() == [2000, 11, 40, -1] and got[1][2] == 1.0
    with pytest.raises(ValueError, match="reference sketch was built for 2003 texts"):
        near_duplicates_of(reference[:-1], texts, sketch=sketch)
    with pytest.raises(ValueError, match=r"\(0.8, 128, 1, 1\)"):
        near_duplicates_of(reference, texts, threshold=0.7, sketch=sketch)


def test_a_crowd_of_near_identical_texts_stays_linear_and_keeps_one():
    # 300 texts that differ in one word share most band buckets (buckets beyond BIG_BUCKET members).
    template = " ".join(f"t{k}" for k in range(30))
    texts = [f"{template} v{k}" for k in range(300)]
    result = find_near_duplicates(texts)
    assert result.keep.tolist() == [True] + [False] * 299
    assert (result.duplicate_of[1:] == 0).all() and result.jaccard[1:] == pytest.approx(30 / 32)
    # One bucket of all 300: each member is paired with the first BIG_BUCKET_PARTNERS only, not with all.
    pairs = neardup._bucket_pairs(np.zeros((1, 300), dtype=np.uint64), np.arange(300))
    partners = neardup.BIG_BUCKET_PARTNERS
    assert len(pairs) == sum(299 - k for k in range(partners)) and set(pairs[:, 0]) == set(range(partners))
