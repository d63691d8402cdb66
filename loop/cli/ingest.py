"""``synthloop ingest``: files and folders into the workspace's chunked corpus."""

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
from loop.cli.flags import config_flags
from loop.config import resolve
from loop.ingest.config import IngestConfig
from loop.stages import read_config_file
from loop.workspace import Workspace


@app.command()
@config_flags(IngestConfig)
def ingest(
    overrides: dict,
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive) to ingest.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read .md .txt .rst .html .pdf, SQuAD .json and .jsonl files into chunks.

    Unchanged files are not read again; changed files replace only their own chunks;
    files that cannot be read are skipped with the reason.
    """
    from loop.ingest import run
    from loop.ingest.stage import require_chunks

    with verb(as_json):
        cfg = resolve(IngestConfig, read_config_file(config).get("ingest"), **overrides)
        with Workspace(workspace) as ws, stage_sink() as sink:
            result = run(ws, paths, cfg, emit=sink)
        summary = result.summary()
        if not as_json:
            require_chunks(result, paths)
        if as_json:
            emit_json(summary)
            return
        _print_summary(summary)


def _print_summary(s: dict) -> None:
    state = "unchanged (cache hit)" if s["cached"] else "written"
    say((f"corpus {s['corpus_id']}", "bold green"),
        f" {state}: {s['documents']} documents, "
        f"{s['chunks']} chunks from {s['files']} files "
        f"({s['read']} read, {s['unchanged']} unchanged, {s['removed']} removed, "
        f"{s['duplicates']} duplicates)")
    if s["skipped"]:
        say((f"{len(s['skipped'])} skipped", "yellow"), " (reasons above; all of them in --json)")
    say(f"corpus at {s['corpus_path']}")
