"""``synthloop export``: the synthetic dataset in the formats fine-tuning tools read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from loop.cli import app
from loop.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, emit_json, say, verb
from loop.errors import InputError
from loop.workspace import Workspace


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="File (or, with --merge, folder) to write.")],
    fmt: Annotated[str, typer.Option(
        "--format", "-f", help="messages | alpaca | sharegpt | parquet")] = "messages",
    split: Annotated[str, typer.Option(help="train | val | all")] = "train",
    dataset: Annotated[str | None, typer.Option(help="Dataset id (default: the latest).")] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Write the tuned model merged with its adapter (plain transformers "
                        "loads it) and a model card, instead of the dataset.")] = False,
    model: Annotated[str | None, typer.Option(help="Model id for --merge (default: the latest).")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """Write the dataset as JSONL (messages, alpaca, sharegpt) or Parquet."""
    from generators.export import CONVERTERS, FORMATS
    from loop.samples import load_samples

    with verb(as_json):
        if merge:
            _merge(workspace, out, model, as_json)
            return
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
        if split not in ("train", "val", "all"):
            raise InputError(f"unknown split {split!r} (train, val or all)")
        with Workspace(workspace) as ws:
            ds = load_samples(ws, dataset)
        if split != "all":
            ds = ds.select([i for i, s in enumerate(ds["split"]) if s == split])
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.part")
        try:
            _write(ds, fmt, tmp, CONVERTERS.get(fmt))
            tmp.replace(out)  # a reader never sees half an export
        except OSError as e:  # a full disk: no half-written .part file is left behind
            tmp.unlink(missing_ok=True)
            raise InputError(f"could not write {out}: {e.strerror or e}",
                             hint="is the disk full?") from e
        summary = {"path": str(out), "format": fmt, "split": split, "rows": len(ds)}
        if as_json:
            emit_json(summary)
        else:
            say(f"wrote {len(ds)} rows ({fmt}, {split}) to {out}")


def _write(ds, fmt: str, path: Path, convert) -> None:  # noqa: ANN001
    if fmt == "parquet":
        ds.to_parquet(str(path))
        return
    with open(path, "w", encoding="utf-8") as f:
        for row in ds:
            f.write(json.dumps(convert(row), ensure_ascii=False) + "\n")


def _merge(workspace: Path, out: Path, model: str | None, as_json: bool) -> None:
    from loop.train.merge import export_merged

    with Workspace(workspace) as ws:
        scores = {}
        eid = ws.ledger.current("eval")
        scores_file = ws.eval_dir(eid) / "scores.json" if eid else None
        if scores_file and scores_file.exists():
            data = json.loads(scores_file.read_text())
            scores[f"evaluation {eid}"] = f"{data['questions']} questions, {data['origin']}"
            for setup, row in data["setups"].items():
                f1, em = row["f1"], row["em"]
                scores[setup] = (f"F1 {f1['mean']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}], "
                                 f"EM {em['mean']:.3f}")
            scores["verdict"] = data["verdict"]
        path = export_merged(ws, out, model, scores=scores or None)
    if as_json:
        emit_json({"path": str(path), "merged": True})
    else:
        say(f"wrote the merged model and its model card to {path}")
