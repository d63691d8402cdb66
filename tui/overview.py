"""The overview screen: the workspace at a glance and the latest scoreboard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static
from textual.worker import get_current_worker

from tui import data as D
from tui.base import ActiveRuns, Loaded, LoadFailed, RunWatch, _View, footer, guarded
from tui.scoreboard import scoreboard_rows


@dataclass
class ReportWritten(Message, bubble=False):
    path: Path


class OverviewScreen(RunWatch, _View, Screen):
    """The workspace at a glance and the latest scoreboard."""

    VIEW = ("overview", D.load_overview)

    def __init__(self) -> None:
        super().__init__()
        self.ov: D.Overview | None = None

    def on_mount(self) -> None:  # _View's on_mount loads the view (Textual calls both)
        self.watch_runs()

    BINDINGS = [Binding("r", "refresh", "Refresh", show=False), Binding("w", "report", "Write report")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="overview"):
            yield Static("loading ...", id="ws-summary", classes="panel")
            yield Static("Scoreboard", classes="section-title")
            yield DataTable(id="scoreboard", cursor_type="row", zebra_stripes=True)
            yield Static("", id="verdict", classes="panel")
        yield footer()

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "overview":
            self.show(msg.value)

    @guarded
    def on_active_runs(self, msg: ActiveRuns) -> None:
        if self.ov is None or self.ov.running == msg.rows:
            return
        ended = bool(self.ov.running) and not msg.rows
        self.ov.running = msg.rows
        self.query_one("#ws-summary", Static).update(_summary(self.ov))
        if ended:  # what the run made: a dataset, a model, a scoreboard
            self.action_refresh()

    def action_report(self) -> None:
        self.notify("writing the report ...")
        self.write_report()

    @work(thread=True, exclusive=True, group="report")
    def write_report(self) -> None:
        worker = get_current_worker()
        try:
            path = D.write_latest_report(self._ws())
        except Exception as e:  # a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed("report", str(e) or type(e).__name__))
            return
        if not worker.is_cancelled:
            self.post_message(ReportWritten(path))

    def on_report_written(self, msg: ReportWritten) -> None:
        self.notify(f"report written: {msg.path}", title="report", markup=False)

    def show(self, ov: D.Overview) -> None:
        self.ov = ov
        self.query_one("#ws-summary", Static).update(_summary(ov))
        table = self.query_one("#scoreboard", DataTable)
        table.clear(columns=True)
        verdict = self.query_one("#verdict", Static)
        if ov.scores is None:
            table.display = False
            verdict.update("No scoreboard yet: run [b]synthloop eval[/] (or [b]synthloop run[/]).")
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
                                       " (paired bootstrap, Holm-corrected):"))
            lines += [Text(f"  {d['a']} - {d['b']}: {d['mean']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]")
                      for d in sig]
        else:
            lines.append(Text("No F1 difference is significant after Holm's correction.", style="dim"))
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
    if ov.running:
        lines.append("[b][yellow]Running[/][/]  " + "; ".join(escape(D.run_line(r)) for r in ov.running))
    return "\n".join(lines)
