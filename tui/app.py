"""The ``synthloop dashboard``: a screen per workflow over one workspace.

Data is read by ``tui.data`` in thread workers (``@work(thread=True, exclusive=True)``) that
post dataclass messages back; a failure becomes an error notification, never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Checkbox, DataTable, Footer, Header, Markdown, Static
from textual.worker import get_current_worker

from tui import data as D
from tui.base import Loaded, LoadFailed, _Loading, guarded
from tui.browse import CorpusScreen, SearchDone, SearchScreen  # noqa: F401 - re-exported


def scoreboard_rows(scores: D.Scores) -> tuple[list[str], list[list[Text | str]]]:
    """Columns and rows of the side-by-side table: the setups each one beats measurably on
    F1 (second, so it shows on a narrow terminal), then a column per metric with its interval."""
    metrics = scores.metric_names
    cols = ["setup", "beats (F1)", *metrics]
    rows = []
    for s in scores.setup_names:
        beaten = scores.beats(s, "f1")
        cells: list[Text | str] = [
            Text(s, style="bold"),
            Text(", ".join(beaten) if beaten else "-", style="green" if beaten else "dim")]
        for m in metrics:
            cell = D.fmt_interval(scores.setups[s].get(m))
            cells.append(Text(cell + (" ▲" if m in ("f1", "em") and scores.beats(s, m) else ""),
                              style="green" if scores.beats(s, m) else ""))
        rows.append(cells)
    return cols, rows


@dataclass
class ReportWritten(Message, bubble=False):
    path: Path


class OverviewScreen(_Loading, Screen):
    """The workspace at a glance and the latest scoreboard."""

    BINDINGS = [Binding("r", "refresh", "Refresh"), Binding("w", "report", "Write report")]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="overview"):
            yield Static("loading ...", id="ws-summary", classes="panel")
            yield Static("Scoreboard", classes="section-title")
            yield DataTable(id="scoreboard", cursor_type="row", zebra_stripes=True)
            yield Static("", id="verdict", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load("overview", D.load_overview, self._ws())

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
        self.notify(f"report written: {msg.path}", title="report")

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


# -- scoreboard ------------------------------------------------------------------------------


class ScoreboardScreen(_Loading, Screen):
    """Every question; select one to see the gold answer and each setup's answer and chunks."""

    BINDINGS = [
        Binding("d", "toggle_disagree", "Disagreements"),
        Binding("r", "refresh", "Refresh"),
    ]
    AUTO_FOCUS = "#questions"

    def __init__(self) -> None:
        super().__init__()
        self.scores: D.Scores | None = None
        self.questions: list[D.QuestionRow] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="scoreboard-screen"):
            yield DataTable(id="totals", cursor_type="none", zebra_stripes=True)
            yield Checkbox("only questions where setups disagree", id="disagree")
            with Horizontal(id="split"):
                yield DataTable(id="questions", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="drill-pane"):
                    yield Static("Select a question to see every setup's answer.", id="drill")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load("scoreboard", _load_board, self._ws())

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what != "scoreboard":
            return
        self.scores, self.questions = msg.value
        totals = self.query_one("#totals", DataTable)
        totals.clear(columns=True)
        if self.scores is None:
            self.query_one("#drill", Static).update("No scoreboard yet: run [b]synthloop score[/].")
            self.fill()
            return
        cols, rows = scoreboard_rows(self.scores)
        totals.add_columns(*cols)
        totals.add_rows(rows)
        self.fill()

    def visible(self) -> list[D.QuestionRow]:
        only = self.query_one("#disagree", Checkbox).value
        return [q for q in self.questions if q.disagree or not only]

    def fill(self) -> None:
        table = self.query_one("#questions", DataTable)
        table.clear(columns=True)
        setups = self.scores.setup_names if self.scores else []
        table.add_columns("id", "question", *setups)
        for q in self.visible():
            marks = []
            for s in setups:
                a = q.answers.get(s)
                if a is None or a.em is None:
                    marks.append(Text("-", style="dim"))
                else:
                    marks.append(Text("✓", style="green") if a.em else Text("✗", style="red"))
            text = " ".join(q.question.split())
            table.add_row(q.id, text[:60] + ("…" if len(text) > 60 else ""), *marks, key=q.id)

    def action_toggle_disagree(self) -> None:
        box = self.query_one("#disagree", Checkbox)
        box.value = not box.value

    @on(Checkbox.Changed, "#disagree")
    @guarded
    def _filter(self) -> None:
        self.fill()

    @on(DataTable.RowHighlighted, "#questions")
    @on(DataTable.RowSelected, "#questions")
    @guarded
    def _pick(self, event: DataTable.RowHighlighted | DataTable.RowSelected) -> None:
        key = event.row_key.value if event.row_key is not None else None
        q = next((q for q in self.questions if q.id == key), None)
        if q is not None:
            self.query_one("#drill", Static).update(drill_down(q, self.scores))


def _load_board(ws_path: Path) -> tuple[D.Scores | None, list[D.QuestionRow]]:
    scores = D.load_scores(ws_path)
    return scores, (D.load_questions(ws_path, scores) if scores else [])


def drill_down(q: D.QuestionRow, scores: D.Scores | None) -> Text:
    setups = scores.setup_names if scores else list(q.answers)
    out = [Text.assemble((q.id, "bold"), "  ", q.question),
           Text.assemble(("gold:", "bold"), " ", " | ".join(q.gold) if q.gold else "(not in the eval set)"),
           Text("")]
    for s in setups:
        a = q.answers.get(s)
        if a is None:
            continue
        mark = ("✓", "green") if a.em else ("✗", "red")
        f1 = f"F1 {a.f1:.2f}" if a.f1 is not None else ""
        out.append(Text.assemble(mark, " ", (s, "bold"), f" {f1}: {a.answer or '(empty)'}"))
        for cid, source, text in a.retrieved:
            snippet = " ".join(text.split())[:160]
            out.append(Text.assemble("    ", (f"{cid[:10]} {source}", "dim"), f" {snippet}"))
    return Text("\n").join(out)


# -- runs ------------------------------------------------------------------------------------


class RunsScreen(_Loading, Screen):
    """The ledger's run history; select a run to see its summary or error."""

    BINDINGS = [Binding("r", "refresh", "Refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs-screen"):
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="run-detail-pane"):
                yield Static("Select a run to see its summary.", id="run-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load("runs", D.load_runs, self._ws())

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what != "runs":
            return
        self.runs = msg.value
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        table.add_columns("#", "stage", "status", "started", "took", "artefact")
        style = {"ok": "green", "failed": "red", "running": "yellow"}
        for r in self.runs:
            took = f"{r['duration']:.1f}s" if r["duration"] is not None else "-"
            table.add_row(str(r["id"]), r["stage"], Text(r["status"], style=style.get(r["status"], "")),
                          r["started"], took, (r["artefact_id"] or "")[:16], key=str(r["id"]))
        if not self.runs:
            self.query_one("#run-detail", Static).update("No runs yet.")

    @on(DataTable.RowHighlighted, "#runs")
    @guarded
    def _pick(self, event: DataTable.RowHighlighted) -> None:
        r = next((r for r in self.runs if str(r["id"]) == event.row_key.value), None)
        if r is None:
            return
        lines = [Text.assemble((f"run {r['id']}", "bold"), f"  {r['stage']}  {r['status']}")]
        if r["error"]:
            lines.append(Text.assemble(("error:", "red"), f" {r['error']}"))
        try:
            summary = json.loads(r["summary"] or "{}")
        except ValueError:
            summary = {}
        for k, v in summary.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v)[:200]
            lines.append(Text.assemble((str(k), "bold"), f": {v}"))
        self.query_one("#run-detail", Static).update(Text("\n").join(lines))


HELP = """\
# synthloop dashboard

| key | does |
|-----|------|
| `1` | Overview: the workspace and the latest scoreboard |
| `2` | Scoreboard: every question, drill-down on select |
| `3` | Runs: the ledger's history |
| `4` | Search: one query, bm25 / dense / hybrid hits side by side |
| `5` | Corpus: documents, their chunks, skipped files (`/` filters) |
| `d` | (Scoreboard) only questions where setups disagree |
| `w` | (Overview) write the latest evaluation's report (markdown and figures) |
| `r` | reload the screen from the workspace |
| `ctrl+p` | command palette |
| `?` | this help |
| `q` | quit |

A `▲` marks an F1/EM score that beats another setup measurably (paired 95% interval
excludes 0); the last column names the setups it beats.

In a text box, `escape` (Search) or `enter` (Corpus filter) gives the keys back to the app.

Press `escape` to close.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


# -- the app ---------------------------------------------------------------------------------


class SynthloopApp(App[None]):
    """Fine-tune, RAG, or both: the workspace, its scoreboard and its history."""

    CSS_PATH = "app.tcss"
    TITLE = "synthloop"
    ENABLE_COMMAND_PALETTE = True
    MODES = {"overview": OverviewScreen, "scoreboard": ScoreboardScreen, "runs": RunsScreen,
             "search": SearchScreen, "corpus": CorpusScreen}
    DEFAULT_MODE = "overview"
    BINDINGS = [
        Binding("1", "switch_mode('overview')", "Overview"),
        Binding("2", "switch_mode('scoreboard')", "Scoreboard"),
        Binding("3", "switch_mode('runs')", "Runs"),
        Binding("4", "switch_mode('search')", "Search"),
        Binding("5", "switch_mode('corpus')", "Corpus"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, ws_path: str | Path) -> None:
        super().__init__()
        self.ws_path = Path(ws_path).expanduser()
        self.sub_title = str(self.ws_path)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())
