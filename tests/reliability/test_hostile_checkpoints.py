"""Damaged training state: a checkpoint cut short after a kill (the newest is passed over,
named, for the one before it), a model artefact whose weights were cut short (`export
--merge` and `eval` say which file and how to rebuild it), training settings that never
end, and a finished dataset artefact that training must leave as it was."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from loop.cli import app
from loop.workspace import Workspace

runner = CliRunner()


def _cut(path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


@pytest.fixture(scope="module")
def resumed(tmp_path_factory, tiny_student, rel):
    """Train, crash after checkpoints 4 and 8, cut checkpoint-8's adapter in half, train
    again: (workspace root, the second run's result, the dataset's files before)."""
    from transformers import TrainerCallback

    from loop.train import train

    class Crash(TrainerCallback):  # dies between checkpoints, as kill -9 would
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 10:
                raise RuntimeError("simulated crash")

    root = tmp_path_factory.mktemp("hostile-ckpt") / "ws"
    cfg = rel.train_kit.fast_config(tiny_student, max_steps=12, save_steps=4, eval_steps=4,
                                    patience=0)
    with Workspace(root) as ws:
        dataset_id = rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows())
        folder = ws.artefact("datasets", dataset_id)
        before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        with pytest.raises(RuntimeError, match="simulated crash"):
            train(ws, cfg, callbacks=[Crash()])
        (ckpt_dir,) = (root / "checkpoints").iterdir()
        assert {p.name for p in ckpt_dir.iterdir()} >= {"checkpoint-4", "checkpoint-8"}
        _cut(ckpt_dir / "checkpoint-8" / "adapter_model.safetensors")
        result = train(ws, cfg)
        after = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    return root, result, before, after


def test_resume_passes_over_a_truncated_checkpoint_and_says_so(resumed, rel):
    root, result, _, _ = resumed
    assert result.resumed_from == "checkpoint-4"
    (note,) = [n for n in result.notes if n.startswith("skipped checkpoint-8")]
    assert "adapter_model.safetensors is cut short" in note and "resumed from checkpoint-4" in note
    assert result.steps == 12
    rel.record("hostile: truncated newest checkpoint", resumed_from=result.resumed_from)


def test_resuming_writes_nothing_into_the_dataset_artefact(resumed):
    _, _, before, after = resumed
    assert after == before, [str(p) for p in set(after) - set(before)]  # no cache-*.arrow


def test_training_writes_nothing_into_the_dataset_artefact(tmp_path, tiny_student, rel):
    from loop.train import train

    with Workspace(tmp_path / "ws") as ws:
        folder = ws.artefact("datasets", rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows()))
        before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
        train(ws, rel.train_kit.fast_config(tiny_student, max_steps=2, eval_steps=2, save_steps=2))
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_a_truncated_adapter_is_one_line_naming_the_file_and_the_fix(resumed, tmp_path, tiny_student):
    from loop.errors import WorkspaceError
    from loop.eval.models import SetupModels, models_of
    from loop.handoff import current_inputs

    root, result, _, _ = resumed
    adapter = result.path / "adapter" / "adapter_model.safetensors"
    whole = adapter.read_bytes()
    try:
        _cut(adapter)
        r = runner.invoke(app, ["export", "--merge", "--model", result.model_id, "-o",
                                str(tmp_path / "merged"), "-w", str(root), "--json"])
        assert r.exit_code == 1, r.output
        error = json.loads(r.stdout)["error"]
        assert str(adapter) in error and "cut short" in error and "synthloop train" in error
        assert "Traceback" not in r.output and not (tmp_path / "merged").exists()
        with Workspace(root) as ws, pytest.raises(WorkspaceError, match="adapter_model.safetensors is cut short"):
            SetupModels(ws, f"hf:{tiny_student}", models_of(ws, current_inputs(ws).models), "cpu")
    finally:
        adapter.write_bytes(whole)


@pytest.mark.parametrize("table", ["epochs = inf\nmax_steps = 1000000000000",
                                   "max_steps = 100000000000"])
def test_training_settings_that_never_end_are_refused(table, tmp_path):
    (tmp_path / "c.toml").write_text(f"[train]\n{table}\n")
    r = runner.invoke(app, ["train", "-w", str(tmp_path / "ws"), "-c", str(tmp_path / "c.toml"),
                            "--json"])
    assert r.exit_code == 1, r.output
    assert "[train]" in json.loads(r.stdout)["error"]
    assert not os.path.exists(tmp_path / "ws" / "checkpoints")
