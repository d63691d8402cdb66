"""Retrieval: embedders, FAISS and BM25 indexes, hybrid fusion, the retriever and the RAG
prompt block. Works on plain chunk dicts; never imports ``loop``, ``generators`` or a UI."""

from retrieval.embedders import (
    DEFAULT_EMBEDDER,
    Embedder,
    get_embedder,
    known_prefixes,
    register_embedder,
)
from retrieval.errors import IndexMismatchError, RetrievalError, UnknownEmbedderError
from retrieval.evalset import load_eval_set
from retrieval.index import BuildStats, Hit, RetrievalIndex, Settings
from retrieval.methods import method_names, ranker_names, register_method, register_ranker
from retrieval.metrics import EvalItem, evaluate, gold_counter
from retrieval.rerankers import Reranker, get_reranker, register_reranker

__all__ = [
    "DEFAULT_EMBEDDER", "BuildStats", "Embedder", "EvalItem", "Hit", "IndexMismatchError",
    "Reranker", "RetrievalError", "RetrievalIndex", "Settings", "UnknownEmbedderError",
    "evaluate", "get_embedder", "get_reranker", "gold_counter", "known_prefixes",
    "load_eval_set", "method_names", "ranker_names", "register_embedder",
    "register_method", "register_ranker", "register_reranker",
]
