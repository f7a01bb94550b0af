"""Test helpers for the text modality: a generator that plants leaks among n-gram texts.

Importable as `text_fixtures:LeakyTextGenerator` in a spec (tests/ is on sys.path under pytest).
"""
from __future__ import annotations

import pandas as pd

from synthchain.text.generators import NgramTextGenerator, TextRequest, TextResult
from synthchain.text.tokens import tokenize


class LeakyTextGenerator(NgramTextGenerator):
    """KN texts, except: every 25th request copies a training text verbatim, every 25th (offset 5) embeds
    15 consecutive tokens of a training text among new words, every 25th (offset 10) embeds 14 tokens
    of the text in `leak_source` (an eval set or holdout text), and every 25th (offset 15) is a training
    text's words in reverse order (a near copy: the same word set, no exact copy, no span in order)."""

    def __init__(self, leak_text: str = "", **params):
        super().__init__(**params)
        self.leak_text = leak_text
        self.params["leak_text"] = leak_text

    def _fit(self, data: pd.DataFrame, profile) -> "LeakyTextGenerator":
        super()._fit(data, profile)
        column = profile.text_columns[0]
        self.training_texts_ = data[column].tolist()
        self.long_texts_ = [t for t in self.training_texts_ if len(str(t).split()) >= 8]
        return self

    def generate(self, batch: list[TextRequest]) -> list[TextResult]:
        out = super().generate(batch)
        role = next(iter(self.profile_.roles))
        for k, request in enumerate(batch):
            source = self.training_texts_[request.index % len(self.training_texts_)]
            new_words = out[k].fields[role].split()[:12] or ["new"]
            if request.index % 25 == 0:
                out[k] = TextResult({role: source}, meta={"planted": "copy"})
            elif request.index % 25 == 5 and len(tokenize(source)) >= 20:
                span = " ".join(tokenize(source)[2:17])
                out[k] = TextResult({role: " ".join(new_words) + " " + span}, meta={"planted": "memorised"})
            elif request.index % 25 == 10 and self.leak_text:
                span = " ".join(tokenize(self.leak_text)[:14])
                out[k] = TextResult({role: " ".join(new_words) + " " + span}, meta={"planted": "contaminated"})
            elif request.index % 25 == 15:
                words = self.long_texts_[request.index % len(self.long_texts_)].split()
                out[k] = TextResult({role: " ".join(reversed(words))}, meta={"planted": "near_copy"})
        return out
