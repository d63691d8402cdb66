"""Terminal escape sequences in outside text (a document, a teacher's error body, a file
name) reach the terminal only as visible escapes: through `search`, `ask`, the stderr
warnings, error lines and the dashboard. `--json` keeps the text exact."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()
CLEAR = "\x1b[2J"
LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
TITLE = "\x1b]0;pwned title\x07"
C1 = "\x9b31m"  # CSI as one C1 character
HOSTILE = f"The ferry leaves Pier 3 at 7:15 {CLEAR} {LINK} {TITLE} {C1} every morning."


def _raw(text: str) -> bool:
    """Does ``text`` hold a control character a terminal would act on?"""
    return any(ord(c) < 0x20 and c not in "\n\t" or 0x7F <= ord(c) < 0xA0 for c in text)


def test_printable_makes_every_control_character_visible():
    from loop.terminal import printable

    assert printable(HOSTILE) == (
        "The ferry leaves Pier 3 at 7:15 \\x1b[2J \\x1b]8;;http://evil.example/\\x1b\\click"
        "\\x1b]8;;\\x1b\\ \\x1b]0;pwned title\\x07 \\x9b31m every morning.")
    assert printable("a\tb\nc") == "a\tb\nc"  # layout is kept
    assert printable(printable(HOSTILE)) == printable(HOSTILE)
    everything = "".join(map(chr, range(0x00, 0xA0)))
    assert not _raw(printable(everything))


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory):
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    root = tmp_path_factory.mktemp("hostile-term")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text(f"# Ferry {TITLE}\n\n{HOSTILE}\n")
    (docs / "bins.md").write_text("# Bins\n\nGreen bins are emptied every second Tuesday.\n")
    with Workspace(root / "ws") as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
    return root / "ws"


def test_search_prints_a_documents_escape_codes_as_text(hostile_ws, rel):
    r = runner.invoke(app, ["search", "when does the ferry leave", "-w", str(hostile_ws)],
                      env={"COLUMNS": "400"})  # wide: no escape is folded across lines
    assert r.exit_code == 0, r.output
    assert "Pier 3" in r.stdout and not _raw(r.stdout), repr(r.stdout)
    assert "\\x1b[2J" in r.stdout and "\\x1b]0;pwned" in r.stdout  # (rich drops the BEL itself)
    j = runner.invoke(app, ["search", "when does the ferry leave", "-w", str(hostile_ws), "--json"])
    hits = json.loads(j.stdout)["hits"]
    assert any(CLEAR in h["text"] and TITLE in h["text"] for h in hits)  # --json: exact
    rel.record("hostile: escape codes through search", raw_codes=0)


def test_ask_prints_answers_and_sources_as_text(capsys):
    from loop.cli.ask import _print

    _print({"answers": [{"setup": f"rag{CLEAR}", "latency_ms": 3.0, "answer": HOSTILE,
                         "sources": [{"source": f"ferry{TITLE}.md", "text": HOSTILE}]}],
            "notes": [f"a note {LINK}"]})
    out = capsys.readouterr()
    assert "Pier 3" in out.out and not _raw(out.out + out.err), repr(out.out + out.err)
    assert "\\x1b[2J" in out.out and "\\x1b]8;;" in out.err


def test_a_warning_and_an_error_line_print_escape_codes_as_text(tmp_path):
    """A teacher's error body (a per-job warning on stderr) and an error naming a path."""
    from loop import events as ev
    from loop.render import RichSink

    buf = io.StringIO()
    sink = RichSink(Console(file=buf, force_terminal=True, width=200))  # any console
    sink(ev.Warned("generate", message=f"HTTP 500: {HOSTILE}", path=f"chunk{TITLE}"))
    assert "HTTP 500" in buf.getvalue() and "\\x1b[2J" in buf.getvalue()
    assert CLEAR not in buf.getvalue() and TITLE not in buf.getvalue()
    r = runner.invoke(app, ["ingest", str(tmp_path / "a.md"), "-w", str(tmp_path / "ws"),
                            "-c", str(tmp_path / f"evil{CLEAR}{TITLE}.toml")])
    assert r.exit_code == 1 and "config file not found" in r.output
    assert not _raw(r.output) and "\\x1b[2J" in r.output, repr(r.output)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_dashboard_draws_escape_codes_as_text(tmp_path):
    from textual.widgets import RichLog, Static

    from tui.app import SynthloopApp

    dash = SynthloopApp(tmp_path / "ws")
    async with dash.run_test(size=(200, 30)) as pilot:
        static, log = Static(HOSTILE, id="hostile-static"), RichLog(id="hostile-log")
        await dash.screen.mount(static, log)
        log.write(HOSTILE)
        dash.notify(HOSTILE, markup=False)
        await pilot.pause(0.1)
        drawn = ["".join(static.render_line(y).text for y in range(static.size.height)),
                 "".join(log.render_line(y).text for y in range(log.size.height))]
    for text in drawn:
        assert "Pier 3" in text and "\\x1b[2J" in text and not _raw(text), repr(text)
