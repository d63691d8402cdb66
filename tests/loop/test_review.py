"""Accept, edit, reject: verdicts in the ledger, a reviewed dataset written and made current."""

from __future__ import annotations

import json

import pytest

from loop.errors import InputError
from loop.review import apply_reviews, record_review, reviews
from loop.samples import current_dataset_id, load_samples, make_sample, samples_dataset


def _rows():
    return [make_sample("qa", [{"role": "user", "content": f"Q{i}?"},
                               {"role": "assistant", "content": f"A{i}"}], [f"c{i}"], teacher="rules")
            for i in range(4)]


def _dataset(ws, rows, did="d0"):
    with ws.writing("test"), ws.atomic_dir(ws.artefact("datasets", did)) as tmp:
        samples_dataset(rows).save_to_disk(str(tmp / "data"))
    ws.ledger.set_meta("dataset", did)
    return did


def test_verdicts_become_a_new_current_dataset_and_rejects(ws):
    rows = _rows()
    did = _dataset(ws, rows)
    with pytest.raises(InputError, match="nothing to apply"):
        apply_reviews(ws)
    edited = [rows[1]["messages"][0], {"role": "assistant", "content": "A1, corrected"}]
    record_review(ws, did, rows[0]["id"], "accepted")
    record_review(ws, did, rows[1]["id"], "edited", edited)
    record_review(ws, did, rows[2]["id"], "accepted")
    record_review(ws, did, rows[2]["id"], "rejected")  # the latest verdict wins
    r = apply_reviews(ws)
    assert (r.samples, r.accepted, r.edited, r.rejected) == (3, 1, 1, 1)
    assert current_dataset_id(ws) == r.dataset_id != did
    new = load_samples(ws).to_list()
    assert [x["messages"][-1]["content"] for x in new] == ["A0", "A1, corrected", "A3"]
    assert new[1]["id"] != rows[1]["id"]  # the id follows the content
    assert len(load_samples(ws, did)) == 4  # the reviewed dataset is untouched
    rej = ws.ledger.conn.execute("SELECT reason, raw FROM rejects WHERE dataset_id = ?",
                                 (r.dataset_id,)).fetchall()
    assert [x["reason"] for x in rej] == ["human"] and "Q2?" in rej[0]["raw"]
    row = ws.ledger.conn.execute("SELECT n_samples, n_rejected, config FROM datasets WHERE id = ?",
                                 (r.dataset_id,)).fetchone()
    assert (row["n_samples"], row["n_rejected"]) == (3, 1)
    assert json.loads(row["config"])["reviewed_from"] == did
    # the next round sees what this one decided
    carried = reviews(ws, r.dataset_id)
    assert {v.verdict for v in carried.values()} == {"accepted", "edited"} and len(carried) == 2
    assert apply_reviews(ws, did).cached  # the same verdicts: the same dataset


def test_unknown_verdict_is_refused(ws):
    with pytest.raises(InputError, match="unknown verdict"):
        record_review(ws, "d0", "x", "maybe")
