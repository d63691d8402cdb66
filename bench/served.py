"""Answers per second of a served setup against the in-process one, in the same run.

    .venv/bin/python bench/served.py [--questions 48] [--setups base,rag] [--workspace DIR]

The bundled example is ingested and indexed; ``smollm2`` answers the first N questions of the
bundled gold set as each setup, first in-process (the eval's own batched ``generate``, at
``batch_size``), then through ``eval --engine transformers`` (``transformers serve`` started
on the same weights, ``serve_concurrency`` requests in flight = the eval's batch size), fp32
on both sides. Answering time only: the model load and the engine's start are reported apart.
Also reports how many answers are equal (greedy on both sides: all of them, on one machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--questions", type=int, default=48)
    p.add_argument("--setups", default="base,rag")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workspace", type=Path, default=Path("bench/out/served"))
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import load_from_disk

    from loop.eval.stage import EvalConfig, evaluate
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    setups = args.setups.split(",")
    common = {"student": "smollm2", "setups": setups, "max_questions": args.questions,
              "n_boot": 200, "dtype": "fp32", "batch_size": args.batch_size}
    gold = ROOT / "examples" / "marrowick-eval.jsonl"
    out = {}
    with Workspace(args.workspace) as ws:
        ingest(ws, [ROOT / "examples" / "marrowick"])
        build_index(ws, IndexConfig())
        runs = {}
        for how, extra in (("in_process", {}), ("served", {"engine": "transformers",
                                                          "serve_concurrency": args.batch_size})):
            t = time.perf_counter()
            res = evaluate(ws, EvalConfig(**common, **extra), eval_set=gold)
            wall = time.perf_counter() - t
            preds = load_from_disk(str(res.path / "predictions")).to_list()
            runs[how] = preds
            per_setup = {}
            for s in setups:
                rows = [x for x in preds if x["setup"] == s]
                # in-process: each answer carries its batch's time / batch size; served: the
                # setup's wall time / its answers (the requests overlap)
                ms = statistics.fmean(x["latency_ms"] for x in rows)
                per_setup[s] = {"answers": len(rows), "answers_per_s": round(1000 / ms, 3),
                                "f1": round(res.setups[s]["f1"]["mean"], 4)}
            answering = sum(r["answers"] / r["answers_per_s"] for r in per_setup.values())
            out[how] = {"wall_s": round(wall, 1), "answering_s": round(answering, 1),
                        "load_or_start_s": round(wall - answering, 1), "setups": per_setup}
    a = {(x["setup"], x["eval_id"]): x["raw"] for x in runs["in_process"]}
    b = {(x["setup"], x["eval_id"]): x["raw"] for x in runs["served"]}
    out["equal_answers"] = f"{sum(a[k] == b.get(k) for k in a)} of {len(a)}"
    out["served_vs_in_process_answers_per_s"] = {
        s: round(out["served"]["setups"][s]["answers_per_s"]
                 / out["in_process"]["setups"][s]["answers_per_s"], 3) for s in setups}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
