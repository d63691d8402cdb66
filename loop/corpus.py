"""Read the workspace's corpus: the chunk Dataset that ``ingest`` wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset

from loop.errors import WorkspaceError
from loop.workspace import Workspace, load_dataset


def current_corpus_id(ws: Workspace) -> str | None:
    """The id of the corpus the last ``ingest`` produced, or None before any."""
    return ws.ledger.current("corpus")


def require_corpus(ws: Workspace, corpus_id: str | None) -> str:
    """``corpus_id``, or the error a stage told of no corpus gives."""
    if not corpus_id:
        raise WorkspaceError(
            f"workspace {ws.root} has no corpus yet", hint="run `synthloop ingest DOCS` first"
        )
    return corpus_id


def corpus_path(ws: Workspace, corpus_id: str | None = None) -> Path:
    corpus_id = require_corpus(ws, corpus_id or current_corpus_id(ws))
    path = ws.artefact("corpus", corpus_id)
    if not path.exists():
        raise WorkspaceError(f"corpus {corpus_id} is missing from {ws.root}",
                             hint="run `synthloop ingest` again")
    return path


def load_corpus(ws: Workspace, corpus_id: str | None = None) -> Dataset:
    """The chunks (``chunk_id, doc_id, source, title, text, start, end``), memory-mapped."""
    return load_dataset(corpus_path(ws, corpus_id) / "data",
                        "run `synthloop ingest` on the same documents again")


def corpus_meta(ws: Workspace, corpus_id: str | None = None) -> dict[str, Any]:
    return json.loads((corpus_path(ws, corpus_id) / "synthloop.json").read_text())
