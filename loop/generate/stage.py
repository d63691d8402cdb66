"""The generate stage: corpus chunks in, a filtered synthetic dataset (or eval set) out.

Wires the ``generators`` library to the workspace: the teacher-call cache lives in the
ledger (so a killed run resumes and ends with exactly the dataset an uninterrupted run
gives), rejects are kept with their reasons, and the dataset is content-addressed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generators.errors import GeneratorError
from generators.filters import (
    Candidate,
    FilterSettings,
    check_grounding,
    check_injection,
    check_length,
    decontaminate,
    drop_duplicates,
    judge,
    verdicts_json,
)
from generators.formats import describe, parse_spec, violations
from generators.tasks import TASKS, Record
from generators.teachers import Chunk, Job, JobResult, Usage, get_teacher
from loop.corpus import require_corpus
from loop.errors import ConfigError, InputError, StageError
from loop.events import EventSink, Progress, Started, Warned, null_sink
from loop.generate.config import GenerateConfig
from loop.generate.jobs import (
    at_least_one_val,
    eval_chunks,
    eval_pool,
    first_batch,
    make_job,
    row_split,
    select_chunks,
    stage_tasks,
)
from loop.generate.labels import task_labels
from loop.handoff import Inputs, given
from loop.ledger import TeacherCallCache
from loop.samples import make_sample, overlap_text, samples_dataset
from loop.stage import stage_run
from loop.workspace import Workspace, save_dataset, write_json

# The generate stage's version (not the pipeline's), part of every dataset id: bump it when
# parsing or filtering changes what a run produces, so an old cached dataset is not taken for
# the new code's output. gen-5: rules qa slips fixed (dates, money, pronoun subjects); gen-4:
# chunk-carrying tasks (classify, extract): no question-length check, decontaminated on
# their text.
GENERATOR_VERSION = "gen-5"


def _embed_fn(uri: str | None):
    if not uri:
        return None
    from retrieval.embedders import get_embedder

    embedder = get_embedder(uri)
    return lambda texts: embedder.embed(texts)


@dataclass
class GenerateResult:
    dataset_id: str
    dataset_path: Path
    kind: str
    samples: int
    train: int
    val: int
    rejected: dict[str, int]
    failed_chunks: list[dict[str, str]]
    usage: dict[str, Any]
    cached: bool
    decontaminated: int = 0
    by_task: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False
    probe: int = 0  # held-out phrasings of trained facts (the fact probe)

    def summary(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["dataset_path"] = str(self.dataset_path)
        return d

    def failed_all(self) -> str | None:
        """What went wrong when no sample was made and every job failed (an empty dataset
        that is a failure, not a success); None otherwise."""
        if self.samples or not self.failed_chunks:
            return None
        first = self.failed_chunks[0]
        return (f"no sample was made: {len(self.failed_chunks)} job(s) failed (the first: "
                f"{first['task']} on {first['chunk_id']}: {first['reason']})")


def generate(ws: Workspace, cfg: GenerateConfig | None = None, *, eval_mode: bool = False,
             eval_questions: list[str] | None = None, eval_set: Path | None = None,
             style: str = "", style_file: Path | None = None,
             emit: EventSink = null_sink, embed=None, api_key: str | None = None,
             merge: bool = False, should_stop: Callable[[], bool] | None = None,
             inputs: Inputs | None = None) -> GenerateResult:
    """Run the teacher over the corpus and write the dataset (or, with ``eval_mode``, the
    generated eval set, decontaminated against the training questions). With ``merge`` the
    new samples are added to the current dataset (targeted rounds of the loop).

    Near-duplicates of ``eval_questions`` and of the questions of the gold file ``eval_set``
    are kept out; ``style`` (or the text of ``style_file``) is the teacher's style guide.

    ``should_stop`` is polled after every finished job; once it returns True the run stops
    and keeps what was done: the finished jobs' rows become a partial dataset (its own id,
    ``cancelled`` in the result, the ledger run ``cancelled``), and the teacher calls stay
    cached, so a re-run with the same config continues instead of starting over.

    ``inputs`` names the corpus to read and the dataset it builds on (the one ``merge``
    grows, and, in eval mode, the training rows it is decontaminated against); unset, the
    workspace's latest."""
    cfg = cfg or GenerateConfig()
    inputs = given(ws, inputs)
    require_corpus(ws, inputs.corpus_id)
    from loop.goldset import gold_questions, read_text_file
    from loop.plugins import load_plugins

    load_plugins()  # the local-model teachers and any installed teacher or task plugin
    from loop.samples import carries_chunk

    gold = gold_questions(eval_set, tasks=True) if eval_set else []
    note = gold.skipped_note() if hasattr(gold, "skipped_note") else None
    if note:  # lines of the gold set it could not read are not decontaminated against: said
        emit(Warned("generate", message=f"{note}; what they ask is not kept out of the "
                                        "training data"))
    pairs = [(q, "qa") for q in eval_questions or []] + list(gold)
    # a gold item that carries its text (classify, extract) is checked against rows of its
    # kind, on that text (see _filter); the others against the QA questions
    chunk_texts = [overlap_text(q, t) for q, t in pairs if carries_chunk(q, t)]
    eval_questions = [q for q, t in pairs if not carries_chunk(q, t)]
    style = read_text_file(style_file) if style_file else style

    previous = inputs.dataset_id if merge and not eval_mode else None
    try:
        with stage_run(ws, "generate", cfg.resolved(), emit=emit) as run:
            result = _Generate(ws, cfg, inputs, eval_mode, eval_questions or [], style, emit,
                               embed, api_key, should_stop, chunk_texts).run()
            if previous and previous != result.dataset_id:
                result = _merge(ws, inputs.corpus_id, previous, result)
            run.done(result.summary(), result.dataset_id,
                     status="cancelled" if result.cancelled else "ok")
    except GeneratorError as e:
        raise StageError(str(e)) from e
    return result


def _merge(ws: Workspace, corpus_id: str | None, previous: str, new: GenerateResult) -> GenerateResult:
    """The previous dataset plus the new rows (a row already there is not added twice)."""
    from datasets import concatenate_datasets

    from loop.samples import load_samples

    merged_id = hashlib.sha256(f"merge:{previous}:{new.dataset_id}".encode()).hexdigest()[:16]
    final = ws.artefact("datasets", merged_id)
    old, add = load_samples(ws, previous), load_samples(ws, new.dataset_id)
    seen = set(old["id"])
    add = add.select([i for i, x in enumerate(add["id"]) if x not in seen])
    ds = concatenate_datasets([old, add])
    train = sum(1 for x in ds["split"] if x == "train")
    result = GenerateResult(merged_id, final, "train", len(ds), train, len(ds) - train,
                            new.rejected, new.failed_chunks, new.usage, cached=final.exists(),
                            decontaminated=new.decontaminated,
                            by_task=dict(Counter(ds["task"])))
    if not final.exists():
        with ws.atomic_dir(final) as tmp:
            save_dataset(ds, tmp / "data")
            write_json(tmp / "synthloop.json", {"kind": "train", "merged_from": [previous, new.dataset_id],
                                                 "summary": result.summary()})
    db = ws.ledger
    with db.transaction():
        db.insert("datasets", conflict="replace", id=merged_id, kind="train",
                  corpus_id=corpus_id, path=str(final), created_at=time.time(),
                  teacher="merge", n_samples=len(ds), n_rejected=0,
                  config={"merged_from": [previous, new.dataset_id]}, summary=result.summary())
        db.set_current("dataset", merged_id)
    return result


def plan(ws: Workspace, cfg: GenerateConfig, *, eval_mode: bool = False,
         corpus_id: str | None = None) -> dict[str, Any]:
    """The dry run: how many calls, and an estimate of tokens and cost, spending nothing.
    ``corpus_id`` unset: the workspace's latest corpus."""
    corpus_id = corpus_id or given(ws, None).corpus_id
    chunks = (eval_chunks(ws, cfg, corpus_id) if eval_mode and not cfg.focus
              else select_chunks(ws, cfg, corpus_id))
    tasks = stage_tasks(cfg, eval_mode)
    calls = len(chunks) * len(tasks)
    if cfg.teacher == "rules":
        return {"calls": 0, "chunks": len(chunks), "tasks": [t.name for t in tasks],
                "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0}
    prompt_chars = sum(len(json.dumps(t.messages(make_job(t, c, cfg, chunks)))) for t in tasks for c in chunks)
    prompt_tokens = prompt_chars // 4  # ~4 characters per token of English
    completion_tokens = calls * cfg.max_tokens // 2
    cost = (prompt_tokens + completion_tokens) / 1000 * cfg.price_per_1k if cfg.price_per_1k else None
    return {"calls": calls, "chunks": len(chunks), "tasks": [t.name for t in tasks],
            "prompt_tokens": prompt_tokens, "completion_tokens_max": calls * cfg.max_tokens,
            "completion_tokens": completion_tokens, "cost": cost}


class _Stop(Exception):
    """Raised inside the teacher's result callback: unwinds its loop between jobs."""


class _Generate:
    def __init__(self, ws, cfg, inputs, eval_mode, eval_questions, style, emit, embed, api_key,
                 should_stop=None, eval_chunk_texts=None) -> None:
        self.inputs: Inputs = inputs
        self.corpus_id: str = inputs.corpus_id
        self.should_stop = should_stop or (lambda: False)
        self.eval_chunk_texts = list(eval_chunk_texts or [])
        self.cancelled = False
        self.ws, self.cfg, self.eval_mode = ws, cfg, eval_mode
        self.eval_questions, self.style, self.emit = eval_questions, style, emit
        self.embed = embed or _embed_fn(cfg.dedup_embedder)
        self.api_key = api_key
        self.kind = "eval" if eval_mode else "train"

    def run(self) -> GenerateResult:
        cfg = self.cfg
        tasks = stage_tasks(cfg, self.eval_mode)
        sized = self.eval_mode and not cfg.focus
        pool = eval_pool(self.ws, cfg, self.corpus_id) if sized else []
        chunks = pool[:first_batch(cfg)] if sized else select_chunks(self.ws, cfg, self.corpus_id)
        if not chunks:
            raise InputError("the corpus has no chunks", hint="ingest some documents first")
        self.labels = task_labels(self.ws, cfg, chunks) if any(t.uses_labels for t in tasks) else None
        self.spec = parse_spec(cfg.format)
        against = self._against()
        dataset_id = self._dataset_id(tasks, against)
        final = self.ws.artefact("datasets", dataset_id)
        if final.exists():
            return self._cached(dataset_id, final)
        teacher = get_teacher(cfg.teacher, **self._teacher_options())
        unsupported = [t.name for t in tasks if not teacher.supports(t.name)]
        if unsupported:
            why = getattr(teacher, "why_not", lambda n: "unsupported")
            raise ConfigError("; ".join(f"the {cfg.teacher} teacher cannot do '{n}': {why(n)}"
                                        for n in unsupported))
        if cfg.judge and not hasattr(get_teacher(cfg.judge, **self._teacher_options()), "complete_all"):
            raise ConfigError(f"--judge {cfg.judge}: the judge grades in free text, so it must be "
                              "a model teacher (openai:MODEL or hf:PATH)")
        told = self.style + (f"\n{describe(self.spec)}" if self.spec else "")
        jobs = self._jobs(tasks, chunks, chunks, told)
        self._check_teacher(teacher, jobs)
        try:
            results = self._run_jobs(teacher, jobs)
            if self.cancelled:
                jobs = [j for j in jobs if j.key in results]
            rows, rejects, decon = self._filter(jobs, results, against)
            # an eval set sized by its target: more chunks, at the yield seen so far, until
            # it is reached or the corpus has no more (each round decontaminated against
            # the rows already kept, so rounds do not repeat each other)
            while (sized and not self.cancelled and len(rows) < cfg.eval_size
                   and len(chunks) < len(pool) and not any(r.error for r in results.values())):
                rate = max(len(rows) / len(chunks), 0.05)
                more = pool[len(chunks):len(chunks) + math.ceil((cfg.eval_size - len(rows)) / rate * 1.25)]
                chunks = chunks + more
                new_jobs = self._jobs(tasks, more, chunks, told)
                before = self.usage
                new_results = self._run_jobs(teacher, new_jobs)
                before.add(self.usage)
                self.usage = before
                if self.cancelled:
                    new_jobs = [j for j in new_jobs if j.key in new_results]
                results.update(new_results)
                jobs += new_jobs
                r2, rej2, d2 = self._filter(new_jobs, results, against + [r["question"] for r in rows])
                rows, rejects, decon = rows + r2, rejects + rej2, decon + d2
        finally:
            teacher.close()
        if sized:
            why = Counter(reason for _, reason, _, _ in rejects)
            why.update(rej["reason"] for r in results.values() for rej in r.rejects)
            rows = self._sized(rows, len(chunks), why)
        if self.cancelled or any(r.error for r in results.values()):
            # Not the full run's dataset: it gets an id of its own, and the full id stays
            # free, so the same command run again retries what failed or was not reached
            # (what worked comes back from the call cache).
            dataset_id = _partial_id(dataset_id, results, self.cancelled)
            final = self.ws.artefact("datasets", dataset_id)
        return self._write(dataset_id, final, jobs, results, rows, rejects, decon)

    # -- teacher ---------------------------------------------------------------------------

    def _check_teacher(self, teacher, jobs: list[Job]) -> None:
        """Refuse a job the teacher cannot do before any call; say once what it will ignore."""
        cannot = getattr(teacher, "cannot", None)
        for job in {j.task.name: j for j in jobs}.values():
            why = cannot(job) if cannot else None
            if why:
                raise ConfigError(f"the {self.cfg.teacher} teacher cannot do '{job.task.name}' "
                                  f"here: {why}")
        if (self.style or self.spec) and not getattr(teacher, "applies_style", True):
            what = " and ".join(x for x, on in (("--style", self.style), ("--format", self.spec)) if on)
            self.emit(Warned("generate", message=(
                f"the {self.cfg.teacher} teacher cannot apply {what}: it copies spans from the "
                "documents, so the guide does not change its answers"
                + (" (answers that break the format are still dropped)" if self.spec else "")
                + "; use a model teacher (openai:MODEL or hf:PATH) to follow it")))

    def _teacher_options(self) -> dict[str, Any]:
        c = self.cfg
        return {"cache": TeacherCallCache(self.ws.ledger), "base_url": c.teacher_url, "api_key": self.api_key,
                "concurrency": c.concurrency, "timeout": c.timeout, "total_timeout": c.total_timeout,
                "max_retries": c.max_retries,
                "max_reply_kb": c.max_reply_kb,
                "batch_size": c.batch_size, "trust_remote_code": c.trust_remote_code,
                "allow_pickle": c.allow_pickle, "ws": self.ws, "emit": self.emit,
                "params": {"temperature": c.temperature, "max_tokens": c.max_tokens, "seed": c.seed}}

    def _run_jobs(self, teacher, jobs: list[Job]) -> dict[str, JobResult]:
        results: dict[str, JobResult] = {}
        usage, reasons = Usage(), Counter()
        self.emit(Started("generate", total=len(jobs), unit="jobs",
                          message=f"{self.cfg.teacher} x {len(jobs)} jobs"))

        def on_result(job: Job, result: JobResult) -> None:
            results[job.key] = result
            usage.add(result.usage)
            if result.error:
                reasons["teacher_error"] += 1
                self.emit(Warned("generate", message=f"{job.task.name} on {job.chunk.chunk_id}: {result.error}"))
            for r in result.rejects:
                reasons[r["reason"]] += 1
            self.emit(Progress("generate", done=len(results), total=len(jobs), info={
                "tokens": usage.prompt_tokens + usage.completion_tokens,
                "cached": usage.cached_calls, **({"rejects": dict(reasons)} if reasons else {}),
            }))
            if self.should_stop():
                raise _Stop

        self.usage = usage
        try:
            teacher.run(jobs, on_result)
        except _Stop:
            self.cancelled = True
            self.emit(Warned("generate", message=f"cancelled after {len(results)} of {len(jobs)} "
                                                 "jobs: their rows are kept"))
        return results

    # -- filters ---------------------------------------------------------------------------

    def _filter(self, jobs: list[Job], results: dict[str, JobResult], against: list[str]):
        s = FilterSettings(max_answer_chars=self.cfg.max_answer_chars,
                           grounding_min=self.cfg.grounding_min,
                           near_dup_threshold=self.cfg.near_dup_threshold,
                           decontam_threshold=self.cfg.decontam_threshold,
                           judge_min=self.cfg.judge_min)
        # a question that carries its chunk (extract, classify) is as long as the chunk
        long_questions = dataclasses.replace(s, max_question_chars=10**9)
        cands: list[tuple[Job, Record, Candidate]] = []
        for job in jobs:
            result = results.get(job.key)
            if result is None:
                continue
            for item in result.items:
                for rec in job.task.records(item, job):
                    c = Candidate(overlap_text(rec.question, job.task.name), rec.answer,
                                  job.chunk.text, job.task.name)
                    check_length(c, long_questions if job.task.embeds_chunk else s)
                    if job.task.grounded:
                        check_grounding(c, s)
                    check_injection(c)
                    if self.spec and job.task.formatted:  # what a student learns (or an eval item expects)
                        broken = violations(rec.answer, self.spec)
                        (c.reject if broken else c.accept)("format", **({"broken": broken} if broken else {}))
                    cands.append((job, rec, c))
        only = [c for _, _, c in cands]
        for task in {c.task for c in only}:  # a raft row may repeat a qa question: both stay
            drop_duplicates([c for c in only if c.task == task], s, self.embed,
                            exact_only=TASKS[task].holds_out_phrasings if task in TASKS else False)
        # An item whose question carries its chunk (classify, extract) would match any
        # question quoting that chunk: in training it is checked against the eval questions
        # (conservative), in eval mode by its chunk (was that chunk's label trained on?).
        chunky = {id(c): job for job, _, c in cands if job.task.embeds_chunk}
        decon = decontaminate([c for c in only if id(c) not in chunky], against, s, self.embed)
        if chunky and not self.eval_mode:
            decon += decontaminate([c for c in only if id(c) in chunky], self.eval_chunk_texts,
                                   s, self.embed)
        trained = self._trained_chunks() if chunky else set()
        for c in only:
            if id(c) in chunky and self.eval_mode and not c.rejected_by:
                seen = chunky[id(c)].chunk.chunk_id in trained
                (c.reject if seen else c.accept)("decontam", trained_chunk=seen)
                decon += seen
        if self.cfg.judge:
            judge_teacher = get_teacher(self.cfg.judge, **self._teacher_options())
            try:
                failed = {id(c): why for c, why in judge(only, judge_teacher, s)}
            finally:
                judge_teacher.close()
            for job, _, c in cands:  # an ungraded sample fails its job: a re-run grades it
                if id(c) in failed and not results[job.key].error:
                    results[job.key].error = failed[id(c)]
                    self.emit(Warned("generate", message=f"{job.task.name} on {job.chunk.chunk_id}: "
                                                         f"{failed[id(c)]}"))
            cands = [x for x in cands if not results[x[0].key].error]
        rows, rejects = [], []
        for job, rec, c in cands:
            if c.rejected_by:
                rejects.append((job, c.rejected_by, verdicts_json(c), json.dumps(rec.messages)))
            else:
                rows.append(self._row(job, rec, c))
        return rows, rejects, decon

    def _jobs(self, tasks: list, chunks: list[Chunk], pool: list[Chunk], told: str) -> list[Job]:
        jobs = [make_job(t, c, self.cfg, pool, told.strip(), self.labels) for t in tasks for c in chunks]
        if self.labels and self.labels[1]:  # labels from the structure: a chunk with none is skipped
            unlabelled = [j for j in jobs if j.task.uses_labels and not j.label]
            if unlabelled:
                jobs = [j for j in jobs if not (j.task.uses_labels and not j.label)]
                self.emit(Warned("generate", message=f"classify: {len(unlabelled)} chunk(s) have no "
                                 f"{self.cfg.label_by or 'folder'} to label them by; skipped"))
        return jobs

    def _sized(self, rows: list[dict[str, Any]], n_chunks: int,
               why: Counter | None = None) -> list[dict[str, Any]]:
        """An eval set of ``eval_size`` items, spread evenly over what survived the filters;
        fewer, with a warning that says how many and why (the drops by reason), when the
        corpus gave fewer."""
        target = self.cfg.eval_size
        if len(rows) > target:
            step = len(rows) / target
            return [rows[int(i * step)] for i in range(target)]
        if len(rows) < target:
            drops = ", ".join(f"{REASON_WORDS.get(k, k)} {n}" for k, n in (why or Counter()).most_common())
            self.emit(Warned("generate", message=(
                f"eval set: {len(rows)} of the {target} questions aimed at (eval_size): "
                f"{n_chunks} chunk(s) gave no more"
                + (f" (dropped: {drops})" if drops else " after the filters")
                + "; with fewer than ~150 the intervals cannot resolve small differences. Add "
                "documents, use a model teacher (the rules teacher finds facts in prose with "
                "names, numbers and dates), lower --eval-size, or bring a gold set (--eval-set)")))
        return rows

    def _row(self, job: Job, rec: Record, c: Candidate) -> dict[str, Any]:
        if self.eval_mode:  # the task columns on every row (from_list reads the first row's)
            return {"id": hashlib.sha256(rec.question.encode()).hexdigest()[:16],
                    "question": rec.question, "answers": [rec.answer],
                    "chunk_ids": rec.chunk_ids, "origin": "generated",
                    "task": "classify" if job.task.uses_labels else "qa",
                    "labels": list(job.labels),
                    "format": json.dumps(self.spec) if self.spec and job.task.formatted else ""}
        return make_sample(job.task.name, rec.messages, rec.chunk_ids, teacher=self.cfg.teacher,
                           prompt_version=job.task.prompt_version,
                           filters=json.loads(verdicts_json(c)),
                           split=row_split(job, rec, self.cfg.val_share),
                           rejected=rec.rejected)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, dataset_id, final, jobs, results, rows, rejects, decon) -> GenerateResult:
        from datasets import Dataset

        failed = [{"chunk_id": j.chunk.chunk_id, "task": j.task.name, "reason": results[j.key].error}
                  for j in jobs if j.key in results and results[j.key].error]
        reject_rows = []
        for job, reason, detail, raw in rejects:
            reject_rows.append((job.task.name, job.chunk.chunk_id, reason, detail, raw))
        for job in jobs:
            r = results.get(job.key)
            if r is None:
                continue
            if r.error:
                why = "judge_error" if r.error.startswith("judge: ") else "teacher_error"
                reject_rows.append((job.task.name, job.chunk.chunk_id, why, r.error, ""))
            for rej in r.rejects:
                reject_rows.append((job.task.name, job.chunk.chunk_id, rej["reason"],
                                    rej.get("detail", ""), rej.get("raw", "")))
        counts = Counter(r[2] for r in reject_rows)
        if not self.eval_mode:
            at_least_one_val(rows, self.cfg.val_share)
        if self.eval_mode:
            ds = Dataset.from_list(rows) if rows else Dataset.from_dict(
                {"id": [], "question": [], "answers": [], "chunk_ids": [], "origin": [],
                 "task": [], "labels": [], "format": []})
        else:
            ds = samples_dataset(rows)
        by_task = Counter(r["task"] for r in rows)
        if self.eval_mode:
            by_task = {("eval_qa" if t == "qa" else t): n for t, n in by_task.items()}
        train = sum(1 for r in rows if r.get("split") == "train")
        usage = self._usage_summary()
        val = sum(1 for r in rows if r.get("split") == "val")
        result = GenerateResult(dataset_id, final, self.kind, len(rows), train, val, dict(counts),
                                failed, usage, cached=False, decontaminated=decon,
                                by_task=dict(by_task), cancelled=self.cancelled,
                                probe=sum(1 for r in rows if r.get("split") == "probe"))
        with self.ws.atomic_dir(final) as tmp:
            save_dataset(ds, tmp / "data")
            write_json(tmp / "synthloop.json", {"kind": self.kind, "config": self.cfg.resolved(),
                                                 "corpus_id": self.corpus_id,
                                                 "summary": result.summary()})
        db = self.ws.ledger
        with db.transaction() as c:
            c.execute("DELETE FROM rejects WHERE dataset_id = ?", (dataset_id,))
            db.insert_many("rejects", [
                {"dataset_id": dataset_id, "seq": i, "task": task, "chunk_id": chunk_id,
                 "reason": reason, "detail": detail, "raw": raw}
                for i, (task, chunk_id, reason, detail, raw) in enumerate(reject_rows)])
            db.insert("datasets", conflict="replace", id=dataset_id, kind=self.kind,
                      corpus_id=self.corpus_id, path=str(final), created_at=time.time(),
                      teacher=self.cfg.teacher, n_samples=len(rows), n_rejected=len(reject_rows),
                      config=self.cfg.resolved(), summary=result.summary())
            db.set_current("eval_set" if self.eval_mode else "dataset", dataset_id)
        return result

    def _usage_summary(self) -> dict[str, Any]:
        u = self.usage
        tokens = u.prompt_tokens + u.completion_tokens
        cost = round(tokens / 1000 * self.cfg.price_per_1k, 4) if self.cfg.price_per_1k else None
        return {"calls": u.calls, "cached_calls": u.cached_calls, "prompt_tokens": u.prompt_tokens,
                "completion_tokens": u.completion_tokens, "cost": cost}

    def _cached(self, dataset_id: str, final: Path) -> GenerateResult:
        meta = json.loads((final / "synthloop.json").read_text())["summary"]
        meta.update(cached=True, dataset_path=final)
        self.ws.ledger.set_current("eval_set" if self.eval_mode else "dataset", dataset_id)
        return GenerateResult(**meta)

    # -- identity --------------------------------------------------------------------------

    def _against(self) -> list[str]:
        """Questions this run must not overlap: the eval set's, or (eval mode) training's."""
        if not self.eval_mode:
            return list(self.eval_questions)
        from loop.samples import load_samples, questions_of

        if self.inputs.dataset_id is None:
            return list(self.eval_questions)
        ds = load_samples(self.ws, self.inputs.dataset_id)
        # a question that carries its chunk (classify, extract) is checked only against eval
        # items of its own kind (_against_chunks): its text would match any QA question quoting
        # that chunk
        chunky = {n for n in set(ds["task"]) if n in TASKS and TASKS[n].embeds_chunk}
        if chunky:
            ds = ds.filter(lambda t: t not in chunky, input_columns="task")
        return questions_of(ds) + list(self.eval_questions)

    def _trained_chunks(self) -> set[str]:
        """Eval mode: the chunks that training rows of a chunk-carrying task (classify,
        extract) were trained on (train split): an eval item on one of them is contaminated."""
        from loop.samples import load_samples

        if not self.eval_mode or self.inputs.dataset_id is None:
            return set()
        ds = load_samples(self.ws, self.inputs.dataset_id).select_columns(["task", "split", "chunk_ids"])
        return {r["chunk_ids"][0] for r in ds if r["chunk_ids"] and r["split"] == "train"
                and r["task"] in TASKS and TASKS[r["task"]].embeds_chunk}

    def _dataset_id(self, tasks, against: list[str]) -> str:
        trained = self._trained_chunks()  # eval mode: an item on a chunk trained since is stale
        h = hashlib.sha256()
        for part in (GENERATOR_VERSION, self.kind, self.corpus_id, self.cfg.digest(),
                     ",".join(t.prompt_version for t in tasks),
                     hashlib.sha256("\n".join(sorted(against)).encode()).hexdigest(),
                     hashlib.sha256(self.style.encode()).hexdigest(),
                     *([",".join(self.labels[0])] if self.labels else []),
                     *([hashlib.sha256("\n".join(sorted(self.eval_chunk_texts)).encode()).hexdigest()]
                       if self.eval_chunk_texts else []),
                     *([",".join(sorted(trained))] if trained else [])):
            h.update(str(part).encode() + b"\x00")
        return h.hexdigest()[:16]


def _partial_id(dataset_id: str, results: dict[str, JobResult], cancelled: bool) -> str:
    """A cancelled run's dataset, or one with failed jobs: its own id, from the jobs that
    worked (the full run's id stays free for the full run)."""
    blob = (f"partial:{dataset_id}:{'cancelled' if cancelled else 'failed'}:"
            + ",".join(sorted(k for k, r in results.items() if not r.error)))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# reject reasons as the eval-set warning words them
REASON_WORDS = {
    "no_fact_found": "no fact the teacher could ask about",
    "decontam": "too like a training question (decontamination)",
    "dedup": "duplicates",
    "grounding": "answer not in the chunk",
    "length": "too long",
}


