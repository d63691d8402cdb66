"""The dev/test split of a gold set for ``run --iterations``: targeted rounds pick their
chunks from the questions the tuned setups miss on the ``dev`` part, and every round is
scored on the ``test`` part, whose documents the targets never come from.

The split is by document (the sources a question's evidence lies in), seeded, and about
half the questions a side; a question whose evidence cannot be placed is a document of its
own. A gold set whose questions all come from one document cannot be split this way.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loop.errors import InputError
from textcore import normalize_answer


@dataclass
class GoldSplit:
    dev: list[Any]  # retrieval.metrics.EvalItem
    test: list[Any]
    seed: int
    dev_sources: set[str] = field(default_factory=set)
    test_sources: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        return {"dev": len(self.dev), "test": len(self.test), "by": "document", "seed": self.seed,
                "documents": {"dev": len(self.dev_sources), "test": len(self.test_sources)}}

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """Both parts as gold JSONL files (``STEM.dev.jsonl``, ``STEM.test.jsonl``)."""
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for part, items in (("dev", self.dev), ("test", self.test)):
            path = folder / f"{stem}.{part}.jsonl"
            path.write_text("".join(json.dumps(it.to_row(), ensure_ascii=False) + "\n"
                                    for it in items), encoding="utf-8")
            out.append(path)
        return out[0], out[1]


def split_by_document(items: list[Any], chunks: list[dict[str, Any]], seed: int = 0) -> GoldSplit:
    """Split ``items`` so that no document holds evidence of both a dev and a test question.

    ``chunks`` are the corpus's (``chunk_id``, ``source``, ``text``): a question's documents
    are its gold chunks' sources, else the sources its ``doc`` names, else those holding a
    gold answer. Questions that share a document stay together (union-find over sources)."""
    source_of = {c["chunk_id"]: c["source"] for c in chunks}
    sources = sorted(set(source_of.values()))
    docs = [_documents(it, source_of, sources, chunks) or {f"question:{it.id or it.question}"}
            for it in items]
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ds in docs:  # questions sharing a document form one group
        first, *rest = sorted(ds)
        for d in rest:
            parent[root(d)] = root(first)
    groups: dict[str, list[int]] = {}
    for i, ds in enumerate(docs):
        groups.setdefault(root(min(ds)), []).append(i)
    if len(groups) < 2:
        raise InputError(
            f"--iterations needs a gold set whose questions come from two or more documents, "
            f"to keep the documents that pick the targets apart from the ones scored; these "
            f"{len(items)} questions all come from one",
            hint="add questions about other documents, or run one iteration")
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    dev: list[int] = []
    test: list[int] = []
    for k in keys:  # the side with fewer questions takes the next group
        (dev if len(dev) <= len(test) else test).extend(groups[k])
    return GoldSplit([items[i] for i in sorted(dev)], [items[i] for i in sorted(test)], seed,
                     {d for i in dev for d in docs[i]}, {d for i in test for d in docs[i]})


def split_id(items: list[Any], seed: int) -> str:
    blob = json.dumps([[it.id, it.question] for it in items] + [seed]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _documents(item: Any, source_of: dict[str, str], sources: list[str],
               chunks: list[dict[str, Any]]) -> set[str]:
    found = {source_of[c] for c in item.chunk_ids if c in source_of}
    if found:
        return found
    if item.doc:
        named = {s for s in sources if s == item.doc or s.endswith("/" + item.doc)}
        if named:
            return named
    if getattr(item, "task", "qa") != "qa":
        return set()  # a label or a field value is not evidence of a document
    keys = [normalize_answer(a)[:80] for a in item.answers if normalize_answer(a)]
    return {c["source"] for c in chunks if keys and any(k in normalize_answer(c["text"]) for k in keys)}
