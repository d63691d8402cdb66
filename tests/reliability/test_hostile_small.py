"""A corpus so small that no chunk falls in `val_share`: validation still gets a chunk's
rows (at least one row whenever two or more chunks have rows), so the validation loss and
early stopping have something to read."""

from __future__ import annotations

import hashlib
import json

from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()


def test_val_share_never_leaves_validation_empty(tmp_path, rel):
    from datasets import load_from_disk

    from loop.ingest import ingest
    from loop.workspace import Workspace

    docs = {k: rel.DOCS[k] for k in ("ferry.md", "market.md", "library.md")}
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [rel.write_docs(tmp_path / "docs", docs)])
        ids = load_from_disk(str(next((tmp_path / "ws" / "corpus").iterdir()) / "data"))["chunk_id"]
    buckets = [int(hashlib.sha256(c.encode()).hexdigest()[:8], 16) % 1000 for c in ids]
    assert min(buckets) >= 100, buckets  # the case: by share alone, no chunk is validation
    r = runner.invoke(app, ["generate", "-w", str(tmp_path / "ws"), "--tasks", "qa", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["val"] >= 1 and out["train"] >= 1, out
    rows = load_from_disk(out["dataset_path"] + "/data").to_list()
    val_chunks = {x["chunk_ids"][0] for x in rows if x["split"] == "val"}
    train_chunks = {x["chunk_ids"][0] for x in rows if x["split"] == "train"}
    assert len(val_chunks) == 1 and not val_chunks & train_chunks  # split by chunk, as always
    rel.record("hostile: val_share on a tiny corpus", val=out["val"], train=out["train"])
