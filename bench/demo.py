"""Cold and cached wall time of ``synthloop demo``, and the time per stage.

    .venv/bin/python bench/demo.py [--out bench/out/demo]

Goals (issues 5, 13): cold at most 15 minutes on 2 cores with the smollm2 student; an
unchanged re-run at most 5% of cold. Also prints the scoreboard (F1 with 95% intervals).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def run_demo(ws: Path) -> tuple[float, dict]:
    exe = Path(sys.executable).parent / "synthloop"
    t = time.perf_counter()
    out = subprocess.run([str(exe), "demo", "-w", str(ws), "--json"], capture_output=True,
                         text=True, check=True)
    return time.perf_counter() - t, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench/out/demo"))
    args = ap.parse_args()
    ws = args.out / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    cold, first = run_demo(ws)
    cached, second = run_demo(ws)
    print(json.dumps({
        "cold_s": round(cold, 1),
        "cached_s": round(cached, 1),
        "cached_vs_cold": round(cached / cold, 3),
        "cold_stage_s": first["stage_seconds"],
        "cached_stage_s": second["stage_seconds"],
        "same_scores": first["setups"] == second["setups"],
        "student": first.get("student"),
        "f1": {k: [round(v["f1"][x], 3) for x in ("mean", "ci_low", "ci_high")]
               for k, v in first["setups"].items()},
        "verdict": first["verdict"],
    }, indent=2))


if __name__ == "__main__":
    main()
