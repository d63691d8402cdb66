"""``synthloop import``: a team's own instruction rows become a dataset artefact.

Messages JSONL (``{"messages": [{role, content}, ...]}``), alpaca JSONL (``instruction``,
optional ``input``, ``system`` and ``history``, ``output``), sharegpt JSONL (``conversations:
[{from: human|gpt|system, value}]``) or a ``datasets`` folder (``save_to_disk``) holding any
of those shapes as columns. The rows get the generated rows' schema (``loop.samples``), the
same ledger row and the same ``current`` pointer, so ``train`` and ``export`` read them like
a generated dataset.

Each row is checked on its own: a bad one is skipped with its line and the reason, never
dropped silently. The id hashes the good rows, so an unchanged re-import is a cache hit.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.filters import Candidate, check_injection
from generators.tasks import TASKS, get_task
from loop.corpus import current_corpus_id
from loop.errors import InputError
from loop.events import EventSink, Warned, null_sink
from loop.samples import make_sample, samples_dataset
from loop.stage import stage_run
from loop.workspace import Workspace, save_dataset, write_json

# Part of every imported dataset's id: bump it when reading or checking rows changes.
IMPORT_VERSION = "import-1"
MAX_ROW_BYTES = 4 * 2**20  # one chat of 4 MiB is no training row; a longer line is not parsed
MAX_JSON_BYTES = 256 * 2**20  # a .json array is parsed whole; JSONL is streamed
MAX_DEPTH = 16  # the shapes nest 3 levels (row, turns, turn); deeper is not a chat
MAX_TURNS = 512
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system"}


class BadRow(Exception):
    """Why one row cannot be imported (internal: it becomes a ``skipped`` entry)."""


@dataclass
class ImportResult:
    dataset_id: str
    dataset_path: Path
    task: str
    rows: int
    train: int
    val: int
    skipped: list[dict[str, Any]]
    cached: bool
    formats: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dataset_path"] = str(self.dataset_path)
        return d


def importable_tasks() -> list[str]:
    """Tasks a user's rows can be: the trained ones (a chat, or a preference pair)."""
    return [n for n, t in TASKS.items() if t.row_kind in ("sft", "preference")]


def import_rows(ws: Workspace, path: Path, *, task: str = "qa", val_share: float = 0.1,
                emit: EventSink = null_sink) -> ImportResult:
    """Read ``path``, check every row, and write (or reuse) the dataset; make it current."""
    path = Path(path)
    t = _task(task)
    if not 0 <= val_share < 1:
        raise InputError(f"--val-share {val_share}: must be at least 0 and below 1")
    config = {"source": str(path), "task": task, "val_share": val_share, "version": IMPORT_VERSION}
    with stage_run(ws, "import", config, emit=emit) as run:
        rows, skipped, formats = _read(path, t, val_share, emit)
        if not rows:
            why = f"; first: line {skipped[0]['line']}: {skipped[0]['reason']}" if skipped else ""
            raise InputError(f"{path}: no row could be imported ({len(skipped)} skipped{why})")
        result = _write(ws, rows, skipped, formats, config)
        run.done(result.summary(), result.dataset_id)
    return result


run = import_rows


def _task(name: str) -> Any:
    if name not in importable_tasks():
        known = ", ".join(importable_tasks())
        if name in TASKS:
            raise InputError(f"--task {name}: its rows are not trained on (importable: {known})")
        raise InputError(f"--task {name}: unknown task (importable: {known})")
    return get_task(name)


# -- reading ----------------------------------------------------------------------------------


def _read(path: Path, task: Any, val_share: float,
          emit: EventSink) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    formats: Counter[str] = Counter()
    seen: dict[str, int] = {}
    for line, obj in _records(path):
        try:
            if isinstance(obj, BadRow):
                raise obj
            fmt, messages, rejected = to_messages(obj)
            check_row(messages)
            row = _sample(task, messages, rejected, fmt, val_share)
            if row["id"] in seen:
                raise BadRow(f"the same chat as line {seen[row['id']]}")
        except BadRow as e:
            skipped.append({"line": line, "reason": str(e)})
            emit(Warned("import", message=f"skipped: {e}", path=f"{path}:{line}"))
            continue
        seen[row["id"]] = line
        formats[fmt] += 1
        rows.append(row)
    return rows, skipped, dict(formats)


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line, parsed row or BadRow)`` for a JSONL file or a ``datasets`` folder."""
    if path.is_dir():
        yield from _dataset_rows(path)
    elif path.is_file() and path.suffix.lower() == ".json":
        yield from _json_array_rows(path)
    elif path.is_file():
        yield from _jsonl_rows(path)
    else:
        raise InputError(f"{path}: no such file or folder")


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with open(path, "rb") as f:
        n = 0
        while raw := f.readline(MAX_ROW_BYTES + 1):
            n += 1
            if len(raw) > MAX_ROW_BYTES and not raw.endswith(b"\n"):
                while (more := f.readline(2**20)) and not more.endswith(b"\n"):
                    pass  # the rest of the long line, read in bounded pieces and dropped
                yield n, BadRow(f"longer than {MAX_ROW_BYTES // 2**20} MiB")
                continue
            if n == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if raw.strip():
                yield n, _parse(raw)


def _json_array_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """A ``.json`` file holding one array of rows (alpaca's own files): its items, numbered
    from 1 (``line`` is then the item's number)."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise InputError(f"{path}: a .json file over {MAX_JSON_BYTES // 2**20} MiB",
                         hint="write it as JSONL, one row a line: it is then read line by line")
    items = _parse(path.read_bytes().removeprefix(codecs.BOM_UTF8))
    if isinstance(items, BadRow):
        raise InputError(f"{path}: {items}")
    if not isinstance(items, list):
        raise InputError(f"{path}: a .json file must hold an array of rows, not {_kind(items)}")
    yield from enumerate(items, 1)


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return BadRow(f"not UTF-8 text (byte {e.start})")
    try:
        obj = json.loads(text)
    except RecursionError:
        return BadRow(f"nested deeper than {MAX_DEPTH} levels")
    except json.JSONDecodeError as e:
        return BadRow(f"invalid JSON: {e.msg} (column {e.colno})")
    if _depth(obj) > MAX_DEPTH:
        return BadRow(f"nested deeper than {MAX_DEPTH} levels")
    return obj


def _depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((c, d + 1) for c in children)
    return deepest


def _dataset_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """The rows of a ``save_to_disk`` folder (a DatasetDict's splits one after the other,
    numbered on from each other); a workspace's own ``datasets/<id>`` folder works too."""
    from datasets import DatasetDict, load_from_disk

    folder = next((p for p in (path, path / "data") if (p / "dataset_info.json").is_file()
                   or (p / "dataset_dict.json").is_file()), None)
    if folder is None:
        raise InputError(f"{path}: not a datasets folder (no dataset_info.json or dataset_dict.json)",
                         hint="import a .jsonl file, or a folder written by Dataset.save_to_disk")
    try:
        ds = load_from_disk(str(folder))
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot read the datasets folder: {e}") from e
    parts = list(ds.values()) if isinstance(ds, DatasetDict) else [ds]
    n = 0
    for part in parts:
        for row in part:
            n += 1
            yield n, {k: v for k, v in row.items() if v is not None}


# -- shapes -----------------------------------------------------------------------------------


def to_messages(obj: Any) -> tuple[str, list[dict[str, str]], str]:
    """``(format, messages, rejected)`` of one row in any of the three shapes."""
    if not isinstance(obj, dict):
        raise BadRow(f"a row must be a JSON object, not {_kind(obj)}")
    rejected = _text(obj.get("rejected", ""), "rejected")
    if obj.get("messages") is not None:
        return "messages", _turns(obj["messages"], "messages", "role", "content", None), rejected
    if obj.get("conversations") is not None:
        turns = obj["conversations"]
        keys = ("role", "content") if turns and isinstance(turns[0], dict) and "from" not in turns[0] \
            else ("from", "value")
        return "sharegpt", _turns(turns, "conversations", *keys, SHAREGPT_ROLES), rejected
    if "instruction" in obj or "output" in obj:
        return "alpaca", _alpaca(obj), rejected
    raise BadRow("unknown shape: expected messages, conversations (sharegpt) or "
                 "instruction/output (alpaca)")


def _turns(turns: Any, name: str, role_key: str, content_key: str,
           roles: dict[str, str] | None) -> list[dict[str, str]]:
    if not isinstance(turns, list):
        raise BadRow(f"{name} must be a list, not {_kind(turns)}")
    if len(turns) > MAX_TURNS:
        raise BadRow(f"{len(turns)} turns (at most {MAX_TURNS})")
    out = []
    for i, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            raise BadRow(f"turn {i} must be an object, not {_kind(turn)}")
        role = turn.get(role_key)
        role = (roles or {r: r for r in ROLES}).get(role) if isinstance(role, str) else None
        if role is None:
            known = ", ".join(roles or ROLES)
            raise BadRow(f"turn {i}: {role_key} must be one of {known}, not {_short(turn.get(role_key))}")
        out.append({"role": role, "content": _content(turn.get(content_key), i)})
    return out


def _content(value: Any, turn: int) -> str:
    if isinstance(value, list):  # OpenAI content parts: the text ones, joined
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                   for p in value):
            raise BadRow(f"turn {turn}: content parts other than text")
        value = "".join(p["text"] for p in value)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRow(f"turn {turn}: content must be text, not {_kind(value)}")
    return value


def _alpaca(obj: dict[str, Any]) -> list[dict[str, str]]:
    instruction = _text(obj.get("instruction", ""), "instruction")
    extra = _text(obj.get("input", ""), "input")
    system = _text(obj.get("system", ""), "system")
    msgs = [{"role": "system", "content": system}] if system.strip() else []
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in history):
        raise BadRow("history must be a list of [instruction, answer] pairs")
    for q, a in history:
        msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    user = f"{instruction}\n\n{extra}" if extra.strip() and instruction.strip() else instruction or extra
    return msgs + [{"role": "user", "content": user},
                   {"role": "assistant", "content": _text(obj.get("output", ""), "output")}]


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRow(f"{name} must be text, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)[:40] if value is not None else "none"
    return ascii(text[:40])  # a role name from the file, printed: kept short and plain


# -- checks -----------------------------------------------------------------------------------


def check_row(messages: list[dict[str, str]]) -> None:
    """System only first; then user and assistant alternate, from user to assistant; no
    empty turn. Raises :class:`BadRow` with the first problem."""
    for i, m in enumerate(messages, 1):
        if not m["content"].strip():
            raise BadRow(f"turn {i} ({m['role']}) is empty")
        if m["role"] == "system" and i != 1:
            raise BadRow(f"turn {i} is a system turn: only the first turn may be")
    chat = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if not chat:
        raise BadRow("no user and assistant turns")
    offset = len(messages) - len(chat)
    for i, m in enumerate(chat):
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            raise BadRow(f"turn {i + 1 + offset} is {m['role']}, expected {want}: roles must "
                         "alternate user/assistant")
    if chat[-1]["role"] != "assistant":
        raise BadRow("the last turn is a user turn: a row must end with the assistant's answer")


def _sample(task: Any, messages: list[dict[str, str]], rejected: str, fmt: str,
            val_share: float) -> dict[str, Any]:
    if task.row_kind == "preference" and not rejected.strip():
        raise BadRow(f"a {task.name} row needs a rejected answer (a \"rejected\" field)")
    users = [m["content"] for m in messages if m["role"] == "user"]
    prompt = [m["content"] for m in messages if m["role"] != "assistant"]
    c = Candidate(question=users[-1], answer=messages[-1]["content"], source_text="\n".join(prompt),
                  task=task.name)
    check_injection(c)  # the check generated rows get: an answer that obeys injected text
    if c.rejected_by:
        raise BadRow("the answer follows an instruction injected in the prompt (injection filter)")
    row = make_sample(task.name, messages, [], teacher="import", prompt_version=f"import.{fmt}",
                      filters=c.verdicts, rejected=rejected if task.row_kind == "preference" else "")
    row["split"] = _split(row["id"], val_share)
    return row


def _split(row_id: str, val_share: float) -> str:
    bucket = int(hashlib.sha256(row_id.encode()).hexdigest()[:8], 16) % 1000
    return "val" if bucket < val_share * 1000 else "train"


# -- writing ----------------------------------------------------------------------------------


def _dataset_id(rows: list[dict[str, Any]], config: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for part in (IMPORT_VERSION, config["task"], config["val_share"], *sorted(r["id"] for r in rows)):
        h.update(str(part).encode() + b"\x00")
    return h.hexdigest()[:16]


def _write(ws: Workspace, rows: list[dict[str, Any]], skipped: list[dict[str, Any]],
           formats: dict[str, int], config: dict[str, Any]) -> ImportResult:
    dataset_id = _dataset_id(rows, config)
    final = ws.artefact("datasets", dataset_id)
    train = sum(1 for r in rows if r["split"] == "train")
    result = ImportResult(dataset_id, final, config["task"], len(rows), train, len(rows) - train,
                          skipped, cached=final.exists(), formats=formats)
    if not result.cached:
        with ws.atomic_dir(final) as tmp:
            save_dataset(samples_dataset(rows), tmp / "data")
            write_json(tmp / "synthloop.json", {"kind": "train", "config": config,
                                                 "summary": result.summary()})
    db = ws.ledger
    with db.transaction():
        db.insert("datasets", conflict="replace", id=dataset_id, kind="train",
                  corpus_id=current_corpus_id(ws) or "", path=str(final), created_at=time.time(),
                  teacher="import", n_samples=len(rows), n_rejected=len(skipped), config=config,
                  summary=result.summary())
        db.set_current("dataset", dataset_id)
    return result
