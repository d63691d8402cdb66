"""Messages, loading and error handling every dashboard screen shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.message import Message
from textual.worker import get_current_worker

# -- messages --------------------------------------------------------------------------------


@dataclass
class Loaded(Message, bubble=False):
    """A loader finished: ``what`` names it, ``value`` is what it returned."""

    what: str
    value: Any


@dataclass
class LoadFailed(Message, bubble=False):
    what: str
    error: str


def guarded(fn: Callable) -> Callable:
    """A handler whose failure becomes an error notification, not a traceback on screen."""

    @functools.wraps(fn)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
        try:
            return fn(self, *args, **kwargs)
        except Exception as e:  # noqa: BLE001
            self.app.notify(f"{type(e).__name__}: {e}", title="dashboard error", severity="error")
            return None

    return wrapper


class _Loading:
    """Mixin of screens that read the workspace in a thread worker."""

    def _ws(self) -> Path:
        return self.app.ws_path  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="load")
    def load(self, what: str, fn, *args: Any) -> None:  # noqa: ANN001
        worker = get_current_worker()
        try:
            value = fn(*args)
        except Exception as e:  # noqa: BLE001 - shown as a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed(what, f"{type(e).__name__}: {e}" if not str(e) else str(e)))  # type: ignore[attr-defined]
            return
        if not worker.is_cancelled:
            self.post_message(Loaded(what, value))  # type: ignore[attr-defined]

    def on_load_failed(self, msg: LoadFailed) -> None:
        self.app.notify(f"{msg.what}: {msg.error}", title="could not load", severity="error")  # type: ignore[attr-defined]


# -- overview --------------------------------------------------------------------------------
