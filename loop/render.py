"""Render core events on a terminal: rich progress bars with rate and ETA, warnings as lines."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from loop import events as ev
from loop.terminal import printable


class RichSink:
    """An EventSink that draws one progress bar per running stage on stderr."""

    def __init__(self, console: Console | None = None, *, max_warnings: int = 20) -> None:
        self.console = console or Console(stderr=True)
        self.max_warnings = max_warnings
        self.warnings = 0
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            self._start(event)
        elif isinstance(event, ev.Progress) and event.stage in self.tasks:
            assert self.progress is not None
            extra = printable("  ".join(f"{k} {v}" for k, v in event.info.items()))
            self.progress.update(self.tasks[event.stage], completed=event.done,
                                 total=event.total, extra=extra)
        elif isinstance(event, ev.Warned):
            self._warn(event)
        elif isinstance(event, ev.Finished):
            self._finish(event.stage)

    def _start(self, event: ev.Started) -> None:
        if self.progress is None:
            self.progress = Progress(*_columns(event.unit), console=self.console, transient=False)
            self.progress.start()
        self.tasks[event.stage] = self.progress.add_task(
            printable(f"{event.stage} {event.message}".strip()), total=event.total, extra=""
        )

    def _warn(self, event: ev.Warned) -> None:
        self.warnings += 1
        if self.warnings <= self.max_warnings:
            where = f"{event.path}: " if event.path else ""
            # paths and messages hold outside text (server bodies, file names): never markup,
            # never control codes (whatever console this sink was given)
            self.console.print(Text.assemble(("warning", "yellow"), " ",
                                             printable(where + event.message)), highlight=False)
        elif self.warnings == self.max_warnings + 1:
            self.console.print(Text.assemble(("warning", "yellow"),
                                             " ... more warnings in the --json summary"))

    def _finish(self, stage: str) -> None:
        task = self.tasks.pop(stage, None)
        if self.progress is not None and task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total or 0)
        if self.progress is not None and not self.tasks:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _columns(unit: str) -> list:
    counter = [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    # A description and the extra figures hold outside text (file names, model names):
    # formatted into the column as they are, never read as markup.
    return [
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        *counter,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[extra]}", markup=False),
    ]


class LogSink:
    """An EventSink for stderr sent to a file or a pipe: plain lines, never cut or wrapped.

    A progress bar redrawn in place is unreadable in a log, and a log with nothing in it
    for an hour of training is worse: this writes one line when a stage starts, one per
    ``every`` seconds while it runs (``stage n/N unit, rate/s, ETA``, the stage's own
    figures after), one when it ends, and warnings as they come.
    """

    def __init__(self, stream=None, *, every: float = 30.0, max_warnings: int = 20,
                 clock=None) -> None:
        import sys
        import time

        self.stream = stream or sys.stderr
        self.every = every
        self.max_warnings = max_warnings
        self.warnings = 0
        self.clock = clock or time.monotonic
        self.stages: dict[str, dict] = {}

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.Started):
            now = self.clock()
            self.stages[event.stage] = {"t0": now, "last": now, "unit": event.unit,
                                        "total": event.total, "done": 0, "info": {}}
            total = f" ({event.total} {event.unit})" if event.total else ""
            self._line(f"{event.stage}: started {event.message}".rstrip() + total)
        elif isinstance(event, ev.Progress) and event.stage in self.stages:
            st = self.stages[event.stage]
            st.update(done=event.done, total=event.total or st["total"], info=event.info)
            now = self.clock()
            if now - st["last"] >= self.every:
                st["last"] = now
                self._line(self._status(event.stage, st, now))
        elif isinstance(event, ev.Warned):
            self.warnings += 1
            if self.warnings <= self.max_warnings:
                where = f"{event.path}: " if event.path else ""
                self._line(f"warning {event.stage}: {where}{event.message}")
            elif self.warnings == self.max_warnings + 1:
                self._line("warning ... more warnings in the --json summary")
        elif isinstance(event, ev.Finished):
            st = self.stages.pop(event.stage, None)
            if st is not None:
                self._line(f"{event.stage}: done in {_seconds(self.clock() - st['t0'])}")

    def _status(self, stage: str, st: dict, now: float) -> str:
        done, total, unit = st["done"], st["total"], st["unit"]
        elapsed = max(now - st["t0"], 1e-9)
        parts = [f"{stage}: {done}/{total} {unit}" if total else f"{stage}: {done} {unit}"]
        rate = done / elapsed
        parts.append(f"{rate:.3g} {unit}/s")
        if total and done:
            parts.append(f"ETA {_seconds((total - done) / rate)}")
        parts.append(f"elapsed {_seconds(elapsed)}")
        info = "  ".join(f"{k} {v}" for k, v in st["info"].items())
        return ", ".join(parts) + (f"  {info}" if info else "")

    def _line(self, text: str) -> None:
        self.stream.write(printable(text).replace("\n", " ") + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stages.clear()


def _seconds(s: float) -> str:
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s" if m else f"{sec}s"


def quiet_library_bars() -> None:
    """Silence tqdm, the hub's and transformers' bars. The environment reaches a library
    imported later (tqdm reads TQDM_ defaults, the hub its flag, at import); one already
    imported is told directly (transformers' "Loading weights" bar reads the hub's flag
    once, when transformers is imported)."""
    import os
    import sys

    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging

        logging.disable_progress_bar()


def sink_for(console: Console, *, every: float | None = None):
    """A RichSink on a terminal; a LogSink (plain timed lines) when stderr goes to a file or
    a pipe. ``$SYNTHLOOP_LOG_EVERY`` sets the seconds between lines (default 30). Either
    way, the libraries' own progress bars (tqdm: GGUF conversion, weight loading, datasets)
    are silenced: progress is ours to report."""
    import os

    quiet_library_bars()
    if console.is_terminal:
        return RichSink(console)
    if every is None:
        try:
            every = float(os.environ.get("SYNTHLOOP_LOG_EVERY", "30"))
        except ValueError:
            every = 30.0
    return LogSink(every=every)
