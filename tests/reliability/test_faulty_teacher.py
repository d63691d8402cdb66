"""A faulty teacher: the scripted OpenAI-compatible server answers 30% of requests with a
429 (Retry-After), a 500, a hang past the client's timeout, malformed JSON or a truncated
body. The run completes; every (chunk, task) job has its samples, its kept rejects, or is
listed as failed with the reason; no row is lost or duplicated against a run with a
healthy teacher; the summary's counts add up; and the same command run again once the
teacher is healthy retries only the failed jobs and ends with the healthy run's dataset.

Single requests misbehaving are tested in tests/generators/test_openai_teacher.py."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter

import pytest

from loop.generate import GenerateConfig, generate, select_chunks
from loop.samples import load_samples
from loop.workspace import Workspace

FAULTS = ["429", "500", "hang", "malformed", "truncated"]


def _cases():
    n = int(os.environ.get("SYNTHLOOP_TRIALS", 1))
    for seed in range(n):
        # 5 retries (the default): nearly every job gets through; 1 retry: many fail, each
        # must say why
        yield pytest.param(seed, 5, id=f"seed{seed}-retries5")
        yield pytest.param(seed, 1, id=f"seed{seed}-retries1")


def _by_job(rows):
    out: dict[tuple[str, str], list] = {}
    for r in rows:
        out.setdefault((r["task"], r["chunk_ids"][0]), []).append(r)
    return out


def _rejects(ws, dataset_id) -> Counter:
    rows = ws.ledger.conn.execute("SELECT task, chunk_id FROM rejects WHERE dataset_id = ?",
                                  (dataset_id,)).fetchall()
    return Counter((x["task"], x["chunk_id"]) for x in rows)


@pytest.mark.parametrize(("seed", "retries"), list(_cases()))
def test_thirty_percent_faults_lose_and_duplicate_nothing(seed, retries, tmp_path, server,
                                                           example_dir, rel):
    from loop.ingest import ingest

    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [example_dir])
    shutil.copytree(tmp_path / "ws", tmp_path / "healthy")
    cfg = GenerateConfig(teacher="openai:m", teacher_url=server.url, tasks=["qa", "raft"],
                         limit=20 if "SYNTHLOOP_TRIALS" not in os.environ else 40, concurrency=8, timeout=0.5, max_retries=retries)
    with Workspace(tmp_path / "healthy") as ws:
        h = generate(ws, cfg, api_key=rel.FAKE_KEY)
        healthy = _by_job(load_samples(ws).to_list())
        healthy_rejected = _rejects(ws, h.dataset_id)
    sent_healthy = len(server.requests)

    rng = random.Random(seed)
    plan = []  # exactly 3 faults in every 10 requests, the kinds in turn, the order shuffled
    for block in range(60):
        ten = [FAULTS[(3 * block + i) % len(FAULTS)] for i in range(3)] + ["ok"] * 7
        rng.shuffle(ten)
        plan += ten
    server.script.extend(plan)
    server.hang, server.retry_after = 1.5, "0.2"
    with Workspace(tmp_path / "ws") as ws:
        r = generate(ws, cfg, api_key=rel.FAKE_KEY)
        ds = load_samples(ws)
        rows = ds.to_list()
        rejected = _rejects(ws, r.dataset_id)
        jobs = [(t, c.chunk_id) for t in cfg.tasks for c in select_chunks(ws, cfg, ws.ledger.current("corpus"))]
    sent = len(server.requests) - sent_healthy
    faults = Counter(x for x in plan[:sent] if x != "ok")
    assert sent < len(plan) and sum(faults.values()) >= 0.25 * sent

    failed = {(f["task"], f["chunk_id"]): f["reason"] for f in r.failed_chunks}
    got = _by_job(rows)
    # every job: samples, kept rejects, or failed with a reason
    assert all(got.get(j) or rejected[j] or failed.get(j) for j in jobs)
    assert all(reason.strip() for reason in failed.values())
    # nothing lost, nothing duplicated: a job that got through gave as many candidates as
    # in a healthy run, each kept or rejected with a reason (which near-duplicate survives
    # depends on the other jobs, so with failed jobs the split may differ)
    for j in jobs:
        if j in failed:
            assert not got.get(j)
        elif not failed:
            assert got.get(j, []) == healthy.get(j, []), j
        else:
            kept, dropped = len(got.get(j, [])), rejected[j]
            assert kept + dropped == len(healthy.get(j, [])) + healthy_rejected[j], j
    assert len({x["id"] for x in rows}) == len(rows)
    # the summary's counts add up
    assert r.samples == len(rows) == sum(r.by_task.values()) == r.train + r.val
    assert sum(r.rejected.values()) == sum(rejected.values())
    assert r.rejected.get("teacher_error", 0) == len(failed)
    # No assertion that 5 retries always get through: six faults in a row for one of 80
    # jobs happened (once in 6 trials, six 429s), and then the job is listed with its reason.
    rel.record("faulty teacher (30% of requests)", trial=f"seed {seed}, {retries} retries",
               jobs=len(jobs), requests=sent, failed_jobs=len(failed), rows=len(rows),
               healthy_rows=sum(len(v) for v in healthy.values()), faults=faults,
               reasons=sorted({v.split(" (")[0] for v in failed.values()}))
    with Workspace(tmp_path / "ws") as ws:
        assert ws.ledger.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    json.dumps(r.summary(), default=str)  # the summary serialises as `generate --json` prints it

    # The same command again, the teacher healthy now: only the failed jobs are asked again
    # (the rest comes from the call cache) and the result is the healthy run's dataset.
    server.script.clear()
    before = len(server.requests)
    with Workspace(tmp_path / "ws") as ws:
        again = generate(ws, cfg, api_key=rel.FAKE_KEY)
        again_rows = _by_job(load_samples(ws).to_list())
    retried = len(server.requests) - before
    if failed:  # a dataset with failed jobs is not the full run's: that id stayed free
        assert r.dataset_id != h.dataset_id and not again.cached
        assert len(failed) <= retried < len(jobs)
    assert not again.failed_chunks and again.dataset_id == h.dataset_id and again_rows == healthy
    rel.record("faulty teacher, then re-run healthy", trial=f"seed {seed}, {retries} retries",
               failed_jobs=len(failed), requests_on_rerun=retried, equal_to_healthy=True)
