"""``synthloop generate --teacher openai:MODEL`` against a real OpenAI-compatible server.

The server is ``transformers serve`` running SmolLM2-135M-Instruct on the CPU, fully
offline (tests/serving.py; the ``smollm2_server`` fixture of tests/conftest.py). A 135M
teacher often writes replies that fail the task's JSON schema; what is checked is the
plumbing: every job ends as a sample or a kept reject with
its reason, every call is cached in the ledger with its token usage, and a re-run is served
from the cache without a single new request to the server.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from loop.workspace import Workspace
from tests.serving import BIN, free_port, needs_serve, offline_env

SYNTHLOOP = BIN / "synthloop"

DOCS = {
    "lighthouse.md": (
        "# The Harbour Light\n\n"
        "The lighthouse keeper Ilse Brannock lights the lamp of the Harbour Light at dusk every "
        "evening. She has kept the light since 1987, when the old keeper Tomas Wyle retired to "
        "the village of Kettleness. The lamp can be seen from twenty-two nautical miles away.\n"
    ),
    "ferry.md": (
        "# The Island Ferry\n\n"
        "The ferry Morven Star leaves the harbour for the island of Skarra at seven each morning "
        "and returns at six in the evening. The crossing takes ninety minutes, and the ferry "
        "carries up to forty passengers and six cars. Captain Rhona Tait has sailed it since 2004.\n"
    ),
    "market.md": (
        "# The Saturday Market\n\n"
        "The fish market on Quay Street opens at five o'clock every Saturday morning. Its oldest "
        "stall belongs to the Gunn family, who have sold smoked haddock there since 1952. The "
        "market moved indoors to the old rope works in 1978 after a storm destroyed its awnings.\n"
    ),
}


pytestmark = [
    needs_serve,
    # dequantizing (~25 s), loading the server and ~6 CPU generations: well over the default
    # timeout on a busy 2-core machine
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def server(smollm2_server):
    return smollm2_server


def _generate(ws_root: Path, teacher_url: str, model: Path, config: Path) -> dict:
    cmd = [str(SYNTHLOOP), "generate", "--workspace", str(ws_root),
           "--teacher", f"openai:{model}", "--teacher-url", teacher_url,
           "--tasks", "qa", "--per-chunk", "1", "--concurrency", "1",
           "--config", str(config), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=offline_env())
    assert out.returncode == 0, f"{out.stderr[-3000:]}\n{out.stdout[-1000:]}"
    return json.loads(out.stdout)


def test_generate_against_transformers_serve(server, tmp_path):
    from loop.corpus import load_corpus
    from loop.ingest import ingest
    from loop.samples import load_samples

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    root = tmp_path / "ws"
    with Workspace(root) as ws:
        ingest(ws, [docs])
        chunk_ids = load_corpus(ws)["chunk_id"]
    assert len(chunk_ids) == 3  # one qa job per chunk

    config = tmp_path / "synthloop.toml"
    config.write_text("[generate]\nmax_tokens = 96\nmax_retries = 1\ntimeout = 300\n")

    # -- first run: every call goes to the server -------------------------------------------
    posts_before = server.chat_posts()
    t0 = time.monotonic()
    first = _generate(root, server.url, server.model, config)
    took = time.monotonic() - t0
    usage = first["usage"]
    assert first["cached"] is False and not first["cancelled"]
    assert first["failed_chunks"] == [], first["failed_chunks"]  # the server answered every call
    # One call per job, plus one repair call for each reply that failed the schema.
    assert len(chunk_ids) <= usage["calls"] <= 2 * len(chunk_ids), usage
    assert usage["cached_calls"] == 0
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert server.chat_posts() - posts_before == usage["calls"]
    print(f"\nfirst generate: {took:.1f}s, {usage}, rejected {first['rejected']}, "
          f"{first['samples']} samples")

    with Workspace(root) as ws:
        calls = ws.ledger.conn.execute("SELECT key, value FROM teacher_calls").fetchall()
        rejects = ws.ledger.conn.execute(
            "SELECT chunk_id, task, reason, detail, raw FROM rejects WHERE dataset_id = ?",
            (first["dataset_id"],)).fetchall()
        # an all-rejected run (the usual outcome with a 135M teacher) loads as an empty dataset
        samples = load_samples(ws, first["dataset_id"]).to_list()
    # Every answered call is in the ledger's call cache, with the server's token counts.
    assert len(calls) == usage["calls"]
    cached = [json.loads(row["value"]) for row in calls]
    assert all(c["prompt_tokens"] > 0 and c["completion_tokens"] > 0 for c in cached)
    assert sum(c["prompt_tokens"] for c in cached) == usage["prompt_tokens"]
    assert sum(c["completion_tokens"] for c in cached) == usage["completion_tokens"]
    # Every job ends as a sample or as a kept reject that says why.
    assert first["samples"] == len(samples)
    assert sum(first["rejected"].values()) == len(rejects)
    assert all(r["reason"] and r["task"] == "qa" for r in rejects)
    assert all(r["raw"] for r in rejects if r["reason"] == "parse_error")  # the reply is kept
    with_sample = {c for row in samples for c in row["chunk_ids"]}
    with_reject = {r["chunk_id"] for r in rejects}
    assert set(chunk_ids) <= with_sample | with_reject
    assert all(row["task"] == "qa" and row["teacher"] == f"openai:{server.model}" for row in samples)

    # -- the same command again: the dataset comes back, the server is not asked -------------
    posts = server.chat_posts()
    again = _generate(root, server.url, server.model, config)
    assert again["cached"] is True and again["dataset_id"] == first["dataset_id"]
    assert again["samples"] == first["samples"] and again["rejected"] == first["rejected"]
    assert server.chat_posts() == posts

    # -- a new filter setting with no server at all: every call comes from the ledger -------
    config.write_text("[generate]\nmax_tokens = 96\nmax_retries = 0\ntimeout = 5\n"
                      "grounding_min = 0.4\n")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    third = _generate(root, dead, server.model, config)
    assert third["dataset_id"] != first["dataset_id"] and third["cached"] is False
    assert third["failed_chunks"] == []
    assert third["usage"]["calls"] == 0
    assert third["usage"]["cached_calls"] == usage["calls"]
    assert third["usage"]["prompt_tokens"] == usage["prompt_tokens"]
    assert third["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert server.chat_posts() == posts
    with Workspace(root) as ws:
        assert ws.ledger.conn.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0] == len(calls)
