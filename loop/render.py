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
