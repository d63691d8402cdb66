"""train --sweep: every setting trained as an ordinary model, the lowest validation loss kept."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from loop.cli import app
from loop.ledger import Ledger
from loop.train import train
from loop.train.sweep import sweep

# the fixture's fast_config as flags: the CLI must make the very same models
FLAGS = ["--max-steps", "4", "--eval-steps", "2", "--save-steps", "2", "--logging-steps", "2",
         "--batch-size", "8", "--max-length", "128", "--lora-r", "8", "--lora-dropout", "0",
         "--warmup-ratio", "0", "--device", "cpu", "--replay", "0"]


def small(kit, student, **kw):
    # exposures at its default, as the CLI's flags leave it: the same config, the same ids
    return kit.fast_config(student, max_steps=4, eval_steps=2, save_steps=2, exposures=8, **kw)


def test_sweep_keeps_the_lowest_validation_loss_and_reruns_cached(train_ws, tiny_student, kit,
                                                                  tmp_path):
    r = sweep(train_ws, small(kit, tiny_student, sweep="lr=1e-4,5e-3"))
    assert [s.settings for s in r.settings] == [{"lr": 1e-4}, {"lr": 5e-3}]
    assert not any(s.cached for s in r.settings) and len({s.model_id for s in r.settings}) == 2
    assert r.best.val_loss == min(s.val_loss for s in r.settings)
    db = train_ws.ledger
    assert db.current("model") == db.current("model.tuned") == r.best.model_id
    row = db.sweeps()[0]
    assert row["id"] == r.sweep_id and row["best_model_id"] == r.best.model_id
    assert row["grid"] == {"lr": ["1e-4", "5e-3"]} and row["kind"] == "tuned"
    settings = db.sweep_settings(r.sweep_id)
    assert [s["model_id"] for s in settings] == [s.model_id for s in r.settings]
    assert all(s["curve"] and s["curve"][-1][0] == 4 for s in settings)  # val loss at steps 2, 4
    assert all(db.model(s.model_id)["val_loss"] == s.val_loss for s in r.settings)

    # a setting is the model the flags make by hand (no sweep in its id or config)
    loser = next(s for s in r.settings if s is not r.best)
    by_hand = train(train_ws, small(kit, tiny_student, lr=loser.settings["lr"]))
    assert by_hand.cached and by_hand.model_id == loser.model_id
    assert db.model(by_hand.model_id)["config"]["sweep"] is None
    db.set_current("model", loser.model_id)  # as if the loser had been trained again since
    db.set_current("model.tuned", loser.model_id)

    again = sweep(train_ws, small(kit, tiny_student, sweep="lr=1e-4,5e-3"))
    assert all(s.cached for s in again.settings) and again.best.model_id == r.best.model_id
    assert db.current("model") == db.current("model.tuned") == r.best.model_id

    from loop.eval.report import sweep_lines, sweep_plot, sweeps_of

    found = sweeps_of(train_ws, {"tuned": r.best.model_id, "rag": None})
    assert [s["id"] for s in found] == [r.sweep_id]
    assert sweep_plot(found, tmp_path / "sweep.png").stat().st_size > 0
    assert any("(chosen)" in line for line in sweep_lines(found))

    # the CLI (flags, then a [train.sweep] table in a config file): all cached, same winner
    train_ws.close()
    base = ["train", "--student", f"hf:{tiny_student}", *FLAGS, "--json", "-w", str(train_ws.root)]
    out = CliRunner().invoke(app, [*base, "--sweep", "learning_rate=1e-4,5e-3"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout[out.stdout.index("{"):])
    assert data["best"] == {"settings": {"lr": r.best.settings["lr"]}, "val_loss": r.best.val_loss,
                            "model_id": r.best.model_id, "cached": True}
    assert [s["model_id"] for s in data["sweep"]] == [s.model_id for s in r.settings]
    toml = tmp_path / "sweep.toml"
    toml.write_text("[train.sweep]\nlr = [1e-4, 5e-3]\n")
    out = CliRunner().invoke(app, [*base, "--config", str(toml)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout[out.stdout.index("{"):])["best"]["model_id"] == r.best.model_id


@pytest.mark.parametrize(("grid", "words"), [
    ("foo=1,2", "unknown key 'foo'"), ("lr=abc", "'lr': Input should be a valid number"),
    ("method=full,lora", "cannot be swept"),
])
def test_a_bad_sweep_exits_2_before_any_training(train_ws, grid, words):
    train_ws.close()
    out = CliRunner().invoke(app, ["train", "--sweep", grid, "-w", str(train_ws.root)])
    assert out.exit_code == 2, out.output
    assert words in out.output
    assert "lora_r" in out.output or "abc" in grid  # a bad key: the known keys are listed
    assert not (train_ws.root / "models").exists() or not any((train_ws.root / "models").iterdir())


def test_a_sweep_without_validation_rows_is_an_error(ws, kit, tiny_student):
    from loop.errors import InputError

    kit.write_dataset(ws, [{**r, "split": "train"} for r in kit.fact_rows()])
    with pytest.raises(InputError, match="no validation rows"):
        sweep(ws, small(kit, tiny_student, sweep="lr=1e-4,5e-3"))


def test_train_help_shows_the_sweep_flag():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "--sweep" in out.output


def test_sweeps_tables_columns(tmp_path):
    db = Ledger(tmp_path / "synthloop.db")
    cols = {t: [(r["name"], r["type"], r["notnull"]) for r in db.conn.execute(f"PRAGMA table_info({t})")]
            for t in ("sweeps", "sweep_settings")}
    assert cols == {
        "sweeps": [("id", "TEXT", 0), ("kind", "TEXT", 1), ("dataset_id", "TEXT", 1),
                   ("created_at", "REAL", 1), ("grid", "TEXT", 1), ("best_model_id", "TEXT", 1),
                   ("config", "TEXT", 1)],
        "sweep_settings": [("sweep_id", "TEXT", 1), ("seq", "INTEGER", 1), ("settings", "TEXT", 1),
                           ("model_id", "TEXT", 1), ("val_loss", "REAL", 0), ("curve", "TEXT", 1)],
    }
    assert db.applied_migrations()[-1] == "0008_sweeps"
    db.close()


def test_pinning_cuda_n_twice_keeps_gpu_n(monkeypatch):
    """A sweep pins the device once per setting: the second call must not pick GPU N among
    the one GPU the first call left visible."""
    import torch

    from loop.errors import StageError
    from loop.models import students

    if torch.cuda.is_available():
        pytest.skip("checks the variable without CUDA")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setattr(students, "_PINNED", {})
    for _ in range(2):
        with pytest.raises(StageError, match="no CUDA device"):  # not "only 1 GPU(s) visible"
            students.pin_device("cuda:1")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_a_diverged_setting_is_kept_but_never_chosen(ws, monkeypatch, tmp_path):
    """A NaN validation loss (a learning rate too high) neither wins nor breaks the ledger."""
    import importlib
    import math
    from types import SimpleNamespace

    sw = importlib.import_module("loop.train.sweep")
    from loop.train.config import TrainConfig

    losses = {"0.1": math.nan, "0.0001": 1.5}

    def fake_train(ws_, c, emit, callbacks=None, inputs=None):
        return SimpleNamespace(val_loss=losses[str(c.lr)], model_id=f"m{c.lr}", cached=False,
                               path=tmp_path, kind="tuned", dataset_id="d1")

    monkeypatch.setattr(sw, "train", fake_train)
    monkeypatch.setattr(sw, "_require_validation", lambda ws_, c, inputs: None)
    r = sw.sweep(ws, TrainConfig(sweep="lr=0.1,0.0001"))
    assert r.best.model_id == "m0.0001" and [s.val_loss for s in r.settings] == [None, 1.5]
    rows = ws.ledger.sweep_settings(r.sweep_id)
    assert [row["val_loss"] for row in rows] == [None, 1.5]
