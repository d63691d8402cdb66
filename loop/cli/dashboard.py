"""``synthloop dashboard``: the Textual app over a workspace (imports ``tui`` lazily)."""

from __future__ import annotations

from loop.cli import app
from loop.cli.common import DEFAULT_WS, WorkspaceOpt, say, verb
from loop.errors import InputError


@app.command()
def dashboard(workspace: WorkspaceOpt = DEFAULT_WS) -> None:
    """Open the terminal dashboard: the workspace, the scoreboard side by side, the runs."""
    with verb(False):
        if not workspace.expanduser().is_dir():
            raise InputError(f"no workspace at {workspace}")
        try:
            from tui.app import SynthloopApp
        except ImportError as e:
            say(("the dashboard needs textual:", "red"), f" {e} (pip install textual)")
            raise SystemExit(1) from None
        SynthloopApp(workspace).run()
