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
    say,
    stage_sink,
    verb,
)
from loop.cli.flags import config_flags, prefer_option, source_weights
from loop.config import resolve
from loop.generate import GenerateConfig
from loop.stages import read_config_file
from loop.workspace import Workspace

RUN = "what this run reads and writes (not [generate] keys)"


@app.command()
@config_flags(GenerateConfig, skip={"focus"})
def generate(
    overrides: dict,
    prefer: prefer_option(GenerateConfig) = None,
    eval_set: Annotated[Path | None, typer.Option(
        help="Gold eval set (JSONL question/answers, or SQuAD JSON): near-duplicates of its "
             "questions are removed from the training data.", rich_help_panel=RUN)] = None,
    style: Annotated[Path | None, typer.Option(
        help="A style guide (plain text) applied to the teacher's answers.",
        rich_help_panel=RUN)] = None,
    eval_mode: Annotated[bool, typer.Option(
        "--eval", help="Write a generated eval set instead (a separate prompt, decontaminated "
                       "against the training questions).", rich_help_panel=RUN)] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the number of calls and the estimated tokens and cost; "
                          "spend nothing.", rich_help_panel=RUN)] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Turn the corpus into a grounded, deduplicated, resumable instruction dataset.

    Every teacher call is cached in the workspace ledger: re-running a killed run continues
    where it stopped. The API key is read from $OPENAI_API_KEY and never stored.
    """
    from loop.generate import plan, run

    with verb(as_json):
        cfg = resolve(GenerateConfig, read_config_file(config).get("generate"), **overrides,
                      source_weights=source_weights(prefer))
        with Workspace(workspace) as ws:
            if dry_run:
                estimate = plan(ws, cfg, eval_mode=eval_mode)
                emit_json(estimate) if as_json else console.print_json(json.dumps(estimate))
                return
            with stage_sink() as sink:
                result = run(ws, cfg, eval_mode=eval_mode, eval_set=eval_set, style_file=style,
                             emit=sink, api_key=os.environ.get("OPENAI_API_KEY"))
        s = result.summary()
        failed_all = result.failed_all()
        if failed_all:  # an empty dataset with every job failed is a failure, not a success
            s["error"] = failed_all
        if as_json:
            emit_json(s)
            if failed_all:
                raise typer.Exit(1)
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
        if failed_all:
            say(("error:", "red"), " ", s["error"])
            raise typer.Exit(1)
