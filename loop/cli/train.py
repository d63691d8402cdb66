"""``synthloop train``: fine-tune a student on the workspace's synthetic dataset."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    field_help,
    say,
    verb,
)
from loop.config import read_config_file, resolve
from loop.render import RichSink
from loop.train.config import TrainConfig
from loop.workspace import Workspace


def _opt(name: str, *flags: str) -> Any:
    """A flag whose help is the config field's description (written once, in TrainConfig)."""
    return typer.Option(*flags, help=field_help(TrainConfig, name), show_default=False)


@app.command()
def train(
    student: Annotated[str | None, _opt("student")] = None,
    method: Annotated[str | None, _opt("method")] = None,
    max_steps: Annotated[int | None, _opt("max_steps")] = None,
    epochs: Annotated[float | None, _opt("epochs")] = None,
    with_context: Annotated[bool | None, _opt("with_context", "--with-context/--no-context")] = None,
    lr: Annotated[float | None, _opt("lr")] = None,
    batch_size: Annotated[int | None, _opt("batch_size")] = None,
    grad_accum: Annotated[int | None, _opt("grad_accum")] = None,
    max_length: Annotated[int | None, _opt("max_length")] = None,
    packing: Annotated[bool | None, _opt("packing", "--packing/--no-packing")] = None,
    eval_steps: Annotated[int | None, _opt("eval_steps")] = None,
    save_steps: Annotated[int | None, _opt("save_steps")] = None,
    patience: Annotated[int | None, _opt("patience")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    device: Annotated[str | None, _opt("device")] = None,
    dtype: Annotated[str | None, _opt("dtype")] = None,
    report_to: Annotated[str | None, _opt("report_to")] = None,
    trust_remote_code: Annotated[bool | None, _opt("trust_remote_code", "--trust-remote-code")] = None,
    allow_pickle: Annotated[bool | None, _opt("allow_pickle", "--allow-pickle")] = None,
    then_sft: Annotated[bool, typer.Option(
        "--then-sft", help="With --method pretrain: fine-tune (LoRA) the pretrained model next.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a student (LoRA by default) on the synthetic dataset.

    Loss on assistant tokens only, packed rows, validation loss with early stopping;
    a killed run resumes from its last checkpoint when re-run. Under
    `accelerate launch` the same command trains on every GPU.
    """
    from loop.train import train as run

    with verb(as_json):
        cfg = resolve(
            TrainConfig, read_config_file(config).get("train"), student=student, method=method,
            max_steps=max_steps, epochs=epochs, with_context=with_context, lr=lr,
            batch_size=batch_size, grad_accum=grad_accum, max_length=max_length, packing=packing,
            eval_steps=eval_steps, save_steps=save_steps, patience=patience, seed=seed,
            device=device, dtype=dtype, report_to=report_to, trust_remote_code=trust_remote_code,
            allow_pickle=allow_pickle,
        )
        sink = RichSink(console)
        with Workspace(workspace) as ws:
            try:
                result = run(ws, cfg, emit=sink)
                first = None
                if then_sft and cfg.method == "pretrain":
                    first = result
                    nxt = cfg.model_copy(update={"method": "lora", "student": f"model:{result.model_id}"})
                    result = run(ws, nxt, emit=sink)
            finally:
                sink.close()
        summary = result.summary()
        logs = ws.root / "logs" / "tensorboard" / result.model_id
        if logs.is_dir():
            summary["tensorboard_dir"] = str(logs)
        if first is not None:
            summary["pretrain"] = first.summary()
        if as_json:
            emit_json(summary)
            return
        _print_summary(summary)


def _print_summary(s: dict) -> None:
    state = "unchanged (cache hit)" if s["cached"] else "trained"
    val = "n/a" if s["val_loss"] is None else f"{s['val_loss']:.4f}"
    first = "n/a" if s["loss_first"] is None else f"{s['loss_first']:.4f}"
    last = "n/a" if s["loss_last"] is None else f"{s['loss_last']:.4f}"
    say((f"model {s['model_id']}", "bold green"),
        f" ({s['kind']}, {s['method']}) {state}: {s['steps']} steps, "
        f"loss {first} -> {last}, validation loss {val}"
        + (f", resumed from {s['resumed_from']}" if s.get("resumed_from") else ""))
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
