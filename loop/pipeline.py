"""The whole loop: ingest, generate, index, train (tuned and combined), eval, report.

Every stage is content-addressed, so an unchanged re-run hits every cache and an
interrupted run resumes at the stage (and, inside generate and train, the call or
checkpoint) where it stopped. With ``iterations > 1`` the questions the tuned setups miss
point to their chunks; the teacher writes targeted data for those chunks, the adapters are
retrained on the enlarged dataset and the report shows each iteration side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loop.eval.report import write_report
from loop.eval.setups import SETUPS
from loop.eval.stage import EvalConfig, evaluate
from loop.events import EventSink, Finished, Started, Warned, null_sink
from loop.generate import GenerateConfig, generate
from loop.goldset import read_gold_set
from loop.handoff import Inputs, current_inputs
from loop.index import build_index
from loop.ingest import ingest
from loop.ingest.stage import require_chunks
from loop.stages import RunConfig
from loop.train.config import TrainConfig
from loop.train.stage import train
from loop.workspace import Workspace

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples"


def run_pipeline(ws: Workspace, docs: list[Path], cfgs: RunConfig, *, eval_set: Path | None,
                 iterations: int = 1, emit: EventSink = null_sink,
                 api_key: str | None = None, fresh: list[Path] | None = None) -> dict[str, Any]:
    """Run every stage; return the summary ``run --json`` prints. ``fresh`` documents are
    indexed after training and never trained on (the freshness probe)."""
    # One lock for the whole run, not one per stage: between two stages another writer
    # could otherwise take the workspace and the run would fail half-way, naming it.
    with ws.writing():
        return _run(ws, docs, cfgs, eval_set, iterations, emit, api_key, fresh)


class _Clock:
    """Each stage's wall seconds and cached flag, under the name ``run`` reports it by
    (``train-tuned``, ``eval-dev``, ...), around an explicit call::

        with clock("index") as took:
            index = took(build_index(ws, cfgs.index, emit, inputs=...))
    """

    def __init__(self, emit: EventSink) -> None:
        self.emit = emit
        self.seconds: dict[str, float] = {}
        self.cached: dict[str, bool] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[Callable[[Any], Any]]:
        self.emit(Started("run", message=name))
        t = time.perf_counter()

        def took(result: Any) -> Any:
            if hasattr(result, "cached"):
                self.cached[name] = bool(result.cached)
            return result

        yield took
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t, 2)
        self.emit(Finished("run"))


def _run(ws, docs, cfgs, eval_set, iterations, emit, api_key, fresh) -> dict[str, Any]:
    """The stages top to bottom; each is told the ids it reads, taken from the results of
    the stages before it. Only ``start`` (what earlier runs left in the workspace: the
    corpus and index whose chunks and vectors can be reused, the models of kinds this run
    does not train) is read from the ledger's pointers."""
    clock = _Clock(emit)
    start = current_inputs(ws)
    # read now: a set without answers is an error before generation and training, not after
    questions = [it.question for it in read_gold_set(eval_set)] if eval_set else []
    # what needs no model comes first: a missing path or a folder with nothing readable is
    # one line in seconds, not after the student has loaded
    with clock("ingest") as took:
        trained_on = took(ingest(ws, docs, cfgs.ingest, emit, only=True, inputs=start))
    require_chunks(trained_on, docs)
    corpus_id = trained_on.corpus_id
    from loop.models.students import LoadOptions, check_student

    for uri in dict.fromkeys(u for u in (cfgs.train.student, cfgs.eval.student) if u):
        # minutes of generate, index and training would otherwise come before "cannot load"
        check_student(uri, LoadOptions(ws=ws, trust_remote_code=cfgs.train.trust_remote_code,
                                       allow_pickle=cfgs.train.allow_pickle, emit=emit))
    with clock("generate") as took:
        made = took(generate(ws, cfgs.generate, eval_questions=questions, emit=emit,
                             api_key=api_key, inputs=Inputs(corpus_id=corpus_id)))
    if made.failed_all():  # nothing to train on: a failed run, not base and rag scored as "ok"
        from loop.errors import StageError

        raise StageError(f"generate: {made.failed_all()}",
                         hint="the same command again retries the failed jobs; the teacher "
                              "calls that worked come back from the cache")
    dataset_id, eval_set_id = made.dataset_id, None
    if eval_set is None:  # decontaminated against the rows just made
        with clock("generate-eval") as took:
            eval_set_id = took(generate(ws, cfgs.generate, eval_mode=True, emit=emit, api_key=api_key,
                                        inputs=Inputs(corpus_id=corpus_id,
                                                      dataset_id=dataset_id))).dataset_id
    # With targeted rounds the targets come from a dev part and every round is scored on a
    # test part whose documents the targets never come from: no tuning on the scored questions.
    split = (_split(ws, eval_set, cfgs.generate.seed, corpus_id, eval_set_id)
             if iterations > 1 else None)
    scored_set = split["test"] if split else eval_set
    origin = split["origin"] if split else None
    with clock("index") as took:
        index_id = took(build_index(ws, cfgs.index, emit, inputs=Inputs(
            corpus_id=corpus_id, index_id=start.index_id))).index_id
    rounds = []
    for it in range(1, iterations + 1):
        inputs = Inputs(corpus_id=corpus_id, dataset_id=dataset_id, index_id=index_id,
                        eval_set_id=eval_set_id, models=start.models)
        trained = _train_both(ws, cfgs, clock, emit, inputs)
        scored_on = inputs.but(models=trained)
        fresh_sources = None
        if fresh:  # indexed beside the training corpus after training, never trained on
            scored_on, fresh_sources = _add_fresh(ws, docs, fresh, trained_on, cfgs, clock, emit,
                                                  scored_on)
        with clock("eval") as took:
            result = took(evaluate(ws, cfgs.eval, eval_set=scored_set, emit=emit,
                                   fresh_sources=fresh_sources, origin=origin, inputs=scored_on))
        with clock("report"):
            report = write_report(ws, result.path, None,
                                  rounds + [{"iteration": it, "setups": result.setups}],
                                  split=split["summary"] if split else None)
        rounds.append({"iteration": it, "eval_id": result.eval_id, "models": trained,
                       "scored": result.models, "setups": result.setups,
                       "verdict": result.verdict, "report": report,
                       "lead_metric": result.lead_metric, "coverage": result.coverage})
        if it == iterations:
            break
        # targeted data comes from the training corpus only, never the fresh documents
        missed = _missed_on_dev(ws, cfgs, split, clock, emit, inputs.but(models=trained))
        more = _targeted_round(ws, cfgs, missed, questions, clock, emit, inputs)
        if more is None:
            break
        dataset_id = more
    last = rounds[-1]
    out = {"setups": last["setups"], "models": last["scored"], "verdict": last["verdict"],
           "lead_metric": last["lead_metric"], "coverage": last["coverage"],
           "report": last["report"], "iterations": rounds, "stage_seconds": clock.seconds,
           "cached": clock.cached, "workspace": str(ws.root)}
    if split:
        out["split"] = split["summary"]
    return out


DEV_ORIGIN = "dev part of the gold set (picks the targets; not a score to report)"


def _split(ws: Workspace, eval_set: Path | None, seed: int, corpus_id: str,
           eval_set_id: str | None) -> dict[str, Any]:
    """The gold set (or the generated eval set) split by document into dev and test files."""
    from loop.corpus import load_corpus
    from loop.samples import eval_items, load_generated_eval_set
    from loop.split import split_by_document, split_id

    if eval_set is not None:
        items, name = read_gold_set(eval_set), Path(eval_set).stem
        origin = f"human gold set ({Path(eval_set).name})"
    else:
        ds = load_generated_eval_set(ws, eval_set_id) if eval_set_id else None
        items = eval_items(ds) if ds is not None else []
        name, origin = "generated", f"generated eval set ({eval_set_id})"
    chunks = load_corpus(ws, corpus_id).select_columns(["chunk_id", "source", "text"]).to_list()
    s = split_by_document(items, chunks, seed)
    dev, test = s.write(ws.dir("splits") / split_id(items, seed), name)
    summary = s.summary()
    return {"dev": dev, "test": test, "summary": summary, "test_sources": s.test_sources,
            "origin": f"{origin}, test part: {summary['test']} questions from "
                      f"{summary['documents']['test']} documents the targets never come from"}


def _missed_on_dev(ws: Workspace, cfgs: RunConfig, split: dict[str, Any] | None, clock: _Clock,
                   emit: EventSink, inputs: Inputs) -> set[str]:
    """The gold chunks of the dev questions the tuned setups miss (F1 < 0.5), never a chunk
    of a test question's document. Scored on the training corpus and its index, and not
    made the workspace's latest evaluation (the scored one stays that)."""
    from datasets import load_from_disk

    from loop.corpus import load_corpus

    tuned = [name for name, s in SETUPS.items() if s.adapter and not s.optional]
    cfg = cfgs.eval.model_copy(update={"setups": tuned})
    with clock("eval-dev") as took:
        dev = took(evaluate(ws, cfg, eval_set=split["dev"] if split else None, emit=emit,
                            origin=DEV_ORIGIN if split else None, inputs=inputs, current=False))
    preds = load_from_disk(str(dev.path / "predictions")).to_list()
    missed = {c for p in preds if p["setup"] in tuned and p["f1"] is not None and p["f1"] < 0.5 for c in p["gold_chunk_ids"]}
    if split:
        corpus = load_corpus(ws, inputs.corpus_id)
        source = dict(zip(*corpus.select_columns(["chunk_id", "source"]).to_dict().values(),
                          strict=True))
        missed = {c for c in missed if source.get(c) not in split["test_sources"]}
    return missed


def _train_both(ws: Workspace, cfgs: RunConfig, clock: _Clock, emit: EventSink,
                inputs: Inputs) -> dict[str, str]:
    """Every model kind ``run`` trains, in the kinds table's order, on ``inputs``' dataset;
    a later kind's ``init_from`` (combined continues tuned) reads the one just trained."""
    from loop.errors import SynthloopError
    from loop.kinds import run_kinds

    out: dict[str, str] = {}
    for kind in run_kinds():
        with_context = kind.with_context
        # a [train] adapter_scale is the tuned adapter's: combined continues that (already
        # scaled) adapter, and scaling it again would shrink the tuned part twice
        extra = {"adapter_scale": None, **cfgs.combined} if with_context else {}
        if with_context and cfgs.train.method == "pretrain" and "tuned" in out:
            # pretrain then SFT: the combined adapter is SFT on the same pretrained model (the
            # one the tuned adapter sits on, which --from tuned requires), not a second pretrain
            base = ws.ledger.model(out["tuned"])["student"]
            extra = {"method": "lora", "then_sft": False, "pretrain_epochs": None, "student": base,
                     **extra}
        cfg = cfgs.train.model_copy(update={"with_context": with_context, **extra})
        try:
            with clock(f"train-{kind.name}") as took:
                out[kind.name] = took(train(ws, cfg, emit, inputs=inputs.but(models=out))).model_id
        except SynthloopError as e:
            if not with_context:  # the closed-book model is the run's point: its error ends it
                raise
            # e.g. no raft rows (a dataset without the raft task): the combined setup is skipped
            emit(Warned("run", message=f"{kind.name} model not trained: {e}"))
    return out


def _add_fresh(ws, docs, fresh, trained_on, cfgs, clock, emit,
               inputs: Inputs) -> tuple[Inputs, set[str]]:
    """Ingest and index the fresh documents beside the training corpus: the inputs the
    scoring reads (that corpus and index), and the fresh documents' sources."""
    from loop.corpus import load_corpus

    before = set(load_corpus(ws, trained_on.corpus_id)["source"])
    with clock("ingest-fresh") as took:
        both = took(ingest(ws, [*docs, *fresh], cfgs.ingest, emit, only=True, inputs=inputs))
    with clock("index-fresh") as took:
        index = took(build_index(ws, cfgs.index, emit, inputs=inputs.but(corpus_id=both.corpus_id)))
    scored_on = inputs.but(corpus_id=both.corpus_id, index_id=index.index_id)
    return scored_on, set(load_corpus(ws, both.corpus_id)["source"]) - before


def _targeted_round(ws, cfgs, missed, questions, clock, emit, inputs: Inputs) -> str | None:
    """Generate more data for the chunks behind the dev questions the tuned setups missed,
    merged into ``inputs``' dataset: the merged dataset's id (None: nothing to target)."""
    if not missed:
        emit(Warned("run", message="no missed question points to a chunk: stopping early"))
        return None
    gen = cfgs.generate.model_copy(update={"focus": sorted(missed), "seed": cfgs.generate.seed + 1,
                                           "per_chunk": cfgs.generate.per_chunk + 2})
    with clock("generate-targeted") as took:
        return took(generate(ws, gen, eval_questions=questions, emit=emit, merge=True,
                             inputs=inputs)).dataset_id


DEMO_QUESTIONS = 96  # of the bundled gold set's 146: the demo's time budget (bench/demo.py)


def demo_configs() -> RunConfig:
    """The offline demo: rules teacher, ``smollm2`` student (SmolLM2-135M-Instruct), the
    knowledge recipe sized so the whole loop fits 15 minutes on 2 CPU cores (bench/demo.py).

    What costs time on a CPU is tokens: training runs at ~200 tokens/s (bf16), answering at
    a few hundred prompt tokens/s. The tuned adapter learns every fact the rules teacher finds
    (``knowledge``, two phrasings each) twice: 2 exposures per fact, one epoch, in 512-token
    packed rows, two per step (small batches: more updates per exposure). That is fewer than
    ``bench/knowledge.py`` gives: the demo shows the loop, the bench the recipe's
    figures. The combined adapter continues the tuned one (it keeps the facts) for 12 steps
    of 4 packed raft rows whose answers are the short answer alone (a 24-token budget
    leaves no room for RAFT's quoted reasoning before ``Answer:``); the RAG context
    block is two chunks (320 tokens, the budget the raft rows were written with), answers
    stop at 24 tokens, and the first ``DEMO_QUESTIONS`` gold questions are scored on four
    setups (``tuned+rag`` is left out for time; the report says how many questions)."""
    return RunConfig(
        generate=GenerateConfig(teacher="rules", tasks=["knowledge", "raft"], paraphrases=2,
                                raft_distractors=1, context_tokens=320, raft_reasoning=False),
        train=TrainConfig(student="smollm2", method="lora", lr=1e-3, exposures=2, batch_size=2,
                          max_length=512, patience=0, eval_steps=100, save_steps=50,
                          replay_written=64),
        combined={"lr": 5e-4, "max_steps": 12, "batch_size": 4, "max_length": 640,
                  "exposures": None, "eval_steps": 1000, "save_steps": 6, "init_from": "tuned"},
        eval=EvalConfig(max_new_tokens=24, k=2, context_tokens=320, max_questions=DEMO_QUESTIONS,
                        n_boot=1000, setups=["base", "rag", "tuned", "combined"]),
    )
