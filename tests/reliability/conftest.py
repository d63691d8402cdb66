"""Helpers of the reliability suite: the real CLI in subprocesses, kill -9 at a chosen moment,
the ledger's integrity check, trial counts and the figures ``bench/reliability.py`` prints.

Trial counts are small by default (the suite stays fast) and every collected test runs;
``SYNTHLOOP_TRIALS=N`` raises each stage's kill trials to N, and
``SYNTHLOOP_RELIABILITY_LOG=file.jsonl`` appends one line per trial for the table.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "synthloop"
FAKE_KEY = "sk-synthloop-FAKE-KEY-0123456789abcdef"

DOCS = {
    "ferry.md": "# Ferry\n\nThe island ferry leaves Pier 3 at 7:15 every morning. The harbour "
                "master is Ilse Brannock. Bicycles travel free on the lower deck.\n",
    "market.md": "# Market\n\nThe fish market on the quay opens at 9:30 on weekdays. A stall "
                 "licence costs 40 crowns. Stallholders must clear the quay by noon.\n",
    "lighthouse.md": "# Lighthouse\n\nThe lighthouse at Kestrel Point was built in 1842. Tours "
                     "start at 11:45 in summer. The lamp was electrified in 1931.\n",
    "library.md": "# Library\n\nThe Saltgate library lends up to 12 books per card. Late fees "
                  "rise to 3 crowns a week. The reading room closes at eight.\n",
    "parks.md": "# Parks\n\nDogs must be kept on a lead in the rose garden. The park gates close "
                "at dusk in winter and at ten in summer. Picnics are welcome on the lawn.\n",
    "bins.md": "# Bins\n\nGreen bins are emptied every second Tuesday. Glass goes in the blue "
               "box. Garden waste needs a permit sticker from the council office.\n",
}


def record(fault: str, **figures) -> None:
    """One line per trial for ``bench/reliability.py`` (a no-op unless it asked for them)."""
    log = os.environ.get("SYNTHLOOP_RELIABILITY_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"fault": fault, **figures}, default=str) + "\n")


def cli(*args, env: dict | None = None, timeout: float = 200, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, **kw)


def kill_after(args: list, seconds: float, env: dict | None = None, *, once=None) -> bool:
    """Start the CLI, SIGKILL it ``seconds`` later (counted from when ``once()`` first holds,
    if given); True if it was still running then."""
    proc = subprocess.Popen([str(SCRIPT), *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    while once is not None and not once() and proc.poll() is None:
        time.sleep(0.05)
    try:
        proc.wait(timeout=seconds)
        return False  # finished first: the trial still checks the re-run and the ledger
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


def integrity(root: Path) -> str:
    """``PRAGMA integrity_check`` of a workspace's ledger, opened as a reader would."""
    conn = sqlite3.connect(root / "synthloop.db", timeout=30)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def varied_docs(n: int) -> dict[str, str]:
    """``n`` documents of four distinct sentences each (none shared: the index embeds each
    distinct sentence once, so copies of DOCS would not make it any bigger)."""
    places = ["Pier 3", "the quay", "Kestrel Point", "Saltgate", "the rose garden", "Old Mill"]
    out = {}
    for i in range(n):
        p = places[i % len(places)]
        out[f"note-{i:03d}.md"] = (
            f"# Notice {i}\n\nBoat {i} leaves {p} at {i % 12 + 1}:{i % 60:02d} on day {i}. "
            f"The fee for berth {i} is {i + 3} crowns a week. Warden number {i * 7} checks "
            f"permit {i * 13} every {i % 5 + 2} days. Visitors to {p} park in lot {i}.\n")
    return out


def write_docs(folder: Path, docs: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (docs or DOCS).items():
        (folder / name).write_text(text)
    return folder


def _load(path: Path, name: str):  # a module
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The fixtures' building blocks live beside the tests that introduced them.
train_kit = _load(REPO / "tests" / "train" / "conftest.py", "_rel_train_kit")


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    return train_kit.build_tiny_student(tmp_path_factory.mktemp("rel-student") / "tiny")


@pytest.fixture(scope="session")
def rel():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(cli=cli, kill_after=kill_after, integrity=integrity, record=record,
                           write_docs=write_docs, varied_docs=varied_docs, DOCS=DOCS, FAKE_KEY=FAKE_KEY, SCRIPT=SCRIPT,
                           train_kit=train_kit)


@pytest.fixture
def docs(tmp_path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture
def elapsed():
    """A stopwatch: ``elapsed()`` seconds since the test began."""
    t = time.perf_counter()
    return lambda: time.perf_counter() - t
