"""The ``synthloop dashboard``: a screen per workflow over one workspace (the registry in
``tui.screens``).

Data is read by ``tui.data`` in thread workers (``@work(thread=True, exclusive=True)``) that
post dataclass messages back; a failure becomes an error notification, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui.base import (  # noqa: F401
    JobDone,
    Loaded,
    LoadFailed,
    StageEvent,
    _Loading,
    _View,
    guarded,
    printable_terminal,
)
from tui.browse import CorpusScreen, SearchDone, SearchScreen  # noqa: F401 - re-exported
from tui.help import HelpScreen
from tui.overview import OverviewScreen, ReportWritten  # noqa: F401 - re-exported
from tui.runs import CompareScreen, RunsScreen  # noqa: F401 - re-exported
from tui.scoreboard import ScoreboardScreen, drill_down, scoreboard_rows  # noqa: F401
from tui.screens import SCREENS, ScreenSpec


def open_screen(spec: ScreenSpec) -> Screen:
    """A mode's screen, its name in the header (the footer shows only its key)."""
    screen = spec.screen()
    screen.title = f"synthloop · {spec.title}"
    return screen


# -- the app ---------------------------------------------------------------------------------

class SynthloopApp(App[None]):
    """Fine-tune, RAG, or both: the workspace, its scoreboard and its history."""

    CSS_PATH = "app.tcss"
    TITLE = "synthloop"
    ENABLE_COMMAND_PALETTE = True
    MODES = {s.mode: functools.partial(open_screen, s) for s in SCREENS}
    DEFAULT_MODE = SCREENS[0].mode
    # The footer shows the screen's keys, then these: help and quit, and 1-9 bare
    # (``tui.base.footer``), so every key fits 80 columns. `r` (reload) is in the help only.
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        *(Binding(s.key, f"switch_mode('{s.mode}')", s.footer) for s in SCREENS),
    ]

    def __init__(self, ws_path: str | Path) -> None:
        super().__init__()
        printable_terminal(self)  # documents, answers and server bodies: text, never codes
        self.ws_path = Path(ws_path).expanduser()
        self.sub_title = str(self.ws_path)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette (ctrl+p) also opens every screen by name."""
        yield from super().get_system_commands(screen)
        for s in SCREENS:
            yield SystemCommand(s.title, s.what, functools.partial(self.switch_mode, s.mode))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
