"""The reliability suite at full size, and the table of what it did.

    .venv/bin/python bench/reliability.py [--trials 5] [--log bench/out/reliability.jsonl]

Runs ``tests/reliability`` with ``SYNTHLOOP_TRIALS`` (every kill -9 stage, ``run``
included, gets that many trials: 5 stages x 5 = 25; the faulty teacher that many seeds; the
full-disk cases all limits) and prints one row per fault: trials, what happened, whether
anything was lost. The figures in docs/reliability.md come from this command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5, help="kill trials per stage (5 stages)")
    ap.add_argument("--log", type=Path, default=REPO / "bench" / "out" / "reliability.jsonl")
    ap.add_argument("-k", default=None, help="pytest -k expression (a subset)")
    args = ap.parse_args()
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.unlink(missing_ok=True)
    env = {**os.environ, "SYNTHLOOP_TRIALS": str(args.trials),
           "SYNTHLOOP_RELIABILITY_LOG": str(args.log)}
    cmd = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"]
    if args.k:
        cmd += ["-k", args.k]
    t = time.perf_counter()
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    print(f"\npytest exit {rc} in {time.perf_counter() - t:.0f} s\n")
    print(table([json.loads(line) for line in args.log.read_text().splitlines()]))
    return rc


def table(records: list[dict]) -> str:
    by_fault: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_fault[r["fault"]].append(r)
    lines = ["| fault | trials | what happened |", "|---|---|---|"]
    for fault, rows in by_fault.items():
        lines.append(f"| {fault} | {len(rows)} | {summary(fault, rows)} |")
    return "\n".join(lines)


def summary(fault: str, rows: list[dict]) -> str:
    if fault.startswith("kill -9"):
        killed = sum(r["killed"] for r in rows)
        return (f"killed mid-run {killed}/{len(rows)} (at {min(r['moment_s'] for r in rows)}-"
                f"{max(r['moment_s'] for r in rows)} s); integrity ok after kill "
                f"{sum(r['integrity_after_kill'] == 'ok' for r in rows)}, after re-run "
                f"{sum(r['integrity_after_rerun'] == 'ok' for r in rows)}; half-written kept "
                f"{sum(r['half_written_taken_as_complete'] for r in rows)}; re-run equal to "
                f"uninterrupted {sum(r['equal'] for r in rows)}/{len(rows)}; the re-run found: "
                + ", ".join(r.get("kept", "?") for r in rows))
    if fault.startswith("full disk"):
        failed = [r for r in rows if r["failed"]]
        msgs = "; ".join(sorted({r["message"][:90] for r in failed}))
        return (f"failed cleanly {len(failed)}/{len(rows)} ({msgs}); ledger ok "
                f"{sum(r['integrity'] == 'ok' for r in rows)}; re-run ok "
                f"{sum(r['rerun_ok'] for r in rows)}")
    if fault.startswith("faulty teacher"):
        return "; ".join(
            f"{r['trial']}: {r['requests']} requests, faults {sum(r['faults'].values())}, "
            f"{r['failed_jobs']}/{r['jobs']} jobs failed with a reason, rows {r['rows']} "
            f"(healthy {r['healthy_rows']})" for r in rows)
    keys = [k for k in rows[0] if k not in ("fault", "trial")]
    return "; ".join(f"{r.get('trial', '-')}: " + ", ".join(f"{k} {r[k]}" for k in keys) for r in rows)


if __name__ == "__main__":
    sys.exit(main())
