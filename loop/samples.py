"""The synthetic dataset that ``generate`` writes and ``train`` reads.

One ``datasets.Dataset`` per dataset artefact (``datasets/<id>/data``), one row per sample:

- ``id``: hash of task, chunk ids and messages (stable across runs)
- ``task``: ``qa | instruct | summary | extract | multiturn | cot | raft | preference``
- ``messages``: the chat, a list of ``{role, content}`` ending with the assistant turn
  (``raft`` rows carry their context chunks inside the user turn)
- ``chunk_ids``: the chunks the sample was generated from (the oracle chunk first)
- ``teacher``, ``prompt_version``: which model and which prompt file made it
- ``filters``: JSON object, each filter's verdict on the row
- ``split``: ``train | val`` (split by chunk, so no chunk feeds both)
- ``rejected``: for ``preference`` rows the rejected answer (the chosen one is the last
  message); empty otherwise
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value, load_from_disk

from loop.errors import WorkspaceError
from loop.workspace import Workspace, load_dataset
from textcore import QUESTION_MARK

SAMPLE_FEATURES = Features(
    {
        "id": Value("string"),
        "task": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "chunk_ids": List(Value("string")),
        "teacher": Value("string"),
        "prompt_version": Value("string"),
        "filters": Value("string"),
        "split": Value("string"),
        "rejected": Value("string"),
    }
)


def sample_id(task: str, chunk_ids: list[str], messages: list[dict[str, str]]) -> str:
    blob = json.dumps([task, chunk_ids, messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_sample(
    task: str,
    messages: list[dict[str, str]],
    chunk_ids: list[str],
    *,
    teacher: str = "",
    prompt_version: str = "",
    filters: dict[str, Any] | None = None,
    split: str = "train",
    rejected: str = "",
) -> dict[str, Any]:
    """A sample row with every column filled and its id computed."""
    return {
        "id": sample_id(task, chunk_ids, messages),
        "task": task,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "chunk_ids": list(chunk_ids),
        "teacher": teacher,
        "prompt_version": prompt_version,
        "filters": json.dumps(filters or {}, sort_keys=True),
        "split": split,
        "rejected": rejected,
    }


def question_of(sample: dict[str, Any]) -> str:
    """The question a sample asks, the one definition for decontamination, the contamination
    count and the dashboard: for a task that shows context chunks (raft), the text after the
    last ``Question:`` of its last user turn (not the chunks before it); for any other task,
    its first user turn."""
    from generators.tasks import TASKS

    users = [m["content"] for m in sample["messages"] if m["role"] == "user"]
    if not users:
        return ""
    task = TASKS.get(sample.get("task", ""))
    if task is not None and task.uses_context and QUESTION_MARK in users[-1]:
        return users[-1].rsplit(QUESTION_MARK, 1)[1].strip()
    return users[0].strip()


def carries_chunk(question: str, task: str) -> bool:
    """Does this question carry a text block after its instruction (a classify or extract
    row, or a gold item written that way)? A gold extract item may be a plain question."""
    from generators.tasks import TASKS

    t = TASKS.get(task)
    return t is not None and t.embeds_chunk and "\n\n" in question


def overlap_text(question: str, task: str) -> str:
    """The part of a question that can leak an eval item, for decontamination and the
    contamination count: for a task whose question carries its chunk (classify, extract), the
    text after the instruction (the instruction is the same on every row, so it would match
    every other such question); else the whole question."""
    return question.split("\n\n", 1)[1] if carries_chunk(question, task) else question


def questions_of(ds: Dataset) -> list[str]:
    """``question_of`` every row of a samples dataset."""
    return [question_of({"task": t, "messages": m}) for t, m in zip(ds["task"], ds["messages"],
                                                                     strict=True)]


def samples_dataset(rows: list[dict[str, Any]]) -> Dataset:
    if not rows:  # from_list cannot type an empty list (every job failed, say)
        return Dataset.from_dict({k: [] for k in SAMPLE_FEATURES}, features=SAMPLE_FEATURES)
    return Dataset.from_list(rows, features=SAMPLE_FEATURES)


def current_dataset_id(ws: Workspace) -> str | None:
    return ws.ledger.current("dataset")


def require_dataset(ws: Workspace, dataset_id: str | None) -> str:
    """``dataset_id``, or the error a stage told of no dataset gives."""
    if not dataset_id:
        raise WorkspaceError(f"workspace {ws.root} has no synthetic dataset yet",
                             hint="run `synthloop generate` first")
    return dataset_id


def dataset_path(ws: Workspace, dataset_id: str | None = None) -> Path:
    dataset_id = require_dataset(ws, dataset_id or current_dataset_id(ws))
    path = recorded_path(ws, dataset_id)
    if not path.exists():
        raise WorkspaceError(f"dataset {dataset_id} is missing from {ws.root}")
    return path


def recorded_path(ws: Workspace, dataset_id: str) -> Path:
    """Where a dataset (or eval set) lives: ``datasets/<id>``, else (an eval set made before
    0.2) ``evals/<id>``, both under this workspace's root wherever it was moved; else the
    path the ledger recorded."""
    for kind in ("datasets", "evals"):
        path = ws.artefact(kind, dataset_id)
        if path.exists():
            return path
    row = ws.ledger.dataset(dataset_id)
    return Path(row["path"]) if row else ws.artefact("datasets", dataset_id)


def load_generated_eval_set(ws: Workspace, eval_set_id: str | None = None) -> Dataset | None:
    """The generated eval set (``id, question, answers, chunk_ids, ...``), or None before
    ``generate --eval``. (A human gold file is read by ``loop.goldset``.)"""
    eval_set_id = eval_set_id or ws.ledger.current("eval_set")
    if not eval_set_id:
        return None
    path = recorded_path(ws, eval_set_id) / "data"
    return load_from_disk(str(path)) if path.exists() else None


def eval_items(ds: Dataset) -> list[Any]:
    """A generated eval set's rows as gold items (``retrieval.metrics.EvalItem``), with their
    task, labels and format (columns a set made before 0.2 lacks read as a QA item)."""
    from retrieval.metrics import EvalItem

    out = []
    for r in ds:
        fmt = r.get("format")
        out.append(EvalItem(r["question"], list(r["answers"]), list(r["chunk_ids"] or []), r["id"],
                            "", r.get("task") or "qa", list(r.get("labels") or []), None,
                            # "" (no format): generate writes it so every row has the column
                            (json.loads(fmt) if isinstance(fmt, str) and fmt.strip() else fmt) or None))
    return out


def load_samples(ws: Workspace, dataset_id: str | None = None) -> Dataset:
    """The samples of a dataset artefact (the latest ``generate`` when no id is given)."""
    return load_dataset(dataset_path(ws, dataset_id) / "data",
                        "run the `synthloop generate` (or `import`) that made it again")
