"""The text modality: labelled texts or instruction records through the same six hops.

Stage I/O (beyond the pipeline's own artefacts):
- verification reads synthetic, real train and holdout texts, the eval sets; writes per-row
  checks (record checks, memorisation span, contamination hit, detection probability) and
  stores sentence embeddings in the content-addressed cache (`cache/embeddings/`), which
  filtering, the kept-set gate, the monitors and the report read back instead of recomputing.
- filtering reads those checks and embeddings; the kept-set gate measures diversity on what
  filtering kept (what gets published) and stores it per version.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .. import gates as g
from ..collapse.monitors import MonitorInput
from ..filters import RowFilter
from ..modality import HopData, Modality, Verified, data_columns
from ..specs import stable_hash
from . import monitors as _monitors  # noqa: F401  (registers the text collapse monitors)
from ..seeds import derive_seed
from ..targets import from_json
from .baselines import evaluate_text_slices
from .checks import label_model, length_bound, record_checks
from .error_slices import find_label_error_slices
from .diversity import CorpusCounts, diversity_report
from .embeddings import embed, encoder_id
from .evaluation import evaluate_text
from .fidelity import detection_auc, fidelity_report
from .filters import TextFilterInput, default_text_filters, semantic_threshold
from .semantic import SemanticPairs, semantic_pairs
from .generators import BUILTIN as NGRAM_BUILTIN
from .llm_generator import OpenAICompatibleGenerator

BUILTIN = {**NGRAM_BUILTIN, "openai_compatible": OpenAICompatibleGenerator}
from .neardup import ReferenceSketch, find_near_duplicates, near_duplicates_of, reference_sketch
from .overlap import NgramIndex, contamination, memorisation, token_hashes
from .profile import TextProfile, load_eval_sets, load_texts, profile_texts, record_texts, spec_texts
from .tokens import TokenView, text_hashes, tokenize_all

CHECK_CHUNK = 20_000  # synthetic records checked per pass: their token lists are held one chunk at a time

_RECENT: dict[str, np.ndarray] = {}  # this process's last few embedding sets (hops run in one process in tests/CLI)


def embedding_model(spec, use: str) -> str:
    """The encoder the spec names for one use of embeddings: dedup, fidelity, detection or diversity."""
    return spec.text.embedding.models()[use]


def embedding_models(spec) -> dict[str, str]:
    """Use -> encoder id+version, as recorded with the verification metrics (and so in provenance)."""
    return {use: encoder_id(model) for use, model in spec.text.embedding.models().items()}


EMBED_CHUNK = 16_384  # texts per cached embedding file: a pool grown by a round re-embeds only its new tail


def cached_embeddings(data: HopData, texts: list[str], use: str) -> np.ndarray:
    """Sentence embeddings by the encoder the spec names for `use`, content-addressed: the same texts and
    encoder are embedded once for every hop and re-run. The key holds the encoder's id and version, so
    switching a use to another model re-embeds and switching back finds the earlier vectors. Stored in
    chunks of EMBED_CHUNK texts counted from the first, so that a pool with rows appended (a top-up round)
    finds its earlier chunks and embeds only the rest."""
    model = embedding_model(data.spec, use)
    key = stable_hash([encoder_id(model), texts])[:32]
    if key not in _RECENT:
        if len(_RECENT) >= 8:
            _RECENT.pop(next(iter(_RECENT)))
        parts = [data.cached_array("embeddings", stable_hash([encoder_id(model), part])[:32],
                                   lambda part=part: embed(part, model=model))
                 for lo in range(0, len(texts), EMBED_CHUNK) for part in [texts[lo:lo + EMBED_CHUNK]]]
        _RECENT[key] = np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else \
            embed(texts, model=model)
    return _RECENT[key]


def sample_positions(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded sample of k of n row positions, in order; every row when n <= k (small specs are not sampled)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


def corpus_hashes(data: HopData, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The corpus's token hashes and text lengths (`overlap.token_hashes`), content-addressed in the cache:
    the real training corpus is tokenised once per run for memorisation, diversity and the kept-set gate."""
    key = stable_hash(["token_hashes", texts])[:32]
    computed: list[tuple[np.ndarray, np.ndarray]] = []

    def hashed() -> tuple[np.ndarray, np.ndarray]:
        if not computed:
            computed.append(token_hashes(TokenView(texts)))
        return computed[0]

    return (data.cached_array("token_ids", key, lambda: hashed()[0]),
            data.cached_array("token_lengths", key, lambda: hashed()[1]))


def _gx_frame(frame: pd.DataFrame, profile: TextProfile) -> pd.DataFrame:
    """The batch GX validates: the record's columns plus token counts and the exact-dedup key."""
    out = data_columns(frame).copy()
    for col in profile.text_columns:
        out[f"{col}__tokens"] = [len(t) for t in tokenize_all(out[col].astype(str))]
    out["record__normal_hash"] = [f"{h:016x}" for h in text_hashes(record_texts(out, profile))]
    return out


def _suite(profile: TextProfile, spec, *, strict: bool) -> list[g.Expectation]:
    """Non-empty text, token length within the real band, known labels, bounded duplicate rate."""
    mostly = 1.0 if strict else 0.95
    lo_q, hi_q = spec.text.length_quantiles
    out = [g.expect("expect_table_row_count_to_be_between", min_value=1)]
    for col in profile.text_columns:
        band = profile.lengths[col]
        out += [g.expect("expect_column_values_to_not_be_null", column=col),
                g.expect("expect_column_value_lengths_to_be_between", column=col, min_value=1),
                g.expect("expect_column_values_to_be_between", column=f"{col}__tokens", mostly=mostly,
                         min_value=length_bound(band, lo_q, "low"), max_value=length_bound(band, hi_q, "high"))]
    if profile.label_column:
        out += [g.expect("expect_column_values_to_not_be_null", column=profile.label_column),
                g.expect("expect_column_values_to_be_in_set", column=profile.label_column,
                         value_set=sorted(profile.labels))]
    out.append(g.expect("expect_column_proportion_of_unique_values_to_be_between", column="record__normal_hash",
                        min_value=1.0 - (0.0 if strict else spec.text.max_duplicate_rate)))
    return out


def judge_texts(data: HopData, texts: list[str], checks: pd.DataFrame) -> dict[str, Any]:
    """The spec's LLM judge grades every text: per-row score and reason, and its figures for the version."""
    spec = data.spec.text.judge
    if spec is None:
        return {}
    from ..llm.judge import Judge

    judge = Judge(spec.connection, spec.model, spec.rubric, spec.scale, concurrency=spec.concurrency)
    graded = judge.score(texts, storage=data.storage)
    scores = np.array([np.nan if s is None else s for s, _ in graded], dtype=float)
    checks["judge_score"] = scores
    checks["judge_reason"] = [r for _, r in graded]
    valid = scores[~np.isnan(scores)]
    return {"judge_model": spec.model, "judge_version": judge.version,
            "judge_mean": float(valid.mean()) if len(valid) else None,
            "judge_pass_rate": float((scores >= spec.threshold).mean()) if len(scores) else 0.0,
            "judge_ungraded": int(np.isnan(scores).sum()), "judge_calls": judge.stats_}


class TextModality(Modality):
    name = "text"
    builtin_generators = BUILTIN
    privacy_metrics = ("memorised_share",)

    # --- profiling -------------------------------------------------------------------------------
    def load_real(self, spec) -> tuple[pd.DataFrame, pd.DataFrame]:
        return load_texts(spec)

    def profile(self, spec, train: pd.DataFrame) -> TextProfile:
        return profile_texts(spec, train)

    def load_profile(self, data: dict) -> TextProfile:
        return TextProfile.from_dict(data)

    def profiling_batches(self, spec, train, holdout, profile) -> list[g.Batch]:
        checks = [g.expect("expect_table_row_count_to_be_between", min_value=spec.gates.min_real_rows)]
        holdout_checks = [g.expect("expect_table_row_count_to_be_between", min_value=1)]
        for col in profile.text_columns:
            checks.append(g.expect("expect_column_value_lengths_to_be_between", column=col, min_value=1))
        if profile.label_column:
            checks.append(g.expect("expect_column_unique_value_count_to_be_between", column=profile.label_column,
                                   min_value=2))
            holdout_checks.append(g.expect("expect_column_values_to_be_in_set", column=profile.label_column,
                                           value_set=sorted(profile.labels)))
        return [g.Batch("real_train", train, checks), g.Batch("holdout", holdout, holdout_checks)]

    def record_suite(self, spec, profile: TextProfile) -> list[g.Expectation]:
        return _suite(profile, spec, strict=False)

    def error_slices(self, spec, train: pd.DataFrame) -> list:
        """`targets.from_errors`: the labels the real-only label model gets wrong most (out of fold, training
        records only)."""
        settings = spec.targets.from_errors
        return find_label_error_slices(spec_texts(spec, train), train[spec.label_column].tolist(), spec.label_column,
                                       n_slices=settings.slices, rows=settings.rows or 1, folds=settings.folds,
                                       min_rows=settings.min_rows, seed=derive_seed(spec.name, spec.seed,
                                                                                    "from_errors"))

    # --- generation ------------------------------------------------------------------------------
    def output_columns(self, profile: TextProfile) -> list[str]:
        return profile.columns

    def generation_batches(self, spec, synthetic, profile, suite) -> list[g.Batch]:
        # No row-count equality here: an endpoint generator's failed requests are stated, not padded; the
        # pipeline's request accounting checks planned = rows + failures.
        return [g.Batch("synthetic", _gx_frame(synthetic, profile), suite)]

    # --- verification ----------------------------------------------------------------------------
    def _real_sample(self, data: HopData, train_texts: list[str]) -> np.ndarray:
        return sample_positions(len(train_texts), data.spec.text.sample_rows, data.seed("sample_real"))

    def _synthetic_sample(self, data: HopData, n: int) -> np.ndarray:
        return sample_positions(n, data.spec.text.sample_rows, data.seed("sample_synthetic"))

    # Record-level checks (length band, repeats, characters, refusals, the label judge, memorisation against
    # the real index) need one row and the real references only: verification maps them over shards of the
    # pool. The references are built once (prepare_records) into the cache and read by every shard.
    shards_records = True

    def _label_judge(self, data: HopData):
        """The label-consistency judge: TF-IDF + logistic regression on (a bounded sample of) every real
        training record, fitted once per content and read back by every shard. A targeted slice's view holds
        that slice's real records in train_uri: the judge learns every label from all of them (all_train_uri)."""
        profile, settings = data.profile, data.spec.text
        if not profile.label_column:
            return None, 0
        every = data_columns(data.frame("all_train_uri")) if "all_train_uri" in data.state else data.train
        rows = sample_positions(len(every), settings.classifier_rows, data.seed("judge_rows"))
        texts = record_texts(every.iloc[rows], profile)
        labels = every[profile.label_column].astype(str).to_numpy()[rows].tolist()
        seed = data.seed("judge")
        key = stable_hash(["label_judge", texts, labels, seed])[:32]
        return data.cached_model("label_judge", key, lambda: label_model(texts, labels, seed)), len(rows)

    def _real_texts(self, data: HopData) -> tuple[list[str], str]:
        """The real training records as texts and a key of their content, computed once per hop: every
        reference below (index, sketch, hashes) is keyed by it."""
        memo = data.__dict__.setdefault("_real_texts_memo", {})
        if not memo:
            texts = record_texts(data.train, data.profile)
            memo["value"] = (texts, stable_hash(["real_records", texts])[:32])
        return memo["value"]

    def _real_index(self, data: HopData) -> NgramIndex:
        """The real training corpus's memorisation index, two arrays in the cache (built once per content)."""
        n = data.spec.text.memorisation_ngram
        train_texts, content = self._real_texts(data)
        key = stable_hash(["memorisation_index", n, content])[:32]

        def build() -> dict[str, np.ndarray]:
            built = NgramIndex.from_token_hashes(*corpus_hashes(data, train_texts), n)
            return {"hashes": built.hashes, "documents": built.documents}

        parts = data.cached_arrays("memorisation", key, ("hashes", "documents"), build)
        index = NgramIndex(n)
        index.hashes, index.documents = parts["hashes"], parts["documents"]
        index.n_documents = len(train_texts)
        return index

    def _real_sketch(self, data: HopData) -> ReferenceSketch:
        """The real corpus's MinHash-LSH bands (near copies of real texts), built once per content and threshold."""
        train_texts, content = self._real_texts(data)
        threshold = data.spec.text.near_dup_threshold
        key = stable_hash(["near_dup_sketch", threshold, content])[:32]
        return ReferenceSketch.from_arrays(**data.cached_arrays(
            "near_dup", key, ("keys", "rows", "meta"),
            lambda: reference_sketch(train_texts, threshold=threshold).arrays()))

    def _real_hashes(self, data: HopData) -> np.ndarray:
        """The real records' exact-dedup keys (`text_hashes`), sorted, cached once per content."""
        train_texts, content = self._real_texts(data)
        return data.cached_array("real_text_hashes", content, lambda: np.sort(text_hashes(train_texts)))

    def _real_counts(self, data: HopData) -> CorpusCounts:
        """The real corpus's side of the diversity figures (distinct n-grams, vocabulary growth, rare bigrams, word
        frequencies), counted once per content: verification, every top-up round, the kept-set gate, the collapse
        monitors and the report read it back."""
        train_texts, content = self._real_texts(data)
        key = stable_hash(["diversity_counts", content])[:32]
        return CorpusCounts.from_arrays(**data.cached_arrays(
            "diversity", key, ("figures", "first", "rare_bigrams", "word_counts"),
            lambda: CorpusCounts.of(corpus_hashes(data, train_texts)).to_arrays()))

    def prepare_records(self, data: HopData) -> None:
        self._label_judge(data)
        self._real_index(data)
        self._real_sketch(data)
        self._real_hashes(data)

    def verify_records(self, data: HopData, rows: pd.DataFrame) -> pd.DataFrame:
        profile, settings = data.profile, data.spec.text
        judge, _ = self._label_judge(data)
        texts = record_texts(rows, profile)
        # a chunk at a time: its token lists are the only per-token Python objects held
        checks = pd.concat([
            record_checks(part, {c: tokenize_all(part[c].astype(str)) for c in profile.text_columns}, profile,
                          settings, judge, texts[lo:lo + CHECK_CHUNK])
            for lo in range(0, len(rows), CHECK_CHUNK)
            for part in [rows.iloc[lo:lo + CHECK_CHUNK]]], ignore_index=True) if len(rows) else \
            record_checks(rows, {c: [] for c in profile.text_columns}, profile, settings, judge, texts)
        memorised, _ = memorisation(self._real_index(data), TokenView(texts), n=settings.memorisation_ngram)
        checks["memorised_span"] = memorised.longest_span
        checks["memorised_reference"] = memorised.reference_index
        # copies of real texts, exact (normal form) and near (true Jaccard), against references built once
        real_hashes = self._real_hashes(data)
        mine = text_hashes(texts)
        at = np.minimum(np.searchsorted(real_hashes, mine), max(len(real_hashes) - 1, 0))
        checks["real_exact_copy"] = real_hashes[at] == mine if len(real_hashes) else np.zeros(len(texts), dtype=bool)
        near, jaccard = near_duplicates_of(self._real_texts(data)[0], texts, threshold=settings.near_dup_threshold,
                                           sketch=self._real_sketch(data))
        checks["near_real_reference"], checks["near_real_jaccard"] = near, jaccard
        return checks

    def verify(self, data: HopData, synthetic: pd.DataFrame, records: pd.DataFrame | None = None) -> Verified:
        spec, profile, settings = data.spec, data.profile, data.spec.text
        train, holdout = data.train, data.holdout
        texts, train_texts = record_texts(synthetic, profile), self._real_texts(data)[0]
        if records is None:
            records = self.verify_records(data, synthetic)
        if len(records) != len(synthetic):
            raise ValueError(f"record checks cover {len(records)} rows, the pool has {len(synthetic)}")
        checks = records.drop(columns=["_sc_row_id"], errors="ignore").reset_index(drop=True)
        # how many real records the judge learnt from (its sample's size; the model itself is not needed here)
        every = len(data.frame("all_train_uri")) if "all_train_uri" in data.state else len(train)
        judge_rows = min(every, settings.classifier_rows) if profile.label_column else 0
        spans = checks["memorised_span"].to_numpy()
        memo = {"memorised_share": float((spans > 0).mean()) if len(spans) else 0.0,
                "max_span": int(spans.max()) if len(spans) else 0}
        synth_hashes = token_hashes(TokenView(texts))
        eval_sets = {"holdout": record_texts(holdout, profile), **load_eval_sets(spec)}
        hit, first_set, per_set = contamination({k: TokenView(v) for k, v in eval_sets.items()}, TokenView(texts),
                                                n=settings.contamination_ngram)
        checks["contaminated_by"] = first_set
        judged = judge_texts(data, texts, checks)

        # each use through its own encoder (text.embedding); uses that share one share the cached vectors.
        # Real texts are embedded on a bounded sample; detection scores every synthetic text (the
        # off-distribution filter reads it), fidelity and embedding diversity read the synthetic sample.
        real_rows, synth_rows = self._real_sample(data, train_texts), self._synthetic_sample(data, len(texts))
        real_sample, synth_sample = [train_texts[i] for i in real_rows], [texts[i] for i in synth_rows]
        auc, synthetic_proba = detection_auc(cached_embeddings(data, real_sample, "detection"),
                                             cached_embeddings(data, texts, "detection"), seed=data.seed("detect"),
                                             max_synthetic=settings.sample_rows)
        checks["synthetic_proba"] = synthetic_proba
        near = find_near_duplicates(texts, threshold=settings.near_dup_threshold)
        exact_dup = pd.Series(text_hashes(texts)).duplicated().to_numpy()
        labels = (synthetic[profile.label_column].astype(str).tolist(), train[profile.label_column].astype(str).tolist()) \
            if profile.label_column else (None, None)
        metrics = {
            "rows": len(synthetic),
            "record_violation_rate": float((checks["violations"] != "").mean()) if len(checks) else 0.0,
            "memorised_share": memo["memorised_share"], "max_memorised_span": memo["max_span"],
            "contaminated_share": float(hit.mean()) if len(hit) else 0.0, "contamination": per_set,
            "exact_duplicate_rate": float(exact_dup.mean()) if len(texts) else 0.0,
            "near_duplicate_rate": float((~near.keep & ~exact_dup).mean()) if len(texts) else 0.0,
            **fidelity_report(real_sample, synth_sample, cached_embeddings(data, real_sample, "fidelity"),
                              cached_embeddings(data, synth_sample, "fidelity"), seed=data.seed("detect"), auc=auc),
            **diversity_report(self._real_counts(data), synth_hashes, cached_embeddings(data, real_sample, "diversity"),
                               cached_embeddings(data, synth_sample, "diversity"), labels[1], labels[0]),
            "embedding_models": embedding_models(spec),
            # what was measured on a sample (every row otherwise): stated with the figures and in the report
            "sampled_rows": {"real": len(train_texts), "real_embedded": len(real_rows), "synthetic": len(texts),
                             "synthetic_embedded": len(synth_rows), "label_judge_trained_on": judge_rows},
        }
        metrics["duplicate_rate"] = metrics["exact_duplicate_rate"] + metrics["near_duplicate_rate"]
        metrics.update(judged)
        limits = data.spec.gates
        return Verified(
            metrics=metrics, checks=checks,
            expectations=[
                g.threshold("record_violation_rate", max_value=limits.max_constraint_violation_rate),
                g.threshold("memorised_share", max_value=settings.max_memorised_share),
                g.threshold("duplicate_rate", max_value=settings.max_duplicate_rate)],
            summary={"memorised_share": metrics["memorised_share"], "detection_auc": auc,
                     "contaminated_share": metrics["contaminated_share"]})

    # --- filtering -------------------------------------------------------------------------------
    def filters(self, spec) -> list[RowFilter]:
        return default_text_filters()

    def filter_input(self, data: HopData, synthetic: pd.DataFrame, checks: pd.DataFrame) -> TextFilterInput:
        profile = data.profile
        texts = record_texts(synthetic, profile)
        # copies of real texts were found in verification's record shards; older checks lack them
        found = {"real_exact_copy", "near_real_reference"} <= set(checks.columns)
        return TextFilterInput(synthetic, checks, texts, cached_embeddings(data, texts, "dedup"),
                               [] if found else record_texts(data.train, profile), data.spec.text,
                               data.seed("filter"))

    shards_pairs = True

    def _pool_embeddings(self, data: HopData) -> np.ndarray:
        texts = record_texts(data_columns(data.frame("synthetic_uri")), data.profile)
        return cached_embeddings(data, texts, "dedup")

    def prepare_pairs(self, data: HopData) -> None:
        self._pool_embeddings(data)  # usually cached already: detection embeds the pool when it shares the encoder

    def find_pairs(self, data: HopData, start: int, stop: int) -> pd.DataFrame:
        return semantic_pairs(self._pool_embeddings(data), semantic_threshold(data.spec.text), start, stop).frame()

    def with_pairs(self, inputs: TextFilterInput, pairs: pd.DataFrame, positions: np.ndarray) -> TextFilterInput:
        found = SemanticPairs.from_frame(pairs, semantic_threshold(inputs.settings))
        return replace(inputs, semantic=found.within(positions))

    def _kept_embeddings(self, data: HopData, kept: pd.DataFrame, use: str) -> np.ndarray:
        """The kept rows among the generated batch's embedded sample, their cached embeddings for `use` (no
        second pass through the model; every kept row when the batch is within `text.sample_rows`)."""
        synthetic = data.frame("synthetic_uri")
        rows = self._synthetic_sample(data, len(synthetic))
        emb = cached_embeddings(data, record_texts(data_columns(synthetic.iloc[rows]), data.profile), use)
        position = pd.Series(np.arange(len(rows)), index=synthetic["_sc_row_id"].to_numpy()[rows])
        ids = kept["_sc_row_id"].to_numpy()
        return emb[position.loc[ids[np.isin(ids, position.index)]].to_numpy()]

    def kept_checks(self, data: HopData, kept: pd.DataFrame) -> tuple[list[g.Batch], dict]:
        profile, settings = data.profile, data.spec.text
        rows = data_columns(kept)
        train_texts = self._real_texts(data)[0]
        real_sample = [train_texts[i] for i in self._real_sample(data, train_texts)]
        diversity = diversity_report(
            self._real_counts(data), token_hashes(TokenView(record_texts(rows, profile))),
            cached_embeddings(data, real_sample, "diversity"), self._kept_embeddings(data, kept, "diversity"),
            data.train[profile.label_column].astype(str).tolist() if profile.label_column else None,
            rows[profile.label_column].astype(str).tolist() if profile.label_column else None)
        gated = {k: v for k, v in diversity.items() if k in ("distinct_2", "vocab_ratio", "tail_coverage", "label_tvd")
                 and v is not None}
        checks = [g.threshold("distinct_2", min_value=settings.min_distinct_2),
                  g.threshold("vocab_ratio", min_value=settings.min_vocab_ratio),
                  g.threshold("tail_coverage", min_value=settings.min_tail_coverage)]
        if "label_tvd" in gated:
            checks.append(g.threshold("label_tvd", max_value=settings.max_label_tvd))
        return [g.Batch("kept", _gx_frame(rows, profile), _suite(profile, data.spec, strict=True)),
                g.Batch("diversity", g.metrics_frame(gated), checks)], {"diversity": diversity}

    # --- blending --------------------------------------------------------------------------------
    def blend_batches(self, data: HopData, blended: pd.DataFrame) -> list[g.Batch]:
        profile = data.profile
        checks = [g.expect("expect_table_columns_to_match_set", column_set=profile.columns, exact_match=True)]
        for col in profile.text_columns:
            checks.append(g.expect("expect_column_value_lengths_to_be_between", column=col, min_value=1))
        if profile.label_column:
            checks += [g.expect("expect_column_values_to_not_be_null", column=profile.label_column),
                       g.expect("expect_column_distinct_values_to_contain_set", column=profile.label_column,
                                value_set=sorted(profile.labels))]
        return [g.Batch("blend", blended, checks)]

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, data: HopData, real, kept, blended) -> dict:
        profile = data.profile
        if not profile.label_column:
            return {"metric": None, "note": "no label column: no downstream classifier to train"}

        cap = data.spec.text.classifier_rows

        def xy(frame, name: str = "holdout"):
            # training sets on a bounded seeded sample at corpus scale (the same cap for real and blend,
            # so that neither wins by size); the holdout is scored whole
            if name != "holdout":
                frame = frame.iloc[sample_positions(len(frame), cap, data.seed(f"evaluate_rows_{name}"))]
            return record_texts(frame, profile), frame[profile.label_column].astype(str).tolist()

        result = evaluate_text(xy(real, "real"), xy(kept, "synthetic"), xy(blended, "blend"), xy(data.holdout),
                               seed=data.seed("evaluate"))
        result["trained_on_at_most"] = cap
        if data.spec.targets.targeted:  # per label and slice, against class weights on the same records and holdout
            declared = [s for s in from_json(data.storage.read_json(data.uri("targets_uri")))
                        if s.why.get("rule") != "rebalance"]
            result["slices"] = evaluate_text_slices(xy(real, "real"), xy(blended, "blend"), xy(data.holdout), data.holdout,
                                                    profile.label_column, declared, seed=data.seed("evaluate_slices"),
                                                    resamples=data.spec.gates.bootstrap_resamples)
        return result

    def monitor_input(self, data: HopData, real, kept, evaluation) -> MonitorInput:
        kept_full = data.frame("kept_uri")
        # `real` is the training set (data.train): its counts were taken once for the run, at verification
        return MonitorInput(real, data_columns(kept_full), data.profile,
                            {"tstr": evaluation.get("tstr"), "real_counts": self._real_counts(data)},
                            holdout=data.holdout, embeddings={"synthetic": self._kept_embeddings(data, kept_full, "diversity")})

    # --- report ----------------------------------------------------------------------------------
    def summary_figures(self, verification: dict) -> dict[str, Any]:
        return {k: verification.get(k) for k in ("memorised_share", "contaminated_share", "detection_auc",
                                                  "frechet_distance", "distinct_2", "vocab_ratio")}

    def report_sections(self, data: HopData, real, synth, published_ids) -> list[tuple[str, str]]:
        from ..report import slice_table_section
        from .report import PROJECTION_POINTS, text_sections

        profile = data.profile
        real_texts, synth_texts = record_texts(real, profile), record_texts(synth, profile)

        def sample(n: int) -> np.ndarray:  # a fixed sample, so the same texts give the same (cached) vectors
            return np.sort(np.random.default_rng(0).permutation(n)[:PROJECTION_POINTS])

        # the real points come from verification's embedded sample (a million real texts are never all embedded)
        embedded_real = self._real_sample(data, real_texts)
        real_sample = [real_texts[i] for i in embedded_real]
        real_rows, synth_rows = sample(len(real_sample)), sample(len(synth_texts))
        evaluation = data.storage.read_json(data.uri("evaluation_uri")) if "evaluation_uri" in data.state else {}
        per_slice = [("Per label and slice, against class weights", slice_table_section(evaluation["slices"]))] \
            if evaluation.get("slices") else []
        return per_slice + text_sections(
            real=real, synth=synth, profile=profile, real_texts=real_texts, synth_texts=synth_texts,
            # the real training set was embedded in verification; the published synthetic sample may
            # include rows carried from earlier versions, so it is embedded (and cached) as a set
            real_emb=cached_embeddings(data, real_sample, "fidelity")[real_rows],
            synth_emb=cached_embeddings(data, [synth_texts[i] for i in synth_rows], "fidelity"),
            checks=data.frame("checks_uri"), verification=data.storage.read_json(data.uri("verification_uri")),
            dropped=data.frame("dropped_uri"), seed=data.seed("report"),
            real_counts=self._real_counts(data))  # `real` is the training set (data.train): counted once
