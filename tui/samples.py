"""The sample browser: a person accepts, edits or rejects generated samples.

Each verdict is written to the ledger at once (``loop.review``); ``ctrl+s`` applies them:
a reviewed dataset (edits in, rejects out and kept with reason ``human``) becomes current.
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Header, Label, Static, TextArea
from textual.worker import get_current_worker

from tui import data as D
from tui.base import Loaded, LoadFailed, _View, footer, guarded, reason

VERDICT_STYLE = {"accepted": ("✓ accepted", "green"), "edited": ("✎ edited", "cyan"),
                 "rejected": ("✗ rejected", "red")}


def verdict_cell(verdict: str | None) -> Text:
    label, style = VERDICT_STYLE.get(verdict or "", ("-", "dim"))
    return Text(label, style=style)


def sample_text(row: dict[str, Any], verdict: str | None) -> Text:
    out = [Text.assemble((row["task"], "bold"), f"  {row['split']}  ", verdict_cell(verdict),
                         ("  " + row["id"], "dim"))]
    for m in row["messages"]:
        out.append(Text.assemble((f"{m['role']}:", "bold cyan"), " ", m["content"]))
    if row.get("rejected"):
        out.append(Text.assemble(("rejected answer:", "bold red"), " ", row["rejected"]))
    out.append(Text(f"chunks: {', '.join(c[:12] for c in row['chunk_ids'])}", style="dim"))
    return Text("\n").join(out)


class EditScreen(ModalScreen[list | None]):
    """Edit a sample's question and answer; ``ctrl+s`` keeps the edit, ``escape`` drops it."""

    BINDINGS = [Binding("ctrl+s", "save", "Keep edit"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, messages: list[dict[str, str]]) -> None:
        super().__init__()
        self.messages = [dict(m) for m in messages]
        self.q = max((i for i, m in enumerate(self.messages) if m["role"] == "user"), default=None)
        self.a = max((i for i, m in enumerate(self.messages) if m["role"] == "assistant"), default=None)

    def compose(self) -> ComposeResult:
        with Vertical(id="edit-box"):
            yield Label("question (the last user turn)")
            yield TextArea(self.messages[self.q]["content"] if self.q is not None else "", id="edit-q")
            yield Label("answer (the last assistant turn)")
            yield TextArea(self.messages[self.a]["content"] if self.a is not None else "", id="edit-a")
            yield Label("ctrl+s keeps the edit, escape drops it", classes="dim")

    def action_save(self) -> None:
        for idx, sel in ((self.q, "#edit-q"), (self.a, "#edit-a")):
            if idx is not None:
                self.messages[idx]["content"] = self.query_one(sel, TextArea).text
        self.dismiss(self.messages)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SamplesScreen(_View, Screen):
    """The current dataset's samples, each with its verdict."""

    VIEW = ("samples", D.load_samples_view)

    BINDINGS = [Binding("a", "judge('accepted')", "Accept"), Binding("e", "edit", "Edit"),
                Binding("x", "judge('rejected')", "Reject"),
                Binding("ctrl+s", "apply", "Apply"), Binding("r", "refresh", "Refresh", show=False)]
    AUTO_FOCUS = "#samples"

    def __init__(self) -> None:
        super().__init__()
        self.view: D.SamplesView | None = None
        self.by_id: dict[str, dict[str, Any]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("loading ...", id="samples-info")
        with Horizontal(id="samples-split"):
            yield DataTable(id="samples", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="sample-pane"):
                yield Static("Select a sample.", id="sample-detail")
        yield footer()

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "samples":
            self.show(msg.value)
        elif msg.what == "applied":
            r = msg.value
            self.notify(f"dataset {r.dataset_id}: {r.samples} samples ({r.accepted} accepted, "
                        f"{r.edited} edited, {r.rejected} rejected)", title="verdicts applied",
                        markup=False)
            self.action_refresh()

    def show(self, view: D.SamplesView) -> None:
        self.view = view
        self.by_id = {r["id"]: r for r in view.rows}
        table = self.query_one("#samples", DataTable)
        table.clear(columns=True)
        table.add_column("task", key="task")
        table.add_column("split", key="split")
        table.add_column("review", key="review")
        table.add_column("question", key="question")
        for r in view.rows:  # a teacher's text: Text cells, never read as markup
            q = D.question_of(r)
            table.add_row(Text(r["task"]), Text(r["split"]), verdict_cell(view.verdicts.get(r["id"])),
                          Text(q[:70] + ("…" if len(q) > 70 else "")), key=r["id"])
        self._header()

    def _header(self) -> None:
        """The dataset and its verdict counts: redrawn after every verdict, not on reload."""
        view, info = self.view, self.query_one("#samples-info", Static)
        if view is None or view.dataset_id is None:
            info.update("No dataset yet: start one on the Generate screen (6).")
            return
        counts = {v: sum(1 for x in view.verdicts.values() if x == v) for v in VERDICT_STYLE}
        shown = f"the first {len(view.rows)} of {view.total}" if view.total > len(view.rows) else str(view.total)
        info.update(Text.assemble(("dataset ", "bold"), view.dataset_id, f"  {shown} samples  ",
                                  ", ".join(f"{n} {v}" for v, n in counts.items())))

    def _current(self) -> dict[str, Any] | None:
        table = self.query_one("#samples", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.by_id.get(key)

    @on(DataTable.RowHighlighted, "#samples")
    @guarded
    def _pick(self, event: DataTable.RowHighlighted) -> None:
        row = self.by_id.get(event.row_key.value) if event.row_key is not None else None
        if row is not None and self.view is not None:
            self.query_one("#sample-detail", Static).update(sample_text(row, self.view.verdicts.get(row["id"])))

    def action_verdict(self, verdict: str, messages: list | None = None) -> None:
        row = self._current()
        if row is None or self.view is None or self.view.dataset_id is None:
            return
        self.view.verdicts[row["id"]] = verdict
        self.query_one("#samples", DataTable).update_cell(row["id"], "review", verdict_cell(verdict))
        self.query_one("#sample-detail", Static).update(sample_text(row, verdict))
        self._header()
        self.save(self.view.dataset_id, row["id"], verdict, messages)

    def action_judge(self, verdict: str) -> None:
        """Accept or reject the sample under the cursor and move on to the next one."""
        self.action_verdict(verdict)
        self.query_one("#samples", DataTable).action_cursor_down()

    def action_edit(self) -> None:
        row = self._current()
        if row is None:
            return

        def done(messages: list | None) -> None:
            if messages is not None:
                self.action_verdict("edited", messages)

        self.app.push_screen(EditScreen(row["messages"]), done)

    @work(thread=True, group="review")
    def save(self, dataset_id: str, sample_id: str, verdict: str, messages: list | None) -> None:
        try:
            D.save_review(self._ws(), dataset_id, sample_id, verdict, messages)
        except Exception as e:
            self.post_message(LoadFailed("review", reason(e)))

    def action_apply(self) -> None:
        if self.view is None or self.view.dataset_id is None:
            return
        self.apply(self.view.dataset_id)

    @work(thread=True, exclusive=True, group="apply")
    def apply(self, dataset_id: str) -> None:
        worker = get_current_worker()
        while any(w.group == "review" and w.is_running for w in list(self.workers)):
            time.sleep(0.01)  # the verdicts given just before must be in the ledger
        try:
            result = D.apply_sample_reviews(self._ws(), dataset_id)
        except Exception as e:
            if not worker.is_cancelled:
                self.post_message(LoadFailed("apply", reason(e)))
            return
        if not worker.is_cancelled:
            self.post_message(Loaded("applied", result))
