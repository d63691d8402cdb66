"""``eval --engine vllm|llamacpp``: the engine is started on the workspace's models with the
command a real one takes, the setups it can answer are served by it, and it is stopped when
the eval ends. vLLM and llama.cpp are not installed on this machine: stand-in executables on
PATH record their argv and answer the OpenAI API, so what is checked is what synthloop does
with an engine (the command, the names, the readiness wait, the stop, the errors). The real
``transformers serve`` engine is tested in tests/eval/test_served_real.py."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from loop.errors import InputError
from tests.train.conftest import build_tiny_student, fact_rows, fast_config, write_dataset

ENGINE = r'''#!{python}
import http.server, json, pathlib, sys
args = sys.argv[1:]
log = pathlib.Path({log!r})
with log.open("a") as f:
    f.write(json.dumps(args) + "\n")
if {exit_code} is not None:
    print("engine: cannot load the model", flush=True)
    sys.exit({exit_code})
port = int(args[args.index("--port") + 1])

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._send({{"object": "list", "data": [{{"id": "m"}}]}})
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with log.open("a") as f:
            f.write(json.dumps({{"model": req["model"], "temperature": req.get("temperature")}}) + "\n")
        name = pathlib.Path(req["model"]).name
        self._send({{"id": "c", "object": "chat.completion", "model": req["model"],
                    "choices": [{{"index": 0, "finish_reason": "stop",
                                 "message": {{"role": "assistant", "content": "served by " + name}}}}],
                    "usage": {{"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}}})

http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
'''

GOLD = [{"question": "What colour is the door of house 0 near Kell Island?", "answers": ["red"]},
        {"question": "What colour is the door of house 1 near the harbour?", "answers": ["blue"]}]


@pytest.fixture(scope="module")
def tuned_ws(tmp_path_factory):
    """A workspace with a corpus and a tuned tiny adapter."""
    from loop.ingest import ingest
    from loop.train import train
    from loop.workspace import Workspace

    root = tmp_path_factory.mktemp("engines")
    student = build_tiny_student(root / "student", chat_template=True)
    docs = root / "docs"
    docs.mkdir()
    (docs / "doors.md").write_text("# Doors\n\nHouse 0 near Kell Island has a red door. "
                                   "House 1 near the harbour has a blue door.\n")
    gold = root / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in GOLD) + "\n")
    with Workspace(root / "ws") as ws:
        ingest(ws, [docs])
        write_dataset(ws, fact_rows(24))
        train(ws, fast_config(student, max_steps=2, patience=0))
    return root / "ws", gold, student


def _engine(bin_dir: Path, name: str, log: Path, exit_code: int | None = None) -> None:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(ENGINE.format(python=sys.executable, log=str(log), exit_code=exit_code))
    path.chmod(0o755)


def _calls(log: Path) -> list:
    return [json.loads(x) for x in log.read_text().splitlines()]


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _eval(ws_root, gold, **kw):
    from datasets import load_from_disk

    from loop.eval.stage import EvalConfig, evaluate
    from loop.workspace import Workspace

    with Workspace(ws_root) as ws:
        res = evaluate(ws, EvalConfig(max_new_tokens=8, n_boot=200, device="cpu", dtype="fp32", **kw),
                       eval_set=gold)
        preds = load_from_disk(str(res.path / "predictions")).to_list()
    return res, {(p["setup"], p["eval_id"]): p["raw"] for p in preds}


def test_vllm_serves_the_base_and_each_adapter_by_its_kind(tuned_ws, tmp_path, monkeypatch):
    ws_root, gold, student = tuned_ws
    log = tmp_path / "vllm.log"
    _engine(tmp_path / "bin", "vllm", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    res, answers = _eval(ws_root, gold, setups=["base", "tuned"], engine="vllm")
    argv, *requests = _calls(log)
    assert argv[:2] == ["serve", str(student)]
    assert argv[argv.index("--max-lora-rank") + 1] == "8"
    adapter = argv[argv.index("--lora-modules") + 1]
    assert adapter.startswith("tuned=") and adapter.endswith("/adapter")
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert {r["model"] for r in requests} == {str(student), "tuned"}
    assert all(r["temperature"] == 0 for r in requests)
    assert len(answers) == 4
    assert {a for (s, _), a in answers.items() if s == "tuned"} == {"served by tuned"}
    assert {a for (s, _), a in answers.items() if s == "base"} == {f"served by {student.name}"}
    url = res.lineage["served"]["tuned"]["url"]
    assert res.lineage["served"]["tuned"]["model"] == "tuned"
    assert _closed(int(url.rsplit(":", 1)[1].split("/")[0]))  # stopped when the eval ended


def test_llamacpp_serves_each_models_gguf_and_the_rest_stays_in_process(tuned_ws, tmp_path,
                                                                         monkeypatch):
    from loop.events import Warned

    ws_root, gold, _ = tuned_ws
    log = tmp_path / "llama.log"
    _engine(tmp_path / "bin", "llama-server", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    from loop.eval.stage import EvalConfig, evaluate
    from loop.workspace import Workspace

    seen = []
    with Workspace(ws_root) as ws:
        res = evaluate(ws, EvalConfig(setups=["base", "tuned"], engine="llamacpp", max_new_tokens=8,
                                      n_boot=200, device="cpu", dtype="fp32"),
                       eval_set=gold, emit=seen.append)
    argv = _calls(log)[0]
    gguf = Path(argv[argv.index("-m") + 1])
    assert gguf.suffix == ".gguf" and gguf.exists() and "--jinja" in argv
    assert set(res.lineage["served"]) == {"tuned"}  # the tiny student is no GGUF: in-process
    assert res.models["base"] is None and set(res.setups) == {"base", "tuned"}
    assert any(isinstance(e, Warned) and "is not a GGUF file" in e.message for e in seen)


def test_an_engine_that_is_missing_or_dies_is_one_line(tuned_ws, tmp_path, monkeypatch):
    ws_root, gold, _ = tuned_ws
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match=r"`vllm` is not installed .*pip install vllm"):
        _eval(ws_root, gold, setups=["tuned"], engine="vllm")
    _engine(tmp_path / "bin", "vllm", tmp_path / "dead.log", exit_code=3)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    with pytest.raises(InputError, match=r"(?s)exited with 3 before it was ready.*cannot load the model"):
        _eval(ws_root, gold, setups=["tuned"], engine="vllm")
