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
    emit_json,
    say,
    stage_sink,
    verb,
)
from loop.cli.flags import config_flags, serve_option, served_setups
from loop.config import resolve
from loop.eval.config import EvalConfig
from loop.stages import read_config_file
from loop.workspace import Workspace


@app.command("eval")
@config_flags(EvalConfig)
def eval_(
    overrides: dict,
    eval_set: Annotated[Path | None, typer.Option(
        help="Human gold set: JSONL {question, answers, doc?} or SQuAD JSON (default: the "
             "generated eval set).")] = None,
    serve: serve_option(EvalConfig) = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every setup on one question set, with 95% intervals and paired differences,
    and write the report."""
    from loop.eval import run
    from loop.eval.report import write_report

    with verb(as_json):
        cfg = resolve(EvalConfig, read_config_file(config).get("eval"), **overrides,
                      serve=served_setups(serve))
        with Workspace(workspace) as ws:
            with stage_sink() as sink:
                result = run(ws, cfg, eval_set=eval_set, emit=sink)
            report = write_report(ws, result.path)
        _show(result.summary(), report, as_json)


@app.command()
def report(
    evaluation: Annotated[str | None, typer.Argument(
        help="Evaluation id (default: the latest).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder to write into (default: beside the scores).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a report already in --out.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """Write the report of an evaluation: markdown with the verdict, JSON and PNG figures."""
    from loop.eval.report import report_evaluation

    with verb(as_json), Workspace(workspace) as ws:
        scores, paths = report_evaluation(ws, evaluation, out, force=force)
        _show(scores, paths, as_json)


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
    from loop.eval.metrics import METRICS, legend

    def cell(label: str, v: dict) -> str:
        return f"{label} {v['mean']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"

    lead = summary.get("lead_metric") or "f1"
    shown: dict[str, str] = {}  # metric: the name its cells carry, for the legend below
    served = (summary.get("lineage") or {}).get("served") or {}
    for setup, row in summary["setups"].items():
        parts = [cell("F1", row["f1"]), f"EM {row['em']['mean']:.3f}"] if "f1" in row else []
        if "f1" in row:
            shown.update(f1="F1", em="EM")
        if lead != "f1" and lead in row:
            parts.insert(0, cell(f"{lead} (lead)", row[lead]))
            shown[lead] = lead
        heads = [name for name, m in METRICS.items() if m.headline and name in row]
        parts += [cell(name, row[name]) for name in heads]
        shown.update({name: name for name in heads})
        mark = " (served)" if setup in served else ""
        say(f"  {setup:<10} " + "   ".join(parts) + mark)
    meanings = dict(legend(shown))
    for name, label in shown.items():  # in the order the cells above print them
        say(f"  {label}: {meanings[name]}")
    if served:
        say("served: " + ", ".join(f"{setup} by {x['model']} at {x['url']}"
                                   for setup, x in served.items()))
    cov = summary.get("coverage")
    if cov and cov.get("share") is not None:
        say(f"coverage ceiling: {cov['covered']}/{cov['questions']} gold answers "
            f"({cov['share']:.0%}) were trained as answers (closed-book recall cannot exceed it)")
