"""Teacher throughput, each figure against a baseline measured in the same run.

    .venv/bin/python bench/generate.py [--requests 640] [--device cpu|cuda] [--dtype fp32|bf16]

(a) openai: teacher against a local server that answers after 100 ms, 32 requests in
    flight: requests/s against the ideal 320/s (goal >= 0.8 of it).
(b) hf: teacher on a ~5M-parameter model: batched against one prompt at a time (goal >= 8x)
    and against a raw ``model.generate`` at the same batch size (goal >= 0.8x).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

REPLY = json.dumps({"choices": [{"message": {"role": "assistant", "content":
                   '{"pairs": [{"question": "When?", "answer": "Dawn"}]}'}}],
                   "usage": {"prompt_tokens": 50, "completion_tokens": 12}}).encode()


def _serve(port_q) -> None:
    """A minimal asyncio HTTP/1.1 server: reply after 100 ms, one write per response.
    (http.server's thread per connection added ~30 ms of its own per wave of 32.)"""
    import asyncio

    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)

    async def handle(reader, writer) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(0.1)
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port_q.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def bench_openai(n: int) -> dict:
    from generators.tasks import get_task
    from generators.teachers import Chunk, Job, get_teacher

    # The server runs in its own process: in this one it would compete with the client for
    # the GIL and the figure would measure the server.
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(port_q,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port_q.get(timeout=60)}/v1"
    teacher = get_teacher("openai:bench", base_url=url, api_key="k", concurrency=32)
    jobs = [Job(key=str(i), task=get_task("qa"), chunk=Chunk(str(i), f"Doc {i}: the harbour opens at dawn."))
            for i in range(n)]
    done = []
    t = time.perf_counter()
    teacher.run(jobs, lambda j, r: done.append(r))
    dt = time.perf_counter() - t
    proc.terminate()
    ok = sum(1 for r in done if r.items)
    rate = n / dt
    return {"requests": n, "ok": ok, "seconds": round(dt, 2), "requests_per_s": round(rate, 1),
            "ideal_requests_per_s": 320.0, "ratio_to_ideal": round(rate / 320.0, 3)}


def tiny_model(path: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    text = [f"The harbour of town {i} opens at {i % 12} in the morning and ferries leave hourly."
            for i in range(2000)]
    tok.train_from_iterator(text, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(path)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=256, intermediate_size=688,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                      max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=3)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = None  # generate the full length in every mode
    model.save_pretrained(path, safe_serialization=True)
    return sum(p.numel() for p in model.parameters())


def bench_hf(device: str, dtype: str, prompts: int, new_tokens: int, repeats: int = 3) -> dict:
    import torch

    from loop.plugins import load_plugins

    load_plugins()  # registers the hf: teacher
    from generators.teachers import get_teacher

    with tempfile.TemporaryDirectory() as d:
        params = tiny_model(Path(d))
        msgs = [[{"role": "user", "content": f"Question {i}: when does harbour {i} open? " * (1 + i % 3)}]
                for i in range(prompts)]
        opts = {"device": device, "dtype": dtype, "params": {"max_tokens": new_tokens}}
        batched = get_teacher(f"hf:{d}", batch_size=prompts, **opts)
        single = get_teacher(f"hf:{d}", batch_size=1, **opts)
        batched.generate_batch(msgs[:2]) if batched._load() is None else None  # warm up
        single._load()

        tok, model = batched._tok, batched._model
        texts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)

        def raw() -> None:
            with torch.inference_mode():
                model.generate(**enc, max_new_tokens=new_tokens, do_sample=False,
                               pad_token_id=tok.pad_token_id)

        def timed(fn) -> float:
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t

        t_batched = t_single = t_raw = float("inf")
        for _ in range(repeats):
            t_batched = min(t_batched, timed(lambda: batched.complete_many(msgs, lambda i, r: None)))
            t_raw = min(t_raw, timed(raw))
        t_single = timed(lambda: single.complete_many(msgs, lambda i, r: None))
    tokens = prompts * new_tokens
    return {"params": params, "device": device, "dtype": dtype, "prompts": prompts,
            "new_tokens": new_tokens, "batched_tokens_per_s": round(tokens / t_batched, 1),
            "one_at_a_time_tokens_per_s": round(tokens / t_single, 1),
            "raw_generate_tokens_per_s": round(tokens / t_raw, 1),
            "batched_vs_one_at_a_time": round(t_single / t_batched, 2),
            "batched_vs_raw_generate": round(t_raw / t_batched, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--skip-openai", action="store_true")
    args = ap.parse_args()
    out = {}
    if not args.skip_openai:
        out["openai"] = bench_openai(args.requests)
        print(json.dumps(out["openai"]), file=sys.stderr)
    out["hf"] = bench_hf(args.device, args.dtype, args.prompts, args.new_tokens)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
