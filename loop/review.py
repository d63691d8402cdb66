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
from loop.samples import current_dataset_id, load_samples, make_sample, samples_dataset
from loop.stage import stage_run
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
    ws.ledger.insert("sample_reviews", conflict="replace", dataset_id=dataset_id,
                     sample_id=sample_id, verdict=verdict,
                     messages=json.dumps(messages) if messages else None, reviewed_at=time.time())


def reviews(ws: Workspace, dataset_id: str) -> dict[str, Review]:
    """Every verdict that applies to the dataset's rows: carried from the dataset it was
    reviewed from, then its own."""
    out = {sid: Review(sid, v) for sid, v in _carried(ws, dataset_id).items()}
    out.update(_own(ws, dataset_id))
    return out


def _own(ws: Workspace, dataset_id: str) -> dict[str, Review]:
    return {r["sample_id"]: Review(r["sample_id"], r["verdict"],
                                   json.loads(r["messages"]) if r["messages"] else None)
            for r in ws.ledger.sample_reviews(dataset_id)}


def _carried(ws: Workspace, dataset_id: str) -> dict[str, str]:
    row = ws.ledger.dataset(dataset_id)
    return (row["config"] or {}).get("verdicts", {}) if row else {}


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
    with stage_run(ws, "review", {"dataset_id": did}) as run:
        if not final.exists():
            with ws.atomic_dir(final) as tmp:
                save_dataset(samples_dataset(rows), tmp / "data")
                write_json(tmp / "synthloop.json", {"kind": "train", "reviewed_from": did,
                                                     "summary": result.summary()})
        _record(ws, did, new_id, rows, rejected, verdicts, result)
        run.done(result.summary(), new_id)
    return result


def _reviewed_rows(rows: list[dict], own: dict[str, Review], carried: dict[str, str]):
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
    db = ws.ledger
    with db.transaction():
        p = db.dataset(parent)
        corpus_id = p["corpus_id"] if p else (current_corpus_id(ws) or "")
        teacher = p["teacher"] if p else (rows[0]["teacher"] if rows else "")
        start = db.copy_rejects(parent, new_id)
        db.insert_many("rejects", [
            {"dataset_id": new_id, "seq": start + i, "task": r["task"],
             "chunk_id": (r["chunk_ids"] or [""])[0], "reason": "human",
             "detail": "rejected in review", "raw": json.dumps(r["messages"])}
            for i, r in enumerate(rejected)])
        db.insert("datasets", conflict="replace", id=new_id, kind="train", corpus_id=corpus_id,
                  path=str(ws.artefact("datasets", new_id)), created_at=time.time(),
                  teacher=teacher, n_samples=len(rows), n_rejected=db.reject_count(new_id),
                  config={"reviewed_from": parent, "verdicts": verdicts}, summary=result.summary())
        db.set_current("dataset", new_id)
