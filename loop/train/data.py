"""Which sample rows a method trains on, in the formats TRL reads.

The task registry (``generators.tasks``) says what each task's rows are:

- SFT (``lora | full | qlora``): rows of ``sft`` tasks that show no context; with
  ``--with-context`` the rows of tasks that do (``raft``: chunks inside the user turn).
- ``dpo``: rows of ``preference`` tasks; prompt = ``messages[:-1]``, chosen =
  ``messages[-1]``, rejected = the ``rejected`` column.
- ``pretrain``: the corpus chunks' raw text.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from generators.tasks import task_names
from generators.tasks.base import student_chat
from loop.errors import InputError


def trained_tasks(method: str, with_context: bool) -> list[str]:
    """The registered tasks whose rows ``method`` trains on."""
    if method == "dpo":
        return task_names(row_kind="preference")
    return task_names(row_kind="sft", uses_context=with_context)


def select(samples: Dataset, method: str, with_context: bool) -> tuple[Dataset, Dataset | None]:
    """The train and validation rows for a method; an error says how to make missing ones."""
    tasks = set(trained_tasks(method, with_context))
    if method == "dpo":
        keep = lambda r: r["task"] in tasks and bool(r["rejected"])  # noqa: E731
    else:
        keep = lambda r: r["task"] in tasks  # noqa: E731
    wanted = sorted(tasks)[0] if len(tasks) == 1 else ("qa" if "qa" in tasks else ",".join(sorted(tasks)))
    rows = samples.filter(keep)
    train = rows.filter(lambda r: r["split"] == "train")
    val = rows.filter(lambda r: r["split"] == "val")
    if len(train) == 0:
        raise InputError(_missing_message(method, with_context, samples),
                         hint=f"run `synthloop generate --tasks {wanted}` to make them")
    return train, (val if len(val) else None)


def probe_rows(samples: Dataset, method: str, with_context: bool) -> Dataset | None:
    """The fact probe: held-out phrasings of trained facts (``split == "probe"``), or None."""
    if method in ("dpo", "pretrain") or "split" not in samples.column_names:
        return None
    tasks = set(trained_tasks(method, with_context))
    rows = samples.filter(lambda t, s: t in tasks and s == "probe", input_columns=["task", "split"])
    return rows if len(rows) else None


def facts_per_epoch(rows: Dataset) -> tuple[int, float]:
    """The distinct facts a split's rows teach (a fact: its chunk and its normalised answer)
    and how many rows state each one on average: the exposures one epoch gives a fact."""
    from textcore import normalize_answer

    facts = {((r["chunk_ids"] or [""])[0],
              normalize_answer(r["messages"][-1]["content"], articles=False))
             for r in rows.select_columns(["chunk_ids", "messages"])}
    return len(facts), (len(rows) / len(facts) if facts else 1.0)


def with_student_system(ds: Dataset) -> Dataset:
    """Every chat row after the student's system message (:data:`STUDENT_SYSTEM`), the one
    each scored setup answers under: training and scoring see the same prompt."""
    return ds.map(lambda m: {"messages": student_chat(m)}, input_columns="messages")


def _missing_message(method: str, with_context: bool, samples: Dataset) -> str:
    have = sorted(set(samples["task"])) or ["none"]
    tasks = ", ".join(trained_tasks(method, with_context))
    if method == "dpo":
        need = f"preference rows with a rejected answer ({tasks})"
    elif with_context:
        need = f"rows with context chunks ({tasks}: --with-context trains on them)"
    else:
        need = f"SFT rows ({tasks})"
    return f"the dataset has no training {need}; its tasks: {', '.join(have)}"


def to_messages(ds: Dataset) -> Dataset:
    """Conversational language-modeling rows: TRL masks all but the assistant turns."""
    return ds.select_columns(["messages"])


def to_preference(ds: Dataset) -> Dataset:
    """DPO rows: conversational prompt, chosen and rejected."""
    def split(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": student_chat(row["messages"][:-1]),
            "chosen": row["messages"][-1:],
            "rejected": [{"role": "assistant", "content": row["rejected"]}],
        }

    return ds.map(split, remove_columns=ds.column_names)


def pretrain_texts(samples: Dataset) -> list[str]:
    """The texts of a dataset's ``pretrain`` rows (task ``rewrite``: the chunks rewritten)."""
    tasks = set(task_names(row_kind="pretrain"))
    return [r["messages"][-1]["content"] for r in samples.select_columns(["task", "messages"])
            if r["task"] in tasks and r["messages"]]


def corpus_text(chunks: Dataset, val_share: float = 0.05, seed: int = 0,
                extra: list[str] | None = None) -> tuple[Dataset, Dataset | None]:
    """Raw chunk text for continued pretraining, with ``extra`` texts (rewrites of the
    chunks) beside it; a small held-out share for validation."""
    text = chunks.select_columns(["text"])
    if extra:
        from datasets import concatenate_datasets

        text = concatenate_datasets([text, Dataset.from_dict({"text": list(extra)}).cast(text.features)])
    text = text.filter(lambda r: bool(r["text"].strip()))
    if len(text) == 0:
        raise InputError("the corpus has no text to pretrain on", hint="run `synthloop ingest DOCS`")
    if len(text) < 20:
        return text, None
    parts = text.train_test_split(test_size=val_share, seed=seed)
    return parts["train"], parts["test"]
