"""scratch:tiny offline, continued pretraining, the train verb and accelerate launch."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from loop.models.scratch import LIMITS, SIZES
from loop.train import train

REPO = Path(__file__).resolve().parents[2]
DOCS = {
    "harbour.md": "# Harbour\n\nThe Kell Island ferry leaves Old Quay at 7:15 every weekday. "
                  "Tickets cost four euros. The harbour master is Ines Varga.\n",
    "parks.md": "# Parks\n\nTarn Park opens at eight and closes at dusk. Dogs must be on a lead "
                "near the pond. The bandstand hosts concerts on Sundays in July.\n",
}


@pytest.fixture
def corpus_ws(ws, tmp_path, monkeypatch):
    """A workspace with a two-document corpus and a scratch recipe cut to seconds."""
    from loop.ingest.stage import ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text * 3)
    ingest(ws, [docs])
    monkeypatch.setitem(SIZES, "tiny", {**SIZES["tiny"], "vocab": 300, "steps": 4, "block": 64})
    return ws


def test_scratch_tiny_builds_offline_and_trains(corpus_ws, kit, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    kit.write_dataset(corpus_ws, kit.fact_rows())
    cfg = kit.fast_config(Path("unused"), max_steps=2)
    r = train(corpus_ws, cfg.model_copy(update={"student": "scratch:tiny"}))
    assert r.notes == [LIMITS] and r.steps == 2
    base = Path(json.loads((r.path / "synthloop.json").read_text())["base_path"])
    assert base.parent.name.startswith("scratch-") and (base / "model.safetensors").exists()
    meta = json.loads((base.parent / "synthloop.json").read_text())
    assert meta["params"] > 100_000 and meta["notes"] == [LIMITS]
    from transformers import AutoTokenizer

    assert "{% generation %}" in AutoTokenizer.from_pretrained(base).chat_template


def test_pretrain_then_fine_tune_the_result(corpus_ws, kit, tiny_student):
    kit.write_dataset(corpus_ws, kit.fact_rows())
    pre = train(corpus_ws, kit.fast_config(tiny_student, method="pretrain", max_steps=2))
    assert pre.kind == "pretrain" and pre.dataset_id.startswith("corpus:")
    assert (pre.path / "model" / "model.safetensors").exists()
    sft = train(corpus_ws, kit.fast_config(tiny_student, max_steps=2).model_copy(
        update={"student": f"model:{pre.model_id}"}))
    assert sft.kind == "tuned" and sft.steps == 2


def test_pretrain_reads_the_rewrites_beside_the_chunks(corpus_ws, kit, tiny_student):
    """`generate --tasks rewrite` rows join the chunks in continued pretraining, and the
    model id follows the dataset they came from."""
    from loop.samples import make_sample
    from loop.train.data import corpus_text, pretrain_texts

    rows = kit.fact_rows() + [make_sample("rewrite", [{"role": "assistant", "content":
                                                      f"Notes on house {i}\nQ: ...\nA: ..."}],
                                          [f"c{i}"]) for i in range(5)]
    kit.write_dataset(corpus_ws, rows)
    from loop.samples import load_samples

    texts = pretrain_texts(load_samples(corpus_ws))
    assert len(texts) == 5
    from loop.corpus import load_corpus

    chunks = load_corpus(corpus_ws)
    train_rows, val_rows = corpus_text(chunks, extra=texts)
    assert len(train_rows) + len(val_rows or []) == len(chunks) + 5
    pre = train(corpus_ws, kit.fast_config(tiny_student, method="pretrain", max_steps=2))
    assert pre.dataset_id.startswith("corpus:") and "+" in pre.dataset_id


def test_train_verb_prints_the_json_summary(train_ws, tiny_student):
    from typer.testing import CliRunner

    from loop.cli import app

    args = ["train", "--student", f"hf:{tiny_student}", "--max-steps", "2", "--max-length", "128",
            "--device", "cpu", "--batch-size", "4", "--json", "-w", str(train_ws.root)]
    train_ws.close()  # the verb opens the workspace itself
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert {"adapter_path", "steps", "loss_first", "loss_last", "val_loss"} <= set(data)
    assert data["steps"] == 2 and Path(data["adapter_path"], "adapter_config.json").exists()


def test_train_verb_errors_are_one_line(train_ws):
    from typer.testing import CliRunner

    from loop.cli import app

    train_ws.close()
    out = CliRunner().invoke(app, ["train", "--student", "nope:x", "-w", str(train_ws.root)])
    assert out.exit_code == 1 and "unknown student prefix 'nope:'" in out.output
    assert "Traceback" not in out.output


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate launcher not installed")
def test_accelerate_launch_at_world_size_1(train_ws, tiny_student):
    launcher = str(Path(sys.executable).parent / "accelerate")
    cmd = [launcher, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--cpu", "-m", "loop", "train", "--student", f"hf:{tiny_student}",
           "--max-steps", "2", "--max-length", "128", "--json", "-w", str(train_ws.root)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert data["steps"] == 2 and Path(data["adapter_path"], "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_kill_9_then_rerun_resumes(train_ws, tiny_student):
    import signal
    import time

    args = [sys.executable, "-m", "loop", "train", "--student", f"hf:{tiny_student}", "--max-steps", "80",
            "--save-steps", "2", "--eval-steps", "2", "--patience", "0", "--max-length", "128",
            "--batch-size", "2", "--device", "cpu", "--json", "-w", str(train_ws.root)]
    train_ws.close()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ckpts = train_ws.root / "checkpoints"
    deadline = time.time() + 120
    # Any complete checkpoint: at save_total_limit=2 checkpoint-4 is rotated out within
    # ~0.3 s on an idle machine, faster than this loop polls.
    while time.time() < deadline and not any(ckpts.glob("*/checkpoint-*/trainer_state.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before the kill"
    # after up to 120 s waiting for a checkpoint: the two fit the per-test 300 s
    again = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=170)
    assert again.returncode == 0, again.stderr[-2000:]
    data = json.loads(again.stdout[again.stdout.index("{"):])
    assert data["steps"] == 80 and data["resumed_from"].startswith("checkpoint-")


def test_device_cuda_n_is_pinned_before_cuda_starts(monkeypatch):
    """`--device cuda:N` makes GPU N the only one visible (the Trainer would take GPU 0, or
    spread over all of them); N counts within an existing CUDA_VISIBLE_DEVICES."""
    from loop.errors import StageError
    from loop.models.students import pin_device, visible_device

    assert visible_device(1, None) == "1"
    assert visible_device(1, "4, 6") == "6"
    with pytest.raises(StageError, match=r"only 1 GPU\(s\) are visible"):
        visible_device(1, "3")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    import torch

    if not torch.cuda.is_available():  # the variable is set, then no CUDA is one clear error
        with pytest.raises(StageError, match="no CUDA device"):
            pin_device("cuda:1")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert pin_device("cpu") == "cpu" and pin_device("auto") == "auto"
    monkeypatch.setenv("LOCAL_RANK", "0")  # a launcher owns placement
    assert pin_device("cuda:1") == "cuda:1"


def test_report_to_tensorboard_keeps_its_logs_and_bad_loggers_are_one_line(train_ws, tiny_student):
    """Event files land in the workspace (the checkpoints folder, transformers' default, is
    deleted after a run); an unknown logger or one whose package is missing fails up front."""
    from typer.testing import CliRunner

    from loop.cli import app

    train_ws.close()
    base = ["train", "--student", f"hf:{tiny_student}", "--max-steps", "4", "--max-length", "128",
            "--device", "cpu", "-w", str(train_ws.root)]
    out = CliRunner().invoke(app, [*base, "--report-to", "tensorboard", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output[out.output.index("{"):])
    logs = Path(data["tensorboard_dir"])
    assert logs.parent == train_ws.root / "logs" / "tensorboard" and logs.name == data["model_id"]
    assert list(logs.glob("events.out.tfevents.*")) and not (train_ws.root / "checkpoints" / data["model_id"]).exists()
    for flag, said in [("foo", "'foo' is not a logger transformers knows"),
                       ("wandb", "wandb needs its package")]:
        if flag == "wandb" and importlib.util.find_spec("wandb") is not None:
            continue
        out = CliRunner().invoke(app, [*base, "--report-to", flag])
        assert out.exit_code == 1 and said in out.output and "Traceback" not in out.output, out.output


def test_pretrain_epochs_leave_the_fine_tuning_sized_by_exposures(corpus_ws, kit, tiny_student):
    """`method = "pretrain"`, `then_sft`: the pretraining makes `pretrain_epochs` passes over
    the chunks, and the fine-tuning after it is still sized by exposures per fact (one shared
    `epochs` would size both)."""
    kit.write_dataset(corpus_ws, kit.fact_rows(12))
    cfg = kit.fast_config(tiny_student, method="pretrain", then_sft=True, pretrain_epochs=1,
                          exposures=2, max_steps=-1, batch_size=4)
    tuned = train(corpus_ws, cfg)
    pre = json.loads((Path(tuned.pretrain["path"]) / "synthloop.json").read_text())
    sft = json.loads((tuned.path / "synthloop.json").read_text())
    assert tuned.kind == "tuned" and tuned.student == f"model:{tuned.pretrain['model_id']}"
    three = train(corpus_ws, cfg.model_copy(update={"then_sft": False, "pretrain_epochs": None}))
    assert three.kind == "pretrain" and three.steps >= 2 * pre["steps"] > 0  # epochs = 3
    assert any("2 exposures per fact" in n for n in tuned.notes), tuned.notes
    assert "pretrain_epochs" not in sft["config"]
