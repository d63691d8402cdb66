"""``synthloop index``: build or update the BM25 and FAISS indexes of the corpus."""

from __future__ import annotations

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
    weights_text,
)
from loop.cli.flags import config_flags, prefer_option, source_weights
from loop.config import resolve
from loop.index import IndexConfig
from loop.stages import read_config_file
from loop.workspace import Workspace


@app.command()
@config_flags(IndexConfig)
def index(
    overrides: dict,
    prefer: prefer_option(IndexConfig) = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build or update the BM25 and dense indexes of the workspace's corpus.

    An unchanged corpus is a cache hit; a changed one embeds only its new or changed text.
    Search settings (k, method, fusion, reranker ...) are stored with the index as its
    defaults; `search` and the RAG setups use them unless told otherwise.
    """
    from loop.index import run

    with verb(as_json):
        cfg = resolve(IndexConfig, read_config_file(config).get("index"), **overrides,
                      source_weights=source_weights(prefer))
        with Workspace(workspace) as ws, stage_sink() as sink:
            result = run(ws, cfg, emit=sink)
        summary = result.summary()
        if as_json:
            emit_json(summary)
            return
        state = "unchanged (cache hit)" if summary["cached"] else "written"
        say((f"index {summary['index_id']}", "bold green"),
            f" {state}: {summary['chunks']} chunks, "
            f"{summary['units']} sentence units ({summary['embedded']} embedded, "
            f"{summary['reused']} reused) in {summary['seconds']:.1f} s")
        if cfg.source_weights:
            say(f"preferred sources: {weights_text(cfg.source_weights)}")
        say(f"index at {summary['index_path']}")
