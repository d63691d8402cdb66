"""`ask` before any training: base and rag answer with the configured student (a config
file's [train] student, else the train stage's default), not "type a student URI"."""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from loop.cli import app


@pytest.fixture(scope="module")
def fresh_ws(tmp_path_factory):
    """A corpus and an index: nothing trained, nothing scored."""
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    root = tmp_path_factory.mktemp("ask")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    (docs / "fees.md").write_text("# Fees\n\nHarbour mooring fees are 12 crowns a night.\n")
    with Workspace(root / "ws") as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
    return root / "ws"


def test_ask_answers_with_the_config_files_train_student(fresh_ws, tiny_student, tmp_path):
    cfg = tmp_path / "synthloop.toml"
    cfg.write_text(f'[train]\nstudent = "hf:{tiny_student}"\n')
    r = CliRunner().invoke(app, ["ask", "When does the ferry leave?", "-w", str(fresh_ws),
                                 "--config", str(cfg), "--max-new-tokens", "4", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["student"] == f"hf:{tiny_student}"
    assert [a["setup"] for a in out["answers"]] == ["base", "rag"]
    assert any(s["source"].endswith("ferry.md") for s in out["answers"][1]["sources"])


def test_ask_without_a_config_takes_the_train_default(fresh_ws, monkeypatch):
    """No file, no model: the train stage's default student (a fake pool here: no model
    loads, the URI it was asked for is recorded)."""
    from loop.train import TrainConfig

    asked: list[str] = []

    class Pool:
        def __init__(self, ws, uri, models, device, **kw):
            asked.append(uri)
            self.notes: list[str] = []
            self.student = SimpleNamespace(uri=uri)

        @contextmanager
        def use(self, setup):
            yield None, None

    monkeypatch.setattr("loop.eval.models.SetupModels", Pool)
    monkeypatch.setattr("generators.teachers.hf.generate_texts",
                        lambda model, tok, chats, **kw: [SimpleNamespace(text="7:15") for _ in chats])
    r = CliRunner().invoke(app, ["ask", "When does the ferry leave?", "-w", str(fresh_ws), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert asked == [TrainConfig().student] and out["student"] == TrainConfig().student
    assert [a["answer"] for a in out["answers"]] == ["7:15", "7:15"]
