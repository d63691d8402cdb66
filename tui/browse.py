"""Browsing screens: the corpus (documents, chunks, skipped files) and search."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static
from textual.worker import get_current_worker

from tui import data as D
from tui.base import Loaded, LoadFailed, _Loading, footer, guarded

# -- corpus --------------------------------------------------------------------------------


class CorpusScreen(_Loading, Screen):
    """Documents and their chunks; the files ingest skipped and why; add documents."""

    BINDINGS = [Binding("r", "refresh", "Refresh", show=False), Binding("slash", "find", "Filter"),
                Binding("a", "add", "Add documents")]
    AUTO_FOCUS = "#documents"

    def __init__(self) -> None:
        super().__init__()
        self.view: D.CorpusView | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="Filter documents by source or title", id="doc-filter")
        yield Input(placeholder="File or folder to add (Enter: ingest it, Esc: cancel)",
                    id="add-path")
        with Horizontal(id="corpus-split"):
            yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="chunks-pane"):
                yield Static("Select a document to see its chunks.", id="chunks")
        yield Static("", id="skipped")
        yield footer()

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        self.load("corpus", D.load_corpus_view, self._ws())

    def action_find(self) -> None:
        self.query_one("#doc-filter", Input).focus()

    def action_add(self) -> None:
        box = self.query_one("#add-path", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#add-path")
    @guarded
    def _add(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        event.input.value, event.input.display = "", False
        self.query_one("#documents", DataTable).focus()
        if path:
            self.notify(f"adding {path} ...", markup=False)
            self.add_documents(path)

    def key_escape(self) -> None:
        box = self.query_one("#add-path", Input)
        if box.display:
            box.value, box.display = "", False
            self.query_one("#documents", DataTable).focus()

    @work(thread=True, exclusive=True, group="add")
    def add_documents(self, path: str) -> None:
        """Ingest in a worker (its own group: a refresh must not cancel it)."""
        try:
            summary = D.add_documents(self._ws(), path)
        except Exception as e:  # a notification, never a traceback
            self.post_message(LoadFailed("add documents", str(e) or type(e).__name__))
            return
        self.post_message(Loaded("added", summary))

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "added":
            s = msg.value
            self.notify(f"corpus now {s['documents']} documents, {s['chunks']} chunks "
                        f"({s['read']} files read, {len(s['skipped'])} skipped)",
                        title="documents added", markup=False)
            self.action_refresh()
        elif msg.what == "corpus":
            self.view = msg.value
            self.fill()
            skipped = self.view.skipped
            self.query_one("#skipped", Static).update(
                Text.assemble((f"Skipped files ({len(skipped)})", "bold"), ": " + "; ".join(
                    f"{f['source']} ({f['reason'] or '?'})" for f in skipped[:20]))
                if skipped else Text("No file was skipped.", style="dim"))
        elif msg.what == "chunks":
            lines = []
            for n, c in enumerate(msg.value, 1):
                lines.append(Text.assemble((f"chunk {n}", "bold"), " ", (c["chunk_id"][:12], "dim"),
                                           "\n", c["text"].strip(), "\n"))
            self.query_one("#chunks", Static).update(Text("\n").join(lines) if lines
                                                     else Text("no chunks", style="dim"))

    def fill(self) -> None:
        table = self.query_one("#documents", DataTable)
        table.clear(columns=True)
        table.add_columns("source", "title", "chunks")
        needle = self.query_one("#doc-filter", Input).value.strip().lower()
        for n, d in enumerate(self.view.documents if self.view else []):
            if needle and needle not in f"{d['source']} {d['title']}".lower():
                continue
            # file names and titles are the documents' text: Text cells, never read as markup
            table.add_row(Text(d["source"]), Text(d["title"][:40]), str(d["n_chunks"]),
                          key=f"{n}:{d['doc_id']}")

    @on(Input.Changed, "#doc-filter")
    @guarded
    def _filter(self) -> None:
        self.fill()

    @on(Input.Submitted, "#doc-filter")
    @guarded
    def _filtered(self) -> None:
        self.query_one("#documents", DataTable).focus()

    @on(DataTable.RowHighlighted, "#documents")
    @guarded
    def _pick(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value:
            doc_id = event.row_key.value.split(":", 1)[1]
            self.load_chunks(doc_id)

    @work(thread=True, exclusive=True, group="chunks")
    def load_chunks(self, doc_id: str) -> None:
        worker = get_current_worker()
        try:
            chunks = D.load_chunks(self._ws(), doc_id)
        except Exception as e:
            if not worker.is_cancelled:
                self.post_message(LoadFailed("chunks", str(e) or type(e).__name__))
            return
        if not worker.is_cancelled:
            self.post_message(Loaded("chunks", chunks))


# -- search --------------------------------------------------------------------------------

def search_methods() -> tuple[str, ...]:
    """The registered retrieval methods (not the single rankers): one column each."""
    from retrieval.methods import method_names  # loads faiss: on first use, not at start

    return tuple(method_names(rankers=False))


@dataclass
class SearchDone(Message, bubble=False):
    query: str
    hits: dict[str, list]


class SearchScreen(_Loading, Screen):
    """One query, the hits of bm25, dense and hybrid side by side."""

    BINDINGS = [Binding("escape", "cancel", "Cancel / leave the box", show=False),
                Binding("slash", "find", "Search")]
    AUTO_FOCUS = "#query"

    def __init__(self) -> None:
        super().__init__()
        self.retriever = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="Search the index (enter)", id="query")
        with Horizontal(id="hits"):
            for m in search_methods():
                with VerticalScroll(classes="hits-col"):
                    yield Static(f"[b]{m}[/]", id=f"hits-{m}")
        yield footer()

    @on(Input.Submitted, "#query")
    @guarded
    def _submit(self, event: Input.Submitted) -> None:
        if event.value.strip():
            for m in search_methods():
                self.query_one(f"#hits-{m}", Static).update(f"[b]{m}[/]\n[dim]searching ...[/]")
            self.search(event.value.strip())

    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "search")
        self.query(".hits-col").first().focus()  # the app's keys (1-5, q) work again

    def action_find(self) -> None:
        self.query_one("#query", Input).focus()

    @work(thread=True, exclusive=True, group="search")
    def search(self, query: str) -> None:
        worker = get_current_worker()
        try:
            if self.retriever is None:
                self.retriever = D.open_retriever(self._ws())
            hits = {}
            for m in search_methods():
                if worker.is_cancelled:
                    return
                hits[m] = self.retriever.search(query, None, m)
        except Exception as e:  # a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed("search", str(e) or type(e).__name__))
            return
        if not worker.is_cancelled:
            self.post_message(SearchDone(query, hits))

    @guarded
    def on_search_done(self, msg: SearchDone) -> None:
        for m, hits in msg.hits.items():
            lines = [Text.assemble((m, "bold"), "  ", (f"{len(hits)} hits", "dim"))]
            # By the score shown: hybrid's windows come reordered by query-word coverage,
            # while their score is the fused one; the retriever's own rank, where it differs.
            ranked = sorted(enumerate(hits, 1), key=lambda rh: -rh[1].score)
            for n, (rank, h) in enumerate(ranked, 1):
                text = " ".join(h.text.split())
                lines.append(Text.assemble((f"{n}.", "bold"), " ", (h.source, "cyan"), " ",
                                           (f"{h.score:.3f}", "dim"),
                                           (f"  (retrieved {rank})" if rank != n else "", "dim"),
                                           "\n", text[:300]))
            if not hits:
                lines.append(Text("no hits", style="dim"))
            self.query_one(f"#hits-{m}", Static).update(Text("\n").join(lines))


# -- help ------------------------------------------------------------------------------------
