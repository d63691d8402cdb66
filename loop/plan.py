"""What ``synthloop run`` will do and about how long each stage takes, before any model loads.

``run --dry-run`` prints this and stops; ``run`` prints it and goes on. The cheap stages
are done for real (ingest; generation with the rules teacher, seconds, and cached for the
run that follows), so their counts are exact. Training and answering are estimated from
the token counts of the rows they will read and a rate: the rate this workspace measured
for the same student on an earlier run when there is one (``"measured"``), else the
rate these stages reach for a 135M student on 2 CPU cores (``"assumed"``, from
docs/benchmarks.md), which a larger student or a GPU changes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from loop.events import EventSink, null_sink
from loop.workspace import Workspace

# Rates seen on 2 CPU cores with smollm2 (docs/benchmarks.md, "Fine-tuning that teaches"):
# LoRA on smollm2: 298 tokens/s measured idle on 512-token rows (2026-12-01), 152 on
# 1,024-token rows of the Python docs (2026-12-03, another day's machine). The lower one,
# so that a first run's budget holds; a second run plans from the rate it measured.
TRAIN_TOKENS_PER_S = 150.0
ROW_OVERHEAD_TOKENS = 22  # chat template and system turn per row (fits that run's 256k tokens)
ANSWER_SECONDS = 0.5  # one eval answer (batched, 48 new tokens at most, a RAG prompt)
EMBED_TEXTS_PER_S = 70.0  # MiniLM over chunks and sentence windows (72 measured, idle)
EMBED_TEXTS_PER_CHUNK = 6  # each chunk and its sentence windows (1,368 texts for 234 chunks)
CHARS_PER_TOKEN = 3.6  # the student's BPE on English prose, without loading it


def run_plan(ws: Workspace, docs: list[Path], cfgs: Any, eval_set: Path | None,
             emit: EventSink = null_sink) -> dict[str, Any]:
    """The plan as a dict: one entry per stage with what it reads, its size and seconds."""
    from loop.generate import generate
    from loop.generate.stage import plan as generate_plan
    from loop.goldset import read_gold_set
    from loop.ingest import ingest
    from loop.ingest.stage import require_chunks

    stages: list[dict[str, Any]] = []
    questions = len(read_gold_set(eval_set)) if eval_set else cfgs.generate.eval_size
    ing = ingest(ws, docs, cfgs.ingest, emit=emit, only=True)
    require_chunks(ing, docs)
    stages.append({"stage": "ingest", "what": f"{ing.files} files -> {ing.chunks} chunks",
                   "seconds": 0.0, "basis": "done"})
    from loop.models.students import LoadOptions, fingerprint_student

    for uri in dict.fromkeys(u for u in (cfgs.train.student, cfgs.eval.student) if u):
        # a student that is not there fails now (its files are hashed, nothing is loaded)
        fingerprint_student(uri, LoadOptions(ws=ws, trust_remote_code=cfgs.train.trust_remote_code,
                                             allow_pickle=cfgs.train.allow_pickle))
    gen = cfgs.generate
    rows = None
    if gen.teacher == "rules":
        g = generate(ws, gen, eval_questions=[], emit=emit)
        rows = g.samples
        stages.append({"stage": "generate", "what": f"rules teacher: {g.samples} rows "
                       f"({', '.join(f'{k} {v}' for k, v in sorted(g.by_task.items()))})",
                       "seconds": 0.0, "basis": "done"})
        if eval_set is None:  # the generated eval set too (seconds): its real size, not eval_size
            ge = generate(ws, gen, eval_mode=True, emit=emit)
            questions = ge.samples
            stages.append({"stage": "generate-eval", "what": f"rules teacher: {ge.samples} "
                           f"questions (of eval_size {gen.eval_size})", "seconds": 0.0,
                           "basis": "done"})
    else:
        p = generate_plan(ws, gen)
        stages.append({"stage": "generate", "what": f"{gen.teacher}: {p['calls']} teacher calls "
                       f"over {p['chunks']} chunks, ~{p['prompt_tokens'] + p['completion_tokens']:,} tokens",
                       "seconds": None, "basis": "the teacher's speed is the server's"})
    texts = ing.chunks * EMBED_TEXTS_PER_CHUNK
    stages.append({"stage": "index", "what": f"embed ~{texts:,} texts ({cfgs.index.embedder})",
                   "seconds": round(texts / EMBED_TEXTS_PER_S), "basis": "assumed (2 CPU cores)"})
    from loop.kinds import run_kinds

    for kind in run_kinds():
        cfg = cfgs.train.model_copy(update={"with_context": kind.with_context,
                                            **(cfgs.combined if kind.with_context else {})})
        stages.append(_train_entry(ws, kind.name, cfg, rows is not None))
    from loop.eval.setups import SETUPS

    # an optional setup (dpo) is scored only when its model exists; run trains none
    setups = [s for s in cfgs.eval.setups if not (s in SETUPS and SETUPS[s].optional
                                                  and ws.ledger.current(f"model.{s}") is None)]
    n_q = min(questions, cfgs.eval.max_questions or questions)
    answers = n_q * len(setups)
    rate, basis = ANSWER_SECONDS, "assumed (135M student, 2 CPU cores)"
    stages.append({"stage": "eval", "what": f"{n_q} questions x {len(setups)} setups "
                   f"({', '.join(setups)}), {cfgs.eval.max_new_tokens} new tokens at most",
                   "seconds": round(answers * rate), "basis": basis,
                   "questions": n_q, "setups": setups})
    known = [s["seconds"] for s in stages if s["seconds"] is not None]
    return {"stages": stages, "seconds": round(sum(known)),
            "complete": all(s["seconds"] is not None for s in stages), "corpus": ing.corpus_id}


def _train_entry(ws: Workspace, kind: str, cfg: Any, have_rows: bool) -> dict[str, Any]:
    from loop.errors import SynthloopError
    from loop.samples import load_samples
    from loop.train.data import facts_per_epoch, select

    if not have_rows:
        return {"stage": f"train-{kind}", "what": f"{cfg.student}, {cfg.method}: rows known "
                "after generation", "seconds": None, "basis": "after generate"}
    try:
        train_rows, _ = select(load_samples(ws), cfg.method, cfg.with_context)
    except SynthloopError as e:
        return {"stage": f"train-{kind}", "what": f"skipped: {e}", "seconds": 0.0, "basis": "done"}
    tokens = sum(min(sum(len(m["content"]) for m in msgs) / CHARS_PER_TOKEN + ROW_OVERHEAD_TOKENS,
                     cfg.max_length) for msgs in train_rows["messages"])
    tokens *= 1 + (cfg.replay if not cfg.with_context else 0.0)
    epochs = cfg.epochs
    if cfg.exposures and not cfg.with_context and "epochs" not in cfg.model_fields_set:
        _, per_epoch = facts_per_epoch(train_rows)
        epochs = max(cfg.exposures / per_epoch, 0.05)
    total = tokens * epochs
    if cfg.max_steps and cfg.max_steps > 0:
        total = min(total, cfg.max_steps * cfg.batch_size * cfg.max_length)
    rate, basis = _measured_rate(ws, cfg.student, cfg.method)
    steps = math.ceil(total / max(cfg.batch_size * cfg.max_length, 1))
    return {"stage": f"train-{kind}", "what": f"{cfg.student}, {cfg.method}: {len(train_rows)} rows, "
            f"{epochs:.2f} epochs, ~{int(total):,} tokens, ~{steps} steps",
            "seconds": round(total / rate), "basis": basis, "epochs": epochs}


def _measured_rate(ws: Workspace, student: str, method: str) -> tuple[float, str]:
    """The tokens/s of this workspace's latest finished training of the same student and
    method, else the assumed CPU rate."""
    for run in ws.ledger.runs(200):
        if run["stage"] != "train" or run["status"] != "ok":
            continue
        config, summary = run.get("config") or {}, run.get("summary") or {}
        if not isinstance(config, dict) or not isinstance(summary, dict):
            continue
        rate = summary.get("tokens_per_s")
        if config.get("student") == student and config.get("method") == method and rate:
            return float(rate), f"measured (run {run['id']}: {rate} tokens/s)"
    return TRAIN_TOKENS_PER_S, f"assumed ({TRAIN_TOKENS_PER_S:g} tokens/s: a 135M student on 2 CPU cores)"


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan as the lines ``run`` prints."""
    out = ["plan:"]
    for s in plan["stages"]:
        secs = "?" if s["seconds"] is None else _mins(s["seconds"])
        out.append(f"  {s['stage']:<15} {secs:>8}  {s['what']} [{s['basis']}]")
    more = "" if plan["complete"] else " (and the stages marked ?)"
    out.append(f"  {'total':<15} {_mins(plan['seconds']):>8}{more}")
    return out


def _mins(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    return f"{seconds / 60:.1f} min"


# What a first `run` may cost before it scales its own defaults down (issue 27): on 2 CPU
# cores the defaults (8 exposures, combined 3 epochs of raft rows, five setups) take about an
# hour on a corpus of ~250 chunks.
DEFAULT_BUDGET_MIN = 30.0
MIN_EXPOSURES = 2  # fewer and the facts are not learned (docs/benchmarks.md, issue 23)
MIN_QUESTIONS = 150  # enough for the intervals to resolve a 0.05 difference
MIN_CHUNKS = 20


def fit_budget(ws: Workspace, docs: list[Path], cfgs: Any, eval_set: Path | None,
               budget_s: float | None, emit: EventSink = null_sink) -> tuple[Any, dict[str, Any], list[str]]:
    """The plan, and when it is over ``budget_s`` the configs with the defaults the user did
    not set scaled down until it fits, in this order: the optional ``tuned+rag`` setup, the
    combined adapter's epochs (3 -> 1), the tuned adapter's exposures per fact (down to
    ``MIN_EXPOSURES``), the questions scored (down to ``MIN_QUESTIONS``), and last the chunks
    the data is generated from (``limit``). A setting given in a config file or a flag is
    never changed, and a run resumed with the same inputs keeps the scaling it was first given
    (``cache/budget/``). Returns ``(cfgs, plan, what_was_scaled)``."""
    plan = run_plan(ws, docs, cfgs, eval_set, emit=emit)
    if not budget_s or not plan["complete"]:
        return cfgs, plan, []
    # A run that is resumed keeps the scaling it started with: re-fitted from the rate its
    # first training measured, it would change the configs, and so the ids, and redo the work.
    kept = ws.root / "cache" / "budget" / f"{_fit_key(plan['corpus'], cfgs, eval_set, budget_s)}.json"
    try:
        first = json.loads(kept.read_text(encoding="utf-8"))
        updates, scaled = first["updates"], list(first["scaled"])
    except (OSError, ValueError, KeyError, TypeError):
        first = None
    if first is not None:
        fitted = _apply(cfgs, updates)
        if updates:
            plan = run_plan(ws, docs, fitted, eval_set, emit=emit)
        return fitted, plan, scaled
    fitted, plan, scaled = _fit(ws, docs, cfgs, eval_set, budget_s, plan, emit)
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = kept.with_suffix(".tmp")
    tmp.write_text(json.dumps({"updates": _updates(cfgs, fitted), "scaled": scaled}, indent=1),
                   encoding="utf-8")
    tmp.replace(kept)
    return fitted, plan, scaled


def _fit_key(corpus: str, cfgs: Any, eval_set: Path | None, budget_s: float) -> str:
    """What a scaling was fitted to: the corpus, every config as given (values and which keys
    were set), the question set and the budget."""
    parts = {name: [getattr(cfgs, name).resolved(), sorted(getattr(cfgs, name).model_fields_set)]
             for name in FITTED}
    blob = json.dumps({"corpus": corpus, "configs": parts, "combined": cfgs.combined,
                       "eval_set": str(Path(eval_set).resolve()) if eval_set else None,
                       "budget_s": budget_s}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


FITTED = ("ingest", "generate", "index", "train", "eval")


def _updates(cfgs: Any, fitted: Any) -> dict[str, dict[str, Any]]:
    """The keys the scaling changed, per config (``combined``: the [combined] table)."""
    out: dict[str, dict[str, Any]] = {}
    for name in FITTED:
        a, b = getattr(cfgs, name), getattr(fitted, name)
        changed = {k: getattr(b, k) for k in type(b).model_fields if getattr(a, k) != getattr(b, k)}
        if changed:
            out[name] = changed
    comb = {k: v for k, v in fitted.combined.items() if cfgs.combined.get(k, object()) != v}
    if comb:
        out["combined"] = comb
    return out


def _apply(cfgs: Any, updates: dict[str, dict[str, Any]]) -> Any:

    changes: dict[str, Any] = {name: getattr(cfgs, name).model_copy(update=u)
                               for name, u in updates.items() if name in FITTED}
    if "combined" in updates:
        changes["combined"] = {**cfgs.combined, **updates["combined"]}
    return cfgs.model_copy(update=changes)


def _fit(ws: Workspace, docs: list[Path], cfgs: Any, eval_set: Path | None, budget_s: float,
         plan: dict[str, Any], emit: EventSink) -> tuple[Any, dict[str, Any], list[str]]:

    if plan["seconds"] <= budget_s:
        return cfgs, plan, []
    by = {st["stage"]: st for st in plan["stages"]}
    secs = {name: float(st["seconds"]) for name, st in by.items()}
    scaled: list[str] = []
    gen, train, ev, combined = cfgs.generate, cfgs.train, cfgs.eval, dict(cfgs.combined)

    def over() -> float:
        return sum(secs.values()) - budget_s

    evs = by["eval"]
    per_answer = secs["eval"] / max(evs["questions"] * len(evs["setups"]), 1)
    if over() > 0 and "setups" not in ev.model_fields_set and "tuned+rag" in evs["setups"]:
        setups = [x for x in ev.setups if x != "tuned+rag"]
        ev = ev.model_copy(update={"setups": setups})
        secs["eval"] -= evs["questions"] * per_answer
        scaled.append("eval setups: tuned+rag left out")
    comb = by.get("train-combined", {})
    given = set(train.model_fields_set) | set(combined)
    if (over() > 0 and comb.get("epochs", 0) > 1 and not given & {"epochs", "max_steps"}):
        secs["train-combined"] *= 1 / comb["epochs"]
        scaled.append(f"combined epochs {comb['epochs']:g} -> 1")
        combined["epochs"] = 1.0
    if (over() > 0 and train.exposures and train.exposures > MIN_EXPOSURES and secs.get("train-tuned")
            and not set(train.model_fields_set) & {"exposures", "epochs", "max_steps"}):
        room = secs["train-tuned"] - over()
        exposures = max(MIN_EXPOSURES, math.floor(train.exposures * max(room, 0) / secs["train-tuned"]))
        if exposures < train.exposures:
            secs["train-tuned"] *= exposures / train.exposures
            scaled.append(f"tuned exposures per fact {train.exposures:g} -> {exposures}")
            train = train.model_copy(update={"exposures": float(exposures)})
    if over() > 0 and "max_questions" not in ev.model_fields_set and evs["questions"] > MIN_QUESTIONS:
        per_question = secs["eval"] / evs["questions"]
        n = max(MIN_QUESTIONS, evs["questions"] - math.ceil(over() / per_question))
        secs["eval"] = n * per_question
        scaled.append(f"eval questions {evs['questions']} -> {n}")
        ev = ev.model_copy(update={"max_questions": n})
    chunks = _chunks(by["ingest"]["what"])
    training = secs.get("train-tuned", 0) + secs.get("train-combined", 0)
    if over() > 0 and gen.limit is None and "limit" not in gen.model_fields_set and chunks and training:
        share = max(training - over(), 0) / training
        limit = max(MIN_CHUNKS, math.floor(chunks * share))
        if limit < chunks:
            scaled.append(f"chunks the data is generated from {chunks} -> {limit} (limit)")
            gen = gen.model_copy(update={"limit": limit})
    if not scaled:
        return cfgs, plan, []
    fitted = cfgs.model_copy(update={"generate": gen, "train": train, "eval": ev, "combined": combined})
    plan = run_plan(ws, docs, fitted, eval_set, emit=emit)
    for _ in range(3):  # rows do not shrink in step with chunks: correct the limit on the plan
        limit = fitted.generate.limit
        if limit is None or limit == cfgs.generate.limit or plan["seconds"] <= budget_s:
            break
        by = {st["stage"]: st["seconds"] or 0 for st in plan["stages"]}
        training = by.get("train-tuned", 0) + by.get("train-combined", 0)
        if not training:
            break
        share = max(training - (plan["seconds"] - budget_s), 0) / training
        new = max(MIN_CHUNKS, math.floor(limit * share))
        if new >= limit:
            break
        scaled[-1] = f"chunks the data is generated from {chunks} -> {new} (limit)"
        fitted = fitted.model_copy(update={"generate": fitted.generate.model_copy(update={"limit": new})})
        plan = run_plan(ws, docs, fitted, eval_set, emit=emit)
    return fitted, plan, scaled


def _chunks(what: str) -> int | None:
    """The chunk count of the ingest entry ("26 files -> 234 chunks")."""
    try:
        return int(what.rsplit("->", 1)[1].split()[0])
    except (IndexError, ValueError):
        return None


def default_budget_s(device: str = "auto") -> float | None:
    """The time a first ``run`` is scaled to when ``--budget`` is not given: 30 minutes on a
    CPU, none on an accelerator (the assumed rates are CPU rates)."""
    from loop.models.students import resolve_device

    return DEFAULT_BUDGET_MIN * 60 if resolve_device(device) == "cpu" else None
