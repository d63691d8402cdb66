"""``synthloop eval`` and ``synthloop report``: score the setups, then explain the scores."""

from __future__ import annotations

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
    say,
    verb,
)
from loop.config import read_config_file, resolve
from loop.errors import InputError
from loop.render import RichSink
from loop.workspace import Workspace


@app.command("eval")
def eval_(
    eval_set: Annotated[Path | None, typer.Option(
        help="Human gold set: JSONL {question, answers, doc?} or SQuAD JSON (default: the "
             "generated eval set).")] = None,
    setups: Annotated[str | None, typer.Option(
        help="Comma-separated: base,rag,tuned,tuned+rag,combined.")] = None,
    student: Annotated[str | None, typer.Option(help="Student URI (default: the tuned model's).")] = None,
    max_questions: Annotated[int | None, typer.Option(help="Score only the first N questions.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Answer length limit (all setups).")] = None,
    k: Annotated[int | None, typer.Option(help="Chunks retrieved per question.")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | mps.")] = None,
    judge: Annotated[str | None, typer.Option(help="LLM judge URI (openai:MODEL or hf:PATH): a reference-guided correctness grade.")] = None,
    judge_url: Annotated[str | None, typer.Option(help="Base URL of the judge's server (else $OPENAI_BASE_URL).")] = None,
    trust_remote_code: Annotated[bool | None, typer.Option(
        "--trust-remote-code", help="Run model code shipped with the student's checkpoint.",
        show_default=False)] = None,
    allow_pickle: Annotated[bool | None, typer.Option(
        "--allow-pickle", help="Load a student that has only pickle weights (trusted sources "
                               "only: unpickling can run code).", show_default=False)] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every setup on one question set, with 95% intervals and paired differences,
    and write the report."""
    from loop.eval.report import write_report
    from loop.eval.stage import EvalConfig, evaluate

    with verb(as_json):
        cfg = resolve(EvalConfig, read_config_file(config).get("eval"), student=student,
                      max_questions=max_questions, max_new_tokens=max_new_tokens, k=k,
                      device=device, judge=judge, judge_url=judge_url,
                      trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                      setups=[s.strip() for s in setups.split(",")] if setups else None)
        sink = RichSink(console)
        with Workspace(workspace) as ws:
            try:
                result = evaluate(ws, cfg, eval_set=eval_set, emit=sink)
            finally:
                sink.close()
            report = write_report(ws, result.path)
        _show(result.summary(), report, as_json)


@app.command()
def report(
    evaluation: Annotated[str | None, typer.Argument(
        help="Evaluation id (default: the latest).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write into (default: beside the scores).")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """Write the report of an evaluation: markdown with the verdict, JSON and PNG figures."""
    import json

    from loop.eval.report import write_report

    with verb(as_json):
        with Workspace(workspace) as ws:
            eid = evaluation or ws.ledger.current("eval")
            if not eid:
                raise InputError("no evaluation yet", hint="run `synthloop eval` first")
            path = ws.eval_dir(eid)
            if not (path / "scores.json").exists():
                raise InputError(f"no evaluation {eid} in {ws.root}")
            paths = write_report(ws, path, out)
        _show(json.loads((path / "scores.json").read_text()), paths, as_json)


def _show(summary: dict, report: dict, as_json: bool) -> None:
    if as_json:
        emit_json({**summary, "report": report})
        return
    show_scores(summary)
    for note in summary.get("notes") or []:  # a judge server's error, a hint: outside text
        say(("note:", "yellow"), " ", note)
    say(f"report: {report['markdown']}")


def show_scores(summary: dict) -> None:
    """The verdict and one line per setup (F1 with its interval, EM) on the console."""
    say(("Verdict.", "bold"), " ", summary["verdict"])
    for setup, row in summary["setups"].items():
        f1, em = row["f1"], row["em"]
        say(f"  {setup:<10} F1 {f1['mean']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]"
            f"   EM {em['mean']:.3f}")
