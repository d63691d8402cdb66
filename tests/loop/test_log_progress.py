"""Progress where logs go (issue 27): stderr sent to a file gets plain timed lines with
step n/N, rate and ETA, never cut, wrapped or redrawn; third-party bars are silenced."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from loop import events as ev
from loop.render import LogSink, RichSink, sink_for


def test_log_lines_at_a_steady_interval_with_rate_and_eta():
    now = [0.0]
    out = io.StringIO()
    sink = LogSink(out, every=30, clock=lambda: now[0])
    sink(ev.Started("train", total=400, unit="steps", message="smollm2 lora"))
    for step in range(1, 401):
        now[0] = step * 1.5  # 1.5 s a step: 600 s in all, a line every 30 s
        sink(ev.Progress("train", done=step, total=400, info={"loss": 1.25, "tok/s": 210}))
    sink(ev.Warned("train", message="a long message " + "x" * 300 + "\x1b[2J end"))
    sink(ev.Finished("train"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "train: started smollm2 lora (400 steps)"
    steps = [ln for ln in lines if ln.startswith("train: ") and "/400 steps" in ln]
    assert 18 <= len(steps) <= 21  # one per 30 s, not one per step
    assert steps[0].startswith("train: 20/400 steps, 0.667 steps/s, ETA 9m30s, elapsed 30s")
    assert steps[0].endswith("loss 1.25  tok/s 210")
    warn = next(ln for ln in lines if ln.startswith("warning"))
    assert "x" * 300 in warn and warn.endswith(" end") and "\x1b" not in warn  # whole, escaped
    assert lines[-1] == "train: done in 10m00s"
    assert "\r" not in out.getvalue() and "…" not in out.getvalue()


def test_a_file_gets_the_log_sink_and_a_terminal_the_bars(monkeypatch):
    from rich.console import Console

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert isinstance(sink_for(Console(file=io.StringIO())), LogSink)
    assert os.environ["TQDM_DISABLE"] == "1"  # the libraries' own bars are off
    assert isinstance(sink_for(Console(file=io.StringIO(), force_terminal=True)), RichSink)


def test_ingest_to_a_log_file_prints_plain_lines(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe ferry leaves at 7:15 from Pier 3.\n")
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        r = subprocess.run([sys.executable, "-m", "loop", "ingest", str(docs), "-w",
                            str(tmp_path / "ws")], stderr=err, stdout=subprocess.PIPE,
                           timeout=120, env={**os.environ, "SYNTHLOOP_LOG_EVERY": "0"})
    assert r.returncode == 0
    text = log.read_text()
    assert "ingest: started 1 files" in text and "ingest: done in" in text
    assert "━" not in text and "\r" not in text


def test_index_to_a_log_file_has_no_library_bars(tmp_path):
    """Loading the embedder prints transformers' "Loading weights" bar unless it is told
    before (or, once imported, directly): a log file gets our lines only."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe ferry leaves at 7:15 from Pier 3.\n")
    ws = str(tmp_path / "ws")
    env = {**os.environ, "SYNTHLOOP_LOG_EVERY": "0", "HF_HUB_OFFLINE": "1"}
    env.pop("TQDM_DISABLE", None)
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    subprocess.run([sys.executable, "-m", "loop", "ingest", str(docs), "-w", ws],
                   capture_output=True, timeout=120, env=env, check=True)
    r = subprocess.run([sys.executable, "-m", "loop", "index", "-w", ws], capture_output=True,
                       text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "index: started" in r.stderr
    assert "Loading weights" not in r.stderr and "it/s]" not in r.stderr, r.stderr[-2000:]
