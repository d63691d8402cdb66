"""``synthloop export``: the synthetic dataset in the formats fine-tuning tools read, or a
tuned model merged with its adapter (plain transformers loads it) and its model card.

Files are written beside their destination as ``.NAME.part`` and renamed last: a reader
never sees half an export, and a full disk leaves no partial file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loop.errors import InputError, UsageError
from loop.workspace import Workspace

SPLITS = ("train", "val", "all")


def export_dataset(ws: Workspace, out: Path, fmt: str = "messages", split: str = "train",
                   dataset_id: str | None = None) -> dict[str, Any]:
    """Write one split (or all) of a dataset (default: the current one) as ``fmt``
    (``generators.export.FORMATS``: messages, alpaca, sharegpt JSONL or parquet)."""
    from generators.export import CONVERTERS, FORMATS
    from loop.samples import load_samples

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (train, val or all)")
    ds = load_samples(ws, dataset_id)
    if split != "all":
        ds = ds.select([i for i, s in enumerate(ds["split"]) if s == split])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    try:
        if fmt == "parquet":
            ds.to_parquet(str(tmp))
        else:
            convert = CONVERTERS[fmt]
            with open(tmp, "w", encoding="utf-8") as f:
                for row in ds:
                    f.write(json.dumps(convert(row), ensure_ascii=False) + "\n")
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"could not write {out}: {e.strerror or e}", hint="is the disk full?") from e
    return {"path": str(out), "format": fmt, "split": split, "rows": len(ds)}


EXPORTABLE_KINDS = ("tuned", "combined", "dpo", "pretrain")


def export_model(ws: Workspace, out: Path, model: str | None = None) -> dict[str, Any]:
    """Write a model merged with its adapter, with a model card carrying the scores of that
    model's setup from the evaluation that scored it. ``model`` is a kind (``tuned``,
    ``combined`` ...: its current model) or a model id; it may be left out only when the
    workspace has one model kind."""
    from loop.train.merge import export_merged

    model_id = resolve_model(ws, model)
    path = export_merged(ws, out, model_id)
    return {"path": str(path), "merged": True, "model_id": model_id,
            "kind": ws.ledger.model(model_id)["kind"]}


def resolve_model(ws: Workspace, model: str | None) -> str:
    """The model id ``--model`` names; an ambiguous or unknown name is a usage error that
    lists the choices."""
    current = {k: ws.ledger.current(f"model.{k}") for k in EXPORTABLE_KINDS}
    current = {k: v for k, v in current.items() if v}
    choices = ", ".join(f"{k} ({v})" for k, v in current.items()) or "none: run `synthloop train`"
    if model is None:
        if len(current) == 1:
            return next(iter(current.values()))
        if not current:
            raise InputError("no trained model to export", hint="run `synthloop train` first")
        raise UsageError(f"--merge needs --model: this workspace has {choices}",
                         hint="pass --model with one of the kinds, or a model id")
    if model in current:
        return current[model]
    if ws.ledger.model(model):
        return model
    raise UsageError(f"--model {model!r} names no model of this workspace (choices: {choices}, "
                     "or a model id)")
