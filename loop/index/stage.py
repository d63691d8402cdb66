"""The index stage: the workspace's corpus into BM25 + FAISS indexes, and the retriever
that later stages (search, retrieval-eval, scoring) load.

An index artefact's id hashes the corpus id and the settings that change what is stored,
so re-indexing an unchanged corpus is a cache hit; a changed corpus reuses the previous
index's vectors and embeds only new or changed text.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from loop.config import resolve
from loop.corpus import corpus_meta, load_corpus, require_corpus
from loop.errors import ConfigError, InputError, StageError, WorkspaceError
from loop.events import EventSink, Finished, Progress, Started, Warned, null_sink
from loop.goldset import read_gold_set
from loop.handoff import Inputs, given
from loop.index.config import IndexConfig
from loop.stage import stage_run
from loop.workspace import Workspace, write_json
from retrieval import (
    IndexMismatchError,
    RetrievalError,
    RetrievalIndex,
    UnknownEmbedderError,
    evaluate,
    gold_counter,
)
from retrieval.methods import method_names
from retrieval.prompt import build_context


@dataclass
class IndexResult:
    index_id: str
    index_path: Path
    corpus_id: str
    chunks: int
    units: int
    embedded: int
    reused: int
    seconds: float
    cached: bool
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "index_path"}
        d["index_path"] = str(self.index_path)
        return d


def index_id_for(corpus_id: str, cfg: IndexConfig) -> str:
    return hashlib.sha256(f"{corpus_id}:{cfg.build_digest()}".encode()).hexdigest()[:16]


def build_index(ws: Workspace, cfg: IndexConfig | None = None,
                emit: EventSink = null_sink, *, inputs: Inputs | None = None) -> IndexResult:
    """Build (or find) the index of ``inputs.corpus_id``; the vectors of ``inputs.index_id``
    (an earlier index with the same embedder) are reused for the chunks it holds. Unset:
    the workspace's latest corpus and index."""
    from loop.plugins import load_plugins

    load_plugins()  # retrieval methods and embedders from installed plugins
    cfg = cfg or IndexConfig()
    cfg.settings()  # validate before taking the lock
    with stage_run(ws, "index", cfg.resolved(), emit=emit) as run:
        result = _build(ws, cfg, emit, given(ws, inputs))
        run.done(result.summary(), result.index_id)
    return result


def _build(ws: Workspace, cfg: IndexConfig, emit: EventSink, inputs: Inputs) -> IndexResult:
    corpus_id = require_corpus(ws, inputs.corpus_id)
    index_id = index_id_for(corpus_id, cfg)
    final = ws.artefact("index", index_id)
    if final.exists():
        meta = json.loads((final / "synthloop.json").read_text())
        if meta.get("config") != cfg.resolved():
            # The same build with other search settings (fusion, weights, k, method): the
            # index is reused and searches from now on use the settings just given.
            meta["config"] = cfg.resolved()
            write_json(final / "synthloop.json", meta)
        _record(ws, index_id, corpus_id, final, cfg)
        return IndexResult(index_id, final, corpus_id, meta["chunks"], meta["units"], 0,
                           meta["chunks"] + meta["units"], 0.0, True)
    chunks = load_corpus(ws, corpus_id).to_list()
    try:
        index = RetrievalIndex.build(chunks, cfg.settings(), previous=_previous(ws, cfg, inputs.index_id),
                                     progress=_progress(emit))
    except UnknownEmbedderError as e:
        raise ConfigError(str(e)) from e
    except RetrievalError as e:
        raise StageError(f"indexing failed: {e}") from e
    _advise_chunking(ws, corpus_id, index.stats)
    for w in index.stats.warnings:
        emit(Warned("index", message=w))
    s = index.stats
    with ws.atomic_dir(final) as tmp:
        index.save(tmp, corpus_id=corpus_id)
        write_json(tmp / "synthloop.json", {
            "kind": "index", "corpus_id": corpus_id, "config": cfg.resolved(),
            "chunks": s.chunks, "units": s.units, "embedded": s.embedded, "reused": s.reused,
            "seconds": round(s.seconds, 2), "warnings": s.warnings,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
    _record(ws, index_id, corpus_id, final, cfg)
    return IndexResult(index_id, final, corpus_id, s.chunks, s.units, s.embedded, s.reused,
                       round(s.seconds, 2), False, s.warnings)


def _advise_chunking(ws: Workspace, corpus_id: str, stats: Any) -> None:
    """Finish the over-window warning with the ingest setting that fits the window."""
    if not stats.over_window or not stats.warnings:
        return
    try:
        cfg = corpus_meta(ws, corpus_id)["config"]
        used, budget = float(cfg["tokens_per_word"]), int(cfg["chunk_tokens"])
    except (OSError, KeyError, TypeError, ValueError):
        return
    need = math.ceil(stats.tokens_per_word * 100) / 100
    fixes = []
    if budget > stats.window * 0.9:
        fixes.append(f"--chunk-tokens {int(stats.window * 0.85)}")
    if used < need:
        fixes.append(f"--tokens-per-word {need:.2f}")
    if fixes:
        stats.warnings[-1] += (f" Chunking assumed {budget} tokens at {used} per word: re-ingest "
                               f"with `{' '.join(fixes)}` so chunks fit the window.")
    else:
        stats.warnings[-1] += (f" Chunking already assumes {used} tokens per word: these chunks "
                               f"are denser than the text's average (numbers, names, sequences); "
                               f"a smaller --chunk-tokens would fit more of them.")


def _previous(ws: Workspace, cfg: IndexConfig, prev_id: str | None) -> RetrievalIndex | None:
    """The earlier index ``prev_id``, when its vectors can be reused (same embedder)."""
    path = ws.artefact("index", prev_id) if prev_id else None
    if path is None or not path.exists():
        return None
    try:
        prev = RetrievalIndex.load(path)
    except RetrievalError:
        return None  # unreadable or another format: embed from scratch
    return prev if prev.settings.embedder == cfg.embedder else None


def _progress(emit: EventSink):  # a closure over emit
    started: set[str] = set()
    t0 = time.perf_counter()

    def report(step: str, done: int, total: int) -> None:
        if step not in started:
            started.add(step)
            emit(Started("index", total=total, unit="texts", message=step))
        rate = done / max(time.perf_counter() - t0, 1e-6)
        emit(Progress("index", done=done, total=total, info={"texts/s": f"{rate:.0f}"}))

    return report


def _record(ws: Workspace, index_id: str, corpus_id: str, path: Path, cfg: IndexConfig) -> None:
    db = ws.ledger
    with db.transaction():
        db.insert("indexes", conflict="ignore", id=index_id, corpus_id=corpus_id, path=str(path),
                  created_at=time.time(), embedder=cfg.embedder, config=cfg.resolved())
        db.set_current("index", index_id)


# -- using an index ---------------------------------------------------------------------------


class Retriever:
    """The workspace's retriever: ``search(query, k, method)`` and the RAG context block."""

    def __init__(self, index: RetrievalIndex, cfg: IndexConfig, index_id: str) -> None:
        self.index, self.cfg, self.index_id = index, cfg, index_id

    def search(self, query: str, k: int | None = None, method: str | None = None) -> list:
        try:
            return self.index.search(query, k or self.cfg.k, method or self.cfg.method)
        except RetrievalError as e:
            raise InputError(str(e)) from e

    def context(self, query: str, k: int | None = None, method: str | None = None,
                max_tokens: int = 1500) -> tuple[str, list]:
        """The prompt block for ``query`` and the hits it was built from."""
        hits = self.search(query, k, method)
        return build_context(hits, max_tokens=max_tokens), hits


def load_retriever(ws: Workspace, cfg: IndexConfig | None = None, *, inputs: Inputs | None = None,
                   **overrides: Any) -> Retriever:
    """The index ``inputs.index_id``, which must be of ``inputs.corpus_id`` (unset: the
    workspace's latest of each). ``cfg`` (default: the one it was built with) and then
    ``overrides`` (flags; None means unset) may change how it is searched. Raises when the
    corpus has not been indexed."""
    inputs = given(ws, inputs)
    corpus_id, index_id = inputs.corpus_id, inputs.index_id
    path = ws.artefact("index", index_id) if index_id else None
    if path is None or not path.exists():
        raise WorkspaceError(f"workspace {ws.root} has no index", hint="run `synthloop index`")
    meta = json.loads((path / "synthloop.json").read_text())
    if meta["corpus_id"] != corpus_id:
        raise WorkspaceError("the index is of an older corpus", hint="run `synthloop index`")
    values = (cfg or IndexConfig(**meta["config"])).resolved()
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = resolve(IndexConfig, values)
    try:
        return Retriever(RetrievalIndex.load(path, settings=cfg.settings()), cfg, index_id)
    except IndexMismatchError as e:
        raise WorkspaceError(str(e), hint="run `synthloop index` with these settings") from e


def evaluate_retrieval(ws: Workspace, eval_set: Path, ks: list[int],
                       cfg: IndexConfig | None = None, methods: list[str] | None = None,
                       emit: EventSink = null_sink, **overrides: Any) -> dict[str, Any]:
    """Score every method on a gold set: recall@k, MRR@10, nDCG@10, words retrieved; with
    source weights, also how many first hits come from a preferred source and how many the
    weights changed."""
    read = read_gold_set(eval_set)  # the one gold-set reader, as eval's
    # retrieval scores find evidence for questions; classify/extract items have none
    items = [it for it in read if it.task == "qa"]
    if not items:
        raise InputError(f"{eval_set} holds no question-answer item to score retrieval on")
    retriever = load_retriever(ws, cfg, **overrides)
    count = gold_counter(retriever.index.chunks)
    retriever.index.prepare_queries([it.question for it in items])
    out: dict[str, Any] = {"default": retriever.cfg.method, "questions": len(items),
                           "budget_k": retriever.cfg.k, "index_id": retriever.index_id,
                           "methods": {}}
    if read.skipped:  # lines passed over are counted and named, never dropped in silence
        out["skipped_lines"] = read.skipped
    if retriever.cfg.source_weights:
        out["source_weights"] = dict(retriever.cfg.source_weights)
    for method in methods or method_names(rankers=False):
        emit(Started("retrieval-eval", total=len(items), unit="questions", message=method))
        searched: list[tuple[str, int, list]] = []
        scores = evaluate(
            lambda q, k, m=method, seen=searched: _kept(seen, q, k, retriever.search(q, k, m)),
            items, ks, count,
            budget_k=retriever.cfg.k,
            progress=lambda d, t: emit(Progress("retrieval-eval", done=d, total=t)),
        )
        emit(Finished("retrieval-eval"))
        out["methods"][method] = {**scores.figures,
                                  f"words@{retriever.cfg.k}": scores.words_per_question,
                                  "ms_per_query": scores.ms_per_query}
        if retriever.cfg.source_weights:
            out["methods"][method].update(_preference_effect(retriever.index, method, searched))
    return out


def _kept(searched: list, query: str, k: int, hits: list) -> list:
    searched.append((query, k, hits))
    return hits


def _preference_effect(index: RetrievalIndex, method: str,
                       searched: list[tuple[str, int, list]]) -> dict[str, float]:
    """``preferred@1``: the share of questions whose first hit has a source weight above 1;
    ``changed@1``: the share whose first hit differs from the same search without weights."""
    plain = copy.copy(index)  # shares the arrays; only the settings differ
    plain.settings = replace(index.settings, source_weights={})
    n = max(len(searched), 1)

    def first(hits: list) -> tuple | None:
        return (hits[0].chunk_id, hits[0].start) if hits else None

    preferred = sum(bool(hits) and hits[0].weight > 1 for _, _, hits in searched)
    changed = sum(first(hits) != first(plain.search(q, k, method)) for q, k, hits in searched)
    return {"preferred@1": round(preferred / n, 4), "changed@1": round(changed / n, 4)}
