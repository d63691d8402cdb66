"""The help screen (``?``): every key, one table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP_HEAD = """\
# synthloop dashboard

| key | does |
|-----|------|
"""
HELP_TAIL = """\
| `r` | reload the screen from the workspace |
| `ctrl+p` | command palette |
| `?` | this help |
| `q` | quit |

A `▲` marks an F1/EM score that beats another setup measurably: a paired bootstrap test
of the difference on the same questions, its p-value Holm-corrected across every pair of
setups on that metric (family-wise error 5%); the second column names the setups it beats.
The intervals shown are the uncorrected 95% ones, so one can exclude 0 without a `▲`.

In a text box, `escape` gives the keys back to the app (`enter` submits it).
A cancelled generation keeps the rows of the jobs it finished as a partial dataset, and
its teacher calls stay cached: starting it again continues where it stopped. A stopped
training keeps its last checkpoint; training again with the same settings resumes from it.

Press `escape` to close.
"""


def help_text() -> str:
    from tui.screens import help_rows

    return HELP_HEAD + "\n".join(help_rows()) + "\n" + HELP_TAIL


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(help_text())

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
