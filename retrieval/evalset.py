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
            answers = (row.get("answers") or ([row["answer"]] if row.get("answer") else [])
                       or ([row["label"]] if row.get("label") else []))
            task = str(row.get("task") or "qa")
            fields = row.get("fields")
            if fields is not None and not isinstance(fields, dict):
                raise TypeError("'fields' must be a JSON object")
            if task == "extract" and fields and not answers:
                answers = [json.dumps(fields, ensure_ascii=False)]
            fmt = row.get("format")
            if fmt is not None and not isinstance(fmt, dict | str):
                raise TypeError("'format' must be a JSON object")
            item = EvalItem(str(row["question"]), [str(a) for a in answers],
                            [str(c) for c in row.get("chunk_ids") or []], str(row.get("id", n)),
                            str(row.get("doc") or ""), task,
                            [str(x) for x in row.get("labels") or []], fields, fmt or None)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RetrievalError(f"{path}:{n}: not a gold row "
                                 f'{{"question", "answers": [...]}}: {e}') from e
        if task not in ("qa", "classify", "extract"):
            raise RetrievalError(f"{path}:{n}: unknown task {task!r} (qa, classify or extract)")
        if task == "extract" and not fields:
            raise RetrievalError(f"{path}:{n}: an extract item needs its gold 'fields' object")
        if task == "classify" and not answers:
            raise RetrievalError(f"{path}:{n}: a classify item needs its gold label "
                                 '("label" or "answers")')
        if item.answers or item.chunk_ids:
            items.append(item)
    return items


def _squad(raw: str, path: Path) -> list[EvalItem]:
    """Each question is tied to its paragraph: ``doc`` is the source name the ingester gives
    that paragraph (``FILE#article.paragraph``), so an answer found in another paper does not
    count."""
    try:
        data = json.loads(raw)
        items = []
        for i, article in enumerate(data["data"]):
            for j, para in enumerate(article["paragraphs"]):
                context = para.get("context") or ""
                for qa in para["qas"]:
                    answers = [whole_words(context, a.get("answer_start"), a["text"])
                               for a in qa.get("answers", [])]
                    if answers:
                        items.append(EvalItem(qa["question"], answers, [], str(qa.get("id", "")),
                                              f"{path.name}#{i}.{j}"))
        return items
    except (ValueError, KeyError, TypeError) as e:
        raise RetrievalError(f"{path}: not SQuAD JSON ({{'data': [{{'paragraphs': "
                             f"[{{'qas': ...}}]}}]}}): {e}") from e


def whole_words(context: str, start: object, text: str) -> str:
    """A SQuAD answer widened to the whole words of its context.

    Some sets (covidqa among them) hold spans that start or end inside a word ("he clean
    area" for "the clean area"); whole-word matching can never find those, so a span that
    lies at ``start`` in ``context`` (or, when that offset is off, anywhere in it) is widened
    to word boundaries. An answer not in its context is kept as it is.
    """
    if not text or not isinstance(start, int) or context[start : start + len(text)] != text:
        start = context.find(text) if text else -1
    if start < 0:
        return text
    a, b = start, start + len(text)
    while a > 0 and context[a - 1].isalnum():
        a -= 1
    while b < len(context) and context[b].isalnum():
        b += 1
    return context[a:b]
