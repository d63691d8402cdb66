"""The tuned adapter scaled back toward the base model: learning against forgetting, one training.

    .venv/bin/python bench/wiseft.py --workspace DIR [--scales 0,0.6,0.8,1] [--gold FILE]
        [--rag-from BENCH.json]

WiSE-FT (Wortsman et al. 2022, arXiv 2109.01903) interpolates the weights of a fine-tuned
model with those of the model it started from and finds points that keep most of what tuning
taught while giving back most of what it cost. For a LoRA adapter the interpolation is a
scale on the adapter's update (``W + s * BA``): ``s = 0`` is the base model, ``s = 1`` the
tuned one. This loads the workspace's tuned adapter once and, for each scale, answers

- the gold set closed-book as the eval's ``tuned`` setup does (same messages, same
  answer cleaning, ``max_new_tokens``), scored by answer F1 (the lead metric);
- the forgetting probe's 100 general questions, scored by answer F1 as the eval does;

and prints each scale's two means with 95% intervals, its paired difference from scale 0
(the base model, answered by this same script), and the share of the base -> rag gap it
closes when ``--rag-from`` gives a bench/knowledge.py result with rag's score (issue 23:
"gap >= 50%" and "general-prompt score within 10% of base" in one run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def set_scale(peft_model, adapter: str, scale: float) -> int:
    """Scale every LoRA layer's update for ``adapter`` to ``scale`` times its trained size
    (PEFT's ``LoraLayer.set_scale``: ``scale * alpha / r``); returns the number of layers
    scaled (0 would mean the scale changed nothing)."""
    from peft.tuners.lora import LoraLayer

    layers = [m for m in peft_model.modules() if isinstance(m, LoraLayer) and adapter in m.scaling]
    for module in layers:
        module.set_scale(adapter, scale)
    return len(layers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--scales", default="0,0.6,0.8,1")
    p.add_argument("--gold", type=Path, default=ROOT / "examples" / "marrowick-eval.jsonl")
    p.add_argument("--rag-from", type=Path, default=None, metavar="BENCH_JSON",
                   help="a bench/knowledge.py output: rag's answer F1 for the gap share")
    p.add_argument("--max-new-tokens", type=int, default=24)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from generators.tasks.base import student_chat
    from generators.teachers.hf import generate_texts
    from loop.eval import metrics as M
    from loop.eval.answers import clean_answer, setup_messages
    from loop.eval.stage import EvalConfig, _Eval
    from loop.eval.stats import bootstrap_ci, paired_diff_ci
    from loop.handoff import current_inputs
    from loop.probes import general_questions
    from loop.workspace import Workspace

    scales = [float(s) for s in args.scales.split(",")]
    rag = None
    if args.rag_from:
        rag = json.loads(args.rag_from.read_text())["scores"]["rag"]["answer_f1"][0]
    general = general_questions()
    t0 = time.perf_counter()
    with Workspace(args.workspace) as ws:
        e = _Eval(ws, EvalConfig(max_new_tokens=args.max_new_tokens), lambda event: None,
                  current_inputs(ws))
        questions, _, _ = e._questions(args.gold)
        models = e._models()
        pool = e._pool(e._student_uri(models), {"tuned": models["tuned"]})
        rows: dict[float, dict] = {}
        with pool.use("tuned") as (model, tok):
            for s in scales:
                layers = set_scale(model, "tuned", s)
                t = time.perf_counter()
                gold_out = generate_texts(model, tok, [setup_messages(q, None, "tuned") for q in questions],
                                          max_new_tokens=args.max_new_tokens)
                said = [clean_answer(o.text) for o in gold_out]
                gen_out = generate_texts(model, tok, [student_chat([{"role": "user", "content": q["question"]}])
                                                      for q in general], max_new_tokens=args.max_new_tokens)
                rows[s] = {
                    "gold": [M.answer_f1(a, q.answers, q.question) for a, q in zip(said, questions, strict=True)],
                    "general": [M.answer_f1(clean_answer(o.text), q["answers"], q["question"])
                                for o, q in zip(gen_out, general, strict=True)],
                    "words": sum(len(a.split()) for a in said) / len(said), "layers": layers,
                    "seconds": round(time.perf_counter() - t, 1)}
                print(f"scale {s}: gold {sum(rows[s]['gold']) / len(questions):.4f} general "
                      f"{sum(rows[s]['general']) / len(general):.4f} ({rows[s]['seconds']} s)",
                      file=sys.stderr)
    ref = rows[min(scales)]
    out = {"questions": len(questions), "general_questions": len(general), "rag_answer_f1": rag,
           "wall_s": round(time.perf_counter() - t0, 1), "scales": {}}
    for s, r in rows.items():
        g, h = bootstrap_ci(r["gold"]).as_dict(), bootstrap_ci(r["general"]).as_dict()
        base_g, base_h = sum(ref["gold"]) / len(ref["gold"]), sum(ref["general"]) / len(ref["general"])
        row = {"gold_answer_f1": g, "general_answer_f1": h, "answer_words": round(r["words"], 2),
               "lora_layers_scaled": r["layers"], "seconds": r["seconds"]}
        if r is not ref:
            row["gold_minus_base"] = paired_diff_ci(r["gold"], ref["gold"]).as_dict()
            row["general_minus_base"] = paired_diff_ci(r["general"], ref["general"]).as_dict()
            row["general_relative"] = round(h["mean"] / base_h - 1, 4) if base_h else None
            if rag is not None and rag != base_g:
                row["gap_closed"] = round((g["mean"] - base_g) / (rag - base_g), 4)
        out["scales"][str(s)] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
