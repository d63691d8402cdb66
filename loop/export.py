"""``synthloop export``: the synthetic dataset in the formats fine-tuning tools read, or a
tuned model merged with its adapter (plain transformers loads it) and its model card.

Files are written beside their destination as ``.NAME.part`` and renamed last: a reader
never sees half an export, and a full disk leaves no partial file behind.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loop.errors import InputError
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


def export_model(ws: Workspace, out: Path, model_id: str | None = None) -> dict[str, Any]:
    """Write a model (default: the latest) merged with its adapter, with a model card that
    carries the latest evaluation's scores."""
    from loop.train.merge import export_merged

    path = export_merged(ws, out, model_id, scores=_card_scores(ws) or None)
    return {"path": str(path), "merged": True}


def _card_scores(ws: Workspace) -> dict[str, str]:
    eid = ws.ledger.current("eval")
    scores_file = ws.eval_dir(eid) / "scores.json" if eid else None
    if not scores_file or not scores_file.exists():
        return {}
    data = json.loads(scores_file.read_text())
    scores = {f"evaluation {eid}": f"{data['questions']} questions, {data['origin']}"}
    for setup, row in data["setups"].items():
        f1, em = row["f1"], row["em"]
        scores[setup] = (f"F1 {f1['mean']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}], "
                         f"EM {em['mean']:.3f}")
    scores["verdict"] = data["verdict"]
    return scores
