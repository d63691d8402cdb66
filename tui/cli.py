"""The dashboard's own entry: ``synthloop-dashboard``, ``python -m tui``, and the
``synthloop dashboard`` verb, which ``loop.cli`` finds through the ``synthloop.verbs``
entry-point group (so ``loop`` never imports ``tui``). Textual is imported only when the
dashboard opens: ``synthloop --help`` stays fast and works without it."""

from __future__ import annotations

import typer

from loop.cli.common import DEFAULT_WS, WorkspaceOpt, say, verb
from loop.cli.helptext import MAX_WIDTH, HelpCommand
from loop.errors import InputError


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


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` verb to the ``synthloop`` command."""
    app.command("dashboard")(dashboard)


def main() -> None:
    """Entry point of ``synthloop-dashboard``: its ``--help`` laid out as the verb's."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                      rich_markup_mode=None, context_settings={"max_content_width": MAX_WIDTH})
    app.command(cls=HelpCommand)(dashboard)
    app()
