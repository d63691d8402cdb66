"""The help screen (``?``): every key, one table."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# synthloop dashboard

| key | does |
|-----|------|
| `1` | Overview: the workspace and the latest scoreboard |
| `2` | Scoreboard: every question, drill-down on select |
| `3` | Runs: the ledger's history; compare two runs |
| `4` | Index: build or update it, recall@k, one query's bm25 / dense / hybrid hits side by side |
| `5` | Corpus: documents, their chunks, skipped files (`/` filters, `a` adds a file or folder) |
| `6` | Generate: teacher, tasks and limits; live progress; cancel keeps the rows done |
| `7` | Train: method and settings; live loss and validation loss; stop keeps a checkpoint |
| `8` | Playground: one question, every setup's answer and sources side by side |
| `9` | Samples: accept, edit or reject generated samples |
| `d` | (Scoreboard) only questions where setups disagree |
| `p` | (Scoreboard) scores per source document |
| `w` | (Overview) write the latest evaluation's report (markdown and figures) |
| `s` / `c` | (Generate, Train, Index) start / cancel or stop |
| `a` `e` `x` | (Samples) accept / edit / reject the highlighted sample; `ctrl+s` applies the verdicts |
| `m` / `c` | (Runs) mark a run / compare the two marked |
| `r` | reload the screen from the workspace |
| `ctrl+p` | command palette |
| `?` | this help |
| `q` | quit |

A `▲` marks an F1/EM score that beats another setup measurably (paired 95% interval
excludes 0); the second column names the setups it beats.

In a text box, `escape` gives the keys back to the app (`enter` submits it).
A cancelled generation keeps the rows of the jobs it finished as a partial dataset, and
its teacher calls stay cached: starting it again continues where it stopped. A stopped
training keeps its last checkpoint; training again with the same settings resumes from it.

Press `escape` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
