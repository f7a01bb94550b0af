"""Text filters: datatrove-style blocks that keep or drop each text with a reason.

Verification has already measured what is costly (memorisation spans, contamination,
detection probabilities, embeddings); filters here decide on those figures, plus the
dedup passes that need the surviving set itself. Order matters: cheap record checks
first, then exact, near and semantic duplicates, then leaks, then the classifier.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..filters import Decision, RowFilter
from ..specs import TextSpec
from .embeddings import encoder
from .neardup import find_near_duplicates, near_duplicates_of
from .semantic import SemanticPairs, resolve, semantic_pairs
from .tokens import text_hashes


@dataclass
class TextFilterInput:
    rows: pd.DataFrame  # data columns
    checks: pd.DataFrame  # verification's per-row results, aligned with rows
    texts: list[str]  # one string per record (record_texts)
    embeddings: np.ndarray  # aligned with rows, L2-normalised
    train_texts: list[str]
    settings: TextSpec
    seed: int = 0
    semantic: SemanticPairs | None = None  # the pool's semantic pairs, found by shard (None: searched here)

    def subset(self, index: np.ndarray) -> "TextFilterInput":
        return replace(self, rows=self.rows.iloc[index].reset_index(drop=True),
                       checks=self.checks.iloc[index].reset_index(drop=True),
                       texts=[self.texts[i] for i in index], embeddings=self.embeddings[index],
                       semantic=None if self.semantic is None else self.semantic.within(index))


def _reasons(n: int) -> np.ndarray:
    return np.full(n, "", dtype=object)


class RecordCheckFilter(RowFilter):
    name = "record_checks"

    def decide(self, data: TextFilterInput) -> Decision:
        violations = data.checks["violations"].fillna("").to_numpy(dtype=object)
        bad = violations != ""
        return Decision(~bad, violations, {"failed_checks": int(bad.sum())})


class ExactTextDedup(RowFilter):
    """Repeats within the batch and verbatim copies of real training texts (after case/punctuation folding)."""

    name = "exact_dedup"

    def decide(self, data: TextFilterInput) -> Decision:
        hashes = text_hashes(data.texts)
        # verification's record shards found copies of real texts (against the real hashes, built once)
        copy = data.checks["real_exact_copy"].to_numpy(dtype=bool) if "real_exact_copy" in data.checks \
            else np.isin(hashes, text_hashes(data.train_texts))
        repeat = pd.Series(hashes).duplicated().to_numpy()
        reasons = np.where(copy, "exact copy of a real training text", "exact repeat of an earlier synthetic text")
        return Decision(~(copy | repeat), reasons.astype(object),
                        {"copies_of_real": int(copy.sum()), "repeats": int((repeat & ~copy).sum())})


class NearDuplicateFilter(RowFilter):
    """MinHash-LSH near duplicates within the batch and of real training texts, confirmed by true Jaccard."""

    name = "near_dedup"

    def decide(self, data: TextFilterInput) -> Decision:
        threshold = data.settings.near_dup_threshold
        within = find_near_duplicates(data.texts, threshold=threshold)
        if "near_real_reference" in data.checks:  # found in verification's record shards (real sketch built once)
            of_real = data.checks["near_real_reference"].to_numpy(dtype=np.int64)
            real_jaccard = data.checks["near_real_jaccard"].to_numpy(dtype=float)
        else:
            of_real, real_jaccard = near_duplicates_of(data.train_texts, data.texts, threshold=threshold)
        near_real = of_real >= 0
        reasons = _reasons(len(data.texts))
        for i in np.flatnonzero(~within.keep):
            reasons[i] = f"near duplicate of synthetic text {within.duplicate_of[i]} (Jaccard {within.jaccard[i]:.2f})"
        for i in np.flatnonzero(near_real):
            reasons[i] = f"near copy of real training text {of_real[i]} (Jaccard {real_jaccard[i]:.2f})"
        keep = within.keep & ~near_real
        return Decision(keep, reasons, {"near_duplicates": int((~within.keep).sum()),
                                        "near_copies_of_real": int(near_real.sum()),
                                        "candidate_pairs": int(within.candidate_pairs),
                                        "confirmed_pairs": int(within.confirmed_pairs)})


def semantic_threshold(settings: TextSpec) -> float:
    """The spec's threshold, else the calibrated one of the encoder serving dedup: cosines are per model."""
    if settings.semantic_threshold is not None:
        return settings.semantic_threshold
    return encoder(settings.embedding.dedup).semantic_threshold


class SemanticDedup(RowFilter):
    """Keep-first on cosine similarity. The pairs come from filtering's mapped shards when the pipeline searched
    them there (every row against every earlier one); otherwise they are searched here, the same way."""

    name = "semantic_dedup"

    def decide(self, data: TextFilterInput) -> Decision:
        model = data.settings.embedding.dedup
        threshold = semantic_threshold(data.settings)
        pairs = data.semantic if data.semantic is not None else semantic_pairs(data.embeddings, threshold)
        if pairs.threshold != threshold:
            raise ValueError(f"the semantic pairs were searched at threshold {pairs.threshold}, the spec asks "
                             f"{threshold}: search them again")
        keep, duplicate_of, similarity = resolve(pairs, data.embeddings)
        reasons = _reasons(len(keep))
        for i in np.flatnonzero(~keep):
            reasons[i] = (f"semantic duplicate of synthetic text {duplicate_of[i]} "
                          f"({model} cosine {similarity[i]:.3f} >= {threshold})")
        return Decision(keep, reasons, {"semantic_duplicates": int((~keep).sum()), "model": model,
                                        "threshold": threshold, "pairs": int(len(pairs.left)),
                                        "searched_by_shard": data.semantic is not None})


class ContaminationFilter(RowFilter):
    """Texts that share a long n-gram with the holdout or an eval set (found in verification)."""

    name = "contamination"

    def decide(self, data: TextFilterInput) -> Decision:
        hit = data.checks["contaminated_by"].fillna("").to_numpy(dtype=object)
        bad = hit != ""
        n = data.settings.contamination_ngram
        reasons = np.array([f"shares a {n}-gram with eval set {h!r}" for h in hit], dtype=object)
        per_set = pd.Series(hit[bad]).value_counts().to_dict()
        return Decision(~bad, reasons, {"contaminated": int(bad.sum()),
                                        "by_eval_set": {str(k): int(v) for k, v in per_set.items()}})


class MemorisationFilter(RowFilter):
    """Texts that reproduce a long verbatim span of a real training text (the text form of privacy)."""

    name = "memorisation"

    def decide(self, data: TextFilterInput) -> Decision:
        span = data.checks["memorised_span"].to_numpy()
        ref = data.checks["memorised_reference"].to_numpy()
        bad = span >= data.settings.memorisation_ngram
        reasons = np.array([f"reproduces {s} consecutive tokens of real training text {r}" for s, r in zip(span, ref)],
                           dtype=object)
        return Decision(~bad, reasons, {"memorised": int(bad.sum())})


class OffDistributionFilter(RowFilter):
    """The most detectable texts: a real-vs-synthetic classifier (out-of-fold, on embeddings) is sure of them.

    Only the top `max_off_distribution_share` of the batch by p(synthetic) can go. Every text of a
    weak generator may be detectable (n-gram text reaches detection AUC ~0.93 on fine_foods); the
    filter trims its worst tail, and detection AUC itself is reported and monitored per version.
    """

    name = "off_distribution"

    def decide(self, data: TextFilterInput) -> Decision:
        proba = data.checks["synthetic_proba"].to_numpy(dtype=float)
        threshold = data.settings.off_distribution_threshold
        share = data.settings.max_off_distribution_share
        cutoff = np.quantile(proba, 1.0 - share) if len(proba) and share < 1.0 else 0.0
        fake = (proba >= threshold) & (proba > cutoff if share < 1.0 else True)
        reasons = np.array([f"real-vs-synthetic classifier says synthetic with p={p:.3f} >= {threshold}"
                            for p in proba], dtype=object)
        return Decision(~fake, reasons, {"flagged": int(fake.sum())})


class JudgeFilter(RowFilter):
    """Texts the LLM judge scored under the spec's threshold, or could not score (a missing grade keeps nothing)."""

    name = "judge"

    def decide(self, data: TextFilterInput) -> Decision:
        if "judge_score" not in data.checks:  # no judge in this spec
            return Decision(np.ones(len(data.rows), dtype=bool), _reasons(len(data.rows)), {})
        score = data.checks["judge_score"].to_numpy(dtype=float)
        threshold = data.settings.judge.threshold
        keep = score >= threshold  # NaN (no grade) compares False
        reasons = np.array([f"judge score {s:g} < {threshold:g}: {r}" if s == s else r
                            for s, r in zip(score, data.checks["judge_reason"].fillna(""))], dtype=object)
        return Decision(keep, reasons, {"below_threshold": int((score < threshold).sum()),
                                        "ungraded": int(np.isnan(score).sum())})


def default_text_filters() -> list[RowFilter]:
    return [RecordCheckFilter(), JudgeFilter(), ExactTextDedup(), NearDuplicateFilter(), SemanticDedup(), ContaminationFilter(),
            MemorisationFilter(), OffDistributionFilter()]
