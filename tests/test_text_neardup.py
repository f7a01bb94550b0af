"""Near-duplicate removal: planted near duplicates found, unrelated texts never merged, no chaining."""
import numpy as np

from synthchain.text.neardup import find_near_duplicates, near_duplicates_of, shingle_sets, signatures

BASE = ("the coffee arrived quickly and tastes rich with a smooth finish that my whole family "
        "enjoyed every single morning this month")


def test_planted_near_duplicates_are_found_with_their_original():
    texts = [
        BASE,
        "I would never buy this brand of dog food again because my dog refused to eat it",
        BASE.replace("quickly", "quikly"),  # character edit
        BASE.replace("rich with", "with rich"),  # word swap
        BASE.upper() + "!!!",  # case and punctuation
        BASE.replace("smooth", "very smooth"),  # insert
        "Great tea, lovely aroma, and the tin keeps it fresh for weeks after opening the box",
    ]
    result = find_near_duplicates(texts, threshold=0.8)
    assert result.keep.tolist() == [True, True, False, False, False, False, True]
    assert result.duplicate_of.tolist() == [-1, -1, 0, 0, 0, 0, -1]
    assert np.all(result.jaccard[2:6] >= 0.8) and np.isnan(result.jaccard[[0, 1, 6]]).all()
    assert result.confirmed_pairs >= 4


def test_unrelated_texts_are_never_merged():
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(3000)]
    texts = [" ".join(rng.choice(vocab, size=20)) for _ in range(3000)]
    result = find_near_duplicates(texts)
    assert result.keep.all() and result.confirmed_pairs == 0


def test_no_chaining_through_a_dropped_text():
    # A~B and B~C (Jaccard 9/11), but A~C is only 8/12: C must stay, since B, its only match, is dropped.
    a = "alpha beta gamma delta epsilon zeta eta theta iota kappa"
    b = "alpha beta gamma delta epsilon zeta eta theta iota lambda"
    c = "alpha beta gamma delta epsilon zeta eta theta mu lambda"
    result = find_near_duplicates([a, b, c], threshold=0.8)
    assert result.keep.tolist() == [True, False, True]
    assert find_near_duplicates([b, c], threshold=0.8).keep.tolist() == [True, False]  # C is B's duplicate


def test_exact_repeats_short_and_empty_texts():
    texts = ["same words here"] * 50 + ["", "", "x", "short one"]
    result = find_near_duplicates(texts)
    assert result.keep[0] and not result.keep[1:50].any() and (result.duplicate_of[1:50] == 0).all()
    assert result.keep[[52, 53]].all()
    assert len(find_near_duplicates([]).keep) == 0


def test_deterministic_and_signatures_follow_jaccard():
    texts = [BASE, BASE.replace("coffee", "espresso"), "completely different words in this sentence"]
    first, second = find_near_duplicates(texts), find_near_duplicates(texts)
    assert first.keep.tolist() == second.keep.tolist()
    sig = signatures(*shingle_sets(texts))
    assert sig.shape == (3, 128) and sig.dtype == np.uint32
    assert (sig[0] == sig[1]).mean() > 0.8 and (sig[0] == sig[2]).mean() < 0.1


def test_near_duplicates_of_a_reference_corpus():
    reference = [BASE, "a different real review about tea leaves and their aroma in the cup"]
    match, jaccard = near_duplicates_of(reference, [BASE.replace("family", "famly"), "nothing alike at all here"])
    assert match.tolist() == [0, -1] and jaccard[0] >= 0.8 and np.isnan(jaccard[1])
