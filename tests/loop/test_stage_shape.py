"""One shape for every stage: the ledger API, stage_run, the explicit stage table, and the
registries a new task, setup or metric joins in one place."""

from __future__ import annotations

import sqlite3

import pytest

from loop.events import Collector, Finished
from loop.ledger import Ledger
from loop.migrations import MIGRATIONS
from loop.workspace import Workspace


def test_insert_by_column_name_and_read_views(tmp_path):
    db = Ledger(tmp_path / "s.db")
    db.insert("models", id="m1", kind="tuned", student="smollm2", method="lora", dataset_id="d1",
              path="/p", created_at=2.0, steps=3, config={"lr": 0.1})
    db.insert("models", id="m0", kind="combined", student="smollm2", method="lora",
              dataset_id="d1", path="/q", created_at=1.0, steps=1, config={})
    assert db.model("m1")["config"] == {"lr": 0.1}  # JSON columns come back decoded
    assert [m["id"] for m in db.models()] == ["m1", "m0"]  # newest first
    assert [m["id"] for m in db.models("combined")] == ["m0"]
    assert db.model("nope") is None and db.model(None) is None
    db.set_current("model.tuned", "m1")
    assert db.current("model.tuned") == "m1" and db.current("eval") is None
    with pytest.raises(ValueError, match="known"):
        db.current("bogus")
    with pytest.raises(sqlite3.IntegrityError):
        db.insert("models", id="m1", kind="tuned", student="s", method="lora", dataset_id="d",
                  path="/p", created_at=3.0, steps=1, config={})
    db.insert("models", conflict="replace", id="m1", kind="tuned", student="s2", method="lora",
              dataset_id="d", path="/p", created_at=3.0, steps=1, config={})
    assert db.model("m1")["student"] == "s2"


def test_0006_backfills_evaluations_and_renames_the_eval_key(tmp_path, monkeypatch):
    import loop.ledger as ledger_mod

    monkeypatch.setattr(ledger_mod, "MIGRATIONS", MIGRATIONS[:5])  # a 0.1 workspace
    old = Ledger(tmp_path / "s.db")
    rid = old.start_run("eval", [], {"student": "smollm2"})
    old.finish_run(rid, status="ok", artefact_id="e1",
                   summary={"origin": "human gold set (g.jsonl)", "questions": 7, "verdict": "v"})
    old.set_meta("evaluation", "e1")
    old.close()
    monkeypatch.setattr(ledger_mod, "MIGRATIONS", MIGRATIONS)
    db = Ledger(tmp_path / "s.db")
    assert db.current("eval") == "e1"
    row = db.evaluation("e1")
    assert (row["questions"], row["origin"], row["config"]) == (7, "human gold set (g.jsonl)",
                                                                {"student": "smollm2"})


def test_old_evaluation_folders_are_still_found(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.eval_dir("e1") == ws.root / "evals" / "e1"
    (ws.root / "evals" / "score-e1").mkdir(parents=True)
    assert ws.eval_dir("e1") == ws.eval_dir("score-e1") == ws.root / "evals" / "score-e1"


def test_stage_run_records_ok_failed_and_stopped(tmp_path):
    from loop.stage import stage_run

    ws, sink = Workspace(tmp_path / "ws"), Collector()
    with stage_run(ws, "index", {"k": 5}, emit=sink) as run:
        assert ws.locked
        run.done({"chunks": 3}, "idx1")
    assert not ws.locked
    ok = ws.ledger.runs()[0]
    assert (ok["status"], ok["artefact_id"], ok["summary"], ok["config"]) == (
        "ok", "idx1", {"chunks": 3}, {"k": 5})
    assert [e.summary for e in sink.of(Finished)] == [{"chunks": 3}]

    class Halt(Exception):
        pass

    for exc, status in ((ValueError("bad [input]"), "failed"), (Halt("asked"), "stopped")):
        with pytest.raises(type(exc)), stage_run(ws, "train", {}, stopped_by=(Halt,)):
            raise exc
        r = ws.ledger.runs()[0]
        assert (r["status"], r["error"]) == (status, str(exc))
    assert len(sink.of(Finished)) == 1  # a failed stage sends no Finished
    assert not ws.locked


def test_every_stage_is_in_one_table_with_config_and_run():
    from loop.config import StageConfig
    from loop.stages import stage_of, stages

    table = stages()
    assert list(table) == ["ingest", "generate", "index", "train", "eval"]
    for name, s in table.items():
        assert issubclass(s.config, StageConfig) and callable(s.run)
        assert stage_of(s.config) == name and s.config.section == name


def test_the_config_module_is_a_leaf():
    """loop/config.py (the base config, the ingest config, resolve) imports no stage, so
    reading a config loads no stage module: no import circle through it."""
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "loop" / "config.py"
    mods = {n.module for n in ast.walk(ast.parse(src.read_text()))
            if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(ast.parse(src.read_text())) if isinstance(n, ast.Import)
        for a in n.names}
    assert {m for m in mods if m.startswith("loop")} == {"loop.errors"}


def test_a_new_task_is_one_registration(monkeypatch):
    import generators.tasks as tasks_mod
    from generators.tasks import get_task, register_task, task_names
    from generators.tasks.builtin import RaftTask
    from loop.generate import GenerateConfig
    from loop.generate.jobs import make_job
    from loop.train.data import trained_tasks

    class Quiz(RaftTask):
        name = "quiz"

    monkeypatch.setattr(tasks_mod, "TASKS", dict(tasks_mod.TASKS))  # restored after the test
    quiz = register_task(Quiz())
    assert get_task("quiz") is quiz
    assert "quiz" in task_names(uses_context=True)
    assert "quiz" in trained_tasks("lora", with_context=True)
    assert "quiz" not in trained_tasks("lora", with_context=False)
    assert "quiz" in GenerateConfig.choices()["tasks"]
    from generators.teachers import Chunk

    pool = [Chunk(f"c{i}", f"text {i}", f"t{i}", f"doc{i}.md") for i in range(4)]
    job = make_job(get_task("quiz"), pool[0], GenerateConfig(raft_distractors=2), pool)
    assert len(job.context) == 2 and job.format_context is not None  # distractors, RAG block


def test_a_new_setup_and_metric_join_the_registries(monkeypatch):
    from loop.eval import metrics as M
    from loop.eval import setups as S
    from loop.eval.stage import EvalConfig

    monkeypatch.setattr(S, "SETUPS", dict(S.SETUPS))
    monkeypatch.setattr(M, "METRICS", dict(M.METRICS))
    S.register_setup(S.Setup("rag-lite", None, True, 1.5, "light RAG"))
    assert S.setup_names()[:3] == ["base", "rag", "rag-lite"]
    assert "rag-lite" in S.rag_setups() and "rag-lite" in EvalConfig().setups
    M.register_metric(M.Metric("short", "answer under 5 words", 2.5,
                               lambda a, q, s: float(len(a.split()) < 5)))
    assert M.metric_names()[:6] == ["answer_f1", "contains", "em", "f1", "rouge_l", "short"]
    assert M.ordered_metrics({"short", "f1", "zzz"}) == ["f1", "short", "zzz"]


def test_loop_never_imports_tui_in_source():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for p in (root / "loop").rglob("*.py")
                 if any(line.lstrip().startswith(("import tui", "from tui"))
                        for line in p.read_text().splitlines())]
    assert offenders == []


def test_the_dashboard_starts_from_its_own_entry():
    """`python -m tui` (and the synthloop-dashboard script) import loop.cli, which loads the
    synthloop.verbs entry points, tui.cli among them: that cycle must not break either."""
    import subprocess
    import sys

    for argv in (["-m", "tui", "--help"], ["-m", "loop", "dashboard", "--help"]):
        out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "workspace" in out.stdout.lower()


def test_model_kinds_are_one_table_that_train_setups_and_run_read(monkeypatch):
    import pytest

    from loop import kinds as K
    from loop.eval import setups as S
    from loop.train.config import TrainConfig
    from loop.train.stage import model_kind

    assert [k.name for k in K.run_kinds()] == ["tuned", "combined"]
    assert model_kind(TrainConfig()) == "tuned"
    assert model_kind(TrainConfig(with_context=True)) == "combined"
    assert model_kind(TrainConfig(method="dpo")) == "dpo"
    assert model_kind(TrainConfig(method="pretrain")) == "pretrain"
    assert K.MODEL_KINDS["combined"].train_flags == "--with-context"
    assert K.MODEL_KINDS["dpo"].train_flags == "--method dpo --from tuned"

    # a new kind is one entry: the setups may load it, an unknown one is refused by name
    monkeypatch.setattr(K, "MODEL_KINDS", dict(K.MODEL_KINDS))
    monkeypatch.setattr(S, "SETUPS", dict(S.SETUPS))
    with pytest.raises(ValueError, match="no model kind 'distilled'"):
        S.register_setup(S.Setup("distilled", "distilled", False, 2.2, "distillation"))
    K.register_model_kind(K.ModelKind("distilled", "distilled from the teacher", False,
                                      method="distil"))
    S.register_setup(S.Setup("distilled", "distilled", False, 2.2, "distillation"))
    assert K.kind_of("distil", False) == "distilled" and "distilled" in S.adapter_kinds()
    with pytest.raises(ValueError, match="registered twice"):
        K.register_model_kind(K.ModelKind("distilled", "another", True))


def test_run_stops_when_the_tuned_model_fails_but_skips_a_failed_combined(monkeypatch, tmp_path):
    import pytest

    from loop import pipeline as P
    from loop.errors import InputError
    from loop.events import Warned
    from loop.handoff import Inputs

    seen = []

    def fake_train(ws, cfg, emit, *, inputs):
        seen.append((cfg.with_context, inputs))
        if cfg.with_context:
            raise InputError("no raft rows in the dataset")
        return type("R", (), {"model_id": "m-tuned"})()

    events = []
    monkeypatch.setattr(P, "train", fake_train)
    given = Inputs(corpus_id="c1", dataset_id="d1")
    trained = P._train_both(None, P.RunConfig(), P._Clock(events.append), events.append, given)
    assert trained == {"tuned": "m-tuned"}
    assert any(isinstance(e, Warned) and "combined model not trained" in e.message for e in events)
    # each is told the dataset; the combined one also the tuned model it continues
    assert [(ctx, i.dataset_id, dict(i.models)) for ctx, i in seen] == [
        (False, "d1", {}), (True, "d1", {"tuned": "m-tuned"})]

    def failing(ws, cfg, emit, *, inputs):
        raise InputError("the dataset has no closed-book rows")

    monkeypatch.setattr(P, "train", failing)
    with pytest.raises(InputError, match="no closed-book rows"):
        P._train_both(None, P.RunConfig(), P._Clock(events.append), events.append, given)


def test_run_hands_each_stage_the_ids_the_stages_before_it_made(monkeypatch, tmp_path):
    """Two rounds with fresh documents, every stage faked: each is told the ids the one
    before it returned (targeted data from the training corpus, scoring on the fresh
    corpus and index, round 2 trained on the merged dataset), the documents are ingested
    once plus once per round for the fresh ones (no re-ingest to move a pointer back), and
    the pipeline itself moves no pointer."""
    from types import SimpleNamespace as NS

    from datasets import Dataset

    from loop import pipeline as P
    from loop.handoff import Inputs
    from loop.workspace import Workspace

    calls: list[tuple[str, dict]] = []

    def ingest(ws, paths, cfg, emit, *, only, inputs):
        cid = "corpus-both" if len(paths) > 1 else "corpus-docs"
        calls.append(("ingest", {"paths": len(paths), "from": inputs.corpus_id}))
        return NS(corpus_id=cid, chunks=3, files=1, skipped=[], cached=False)

    def generate(ws, cfg, *, emit, api_key=None, inputs, eval_mode=False, eval_questions=None,
                 merge=False):
        calls.append(("generate", {"eval": eval_mode, "merge": merge, "corpus": inputs.corpus_id,
                                   "dataset": inputs.dataset_id}))
        did = "evalset" if eval_mode else ("merged" if merge else "data-1")
        return NS(dataset_id=did, cached=False, failed_all=lambda: None)

    def build_index(ws, cfg, emit, *, inputs):
        calls.append(("index", {"corpus": inputs.corpus_id, "from": inputs.index_id}))
        return NS(index_id=f"index-{inputs.corpus_id}", cached=False)

    def train(ws, cfg, emit, *, inputs):
        kind = "combined" if cfg.with_context else "tuned"
        calls.append(("train", {"kind": kind, "dataset": inputs.dataset_id,
                                "models": dict(inputs.models)}))
        return NS(model_id=f"{kind}-{inputs.dataset_id}", cached=False)

    def evaluate(ws, cfg, *, eval_set, emit, inputs, fresh_sources=None, origin=None, current=True):
        n = sum(1 for c in calls if c[0] == "eval")
        calls.append(("eval", {"corpus": inputs.corpus_id, "index": inputs.index_id,
                               "dataset": inputs.dataset_id, "eval_set": inputs.eval_set_id,
                               "models": dict(inputs.models), "current": current}))
        path = tmp_path / f"eval{n}"
        Dataset.from_list([{"setup": "tuned", "f1": 0.0, "gold_chunk_ids": ["c1"]}]).save_to_disk(
            str(path / "predictions"))
        return NS(eval_id=f"e{n}", path=path, setups={}, models={}, verdict="v", lead_metric="f1",
                  coverage=None, cached=False)

    for name, fn in (("ingest", ingest), ("generate", generate), ("build_index", build_index),
                     ("train", train), ("evaluate", evaluate)):
        monkeypatch.setattr(P, name, fn)
    monkeypatch.setattr(P, "require_chunks", lambda result, docs: None)
    monkeypatch.setattr(P, "write_report", lambda *a, **k: {"markdown": "r.md"})
    monkeypatch.setattr(P, "_split", lambda *a: {"dev": None, "test": None, "summary": {},
                                                 "test_sources": set(), "origin": "o"})
    monkeypatch.setattr("loop.models.students.check_student", lambda uri, opts: None)
    monkeypatch.setattr("loop.corpus.load_corpus", lambda ws, cid: Dataset.from_list(
        [{"chunk_id": "c1", "source": "d.md"}]))
    monkeypatch.setattr(P, "_add_fresh", lambda ws, docs, fresh, trained_on, cfgs, clock, emit, i: (
        (ingest(ws, [*docs, *fresh], None, None, only=True, inputs=i),
         i.but(corpus_id="corpus-both",
               index_id=build_index(ws, None, None,
                                    inputs=i.but(corpus_id="corpus-both")).index_id))[1], set()))
    monkeypatch.setattr(P, "current_inputs", lambda ws: Inputs(corpus_id="old", index_id="old-index"))
    with Workspace(tmp_path / "ws") as ws:
        moved = []
        monkeypatch.setattr(type(ws.ledger), "set_current", lambda self, k, v: moved.append(k))
        out = P._run(ws, [tmp_path], P.RunConfig(), None, 2, lambda e: None, None, [tmp_path])
    assert moved == []
    assert [c for c in calls if c[0] == "ingest"] == [
        ("ingest", {"paths": 1, "from": "old"}),  # chunks reused from what was there
        ("ingest", {"paths": 2, "from": "corpus-docs"}), ("ingest", {"paths": 2, "from": "corpus-docs"})]
    gens = [c[1] for c in calls if c[0] == "generate"]
    assert gens == [{"eval": False, "merge": False, "corpus": "corpus-docs", "dataset": None},
                    {"eval": True, "merge": False, "corpus": "corpus-docs", "dataset": "data-1"},
                    {"eval": False, "merge": True, "corpus": "corpus-docs", "dataset": "data-1"}]
    trains = [c[1] for c in calls if c[0] == "train"]
    assert trains == [{"kind": "tuned", "dataset": "data-1", "models": {}},
                      {"kind": "combined", "dataset": "data-1", "models": {"tuned": "tuned-data-1"}},
                      {"kind": "tuned", "dataset": "merged", "models": {}},
                      {"kind": "combined", "dataset": "merged", "models": {"tuned": "tuned-merged"}}]
    scored, dev, last = (c[1] for c in calls if c[0] == "eval")
    both = {"tuned": "tuned-data-1", "combined": "combined-data-1"}
    assert scored == {"corpus": "corpus-both", "index": "index-corpus-both", "dataset": "data-1",
                      "eval_set": "evalset", "models": both, "current": True}
    assert dev == {"corpus": "corpus-docs", "index": "index-corpus-docs", "dataset": "data-1",
                   "eval_set": "evalset", "models": both, "current": False}
    assert last["dataset"] == "merged" and last["models"]["tuned"] == "tuned-merged"
    assert [r["eval_id"] for r in out["iterations"]] == ["e0", "e2"]
    assert {"ingest", "generate", "generate-eval", "index", "train-tuned", "eval", "eval-dev",
            "generate-targeted"} <= set(out["stage_seconds"])


def test_one_run_config_root_and_reading_it_loads_no_stage(tmp_path):
    """RunConfig has one section per stage (each the stage package's own config model) and
    [combined]; a config file is read and checked through it without importing any stage
    module (nor torch, transformers or datasets)."""
    import json
    import subprocess
    import sys

    from loop.stages import SECTIONS, RunConfig, stages

    assert list(RunConfig.model_fields) == [*SECTIONS, "combined"] == [*stages(), "combined"]
    for name in SECTIONS:
        model = RunConfig.section_model(name)
        assert model.__module__ == f"loop.{name}.config" and model.section == name
    f = tmp_path / "c.toml"
    f.write_text('[train]\nlr = 2e-4\n[combined]\nmax_steps = 3\n[index]\nk = 3\n')
    code = (f"import json, sys; from loop.stages import RunConfig; c = RunConfig.from_file({str(f)!r}); "
            "print(json.dumps([c.train.lr, c.combined, c.index.k, sorted(m for m in sys.modules "
            "if m.endswith('.stage') or m.split('.')[0] in ('torch', 'datasets', 'transformers'))]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lr, combined, k, loaded = json.loads(out.stdout)
    assert (lr, combined, k) == (2e-4, {"max_steps": 3}, 3)
    assert loaded == []


def test_a_train_adapter_scale_scales_the_tuned_adapter_only(monkeypatch, tmp_path):
    """[train] adapter_scale is the tuned adapter's: the combined one continues that
    (already scaled) adapter and is trained with it unset, unless [combined] sets one."""
    from types import SimpleNamespace as NS

    from loop import pipeline as P
    from loop.events import null_sink
    from loop.handoff import Inputs
    from loop.stages import RunConfig

    seen: dict[str, object] = {}

    def train(ws, cfg, emit, *, inputs):
        kind = "combined" if cfg.with_context else "tuned"
        seen[kind] = cfg.adapter_scale
        return NS(model_id=kind, cached=False)

    monkeypatch.setattr(P, "train", train)
    cfgs = RunConfig.from_tables({"train": {"adapter_scale": 0.7}})
    P._train_both(None, cfgs, P._Clock(null_sink), null_sink, Inputs(dataset_id="d"))
    assert seen == {"tuned": 0.7, "combined": None}
    cfgs = RunConfig.from_tables({"train": {"adapter_scale": 0.7}, "combined": {"adapter_scale": 0.9}})
    P._train_both(None, cfgs, P._Clock(null_sink), null_sink, Inputs(dataset_id="d"))
    assert seen == {"tuned": 0.7, "combined": 0.9}
