"""Two processes on one workspace: the second writer is refused with a message naming the
first, for a single stage and for the whole ``run`` (which holds the lock between stages).
The lock itself (flock, released on kill -9) is tested in tests/loop/test_workspace.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from loop.errors import WorkspaceBusyError
from loop.workspace import Workspace


def test_second_cli_writer_is_refused_naming_the_first(tmp_path, server, docs, example_dir, rel):
    from loop.ingest import ingest

    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [example_dir])
        corpus = ws.ledger.get_meta("corpus")
    server.delay = 2.0  # each teacher reply takes 2 s until the second process has tried
    first = subprocess.Popen(
        [str(rel.SCRIPT), "generate", "-w", str(tmp_path / "ws"), "--teacher", "openai:m",
         "--teacher-url", server.url, "--concurrency", "1", "--limit", "8", "--tasks", "qa", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not server.requests and time.time() < deadline:  # it holds the lock by now
        time.sleep(0.05)
    second = rel.cli("ingest", docs, "-w", tmp_path / "ws", "--json")
    still_running = first.poll() is None
    server.delay = 0.0
    out, err = first.communicate(timeout=200)
    assert still_running  # else the test proved nothing
    rel.record("two processes on one workspace (CLI generate + ingest)", trial=0,
               second_refused=second.returncode == 1, first_ok=first.returncode == 0)
    assert second.returncode == 1
    assert f"pid {first.pid}" in second.stderr and "generate" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err[-2000:]
    with Workspace(tmp_path / "ws") as ws:
        assert ws.ledger.get_meta("corpus") == corpus  # the refused ingest changed nothing
    assert rel.integrity(tmp_path / "ws") == "ok"


# The real pipeline with every stage replaced by one that takes the lock, says its name and
# waits: the test looks at the workspace while each stage runs.
_FAKE_RUN = textwrap.dedent("""
    import sys
    from types import SimpleNamespace as NS
    import loop.pipeline as p
    from loop.workspace import Workspace

    def stage(name, result):
        def run(ws, *a, **kw):
            with ws.writing(name):
                print(name, flush=True)
                sys.stdin.readline()
            return result
        return run

    p.ingest = stage("ingest", NS(cached=False, chunks=1, corpus_id="c"))
    p.generate = stage("generate", NS(cached=False, failed_all=lambda: None, dataset_id="d"))
    p.build_index = stage("index", NS(cached=False, index_id="i"))
    p.train = stage("train", NS(cached=False, model_id="m"))
    p.evaluate = stage("eval", NS(cached=False, path=None, setups={}, eval_id="e", verdict="v",
                                  models={}, lead_metric="f1", coverage=None))
    p.write_report = stage("report", {})
    p.read_gold_set = lambda path: []
    sys.argv = ["synthloop", "run", "docs", "--eval-set", "gold.jsonl"]
    with Workspace(ROOT) as ws:
        p.run_pipeline(ws, [], p.RunConfig(), eval_set="gold.jsonl")
    print("done", flush=True)
""")


def test_a_run_holds_the_workspace_from_first_stage_to_last(tmp_path, rel):
    root = tmp_path / "ws"
    Workspace(root).close()
    proc = subprocess.Popen([sys.executable, "-c", _FAKE_RUN.replace("ROOT", repr(str(root)))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        for line in iter(proc.stdout.readline, ""):
            name = line.strip()
            if name == "done":
                break
            seen.append(name)
            # Mid-stage and (the moment the stage lets go) between stages: always the run.
            for moment in ("mid-stage", "between stages"):
                if moment == "between stages":
                    proc.stdin.write("\n")  # the stage ends
                    proc.stdin.flush()
                    if name == "report":  # the last one: the run lets go
                        break
                    time.sleep(0.02)
                with pytest.raises(WorkspaceBusyError) as err, Workspace(root).writing("ingest"):
                    pass
                assert f"pid {proc.pid}" in str(err.value)
                assert "synthloop run docs --eval-set gold.jsonl" in str(err.value), (name, moment)
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert seen[:4] == ["ingest", "generate", "index", "train"] and seen[-1] == "report"
    assert proc.returncode == 0
    with Workspace(root).writing("ingest") as ws:  # released at the end
        assert ws.locked
