"""Fit a context-carrying row (raft) into ``max_length`` without losing its answer.

A raft row's user turn is the RAG block (``retrieval.prompt.build_context``: a header, then
numbered ``<document>`` passages) followed by ``\\n\\nQuestion: ...`` (the layout of
``textcore.prompt_with_context``); its assistant turn is the answer. Cut at the end, a row
longer than ``max_length`` loses the answer (on 8 scientific papers, 70 of 137 training
rows kept no answer token). Here the row is shortened where it can spare text: whole
distractor passages first (the last shown first), never the oracle when it can be
identified; then the text of what is left, in a window around the answer when the passage
holds it. The question and the answer are never touched; a row that is
still too long after that is left to the plain cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generators.filters import content_words
from textcore import QUESTION_MARK

_DOC = re.compile(r'<document index="\d+"(?P<attrs>[^>]*)>\n(?P<text>.*?)\n</document>', re.S)
_ANSWER = "Answer:"  # raft answers end "reasoning\nAnswer: X": X is what the passage holds
ELLIPSIS = "..."


@dataclass
class Block:
    """A user turn split into the RAG block's parts: ``head`` (the header, up to the first
    passage), the passages (``attrs`` of the opening tag, ``text``), and ``tail`` (from the
    blank line before ``Question:`` on)."""

    head: str
    docs: list[tuple[str, str]]
    tail: str

    def render(self, docs: list[tuple[str, str]] | None = None) -> str:
        docs = self.docs if docs is None else docs
        parts = [f'<document index="{n}"{attrs}>\n{text}\n</document>'
                 for n, (attrs, text) in enumerate(docs, 1)]
        body = "\n\n".join(parts)
        return (self.head + body if parts else self.head.rstrip()) + self.tail


def parse_block(content: str) -> Block | None:
    """The parts of a RAG-block user turn, or None when the turn is not laid out that way."""
    cut = content.rfind("\n\n" + QUESTION_MARK)
    if cut < 0:
        return None
    block, tail = content[:cut], content[cut:]
    matches = list(_DOC.finditer(block))
    if not matches:
        return None
    # the passages must tile the block after the header: nothing but blank lines between
    gaps = [block[a.end():b.start()] for a, b in zip(matches, matches[1:], strict=False)]
    if any(g != "\n\n" for g in gaps) or block[matches[-1].end():]:
        return None
    return Block(block[:matches[0].start()], [(m["attrs"], m["text"]) for m in matches], tail)


def _norm(text: str) -> str:
    return " ".join(text.replace("</document", "<\\/document").split()).lower()


def oracle_index(block: Block, answer: str, oracle_text: str | None) -> int | None:
    """Which passage is the oracle chunk: the one whose text is the oracle chunk's (from the
    corpus, when given), else the one holding most of the answer's words (then the
    question's); None when no passage shares a word with them (the oracle was left out)."""
    if oracle_text:
        want = _norm(oracle_text)
        for i, (_, text) in enumerate(block.docs):
            shown = _norm(text).removesuffix(ELLIPSIS).strip()
            if shown and want.startswith(shown[:200]):
                return i
    final = answer.rsplit(_ANSWER, 1)[-1]
    goals = (set(content_words(final)), set(content_words(block.tail)))

    def score(i: int) -> tuple[float, ...]:
        words = set(content_words(block.docs[i][1]))
        return tuple(len(g & words) / max(len(g), 1) for g in goals)

    best = max(range(len(block.docs)), key=score)
    return best if any(score(best)) else None


def _window(text: str, answer: str, words: int) -> str:
    """``words`` words of ``text``, around the answer when the text holds it, else its start."""
    tokens = text.split()
    if words >= len(tokens):
        return text
    final = answer.rsplit(_ANSWER, 1)[-1].strip()
    at = text.lower().find(final.lower()) if final else -1
    if at < 0:
        start = 0
    else:
        first, span = len(text[:at].split()), len(final.split())
        start = max(0, min(first - max(words - span, 0) // 2, len(tokens) - words))
    kept = " ".join(tokens[start:start + words])
    return (f"{ELLIPSIS} " if start else "") + kept + (f" {ELLIPSIS}" if start + words < len(tokens) else "")


def fit_row(messages: list[dict[str, str]], max_length: int,
            tokenize: Callable[[list[dict[str, str]]], dict[str, Any]],
            count: Callable[[str], int], oracle_text: str | None = None,
            ) -> tuple[dict[str, Any], bool] | None:
    """The row's tokens made to fit ``max_length`` by shortening its context, and whether
    anything was shortened; None when it is not a RAG-block row (the caller cuts it).

    ``tokenize`` turns messages into ``input_ids``/``labels``; ``count`` estimates one
    passage's tokens (so that passages are dropped in one pass, then checked)."""
    turn = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    block = parse_block(messages[turn]["content"]) if turn is not None else None
    if block is None:
        return None
    answer = messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""

    def encode(docs: list[tuple[str, str]]) -> dict[str, Any]:
        msgs = list(messages)
        msgs[turn] = {"role": "user", "content": block.render(docs)}
        return tokenize(msgs)

    out = encode(block.docs)
    if len(out["input_ids"]) <= max_length:
        return out, False
    oracle = oracle_index(block, answer, oracle_text)
    protected = oracle if oracle is not None else 0  # unknown: the first passage stays
    kept = list(range(len(block.docs)))
    pending = 0  # estimated tokens of passages dropped since the last encoding
    for i in reversed(kept[:]):  # distractors, the last shown first
        excess = len(out["input_ids"]) - max_length
        if excess <= 0:
            break
        if i == protected:
            continue
        kept.remove(i)
        pending += count(block.docs[i][1])
        if pending >= excess:
            out, pending = encode([block.docs[j] for j in kept]), 0
    if pending:
        out = encode([block.docs[j] for j in kept])
    if len(out["input_ids"]) <= max_length:
        return out, True
    # one passage left and still too long: the most words of it that fit (binary search)
    attrs, text = block.docs[protected]
    lo, hi, best = 0, len(text.split()) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        trial = encode([(attrs, _window(text, answer, mid))]) if mid else encode([])
        if len(trial["input_ids"]) <= max_length:
            lo, best = mid + 1, trial
        else:
            hi = mid - 1
    return (best if best is not None else encode([])), True


def oracle_texts(ws: Any, corpus_id: str | None, *splits: Any) -> dict[str, str] | None:
    """Each context row's oracle chunk (its first chunk id) -> that chunk's text in
    ``corpus_id``, so a row fitted into max_length keeps its oracle passage; None without a
    corpus or such rows."""
    from generators.tasks import task_names
    from loop.corpus import load_corpus

    context = set(task_names(uses_context=True))
    wanted = {ids[0] for ds in splits if ds is not None and "chunk_ids" in ds.column_names
              for task, ids in zip(ds["task"], ds["chunk_ids"], strict=True) if ids and task in context}
    if not wanted or not corpus_id:
        return None
    chunks = load_corpus(ws, corpus_id).select_columns(["chunk_id", "text"])
    chunks = chunks.filter(lambda c: c in wanted, input_columns="chunk_id")
    return dict(zip(chunks["chunk_id"], chunks["text"], strict=True))
