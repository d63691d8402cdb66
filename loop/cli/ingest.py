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
    console,
    emit_json,
    field_help,
    say,
    verb,
)
from loop.config import IngestConfig, read_config_file, resolve
from loop.render import RichSink
from loop.workspace import Workspace


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders (recursive) to ingest.")],
    chunk_tokens: Annotated[
        int | None, typer.Option(help=field_help(IngestConfig, "chunk_tokens"), show_default=False)
    ] = None,
    overlap_tokens: Annotated[
        int | None, typer.Option(help=field_help(IngestConfig, "overlap_tokens"), show_default=False)
    ] = None,
    tokens_per_word: Annotated[
        float | None, typer.Option(help=field_help(IngestConfig, "tokens_per_word"), show_default=False)
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Read .md .txt .rst .html .pdf, SQuAD .json and .jsonl files into chunks.

    Unchanged files are not read again; changed files replace only their own chunks;
    files that cannot be read are skipped with the reason.
    """
    with verb(as_json):
        cfg = resolve(IngestConfig, read_config_file(config).get("ingest"),
                      chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens,
                      tokens_per_word=tokens_per_word)
        sink = RichSink(console)
        with Workspace(workspace) as ws:
            try:
                result = ingest_stage(ws, paths, cfg, emit=sink)
            finally:
                sink.close()
        summary = result.summary()
        if as_json:
            emit_json(summary)
            return
        _print_summary(summary)


def ingest_stage(*args, **kwargs):  # noqa: ANN002, ANN003 - thin alias, keeps the verb's name free
    from loop.ingest import ingest as run

    return run(*args, **kwargs)


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
