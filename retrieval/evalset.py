"""Read gold question sets: JSONL (``{"question", "answers", "doc"?, "chunk_ids"?}``) or
SQuAD-format JSON."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.metrics import EvalItem


def load_eval_set(path: str | Path) -> list[EvalItem]:
    """Every answerable question of the file; a malformed file is a RetrievalError."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RetrievalError(f"cannot read eval set {path}: {e}") from e
    items = _squad(raw, path) if path.suffix == ".json" else _jsonl(raw, path)
    if not items:
        raise RetrievalError(f"eval set {path} holds no question with an answer")
    return items


def _jsonl(raw: str, path: Path) -> list[EvalItem]:
    items = []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers = row.get("answers") or ([row["answer"]] if row.get("answer") else [])
            item = EvalItem(str(row["question"]), [str(a) for a in answers],
                            [str(c) for c in row.get("chunk_ids") or []], str(row.get("id", n)),
                            str(row.get("doc") or ""))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RetrievalError(f"{path}:{n}: not a gold row "
                                 f'{{"question", "answers": [...]}}: {e}') from e
        if item.answers or item.chunk_ids:
            items.append(item)
    return items


def _squad(raw: str, path: Path) -> list[EvalItem]:
    try:
        data = json.loads(raw)
        items = []
        for article in data["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    answers = [a["text"] for a in qa.get("answers", [])]
                    if answers:
                        items.append(EvalItem(qa["question"], answers, [], str(qa.get("id", ""))))
        return items
    except (ValueError, KeyError, TypeError) as e:
        raise RetrievalError(f"{path}: not SQuAD JSON ({{'data': [{{'paragraphs': "
                             f"[{{'qas': ...}}]}}]}}): {e}") from e
