"""A cancelled generation keeps its rows; a re-run of the same config is the full run."""

from __future__ import annotations

from loop.events import Collector, Progress
from loop.generate import GenerateConfig, generate
from loop.ingest import ingest
from loop.samples import current_dataset_id, load_samples
from loop.workspace import Workspace


def test_cancel_keeps_the_finished_jobs_rows_and_a_rerun_completes(tmp_path, example_dir):
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [example_dir])
    cfg = GenerateConfig(limit=12, tasks=["qa"])
    events = Collector()
    done = lambda: len(events.of(Progress)) >= 5  # noqa: E731 - stop after the fifth job
    part = generate(ws, cfg, emit=events, should_stop=done)
    assert part.cancelled and len(events.of(Progress)) == 5
    rows = load_samples(ws)
    assert current_dataset_id(ws) == part.dataset_id and len(rows) == part.samples > 0
    assert len({r["chunk_ids"][0] for r in rows}) <= 5  # only the five finished jobs' chunks
    status, summary = ws.ledger.conn.execute(
        "SELECT status, summary FROM runs WHERE stage = 'generate'").fetchone()
    assert status == "cancelled" and '"cancelled": true' in summary
    n = ws.ledger.conn.execute("SELECT n_samples FROM datasets WHERE id = ?",
                               (part.dataset_id,)).fetchone()[0]
    assert n == part.samples

    full = generate(ws, cfg)
    assert not full.cancelled and full.dataset_id != part.dataset_id and full.samples > part.samples
    assert set(rows["id"]) <= set(load_samples(ws)["id"])  # the kept rows are the full run's too
    clean = Workspace(tmp_path / "clean")
    ingest(clean, [example_dir])
    assert generate(clean, cfg).dataset_id == full.dataset_id  # same as never cancelled
    ws.close()
    clean.close()
