"""Retrieval metrics: recall@k, MRR@10 and nDCG@10 over a gold set.

A hit is relevant when its chunk is gold evidence, or when its text contains a gold answer
as whole words (SQuAD normalisation; only the first ``ANSWER_PREFIX`` characters, cut at a
word, since answers are often whole sentences that a window may cut at its far end). An
item that names its document (``doc``) only counts hits from a source ending with it, so a
short answer such as "42" is not found by chance elsewhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from textcore import normalize_answer

ANSWER_PREFIX = 80


@dataclass(frozen=True)
class EvalItem:
    question: str
    answers: list[str]
    chunk_ids: list[str] = field(default_factory=list)
    id: str = ""
    doc: str = ""
    # Not only factoid QA (loop scores these; retrieval metrics ignore them): ``task`` is
    # "qa", "classify" (answers: the gold label; labels: the allowed ones) or "extract"
    # (fields: the gold key -> value); ``format``, a spec every answer must follow
    # (generators.formats).
    task: str = "qa"
    labels: list[str] = field(default_factory=list)
    fields: dict | None = None
    format: dict | None = None

    def to_row(self) -> dict:
        """The item as a gold JSONL row (what ``load_eval_set`` reads back)."""
        row = {"id": self.id, "question": self.question, "answers": self.answers,
               "chunk_ids": self.chunk_ids, "doc": self.doc}
        if self.task != "qa":
            row["task"] = self.task
        for key in ("labels", "fields", "format"):
            if getattr(self, key):
                row[key] = getattr(self, key)
        return row


def is_relevant(item: EvalItem, chunk_id: str, text: str, source: str = "") -> bool:
    return _relevant(item, chunk_id, f" {normalize_answer(text)} ", source)


def _relevant(item: EvalItem, chunk_id: str, padded: str, source: str) -> bool:
    if chunk_id in item.chunk_ids:
        return True
    if item.doc and not _same_doc(source, item.doc):
        return False
    return any(a and f" {a} " in padded for a in _gold_answers(item))


def _same_doc(source: str, doc: str) -> bool:
    return source == doc or source.endswith("/" + doc.lstrip("/"))


def _gold_answers(item: EvalItem) -> list[str]:
    out = []
    for answer in item.answers:
        words, size = [], 0
        for w in normalize_answer(answer).split():
            if words and size + len(w) + 1 > ANSWER_PREFIX:
                break
            words.append(w)
            size += len(w) + 1
        out.append(" ".join(words))
    return out


def recall_at_k(rel: Sequence[bool], k: int) -> float:
    return float(any(rel[:k]))


def mrr_at_k(rel: Sequence[bool], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, r in enumerate(rel[:k]) if r), 0.0)


def ndcg_at_k(rel: Sequence[bool], n_relevant: int, k: int = 10) -> float:
    """Binary-gain nDCG; the ideal ranking puts ``n_relevant`` relevant items first (or as
    many as were retrieved: windows can hold an answer that no single chunk does)."""
    dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(rel[:k]) if r)
    n = max(n_relevant, sum(map(bool, rel[:k])), 1)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, n)))
    return dcg / ideal


Search = Callable[[str, int], list]  # (query, k) -> hits with .chunk_id and .text


@dataclass
class MethodScores:
    figures: dict[str, float]
    words_per_question: float
    ms_per_query: float


def evaluate(search: Search, items: Sequence[EvalItem], ks: Sequence[int],
             n_relevant: Callable[[EvalItem], int], *, budget_k: int = 5,
             progress: Callable[[int, int], None] | None = None) -> MethodScores:
    """Score one method; ``n_relevant`` tells how many corpus chunks are gold for an item."""
    depth = max([*ks, 10])
    sums = {f"recall@{k}": 0.0 for k in ks} | {"mrr@10": 0.0, "ndcg@10": 0.0}
    words = 0
    t0 = time.perf_counter()
    for i, item in enumerate(items):
        hits = search(item.question, depth)
        rel = [is_relevant(item, h.chunk_id, h.text, h.source) for h in hits]
        for k in ks:
            sums[f"recall@{k}"] += recall_at_k(rel, k)
        sums["mrr@10"] += mrr_at_k(rel, 10)
        sums["ndcg@10"] += ndcg_at_k(rel, n_relevant(item), 10)
        words += sum(len(h.text.split()) for h in hits[:budget_k])
        if progress:
            progress(i + 1, len(items))
    n = max(len(items), 1)
    return MethodScores({k: round(v / n, 4) for k, v in sums.items()}, round(words / n, 1),
                        round(1000 * (time.perf_counter() - t0) / n, 2))


def gold_counter(chunks: Sequence[dict]) -> Callable[[EvalItem], int]:
    """How many corpus chunks are gold for an item (its chunk ids, or answer containment)."""
    padded = [(c["chunk_id"], f" {normalize_answer(c['text'])} ", c["source"]) for c in chunks]

    def count(item: EvalItem) -> int:
        return sum(_relevant(item, cid, text, src) for cid, text, src in padded)

    return count
