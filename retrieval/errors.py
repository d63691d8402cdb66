"""Errors of the retrieval library; ``loop`` turns them into its own at the edge."""

from __future__ import annotations


class RetrievalError(Exception):
    """Base of every retrieval error: one clear line for the user."""


class UnknownEmbedderError(RetrievalError):
    """An embedder URI names a prefix no registered backend knows."""


class IndexMismatchError(RetrievalError):
    """A persisted index does not fit the embedder, corpus or format it is used with."""
