"""Pilot tests of the dashboard's screens on a small hand-built workspace."""

from __future__ import annotations

import pytest
from textual.widgets import Checkbox, DataTable, Input, Static

from tui.app import (
    CorpusScreen,
    HelpScreen,
    Loaded,
    LoadFailed,
    OverviewScreen,
    RunsScreen,
    ScoreboardScreen,
    SearchDone,
    SearchScreen,
    SynthloopApp,
)

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _settle(app, pilot):
    await app.workers.wait_for_complete()
    await pilot.pause()


def _text(app, selector) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_overview_shows_workspace_and_scoreboard(dash_ws):
    messages = []
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await _settle(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        summary = _text(app, "#ws-summary")
        assert "2 documents" in summary and "chunks" in summary
        assert "none: synthloop generate" in summary  # no dataset yet
        table = app.screen.query_one("#scoreboard", DataTable)
        assert table.row_count == 2
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:4] == ["setup", "beats (F1)", "em", "f1"]
        rag = [str(c) for c in table.get_row_at(1)]
        assert rag[0] == "rag" and rag[1] == "base"
        assert rag[3].startswith("0.80 [0.60, 0.95]") and "▲" in rag[3]
        verdict = _text(app, "#verdict")
        assert "Recommendation: rag" in verdict and "base - rag: -0.70" in verdict
    # The worker's flow: one Loaded message for the overview, no failure.
    loaded = [m for m in messages if isinstance(m, Loaded)]
    assert [m.what for m in loaded] == ["overview"]
    assert not [m for m in messages if isinstance(m, LoadFailed)]


async def test_scoreboard_drill_down_and_disagreement_filter(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await _settle(app, pilot)
        assert isinstance(app.screen, ScoreboardScreen)
        questions = app.screen.query_one("#questions", DataTable)
        assert questions.row_count == 3
        questions.focus()
        await pilot.press("enter")  # the first row: q1
        await pilot.pause()
        drill = _text(app, "#drill")
        assert "When does the ferry leave?" in drill
        assert "gold: 7:15" in drill
        assert "base F1 0.00: noon" in drill and "rag F1 1.00: 7:15" in drill
        assert "ferry.md" in drill and "Pier 3 at 7:15" in drill  # rag's retrieved chunk
        await pilot.press("d")
        await pilot.pause()
        assert app.screen.query_one("#disagree", Checkbox).value
        keys = [k.value for k in questions.rows]
        assert keys == ["q1", "q3"]  # q2: both setups right
        await pilot.press("down", "enter")
        await pilot.pause()
        assert "Which pier?" in _text(app, "#drill")


async def test_runs_screen_lists_history(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await _settle(app, pilot)
        assert isinstance(app.screen, RunsScreen)
        runs = app.screen.query_one("#runs", DataTable)
        stages = [str(runs.get_row_at(i)[1]) for i in range(runs.row_count)]
        assert "ingest" in stages and "eval" in stages and stages[0] == "train"
        runs.focus()
        await pilot.pause()
        detail = _text(app, "#run-detail")
        assert "out of memory [/] [b" in detail  # workspace text is never read as markup
        assert "brackets [/x] are text, not markup [/]" in detail


async def test_help_and_quit(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_missing_workspace_is_a_notification_not_a_traceback(tmp_path):
    app = SynthloopApp(tmp_path / "nowhere")
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        notes = list(app._notifications)
        assert notes and notes[0].severity == "error" and "no workspace" in notes[0].message


async def test_search_shows_every_method_side_by_side(dash_ws):
    messages = []
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.press("4")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        app.screen.query_one("#query", Input).focus()
        await pilot.press(*"ferry q", "enter")  # "q" is typed, not quit
        await _settle(app, pilot)
        assert app.screen.query_one("#query", Input).value == "ferry q"
        for m in ("bm25", "dense", "hybrid"):
            text = _text(app, f"#hits-{m}")
            assert text.startswith(m) and "ferry.md" in text
        await pilot.press("escape")  # leaves the box: the app's keys work again
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
    done = [m for m in messages if isinstance(m, SearchDone)]
    assert len(done) == 1 and set(done[0].hits) == {"bm25", "dense", "hybrid"}


async def test_corpus_lists_documents_and_their_chunks(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await _settle(app, pilot)
        assert isinstance(app.screen, CorpusScreen)
        docs = app.screen.query_one("#documents", DataTable)
        sources = [str(docs.get_row_at(i)[0]) for i in range(docs.row_count)]
        assert len(sources) == 2 and any("ferry.md" in s for s in sources)
        assert "No file was skipped" in _text(app, "#skipped")
        await pilot.press("slash", *"fees")
        await _settle(app, pilot)
        assert docs.row_count == 1 and "fees.md" in str(docs.get_row_at(0)[0])
        await pilot.press("enter")  # back to the table
        await _settle(app, pilot)
        assert app.focused is docs
        assert "12 crowns" in _text(app, "#chunks")


async def test_corpus_adds_documents_in_a_worker(dash_ws, tmp_path):
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "library.md").write_text("# Library\n\nThe library lends twelve books at a time.\n")
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        await _settle(app, pilot)
        await pilot.press("a")
        box = app.screen.query_one("#add-path")
        assert box.display and app.focused is box
        await pilot.press(*str(extra), "enter")
        await _settle(app, pilot)  # the ingest worker, then the refresh it starts
        await _settle(app, pilot)
        docs = app.screen.query_one("#documents", DataTable)
        sources = [str(docs.get_row_at(i)[0]) for i in range(docs.row_count)]
        assert len(sources) == 3 and any("library.md" in s for s in sources)  # the rest kept
        assert not box.display
        added = [str(n.message) for n in app._notifications if n.title == "documents added"]
        assert added and "3 documents" in added[-1]
        await pilot.press("a", *str(tmp_path / "nowhere"), "enter")
        await _settle(app, pilot)
        notes = [str(n.message) for n in app._notifications]
        assert any("no such file or folder" in m and "nowhere" in m for m in notes)
        assert docs.row_count == 3


async def test_write_report_runs_in_a_worker_and_notifies(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        await pilot.press("w")
        await _settle(app, pilot)
        notes = [n.message for n in app._notifications]
        assert any(n.startswith("report written:") for n in notes), notes
    assert (dash_ws / "evals" / "abc123" / "report" / "report.md").exists()


async def test_a_failing_handler_is_a_notification_not_a_traceback(dash_ws):
    app = SynthloopApp(dash_ws)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        app.screen.post_message(Loaded("overview", None))  # show(None) raises
        await pilot.pause()
        notes = [n for n in app._notifications if n.severity == "error"]
        assert notes and "AttributeError" in notes[0].message
        assert app.is_running
