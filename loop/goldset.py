"""Human gold sets, read once for every stage: JSONL (``{"question", "answers", "doc"?,
"chunk_ids"?}``, and for other tasks ``"task": "classify"`` with ``"label"``/``"labels"``,
``"task": "extract"`` with ``"fields"``, and on any item a ``"format"`` spec, see
:mod:`generators.formats`) or SQuAD-format JSON.

``generate`` needs only the questions (to keep near-duplicates out of the training data);
``eval``, ``run`` and ``retrieval-eval`` need answerable items. All read through here, and
this reads through the one parser, :mod:`retrieval.evalset`. A JSONL line that
cannot be used is passed over and named (``.skipped`` of what is returned, ``"FILE:N:
reason"``), the other lines kept; a file that cannot be read, or has no usable line, is one
:class:`~loop.errors.InputError` naming the file and the first line's reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loop.errors import InputError


def read_gold_set(path: Path) -> list[Any]:
    """Every answerable question of the file (``retrieval.metrics.EvalItem``)."""
    from generators.formats import FormatError, parse_spec
    from retrieval.errors import RetrievalError
    from retrieval.evalset import load_eval_set

    try:
        items = load_eval_set(path)
    except RetrievalError as e:
        raise InputError(str(e)) from e
    kept = []
    for it in items:
        try:
            if it.format is not None:
                object.__setattr__(it, "format", parse_spec(it.format))  # validated, normalised
            kept.append(it)
        except FormatError as e:
            items.skipped.append(f"{path.name}: item {it.id}: {e}")
    if not kept:
        raise InputError(f"eval set {path} holds no usable question (the first refused: "
                         f"{items.skipped[0]})")
    items[:] = kept
    return items


def gold_questions(path: Path, *, tasks: bool = False) -> list[Any]:
    """Every question of the file, answered or not; with ``tasks``, (question, task) pairs."""
    from retrieval.errors import RetrievalError
    from retrieval.evalset import parse_questions

    try:
        out = parse_questions(read_text_file(path), path)
    except RetrievalError as e:
        raise InputError(str(e)) from e
    if not out and out.skipped:
        raise InputError(f"{path}: no line holds a question (the first refused: {out.skipped[0]})")
    if not tasks:
        out[:] = [q for q, _ in out]
    return out


def read_text_file(path: Path) -> str:
    """A user's text file (a gold set, a style guide); unreadable or non-UTF-8 is one line."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})",
                         hint="save it as UTF-8") from e
