"""Playground: type a question, every setup answers it side by side with its sources.

The setups are the eval stage's (``loop.eval.ask.Playground``): base, rag, and tuned,
tuned+rag, combined where a model exists. Models load once, in the worker, on the first
question; later questions reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Static
from textual.worker import get_current_worker

from tui import data as D
from tui.base import Loaded, LoadFailed, _Loading, footer, guarded, reason


@dataclass
class Answered(Message, bubble=False):
    question: str
    answers: list[Any]  # loop.eval.ask.SetupAnswer
    notes: list[str]


def open_playground(ws_path: Path, student: str | None) -> Any:
    """Models and retriever, loaded once; answering needs no ledger, so the workspace (whose
    SQLite connection belongs to this worker's thread) is closed again at once."""
    from loop.eval.ask import Playground
    from loop.workspace import Workspace

    with Workspace(ws_path, create=False) as ws:
        return Playground(ws, student=student or None)


def answer_text(a: Any) -> Text:
    out = [Text.assemble((a.setup, "bold"), ("  " + f"{a.latency_ms:.0f} ms", "dim")),
           Text(a.answer or "(empty)")]
    if a.raw.strip() and a.raw.strip() != a.answer:
        out.append(Text(" ".join(a.raw.split())[:300], style="dim italic"))
    if a.sources:
        out.append(Text("sources", style="bold"))
        for n, h in enumerate(a.sources, 1):
            out.append(Text.assemble((f"{n}. ", "bold"), (h.source, "cyan"), " ",
                                     " ".join(h.text.split())[:200]))
    return Text("\n").join(out)


class PlaygroundScreen(_Loading, Screen):
    """One question, every setup's answer side by side."""

    BINDINGS = [Binding("slash", "find", "Question box"),
                Binding("escape", "leave_box", "Leave box", show=False)]
    AUTO_FOCUS = ""  # nothing: the app's keys (1-9, q) work until "/" opens the question box

    def __init__(self) -> None:
        super().__init__()
        self.playground: Any = None
        self.student: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="play-form"):
            yield Label("student", classes="form-label")
            yield Input("", id="play-student", placeholder="default: the trained models' student",
                        compact=True)  # on_mount names the default
        yield Input(placeholder="/ then a question for every setup (enter)", id="ask", compact=True)
        yield Horizontal(Static("Answers appear here, one column per setup.", classes="dim"), id="answers")
        yield footer()

    def on_mount(self) -> None:
        self.load("student", D.playground_student, self._ws())

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "student":  # the student base and rag answer with when the box is empty
            self.query_one("#play-student", Input).placeholder = f"default: {msg.value}"

    def action_find(self) -> None:
        self.query_one("#ask", Input).focus()

    def action_leave_box(self) -> None:
        # Nothing focused: the keys go to the screen and the app (3, m, c ...). The answers'
        # container cannot take focus, so focusing it left the question box holding them.
        self.set_focus(None)

    @on(Input.Submitted, "#ask")
    @guarded
    def _ask(self, event: Input.Submitted) -> None:
        question = event.value.strip()
        if not question:
            return
        self.query_one("#answers").remove_children()
        self.query_one("#answers").mount(Static("thinking ... (the first question loads the models)"))
        self.ask(question, self.query_one("#play-student", Input).value.strip() or None)

    @work(thread=True, exclusive=True, group="ask")
    def ask(self, question: str, student: str | None) -> None:
        worker = get_current_worker()
        try:
            notes: list[str] = []
            if self.playground is None or student != self.student:
                self.playground, self.student = open_playground(self._ws(), student), student
                notes = list(self.playground.notes)
            answers = self.playground.ask(question)
        except Exception as e:  # a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed("playground", reason(e)))
            return
        if not worker.is_cancelled:
            self.post_message(Answered(question, answers, notes))

    @guarded
    def on_answered(self, msg: Answered) -> None:
        box = self.query_one("#answers")
        box.remove_children()
        box.mount_all([VerticalScroll(Static(answer_text(a), classes="answer"), classes="answer-col")
                       for a in msg.answers])
        for note in msg.notes:
            self.notify(note, title="playground", severity="warning", markup=False)

    def on_load_failed(self, msg: LoadFailed) -> None:  # _Loading's notifies (Textual calls both)
        self.query_one("#answers").remove_children()
