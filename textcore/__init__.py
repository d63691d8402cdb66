"""Text conventions that generators, retrieval and loop must agree on, kept in one place:
the SQuAD answer normaliser and the layout of a question asked after a context block.

A leaf: it imports nothing of the project, so both libraries (which never import each other
or ``loop``) can use it.
"""

from __future__ import annotations

import re
import string

__all__ = ["QUESTION_MARK", "normalize_answer", "prompt_with_context"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)

QUESTION_MARK = "Question:"  # where a context-showing prompt's question starts


def normalize_answer(text: str, *, articles: bool = True) -> str:
    """SQuAD v1.1 ``normalize_answer``: lower-case, no punctuation, no articles (a/an/the as
    whole words), single spaces. ``articles=False`` keeps the articles: the key generators'
    filters compare rows by (exact duplicates, n-gram overlap, grounding), as they always
    have, so a dataset filters as before."""
    text = text.lower().translate(_PUNCT)
    if articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def prompt_with_context(context: str, question: str) -> str:
    """A question asked after its context: the context block, a blank line, ``Question:``.

    The one layout of a raft training row, a RAG setup's prompt and ``ask``; readers find
    the question again after the last ``QUESTION_MARK``.
    """
    return f"{context}\n\n{QUESTION_MARK} {question}"
