"""The knowledge recipe against the baselines it must beat, on one corpus and one question set.

    .venv/bin/python bench/knowledge.py [--method lora|full] [--exposures 8] [--paraphrases 3] [--replay 0.1]
        [--replay-written 256] [--replay-share 0.4] [--adapter-scale 0.7]
        [--pretrain EPOCHS] [--docs examples/marrowick --gold examples/marrowick-eval.jsonl] [--workspace DIR]

Runs ``synthloop run``'s pipeline in-process: the rules teacher's ``knowledge`` + ``raft``
data, ``smollm2`` tuned by exposures per fact, every setup scored on the whole gold set.
Prints (JSON) what issue 23 asks for, each beside its baseline from the same run:

- the coverage ceiling (share of gold answers trained as answers);
- the lead metric, and every setup's answer_f1 / F1 / contains with 95% intervals;
- tuned - base and combined - rag (paired, Holm-corrected), and the share of the
  base -> rag gap that tuned closes on the lead metric;
- forgetting: general-question F1 and perplexity, tuned against base;
- training tokens/s and peak memory, and the time per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# run as a script, bench/ is sys.path[0], and bench/retrieval.py would shadow the package
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def configs(args: argparse.Namespace):
    from loop.pipeline import demo_configs

    cfgs = demo_configs()
    cfgs.generate = cfgs.generate.model_copy(update={"paraphrases": args.paraphrases})
    lr = args.lr or (1e-3 if args.method == "lora" else 1e-4)
    cfgs.train = cfgs.train.model_copy(update={"method": args.method, "exposures": args.exposures,
                                               "lr": lr})
    if args.replay is not None:
        cfgs.train = cfgs.train.model_copy(update={"replay": args.replay})
    if args.replay_written is not None:
        cfgs.train = cfgs.train.model_copy(update={"replay_written": args.replay_written})
    if args.replay_share is not None:
        cfgs.train = cfgs.train.model_copy(update={"replay_share": args.replay_share})
    if args.adapter_scale is not None:  # tuned's (run_pipeline keeps combined's unset)
        cfgs.train = cfgs.train.model_copy(update={"adapter_scale": args.adapter_scale})
    if args.method == "full":  # the combined adapter stays LoRA (it starts from the student)
        cfgs.combined = {**cfgs.combined, "method": "lora", "init_from": None}
    if args.pretrain:  # continued pretraining on the chunks and their rewrites, then the SFT
        cfgs.generate = cfgs.generate.model_copy(
            update={"tasks": [*cfgs.generate.tasks, "rewrite"]})
        cfgs.train = cfgs.train.model_copy(update={"method": "pretrain", "then_sft": True,
                                                   "pretrain_epochs": args.pretrain})
    cfgs.eval = cfgs.eval.model_copy(update={"max_questions": args.max_questions,
                                             "setups": ["base", "rag", "tuned", "tuned+rag",
                                                        "combined"]})
    return cfgs


def _diff(diffs: list[dict], a: str, b: str, metric: str) -> dict | None:
    for d in diffs:
        if d["metric"] == metric and {d["a"], d["b"]} == {a, b}:
            sign = 1 if d["a"] == a else -1
            lo, hi = sorted((sign * d["ci_low"], sign * d["ci_high"]))
            return {"mean": round(sign * d["mean"], 4), "ci": [round(lo, 4), round(hi, 4)],
                    "significant": d["significant"]}
    return None


def options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The recipe's knobs, shared with bench/covidqa.py."""
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--exposures", type=float, default=8)
    p.add_argument("--paraphrases", type=int, default=3)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--replay", type=float, default=None,
                   help="share of replay rows against forgetting (unset: the train default)")
    p.add_argument("--replay-written", type=int, default=256, metavar="N",
                   help="general questions the student writes for its replay rows (the demo writes 64)")
    p.add_argument("--replay-share", type=float, default=None, metavar="SHARE",
                   help="the share of the loss the replay rows carry (unset: the train default)")
    p.add_argument("--adapter-scale", type=float, default=None, metavar="S",
                   help="save the tuned LoRA update scaled by S (WiSE-FT; bench/wiseft.py reads "
                        "several scales of one training)")
    p.add_argument("--pretrain", type=float, default=None, metavar="EPOCHS",
                   help="first continued pretraining (LoRA, merged) for EPOCHS passes over the "
                        "chunks and their rewrites, then the SFT on the pretrained model")
    p.add_argument("--max-questions", type=int, default=None, help="score only the first N")
    return p


def main() -> None:
    p = options(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    p.add_argument("--docs", type=Path, default=ROOT / "examples" / "marrowick")
    p.add_argument("--gold", type=Path, default=ROOT / "examples" / "marrowick-eval.jsonl")
    p.add_argument("--workspace", type=Path, default=Path("bench/out/knowledge"))
    print(json.dumps(bench(p.parse_args()), indent=2))


def bench(args: argparse.Namespace) -> dict:
    """Run the pipeline on ``args.docs`` / ``args.gold`` and return the figures."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from loop.eval.stage import EvalResult  # noqa: F401  (import errors before any work)
    from loop.pipeline import run_pipeline
    from loop.render import RichSink
    from loop.workspace import Workspace

    cfgs = configs(args)
    t = time.perf_counter()
    from rich.console import Console

    sink = RichSink(Console(stderr=True))
    with Workspace(args.workspace) as ws:
        try:
            out = run_pipeline(ws, [args.docs], cfgs, eval_set=args.gold, emit=sink)
        finally:
            sink.close()
        models = {k: ws.ledger.model(v) for k, v in (out["models"] or {}).items() if v}
        base_rows = {r["student"]: ws.ledger.model(r["student"].removeprefix("model:"))
                     for r in models.values() if r["student"].startswith("model:")}
        scores = json.loads((Path(out["report"]["json"])).read_text())
    wall = time.perf_counter() - t
    lead = out["lead_metric"]
    table = out["setups"]

    def cell(setup: str, m: str) -> list[float] | None:
        c = table.get(setup, {}).get(m)
        return [round(c[x], 4) for x in ("mean", "ci_low", "ci_high")] if c else None

    gap = None
    if all(s in table and lead in table[s] for s in ("base", "rag", "tuned")):
        b, r, tu = (table[s][lead]["mean"] for s in ("base", "rag", "tuned"))
        gap = round((tu - b) / (r - b), 3) if r != b else None
    train_meta = {}
    for setup, row in models.items():
        meta = json.loads((Path(row["path"]) / "synthloop.json").read_text())
        train_meta[setup] = {"steps": meta["steps"], "tokens_per_s": meta.get("tokens_per_s"),
                             "peak_gib": round((meta.get("memory") or {}).get("peak_bytes", 0) / 2**30, 2),
                             "val_loss": meta.get("val_loss"), "notes": meta.get("notes")}
        if row["student"].startswith("model:") and "pretrain" not in train_meta:
            pre = json.loads((Path(base_rows[row["student"]]["path"]) / "synthloop.json").read_text())
            # pretrain then SFT: the pretraining run the SFT sits on
            train_meta["pretrain"] = {k: pre.get(k) for k in ("steps", "tokens_per_s", "loss_first",
                                                              "loss_last", "val_loss")}
    return {
        "settings": {"method": args.method, "exposures": args.exposures, "pretrain": args.pretrain,
                     "paraphrases": args.paraphrases, "lr": cfgs.train.lr,
                     "replay": cfgs.train.replay, "replay_share": cfgs.train.replay_share,
                     "adapter_scale": cfgs.train.adapter_scale},
        "wall_s": round(wall, 1), "stage_s": out["stage_seconds"],
        "coverage": out["coverage"], "lead_metric": lead,
        "answer_words": scores.get("answer_words"),
        "scores": {s: {m: cell(s, m) for m in ("answer_f1", "f1", "contains", "em")} for s in table},
        "tuned_minus_base": _diff(scores["differences"], "tuned", "base", lead),
        "rag_minus_base": _diff(scores["differences"], "rag", "base", lead),
        "combined_minus_rag": _diff(scores["differences"], "combined", "rag", lead),
        "gap_closed_by_tuned": gap,
        "forgetting": (scores.get("probes") or {}).get("forgetting"),
        "training": train_meta, "verdict": out["verdict"],
    }


if __name__ == "__main__":
    main()
