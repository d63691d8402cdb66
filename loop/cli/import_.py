"""``synthloop import``: a user's own rows (messages, alpaca, sharegpt, a datasets folder) as
the workspace's dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loop.cli import app
from loop.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, emit_json, say, stage_sink, verb
from loop.workspace import Workspace


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(
        help="A .jsonl file (messages, alpaca or sharegpt rows) or a datasets folder "
             "(save_to_disk).")],
    task: Annotated[str, typer.Option(
        help="The task the rows train as (qa trains the tuned model; raft, rows with context "
             "in the user turn, trains with --with-context).")] = "qa",
    val_share: Annotated[float, typer.Option(
        min=0.0, max=0.99, help="Share of rows (by row hash) kept for validation.")] = 0.1,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_json: JsonOpt = False,
) -> None:
    """Import your own instruction rows as a dataset that train and export use like a
    generated one. A bad row is skipped with its line and the reason."""
    from loop.importer import import_rows

    with verb(as_json):
        with Workspace(workspace) as ws, stage_sink() as sink:
            result = import_rows(ws, path, task=task, val_share=val_share, emit=sink)
        s = result.summary()
        if as_json:
            emit_json(s)
            return
        state = "unchanged (cache hit)" if s["cached"] else "written"
        say((f"dataset {s['dataset_id']}", "bold green"),
            f" {state}: {s['rows']} {s['task']} rows ({s['train']} train, {s['val']} val)")
        if s["skipped"]:
            say((f"{len(s['skipped'])} skipped", "yellow"), " (reasons above; all of them in --json)")
        say(f"dataset at {s['dataset_path']}")
