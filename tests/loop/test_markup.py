"""Text is text: what comes from a document, a teacher, a server or a user is printed as it
is, never read as rich markup (which drops ``[draft]`` and fails on ``[/i]``). And a message
to a pipe is never hard-wrapped: scripts grep it whole."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from loop import events as ev
from loop.cli import app
from loop.render import RichSink

OUTSIDE = "[/i] [bold] [draft]"
REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


class _Embedder:
    """Each word a fixed random vector: enough for an index, no model."""

    max_tokens = 64

    def __init__(self, name: str) -> None:
        self.uri, self.dim = f"markup:{name}", 16

    def embed(self, texts, *, progress=None):
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i] += np.random.default_rng(sum(map(ord, w))).standard_normal(self.dim)
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
        if progress:
            progress(len(texts), len(texts))
        return out

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]


@pytest.fixture
def indexed(tmp_path):
    from retrieval import embedders

    embedders.register_embedder("markup", _Embedder)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "log [draft].md").write_text(
        f"# Harbour log {OUTSIDE}\n\nThe ferry log reads {OUTSIDE} in plain words.\n")
    ws, cfg = tmp_path / "ws", tmp_path / "synthloop.toml"
    cfg.write_text('[index]\nembedder = "markup:x"\n')
    for args in (["ingest", docs], ["index", "-c", cfg]):
        r = runner.invoke(app, [*map(str, args), "-w", str(ws), "--json"])
        assert r.exit_code == 0, r.output
    yield ws
    embedders._REGISTRY.pop("markup", None)


def test_search_prints_chunk_brackets_as_text(indexed):
    r = runner.invoke(app, ["search", "ferry log", "--method", "bm25", "-w", str(indexed)],
                      env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    assert r.exception is None
    assert f"The ferry log reads {OUTSIDE} in plain words." in r.stdout
    assert "log [draft].md" in r.stdout and f"Harbour log {OUTSIDE}" in r.stdout


def test_eval_notes_verdict_and_paths_print_as_text(capsys, tmp_path):
    from loop.cli.eval import _show

    f1 = {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    summary = {"verdict": f"Recommendation: rag {OUTSIDE}.",
               "setups": {"rag": {"f1": f1, "em": f1}},
               "notes": [f"judge: HTTP 500 {{\"error\": \"{OUTSIDE}\"}}",
                         "setup 'combined' skipped (run `synthloop train [--with-context]`)"]}
    report = {"markdown": str(tmp_path / "[draft]" / "report.md")}
    _show(summary, report, as_json=False)
    err = capsys.readouterr().err
    assert f"Recommendation: rag {OUTSIDE}." in err
    assert f"note: judge: HTTP 500 {{\"error\": \"{OUTSIDE}\"}}" in err
    assert "run `synthloop train [--with-context]`" in err
    assert f"report: {report['markdown']}" in err


def test_help_keeps_its_brackets():
    """Typer reads help as markup: a flag's ``[default: ...]`` and the config's ``[section]``
    were dropped from ``--help``."""
    from loop.index import IndexConfig

    r = runner.invoke(app, ["search", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "TOML file with a [section] per stage" in r.stdout
    assert f"[default: {IndexConfig.model_fields['method'].default}]" in r.stdout


def test_stage_progress_descriptions_are_text():
    out = io.StringIO()
    sink = RichSink(Console(file=out, width=200))
    sink(ev.Started("gguf", message=f"dequantizing {OUTSIDE}.gguf"))
    sink(ev.Progress("gguf", done=1, total=1, info={"file": OUTSIDE}))
    sink(ev.Finished("gguf"))
    sink.close()
    assert f"gguf dequantizing {OUTSIDE}.gguf" in out.getvalue()
    assert f"file {OUTSIDE}" in out.getvalue()


def test_error_to_a_pipe_is_one_line(tmp_path):
    """A script greps stderr: a message longer than 80 columns must not be wrapped there."""
    missing = tmp_path / ("a-rather-long-folder-name-" * 3) / "workspace-12345678901234567890"
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["COLUMNS"] = "80"  # what rich assumes for a pipe
    p = subprocess.run([sys.executable, "-m", "loop", "search", "ferry", "-w", str(missing)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    assert str(missing) in lines[0] and "Traceback" not in p.stderr
