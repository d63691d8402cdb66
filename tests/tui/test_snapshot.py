"""pytest-textual-snapshot: the overview's layout (update with --snapshot-update)."""

from __future__ import annotations

from tui.app import SynthloopApp


def test_overview_snapshot(dash_ws, snap_compare):
    app = SynthloopApp(dash_ws)

    async def settle(pilot):
        await pilot.app.workers.wait_for_complete()
        pilot.app.sub_title = "demo workspace"  # not the temporary path
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


def test_scoreboard_drill_down_snapshot(dash_ws, snap_compare):
    app = SynthloopApp(dash_ws)

    async def open_first_question(pilot):
        await pilot.press("2")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        pilot.app.sub_title = "demo workspace"
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=open_first_question)
