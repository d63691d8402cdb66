"""Generate: teacher, tasks and limits; live progress; cancel keeps the rows done so far.

The stage runs in a thread worker (``loop.generate.generate``) whose events arrive as
``StageEvent`` messages. Cancel sets a ``threading.Event`` the core polls between jobs: the
run ends with the finished jobs' rows as a partial dataset, and the teacher calls stay
cached in the ledger, so starting the same generation again continues where it stopped.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, ProgressBar, RichLog, Static

from loop.stages import RunConfig
from tui.base import JobDone, Meter, StageEvent, _Loading, fmt_seconds, footer, guarded, run_stage
from tui.forms import field_widgets, form_config

FORM = ["teacher", "tasks", "per_chunk", "limit", "price_per_1k"]  # GenerateConfig's fields

GenerateConfig = RunConfig.section_model("generate")  # the [generate] section: flags, file and form alike


def run_generation(ws_path: Path, cfg: Any, emit: Any, should_stop: Any) -> Any:
    """The stage as the CLI runs it, with the workspace's eval questions kept out of the data."""
    from loop.generate import generate
    from loop.workspace import Workspace

    with Workspace(ws_path, create=False) as ws:
        return generate(ws, cfg, eval_questions=_eval_questions(ws), emit=emit,
                        api_key=os.environ.get("OPENAI_API_KEY"), should_stop=should_stop)


def _eval_questions(ws: Any) -> list[str]:
    from loop.samples import load_generated_eval_set

    ds = load_generated_eval_set(ws)
    return list(ds["question"]) if ds is not None else []


def progress_text(m: Meter, price: float | None) -> Text:
    """done/total, rate, ETA, tokens and cost, rejects by reason."""
    info = m.info
    total = m.total if m.total is not None else "?"
    tokens = int(info.get("tokens", 0))
    cost = f"${tokens / 1000 * price:.4f}" if price else "-"
    lines = [Text.assemble(("jobs ", "bold"), f"{m.done}/{total}   ", ("rate ", "bold"),
                           f"{m.rate:.1f}/s   ", ("ETA ", "bold"), fmt_seconds(m.eta)),
             Text.assemble(("tokens ", "bold"), f"{tokens:,}   ", ("cached calls ", "bold"),
                           f"{info.get('cached', 0)}   ", ("cost ", "bold"), cost)]
    rejects = info.get("rejects") or {}
    lines.append(Text.assemble(("rejects ", "bold"), ", ".join(
        f"{k} {v}" for k, v in sorted(rejects.items(), key=lambda kv: -kv[1])) or "none"))
    return Text("\n").join(lines)


class GenerateScreen(_Loading, Screen):
    """Choose a teacher, tasks and limits; watch the run; cancel keeps what was done."""

    BINDINGS = [Binding("s", "start", "Start"), Binding("c", "cancel", "Cancel"),
                Binding("b", "app.switch_mode('samples')", "Samples"),
                Binding("escape", "leave_box", "Leave box", show=False)]
    AUTO_FOCUS = "#gen-start"

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.meter = Meter()
        self.price: float | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="gen-form", classes="panel"):
            with Horizontal(classes="form-row"):
                yield from field_widgets(GenerateConfig, "gen", "teacher")
                yield from field_widgets(GenerateConfig, "gen", "tasks")
            with Horizontal(classes="form-row"):
                yield from field_widgets(GenerateConfig, "gen", "per_chunk", "per chunk")
                yield from field_widgets(GenerateConfig, "gen", "limit", placeholder="all chunks")
                yield from field_widgets(GenerateConfig, "gen", "price_per_1k", "$ / 1k tok",
                                         placeholder="for the cost")
            with Horizontal(classes="form-row buttons"):
                yield Button("Start", id="gen-start", variant="success", compact=True)
                yield Button("Cancel", id="gen-cancel", variant="error", disabled=True,
                             compact=True)
        # a total from the start: a bar without one animates, and nothing runs yet
        yield ProgressBar(id="gen-bar", total=1, show_eta=False, classes="idle")
        yield Static("Not started.", id="gen-stats", classes="panel")
        yield RichLog(id="gen-log", max_lines=200, markup=False, wrap=True)
        yield footer()

    @on(Button.Pressed, "#gen-start")
    def action_start(self) -> None:
        if self.running:
            self.notify("a generation is already running", severity="warning")
            return
        try:
            cfg = form_config(self, GenerateConfig, "gen", FORM)
        except Exception as e:  # a ConfigError names the bad field
            self.notify(str(e), title="cannot start", severity="error", markup=False)
            return
        self.price = cfg.price_per_1k
        self.stop.clear()
        self.meter = Meter()
        self._set_running(True)
        self.query_one("#gen-stats", Static).update("starting ...")
        bar = self.query_one("#gen-bar", ProgressBar)
        bar.remove_class("idle")
        bar.update(total=None, progress=0)  # working, its size unknown until Started
        self.query_one("#gen-log", RichLog).clear()
        self.run_generate(cfg)

    @on(Button.Pressed, "#gen-cancel")
    def action_cancel(self) -> None:
        if self.running:
            self.stop.set()  # the core stops after the job in hand and keeps the rows done
            self.query_one("#gen-cancel", Button).disabled = True
            self.notify("cancelling: the rows done so far are kept")

    def on_unmount(self) -> None:
        self.stop.set()  # quitting mid-run ends it the way Cancel / Stop does: what was done is kept

    def action_leave_box(self) -> None:
        self.query_one("#gen-start", Button).focus()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#gen-start", Button).disabled = running
        self.query_one("#gen-cancel", Button).disabled = not running

    @work(thread=True, exclusive=True, group="generate")
    def run_generate(self, cfg: Any) -> None:
        # importing the stage takes a while: in the worker, never on the UI thread
        run_stage(self, "generate", lambda emit: run_generation(
            self._ws(), cfg, emit, self.stop.is_set))

    @guarded
    def on_stage_event(self, msg: StageEvent) -> None:
        from loop.events import Progress, Started, Warned

        ev = msg.event
        if isinstance(ev, Started | Progress):
            self.meter.feed(ev)
            bar = self.query_one("#gen-bar", ProgressBar)
            bar.update(total=self.meter.total, progress=self.meter.done)
            self.query_one("#gen-stats", Static).update(progress_text(self.meter, self.price))
        elif isinstance(ev, Warned):
            self.query_one("#gen-log", RichLog).write(ev.message)

    @guarded
    def on_job_done(self, msg: JobDone) -> None:
        self._set_running(False)
        # the bar stops where the run stopped (an indeterminate one would animate on)
        total = self.meter.total or 1
        self.query_one("#gen-bar", ProgressBar).update(
            total=total, progress=total if msg.error is None and not msg.result.cancelled else self.meter.done)
        if msg.error:
            self.query_one("#gen-stats", Static).update(Text(f"failed: {msg.error}", style="red"))
            self.query_one("#gen-log", RichLog).write(f"failed: {msg.error}")
            self.notify(msg.error, title="generation failed", severity="error", markup=False)
            return
        r = msg.result
        state = ("cancelled, kept" if r.cancelled else "cached" if r.cached else "written")
        line = (f"dataset {r.dataset_id} {state}: {r.samples} samples ({r.train} train, {r.val} val)")
        self.query_one("#gen-log", RichLog).write(line)
        self.notify(line, title="generation", markup=False)
        if r.failed_chunks:  # each one's reason was logged as a warning while it ran
            retry = (f"{len(r.failed_chunks)} jobs failed: their rows are missing. Start again "
                     "to retry them; the jobs that worked come back from the cache")
            self.query_one("#gen-log", RichLog).write(retry)
            self.notify(retry, title="generation", severity="warning", markup=False)
