"""A small workspace for the dashboard: two ingested docs and a hand-written scoreboard."""

from __future__ import annotations

import shutil

import pytest

SETUPS = {
    "base": {"em": (0.0, 0.0, 0.0), "f1": (0.10, 0.02, 0.20)},
    "rag": {"em": (0.67, 0.33, 1.0), "f1": (0.80, 0.60, 0.95), "hit": (1.0, 1.0, 1.0)},
}
QUESTIONS = [
    ("q1", "When does the ferry leave?", ["7:15"], {"base": "noon", "rag": "7:15"}),
    ("q2", "How much is the fee?", ["12 crowns"], {"base": "12 crowns", "rag": "12 crowns"}),
    ("q3", "Which pier?", ["Pier 3"], {"base": "Pier 9", "rag": "Pier 3"}),
]


def build(root):
    from datasets import Dataset

    from loop.corpus import load_corpus
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace, save_dataset, write_json

    docs = root / "docs"
    docs.mkdir(parents=True)
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    (docs / "fees.md").write_text("# Fees\n\nThe fee is 12 crowns for adults.\n")
    ws_path = root / "ws"
    with Workspace(ws_path) as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
        chunks = load_corpus(ws).to_list()
        ferry = next(c["chunk_id"] for c in chunks if "ferry" in c["source"])
        eval_set = ws.artefact("datasets", "set-1")
        save_dataset(Dataset.from_list([{"id": q, "question": text, "answers": gold, "chunk_ids": [ferry]}
                                        for q, text, gold, _ in QUESTIONS]), eval_set / "data")
        ws.ledger.set_current("eval_set", "set-1")
        table = {s: {m: dict(zip(("mean", "ci_low", "ci_high"), v, strict=True)) for m, v in ms.items()}
                 for s, ms in SETUPS.items()}
        diffs = [{"a": "base", "b": "rag", "metric": "f1", "mean": -0.7, "ci_low": -0.9,
                  "ci_high": -0.5, "significant": True},
                 {"a": "base", "b": "rag", "metric": "em", "mean": -0.67, "ci_low": -1.0,
                  "ci_high": 0.0, "significant": False, "mcnemar_p": 0.25}]
        score = ws.eval_dir("abc123")
        score.mkdir(parents=True)
        write_json(score / "scores.json", {
            "eval_id": "abc123", "origin": "generated eval set (set-1)", "questions": 3,
            "setups": table, "differences": diffs,
            "verdict": "Recommendation: rag (the cheapest setup that no other beats measurably).",
            "notes": [], "contamination": 0})
        preds = [{"eval_id": q, "setup": s, "doc": "ferry.md", "gold_chunk_ids": [ferry],
                  "answer": ans[s], "em": float(ans[s] == gold[0]),
                  "f1": float(ans[s] == gold[0]),
                  "retrieved_chunk_ids": [ferry] if s == "rag" else []}
                 for q, _, gold, ans in QUESTIONS for s in ("base", "rag")]
        save_dataset(Dataset.from_list(preds), score / "predictions")
        ws.ledger.insert("evaluations", id="abc123", path=str(score), created_at=0.0,
                         origin="generated eval set (set-1)", questions=3, config={})
        ws.ledger.set_current("eval", "abc123")
        rid = ws.ledger.start_run("eval", [], {})
        ws.ledger.finish_run(rid, status="ok", summary={"questions": 3}, artefact_id="abc123")
        rid = ws.ledger.start_run("train", [], {})
        ws.ledger.finish_run(rid, status="failed", error="out of memory [/] [b",
                             summary={"note": "brackets [/x] are text, not markup [/]"})
    return ws_path


@pytest.fixture(scope="session")
def dash_ws_template(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dash"))


@pytest.fixture
def dash_ws(dash_ws_template, tmp_path):
    """A private copy per test: the app may open the ledger."""
    dest = tmp_path / "ws"
    shutil.copytree(dash_ws_template, dest)
    return dest


@pytest.fixture(scope="session")
def tui_student(tmp_path_factory, build_tiny_llama):
    """The scoring tests' tiny Llama, with a shorter position table."""
    return build_tiny_llama(tmp_path_factory.mktemp("student"),
                            "The ferry leaves Pier 3 at 7:15. Fees are 12 crowns.", max_positions=512)


def sample_rows(n: int = 6) -> list[dict]:
    from loop.samples import make_sample

    return [make_sample("qa", [{"role": "user", "content": f"When does ferry {i} leave?"},
                               {"role": "assistant", "content": f"At {i}:15."}], [f"c{i}"],
                        teacher="rules", split="val" if i % 3 == 2 else "train")
            for i in range(n)]


def put_dataset(ws_path, rows, dataset_id="dash-dataset-01"):
    """Rows in the workspace as ``generate`` leaves them: an artefact, a ledger row, the meta."""
    import time

    from loop.samples import samples_dataset
    from loop.workspace import Workspace

    with Workspace(ws_path) as ws:
        with ws.writing("test"), ws.atomic_dir(ws.artefact("datasets", dataset_id)) as tmp:
            samples_dataset(rows).save_to_disk(str(tmp / "data"))
        ws.ledger.insert("datasets", id=dataset_id, kind="train", corpus_id="",
                         path=str(ws.artefact("datasets", dataset_id)), created_at=time.time(),
                         teacher="rules", n_samples=len(rows), n_rejected=0, config={}, summary={})
        ws.ledger.set_current("dataset", dataset_id)
    return dataset_id


@pytest.fixture
def kit_tui():
    from types import SimpleNamespace

    return SimpleNamespace(sample_rows=sample_rows, put_dataset=put_dataset)
