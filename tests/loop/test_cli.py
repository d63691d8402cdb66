"""The CLI through its real entry point: the installed ``synthloop`` script."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "synthloop"


def run(*args, cwd=None):
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "loop"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.fixture
def docs(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.md").write_text("# Alpha\n\nThe alpha office opens at 9:00.\n")
    (d / "b.txt").write_text("Beta\n\nBeta costs 12 crowns.\n")
    (d / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return d


def test_ingest_json_contract(tmp_path, docs):
    r = run("ingest", docs, "--workspace", tmp_path / "ws", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # stdout holds exactly one JSON object
    assert out["documents"] == 2 and out["chunks"] == 2
    assert out["skipped"] == [{"path": str(docs / "c.png"), "reason": out["skipped"][0]["reason"]}]
    assert "image" in out["skipped"][0]["reason"]
    again = json.loads(run("ingest", docs, "-w", tmp_path / "ws", "--json").stdout)
    assert again["cached"] and again["read"] == 0


def test_human_output_goes_to_stderr(tmp_path, docs):
    r = run("ingest", docs, "-w", tmp_path / "ws")
    assert r.returncode == 0 and r.stdout == ""
    assert "2 documents" in r.stderr and "1 skipped" in r.stderr


def test_default_workspace_is_created_in_cwd(tmp_path, docs):
    r = run("ingest", docs, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "synthloop-work" / "synthloop.db").exists()


def test_config_file_and_flag_override(tmp_path, docs):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[ingest]\nchunk_tokens = 50\noverlap_tokens = 4\n")
    r = run("ingest", docs, "-w", tmp_path / "ws", "--config", cfg, "--chunk-tokens", "60",
            "--tokens-per-word", "1.6", "--json")
    assert r.returncode == 0, r.stderr
    meta = json.loads((Path(json.loads(r.stdout)["corpus_path"]) / "synthloop.json").read_text())
    assert meta["config"]["chunk_tokens"] == 60 and meta["config"]["overlap_tokens"] == 4
    assert meta["config"]["tokens_per_word"] == 1.6  # what the index's window warning suggests


def test_exit_codes(tmp_path, docs):
    bad = tmp_path / "bad.toml"
    bad.write_text("[ingest]\nchunk_size = 5\n")
    r = run("ingest", docs, "-w", tmp_path / "ws", "--config", bad, "--json")
    assert r.returncode == 1
    assert "chunk_size" in json.loads(r.stdout)["error"]
    assert "Traceback" not in r.stderr
    assert run("ingest", "-w", tmp_path / "ws").returncode == 2  # no PATH argument
    assert run("no-such-verb").returncode == 2
    assert run("--help").returncode == 0 and "ingest" in run("--help").stdout


def test_busy_workspace_fails_with_the_holders_name(tmp_path, docs):
    from loop.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    with ws.writing("train --method lora"):
        r = run("ingest", docs, "-w", tmp_path / "ws")
    assert r.returncode == 1
    assert "in use by" in r.stderr and "train --method lora" in r.stderr


def test_workspace_that_is_a_file(tmp_path, docs):
    f = tmp_path / "file"
    f.write_text("x")
    r = run("ingest", docs, "-w", f)
    assert r.returncode == 1 and "not a folder" in r.stderr


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("synthloop ")
