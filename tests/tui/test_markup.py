"""Text is text on the dashboard: a question, a document's title or file name, a teacher's
sample holding ``[/i]``, ``[bold]`` or ``[draft]`` shows as it is in every table (a string
cell was read as markup: ``[draft]`` vanished and ``[/i]`` was a MarkupError on screen)."""

from __future__ import annotations

import shutil

import pytest
from textual.widgets import DataTable

from tui.app import SynthloopApp

OUTSIDE = "[/i] [bold] [draft]"
SIZE = (240, 40)  # wide enough that no cell is cut

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def bracket_ws(dash_ws, kit_tui, tmp_path):
    """The dashboard's workspace with outside text in the scored questions and their
    documents, a document's title and file name, and a generated sample."""
    from datasets import Dataset, load_from_disk

    from loop.ingest import ingest
    from loop.workspace import Workspace, save_dataset
    from tui import data as D

    preds_dir = D.load_scores(dash_ws).path / "predictions"  # the latest evaluation's
    with Workspace(dash_ws) as ws:
        preds = load_from_disk(str(preds_dir)).to_list()
        for p in preds:
            p["question"], p["doc"] = f"Q {p['eval_id']} {OUTSIDE}?", f"notes {OUTSIDE}.md"
            p["answers"] = ["7:15"]
        shutil.rmtree(preds_dir)
        save_dataset(Dataset.from_list(preds), preds_dir)
        more = tmp_path / "more"
        more.mkdir()
        (more / "log [bold] [draft].md").write_text(f"# Log {OUTSIDE}\n\nThe log says {OUTSIDE}.\n")
        ingest(ws, [more])
    rows = kit_tui.sample_rows(2)
    rows[0]["messages"][0]["content"] = f"When does {OUTSIDE} leave?"
    kit_tui.put_dataset(dash_ws, rows)
    return dash_ws


def _shown(table: DataTable) -> str:
    """What the table draws, line by line: the rendered cells, not the values given."""
    return "\n".join(table.render_line(y).text for y in range(table.size.height))


async def _drawn(pilot, table: DataTable, *texts: str) -> str:
    """The table's drawing once it holds every text (its rows are laid out on idle, after
    they arrive); the last drawing if it never does."""
    import time

    deadline = time.monotonic() + 30  # a loaded machine lays out late; a pass is not slower
    while True:
        shown = _shown(table)
        if all(t in shown for t in texts) or time.monotonic() > deadline:
            return shown
        await pilot.pause(0.05)


async def _open(app, pilot, key: str, table_id: str) -> DataTable:
    await pilot.press(key)
    table = app.screen.query_one(table_id, DataTable)
    for _ in range(200):  # until the screen's worker has filled it
        await app.workers.wait_for_complete()
        await pilot.pause()
        if table.row_count:
            break
    return table


async def test_every_table_shows_outside_brackets_as_text(bracket_ws):
    app = SynthloopApp(bracket_ws)
    async with app.run_test(size=SIZE) as pilot:
        questions = await _open(app, pilot, "2", "#questions")
        assert questions.row_count == 3
        shown = await _drawn(pilot, questions, f"Q q1 {OUTSIDE}?", f"Q q3 {OUTSIDE}?")
        assert f"Q q1 {OUTSIDE}?" in shown and f"Q q3 {OUTSIDE}?" in shown

        await pilot.press("p")  # the per-document view: the document's name
        by_doc = app.screen.query_one("#by-doc", DataTable)
        assert f"notes {OUTSIDE}.md" in await _drawn(pilot, by_doc, f"notes {OUTSIDE}.md")

        docs = await _open(app, pilot, "5", "#documents")
        shown = await _drawn(pilot, docs, "log [bold] [draft].md", f"Log {OUTSIDE}")
        assert "log [bold] [draft].md" in shown and f"Log {OUTSIDE}" in shown

        samples = await _open(app, pilot, "9", "#samples")
        assert samples.row_count == 2
        assert f"When does {OUTSIDE} leave?" in await _drawn(pilot, samples, f"When does {OUTSIDE} leave?")
        assert app.is_running  # nothing failed on screen
    assert app.return_code in (0, None)
