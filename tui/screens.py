"""The screen registry: every dashboard screen, its key, footer label, palette entry and
help line. The app builds its modes, key bindings, command palette and help table from this
list, so a new screen is its own module and one row here."""

from __future__ import annotations

from dataclasses import dataclass

from textual.screen import Screen

from tui.browse import CorpusScreen
from tui.generate import GenerateScreen
from tui.index import IndexScreen
from tui.overview import OverviewScreen
from tui.playground import PlaygroundScreen
from tui.runs import RunsScreen
from tui.samples import SamplesScreen
from tui.scoreboard import ScoreboardScreen
from tui.train import TrainScreen


@dataclass(frozen=True)
class ScreenSpec:
    mode: str
    screen: type[Screen]
    key: str  # the key that opens it
    footer: str  # its short name: the tooltip of its key in the footer
    title: str  # its name in the command palette
    what: str  # one line: the palette's description and the help table's
    keys: str = ""  # its own keys, for the help table


SCREENS: list[ScreenSpec] = [
    ScreenSpec("overview", OverviewScreen, "1", "Overview", "Overview",
               "The workspace at a glance and the latest scoreboard",
               "`w` writes the latest evaluation's report: markdown and figures"),
    ScreenSpec("scoreboard", ScoreboardScreen, "2", "Scores", "Scoreboard",
               "Every question, its drill-down, the per-document view",
               "`d` only questions where setups disagree; `p` scores per source document"),
    ScreenSpec("runs", RunsScreen, "3", "Runs", "Runs", "The ledger's history; compare two runs",
               "`m` marks a run, `c` compares the two marked"),
    ScreenSpec("index", IndexScreen, "4", "Index", "Index",
               "Build or update the index, recall@k, one query's hits per method side by side",
               "`b` builds, `k` recall@k"),
    ScreenSpec("corpus", CorpusScreen, "5", "Corpus", "Corpus",
               "Documents, their chunks and skipped files",
               "`/` filters, `a` adds a file or folder"),
    ScreenSpec("generate", GenerateScreen, "6", "Generate", "Generate",
               "Run the teacher over the corpus: live progress; cancel keeps the rows done",
               "`s` / `c` start / cancel"),
    ScreenSpec("train", TrainScreen, "7", "Train", "Train",
               "Fine-tune the student: live loss and validation loss; stop keeps a checkpoint",
               "`s` / `c` start / stop"),
    ScreenSpec("playground", PlaygroundScreen, "8", "Ask", "Playground",
               "Ask every setup one question: answers and sources side by side"),
    ScreenSpec("samples", SamplesScreen, "9", "Samples", "Samples",
               "Accept, edit or reject generated samples",
               "`a` `e` `x` accept / edit / reject; `ctrl+s` applies the verdicts"),
]


def _add_screen(name: str, spec: ScreenSpec) -> None:
    from loop.plugins import PluginError

    if spec.mode != name:
        raise PluginError(f"screen entry point {name!r} names a screen called {spec.mode!r}")
    if any(s.key == spec.key for s in SCREENS):
        raise PluginError(f"screen {name!r}: key {spec.key!r} already opens another screen")
    SCREENS.append(spec)


def _load_screens() -> None:
    """Screens from installed plugins (group synthloop.screens) join before the app's keys
    and modes are built from this list."""
    from loop import plugins

    plugins.register_kind(plugins.Kind("screen", "synthloop.screens",
                                       lambda: [s.mode for s in SCREENS], _add_screen))
    plugins.load_group("screen")


_load_screens()


def help_rows() -> list[str]:
    """The help table's rows of the screens (markdown)."""
    return [f"| `{s.key}` | {s.title}: {s.what}" + (f" ({s.keys})" if s.keys else "") + " |"
            for s in SCREENS]
