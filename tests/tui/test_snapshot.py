"""pytest-textual-snapshot: the overview's layout (update with --snapshot-update)."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from tui.app import SynthloopApp


async def until_loaded(pilot, table_id: str, rows: int) -> None:
    """Wait for the data, not for time: on a busy machine the loading worker (or the message
    it posts) can land after any fixed pause, and the snapshot caught "loading ...". Polls
    until the screen's table holds its rows."""
    table = pilot.app.screen.query_one(table_id, DataTable)
    for _ in range(1200):  # a minute at most
        if table.row_count >= rows:
            break
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
    assert table.row_count >= rows, f"{table_id} has {table.row_count} rows, not {rows}"
    await pilot.app.workers.wait_for_complete()
    # A DataTable sizes its auto-width columns on its next Idle event; on a loaded machine the
    # screenshot came first and the cached rows below the cursor kept the old, narrow column
    # (CI, stop 33). Textual has no public "laid out" signal, so this reads its own flag.
    for _ in range(600):
        await pilot.pause(0.05)
        if not table._require_update_dimensions:
            break
    assert not table._require_update_dimensions, f"{table_id} never sized its columns"
    await pilot.pause()


def test_overview_snapshot(dash_ws, snap_compare):
    app = SynthloopApp(dash_ws)

    async def settle(pilot):
        await until_loaded(pilot, "#scoreboard", rows=2)
        assert "loading" not in str(pilot.app.screen.query_one("#ws-summary", Static).render())
        pilot.app.sub_title = "demo workspace"  # not the temporary path
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


def test_scoreboard_drill_down_snapshot(dash_ws, snap_compare):
    app = SynthloopApp(dash_ws)

    async def open_first_question(pilot):
        await pilot.press("2")
        await until_loaded(pilot, "#questions", rows=3)
        await pilot.press("enter")
        pilot.app.sub_title = "demo workspace"
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_first_question)
