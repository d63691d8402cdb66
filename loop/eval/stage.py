"""The eval stage: every setup answers the same questions; metrics with 95% intervals.

Setups (registered in :mod:`loop.eval.setups`): ``base`` (student, closed book), ``rag``
(student + retrieved chunks), ``tuned`` (student + SFT adapter, closed book), ``tuned+rag``
(that adapter with retrieval), ``combined`` (the RAFT adapter, trained with context, +
retrieval). All use the same decoding settings, and every RAG setup the same retriever, k
and context block.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loop.corpus import load_corpus, require_corpus
from loop.errors import InputError, WorkspaceError
from loop.eval import graded  # noqa: F401 - registers the embed_sim and judge metrics
from loop.eval import metrics as M
from loop.eval.answers import Question, clean_answer, final_answer, gold_chunks, setup_messages
from loop.eval.config import EvalConfig
from loop.eval.forgetting import forgetting_probe, probe_hash
from loop.eval.setups import SETUPS, adapter_kinds, get_setup, rag_setups
from loop.eval.stats import bootstrap_ci, bootstrap_stat, holm, mcnemar_p, paired_diff_ci, paired_p
from loop.events import EventSink, Finished, Progress, Started, Warned, null_sink
from loop.handoff import Inputs, given
from loop.stage import stage_run
from loop.workspace import Workspace, save_dataset, write_json

# Part of every evaluation id: bump it when scoring changes what an evaluation holds, so an
# older evaluation is not taken for the new code's (v2: Holm-corrected decisions, lineage).
SCORING_VERSION = "score-v3"  # v3: one short-answer system message for every setup, answer_f1
PAIRED_METRICS = ("answer_f1", "f1", "em")  # compared pair by pair, Holm-corrected within each
CORRECTION = ("Holm's step-down correction across the paired comparisons of each metric "
              "(family-wise error 5%)")


@dataclass
class EvalResult:
    eval_id: str
    path: Path
    origin: str
    questions: int
    setups: dict[str, dict[str, dict[str, float]]]
    differences: list[dict[str, Any]]
    verdict: str
    notes: list[str]
    contamination: int
    probes: dict[str, Any] = None  # type: ignore[assignment]
    cached: bool = False
    student: str | None = None  # the student URI every setup was built on
    models: dict[str, str | None] | None = None  # setup -> the model id it scored (None: base)
    lineage: dict[str, Any] | None = None  # the datasets, index and eval set it scored
    correction: str = CORRECTION  # how the paired tests' decisions were made
    lead_metric: str = "f1"  # the metric the verdict leads with (answer_f1: lengths differ)
    answer_words: dict[str, float] | None = None  # mean words per answer, by setup
    coverage: dict[str, Any] | None = None  # the closed-book ceiling (loop/eval/coverage.py)

    def summary(self) -> dict[str, Any]:
        d = {"student": self.student, **self.__dict__}
        d["path"] = str(self.path)
        return d


def evaluate(ws: Workspace, cfg: EvalConfig | None = None, *, eval_set: Path | None = None,
             emit: EventSink = null_sink, fresh_sources: set[str] | None = None,
             origin: str | None = None, inputs: Inputs | None = None,
             current: bool = True) -> EvalResult:
    """Score the configured setups on a gold eval set (or the generated one).

    ``inputs`` names what is scored and read: the models by kind, the index the RAG setups
    search, the corpus whose chunks the gold answers are found in, the generated eval set
    (when no ``eval_set`` file is given) and the training dataset (coverage ceiling and
    contamination); unset, the workspace's latest. With ``current`` False the evaluation
    is recorded but does not become the workspace's latest (``run``'s dev scoring).

    ``fresh_sources`` names documents indexed after the models were trained: the freshness
    probe compares the setups on the questions whose evidence lies only in them."""
    from loop.plugins import load_plugins

    load_plugins()  # setups, metrics and model kinds from installed plugins
    cfg = cfg or EvalConfig()
    inputs = given(ws, inputs)
    for s in cfg.setups:
        get_setup(s)  # an unknown setup fails before any work, naming the known ones
    if cfg.serve:  # a URL taken from the environment is written out: the id names the server
        from loop.eval.served import pinned

        cfg = cfg.model_copy(update={"serve": pinned(cfg.serve)})
    if cfg.as_exported:  # a missing file fails before any work; the id does not follow the cwd
        path = Path(cfg.as_exported).expanduser()
        if not path.exists():
            raise InputError(f"--as-exported {path}: no such file or folder",
                             hint="synthloop export --gguf FILE.gguf writes one")
        cfg = cfg.model_copy(update={"as_exported": str(path.resolve())})
    if cfg.engine:  # started on the workspace's models, its setups served, stopped after
        from loop.eval.engines import launched
        from loop.eval.served import pinned

        with launched(ws, cfg, cfg.setups, emit, inputs) as serve:
            cfg = cfg.model_copy(update={"serve": pinned({**serve, **cfg.serve})})
            return _evaluate(ws, cfg, eval_set, emit, fresh_sources, origin, inputs, current)
    return _evaluate(ws, cfg, eval_set, emit, fresh_sources, origin, inputs, current)


def _evaluate(ws: Workspace, cfg: EvalConfig, eval_set: Path | None, emit: EventSink,
              fresh_sources: set[str] | None, origin: str | None, inputs: Inputs,
              current: bool) -> EvalResult:
    with stage_run(ws, "eval", cfg.resolved(), emit=emit) as run:
        result = _Eval(ws, cfg, emit, inputs, fresh_sources or set(), origin, current).run(eval_set)
        run.done(result.summary(), result.eval_id)
    return result


class _Eval:
    def __init__(self, ws: Workspace, cfg: EvalConfig, emit: EventSink, inputs: Inputs,
                 fresh_sources: set[str] | None = None, origin: str | None = None,
                 current: bool = True) -> None:
        self.ws, self.cfg, self.emit, self.origin = ws, cfg, emit, origin
        self.inputs, self.current = inputs, current
        self.fresh = fresh_sources or set()
        self.notes: list[str] = []
        self._shrunk: set[str] = set()
        from loop.eval.served import parse_served

        self.served = {s: parse_served(spec) for s, spec in cfg.serve.items() if s in cfg.setups}
        self.unscored: dict[str, str] = {}  # served setup -> why its endpoint did not answer
        self.student: str | None = None

    def run(self, eval_set: Path | None) -> EvalResult:
        questions, origin, set_hash = self._questions(eval_set)
        models = self._models()
        wanted = list(self.cfg.setups)
        if self.cfg.as_exported and "exported" not in wanted:
            wanted.append("exported")
        setups = [s for s in wanted if self._available(s, models)]
        retriever = self._retriever() if rag_setups() & set(setups) else None
        if retriever is None:
            setups = [s for s in setups if s not in rag_setups()]
        if not setups:
            raise WorkspaceError("no setup can be scored", hint="train a model or build an index")
        self.student = self._student(models, setups)
        eval_id = self._eval_id(set_hash, setups, models, retriever)
        final = self.ws.eval_dir(eval_id)
        if (final / "scores.json").exists():
            data = json.loads((final / "scores.json").read_text())
            data.setdefault("student", self.student)
            result = EvalResult(**{**data, "path": final, "cached": True})
            if self.ws.ledger.evaluation(eval_id) is None:  # killed between folder and ledger
                self._record(final, result)
            if self.current:
                self.ws.ledger.set_current("eval", eval_id)
            return result
        contexts = self._retrieve(questions, retriever) if retriever else {}
        preds, probes = self._answer(questions, setups, models, contexts)
        if self.unscored:  # kept apart from the whole run's id: a re-run asks the server again
            setups = [s for s in setups if s not in self.unscored]
            if not setups:
                raise InputError("no setup was scored: " + "; ".join(self.unscored.values()))
            eval_id = self._eval_id(set_hash, setups, models, retriever)
            final = self.ws.eval_dir(eval_id)
        self._score(questions, preds, contexts)
        table, diffs = self._aggregate(preds, setups)
        if self.fresh:
            probes["freshness"] = self._freshness(questions, preds, setups)
        from loop.eval.report import verdict

        words = _answer_words(preds, setups)
        lead = M.lead_metric(words)
        result = EvalResult(eval_id, final, origin, len(questions), table, diffs,
                            verdict(table, diffs, lead), self.notes, self._contamination(questions),
                            probes, student=self.student,
                            models=_setup_models(setups, models, self.served),
                            lineage=self._lineage(models, retriever, set_hash, eval_set, setups),
                            lead_metric=lead, answer_words=words,
                            coverage=self._coverage(questions, models))
        self._write(final, result, preds, set_hash)
        return result

    # -- inputs ----------------------------------------------------------------------------

    def _questions(self, eval_set: Path | None) -> tuple[list[Question], str, str]:
        from loop.goldset import read_gold_set

        if eval_set is not None:
            raw = read_gold_set(eval_set)
            if getattr(raw, "skipped", None):  # lines passed over: counted, never silent
                self.notes.append(raw.skipped_note())
            origin = self.origin or f"human gold set ({eval_set.name})"
        else:
            raw, origin = self._generated_set()
        if self.cfg.max_questions and len(raw) > self.cfg.max_questions:
            self.notes.append(f"scored the first {self.cfg.max_questions} of the set's {len(raw)} "
                              "questions (max_questions)")
            raw = raw[: self.cfg.max_questions]
        corpus_id = require_corpus(self.ws, self.inputs.corpus_id)
        chunks = load_corpus(self.ws, corpus_id).select_columns(["chunk_id", "source", "text"]).to_list()
        out = [Question(str(it.id), it.question, list(it.answers),
                        list(it.chunk_ids) or (gold_chunks(it.answers, it.doc, chunks)
                                               if it.task == "qa" else []),
                        it.doc, it.task, list(it.labels), it.fields, it.format) for it in raw]
        # a plain QA item hashes as before 0.3, so earlier evaluations keep their ids
        blob = json.dumps([[q.id, q.question, q.answers] + ([q.task, q.labels, q.fields, q.format]
                           if q.task != "qa" or q.format else []) for q in out]).encode()
        return out, origin, hashlib.sha256(blob).hexdigest()[:16]

    def _generated_set(self) -> tuple[list[Any], str]:
        from loop.samples import eval_items, load_generated_eval_set

        eval_id = self.inputs.eval_set_id
        ds = load_generated_eval_set(self.ws, eval_id) if eval_id else None
        if ds is None:
            raise InputError("no eval set: pass --eval-set FILE (a human gold set) or run "
                             "`synthloop generate --eval` first")
        self.notes.append("questions are generated, not human-written: treat the figures as "
                          "indicative; a gold set (--eval-set) is better")
        return eval_items(ds), f"generated eval set ({eval_id})"

    def _models(self) -> dict[str, Path]:
        from loop.eval.models import models_of

        return models_of(self.ws, self.inputs.models)

    def _available(self, setup: str, models: dict[str, Path]) -> bool:
        if setup in self.served:  # the server holds its weights
            return True
        if setup == "exported":  # the file given, loaded as a student of its own
            return bool(self.cfg.as_exported)
        need = SETUPS[setup].adapter
        if need and need not in models and SETUPS[setup].optional:
            return False
        if need and need not in models:
            from loop.kinds import MODEL_KINDS

            kind = MODEL_KINDS.get(need)
            how = f" {kind.train_flags}" if kind and kind.train_flags else ""
            self.emit(Warned("eval", message=f"setup '{setup}' skipped: no {need} model "
                                              f"(run `synthloop train{how}`)"))
            return False
        return True

    def _retriever(self):
        from loop.index import load_retriever

        try:
            return load_retriever(self.ws, k=self.cfg.k, inputs=self.inputs)
        except WorkspaceError as e:
            self.emit(Warned("eval", message=f"RAG setups skipped: {e}"))
            return None

    def _student(self, models: dict[str, Path], setups: list[str]) -> str | None:
        """The student the in-process setups load; None when every setup is served and
        nothing names one."""
        if all(s in self.served for s in setups) and not self.cfg.student and not models:
            return None
        return self._student_uri(models)

    def _student_uri(self, models: dict[str, Path]) -> str:
        if self.cfg.student:
            return self.cfg.student
        for path in models.values():
            return json.loads((path / "synthloop.json").read_text())["student"]
        raise InputError("no student to score", hint="pass --student URI or train a model first")

    def _lineage(self, models: dict[str, Path], retriever, set_hash: str,
                 eval_set: Path | None, setups: list[str]) -> dict[str, Any]:
        """What was scored besides the models: their datasets, the index, the question set,
        and each served setup's model name and URL (never a key)."""
        rows = {kind: self.ws.ledger.model(path.name) for kind, path in models.items()
                if not self.served or kind in self._local_kinds(setups)}
        weights = _source_weights(retriever)  # recorded only when the index had some
        served = {s: self.served[s].lineage() for s in setups if s in self.served}
        exported = ({"file": self.cfg.as_exported, "weights": self._exported_fingerprint()}
                    if "exported" in setups else None)
        return {"datasets": {kind: row["dataset_id"] for kind, row in rows.items() if row},
                "index": getattr(retriever, "index_id", None),
                **({"source_weights": weights} if weights else {}),
                **({"served": served} if served else {}),
                **({"exported": exported} if exported else {}),
                "eval_set": (f"{eval_set.name}#{set_hash}" if eval_set is not None
                             else self.inputs.eval_set_id)}

    def _eval_id(self, set_hash: str, setups: list[str], models: dict[str, Path], retriever) -> str:
        parts = [SCORING_VERSION, set_hash, ",".join(setups), self.cfg.digest(), self.student or "",
                 *(f"{k}={p.name}" for k, p in sorted(models.items())),
                 _searched_as(retriever), str(getattr(getattr(retriever, "cfg", None), "k", "")),
                 ",".join(sorted(self.fresh))]
        parts.append(probe_hash())  # the forgetting probe's questions and text
        if "exported" in setups:  # the file's content, not only its path
            parts.append(self._exported_fingerprint())
        if self.cfg.style:  # the guide's text, not only its path, decides the style grades
            from loop.eval.graded import style_guide

            parts.append(hashlib.sha256(style_guide(self.cfg).encode()).hexdigest())
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]

    # -- answering ---------------------------------------------------------------------------

    def _retrieve(self, questions: list[Question], retriever) -> dict[str, tuple[str, list[str]]]:
        out = {}
        self.emit(Started("retrieve", total=len(questions), unit="questions"))
        for n, q in enumerate(questions, 1):
            block, hits = retriever.context(q.question, max_tokens=self.cfg.context_tokens)
            out[q.id] = (block, [h.chunk_id for h in hits])
            self.emit(Progress("retrieve", done=n, total=len(questions)))
        self.emit(Finished("retrieve"))
        return out

    def _exported_uri(self) -> str:
        return f"hf:{self.cfg.as_exported}"

    def _exported_fingerprint(self) -> str:
        from loop.models.students import LoadOptions, fingerprint_student

        if not hasattr(self, "_exported_fp"):
            self._exported_fp = fingerprint_student(self._exported_uri(), LoadOptions(
                ws=self.ws, trust_remote_code=self.cfg.trust_remote_code,
                allow_pickle=self.cfg.allow_pickle))
        return self._exported_fp

    def _local_kinds(self, setups: list[str]) -> set[str]:
        """The adapter kinds the in-process setups load (a served one's weights are elsewhere)."""
        return {SETUPS[s].adapter for s in setups if s not in self.served and SETUPS[s].adapter}

    def _answer(self, questions, setups, models, contexts) -> list[dict[str, Any]]:
        preds = []
        total = len(questions) * len(setups)
        self.emit(Started("answer", total=total, unit="answers", message=", ".join(setups)))
        # served first: a dead endpoint says so before the student is loaded
        for setup in [s for s in setups if s in self.served]:
            preds += self._answer_served(setup, questions, contexts, len(preds), total)
        local = [s for s in setups if s not in self.served and s != "exported"]
        pool = None
        if local:
            kinds = self._local_kinds(local)
            pool = self._pool(self.student, {k: p for k, p in models.items() if k in kinds})
        t0, tokens, before = time.perf_counter(), 0, len(preds)
        # Similar prompt lengths share a batch: less padding to attend over (the order of
        # the predictions does not matter; they are keyed by question and setup).
        by_length = sorted(questions, key=lambda q: len(contexts.get(q.id, ("",))[0]) + len(q.question))
        # the exported file last, as a student of its own (its weights are not the base's)
        order = [(s, pool, s) for s in local]
        if "exported" in setups:
            order.append(("exported", None, "base"))
        for setup, owner, use in order:
            if owner is None:
                owner = self._pool(self._exported_uri(), {})
            with owner.use(use) as (model, tok):
                for batch in _batches(by_length, self._batch_size(model, setup)):
                    preds += self._answer_batch(model, tok, batch, setup, contexts)
                    tokens += sum(p["prompt_tokens"] + p["completion_tokens"] for p in preds[-len(batch):])
                    elapsed = time.perf_counter() - t0
                    self.emit(Progress("answer", done=len(preds), total=total, info={
                        "tok/s": round(tokens / elapsed), "setup": setup,
                        "eta_s": round(elapsed / (len(preds) - before) * (total - len(preds)))}))
        self.emit(Finished("answer"))
        return preds, ({"forgetting": self._forgetting(pool, local)} if pool is not None else {})

    def _pool(self, student: str, models: dict[str, Path]):
        from loop.eval.models import SetupModels

        pool = SetupModels(self.ws, student, models, self.cfg.device, self.cfg.dtype,
                           trust_remote_code=self.cfg.trust_remote_code,
                           allow_pickle=self.cfg.allow_pickle)
        self.notes += pool.notes
        return pool

    def _answer_served(self, setup: str, questions: list[Question], contexts: dict,
                       done: int, total: int) -> list[dict[str, Any]]:
        """A served setup's answers: the chats the in-process setup would answer, sent to its
        endpoint. The first goes alone, so a dead endpoint costs one request's retries, not
        every question's; a setup with any request that failed for good is not scored (one
        line that says why: a partial setup would be compared on other questions)."""
        from loop.eval.served import client

        served = self.served[setup]
        msgs = [setup_messages(q, contexts.get(q.id), setup) for q in questions]
        replies: list[Any] = [None] * len(msgs)
        t0 = time.perf_counter()

        def got(offset: int):
            def on_done(i: int, reply: Any) -> None:
                replies[offset + i] = reply
                n = sum(r is not None for r in replies)
                self.emit(Progress("answer", done=done + n, total=total,
                                   info={"setup": setup, "served": served.url}))
            return on_done

        teacher = client(served, self.cfg)
        try:
            teacher.complete_many(msgs[:1], got(0))
            if not isinstance(replies[0], Exception):
                teacher.complete_many(msgs[1:], got(1))
        finally:
            teacher.close()
        failed = [r for r in replies if isinstance(r, Exception)]
        if failed:
            asked = sum(r is not None for r in replies)
            line = (f"setup '{setup}' not scored: {served.model} at {served.url} did not answer "
                    f"({len(failed)} of {asked} requests failed: {failed[0]})")
            self.emit(Warned("eval", message=line))
            self.notes.append(line)
            self.unscored[setup] = line
            return []
        ms = (time.perf_counter() - t0) * 1000 / max(1, len(msgs))
        return [self._prediction(q, setup, r.text, contexts, ms, r.prompt_tokens, r.completion_tokens)
                for q, r in zip(questions, replies, strict=True)]

    def _batch_size(self, model, setup: str) -> int:
        """``batch_size`` or fewer: what fits the memory budget with this setup's longest
        prompts (a RAG prompt carries ``context_tokens`` of chunks)."""
        from loop.models.memory import answer_batch_size, parse_budget

        device = str(next(model.parameters()).device)
        prompt = 96 + (self.cfg.context_tokens if SETUPS[setup].retrieval else 0)
        dtype = "fp32" if next(model.parameters()).dtype.itemsize == 4 else "bf16"
        n = answer_batch_size(model.config, dtype=dtype, prompt_tokens=prompt,
                              new_tokens=self.cfg.max_new_tokens,
                              budget=parse_budget(self.cfg.memory_budget, device),
                              wanted=self.cfg.batch_size)
        if n < self.cfg.batch_size and setup not in self._shrunk:
            self._shrunk.add(setup)
            self.notes.append(f"{setup}: {n} questions per batch (of batch_size "
                              f"{self.cfg.batch_size}) to fit the memory budget")
        return n

    def _forgetting(self, pool, setups: list[str]) -> dict[str, Any]:
        return forgetting_probe(pool, setups, max_new_tokens=self.cfg.max_new_tokens,
                                n_boot=self.cfg.n_boot, seed=self.cfg.seed)

    def _answer_batch(self, model, tok, batch, setup, contexts) -> list[dict[str, Any]]:
        from generators.teachers.hf import generate_texts

        msgs = [setup_messages(q, contexts.get(q.id), setup) for q in batch]
        t = time.perf_counter()
        outs = generate_texts(model, tok, msgs, max_new_tokens=self.cfg.max_new_tokens)
        ms = (time.perf_counter() - t) * 1000 / len(batch)
        return [self._prediction(q, setup, o.text, contexts, ms, o.prompt_tokens, o.completion_tokens)
                for q, o in zip(batch, outs, strict=True)]

    @staticmethod
    def _prediction(q: Question, setup: str, text: str, contexts: dict, ms: float,
                    prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
        # question and answers ride along so a drill-down shows what was scored, even after
        # the workspace's eval set changes (older predictions lack them: readers fall back).
        return {"eval_id": q.id, "setup": setup, "doc": q.doc, "gold_chunk_ids": q.gold_chunks,
                "question": q.question, "answers": list(q.answers), "task": q.task,
                "answer": final_answer(text) if q.whole_answer else clean_answer(text),
                "raw": text,
                "retrieved_chunk_ids": contexts[q.id][1] if SETUPS[setup].retrieval else [],
                "latency_ms": round(ms, 2), "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens}

    # -- scoring ---------------------------------------------------------------------------

    def _score(self, questions: list[Question], preds: list[dict], contexts: dict) -> None:
        by_id = {q.id: q for q in questions}
        k = max((len(c[1]) for c in contexts.values()), default=0)
        metrics = [M.METRICS[n] for n in M.metric_names()]
        for p in preds:
            q = by_id[p["eval_id"]]
            # what macro-F1 counts, kept in the predictions (every row has the columns:
            # Dataset.from_list takes them from the first row)
            labels = q.labels or q.answers
            p["label"], p["gold_label"] = ((M.predicted_label(p["answer"], labels),
                                            M.predicted_label(q.answers[0], labels))
                                           if q.task == "classify" else (None, None))
            shown = (M.Shown(contexts[q.id][0], p["retrieved_chunk_ids"], k)
                     if SETUPS[p["setup"]].retrieval else None)
            for m in metrics:
                if m.per_answer is not None:
                    p[m.name] = m.per_answer(p["answer"], q, shown)
        for m in metrics:
            if m.per_batch is not None:
                m.per_batch(self, questions, preds)

    def _aggregate(self, preds: list[dict], setups: list[str]):
        kw = {"n_boot": self.cfg.n_boot, "seed": self.cfg.seed}
        table: dict[str, dict[str, dict[str, float]]] = {}
        per: dict[str, dict[str, list]] = {}
        for setup in setups:
            rows = sorted((p for p in preds if p["setup"] == setup), key=lambda p: p["eval_id"])
            per[setup] = {m: [p.get(m) for p in rows] for m in M.metric_names()}
            table[setup] = {}
            for name in M.metric_names():
                metric = M.METRICS[name]
                if metric.statistic is not None:  # a statistic of the whole set (macro-F1)
                    pool = [p for p in rows if metric.applies(p)]
                    if pool:
                        table[setup][name] = bootstrap_stat(pool, metric.statistic, **kw).as_dict()
                elif any(v is not None for v in per[setup][name]):
                    table[setup][name] = bootstrap_ci([v for v in per[setup][name] if v is not None],
                                                      **kw).as_dict()
        diffs = []
        for m in PAIRED_METRICS:
            family = []
            for a, b in itertools.combinations(setups, 2):
                # the questions the metric applies to (F1 and EM: the QA items), the same for
                # every setup since it depends on the item, not on the answer
                both = [(x, y) for x, y in zip(per[a][m], per[b][m], strict=True)
                        if x is not None and y is not None]
                xa, xb = [x for x, _ in both], [y for _, y in both]
                if not both:  # no item this metric reads (a classify-only set): no test
                    continue
                ci = paired_diff_ci(xa, xb, **kw)
                d = {"a": a, "b": b, "metric": m, **ci.as_dict(),
                     "p": paired_p(xa, xb, **kw),
                     "significant_uncorrected": ci.excludes_zero()}
                if m == "em":
                    d["mcnemar_p"] = mcnemar_p(xa, xb)
                family.append(d)
            # Holm across the metric's pairs: the verdict reads "significant", so 10 paired
            # tests at once keep a 5% family-wise error, not 5% each
            adjusted, rejected = holm([d["p"] for d in family])
            for d, p_holm, sig in zip(family, adjusted, rejected, strict=True):
                d.update(p_holm=p_holm, significant=sig)
            diffs += family
        diffs.sort(key=lambda d: (setups.index(d["a"]), setups.index(d["b"]),
                                  PAIRED_METRICS.index(d["metric"])))
        return table, diffs

    def _freshness(self, questions: list[Question], preds: list[dict], setups: list[str]) -> dict[str, Any]:
        """The setups on questions whose evidence is only in documents added after training."""
        corpus = load_corpus(self.ws, require_corpus(self.ws, self.inputs.corpus_id))
        source = dict(zip(*corpus.select_columns(["chunk_id", "source"]).to_dict().values(),
                          strict=True))
        fresh = {q.id for q in questions
                 if q.gold_chunks and all(source.get(c) in self.fresh for c in q.gold_chunks)}
        kw = {"n_boot": self.cfg.n_boot, "seed": self.cfg.seed}
        per = {s: [p["f1"] for p in sorted(preds, key=lambda p: p["eval_id"])
                   if p["setup"] == s and p["eval_id"] in fresh and p["f1"] is not None]
               for s in setups}
        out: dict[str, Any] = {"questions": len(fresh), "documents": sorted(self.fresh),
                               "setups": {s: bootstrap_ci(v, **kw).as_dict() for s, v in per.items() if v}}
        if fresh and "rag" in per and "tuned" in per:
            d = paired_diff_ci(per["rag"], per["tuned"], **kw)
            out["rag_minus_tuned"] = {**d.as_dict(), "significant": d.excludes_zero()}
        return out

    def _coverage(self, questions: list[Question], models: dict[str, Path]) -> dict[str, Any] | None:
        """The share of the QA items' gold answers that the tuned model's dataset trained as
        answers: the ceiling of closed-book recall (None: no tuned model)."""
        from loop.eval.coverage import coverage, trained_answers
        from loop.samples import load_samples

        kind = next((k for k in adapter_kinds() if k in models), None)
        row = self.ws.ledger.model(models[kind].name) if kind else None
        if row is None or not row.get("dataset_id") or str(row["dataset_id"]).startswith("corpus:"):
            return None
        try:
            samples = load_samples(self.ws, row["dataset_id"])
        except (FileNotFoundError, WorkspaceError):  # a dataset removed since: no ceiling
            return None
        out = coverage([q.answers for q in questions if q.task == "qa"], trained_answers(samples))
        return {**out, "dataset_id": row["dataset_id"], "model": kind}

    def _contamination(self, questions: list[Question]) -> int:
        """Eval questions that are near-duplicates of training questions (should be 0)."""
        from generators.filters import Candidate, FilterSettings, decontaminate
        from loop.samples import (
            carries_chunk,
            load_samples,
            overlap_text,
            questions_of,
        )

        if self.inputs.dataset_id is None:
            return 0
        ds = load_samples(self.ws, self.inputs.dataset_id)
        train = list(zip(questions_of(ds), ds["task"], strict=True))
        count = 0
        for kind in (False, True):  # a question that carries a chunk is compared by that text
            cands = [Candidate(overlap_text(q, t), "", "", "qa") for q, t in train
                     if carries_chunk(q, t) == kind]
            asked = [overlap_text(q.question, q.task) for q in questions
                     if carries_chunk(q.question, q.task) == kind]
            count += decontaminate(cands, asked, FilterSettings(), None)
        return count

    def _write(self, final: Path, result: EvalResult, preds: list[dict], set_hash: str) -> None:
        from datasets import Dataset

        with self.ws.atomic_dir(final) as tmp:
            save_dataset(Dataset.from_list(preds), tmp / "predictions")
            summary = result.summary()
            summary.pop("path")
            write_json(tmp / "scores.json", summary)
            write_json(tmp / "synthloop.json", {"kind": "eval", "config": self.cfg.resolved()})
        self._record(final, result)

    def _record(self, final: Path, result: EvalResult) -> None:
        db = self.ws.ledger
        with db.transaction():
            db.insert("evaluations", conflict="replace", id=result.eval_id, path=str(final),
                      created_at=time.time(), eval_set=(result.lineage or {}).get("eval_set"),
                      origin=result.origin, questions=result.questions, verdict=result.verdict,
                      config=self.cfg.resolved(), models=result.models,
                      datasets=(result.lineage or {}).get("datasets"),
                      index_id=(result.lineage or {}).get("index"))
            if self.current:
                db.set_current("eval", result.eval_id)


def _answer_words(preds: list[dict], setups: list[str]) -> dict[str, float]:
    """Mean words per QA answer, by setup: when they differ, F1 pays the verbose setups."""
    out = {}
    for s in setups:
        n = [len(p["answer"].split()) for p in preds if p["setup"] == s and p.get("task", "qa") == "qa"]
        if n:
            out[s] = round(sum(n) / len(n), 2)
    return out


def _setup_models(setups: list[str], models: dict[str, Path],
                  served: dict[str, Any] | None = None) -> dict[str, str | None]:
    """Each scored setup's model id: the adapter kind's model, or None (the bare student, or a
    served setup: its name and URL are in the lineage's ``served``)."""
    served = served or {}
    return {s: models[SETUPS[s].adapter].name if SETUPS[s].adapter and s not in served else None
            for s in setups}


def _batches(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _source_weights(retriever) -> dict[str, float]:
    return dict(getattr(getattr(retriever, "cfg", None), "source_weights", None) or {})


def _searched_as(retriever) -> str:
    """The index the RAG setups searched, with its source weights when it has any (they
    change what is retrieved; an evaluation without them keeps its id)."""
    index_id = getattr(retriever, "index_id", "") or ""
    weights = _source_weights(retriever)
    return f"{index_id}:{json.dumps(weights, sort_keys=True)}" if weights else index_id
