"""Retrieval quality at a fixed budget (top 5 hits, about 1,000 words), per method.

    .venv/bin/synthloop ingest /work/shared/data/covidqa-dev/covidqa-dev.json -w /tmp/covid-ws
    .venv/bin/synthloop ingest examples/marrowick -w /tmp/marrowick-ws
    .venv/bin/python bench/retrieval_quality.py \
        covid=/tmp/covid-ws:/work/shared/data/covidqa-dev/covidqa-dev.json \
        marrowick=/tmp/marrowick-ws:examples/marrowick-eval.jsonl [--grid] [--as-given]

Each dataset is ``name=WORKSPACE:EVAL_SET``. The index is built once per workspace (cached
under WORKSPACE/bench-index) and every fusion setting below is scored on it; ``--grid``
adds the settings the default was chosen from; ``--as-given`` also scores SQuAD answers as the
file holds them (not widened to whole words, matched in any document).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datasets import load_from_disk

from retrieval import (
    EvalItem,
    RetrievalIndex,
    Settings,
    evaluate,
    gold_counter,
    load_eval_set,
)

BASE = Settings()
ALL4 = {"bm25": 1.0, "dense": 1.0, "bm25_chunk": 1.0, "dense_chunk": 1.0}
GRID = {
    "rrf-equal-k60 (chunks only)": replace(BASE, fusion="rrf", rrf_k=60,
                                           weights={"bm25_chunk": 1.0, "dense_chunk": 1.0}),
    "rrf-equal-k60 (units only)": replace(BASE, fusion="rrf", rrf_k=60,
                                          weights={"bm25": 1.0, "dense": 1.0}),
    "rrf-all4-k60": replace(BASE, fusion="rrf", rrf_k=60, weights=ALL4),
    "rrf-all4-k10": replace(BASE, fusion="rrf", rrf_k=10, weights=ALL4),
    "zscore-units": replace(BASE, fusion="zscore", weights={"bm25": 1.0, "dense": 1.0}),
    "centred windows, no coverage (the previous default)": replace(
        BASE, scored_windows=False, coverage_weight=0.0),
    "scored windows, no coverage": replace(BASE, coverage_weight=0.0),
    "centred windows + coverage": replace(BASE, scored_windows=False),
    "coverage 0.25": replace(BASE, coverage_weight=0.25),
    "coverage 1": replace(BASE, coverage_weight=1.0),
    "rerank pool 40": replace(BASE, rerank_pool=40),
    "whole chunks (no window)": replace(BASE, window_words=0),
    "windows may overlap": replace(BASE, distinct_windows=False),
    "+ bm25_local 1": replace(BASE, weights={**ALL4, "bm25_local": 1.0}),
    "dense_chunk 0.5": replace(BASE, weights={**ALL4, "dense_chunk": 0.5}),
}


def corpus_index(ws: Path) -> RetrievalIndex:
    meta = ws / "synthloop.db"
    assert meta.exists(), f"{ws} is not a workspace: ingest first"
    corpus = max((ws / "corpus").iterdir(), key=lambda p: p.stat().st_mtime)
    chunks = load_from_disk(str(corpus / "data")).to_list()
    cache = ws / "bench-index" / corpus.name
    if (cache / "manifest.json").exists():
        return RetrievalIndex.load(cache)
    t0 = time.perf_counter()
    index = RetrievalIndex.build(chunks, BASE)
    index.save(cache)
    print(f"  built {len(chunks)} chunks / {index.stats.units} units in "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return index


def score(index: RetrievalIndex, items, settings: Settings, methods) -> dict:
    index.settings = settings
    index.prepare_queries([it.question for it in items])
    count = gold_counter(index.chunks)
    out = {}
    for m in methods:
        s = evaluate(lambda q, k, m=m: index.search(q, k, m), items, [1, 5, 10, 20], count)
        out[m] = {**s.figures, "words@5": s.words_per_question, "ms/query": s.ms_per_query}
    return out


def as_given(eval_set: str, items: list) -> list:
    """The SQuAD answers exactly as the file holds them, matched in any document: how the
    figures were measured before answers cut inside a word were widened."""
    if not eval_set.endswith(".json"):
        return items
    data = json.loads(Path(eval_set).read_text())
    raw = [EvalItem(qa["question"], [a["text"] for a in qa["answers"]], [], str(qa.get("id", "")))
           for art in data["data"] for p in art["paragraphs"] for qa in p["qas"] if qa["answers"]]
    return raw


def main(argv: list[str]) -> None:
    grid = "--grid" in argv
    results = {}
    for spec in (a for a in argv if "=" in a):
        name, rest = spec.split("=", 1)
        ws, eval_set = rest.split(":", 1)
        index = corpus_index(Path(ws))
        items = load_eval_set(eval_set)
        print(f"{name}: {len(items)} questions, {len(index.chunks)} chunks", file=sys.stderr)
        res = {"default": score(index, items, BASE, ["bm25", "dense", "hybrid"])}
        if "--as-given" in argv:
            raw = as_given(eval_set, items)
            res["answers as given"] = score(index, raw, BASE, ["bm25", "dense", "hybrid"])
            res["answers as given, previous default"] = score(
                index, raw, GRID["centred windows, no coverage (the previous default)"], ["hybrid"])
        for label, st in (GRID.items() if grid else []):
            res[label] = score(index, items, st, ["hybrid"])["hybrid"]
        results[name] = res
        print(json.dumps({name: res}, indent=1), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
