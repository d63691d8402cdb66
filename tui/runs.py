"""The ledger's run history, and two runs compared side by side (data, adapter, scores)."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from tui import data as D
from tui.base import Loaded, _Loading, _View, footer, guarded


class RunsScreen(_View, Screen):
    """The ledger's run history; select a run to see its summary or error; mark two
    (``m``) and compare them (``c``)."""

    VIEW = ("runs", D.load_runs)

    BINDINGS = [Binding("m", "mark", "Mark"), Binding("c", "compare", "Compare marked"),
                Binding("r", "refresh", "Refresh", show=False)]
    AUTO_FOCUS = "#runs"

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, Any]] = []
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="runs-screen"):
            yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="run-detail-pane"):
                yield Static("Select a run to see its summary.", id="run-detail")
        yield footer()

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what != "runs":
            return
        self.runs = msg.value
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        table.add_columns("#", "stage", "status", "started", "took", "artefact", "")
        style = {"ok": "green", "failed": "red", "running": "yellow", "stopped": "yellow",
                 "cancelled": "yellow"}
        for r in self.runs:
            took = f"{r['duration']:.1f}s" if r["duration"] is not None else "-"
            table.add_row(str(r["id"]), Text(r["stage"]), Text(r["status"], style=style.get(r["status"], "")),
                          Text(r["started"]), took, Text((r["artefact_id"] or "")[:16]),
                          "◆" if str(r["id"]) in self.marked else "", key=str(r["id"]))
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
        summary = r["summary"] if isinstance(r["summary"], dict) else {}  # the ledger decodes it
        for k, v in summary.items():
            if isinstance(v, (dict, list)):
                v = json.dumps(v)[:200]
            lines.append(Text.assemble((str(k), "bold"), f": {v}"))
        self.query_one("#run-detail", Static).update(Text("\n").join(lines))


    def action_mark(self) -> None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked = [*self.marked, key][-2:]  # the two most recent marks
        for r in self.runs:
            table.update_cell(str(r["id"]), table.ordered_columns[-1].key,
                              "◆" if str(r["id"]) in self.marked else "")
        self.notify(f"marked: {', '.join(self.marked) or 'none'}", markup=False)

    def action_compare(self) -> None:
        if len(self.marked) != 2:
            self.notify("mark two runs with m first", severity="warning")
            return
        a, b = sorted(self.marked, key=int)
        self.app.push_screen(CompareScreen(int(a), int(b)))


class CompareScreen(_Loading, Screen):
    """Two runs side by side: what each was run with, what it produced, and what it scored."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("f", "toggle_diff", "Only differences")]
    AUTO_FOCUS = "#compare"

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.facts: tuple[dict[str, str], dict[str, str]] | None = None
        self.only_diff = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"run {self.a} against run {self.b}", id="compare-title", classes="section-title")
        yield DataTable(id="compare", cursor_type="row", zebra_stripes=True)
        yield footer()

    def on_mount(self) -> None:
        self.load("compare", D.compare_runs, self._ws(), self.a, self.b)

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "compare":
            self.facts = msg.value
            self.fill()

    def fill(self) -> None:
        table = self.query_one("#compare", DataTable)
        table.clear(columns=True)
        table.add_columns("", "field", f"run {self.a}", f"run {self.b}")
        a, b = self.facts or ({}, {})
        for key in sorted(set(a) | set(b), key=D.fact_order):
            va, vb = a.get(key, "-"), b.get(key, "-")
            same = va == vb
            if same and self.only_diff:
                continue
            style = "" if same else "yellow"
            table.add_row("" if same else "≠", Text(key), Text(va, style=style), Text(vb, style=style),
                          key=key)

    def action_toggle_diff(self) -> None:
        self.only_diff = not self.only_diff
        self.fill()
