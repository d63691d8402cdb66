"""Index: build or update it with progress, recall@k on a gold set, and search.

The search part is ``SearchScreen``'s (one query, bm25 / dense / hybrid side by side); this
screen adds the index's state, a Build button running ``loop.index.build_index`` in a worker
(an unchanged corpus is a cache hit; a changed one re-embeds only the new chunks), and the
retrieval figures of every method on a gold set: a file the user names (JSONL or SQuAD
JSON, as ``synthloop retrieval-eval --eval-set`` reads it), else the generated eval set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, DataTable, Header, Input, ProgressBar, Static

from tui import data as D
from tui.base import (
    JobDone,
    Loaded,
    LoadFailed,
    Meter,
    StageEvent,
    _View,
    footer,
    guarded,
    run_stage,
)
from tui.browse import SearchScreen, search_methods

KS = (1, 5, 10)


def run_build(ws_path: Path, emit: Any) -> Any:
    """Build with the current index's settings (else the defaults): after an ingest this is
    an update that embeds only the new chunks; with nothing changed it is a cache hit."""
    from loop.index import IndexConfig, build_index
    from loop.workspace import Workspace

    with Workspace(ws_path, create=False) as ws:
        return build_index(ws, IndexConfig(**D.index_settings(ws)), emit=emit)


class IndexScreen(_View, SearchScreen):
    """Build the index, see how well each method retrieves, search it."""

    VIEW = ("index", D.load_index_view)

    BINDINGS = [Binding("b", "build", "Build / update"), Binding("k", "recall", "Recall@k"),
                *SearchScreen.BINDINGS]
    AUTO_FOCUS = "#index-build"

    def __init__(self) -> None:
        super().__init__()
        self.meter = Meter()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="index-top"):
            with VerticalScroll(id="index-panel", classes="panel"):
                yield Static("loading ...", id="index-info")
                with Horizontal(classes="form-row buttons"):
                    yield Button("Build / update", id="index-build", variant="success",
                                 compact=True)
                    yield Button("Recall@k", id="index-recall", compact=True)
                yield Input(id="recall-set", compact=True,
                            placeholder="recall@k gold set file (empty: generated)")
                # hidden, with a total, until a build: a bar without one animates
                yield ProgressBar(id="index-bar", total=1, show_eta=False, classes="idle")
            with Vertical(id="recall-pane"):
                yield Static("", id="recall-title")
                yield DataTable(id="recall", cursor_type="none", zebra_stripes=True)
        yield Input(placeholder="Search the index (enter)", id="query", compact=True)
        with Horizontal(id="hits"):
            for m in search_methods():
                with VerticalScroll(classes="hits-col"):
                    yield Static(f"[b]{m}[/]", id=f"hits-{m}")
        yield footer()

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "index":
            self.show_index(msg.value)
        elif msg.what == "recall":
            self.show_recall(msg.value)

    def show_index(self, view: dict[str, Any]) -> None:
        info = self.query_one("#index-info", Static)
        idx = view.get("index")
        if idx is None:
            info.update(Text("No index yet: press Build.", style="yellow"))
        else:
            state = Text(" (stale: the corpus changed, press Build)", style="yellow") if view["stale"] else ""
            info.update(Text.assemble(("index ", "bold"), idx["id"], f"  {idx['embedder']}  "
                                      f"method {idx['method']}, k={idx['k']}", state))
        if not view.get("eval_set"):  # recall@k waits for a gold set the user names
            self.query_one("#recall-set", Input).placeholder = "recall@k gold set: JSONL / SQuAD file"

    @on(Button.Pressed, "#index-build")
    def action_build(self) -> None:
        self.meter = Meter()
        self.query_one("#index-build", Button).disabled = True
        bar = self.query_one("#index-bar", ProgressBar)
        bar.remove_class("idle")
        bar.update(total=None, progress=0)  # working, its size unknown until Started
        self.build()

    @work(thread=True, exclusive=True, group="index-build")
    def build(self) -> None:
        run_stage(self, "index", lambda emit: run_build(self._ws(), emit))

    @guarded
    def on_stage_event(self, msg: StageEvent) -> None:
        from loop.events import Progress, Started

        if isinstance(msg.event, Started | Progress):
            self.meter.feed(msg.event)
            self.query_one("#index-bar", ProgressBar).update(total=self.meter.total, progress=self.meter.done)

    @guarded
    def on_job_done(self, msg: JobDone) -> None:
        self.query_one("#index-build", Button).disabled = False
        if msg.error:
            self.query_one("#index-bar", ProgressBar).update(total=self.meter.total or 1,
                                                             progress=self.meter.done)
            self.notify(msg.error, title="index failed", severity="error", markup=False)
            return
        r = msg.result
        self.query_one("#index-bar", ProgressBar).update(total=1, progress=1)
        self.retriever = None  # the next search loads the new index
        self.notify(f"index {r.index_id} {'unchanged' if r.cached else 'built'}: {r.chunks} chunks, "
                    f"{r.embedded} embedded, {r.reused} reused", title="index", markup=False)
        self.action_refresh()

    @on(Button.Pressed, "#index-recall")
    @on(Input.Submitted, "#recall-set")
    def action_recall(self) -> None:
        gold = self.query_one("#recall-set", Input).value.strip() or None
        self.query_one("#recall-title", Static).update(Text("scoring every method ...", style="dim"))
        self.load("recall", D.retrieval_recall, self._ws(), list(KS), gold)

    def on_load_failed(self, msg: LoadFailed) -> None:  # _Loading's notifies (Textual calls both)
        if msg.what == "recall":
            self.query_one("#recall-title", Static).update("")

    def show_recall(self, result: dict[str, Any]) -> None:
        self.query_one("#recall-title", Static).update(Text.assemble(
            ("recall@k", "bold"), f"  {result['questions']} questions, {result['eval_set']}"))
        table = self.query_one("#recall", DataTable)
        table.clear(columns=True)
        cols = [c for c in next(iter(result["methods"].values())) if c.startswith(("recall@", "mrr"))]
        table.add_columns("method", *(Text(c) for c in cols))
        for name, figures in result["methods"].items():
            table.add_row(Text(name), *(f"{figures[c]:.2f}" for c in cols))
