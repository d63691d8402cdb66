"""GGUF export figures (issue 17) on SmolLM2-135M-Instruct tuned for a few LoRA steps:

    .venv/bin/python bench/gguf_export.py [--steps 4] [--out bench/out/gguf_export.json]

- seconds to write each of f32, f16 and q8_0 GGUF (merge included), against `export
  --merge` (safetensors, merge included) timed in the same run;
- file sizes, q8_0 against f16 (goal: about half);
- the round trip: each file loaded back through transformers' GGUF reader; greedy answers to
  a few prompts compared with the merged model's, and the largest last-token logit
  difference (f32 and f16: answers equal; q8_0: within a tolerance).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPTS = ["What is the capital of France?", "Name three colours of the rainbow.",
           "When does the Marrowick ferry leave?", "Write one sentence about harbours."]


def greedy(model, tok, n: int = 16):
    import torch

    out = []
    for p in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)
            logits = model(ids).logits[0, -1]
        out.append((tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True), logits))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gguf_export.json")
    args = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    from loop.export import export_gguf, export_model
    from loop.ingest import ingest
    from loop.models.merge import load_tuned
    from loop.train import TrainConfig, train
    from loop.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="bench-gguf-"))
    ws = Workspace(tmp / "ws")
    ingest(ws, [ROOT / "examples" / "marrowick"])
    from loop.generate import GenerateConfig, generate

    generate(ws, GenerateConfig(teacher="rules", tasks=["qa"], limit=40))
    r = train(ws, TrainConfig(student="smollm2", max_steps=args.steps, batch_size=4, max_length=256,
                              patience=0, lr=5e-4))
    merged, tok = load_tuned(ws, r.model_id, dtype="fp32")
    merged = merged.merge_and_unload()
    want = greedy(merged, tok)
    t = time.perf_counter()
    export_model(ws, tmp / "merged", r.model_id)
    merge_s = time.perf_counter() - t
    rows = {}
    for quant in ("f32", "f16", "q8_0"):
        t = time.perf_counter()
        out = export_gguf(ws, tmp / f"m-{quant}.gguf", quant, r.model_id)
        secs = time.perf_counter() - t
        back = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=f"m-{quant}.gguf",
                                                    dtype=torch.float32).eval()
        got = greedy(back, tok)
        rows[quant] = {
            "seconds": round(secs, 1), "vs_merge": round(secs / merge_s, 2),
            "mib": round(out["bytes"] / 2**20, 1),
            "answers_equal": sum(a[0] == b[0] for a, b in zip(want, got, strict=True)),
            "max_logit_diff": round(max((a[1] - b[1]).abs().max().item() for a, b in zip(want, got, strict=True)), 4),
        }
        del back
    result = {"steps": args.steps, "merge_seconds": round(merge_s, 1), "prompts": len(PROMPTS),
              "quants": rows, "q8_0_vs_f16_size": round(rows["q8_0"]["mib"] / rows["f16"]["mib"], 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"export --merge (safetensors): {merge_s:.1f} s")
    for q, row in rows.items():
        print(f"{q:5} {row['seconds']:6.1f} s ({row['vs_merge']}x merge)  {row['mib']:7.1f} MiB  "
              f"answers equal {row['answers_equal']}/{len(PROMPTS)}  "
              f"max logit diff {row['max_logit_diff']}")
    print(f"q8_0 / f16 size: {result['q8_0_vs_f16_size']}")


if __name__ == "__main__":
    main()
