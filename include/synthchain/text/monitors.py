"""Text collapse monitors, registered through the shared monitor interface.

Each is one number per dataset version, judged against generation 0 of its ancestry.
They read the version's kept synthetic texts, the real texts and the embeddings the
verification hop computed (passed in `MonitorInput.embeddings`).
"""
from __future__ import annotations

import numpy as np

from ..collapse.monitors import Monitor, MonitorInput, register
from .diversity import CorpusCounts, distinct_n, embedding_dispersion, heaps_exponent, tail_coverage, vocabulary_at
from .ngram import KneserNeyLM
from .overlap import token_hashes
from .profile import record_texts
from .tokens import TokenView


def _view(data: MonitorInput, which: str) -> TokenView:
    """The real, synthetic or holdout records as token lists, tokenised as read (a million real texts are
    never held as token lists)."""
    frame = {"real": data.real, "synthetic": data.synthetic, "holdout": data.holdout}[which]
    return TokenView(record_texts(frame, data.profile))


def _real(data: MonitorInput) -> CorpusCounts | tuple[np.ndarray, np.ndarray]:
    """The real corpus as the modality counted it once for the run (`metrics["real_counts"]`), else hashed here."""
    counted = data.metrics.get("real_counts")
    return counted if counted is not None else _hashed(data, "real")


def _tokens(corpus: CorpusCounts | tuple[np.ndarray, np.ndarray]) -> int:
    return corpus.total_tokens if isinstance(corpus, CorpusCounts) else int(corpus[0].size)


def _hashed(data: MonitorInput, which: str) -> tuple[np.ndarray, np.ndarray]:
    """The records' token hashes and lengths (`overlap.token_hashes`), computed once per MonitorInput."""
    cache = data.metrics.setdefault("_hashed", {})
    if which not in cache:
        cache[which] = token_hashes(_view(data, which))
    return cache[which]


class TextMonitor(Monitor):
    modality = "text"


class Vocabulary(TextMonitor):
    name = "text_vocabulary"
    description = "vocabulary size of synthetic text at the real corpus's token count (or the smaller of the two)"

    def measure(self, data: MonitorInput) -> float | None:
        synth = _hashed(data, "synthetic")
        budget = min(synth[0].size, _tokens(_real(data)))
        return float(vocabulary_at(synth, budget)) if budget else None


class VocabularyGrowth(TextMonitor):
    name = "text_heaps"
    description = "Heaps exponent of synthetic text: how fast new words keep appearing"

    def measure(self, data: MonitorInput) -> float | None:
        synth = _hashed(data, "synthetic")
        return float(heaps_exponent(synth)) if synth[1].size else None


class Distinct2(TextMonitor):
    name = "text_distinct_2"
    description = "distinct bigrams / bigrams in synthetic text"

    def measure(self, data: MonitorInput) -> float | None:
        synth = _hashed(data, "synthetic")
        return float(distinct_n(synth, 2)) if synth[1].size else None


class TailNgramCoverage(TextMonitor):
    name = "text_tail_coverage"
    description = "share of the real corpus's rare bigrams still present in synthetic text"

    def measure(self, data: MonitorInput) -> float | None:
        synth = _hashed(data, "synthetic")
        return float(tail_coverage(_real(data), synth, n=2)) if synth[1].size else None


class HoldoutPerplexity(TextMonitor):
    name = "text_holdout_perplexity"
    higher_is_better = False
    description = "perplexity of the real holdout under a KN trigram model fitted on this version's synthetic text"

    def measure(self, data: MonitorInput) -> float | None:
        if data.holdout is None or not len(data.synthetic):
            return None
        return float(KneserNeyLM(order=3).fit(_view(data, "synthetic")).perplexity(_view(data, "holdout")))


class EmbeddingDispersion(TextMonitor):
    name = "text_dispersion"
    description = "spread of synthetic sentence embeddings around their centroid"

    def measure(self, data: MonitorInput) -> float | None:
        emb = data.embeddings.get("synthetic")
        return float(embedding_dispersion(emb)) if emb is not None and len(emb) > 1 else None


for _monitor in (Vocabulary(), VocabularyGrowth(), Distinct2(), TailNgramCoverage(), HoldoutPerplexity(),
                 EmbeddingDispersion()):
    register(_monitor)
