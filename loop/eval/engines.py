"""Serving engines started for an evaluation: ``eval --engine transformers|vllm|llamacpp``.

The engine is launched on what the workspace holds, the setups it can answer are pointed at
it as served setups (:mod:`loop.eval.served`: the same chats, greedy, the same answer
length), and it is stopped when the evaluation ends, however it ends:

- ``transformers``: ``transformers serve`` (the ``transformers[serving]`` extra), not pinned
  to a model, so one server answers the base student's folder and every adapter kind's
  merged export (written once per model under ``cache/engine/``);
- ``vllm``: ``vllm serve BASE --enable-lora --lora-modules tuned=ADAPTER ...``: one base,
  the adapter chosen per request by its kind's name (a full fine-tune has no adapter and
  stays in-process, said in one line);
- ``llamacpp``: one ``llama-server`` per GGUF file: the student's own when it is one
  (``smollm2``, a ``.gguf``), and each adapter kind's ``export --gguf`` (f16).

An engine whose binary is not installed is one line that says how to install it, or how to
point ``--serve`` at an engine started elsewhere (docs: README, "Score on a serving engine").
The engine's output goes to ``logs/engine-NAME.log`` in the workspace; a failed start quotes
its last lines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loop.errors import InputError
from loop.events import EventSink, Warned, null_sink
from loop.handoff import Inputs, given
from loop.workspace import Workspace

ENGINES = ("transformers", "vllm", "llamacpp")
INSTALL = {"transformers": "pip install 'transformers[serving]'",
           "vllm": "pip install vllm (a CUDA machine)",
           "llamacpp": "build llama.cpp and put llama-server on PATH"}
BINARY = {"transformers": "transformers", "vllm": "vllm", "llamacpp": "llama-server"}
READY_TIMEOUT_S = 600.0  # vLLM on a large model takes minutes to load and warm up


@dataclass
class Launch:
    """One engine process to start: its command, and the served name of each setup on it."""

    cmd: list[str]
    names: dict[str, str]  # setup -> the model name requests carry
    port: int
    env: dict[str, str] = field(default_factory=dict)


def engine_binary(engine: str) -> str:
    """The engine's executable on PATH (beside this Python first), or a one-line error."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r} (known: {', '.join(ENGINES)})")
    name = BINARY[engine]
    import sys

    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise InputError(f"--engine {engine}: `{name}` is not installed ({INSTALL[engine]})",
                         hint="or start the engine yourself and pass --serve "
                              "SETUP=openai:NAME@URL")
    return found


@contextlib.contextmanager
def launched(ws: Workspace, cfg: Any, setups: list[str], emit: EventSink = null_sink,
             inputs: Inputs | None = None) -> Iterator[dict[str, str]]:
    """Start ``cfg.engine`` on the models ``inputs`` names (unset: the workspace's latest)
    for ``setups`` (those not already served), yield their ``serve`` specs, stop every
    process when the block ends."""
    binary = engine_binary(cfg.engine)
    wanted = [s for s in setups if s not in cfg.serve and s != "exported"]
    launches = _plan(ws, cfg, binary, wanted, emit, given(ws, inputs))
    log_dir = ws.root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[tuple[subprocess.Popen, Path, Launch]] = []
    try:
        for n, launch in enumerate(launches):
            log = log_dir / f"engine-{cfg.engine}{'-' + str(n) if len(launches) > 1 else ''}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(launch.cmd, stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, **launch.env})
            procs.append((proc, log, launch))
        serve: dict[str, str] = {}
        for proc, log, launch in procs:
            url = f"http://127.0.0.1:{launch.port}/v1"
            _wait_ready(cfg.engine, proc, url, log, cfg.engine_timeout or READY_TIMEOUT_S)
            serve.update({s: f"openai:{name}@{url}" for s, name in launch.names.items()})
        yield serve
    finally:
        for proc, _, _ in procs:
            stop_process(proc)


def _plan(ws: Workspace, cfg: Any, binary: str, setups: list[str], emit: EventSink,
          inputs: Inputs) -> list[Launch]:
    from loop.eval.models import models_of
    from loop.eval.setups import SETUPS

    models = models_of(ws, inputs.models)
    # a setup whose model was never trained is not served: the eval says it is skipped
    setups = [s for s in setups if not SETUPS[s].adapter or SETUPS[s].adapter in models]
    kinds = {s: SETUPS[s].adapter for s in setups}
    dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(cfg.dtype, "auto")
    host = ["--host", "127.0.0.1"]
    if cfg.engine == "transformers":
        port = _free_port()
        names = {}
        for s in setups:
            kind = kinds[s]
            names[s] = str(_merged(ws, models[kind], emit) if kind else _student_folder(ws, cfg, models))
        device = "cpu" if cfg.device == "cpu" else "auto"
        return [Launch([binary, "serve", "--device", device, "--dtype", dtype, *host,
                        "--port", str(port)], names, port)]
    if cfg.engine == "vllm":
        port = _free_port()
        base = str(_student_folder(ws, cfg, models))
        adapters: dict[str, Path] = {}
        names = {}
        for s in setups:
            kind = kinds[s]
            if kind is None:
                names[s] = base
            elif (models[kind] / "adapter" / "adapter_config.json").exists():
                adapters[kind] = models[kind] / "adapter"
                names[s] = kind
            else:
                emit(Warned("eval", message=f"--engine vllm: the {kind} model is a full "
                                            f"fine-tune (no adapter), so '{s}' is answered in-process"))
        cmd = [binary, "serve", base, *host, "--port", str(port), "--dtype", dtype]
        if adapters:
            rank = max(_lora_rank(p) for p in adapters.values())
            cmd += ["--enable-lora", "--max-lora-rank", str(rank), "--lora-modules",
                    *(f"{k}={p}" for k, p in sorted(adapters.items()))]
        return [Launch(cmd, names, port)]
    # llamacpp: one llama-server per GGUF file
    files: dict[str, Path] = {}
    for s in setups:
        kind = kinds[s]
        if kind is None:
            gguf = _student_gguf(cfg, models)
            if gguf is None:
                emit(Warned("eval", message=f"--engine llamacpp: the student is not a GGUF "
                                            f"file, so '{s}' is answered in-process"))
                continue
            files.setdefault("base", gguf)
        else:
            files.setdefault(kind, _gguf(ws, models[kind], emit))
    out = []
    for key, path in files.items():
        port = _free_port()
        names = {s: path.name for s in setups if (kinds[s] or "base") == key}
        out.append(Launch([binary, "-m", str(path), *host, "--port", str(port), "--jinja",
                           "--temp", "0"], names, port))
    return out


def _student_folder(ws: Workspace, cfg: Any, models: dict[str, Path]) -> Path:
    """The base student as a local safetensors folder an engine can read."""
    import json

    from loop.models.students import (
        LoadOptions,
        gguf_file,
        materialize_gguf,
        smollm2_path,
        split_uri,
    )

    uri = cfg.student or next((json.loads((p / "synthloop.json").read_text())["student"]
                               for p in models.values()), None)
    if not uri:
        raise InputError("--engine: no student to serve", hint="pass --student URI or train a model first")
    prefix, rest = split_uri(uri)
    opts = LoadOptions(ws=ws)
    if prefix == "smollm2":
        return materialize_gguf(smollm2_path(), ws)
    if prefix == "hf":
        gguf = gguf_file(rest)
        if gguf is not None:
            return materialize_gguf(gguf, ws)
        path = Path(rest).expanduser()
        if path.is_dir():
            return path.resolve()
        return Path(rest)  # a hub id: the engine resolves it from its own cache
    if prefix == "model":
        from loop.models.students import ModelArtefactLoader

        return ModelArtefactLoader()._path(rest, opts)
    raise InputError(f"--engine: a {prefix}: student cannot be served (a folder, a .gguf, "
                     "smollm2 or a hub id can)")


def _student_gguf(cfg: Any, models: dict[str, Path]) -> Path | None:
    import json

    from loop.models.students import gguf_file, smollm2_path, split_uri

    uri = cfg.student or next((json.loads((p / "synthloop.json").read_text())["student"]
                               for p in models.values()), None)
    if not uri:
        return None
    prefix, rest = split_uri(uri)
    if prefix == "smollm2":
        return Path(smollm2_path())
    return gguf_file(rest) if prefix == "hf" else None


def _merged(ws: Workspace, model: Path, emit: EventSink) -> Path:
    """The model merged with its adapter (``synthloop export``'s folder), once per model."""
    from loop.models.merge import export_merged

    out = ws.root / "cache" / "engine" / "merged" / model.name
    if not (out / "config.json").exists():
        emit(Warned("eval", message=f"--engine: merging {model.name} for the engine ({out})"))
        export_merged(ws, out, model.name, scores={}, overwrite=True)
    return out


def _gguf(ws: Workspace, model: Path, emit: EventSink) -> Path:
    """The model as an f16 GGUF file (``export --gguf``'s), once per model."""
    from loop.export import export_gguf

    out = ws.root / "cache" / "engine" / "gguf" / f"{model.name}.f16.gguf"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        emit(Warned("eval", message=f"--engine llamacpp: writing {out.name} for the engine"))
        export_gguf(ws, out, "f16", model.name, force=True)
    return out


def _lora_rank(adapter: Path) -> int:
    import json

    return int(json.loads((adapter / "adapter_config.json").read_text()).get("r", 16))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(engine: str, proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    """Until ``URL/models`` answers; the engine exiting first, or the timeout, is one error
    that quotes the log's last lines."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise InputError(f"--engine {engine} exited with {proc.returncode} before it was "
                             f"ready; its last lines ({log}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as r:
                r.read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() > deadline:
            raise InputError(f"--engine {engine} was not ready after {timeout:g} s; its last "
                             f"lines ({log}):\n{_tail(log)}", hint="engine_timeout sets the wait")
        time.sleep(0.5)


def _tail(log: Path, n: int = 12) -> str:
    from loop.terminal import printable

    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return "(no log)"
    return "\n".join(printable(x) for x in lines)


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate, then kill after 20 s: an engine stopped however the block ended."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
