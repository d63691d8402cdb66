"""Train: method and key settings; live loss and validation loss, tokens/s, ETA; Stop.

``loop.train.train`` runs in a thread worker with a ``StopTraining`` callback: Stop saves a
checkpoint at the end of the current step and ends the run without a model artefact;
training again with the same settings resumes from that checkpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Static
from textual_plotext import PlotextPlot

from loop.stages import RunConfig
from tui import data as D
from tui.base import (
    ActiveRuns,
    JobDone,
    Loaded,
    Meter,
    RunWatch,
    StageEvent,
    _Loading,
    fmt_seconds,
    footer,
    guarded,
    run_stage,
)
from tui.forms import field_widgets, form_config

# TrainConfig's fields on the form (the rest: the config file, or the CLI's flags)
FORM = ["student", "method", "max_steps", "epochs", "lr", "batch_size", "eval_steps",
        "memory_budget", "with_context", "sweep"]

TrainConfig = RunConfig.section_model("train")  # the [train] section: flags, file and form alike


@dataclass
class Stopped:
    """A run ended by Stop: where its checkpoint is."""

    step: int
    checkpoint: str


def run_training(ws_path: Path, cfg: Any, emit: Any, stop: threading.Event) -> Any:
    """In the worker: importing the trainer takes seconds, never on the UI thread."""
    from loop.train import train
    from loop.train.stop import StopTraining, TrainingStopped
    from loop.workspace import Workspace

    with Workspace(ws_path, create=False) as ws:
        try:
            if cfg.sweep:  # every setting trained in turn; Stop ends the one running
                from loop.train.sweep import sweep

                return sweep(ws, cfg, emit, callbacks=[StopTraining(stop)])
            return train(ws, cfg, emit, callbacks=[StopTraining(stop)])
        except TrainingStopped as e:
            return Stopped(e.step, e.checkpoint)


class Curves:
    """Train and validation loss points from the train stage's Progress events."""

    def __init__(self) -> None:
        self.train: list[tuple[int, float]] = []
        self.val: list[tuple[int, float]] = []

    def feed(self, info: dict[str, Any]) -> bool:
        step, changed = info.get("step"), False
        for name, points in (("loss", self.train), ("val_loss", self.val)):
            v = info.get(name)
            if v is not None and step is not None and (not points or points[-1][1] != v):
                points.append((int(step), float(v)))
                changed = True
        return changed


class TrainScreen(RunWatch, _Loading, Screen):
    """Fine-tune the student on the current dataset and watch the loss."""

    BINDINGS = [Binding("s", "start", "Start"), Binding("c", "stop", "Stop"),
                Binding("escape", "leave_box", "Leave box", show=False)]
    AUTO_FOCUS = "#train-start"

    def __init__(self) -> None:
        super().__init__()
        self.stop = threading.Event()
        self.meter = Meter()
        self.curves = Curves()
        self.running = False
        self.elsewhere: list[dict[str, Any]] = []  # training runs this screen did not start

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="train-form", classes="panel"):
            with Horizontal(classes="form-row"):
                yield from field_widgets(TrainConfig, "train", "student")
                yield from field_widgets(TrainConfig, "train", "method")
                yield from field_widgets(TrainConfig, "train", "memory_budget", "memory")
            with Horizontal(classes="form-row"):
                yield from field_widgets(TrainConfig, "train", "max_steps", "max steps")
                yield from field_widgets(TrainConfig, "train", "epochs")
                yield from field_widgets(TrainConfig, "train", "lr")
                yield from field_widgets(TrainConfig, "train", "batch_size", "batch")
                yield from field_widgets(TrainConfig, "train", "eval_steps", "eval every")
            with Horizontal(classes="form-row"):
                yield from field_widgets(TrainConfig, "train", "sweep",
                                         placeholder="optional: lr=1e-4,3e-4 lora_r=8,16")
            with Horizontal(classes="form-row buttons"):
                yield Button("Start", id="train-start", variant="success", compact=True)
                yield Button("Stop", id="train-stop", variant="error", disabled=True, compact=True)
                yield from field_widgets(TrainConfig, "train", "with_context",
                                         "with context (combined)")
        yield Static("Not started.", id="train-stats", classes="panel")
        yield PlotextPlot(id="train-plot")
        yield footer()

    def on_mount(self) -> None:
        self.load("train-defaults", D.train_defaults, self._ws())
        self._draw()
        self.poll_runs()
        self.watch_runs()

    @guarded
    def on_active_runs(self, msg: ActiveRuns) -> None:
        """A training started elsewhere (the CLI, another dashboard) shows as running, and
        Start waits for it: the workspace has one writer at a time."""
        if self.running:  # this screen's own run: its events tell more
            return
        rows = [r for r in msg.rows if r["stage"] == "train"]
        if rows == self.elsewhere:
            return
        stats = self.query_one("#train-stats", Static)
        if rows:
            stats.update(Text.assemble(("running", "bold yellow"), " in this workspace: ",
                                       "; ".join(D.run_line(r) for r in rows),
                                       ("\nits loss is in its own log; Start waits for it", "dim")))
        elif self.elsewhere:
            stats.update(Text(f"training run {self.elsewhere[0]['id']} ended: the Runs screen (3) "
                              "has its result", style="dim"))
        self.elsewhere = rows
        self.query_one("#train-start", Button).disabled = bool(rows)

    @guarded
    def on_loaded(self, msg: Loaded) -> None:
        if msg.what == "train-defaults":  # the workspace's last student, over the config default
            self.query_one("#train-student", Input).value = msg.value.get("student", "")

    @on(Button.Pressed, "#train-start")
    def action_start(self) -> None:
        if self.running:
            self.notify("training is already running", severity="warning")
            return
        try:
            cfg = form_config(self, TrainConfig, "train", FORM)
        except Exception as e:  # a ConfigError names the bad field
            self.notify(str(e), title="cannot start", severity="error", markup=False)
            return
        self.stop, self.meter, self.curves = threading.Event(), Meter(), Curves()
        self._set_running(True)
        self.query_one("#train-stats", Static).update("loading the student ...")
        self._draw()
        self.run_train(cfg, self.stop)

    @on(Button.Pressed, "#train-stop")
    def action_stop(self) -> None:
        if self.running:
            self.stop.set()
            self.query_one("#train-stop", Button).disabled = True
            self.notify("stopping after this step: the checkpoint is kept")

    def on_unmount(self) -> None:
        self.stop.set()  # quitting mid-run ends it the way Cancel / Stop does: what was done is kept

    def action_leave_box(self) -> None:
        self.query_one("#train-start", Button).focus()

    def _set_running(self, running: bool) -> None:
        self.running = running
        self.query_one("#train-start", Button).disabled = running
        self.query_one("#train-stop", Button).disabled = not running

    @work(thread=True, exclusive=True, group="train")
    def run_train(self, cfg: Any, stop: threading.Event) -> None:
        run_stage(self, "train", lambda emit: run_training(self._ws(), cfg, emit, stop))

    @guarded
    def on_stage_event(self, msg: StageEvent) -> None:
        from loop.events import Progress, Started, Warned

        ev = msg.event
        if isinstance(ev, Warned):
            self.notify(ev.message, title="train", severity="warning", markup=False)
        if not isinstance(ev, Started | Progress) or ev.stage != "train":
            return
        if isinstance(ev, Started):  # a sweep trains one setting after another: fresh curves
            self.curves = Curves()
        self.meter.feed(ev)
        if isinstance(ev, Progress):
            if self.curves.feed(ev.info):
                self._draw()
            self.query_one("#train-stats", Static).update(self._stats(ev.info))

    def _stats(self, info: dict[str, Any]) -> Text:
        def fig(name: str) -> str:
            v = info.get(name)
            return f"{v:.4f}" if isinstance(v, float) else str(v) if v is not None else "-"

        total = self.meter.total if self.meter.total is not None else "?"
        return Text.assemble(("step ", "bold"), f"{self.meter.done}/{total}   ", ("loss ", "bold"),
                             fig("loss"), "   ", ("val loss ", "bold"), fig("val_loss"), "   ",
                             ("tok/s ", "bold"), str(info.get("tok/s", "-")), "   ", ("ETA ", "bold"),
                             fmt_seconds(info.get("eta_s")))

    def _draw(self) -> None:
        widget = self.query_one("#train-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.title("loss")
        plt.xlabel("step")
        for points, label in ((self.curves.train, "train"), (self.curves.val, "validation")):
            if points:
                plt.plot([p[0] for p in points], [p[1] for p in points], label=label, marker="braille")
        widget.refresh()

    @guarded
    def on_job_done(self, msg: JobDone) -> None:
        self._set_running(False)
        if msg.error:
            self.query_one("#train-stats", Static).update(Text(f"failed: {msg.error}", style="red"))
            self.notify(msg.error, title="training failed", severity="error", markup=False)
            return
        r = msg.result
        if isinstance(r, Stopped):
            self.query_one("#train-stats", Static).update(
                Text(f"stopped at step {r.step}; checkpoint kept: {r.checkpoint}", style="yellow"))
            self.notify(f"stopped at step {r.step}; checkpoint kept: {r.checkpoint}. Start again "
                        "with the same settings to resume.", title="training stopped", markup=False)
            return
        if hasattr(r, "best"):  # a sweep
            self.notify(f"sweep: model {r.best.model_id} chosen, validation loss "
                        f"{r.best.val_loss:.4f}, the lowest of {len(r.settings)} settings",
                        title="training", markup=False)
            return
        state = "cached" if r.cached else "written"
        self.notify(f"model {r.model_id} {state}: {r.kind}, {r.steps} steps, loss "
                    f"{r.loss_last if r.loss_last is not None else '-'}", title="training",
                    markup=False)
