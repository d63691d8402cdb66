"""Two ranks for real: `accelerate launch --multi_gpu --num_processes 2` on this CPU-only
machine runs two processes with DDP over gloo (accelerate's `--cpu` would force a single
process) and trains the tiny fixture model; rank 1 is killed mid-run, the run ends naming
it, and the same command resumes from the checkpoint to one model: written by rank 0 only,
one ledger row, loss down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _rank_pid(rank: int, marker: str) -> int | None:
    """The pid of the worker process of ``rank`` whose command line holds ``marker``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker in cmd and f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return int(proc.name)
    return None


# up to 180 s for a checkpoint, 180 s for the launcher to end, 300 s to resume: more than the
# 300 s default, so the test gets room for all three and each wait ends inside it
@pytest.mark.timeout(900)
def test_two_ranks_train_and_a_killed_rank_resumes(train_ws, tiny_student):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root = train_ws.root
    train_ws.close()
    launcher = str(Path(sys.executable).parent / "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "loop", "train",
           "--student", f"hf:{tiny_student}", "--max-steps", "160", "--save-steps", "4",
           "--eval-steps", "4", "--patience", "0", "--max-length", "128", "--batch-size", "4",
           "--lr", "5e-3", "--json", "-w", str(root)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.time() + 180
    while time.time() < deadline and not list((root / "checkpoints").glob("*/checkpoint-*/trainer_state.json")):
        time.sleep(0.2)
    pid = _rank_pid(1, str(root))
    if pid is None:
        first.kill()
        out, err = first.communicate()
        raise AssertionError(f"rank 1 not found; launcher ended {first.returncode}: {err[-3000:]}")
    os.kill(pid, signal.SIGKILL)
    _, err = first.communicate(timeout=180)
    assert first.returncode != 0
    assert "SIGKILL" in err or "Signal 9" in err, err[-2000:]  # the launcher names the dead rank
    assert "rank" in err.lower()
    assert not (root / "models").exists() or not list((root / "models").iterdir())

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    data = json.loads(again.stdout[again.stdout.index("{"):])  # one summary: rank 0's
    assert again.stdout.count('"model_id"') == 1
    assert data["world_size"] == 2 and data["steps"] == 160
    assert data["resumed_from"].startswith("checkpoint-")
    assert data["loss_last"] < data["loss_first"]
    from loop.workspace import Workspace

    with Workspace(root) as ws:
        assert [m["id"] for m in ws.ledger.models()] == [data["model_id"]]
    base = AutoModelForCausalLM.from_pretrained(tiny_student)
    assert PeftModel.from_pretrained(base, data["adapter_path"]) is not None
