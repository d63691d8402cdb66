"""Training throughput: synthloop's train path against a plain PyTorch loop, packing against padding.

    .venv/bin/python bench/train.py                              # CPU, fp32, ~5M-param Llama
    python bench/train.py --device cuda --dtype bf16 --size gpu  # a GPU (bf16, ~120M params)

Every figure is measured in the same run as its baseline:

- tokens/s of ``loop.train.train`` (LoRA, packed rows, transformers.Trainer) against a plain
  loop (same LoRA model, same packed batches, AdamW, no Trainer): goal >= 1.0x;
- packed against padded batches on mixed-length rows (real tokens/s): goal >= 1.5x;
- peak memory (CUDA: max allocated; CPU: the process's peak RSS, reset per phase);
- achieved FLOP/s as 6 x params x tokens/s, against an n x n matmul timed here.

Models and data are made on the fly (nothing downloaded); rows are chats whose answers run
from a few words to a few hundred, like a synthetic dataset's mix of qa, summary and cot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = {  # hidden, layers, heads, intermediate, vocab
    "cpu": (256, 4, 4, 688, 4096),
    "gpu": (768, 12, 12, 2048, 16384),
}
WORDS = ["harbour", "ferry", "council", "permit", "library", "ticket", "season", "bridge", "market",
         "festival", "tide", "quay", "district", "warden", "licence", "notice", "route", "island"]


def mixed_rows(n: int, seed: int = 0) -> list[dict]:
    """Chat rows with answer lengths from 3 to ~300 words (a long-tailed mix)."""
    from loop.samples import make_sample

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        q_len = rng.randint(6, 30)
        a_len = int(min(300, 3 + rng.expovariate(1 / 60)))
        q = " ".join(rng.choice(WORDS) for _ in range(q_len)) + "?"
        a = " ".join(rng.choice(WORDS) for _ in range(a_len)) + "."
        rows.append(make_sample("qa", [{"role": "user", "content": q},
                                       {"role": "assistant", "content": a}], [f"c{i}"],
                                split="val" if i % 20 == 19 else "train"))
    return rows


def build_student(folder: Path, size: str) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from loop.models.students import DEFAULT_CHAT_TEMPLATE

    hidden, layers, heads, inter, vocab = SIZES[size]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([" ".join(WORDS)] * 50, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<eos>", "<pad>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=inter,
                      max_position_embeddings=4096, eos_token_id=0, pad_token_id=1)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def workspace(root: Path, rows: list[dict]):
    from loop.samples import samples_dataset
    from loop.workspace import Workspace

    ws = Workspace(root)
    with ws.writing("bench"), ws.atomic_dir(ws.artefact("datasets", "benchdata")) as tmp:
        samples_dataset(rows).save_to_disk(str(tmp / "data"))
    ws.ledger.set_current("dataset", "benchdata")
    return ws


def reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:  # Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM)
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")


def peak_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # lifetime peak, KiB


def synthloop_run(ws, student: Path, args, *, packing: bool, method: str = "lora") -> dict:
    """tokens/s of the train stage itself: the median of its per-step rates after warm-up."""
    from loop.events import Collector, Progress
    from loop.train import TrainConfig, train

    cfg = TrainConfig(student=f"hf:{student}", method=method, max_steps=args.steps, batch_size=args.batch,
                      max_length=args.max_length, packing=packing, device=args.device,
                      dtype=args.dtype, lr=1e-4, eval_steps=10**6, save_steps=10**6, patience=0,
                      logging_steps=10, seed=packing + 2 * args.trial)  # no cache hit between runs
    events = Collector()
    reset_peak(args.device)
    train(ws, cfg, emit=events)
    steps = [e for e in events.of(Progress) if e.stage == "train"][args.warmup - 1:]
    rates = [(b.info["tokens"] - a.info["tokens"]) / (b.at - a.at) for a, b in zip(steps, steps[1:], strict=False)]
    return {"tok_s": statistics.median(rates), "peak_mb": peak_mb(args.device)}


def plain_loop(student: Path, ws, args) -> dict:
    """The same LoRA model on the same packed batches, in a bare PyTorch loop."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loop.models.students import torch_dtype
    from loop.samples import load_samples
    from loop.train.config import TrainConfig
    from loop.train.data import select
    from loop.train.runner import add_lora
    from loop.train.sft import PackedCollator, prepare

    tok = AutoTokenizer.from_pretrained(student)
    rows, _ = select(load_samples(ws), "lora", False)
    data = prepare(rows, tok, max_length=args.max_length, packing=True, seed=0)
    loader = DataLoader(data.with_format(None), batch_size=args.batch, shuffle=True,
                        collate_fn=PackedCollator(tok.pad_token_id))
    model = AutoModelForCausalLM.from_pretrained(student, dtype=torch_dtype(args.dtype)).to(args.device)
    model.config.use_cache = False
    model, _ = add_lora(model, TrainConfig(lora_dropout=0.05))
    model.train()  # as the Trainer does: LoRA dropout on
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    reset_peak(args.device)
    batches = iter(_cycle(loader))
    rates = []
    for step in range(args.steps):
        _sync(args.device)
        t0 = time.perf_counter()
        batch = {k: v.to(args.device) for k, v in next(batches).items()}
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens = int((batch["input_ids"] != tok.pad_token_id).sum())
        _sync(args.device)
        if step >= args.warmup:
            rates.append(tokens / (time.perf_counter() - t0))
    return {"tok_s": statistics.median(rates), "peak_mb": peak_mb(args.device)}


def _cycle(loader):
    while True:
        yield from loader


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def collate_ms(batch: int, max_length: int) -> dict:
    """ms per batch of PackedCollator against a per-row torch.tensor + cat of aranges (how it
    was written before), on packed rows of mixed sample lengths; the outputs must be equal."""
    import torch

    from loop.train.sft import IGNORE, PackedCollator

    rng = random.Random(0)
    rows = []
    for _ in range(batch):
        lengths = [rng.randint(1, min(300, max_length))]
        while sum(lengths) < max_length - 300:
            lengths.append(rng.randint(20, 300))
        n = sum(lengths)
        rows.append({"input_ids": [rng.randrange(500) for _ in range(n)],
                     "labels": [rng.randrange(-100, 500) for _ in range(n)], "seq_lengths": lengths})

    def per_row_torch(examples):
        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), 1, dtype=torch.long)
        labels, pos = torch.full_like(ids, IGNORE), torch.zeros_like(ids)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = torch.tensor(e["input_ids"])
            labels[i, :n] = torch.tensor(e["labels"])
            pos[i, :n] = torch.cat([torch.arange(s) for s in e["seq_lengths"]])
            pos[i, n:] = torch.arange(width - n)
        labels[pos == 0] = IGNORE
        return {"input_ids": ids, "labels": labels, "position_ids": pos}

    ours = PackedCollator(1)
    a, b = ours(rows), per_row_torch(rows)
    assert all(torch.equal(a[k], b[k]) for k in a)
    out = {}
    for name, fn in (("packed_collator", ours), ("per_row_torch", per_row_torch)):
        t0 = time.perf_counter()
        for _ in range(50):
            fn(rows)
        out[name] = (time.perf_counter() - t0) / 50 * 1000
    return out


def matmul_flops(device: str, dtype: str, n: int) -> float:
    import torch

    from loop.models.students import torch_dtype

    a = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
    b = torch.randn(n, n, device=device, dtype=torch_dtype(dtype))
    for _ in range(3):
        a @ b
    _sync(device)
    reps, t0 = 10, time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--size", default=None, choices=list(SIZES), help="model size (default: by device)")
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--trials", type=int, default=3, help="interleaved repeats; the best of each is kept")
    p.add_argument("--qlora", action="store_true",
                   help="also time --method qlora (4-bit base) against the packed LoRA run")
    p.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    size = args.size or ("gpu" if args.device.startswith("cuda") else "cpu")

    from loop.train.runner import quiet

    quiet()
    with tempfile.TemporaryDirectory() as d:
        student = build_student(Path(d) / "student", size)
        ws = workspace(Path(d) / "ws", mixed_rows(args.rows))
        from transformers import AutoModelForCausalLM

        params = AutoModelForCausalLM.from_pretrained(student).num_parameters()
        trials = []
        for trial in range(args.trials):  # interleaved, best of each: shared machines are noisy
            args.trial = trial
            trials.append((plain_loop(student, ws, args), synthloop_run(ws, student, args, packing=True),
                           synthloop_run(ws, student, args, packing=False)))
        plain, packed, padded = (max((t[i] for t in trials), key=lambda r: r["tok_s"]) for i in range(3))
        qlora = synthloop_run(ws, student, args, packing=True, method="qlora") if args.qlora else None
    matmul = matmul_flops(args.device, args.dtype, 4096 if args.device != "cpu" else 1024)
    collate = collate_ms(args.batch, args.max_length)
    flops = 6 * params * packed["tok_s"]
    figures = {
        "device": args.device, "dtype": args.dtype, "params": params, "steps": args.steps,
        "batch": args.batch, "max_length": args.max_length, "trials": args.trials,
        "synthloop_tok_s": round(packed["tok_s"]), "plain_loop_tok_s": round(plain["tok_s"]),
        "synthloop_vs_plain": round(packed["tok_s"] / plain["tok_s"], 3),
        "padded_tok_s": round(padded["tok_s"]),
        "packing_vs_padded": round(packed["tok_s"] / padded["tok_s"], 3),
        "peak_mb": {"synthloop_packed": round(packed["peak_mb"]), "synthloop_padded": round(padded["peak_mb"]),
                    "plain_loop": round(plain["peak_mb"])},
        "achieved_flop_s": flops, "matmul_flop_s": matmul, "mfu_vs_matmul": round(flops / matmul, 4),
        "collate_ms": {k: round(v, 2) for k, v in collate.items()},
        "collate_speedup": round(collate["per_row_torch"] / collate["packed_collator"], 2),
    }
    if qlora:
        figures["qlora_tok_s"] = round(qlora["tok_s"])
        figures["qlora_vs_lora"] = round(qlora["tok_s"] / packed["tok_s"], 3)
        figures["peak_mb"]["qlora_packed"] = round(qlora["peak_mb"])
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
