"""The forgetting probe alone, on a workspace's current models: base against each tuned one.

    .venv/bin/python bench/forgetting.py --workspace DIR [--max-new-tokens 48]

Loads the base student with the workspace's tuned and combined adapters and answers the 100
general questions shipped with synthloop (loop/probes/general.jsonl) as the eval's
forgetting probe does, then prints each setup's perplexity on general text, F1, answer F1 and
contains, and each tuned setup's paired difference from base with its 95% interval. Used to
re-read a bench's forgetting without re-running its evaluation (issue 23: "general-prompt
score within 10% of base").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workspace", type=Path, required=True)
    p.add_argument("--max-new-tokens", type=int, default=48)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from loop.eval.forgetting import forgetting_probe
    from loop.eval.setups import adapter_kinds
    from loop.eval.stage import EvalConfig, _Eval
    from loop.handoff import current_inputs
    from loop.workspace import Workspace

    with Workspace(args.workspace) as ws:  # the workspace's latest models
        e = _Eval(ws, EvalConfig(max_new_tokens=args.max_new_tokens), lambda event: None,
                  current_inputs(ws))
        models = e._models()
        e.student = e._student_uri(models)
        pool = e._pool(e.student, models)
        out = forgetting_probe(pool, ["base", *[k for k in adapter_kinds() if k in models]],
                               max_new_tokens=args.max_new_tokens)
    for row in out.values():
        for m, d in (row.get("vs_base") or {}).items():
            base = out["base"][f"general_{m}"]
            d["relative"] = round(d["mean"] / base, 3) if base else None
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
