"""Teacher fan-out (issue 18): two servers against one, measured in the same run.

    .venv/bin/python bench/fanout.py [--requests 640] [--capacity 16]

Each server (its own process) answers after 100 ms and, like a GPU server whose batch is
full, works on at most ``--capacity`` requests at once (the rest wait in its queue). The
``openai:`` teacher keeps 32 requests in flight: against one server it gets capacity / 0.1 s
at best; spread over two (least outstanding first), twice that. Goal: two servers >= 1.8x one.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REPLY = json.dumps({"choices": [{"message": {"role": "assistant", "content":
                   '{"pairs": [{"question": "When?", "answer": "Dawn"}]}'}}],
                   "usage": {"prompt_tokens": 50, "completion_tokens": 12}}).encode()


def _serve(port_q, capacity: int) -> None:
    import asyncio

    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY)

    async def main() -> None:
        slots = asyncio.Semaphore(capacity)

        async def handle(reader, writer) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    await reader.readexactly(length)
                    async with slots:  # a full batch: wait for a slot
                        await asyncio.sleep(0.1)
                    writer.write(response)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=256)
        port_q.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


def rate(urls: list[str], n: int) -> float:
    from generators.tasks import get_task
    from generators.teachers import Chunk, Job, get_teacher

    teacher = get_teacher("openai:bench", base_url=",".join(urls), api_key="k", concurrency=32)
    jobs = [Job(key=str(i), task=get_task("qa"), chunk=Chunk(str(i), f"Doc {i}: the harbour opens at dawn."))
            for i in range(n)]
    done = []
    t = time.perf_counter()
    teacher.run(jobs, lambda j, r: done.append(r))
    dt = time.perf_counter() - t
    assert sum(1 for r in done if r.items) == n, "some requests failed"
    return n / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=640)
    ap.add_argument("--capacity", type=int, default=16)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fanout.json")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    procs, urls = [], []
    for _ in range(2):
        q = ctx.Queue()
        p = ctx.Process(target=_serve, args=(q, args.capacity), daemon=True)
        p.start()
        procs.append(p)
        urls.append(f"http://127.0.0.1:{q.get(timeout=60)}/v1")
    try:
        one = rate(urls[:1], args.requests)
        two = rate(urls, args.requests)
    finally:
        for p in procs:
            p.terminate()
    result = {"requests": args.requests, "in_flight": 32, "capacity_per_server": args.capacity,
              "one_server_per_s": round(one, 1), "two_servers_per_s": round(two, 1),
              "ratio": round(two / one, 3), "ideal_one": args.capacity / 0.1}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"one server:  {one:7.1f} requests/s (its ceiling: {args.capacity / 0.1:.0f}/s)")
    print(f"two servers: {two:7.1f} requests/s = {two / one:.2f}x one (goal >= 1.8x)")


if __name__ == "__main__":
    main()
