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
