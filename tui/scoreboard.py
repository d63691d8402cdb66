"""The scoreboard: the full table, every question with a drill-down, and a per-document view."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Header, Static

from tui import data as D
from tui.base import Loaded, _Loading, footer, guarded


def scoreboard_rows(scores: D.Scores) -> tuple[list[str | Text], list[list[Text | str]]]:
    """Columns and rows of the side-by-side table: the setups each one beats measurably on
    F1 (second, so it shows on a narrow terminal), then a column per metric with its interval."""
    metrics = scores.metric_names
    cols = ["setup", "beats (F1)", *(Text(m) for m in metrics)]
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



class ScoreboardScreen(_Loading, Screen):
    """Every question; select one to see the gold answer and each setup's answer and chunks."""

    BINDINGS = [
        Binding("d", "toggle_disagree", "Disagreements"),
        Binding("p", "toggle_docs", "Per document"),
        Binding("r", "refresh", "Refresh", show=False),
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
            yield DataTable(id="by-doc", cursor_type="row", zebra_stripes=True)
        yield footer()

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
            self.query_one("#drill", Static).update("No scoreboard yet: run [b]synthloop eval[/].")
            self.fill()
            return
        cols, rows = scoreboard_rows(self.scores)
        totals.add_columns(*cols)
        totals.add_rows(rows)
        self.fill()
        if self.query_one("#by-doc", DataTable).display:
            self.fill_docs()

    def visible(self) -> list[D.QuestionRow]:
        only = self.query_one("#disagree", Checkbox).value
        return [q for q in self.questions if q.disagree or not only]

    def fill(self) -> None:
        table = self.query_one("#questions", DataTable)
        table.clear(columns=True)
        setups = self.scores.setup_names if self.scores else []
        table.add_columns("id", "question", *(Text(s) for s in setups))
        for q in self.visible():  # the eval set's text: Text cells, never read as markup
            marks = []
            for s in setups:
                a = q.answers.get(s)
                if a is None or a.em is None:
                    marks.append(Text("-", style="dim"))
                else:
                    marks.append(Text("✓", style="green") if a.em else Text("✗", style="red"))
            text = " ".join(q.question.split())
            table.add_row(Text(q.id), Text(text[:60] + ("…" if len(text) > 60 else "")), *marks,
                          key=q.id)

    def fill_docs(self) -> None:
        table = self.query_one("#by-doc", DataTable)
        table.clear(columns=True)
        setups = self.scores.setup_names if self.scores else []
        table.add_columns("document", "questions", *(Text(f"{s} EM / F1") for s in setups))
        for row in D.by_document(self.questions, setups):
            cells = []
            for s in setups:
                em, f1 = row["scores"][s]
                cells.append("-" if f1 is None else f"{em or 0:.2f} / {f1:.2f}")
            table.add_row(Text(row["doc"]), str(row["questions"]), *cells, key=row["doc"])

    def action_toggle_docs(self) -> None:
        docs = self.query_one("#by-doc", DataTable)
        split = self.query_one("#split")
        docs.display, split.display = not docs.display, docs.display
        self.query_one("#disagree").display = split.display
        if docs.display:
            self.fill_docs()
            docs.focus()
        else:
            self.query_one("#questions", DataTable).focus()

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

