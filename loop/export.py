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
                   dataset_id: str | None = None, *, force: bool = False) -> dict[str, Any]:
    """Write one split (or all) of a dataset (default: the current one) as ``fmt``
    (``generators.export.FORMATS``: messages, alpaca, sharegpt JSONL or parquet). An
    existing file is replaced only with ``force`` (keeping its mode), anything else never
    (``loop.outputs``)."""
    from generators.export import CONVERTERS, FORMATS
    from loop.outputs import claim, fresh_part, place
    from loop.samples import load_samples

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r} (train, val or all)")
    claim(out, force=force)  # before the work: a refusal is instant
    ds = load_samples(ws, dataset_id)
    if split != "all":
        ds = ds.select([i for i, s in enumerate(ds["split"]) if s == split])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_part(out)
    try:
        if fmt == "parquet":
            ds.to_parquet(str(tmp))
        else:
            convert = CONVERTERS[fmt]
            with open(tmp, "x", encoding="utf-8") as f:
                for row in ds:
                    f.write(json.dumps(convert(row), ensure_ascii=False) + "\n")
        place(tmp, out, claim(out, force=force))  # checked again: the write can take a while
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"could not write {out}: {e.strerror or e}", hint="is the disk full?") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out), "format": fmt, "split": split, "rows": len(ds)}




def export_model(ws: Workspace, out: Path, model: str | None = None) -> dict[str, Any]:
    """Write a model merged with its adapter, with a model card carrying the scores of that
    model's setup from the evaluation that scored it. ``model`` is a kind (``tuned``,
    ``combined`` ...: its current model) or a model id; it may be left out only when the
    workspace has one model kind."""
    from loop.models.merge import export_merged

    model_id = resolve_model(ws, model)
    path = export_merged(ws, out, model_id)
    return {"path": str(path), "merged": True, "model_id": model_id,
            "kind": ws.ledger.model(model_id)["kind"]}


def resolve_model(ws: Workspace, model: str | None) -> str:
    """The model id ``--model`` names; an ambiguous or unknown name is a usage error that
    lists the choices."""
    from loop.kinds import MODEL_KINDS

    current = {k: ws.ledger.current(f"model.{k}") for k in MODEL_KINDS}
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


def export_gguf(ws: Workspace, out: Path, quant: str = "f16", model: str | None = None, *,
                force: bool = False) -> dict[str, Any]:
    """Write a model merged with its adapter as one GGUF file (``loop.export_gguf``), with an
    Ollama Modelfile and a README of commands beside it (``STEM.Modelfile``,
    ``STEM.README.md``)."""
    import tempfile
    import time

    from loop.export_gguf import QUANTS, modelfile, readme, write_gguf
    from loop.models.merge import load_tuned
    from loop.outputs import claim, write_text

    if quant not in QUANTS:
        raise UsageError(f"--quant {quant!r} is not one of {', '.join(QUANTS)}")
    if out.suffix != ".gguf":
        raise UsageError(f"--gguf names a file ending in .gguf, not {out.name}")
    stem = out.with_suffix("")
    mf = stem.with_name(f"{stem.name}.Modelfile")
    rd = stem.with_name(f"{stem.name}.README.md")
    mode = claim(out, force=force)
    for beside in (mf, rd):
        claim(beside, force=force)
    model_id = resolve_model(ws, model)
    t0 = time.perf_counter()
    merged, tok = load_tuned(ws, model_id, dtype="fp32")
    if hasattr(merged, "merge_and_unload"):
        merged = merged.merge_and_unload()
    row = ws.ledger.model(model_id)
    with tempfile.TemporaryDirectory() as tmp:
        tok.save_pretrained(tmp)
        info = write_gguf(merged, tok, Path(tmp), out, quant,
                          name=f"synthloop {row['kind']} {model_id} ({row['student']})", mode=mode)
    write_text(mf, modelfile(out.name, tok, _system_prompt(ws, row["dataset_id"])), force=force)
    write_text(rd, readme(out.name, f"synthloop {row['kind']} model {model_id}", quant),
               force=force)
    return {**info, "model_id": model_id, "kind": row["kind"], "modelfile": str(mf),
            "readme": str(rd), "seconds": round(time.perf_counter() - t0, 1)}


def _system_prompt(ws: Workspace, dataset_id: str) -> str | None:
    """The system prompt the model's training rows carry (the commonest), if any."""
    from collections import Counter

    from loop.errors import WorkspaceError
    from loop.samples import load_samples

    try:
        rows = load_samples(ws, dataset_id)["messages"]
    except (WorkspaceError, FileNotFoundError):
        return None
    found = Counter(m[0]["content"] for m in rows if m and m[0]["role"] == "system")
    return found.most_common(1)[0][0] if found else None

