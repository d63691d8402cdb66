"""The plan before the work (issue 27): ``run --dry-run`` says what each stage will do and
about how long, from the rows it will train on and a measured or stated rate, and stops
before any model loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_run_dry_run_prints_the_plan_and_loads_no_model(tmp_path):
    ws = tmp_path / "ws"
    r = subprocess.run(
        [sys.executable, "-m", "loop", "run", str(EXAMPLES / "marrowick"), "--eval-set",
         str(EXAMPLES / "marrowick-eval.jsonl"), "--student", "smollm2", "--dry-run", "--json",
         "--budget", "0", "-w", str(ws)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    by = {s["stage"]: s for s in plan["stages"]}
    assert list(by) == ["ingest", "generate", "index", "train-tuned", "train-combined", "eval"]
    assert "chunks" in by["ingest"]["what"] and "knowledge" in by["generate"]["what"]
    tuned = by["train-tuned"]
    assert "epochs" in tuned["what"] and tuned["seconds"] > 60 and "assumed" in tuned["basis"]
    assert "154 questions x 5 setups" in by["eval"]["what"]  # dpo has no model: not counted
    assert plan["complete"] and plan["seconds"] == round(sum(s["seconds"] for s in plan["stages"]))
    assert "dequantiz" not in r.stderr.lower()  # no student was loaded
    assert not (ws / "models").exists() or not any((ws / "models").iterdir())


def test_a_measured_rate_replaces_the_assumed_one(tmp_path):
    from loop.plan import _measured_rate
    from loop.workspace import Workspace

    with Workspace(tmp_path / "ws") as ws:
        rate, basis = _measured_rate(ws, "smollm2", "lora")
        assert basis.startswith("assumed")
        run_id = ws.ledger.start_run("train", [], {"student": "smollm2", "method": "lora"})
        ws.ledger.finish_run(run_id, status="ok", summary={"tokens_per_s": 123.0})
        rate, basis = _measured_rate(ws, "smollm2", "lora")
        assert rate == 123.0 and basis.startswith(f"measured (run {run_id}")
        assert _measured_rate(ws, "smollm2", "full")[1].startswith("assumed")


def _dry(tmp_path, *extra):
    r = subprocess.run(
        [sys.executable, "-m", "loop", "run", str(EXAMPLES / "marrowick"), "--eval-set",
         str(EXAMPLES / "marrowick-eval.jsonl"), "--dry-run", "--json", "-w", str(tmp_path / "ws"),
         *extra],
        capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["plan"]


def test_run_scales_the_defaults_it_was_not_given_to_fit_the_budget(tmp_path):
    """Over `--budget`, `run` scales the defaults down in a stated order, says which, and
    leaves every setting the user gave alone; the scaled plan fits."""
    plan = _dry(tmp_path, "--budget", "30")
    # in the stated order, each only as far as the plan is still over (at the assumed
    # 150 tokens/s the bundled example reaches the chunks)
    assert plan["scaled"][:3] == ["eval setups: tuned+rag left out", "combined epochs 3 -> 1",
                                  "tuned exposures per fact 8 -> 2"]
    assert plan["scaled"][3:4] == ["eval questions 154 -> 150"]
    assert plan["scaled"][4].startswith("chunks the data is generated from 234 -> ")
    assert plan["seconds"] <= 30 * 60
    by = {s["stage"]: s for s in plan["stages"]}
    assert "tuned+rag" not in by["eval"]["setups"] and by["train-combined"]["epochs"] == 1

    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nexposures = 8\n[eval]\nsetups = ['base', 'rag', 'tuned', 'tuned+rag']\n")
    tight = _dry(tmp_path, "--budget", "10", "--config", str(cfg))
    assert not any("exposures" in x or "setups" in x for x in tight["scaled"])
    assert any(x.startswith("chunks the data is generated from 234 -> ") for x in tight["scaled"])
    assert "scaled" not in _dry(tmp_path, "--budget", "0")


def test_a_resumed_run_keeps_the_scaling_it_started_with(tmp_path):
    """The first training measures a slower rate than the assumed one; re-fitted from it, a
    re-run would scale further, change the configs (and so the ids) and redo the work. A
    re-run with the same inputs keeps the first scaling; a new budget is fitted anew."""
    from loop.workspace import Workspace

    first = _dry(tmp_path, "--budget", "30")
    with Workspace(tmp_path / "ws") as ws:  # a slow first training, as on a loaded machine
        run_id = ws.ledger.start_run("train", [], {"student": "smollm2", "method": "lora"})
        ws.ledger.finish_run(run_id, status="ok", summary={"tokens_per_s": 40.0})
    again = _dry(tmp_path, "--budget", "30")
    assert again["scaled"] == first["scaled"]
    by = {s["stage"]: s for s in again["stages"]}
    assert by["train-tuned"]["basis"].startswith("measured")  # the plan says the new rate
    assert by["train-tuned"]["seconds"] > {s["stage"]: s for s in first["stages"]}["train-tuned"]["seconds"]
    anew = _dry(tmp_path, "--budget", "31")
    assert anew["scaled"] != first["scaled"]  # fitted to the measured rate: scaled further


def test_without_a_gold_set_the_plan_counts_the_generated_eval_set(tmp_path):
    """No --eval-set: the rules teacher's eval set is made in the plan (seconds) and the
    eval stage is planned on the questions it holds, not on eval_size."""
    r = subprocess.run(
        [sys.executable, "-m", "loop", "run", str(EXAMPLES / "marrowick"), "--dry-run", "--json",
         "--budget", "0", "-w", str(tmp_path / "ws")],
        capture_output=True, text=True, timeout=240, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    by = {s["stage"]: s for s in json.loads(r.stdout)["plan"]["stages"]}
    made = int(by["generate-eval"]["what"].split()[2])
    assert made > 0 and "of eval_size 150" in by["generate-eval"]["what"]
    assert by["eval"]["questions"] == made and f"{made} questions x" in by["eval"]["what"]
