"""Load a trained model back, and export it merged with a model card.

``export_merged`` folds the LoRA adapter into the base weights and writes a folder that
plain ``transformers.AutoModelForCausalLM.from_pretrained`` loads: no PEFT, no synthloop.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from loop.errors import InputError, WorkspaceError
from loop.models.students import LoadOptions, load_pretrained, load_tokenizer, prepare_tokenizer
from loop.workspace import Workspace


def current_model_id(ws: Workspace, kind: str | None = None) -> str | None:
    """The latest model of a kind (``tuned``, ``combined`` ...), or the latest of any."""
    return ws.ledger.current(f"model.{kind}" if kind else "model")



def safetensors_problem(f: Path) -> str | None:
    """Why a safetensors file cannot load (None: its length matches its header)."""
    import struct

    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > size - 8:
                return f"is cut short ({size} bytes, its header alone needs {8 + n})"
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error) as e:
        return f"has no readable header ({type(e).__name__})"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"is cut short ({size} of {need} bytes)"
    return None


def model_meta(ws: Workspace, model_id: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """A model artefact's ``synthloop.json`` plus its folder; the latest model when no id."""
    model_id = model_id or current_model_id(ws, kind)
    if not model_id:
        raise WorkspaceError(f"workspace {ws.root} has no trained {kind or ''} model yet".replace("  ", " "),
                             hint="run `synthloop train` first")
    path = ws.artefact("models", model_id)
    if not (path / "synthloop.json").exists():
        raise WorkspaceError(f"model {model_id} is missing from {ws.root}")
    return {**json.loads((path / "synthloop.json").read_text()), "path": str(path)}


def load_tuned(ws: Workspace, model_id: str | None = None, *, kind: str | None = None,
               device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """The trained model (base + adapter, or full weights) and its tokenizer, in eval mode."""
    from peft import PeftModel

    meta = model_meta(ws, model_id, kind)
    opts = LoadOptions(ws=ws, device=device, dtype=dtype)
    folder = Path(meta["path"])
    check_weights(folder)
    if (folder / "adapter").is_dir():
        base = load_pretrained(meta["base_path"], opts)
        model = PeftModel.from_pretrained(base, str(folder / "adapter"))
        tok = load_tokenizer(str(folder / "adapter"), opts)
    else:
        model = load_pretrained(str(folder / "model"), opts)
        tok = load_tokenizer(str(folder / "model"), opts)
    prepare_tokenizer(tok)
    return model.eval(), tok


def check_weights(folder: Path) -> None:
    """A model artefact whose weights were cut short (a disk that filled, a copy that
    stopped) is one line naming the file and how to rebuild it, not a SafetensorError."""
    for sub in ("adapter", "model"):
        for f in sorted((folder / sub).glob("*.safetensors")):
            if why := safetensors_problem(f):
                raise WorkspaceError(
                    f"{f} {why}: the model {folder.name} cannot load",
                    hint=f"delete {folder} and run the `synthloop train` that made it again "
                         f"(its settings are in {folder / 'synthloop.json'})")


def export_merged(ws: Workspace, out_dir: str | Path, model_id: str | None = None, *,
                  scores: dict[str, Any] | None = None, overwrite: bool = False) -> Path:
    """Write the merged model, tokenizer and a README model card to ``out_dir``; returns it."""
    out = Path(out_dir).expanduser()
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        # the folder is replaced by a rename at the end: never a link, a file or a device
        raise InputError(f"{out} exists and is not a folder", hint="name a new or empty folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"{out} exists and is not empty", hint="choose another folder")
    meta = model_meta(ws, model_id)
    model, tok = load_tuned(ws, meta["model_id"], dtype="fp32")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        card = model_card(meta, scores if scores is not None else model_scores(ws, meta["model_id"]),
                          _task_counts(ws, meta["dataset_id"]))
        (tmp / "README.md").write_text(card, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def model_scores(ws: Workspace, model_id: str) -> dict[str, Any]:
    """The scores of this model's setup(s) in the latest evaluation that scored it, with
    their intervals and the eval set's origin (empty when no evaluation scored it)."""
    for row in ws.ledger.evaluations(model_id):
        if (row.get("origin") or "").startswith("dev part"):  # run --iterations' targeting
            continue
        f = ws.eval_dir(row["id"]) / "scores.json"
        if not f.exists():
            continue
        data = json.loads(f.read_text())
        setups = [s for s, mid in (data.get("models") or {}).items() if mid == model_id]
        out: dict[str, Any] = {"evaluation": f"{row['id']}: {data['questions']} questions, "
                                             f"{data['origin']}"}
        for setup in setups:
            cells = data["setups"][setup]
            out[setup] = ", ".join(f"{m.upper()} {cells[m]['mean']:.3f} [{cells[m]['ci_low']:.3f}, "
                                   f"{cells[m]['ci_high']:.3f}]" for m in ("f1", "em") if m in cells)
        out["verdict"] = data["verdict"]
        return out
    return {}


def _task_counts(ws: Workspace, dataset_id: str) -> dict[str, int]:
    if dataset_id.startswith("corpus:"):
        return {}
    from collections import Counter

    from loop.samples import load_samples

    try:
        return dict(Counter(load_samples(ws, dataset_id)["task"]))
    except (WorkspaceError, FileNotFoundError):
        return {}


def model_card(meta: dict[str, Any], scores: dict[str, Any], tasks: dict[str, int]) -> str:
    """A short model card: what it was trained on, how, and how well."""
    cfg = meta.get("config", {})
    val = "n/a" if meta.get("val_loss") is None else f"{meta['val_loss']:.4f}"
    lines = [
        f"# synthloop model {meta['model_id']}", "",
        f"Fine-tuned from `{meta['student']}` by synthloop with `--method {meta['method']}`"
        + (" on RAFT rows (context in the prompt)." if cfg.get("with_context") else "."), "",
        "## Data", "",
        f"- dataset: `{meta['dataset_id']}` (synthetic, generated from the user's documents)",
        *(f"- {task}: {n} rows" for task, n in sorted(tasks.items())), "",
        "## Training", "",
        f"- steps: {meta['steps']}, epochs: {cfg.get('epochs')}, lr: {cfg.get('lr') or 'method default'}, "
        f"batch: {cfg.get('batch_size')} x {cfg.get('grad_accum')}, max length: {cfg.get('max_length')}",
        f"- LoRA r={cfg.get('lora_r')}, alpha={cfg.get('lora_alpha')} on {', '.join(meta.get('target_modules') or []) or 'all weights'}",
        f"- loss: first {meta.get('loss_first')}, last {meta.get('loss_last')}; validation loss {val}",
        f"- seed {cfg.get('seed')}, {meta.get('device')} {meta.get('dtype')}", "",
        "## Scores", "",
        *(_score_lines(scores) or ["Not scored yet: run `synthloop eval`."]), "",
    ]
    if meta.get("notes"):
        lines += ["## Limits", "", *(f"- {n}" for n in meta["notes"]), ""]
    lines += ["## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
              'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")',
              'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")', "```", ""]
    return "\n".join(lines)


def _score_lines(scores: dict[str, Any]) -> list[str]:
    return [f"- {k}: {json.dumps(v, default=str) if isinstance(v, dict) else v}" for k, v in scores.items()]
