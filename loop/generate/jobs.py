"""Which chunks a generate run asks and the teacher job for each: chunk selection (focus,
limit, the eval set's pool), items per chunk (source weights), the job key that caches
its teacher call, the RAFT context block, and the train / val / probe split of its rows."""

from __future__ import annotations

import functools
import hashlib
import math
import random
from typing import Any

from generators.tasks import EVAL_TASK, TASKS, Record, get_task
from generators.teachers import Chunk, Job
from loop.corpus import load_corpus, require_corpus
from loop.generate.config import GenerateConfig
from loop.workspace import Workspace


def rag_context(chunks: list[Chunk], max_tokens: int = 1500) -> str:
    """RAFT rows show their chunks through the retrieval package's RAG prompt block, the
    same one the ``combined`` setup sees at inference, so training matches use."""
    from retrieval.index import Hit
    from retrieval.prompt import build_context

    return build_context([Hit(c.chunk_id, 0.0, c.text, c.source, c.title, "", 0, len(c.text))
                          for c in chunks], max_tokens=max_tokens)


def select_chunks(ws: Workspace, cfg: GenerateConfig, corpus_id: str | None) -> list[Chunk]:
    """The chunks of ``corpus_id`` a run asks (``focus``, then ``limit`` evenly spaced)."""
    require_corpus(ws, corpus_id)
    ds = load_corpus(ws, corpus_id)
    rows = ds.select_columns(["chunk_id", "text", "title", "source"]).to_list()
    chunks = [Chunk(r["chunk_id"], r["text"], r["title"], r["source"]) for r in rows]
    if cfg.focus:
        wanted = set(cfg.focus)
        chunks = [c for c in chunks if c.chunk_id in wanted]
    if cfg.limit and cfg.limit < len(chunks):
        # Evenly spaced, not the first N: every document gets its share.
        step = len(chunks) / cfg.limit
        chunks = [chunks[int(i * step)] for i in range(cfg.limit)]
    return chunks


def eval_pool(ws: Workspace, cfg: GenerateConfig, corpus_id: str | None) -> list[Chunk]:
    """Every chunk in the order a generated eval set asks them: the chunks training does
    not use first (with ``limit``, training reads only some), then the others; each group
    in a low-discrepancy order, so any first N are spread evenly over the corpus."""
    every = select_chunks(ws, cfg.model_copy(update={"limit": None}), corpus_id)
    trained = {c.chunk_id for c in select_chunks(ws, cfg, corpus_id)} if cfg.limit else set()

    def spread(chunks: list[Chunk]) -> list[Chunk]:
        golden = 0.6180339887498949
        return [chunks[i] for i in sorted(range(len(chunks)), key=lambda i: (i * golden) % 1.0)]

    return (spread([c for c in every if c.chunk_id not in trained])
            + spread([c for c in every if c.chunk_id in trained]))


def first_batch(cfg: GenerateConfig) -> int:
    """Chunks asked first for an eval set: twice the need at ``per_chunk`` items each (the
    filters drop some); later rounds are sized by the yield seen."""
    return math.ceil(cfg.eval_size / max(cfg.per_chunk, 1) * 2)


def eval_chunks(ws: Workspace, cfg: GenerateConfig, corpus_id: str | None) -> list[Chunk]:
    """The chunks of an eval set's first round (``eval_pool``'s first ``first_batch``)."""
    return eval_pool(ws, cfg, corpus_id)[:first_batch(cfg)]


def items_per_chunk(chunk: Chunk, cfg: GenerateConfig) -> int:
    """``per_chunk``, times the chunk's source weight (rounded half up, 1 to 50): a source of
    weight 3 is asked three times the items per chunk, so it gets about three times the
    samples. Without weights, or for a chunk no glob matches, exactly ``per_chunk``."""
    if not cfg.source_weights:
        return cfg.per_chunk
    from retrieval.fusion import source_weight

    w = source_weight(chunk.source, chunk.title, cfg.source_weights)
    if w == 1.0:
        return cfg.per_chunk
    return min(max(1, math.floor(cfg.per_chunk * w + 0.5)), max(cfg.per_chunk, 50))


def make_job(task, chunk: Chunk, cfg: GenerateConfig, pool: list[Chunk], style: str = "",
         labels: tuple[tuple[str, ...], dict[str, str]] | None = None) -> Job:
    n = items_per_chunk(chunk, cfg)
    # n, not per_chunk: an unweighted chunk keeps its key, so its teacher calls stay cached
    blob = f"{task.prompt_version}:{chunk.chunk_id}:{n}:{cfg.seed}"
    if task.holds_out_phrasings:
        blob += f":p{cfg.paraphrases}"
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    if task.uses_labels:
        allowed, label_of = labels or ((), {})
        return Job(key=key, task=task, chunk=chunk, n=n, style=style, labels=allowed,
                   label=label_of.get(chunk.chunk_id, ""))
    if not task.uses_context:
        return Job(key=key, task=task, chunk=chunk, n=n, style=style, paraphrases=cfg.paraphrases)
    rng = random.Random(key)
    others = [c for c in pool if c.source != chunk.source] or [c for c in pool if c is not chunk]
    context = rng.sample(others, min(cfg.raft_distractors, len(others)))
    oracle = rng.random() < cfg.raft_oracle_share
    # the same RAG block the retrieval setups show at inference: training matches use
    fmt = functools.partial(rag_context, max_tokens=cfg.context_tokens)
    return Job(key=key, task=task, chunk=chunk, n=n, context=context,
               oracle_in_context=oracle, style=style, format_context=fmt,
               reasoning=cfg.raft_reasoning)


def stage_tasks(cfg: GenerateConfig, eval_mode: bool) -> list:
    """The tasks a run does: the configured ones; in eval mode the eval QA task and the
    configured tasks that also make eval items (classify)."""
    if not eval_mode:
        return [get_task(t) for t in cfg.tasks]
    return [EVAL_TASK] + [t for t in map(get_task, cfg.tasks) if t.eval_items]


def row_split(job: Job, rec: Record, val_share: float) -> str:
    """``train`` or ``val`` by chunk; a knowledge row is ``train``, or ``probe`` when it is
    the held-out phrasing of a trained fact (a fact in a validation chunk is never learned)."""
    if job.task.holds_out_phrasings:
        return "probe" if rec.probe else "train"
    return chunk_split(job.chunk.chunk_id, val_share)


def chunk_split(chunk_id: str, val_share: float) -> str:
    bucket = int(hashlib.sha256(chunk_id.encode()).hexdigest()[:8], 16) % 1000
    return "val" if bucket < val_share * 1000 else "train"


def at_least_one_val(rows: list[dict[str, Any]], val_share: float) -> None:
    """On a small corpus no chunk may fall in the validation share: then the chunk with the
    lowest bucket goes to validation (when two or more chunks have rows), so early stopping
    and the validation loss have something to read."""
    rows = [r for r in rows if not (r.get("task") in TASKS and TASKS[r["task"]].holds_out_phrasings)]
    chunks = {r["chunk_ids"][0] for r in rows if r.get("split") in ("train", "val") and r["chunk_ids"]}
    if val_share <= 0 or len(chunks) < 2 or any(r.get("split") == "val" for r in rows):
        return
    pick = min(chunks, key=lambda c: hashlib.sha256(c.encode()).hexdigest()[:8])
    for r in rows:
        if r.get("split") == "train" and r["chunk_ids"] and r["chunk_ids"][0] == pick:
            r["split"] = "val"
