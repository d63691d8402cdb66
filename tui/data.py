"""What the dashboard shows, read from a workspace: plain data, no Textual.

Every loader opens its own ``Workspace`` (SQLite connections belong to the thread that made
them) and returns dataclasses the screens render. Nothing here writes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Scores:
    eval_id: str
    path: Path
    questions: int
    origin: str
    setups: dict[str, dict[str, dict[str, float]]]
    differences: list[dict[str, Any]]
    verdict: str
    notes: list[str] = field(default_factory=list)

    @property
    def setup_names(self) -> list[str]:
        from loop.eval.setups import ordered

        return ordered(list(self.setups))

    @property
    def metric_names(self) -> list[str]:
        from loop.eval.metrics import ordered_metrics

        return ordered_metrics({m for t in self.setups.values() for m in t})

    def significant(self, metric: str = "f1") -> list[dict[str, Any]]:
        return [d for d in self.differences if d.get("metric") == metric and d.get("significant")]

    def beats(self, setup: str, metric: str) -> list[str]:
        """The setups this one beats measurably on ``metric``: the eval stage's ``significant``
        (a paired bootstrap p-value, Holm-corrected across the metric's pairs)."""
        out = []
        for d in self.significant(metric):
            if d["a"] == setup and d["mean"] > 0:
                out.append(d["b"])
            elif d["b"] == setup and d["mean"] < 0:
                out.append(d["a"])
        return out


@dataclass
class Overview:
    workspace: Path
    corpus: dict[str, Any] | None
    dataset: dict[str, Any] | None
    index: dict[str, Any] | None
    models: list[dict[str, Any]]
    runs: int
    scores: Scores | None
    running: list[dict[str, Any]] = field(default_factory=list)  # active_runs

@dataclass
class Answer:
    setup: str
    answer: str
    em: float | None
    f1: float | None
    retrieved: list[tuple[str, str, str]]  # chunk_id, source, text


@dataclass
class QuestionRow:
    id: str
    question: str
    gold: list[str]
    answers: dict[str, Answer]
    doc: str = ""  # the source document of the gold evidence

    @property
    def disagree(self) -> bool:
        """Setups disagree when some get it right (EM) and others do not."""
        ems = {a.em for a in self.answers.values() if a.em is not None}
        return len(ems) > 1


def _open(path: Path):
    from loop.workspace import Workspace

    return Workspace(path, create=False)


def load_scores(ws_path: Path, eval_id: str | None = None) -> Scores | None:
    with _open(ws_path) as ws:
        return _scores(ws, eval_id)


def _scores(ws, eval_id: str | None = None) -> Scores | None:
    eval_id = eval_id or ws.ledger.current("eval")
    if not eval_id:
        return None
    path = ws.eval_dir(eval_id)
    f = path / "scores.json"
    if not f.exists():
        return None
    d = json.loads(f.read_text())
    return Scores(eval_id=eval_id, path=path, questions=int(d.get("questions", 0)),
                  origin=d.get("origin", ""), setups=d.get("setups", {}),
                  differences=d.get("differences", []), verdict=d.get("verdict", ""),
                  notes=d.get("notes", []) or [])


def load_overview(ws_path: Path) -> Overview:
    with _open(ws_path) as ws:
        db = ws.ledger
        corpus = db.corpus(db.current("corpus"))
        dataset = db.dataset(db.current("dataset"))
        index = db.index(db.current("index"))
        if index:
            cfg = index.pop("config") or {}
            index["method"] = cfg.get("method", "")
            index["k"] = cfg.get("k", "")
        return Overview(Path(ws_path), corpus, dataset, index, db.models(), db.run_count(),
                        _scores(ws), _active_runs(ws))


def active_runs(ws_path: Path) -> list[dict[str, Any]]:
    """The runs going on in the workspace now, whoever started them (the CLI, another
    dashboard, this one), newest first; each with ``holder``: the lock holder's pid, host,
    command and start."""
    with _open(ws_path) as ws:
        return _active_runs(ws)


def _active_runs(ws) -> list[dict[str, Any]]:
    from loop.workspace import lock_holder

    rows = ws.ledger.running_runs()
    holder = lock_holder(ws.root) if rows else None
    # A stage holds the write lock for as long as its row says running; rows without a
    # live holder are left by a process that was killed mid-run.
    return [{**r, "holder": holder} for r in rows] if holder else []


def run_line(r: dict[str, Any]) -> str:
    """``train (run 12, since 14:03:09) by 'synthloop train', pid 4242``"""
    h = r.get("holder") or {}
    by = f" by '{h['command']}', pid {h.get('pid')}" if h.get("command") else ""
    return f"{r['stage']} (run {r['id']}, since {time.strftime('%H:%M:%S', time.localtime(r['started_at']))}){by}"


def load_runs(ws_path: Path, limit: int = 500) -> list[dict[str, Any]]:
    with _open(ws_path) as ws:
        rows = ws.ledger.runs(limit)
    for r in rows:
        r["duration"] = (r["finished_at"] - r["started_at"]) if r["finished_at"] else None
        r["started"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"]))
    return rows


def load_questions(ws_path: Path, scores: Scores) -> list[QuestionRow]:
    """Every question of an evaluation with each setup's answer and retrieved chunks."""
    from datasets import load_from_disk

    preds = load_from_disk(str(scores.path / "predictions")).to_list()
    texts: dict[str, tuple[str, str]] = {}
    gold: dict[str, tuple[str, list[str]]] = {}
    with _open(ws_path) as ws:
        wanted = {c for p in preds for c in (p.get("retrieved_chunk_ids") or [])}
        wanted |= {c for p in preds for c in (p.get("gold_chunk_ids") or [])[:1]}
        if wanted:
            try:
                from loop.corpus import load_corpus

                for c in load_corpus(ws).select_columns(["chunk_id", "source", "text"]):
                    if c["chunk_id"] in wanted:
                        texts[c["chunk_id"]] = (c["source"], c["text"])
            except Exception:  # the answers still show without the chunk texts
                pass
        gold = _eval_set(ws)
    rows: dict[str, QuestionRow] = {}
    for p in preds:
        qid = p["eval_id"]
        # What was scored (stored with predictions since the dashboard's drill-down), else
        # the workspace's eval set (older evaluations), else the bare id.
        q, answers = ((p["question"], p.get("answers") or []) if p.get("question")
                      else gold.get(qid, (qid, [])))
        first_gold = (p.get("gold_chunk_ids") or [None])[0]
        doc = p.get("doc") or (texts[first_gold][0] if first_gold in texts else "")
        row = rows.setdefault(qid, QuestionRow(qid, q, list(answers), {}, doc))
        retrieved = [(c, *texts.get(c, ("?", ""))) for c in (p.get("retrieved_chunk_ids") or [])]
        row.answers[p["setup"]] = Answer(p["setup"], p.get("answer", ""), p.get("em"), p.get("f1"),
                                         retrieved)
    return sorted(rows.values(), key=lambda r: (0, int(r.id), "") if r.id.isdigit() else (1, 0, r.id))


def by_document(questions: list[QuestionRow], setups: list[str]) -> list[dict[str, Any]]:
    """Mean EM and F1 of every setup per source document (of the gold evidence)."""
    groups: dict[str, list[QuestionRow]] = {}
    for q in questions:
        groups.setdefault(q.doc or "(unknown)", []).append(q)
    out = []
    for doc, qs in sorted(groups.items()):
        scores = {}
        for s in setups:
            ans = [q.answers[s] for q in qs if s in q.answers]
            em = [a.em for a in ans if a.em is not None]
            f1 = [a.f1 for a in ans if a.f1 is not None]
            scores[s] = (sum(em) / len(em) if em else None, sum(f1) / len(f1) if f1 else None)
        out.append({"doc": doc, "questions": len(qs), "scores": scores})
    return out


def _eval_set(ws) -> dict[str, tuple[str, list[str]]]:
    from loop.samples import load_generated_eval_set

    ds = load_generated_eval_set(ws)
    return {r["id"]: (r["question"], list(r["answers"])) for r in ds} if ds is not None else {}


def fmt_interval(cell: dict[str, float] | None) -> str:
    if not cell:
        return "-"
    return f"{cell['mean']:.2f} [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]"


def open_retriever(ws_path: Path):
    """The workspace's index, loaded once (the embedder takes a few seconds)."""
    from loop.index import load_retriever

    with _open(ws_path) as ws:
        return load_retriever(ws)


@dataclass
class CorpusView:
    documents: list[dict[str, Any]]  # source, title, doc_id, n_chunks
    skipped: list[dict[str, Any]]  # source, reason


def load_corpus_view(ws_path: Path) -> CorpusView:
    with _open(ws_path) as ws:
        return CorpusView(ws.ledger.documents(), ws.ledger.skipped_files())


def load_chunks(ws_path: Path, doc_id: str) -> list[dict[str, Any]]:
    from loop.corpus import load_corpus

    with _open(ws_path) as ws:
        ds = load_corpus(ws)
        return [c for c in ds.select_columns(["chunk_id", "doc_id", "text"]) if c["doc_id"] == doc_id]


def write_latest_report(ws_path: Path) -> Path:
    """``report.md`` (and figures) of the latest evaluation; returns its path."""
    from loop.errors import WorkspaceError
    from loop.eval.report import write_report

    with _open(ws_path) as ws:
        scores = _scores(ws)
        if scores is None:
            raise WorkspaceError("no evaluation yet: run synthloop eval first")
        out = write_report(ws, scores.path)
    md = out.get("markdown") if isinstance(out, dict) else None
    return Path(md) if md else scores.path / "report" / "report.md"


# -- comparing two runs ----------------------------------------------------------------------

_FACT_GROUPS = ("run", "data", "adapter", "scores", "config", "summary")


def fact_order(key: str) -> tuple[int, str]:
    group = key.split(".", 1)[0]
    return (_FACT_GROUPS.index(group) if group in _FACT_GROUPS else len(_FACT_GROUPS), key)


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        out[prefix] = text if len(text) <= 80 else text[:79] + "…"


def compare_runs(ws_path: Path, a: int, b: int) -> tuple[dict[str, str], dict[str, str]]:
    """Each run's facts as flat ``group.key -> text``: the run, the dataset, adapter or
    scores it produced (its lineage), its config and its summary."""
    with _open(ws_path) as ws:
        return _run_facts(ws, a), _run_facts(ws, b)


def _run_facts(ws, run_id: int) -> dict[str, str]:
    from loop.errors import InputError

    r = ws.ledger.run(run_id)
    if r is None:
        raise InputError(f"no run {run_id} in the ledger")
    out: dict[str, str] = {}
    took = f"{r['finished_at'] - r['started_at']:.1f}s" if r["finished_at"] else "-"
    _flat("run", {"stage": r["stage"], "status": r["status"], "took": took,
                  "artefact": r["artefact_id"] or "-", "error": r["error"] or "-"}, out)
    for group in ("config", "summary"):
        value = r[group] or {}
        if isinstance(value, str):  # a column that did not hold JSON
            out[group] = value
        else:
            _flat(group, value, out)
    aid = r["artefact_id"]
    if aid:
        _lineage(ws, aid, out)
    return out


def _lineage(ws, aid: str, out: dict[str, str]) -> None:
    db = ws.ledger
    d = db.dataset(aid)
    if d:
        _flat("data", _pick(d, "id", "teacher", "n_samples", "n_rejected"), out)
    m = db.model(aid)
    if m:
        _flat("adapter", _pick(m, "id", "kind", "method", "student", "dataset_id", "steps",
                               "loss_last", "val_loss"), out)
        dd = db.dataset(m["dataset_id"])
        if dd:
            _flat("data", {"id": m["dataset_id"], **_pick(dd, "n_samples", "teacher")}, out)
    scores = _scores(ws, aid) if (ws.eval_dir(aid) / "scores.json").exists() else None
    if scores:
        out["scores.questions"] = str(scores.questions)
        for s in scores.setup_names:
            for metric in ("em", "f1"):
                cell = scores.setups[s].get(metric)
                if cell:
                    out[f"scores.{s}.{metric}"] = fmt_interval(cell)


def _pick(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: row[k] for k in keys}


# -- reviewing samples -----------------------------------------------------------------------


@dataclass
class SamplesView:
    dataset_id: str | None
    rows: list[dict[str, Any]]
    verdicts: dict[str, str]
    total: int = 0


def load_samples_view(ws_path: Path, limit: int = 2000) -> SamplesView:
    """The current dataset's first ``limit`` samples and the verdicts given on them."""
    from loop.review import reviews
    from loop.samples import current_dataset_id, load_samples

    with _open(ws_path) as ws:
        did = current_dataset_id(ws)
        if not did:
            return SamplesView(None, [], {})
        ds = load_samples(ws, did)
        rows = ds.select(range(min(limit, len(ds)))).to_list()
        return SamplesView(did, rows, {k: r.verdict for k, r in reviews(ws, did).items()}, len(ds))


def save_review(ws_path: Path, dataset_id: str, sample_id: str, verdict: str,
                messages: list[dict[str, str]] | None = None) -> tuple[str, str, list | None]:
    from loop.review import record_review

    with _open(ws_path) as ws:
        record_review(ws, dataset_id, sample_id, verdict, messages)
    return sample_id, verdict, messages


def apply_sample_reviews(ws_path: Path, dataset_id: str):
    from loop.review import apply_reviews

    with _open(ws_path) as ws:
        return apply_reviews(ws, dataset_id)


def question_of(sample: dict[str, Any]) -> str:
    """The question a sample asks (``loop.samples.question_of``: one definition everywhere)."""
    from loop.samples import question_of as of

    return of(sample)


def train_defaults(ws_path: Path) -> dict[str, Any]:
    """The student the last model was trained from (else the train stage's default)."""
    from loop.train import TrainConfig

    with _open(ws_path) as ws:
        models = ws.ledger.models()
    return {"student": models[0]["student"] if models else TrainConfig().student}


def playground_student(ws_path: Path) -> str:
    """The student base and rag answer with when the playground's box is empty."""
    from loop.eval.ask import playground_student
    from loop.eval.models import models_of
    from loop.handoff import current_inputs

    with _open(ws_path) as ws:
        latest = current_inputs(ws)
        return playground_student(ws, models_of(ws, latest.models), eval_id=latest.eval_id)


# -- the index -------------------------------------------------------------------------------


def index_settings(ws) -> dict[str, Any]:
    """The resolved config the current index was built with ({} before any)."""
    iid = ws.ledger.current("index")
    meta = ws.artefact("index", iid) / "synthloop.json" if iid else None
    return json.loads(meta.read_text())["config"] if meta is not None and meta.exists() else {}


def load_index_view(ws_path: Path) -> dict[str, Any]:
    from loop.samples import load_generated_eval_set

    with _open(ws_path) as ws:
        db = ws.ledger
        row = db.index(db.current("index"))
        index = None
        if row:
            cfg = row["config"] or {}
            index = {"id": row["id"], "embedder": row["embedder"], "method": cfg.get("method", "?"),
                     "k": cfg.get("k", "?")}
        stale = bool(row) and row["corpus_id"] != db.current("corpus")
        has_eval = load_generated_eval_set(ws) is not None
    return {"index": index, "stale": stale, "eval_set": has_eval}


def retrieval_recall(ws_path: Path, ks: list[int], gold: str | None = None) -> dict[str, Any]:
    """recall@k, MRR and nDCG of every method on a gold set: the file ``gold`` (JSONL or
    SQuAD JSON, what ``synthloop retrieval-eval --eval-set`` reads), else the workspace's
    generated eval set (fed to the same code as JSONL). ``eval_set`` names the one used."""
    import tempfile

    from loop.errors import InputError
    from loop.index import evaluate_retrieval

    with _open(ws_path) as ws:
        if gold:
            path = Path(gold).expanduser()
            if not path.is_file():
                raise InputError(f"no gold set file at {path}")
            return {**evaluate_retrieval(ws, path, ks), "eval_set": f"gold set {path.name}"}
        rows = _eval_set(ws)
        if not rows:
            raise InputError("no gold set: name a JSONL or SQuAD JSON file of questions, or "
                             "generate an eval set (synthloop generate --eval)")
        chunk_ids = _eval_chunks(ws)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "eval.jsonl"
            path.write_text("\n".join(json.dumps({"id": i, "question": q, "answers": a,
                                                  "chunk_ids": chunk_ids.get(i, [])})
                                      for i, (q, a) in rows.items()))
            return {**evaluate_retrieval(ws, path, ks), "eval_set": "the generated eval set"}


def _eval_chunks(ws) -> dict[str, list[str]]:
    from loop.samples import load_generated_eval_set

    ds = load_generated_eval_set(ws)
    if ds is None or "chunk_ids" not in ds.column_names:
        return {}
    return {r["id"]: list(r["chunk_ids"] or []) for r in ds}


def add_documents(ws_path: Path, path: str) -> dict[str, Any]:
    """Ingest a file or folder into the workspace's corpus (what is there is kept); the
    ingest summary. A path that does not exist is an error naming it."""
    from loop.ingest import ingest
    from loop.workspace import Workspace

    target = Path(path).expanduser()
    if not target.exists():
        raise FileNotFoundError(f"no such file or folder: {target}")
    with Workspace(ws_path) as ws:
        return ingest(ws, [target]).summary()
