"""``synthloop generate``: the teacher turns the corpus into a synthetic dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    emit_json,
    field_help,
    say,
    verb,
)
from loop.config import read_config_file, resolve
from loop.errors import InputError
from loop.render import RichSink
from loop.workspace import Workspace


def _opt(name: str, *flags: str, **kw):  # noqa: ANN002, ANN003, ANN202 - help is the field's
    from loop.generate import GenerateConfig

    return typer.Option(*flags, help=field_help(GenerateConfig, name), show_default=False, **kw)


@app.command()
def generate(
    teacher: Annotated[str | None, _opt("teacher")] = None,
    tasks: Annotated[str | None, _opt("tasks")] = None,
    limit: Annotated[int | None, _opt("limit")] = None,
    per_chunk: Annotated[int | None, _opt("per_chunk")] = None,
    teacher_url: Annotated[str | None, _opt("teacher_url")] = None,
    concurrency: Annotated[int | None, _opt("concurrency")] = None,
    timeout: Annotated[float | None, _opt("timeout")] = None,
    judge: Annotated[str | None, _opt("judge")] = None,
    trust_remote_code: Annotated[bool | None, _opt("trust_remote_code", "--trust-remote-code")] = None,
    allow_pickle: Annotated[bool | None, _opt("allow_pickle", "--allow-pickle")] = None,
    dedup_embedder: Annotated[str | None, _opt("dedup_embedder")] = None,
    price_per_1k: Annotated[float | None, _opt("price_per_1k")] = None,
    seed: Annotated[int | None, _opt("seed")] = None,
    eval_set: Annotated[Path | None, typer.Option(
        help="Gold eval set (JSONL question/answers, or SQuAD JSON): near-duplicates of its "
             "questions are removed from the training data.")] = None,
    style: Annotated[Path | None, typer.Option(
        help="A style guide (plain text) applied to the teacher's answers.")] = None,
    eval_mode: Annotated[bool, typer.Option(
        "--eval", help="Write a generated eval set instead (a separate prompt, decontaminated "
                       "against the training questions).")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the number of calls and the estimated tokens and cost; spend nothing.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn the corpus into a grounded, deduplicated, resumable instruction dataset.

    Every teacher call is cached in the workspace ledger: re-running a killed run continues
    where it stopped. The API key is read from $OPENAI_API_KEY and never stored.
    """
    from loop.generate import GenerateConfig, plan
    from loop.generate import generate as run

    with verb(as_json):
        cfg = resolve(GenerateConfig, read_config_file(config).get("generate"),
                      teacher=teacher, limit=limit, per_chunk=per_chunk, teacher_url=teacher_url,
                      concurrency=concurrency, timeout=timeout, judge=judge, dedup_embedder=dedup_embedder,
                      price_per_1k=price_per_1k, seed=seed,
                      trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                      tasks=[t.strip() for t in tasks.split(",") if t.strip()] if tasks else None)
        with Workspace(workspace) as ws:
            if dry_run:
                estimate = plan(ws, cfg, eval_mode=eval_mode)
                emit_json(estimate) if as_json else console.print_json(json.dumps(estimate))
                return
            questions = load_eval_questions(eval_set) if eval_set else []
            style_text = _read_text(style) if style else ""
            sink = RichSink(console)
            try:
                result = run(ws, cfg, eval_mode=eval_mode, eval_questions=questions,
                             style=style_text, emit=sink, api_key=os.environ.get("OPENAI_API_KEY"))
            finally:
                sink.close()
        s = result.summary()
        if as_json:
            emit_json(s)
            return
        state = "unchanged (cache hit)" if s["cached"] else "written"
        say((f"{s['kind']} dataset {s['dataset_id']}", "bold green"),
            f" {state}: {s['samples']} samples ({s['train']} train, {s['val']} val) {s['by_task']}")
        if s["rejected"]:
            say(f"rejected: {s['rejected']}")
        if s["failed_chunks"]:
            first = s["failed_chunks"][0]
            say((f"{len(s['failed_chunks'])} jobs failed", "yellow"),
                f" (listed in --json; the first: {first['task']} on {first['chunk_id']}: "
                f"{first['reason']}); this dataset holds the rest. Run the same command again to "
                "retry them: the jobs that worked come back from the cache")
        say(f"at {s['dataset_path']}")


def load_eval_questions(path: Path) -> list[str]:
    """Questions of a gold eval set: JSONL with ``question``, or SQuAD JSON."""
    text = _read_text(path)
    if path.suffix == ".json":
        try:
            data = json.loads(text)
            return [qa["question"] for art in data["data"] for p in art["paragraphs"]
                    for qa in p.get("qas", [])]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not a SQuAD-format eval set ({type(e).__name__}: {e})") from e
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            out.append(str(item["question"]))
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}:{n}: each line needs a JSON object with 'question'") from e
    return out


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})",
                         hint="save it as UTF-8") from e
