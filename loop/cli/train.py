"""``synthloop train``: fine-tune a student on the workspace's synthetic dataset."""

from __future__ import annotations

from pathlib import Path

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    say,
    stage_sink,
    verb,
)
from loop.cli.flags import config_flags
from loop.config import resolve
from loop.stages import read_config_file
from loop.train.config import TrainConfig
from loop.workspace import Workspace


@app.command()
@config_flags(TrainConfig, decls={"with_context": ("--with-context/--no-context",),
                                   "init_from": ("--from",)})
def train(
    overrides: dict,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a student (LoRA by default) on the synthetic dataset.

    Loss on assistant tokens only, packed rows, validation loss with early stopping;
    a killed run resumes from its last checkpoint when re-run. Under
    `accelerate launch` the same command trains on every GPU.
    """
    with verb(as_json):
        cfg = resolve(TrainConfig, read_config_file(config).get("train"), **overrides)
        if cfg.method != "pretrain":  # no dataset: one line now, not after torch loads
            from loop.samples import dataset_path

            with Workspace(workspace) as ws:
                dataset_path(ws)
        from loop.train import run

        if cfg.sweep:
            _sweep(cfg, workspace, as_json)
            return
        with Workspace(workspace) as ws, stage_sink() as sink:
            result = run(ws, cfg, emit=sink)
        from loop.train.stage import is_main_process

        if not is_main_process():
            return  # under accelerate launch: rank 0 reports (and wrote) the model
        summary = result.summary()
        logs = ws.root / "logs" / "tensorboard" / result.model_id
        if logs.is_dir():
            summary["tensorboard_dir"] = str(logs)
        if as_json:
            emit_json(summary)
            return
        _print_summary(summary)


def _sweep(cfg: TrainConfig, workspace: Path, as_json: bool) -> None:
    """``--sweep``: every setting trained, the lowest validation loss made current."""
    from loop.train.stage import is_main_process
    from loop.train.sweep import parse_grid, setting_configs, sweep

    setting_configs(cfg, parse_grid(cfg.sweep or ""))  # a bad key or value: exit 2, nothing loaded
    with Workspace(workspace) as ws, stage_sink() as sink:
        result = sweep(ws, cfg, emit=sink)
    if not is_main_process():
        return
    if as_json:
        emit_json(result.summary())
        return
    best = result.best
    for s in result.settings:
        values = " ".join(f"{k}={v}" for k, v in s.settings.items())
        state = "cached" if s.cached else "trained"
        mark = ("  best", "bold green") if s is best else ""
        loss = "none (diverged)" if s.val_loss is None else f"{s.val_loss:.4f}"
        say(f"{values}: validation loss {loss}, model {s.model_id} ({state})", mark)
    say((f"model {best.model_id}", "bold green"), f" ({result.model.kind}) is current: the "
        f"lowest validation loss of {len(result.settings)} settings (sweep {result.sweep_id})")


def _print_summary(s: dict) -> None:
    state = "unchanged (cache hit)" if s["cached"] else "trained"
    val = "n/a" if s["val_loss"] is None else f"{s['val_loss']:.4f}"
    first = "n/a" if s["loss_first"] is None else f"{s['loss_first']:.4f}"
    last = "n/a" if s["loss_last"] is None else f"{s['loss_last']:.4f}"
    say((f"model {s['model_id']}", "bold green"),
        f" ({s['kind']}, {s['method']}) {state}: {s['steps']} steps, "
        f"loss {first} -> {last}, validation loss {val}"
        + (f", resumed from {s['resumed_from']}" if s.get("resumed_from") else ""))
    if s.get("stopped_early"):
        say(("stopped early", "yellow"), f": validation loss stopped improving; the best "
            f"checkpoint (step {s.get('best_step')}) is the model kept")
    mem = s.get("memory")
    if mem:
        peak = f", peak {mem['peak_bytes'] / 2**30:.1f} GB" if mem.get("peak_bytes") else ""
        rate = f"; {s['tokens_per_s']} tokens/s" if s.get("tokens_per_s") else ""
        say(f"memory: {mem['micro_batch']} row(s) per micro-batch x {mem['grad_accum']} "
            "accumulated" + (", gradient checkpointing" if mem["gradient_checkpointing"] else "")
            + f"; budget {mem['budget_bytes'] / 2**30:.1f} GB{peak}{rate}")
    for note in s.get("notes") or []:
        say(("note", "yellow"), " ", note)
    say(f"adapter at {s['adapter_path']}")
    if s.get("tensorboard_dir"):
        say(f"tensorboard logs at {s['tensorboard_dir']} (tensorboard --logdir {s['tensorboard_dir']})")
