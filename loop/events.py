"""Typed progress events: core stages emit them, the CLI and the TUI render them.

A stage takes an ``emit`` callable (an :data:`EventSink`) and never prints. The CLI turns
events into rich progress bars (``loop.render``); the dashboard turns them into Textual
messages. Both consume the same four event types.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    stage: str
    at: float = field(default_factory=time.time, kw_only=True)


@dataclass(frozen=True)
class Started(Event):
    """A stage (or a sub-step of one) begins; ``total`` is None when unknown."""

    total: int | None = None
    unit: str = "items"
    message: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """``done`` of ``total`` units finished; ``info`` carries stage-specific live figures."""

    done: int = 0
    total: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Warned(Event):
    """Something was skipped or degraded; ``path`` names the input when there is one."""

    message: str = ""
    path: str | None = None


@dataclass(frozen=True)
class Finished(Event):
    """A stage ended; ``summary`` is what its ``--json`` output reports."""

    summary: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def null_sink(event: Event) -> None:
    """The default sink: drop every event."""


class Collector:
    """A sink that keeps every event, for tests and for replaying a stage's history."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]
