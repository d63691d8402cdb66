"""Ingestion throughput (MB/s) and peak RSS on a generated corpus, against plainly reading
the same files in the same run.

    .venv/bin/python bench/ingest.py [--mb 200] [--out bench/out/ingest]

Goal (issue 2): at least 20 MB/s and peak RSS under 1 GB on 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORDS = ["harbour", "council", "permit", "ferry", "district", "library", "tram", "fee", "resident", "schedule", "collection", "recycling", "deadline", "office", "form", "inspection", "licence", "budget", "festival", "lighthouse", "bridge", "market", "water", "billing", "meter", "park", "warden", "emergency", "shelter", "route", "fare", "season", "ticket", "the", "a", "of", "and", "to", "in", "is", "for", "on", "with", "by", "at", "from", "that", "this", "be", "are", "was", "it", "as", "or", "an"]


def sentence(rng: random.Random) -> str:
    n = rng.randint(8, 28)
    words = [rng.choice(WORDS) for _ in range(n)]
    words.insert(rng.randrange(n), str(rng.randint(1, 9999)))
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 8)))


def make_corpus(root: Path, megabytes: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    written = i = 0
    while written < target:
        sub = root / f"part{i // 200:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        kind = ("md", "txt", "html")[i % 3]
        sections = [(f"Section {j}", [paragraph(rng) for _ in range(rng.randint(3, 9))])
                    for j in range(rng.randint(8, 30))]
        if kind == "md":
            body = "\n\n".join(f"## {h}\n\n" + "\n\n".join(ps) for h, ps in sections)
            text = f"# Document {i}\n\n{body}\n"
        elif kind == "txt":
            text = "\n\n".join(f"{h}\n\n" + "\n\n".join(ps) for h, ps in sections) + "\n"
        else:
            body = "".join(f"<h2>{h}</h2>" + "".join(f"<p>{p}</p>" for p in ps) for h, ps in sections)
            text = (f"<html><head><title>Doc {i}</title><style>p{{margin:0}}</style></head>"
                    f"<body><nav>home</nav><h1>Document {i}</h1>{body}</body></html>")
        path = sub / f"doc{i:05d}.{kind}"
        path.write_text(text)
        written += path.stat().st_size
        i += 1


def plain_read(root: Path) -> tuple[float, int]:
    t = time.perf_counter()
    total = 0
    for path in sorted(root.rglob("*")):
        if path.is_file():
            total += len(path.read_text(encoding="utf-8"))
    return time.perf_counter() - t, total


def run_ingest(root: Path, ws: Path) -> tuple[float, tuple[float, float], dict]:
    """Ingest in a child process so its peak RSS is measured alone."""
    code = (
        "import json, resource, sys, time\n"
        "from loop.workspace import Workspace\n"
        "from loop.ingest import ingest\n"
        "t = time.perf_counter()\n"
        "with Workspace(sys.argv[2]) as ws:\n"
        "    r = ingest(ws, [sys.argv[1]])\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'seconds': dt, 'rss_mb': rss, 'worker_rss_mb': worker,\n"
        "                  'summary': r.summary()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root), str(ws)],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["seconds"], (data["rss_mb"], data["worker_rss_mb"]), data["summary"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=int, default=200, help="corpus size to generate (MB)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/ingest"))
    args = ap.parse_args()
    corpus = args.out / f"corpus-{args.mb}mb"
    if not corpus.exists():
        print(f"generating {args.mb} MB corpus in {corpus} ...", file=sys.stderr)
        make_corpus(corpus, args.mb)
    size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
    mb = size / 1e6
    plain_s, _ = plain_read(corpus)
    ws = args.out / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    cold_s, rss, summary = run_ingest(corpus, ws)
    warm_s, _, warm = run_ingest(corpus, ws)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "corpus_mb": round(mb, 1),
        "files": summary["files"],
        "chunks": summary["chunks"],
        "plain_read_mb_s": round(mb / plain_s, 1),
        "ingest_mb_s": round(mb / cold_s, 1),
        "ingest_vs_plain_read": round(plain_s / cold_s, 3),
        "peak_rss_mb": round(rss[0], 0),
        "peak_rss_per_worker_mb": round(rss[1], 0),
        "peak_rss_all_processes_mb": round(rss[0] + rss[1] * (os.cpu_count() or 1), 0),
        "bench_process_rss_mb": round(base_rss, 0),
        "reingest_unchanged_s": round(warm_s, 2),
        "reingest_vs_cold": round(warm_s / cold_s, 3),
        "reingest_cached": warm["cached"],
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
