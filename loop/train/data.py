"""Which sample rows a method trains on, in the formats TRL reads.

- SFT (``lora | full | qlora``): rows whose task is neither ``raft`` nor ``preference``;
  with ``--with-context`` the ``raft`` rows (context chunks inside the user turn).
- ``dpo``: ``preference`` rows; prompt = ``messages[:-1]``, chosen = ``messages[-1]``,
  rejected = the ``rejected`` column.
- ``pretrain``: the corpus chunks' raw text.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from loop.errors import InputError

CONTEXT_TASK = "raft"
PREFERENCE_TASK = "preference"
NOT_SFT = {CONTEXT_TASK, PREFERENCE_TASK}


def sft_filter(with_context: bool):  # noqa: ANN201 - a row predicate
    if with_context:
        return lambda row: row["task"] == CONTEXT_TASK
    return lambda row: row["task"] not in NOT_SFT


def select(samples: Dataset, method: str, with_context: bool) -> tuple[Dataset, Dataset | None]:
    """The train and validation rows for a method; an error says how to make missing ones."""
    if method == "dpo":
        keep, wanted = (lambda r: r["task"] == PREFERENCE_TASK and bool(r["rejected"])), "preference"
    else:
        keep, wanted = sft_filter(with_context), CONTEXT_TASK if with_context else "qa"
    rows = samples.filter(keep)
    train = rows.filter(lambda r: r["split"] == "train")
    val = rows.filter(lambda r: r["split"] == "val")
    if len(train) == 0:
        raise InputError(_missing_message(method, with_context, samples),
                         hint=f"run `synthloop generate --tasks {wanted}` to make them")
    return train, (val if len(val) else None)


def _missing_message(method: str, with_context: bool, samples: Dataset) -> str:
    have = sorted(set(samples["task"])) or ["none"]
    if method == "dpo":
        need = "preference rows (with a rejected answer)"
    elif with_context:
        need = "raft rows (--with-context trains on them)"
    else:
        need = "SFT rows (any task but raft and preference)"
    return f"the dataset has no training {need}; its tasks: {', '.join(have)}"


def to_messages(ds: Dataset) -> Dataset:
    """Conversational language-modeling rows: TRL masks all but the assistant turns."""
    return ds.select_columns(["messages"])


def to_prompt_completion(ds: Dataset) -> Dataset:
    """Conversational prompt/completion rows, for chat templates without generation marks.

    Only the last assistant turn is then trained (earlier turns become prompt).
    """
    def split(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": row["messages"][:-1], "completion": row["messages"][-1:]}

    return ds.map(split, remove_columns=ds.column_names)


def to_preference(ds: Dataset) -> Dataset:
    """DPO rows: conversational prompt, chosen and rejected."""
    def split(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": row["messages"][:-1],
            "chosen": row["messages"][-1:],
            "rejected": [{"role": "assistant", "content": row["rejected"]}],
        }

    return ds.map(split, remove_columns=ds.column_names)


def corpus_text(chunks: Dataset, val_share: float = 0.05, seed: int = 0) -> tuple[Dataset, Dataset | None]:
    """Raw chunk text for continued pretraining; a small held-out share for validation."""
    text = chunks.select_columns(["text"]).filter(lambda r: bool(r["text"].strip()))
    if len(text) == 0:
        raise InputError("the corpus has no text to pretrain on", hint="run `synthloop ingest DOCS`")
    if len(text) < 20:
        return text, None
    parts = text.train_test_split(test_size=val_share, seed=seed)
    return parts["train"], parts["test"]
