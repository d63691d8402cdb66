"""Optional rerankers, named by URI like embedders: ``ce:NAME_OR_PATH`` is a
sentence-transformers ``CrossEncoder`` (a sequence-classification model scoring a
(query, passage) pair), loaded from a local folder or the Hub cache, safetensors only.

A reranker reads every (question, window) pair of the first ``rerank_pool`` hits, so it
costs one model call per hit: precise, slow on a CPU, and off unless the user names one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from retrieval.embedders import _device
from retrieval.errors import RetrievalError


class Reranker(Protocol):
    uri: str

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray: ...


_REGISTRY: dict[str, Callable[[str], Reranker]] = {}


def register_reranker(prefix: str, factory: Callable[[str], Reranker]) -> None:
    """Make ``PREFIX:rest`` URIs build rerankers with ``factory(rest)``."""
    _REGISTRY[prefix] = factory


def known_prefixes() -> list[str]:
    return sorted(_REGISTRY)


def check_reranker_uri(uri: str) -> None:
    """A RetrievalError naming the known prefixes unless ``uri`` has one."""
    prefix, sep, rest = uri.partition(":")
    if not sep or not rest or prefix not in _REGISTRY:
        raise RetrievalError(f"unknown reranker '{uri}' (known prefixes: "
                             f"{', '.join(p + ':' for p in sorted(_REGISTRY))})")


def get_reranker(uri: str) -> Reranker:
    check_reranker_uri(uri)
    prefix, _, rest = uri.partition(":")
    return _REGISTRY[prefix](rest)


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder``; higher score = more relevant."""

    batch_size = 32

    def __init__(self, name: str) -> None:
        from sentence_transformers import CrossEncoder

        self.uri = f"ce:{name}"
        if os.path.isdir(name):  # a local model: never reach for the network at load time
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = CrossEncoder(name, device=_device(), trust_remote_code=False,
                                      model_kwargs={"use_safetensors": True})
        except (OSError, ValueError) as e:
            raise RetrievalError(f"cannot load reranker {self.uri}: {e}") from e

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        out = np.asarray(self.model.predict([(query, t) for t in texts], batch_size=self.batch_size,
                                            show_progress_bar=False, convert_to_numpy=True),
                         np.float32)
        return out.reshape(len(texts), -1)[:, -1]  # one logit, or the last class ("relevant")


register_reranker("ce", CrossEncoderReranker)
