"""The dashboard's loaders: what was scored wins over the workspace's current eval set."""

from __future__ import annotations

import shutil

from tui import data as D


def _rewrite_predictions(scores, **fields):
    from datasets import Dataset, load_from_disk

    from loop.workspace import save_dataset

    path = scores.path / "predictions"
    preds = load_from_disk(str(path)).to_list()
    for p in preds:
        p.update({k: (v(p) if callable(v) else v) for k, v in fields.items()})
    shutil.rmtree(path)
    save_dataset(Dataset.from_list(preds), path)


def test_drill_down_shows_the_question_and_gold_stored_with_the_predictions(dash_ws):
    scores = D.load_scores(dash_ws)
    # as the eval stage now writes them; the workspace's eval set says otherwise
    _rewrite_predictions(scores, question=lambda p: f"stored {p['eval_id']}?", answers=["stored gold"])
    rows = D.load_questions(dash_ws, scores)
    assert rows[0].question == "stored q1?" and rows[0].gold == ["stored gold"]


def test_older_predictions_fall_back_to_the_eval_set_and_group_by_document(dash_ws):
    scores = D.load_scores(dash_ws)
    rows = D.load_questions(dash_ws, scores)
    assert rows[0].question == "When does the ferry leave?" and rows[0].gold == ["7:15"]
    assert D.by_document(rows, ["base", "rag"]) == [
        {"doc": "ferry.md", "questions": 3, "scores": {"base": (1 / 3, 1 / 3), "rag": (1.0, 1.0)}}]
    _rewrite_predictions(scores, doc="")  # a generated set names no document: the gold chunk's
    assert D.load_questions(dash_ws, scores)[0].doc.endswith("ferry.md")
