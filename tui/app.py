"""The ``synthloop dashboard``: a screen per workflow over one workspace.

Data is read by ``tui.data`` in thread workers (``@work(thread=True, exclusive=True)``) that
post dataclass messages back; a failure becomes an error notification, never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from tui import data as D
from tui.base import JobDone, Loaded, LoadFailed, StageEvent, _Loading, _View, guarded  # noqa: F401
from tui.browse import CorpusScreen, SearchDone, SearchScreen  # noqa: F401 - re-exported
from tui.generate import GenerateScreen
from tui.help import HelpScreen
from tui.index import IndexScreen
from tui.playground import PlaygroundScreen
from tui.runs import CompareScreen, RunsScreen  # noqa: F401 - re-exported
from tui.samples import SamplesScreen
from tui.scoreboard import ScoreboardScreen, drill_down, scoreboard_rows  # noqa: F401
from tui.train import TrainScreen


@dataclass
class ReportWritten(Message, bubble=False):
    path: Path


class OverviewScreen(_View, Screen):
    """The workspace at a glance and the latest scoreboard."""

    VIEW = ("overview", D.load_overview)

    BINDINGS = [Binding("r", "refresh", "Refresh"), Binding("w", "report", "Write report")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="overview"):
            yield Static("loading ...", id="ws-summary", classes="panel")
            yield Static("Scoreboard", classes="section-title")
            yield DataTable(id="scoreboard", cursor_type="row", zebra_stripes=True)
            yield Static("", id="verdict", classes="panel")
        yield Footer()

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "overview":
            self.show(msg.value)

    def action_report(self) -> None:
        self.notify("writing the report ...")
        self.write_report()

    @work(thread=True, exclusive=True, group="report")
    def write_report(self) -> None:
        worker = get_current_worker()
        try:
            path = D.write_latest_report(self._ws())
        except Exception as e:  # noqa: BLE001 - a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed("report", str(e) or type(e).__name__))
            return
        if not worker.is_cancelled:
            self.post_message(ReportWritten(path))

    def on_report_written(self, msg: ReportWritten) -> None:
        self.notify(f"report written: {msg.path}", title="report", markup=False)

    def show(self, ov: D.Overview) -> None:
        self.query_one("#ws-summary", Static).update(_summary(ov))
        table = self.query_one("#scoreboard", DataTable)
        table.clear(columns=True)
        verdict = self.query_one("#verdict", Static)
        if ov.scores is None:
            table.display = False
            verdict.update("No scoreboard yet: run [b]synthloop score[/] (or [b]synthloop run[/]).")
            return
        table.display = True
        cols, rows = scoreboard_rows(ov.scores)
        table.add_columns(*cols)
        table.add_rows(rows)
        sig = ov.scores.significant("f1")
        lines = [Text.assemble(("Verdict", "bold"), f" ({ov.scores.questions} questions, {ov.scores.origin})"),
                 Text(ov.scores.verdict)]
        if sig:
            lines.append(Text.assemble(("Significant F1 differences", "bold"),
                                       " (paired 95% interval excludes 0):"))
            lines += [Text(f"  {d['a']} - {d['b']}: {d['mean']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]")
                      for d in sig]
        else:
            lines.append(Text("No F1 difference is significant at 95%.", style="dim"))
        lines += [Text(f"note: {n}", style="dim") for n in ov.scores.notes]
        verdict.update(Text("\n").join(lines))


def _summary(ov: D.Overview) -> str:
    c, d, i = ov.corpus, ov.dataset, ov.index
    lines = [
        "[b]Corpus[/]   " + (f"{c['n_documents']} documents, {c['n_chunks']} chunks  [dim]{c['id'][:12]}[/]"
                             if c else "[dim]none: synthloop ingest DOCS[/]"),
        "[b]Dataset[/]  " + (f"{d['n_samples']} samples, {d['n_rejected']} rejected, teacher "
                             f"{escape(d['teacher'])}  [dim]{d['id'][:12]}[/]"
                             if d else "[dim]none: synthloop generate[/]"),
        "[b]Index[/]    " + (f"{i['method'] or '?'} (k={i['k']}), embedder {escape(i['embedder'])}  "
                             f"[dim]{i['id'][:12]}[/]" if i else "[dim]none: synthloop index[/]"),
    ]
    if ov.models:
        lines.append("[b]Models[/]   " + "; ".join(
            f"{m['kind']} ({m['method']}, {m['steps']} steps"
            + (f", loss {m['loss_last']:.3f}" if m["loss_last"] is not None else "") + ")"
            for m in ov.models[:4]))
    else:
        lines.append("[b]Models[/]   [dim]none: synthloop train[/]")
    lines.append(f"[b]Runs[/]     {ov.runs} in the ledger")
    return "\n".join(lines)

# -- the app ---------------------------------------------------------------------------------

PALETTE = {
    "overview": ("Overview", "The workspace at a glance and the latest scoreboard"),
    "scoreboard": ("Scoreboard", "Every question, its drill-down, the per-document view"),
    "runs": ("Runs", "The ledger's history; compare two runs"),
    "index": ("Index", "Build the index, recall@k, search"),
    "corpus": ("Corpus", "Documents, chunks and skipped files"),
    "generate": ("Generate", "Run the teacher over the corpus"),
    "train": ("Train", "Fine-tune the student, watch the loss"),
    "playground": ("Playground", "Ask every setup one question"),
    "samples": ("Samples", "Accept, edit or reject generated samples"),
}


class SynthloopApp(App[None]):
    """Fine-tune, RAG, or both: the workspace, its scoreboard and its history."""

    CSS_PATH = "app.tcss"
    TITLE = "synthloop"
    ENABLE_COMMAND_PALETTE = True
    MODES = {"overview": OverviewScreen, "scoreboard": ScoreboardScreen, "runs": RunsScreen,
             "index": IndexScreen, "corpus": CorpusScreen, "generate": GenerateScreen,
             "train": TrainScreen, "playground": PlaygroundScreen, "samples": SamplesScreen}
    DEFAULT_MODE = "overview"
    # The footer shows the screen's keys, then these in order: help and quit first, so they
    # stay visible at 80 columns; 1-9 switch screens (the help and the palette list them all).
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("1", "switch_mode('overview')", "Overview"),
        Binding("2", "switch_mode('scoreboard')", "Scores"),
        Binding("3", "switch_mode('runs')", "Runs"),
        Binding("4", "switch_mode('index')", "Index"),
        Binding("5", "switch_mode('corpus')", "Corpus"),
        Binding("6", "switch_mode('generate')", "Generate"),
        Binding("7", "switch_mode('train')", "Train"),
        Binding("8", "switch_mode('playground')", "Ask"),
        Binding("9", "switch_mode('samples')", "Samples"),
    ]

    def __init__(self, ws_path: str | Path) -> None:
        super().__init__()
        self.ws_path = Path(ws_path).expanduser()
        self.sub_title = str(self.ws_path)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette (ctrl+p) also opens every screen by name."""
        yield from super().get_system_commands(screen)
        for mode, (title, what) in PALETTE.items():
            yield SystemCommand(title, what, functools.partial(self.switch_mode, mode))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
