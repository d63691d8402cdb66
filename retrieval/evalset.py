"""Read gold question sets: JSONL (``{"question", "answers", "doc"?, "chunk_ids"?}``) or
SQuAD-format JSON. The one parser of a gold file: ``load_eval_set`` gives its answerable
items (``EvalItem``), ``parse_questions`` every question it asks, answered or not (what
generation keeps its rows away from); ``loop.goldset`` reads through both.

JSONL is read line by line: a line that cannot be used (not JSON, nested too deep for the
JSON reader, a field of the wrong type, an unknown task) is passed over and named in
``EvalSet.skipped`` with its line number and reason; the other lines are kept. A file with
no usable line is one error that says why the first was refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.errors import RetrievalError
from retrieval.metrics import EvalItem


class EvalSet(list):
    """The items of an eval set (a list), and ``skipped``: ``"line N: reason"`` for each
    line passed over."""

    def __init__(self, items: list[EvalItem] = (), skipped: list[str] | None = None) -> None:
        super().__init__(items)
        self.skipped: list[str] = skipped or []

    def skipped_note(self) -> str | None:
        """One line for a run's notes, or None when every line was read."""
        if not self.skipped:
            return None
        return (f"eval set: {len(self.skipped)} line(s) skipped, the others kept "
                f"(the first: {self.skipped[0]})")


def load_eval_set(path: str | Path) -> EvalSet:
    """Every answerable question of the file; a file that cannot be read, or holds no usable
    line, is a RetrievalError."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RetrievalError(f"cannot read eval set {path}: {e}") from e
    items = parse_eval_set(raw, path)
    if not items:
        why = (f" ({len(items.skipped)} line(s) skipped; the first: {items.skipped[0]})"
               if items.skipped else "")
        raise RetrievalError(f"eval set {path} holds no question with an answer{why}")
    return items


def parse_eval_set(raw: str, path: Path) -> EvalSet:
    """The answerable items of a gold file's text (``path`` names it and picks the format)."""
    if path.suffix == ".json":
        return EvalSet(_squad(raw, path))
    items = EvalSet()
    for n, row in _json_lines(raw, path, items.skipped):
        try:
            item = _row(row, n)
        except _BadLine as e:
            items.skipped.append(f"{path.name}:{n}: {e}")
            continue
        if item.answers or item.chunk_ids:
            items.append(item)
    return items


def parse_questions(raw: str, path: Path) -> EvalSet:
    """Every question of a gold file's text as ``(question, task)``, answered or not: a JSONL
    line is passed over (and named) only when it holds no question."""
    if path.suffix == ".json":
        return EvalSet([(qa["question"], "qa") for _, _, _, qa in _squad_qas(raw, path)])
    out = EvalSet()
    for n, row in _json_lines(raw, path, out.skipped):
        try:
            out.append((str(row["question"]), str(row.get("task") or "qa")))
        except (KeyError, TypeError, AttributeError):
            out.skipped.append(f"{path.name}:{n}: each line needs a JSON object with 'question'")
    return out


class _BadLine(Exception):
    """One line of a JSONL eval set cannot be used; the message says why."""


def _json_lines(raw: str, path: Path, skipped: list[str]):
    """``(line number, parsed JSON)`` for each non-blank line; a line that is not JSON is
    named in ``skipped`` instead."""
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except RecursionError:
            skipped.append(f"{path.name}:{n}: JSON nested too deep to read")
        except ValueError as e:
            skipped.append(f"{path.name}:{n}: not valid JSON ({e})")


def _row(row: object, n: int) -> EvalItem:
    try:
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
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise _BadLine(f'not a gold row {{"question", "answers": [...]}}: '
                       f"{type(e).__name__}: {e}") from e
    if task not in ("qa", "classify", "extract"):
        raise _BadLine(f"unknown task {task!r} (qa, classify or extract)")
    if task == "extract" and not fields:
        raise _BadLine("an extract item needs its gold 'fields' object")
    if task == "classify" and not answers:
        raise _BadLine('a classify item needs its gold label ("label" or "answers")')
    return item


def _squad(raw: str, path: Path) -> list[EvalItem]:
    """Each question is tied to its paragraph: ``doc`` is the source name the ingester gives
    that paragraph (``FILE#article.paragraph``), so an answer found in another paper does not
    count."""
    items = []
    for i, j, context, qa in _squad_qas(raw, path):
        try:
            answers = [whole_words(context, a.get("answer_start"), a["text"])
                       for a in qa.get("answers", [])]
        except (KeyError, TypeError, AttributeError) as e:
            raise _not_squad(path, e) from e
        if answers:
            items.append(EvalItem(qa["question"], answers, [], str(qa.get("id", "")),
                                  f"{path.name}#{i}.{j}"))
    return items


def _squad_qas(raw: str, path: Path) -> list[tuple[int, int, str, dict]]:
    """``(article, paragraph, context, qa)`` for every question of a SQuAD file, each with a
    ``question``; a file that is not SQuAD JSON is one RetrievalError."""
    try:
        data = json.loads(raw)
        out = []
        for i, article in enumerate(data["data"]):
            for j, para in enumerate(article["paragraphs"]):
                for qa in para.get("qas", []):
                    if "question" not in qa:  # refused here, for both readers alike
                        raise KeyError("question")
                    out.append((i, j, para.get("context") or "", qa))
        return out
    except RecursionError as e:
        # "RecursionError" named too: the questions' reader said so before they shared this
        raise RetrievalError(f"{path}: JSON nested too deep to read (RecursionError)") from e
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise _not_squad(path, e) from e


def _not_squad(path: Path, e: Exception) -> RetrievalError:
    return RetrievalError(f"{path}: not SQuAD JSON ({{'data': [{{'paragraphs': "
                          f"[{{'qas': ...}}]}}]}}): {e}")


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
