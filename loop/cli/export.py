"""``synthloop export``: the synthetic dataset in the formats fine-tuning tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from loop.cli import app
from loop.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, emit_json, say, verb
from loop.workspace import Workspace

FORMATS = Literal["messages", "alpaca", "sharegpt", "parquet"]  # generators.export.FORMATS


@app.command()
def export(
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="File (or, with --merge, folder) to write.")] = None,
    fmt: Annotated[FORMATS, typer.Option(
        "--format", "-f", help="JSONL layout (messages: TRL / OpenAI; alpaca and sharegpt: "
                               "LLaMA-Factory, axolotl) or parquet.")] = "messages",
    split: Annotated[Literal["train", "val", "all"], typer.Option(help="Which rows.")] = "train",
    dataset: Annotated[str | None, typer.Option(help="Dataset id (default: the latest).")] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Write the tuned model merged with its adapter (plain transformers "
                        "loads it) and a model card, instead of the dataset.")] = False,
    gguf: Annotated[Path | None, typer.Option(
        "--gguf", help="Write the model merged as one GGUF file (llama.cpp, Ollama, LM Studio), "
                       "with an Ollama Modelfile and a README beside it.")] = None,
    quant: Annotated[Literal["f16", "q8_0", "f32"], typer.Option(
        help="With --gguf: the weights' type (q8_0: about half of f16's size).")] = "f16",
    model: Annotated[str | None, typer.Option(
        help="With --merge: tuned | combined | dpo | pretrain (the current model of that kind) "
             "or a model id; needed when the workspace has more than one kind.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace an existing file (it keeps its mode); never a link, a "
                        "device or a pipe.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """Write the dataset as JSONL (messages, alpaca, sharegpt) or Parquet; with --merge a
    tuned model merged with its adapter (safetensors); with --gguf one GGUF file for
    llama.cpp and Ollama."""
    from loop.errors import UsageError
    from loop.export import export_dataset, export_gguf, export_model

    with verb(as_json), Workspace(workspace) as ws:
        if gguf is not None:
            summary = export_gguf(ws, gguf, quant, model, force=force)
            what = (f"wrote model {summary['model_id']} ({summary['kind']}) as {quant} GGUF, "
                    f"{summary['bytes'] / 2**20:.1f} MiB, to {summary['path']}; Ollama: "
                    f"{summary['modelfile']}")
        elif out is None:
            raise UsageError("--out is needed (or --gguf FILE)")
        elif merge:
            summary = export_model(ws, out, model)
            what = (f"wrote model {summary['model_id']} ({summary['kind']}) merged, with its model "
                    f"card, to {summary['path']}")
        else:
            summary = export_dataset(ws, out, fmt, split, dataset, force=force)
            what = f"wrote {summary['rows']} rows ({fmt}, {split}) to {out}"
        if as_json:
            emit_json(summary)
        else:
            say(what)
