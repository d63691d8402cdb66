"""A person's review of generated samples: accept, edit or reject, then a reviewed dataset.

Each verdict lands in the ledger (``sample_reviews``) the moment it is given, so nothing is
lost if the dashboard closes. ``apply_reviews`` writes a new content-addressed dataset from
the reviewed one (edited rows replaced, rejected rows removed and kept in ``rejects`` with
reason ``human``) and makes it the current dataset; the reviewed dataset stays as it was,
like every artefact. The new dataset's ledger config names its parent and the verdicts its
rows carry, so a second round of review starts from what the first one decided.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from loop.corpus import current_corpus_id
from loop.errors import InputError
from loop.samples import (
    DATASET_META,
    current_dataset_id,
    load_samples,
    make_sample,
    samples_dataset,
)
from loop.workspace import Workspace, save_dataset, write_json

VERDICTS = ("accepted", "edited", "rejected")


@dataclass
class Review:
    sample_id: str
    verdict: str
    messages: list[dict[str, str]] | None = None


@dataclass
class ReviewResult:
    dataset_id: str
    reviewed_from: str
    samples: int
    accepted: int
    edited: int
    rejected: int
    cached: bool

    def summary(self) -> dict[str, Any]:
        return dict(self.__dict__)


def record_review(ws: Workspace, dataset_id: str, sample_id: str, verdict: str,
                  messages: list[dict[str, str]] | None = None) -> None:
    """Remember one verdict (the latest verdict on a sample wins)."""
    if verdict not in VERDICTS:
        raise InputError(f"unknown verdict '{verdict}'", hint=f"one of {', '.join(VERDICTS)}")
    if verdict == "edited" and not messages:
        raise InputError("an edited sample needs its new messages")
    ws.ledger.conn.execute(
        "INSERT OR REPLACE INTO sample_reviews VALUES (?, ?, ?, ?, ?)",
        (dataset_id, sample_id, verdict, json.dumps(messages) if messages else None, time.time()))


def reviews(ws: Workspace, dataset_id: str) -> dict[str, Review]:
    """Every verdict that applies to the dataset's rows: carried from the dataset it was
    reviewed from, then its own."""
    out = {sid: Review(sid, v) for sid, v in _carried(ws, dataset_id).items()}
    out.update(_own(ws, dataset_id))
    return out


def _own(ws: Workspace, dataset_id: str) -> dict[str, Review]:
    return {r["sample_id"]: Review(r["sample_id"], r["verdict"],
                                   json.loads(r["messages"]) if r["messages"] else None)
            for r in ws.ledger.conn.execute(
                "SELECT sample_id, verdict, messages FROM sample_reviews WHERE dataset_id = ?",
                (dataset_id,))}


def _carried(ws: Workspace, dataset_id: str) -> dict[str, str]:
    row = ws.ledger.conn.execute("SELECT config FROM datasets WHERE id = ?", (dataset_id,)).fetchone()
    return json.loads(row["config"] or "{}").get("verdicts", {}) if row else {}


def apply_reviews(ws: Workspace, dataset_id: str | None = None) -> ReviewResult:
    """Write the reviewed dataset and make it current; see the module docstring."""
    did = dataset_id or current_dataset_id(ws)
    if not did:
        raise InputError("no dataset to review", hint="run `synthloop generate` first")
    own = _own(ws, did)
    if not own:
        raise InputError("nothing to apply: no sample of this dataset was reviewed")
    rows, rejected, verdicts = _reviewed_rows(load_samples(ws, did).to_list(), own, _carried(ws, did))
    blob = json.dumps(sorted((r.sample_id, r.verdict, r.messages) for r in own.values()))
    new_id = hashlib.sha256(f"review:{did}:{blob}".encode()).hexdigest()[:16]
    counts = {v: sum(1 for r in own.values() if r.verdict == v) for v in VERDICTS}
    final = ws.artefact("datasets", new_id)
    result = ReviewResult(new_id, did, len(rows), counts["accepted"], counts["edited"],
                          counts["rejected"], cached=final.exists())
    with ws.writing("review"):
        run_id = ws.ledger.start_run("review", [], {"dataset_id": did})
        if not final.exists():
            with ws.atomic_dir(final) as tmp:
                save_dataset(samples_dataset(rows), tmp / "data")
                write_json(tmp / "synthloop.json", {"kind": "train", "reviewed_from": did,
                                                     "summary": result.summary()})
        _record(ws, did, new_id, rows, rejected, verdicts, result)
        ws.ledger.finish_run(run_id, status="ok", summary=result.summary(), artefact_id=new_id)
    return result


def _reviewed_rows(rows: list[dict], own: dict[str, Review], carried: dict[str, str]):  # noqa: ANN202
    out, rejected, verdicts = [], [], {}
    for row in rows:
        r = own.get(row["id"])
        if r is None:
            out.append(row)
            if row["id"] in carried:
                verdicts[row["id"]] = carried[row["id"]]
            continue
        if r.verdict == "rejected":
            rejected.append(row)
            continue
        if r.verdict == "edited":
            row = make_sample(row["task"], r.messages or row["messages"], row["chunk_ids"],
                              teacher=row["teacher"], prompt_version=row["prompt_version"],
                              filters=json.loads(row["filters"] or "{}"), split=row["split"],
                              rejected=row["rejected"])
        out.append(row)
        verdicts[row["id"]] = r.verdict
    return out, rejected, verdicts


def _record(ws: Workspace, parent: str, new_id: str, rows: list[dict], rejected: list[dict],
            verdicts: dict[str, str], result: ReviewResult) -> None:
    with ws.ledger.transaction() as c:
        p = c.execute("SELECT corpus_id, teacher FROM datasets WHERE id = ?", (parent,)).fetchone()
        corpus_id = p["corpus_id"] if p else (current_corpus_id(ws) or "")
        teacher = p["teacher"] if p else (rows[0]["teacher"] if rows else "")
        c.execute("DELETE FROM rejects WHERE dataset_id = ?", (new_id,))
        c.execute("INSERT INTO rejects SELECT ?, seq, task, chunk_id, reason, detail, raw FROM rejects "
                  "WHERE dataset_id = ?", (new_id, parent))
        start = c.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM rejects WHERE dataset_id = ?",
                          (new_id,)).fetchone()[0]
        c.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?, ?)", [
            (new_id, start + i, r["task"], (r["chunk_ids"] or [""])[0], "human", "rejected in review",
             json.dumps(r["messages"])) for i, r in enumerate(rejected)])
        n_rejected = c.execute("SELECT COUNT(*) FROM rejects WHERE dataset_id = ?", (new_id,)).fetchone()[0]
        c.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  (new_id, "train", corpus_id, str(ws.artefact("datasets", new_id)), time.time(),
                   teacher, len(rows), n_rejected,
                   json.dumps({"reviewed_from": parent, "verdicts": verdicts}),
                   json.dumps(result.summary())))
        c.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                  (DATASET_META, new_id))
