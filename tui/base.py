"""Messages, loading and error handling every dashboard screen shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported; the Footer's own key widget
from textual.worker import get_current_worker

# -- outside text on screen -------------------------------------------------------------------


def printable_terminal(app: Any) -> None:
    """Control characters in what the dashboard draws become visible escapes
    (``loop.terminal.printable``), by the two roads text takes to the screen: Textual's
    ``Content`` (strings and rich ``Text`` in widgets, notifications, tables) drops only
    BEL, BS, VT, FF and CR through one translate table, which gains every other C0/C1
    escape; rich renderables (``RichLog``) go through the app console's ``render``."""
    from textual import content

    from loop.terminal import ESCAPES, printable_segments

    content._CONTROL_STRIP_TRANSLATE.update(ESCAPES)  # the table Content's default argument holds
    console = app.console
    render = console.render
    console.render = lambda renderable, options=None: printable_segments(render(renderable, options))


class DashFooter(Footer):
    """The footer every screen yields (``footer()``): the screen keys 1-9 bare, their names
    their tooltips (in the help and the palette too; the header names the screen shown).
    Not a ``Binding.Group``: with one, Textual 8 left the overview's scoreboard (a table
    filled after mount) undrawn until a resize."""

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:  # one key per action, as Footer
                continue
            seen.add(binding.action)
            bare = binding.action.startswith("switch_mode(")
            yield FooterKey(binding.key, self.app.get_key_display(binding),
                            "" if bare else binding.description, binding.action,
                            disabled=not enabled,
                            tooltip=tooltip or (binding.description if bare else ""),
                            ).data_bind(compact=Footer.compact)


def footer() -> DashFooter:
    """Compact, without the palette's key (``ctrl+p`` is in the help): a screen's keys,
    help, quit and 1-9 fit 80 columns."""
    return DashFooter(compact=True, show_command_palette=False)


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
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as e:
            self.app.notify(f"{type(e).__name__}: {e}", title="dashboard error", severity="error",
                            markup=False)
            return None

    return wrapper


class _Loading:
    """Mixin of screens that read the workspace in a thread worker."""

    def _ws(self) -> Path:
        return self.app.ws_path  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="load")
    def load(self, what: str, fn, *args: Any) -> None:
        worker = get_current_worker()
        try:
            value = fn(*args)
        except Exception as e:  # shown as a notification, never a traceback
            if not worker.is_cancelled:
                self.post_message(LoadFailed(what, f"{type(e).__name__}: {e}" if not str(e) else str(e)))  # type: ignore[attr-defined]
            return
        if not worker.is_cancelled:
            self.post_message(Loaded(what, value))  # type: ignore[attr-defined]

    def _reload_on_return(self) -> None:
        """Call from ``on_screen_resume``: reload when the screen is shown again (another
        screen may have changed the workspace); the first showing is ``on_mount``'s."""
        if getattr(self, "_shown_once", False):
            self.action_refresh()  # type: ignore[attr-defined]
        self._shown_once = True

    def on_load_failed(self, msg: LoadFailed) -> None:
        # an error is outside text (a path, a server's body): shown as it is, never as markup
        self.app.notify(f"{msg.what}: {msg.error}", title="could not load", severity="error",  # type: ignore[attr-defined]
                        markup=False)


@dataclass
class ActiveRuns(Message, bubble=False):
    """The runs going on in the workspace (``tui.data.active_runs``), read by a poll."""

    rows: list[dict[str, Any]]


class RunWatch:
    """Mixin of screens that show what runs in the workspace, whoever started it (a CLI
    training holds no worker here, but its ledger row says running): ``watch_runs()`` from
    ``on_mount`` reads ``tui.data.active_runs`` every ``POLL_S`` seconds while the screen
    is shown; each reading arrives as ``ActiveRuns(rows)``."""

    POLL_S = 2.0

    def watch_runs(self) -> None:
        self.set_interval(self.POLL_S, self._poll_runs)  # type: ignore[attr-defined]

    def _poll_runs(self) -> None:
        # a reading still under way (a slow disk, a busy machine) is left to finish: the next
        # tick skips rather than cancelling it, so waiting for workers never meets a cancel
        busy = any(w.group == "active-runs" and not w.is_finished
                   for w in self.app.workers)  # type: ignore[attr-defined]
        if self.is_current and not busy:  # type: ignore[attr-defined]
            self.poll_runs()

    @work(thread=True, group="active-runs")
    def poll_runs(self) -> None:
        from tui.data import active_runs

        worker = get_current_worker()
        try:
            rows = active_runs(self.app.ws_path)  # type: ignore[attr-defined]
        except Exception:  # a missing workspace is the screen's own load's to say
            return
        if not worker.is_cancelled:
            self.post_message(ActiveRuns(rows))  # type: ignore[attr-defined]


class _View(_Loading):
    """A screen showing one view of the workspace: loaded when first shown, again each time
    it is shown again, and on ``r``. ``VIEW`` is ``(what, loader)``: ``loader(ws_path)`` runs
    in a worker and its result arrives as ``Loaded(what, ...)``."""

    VIEW: tuple[str, Callable[[Path], Any]]

    def on_mount(self) -> None:
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self._reload_on_return()

    def action_refresh(self) -> None:
        what, loader = self.VIEW
        self.load(what, loader, self._ws())


# -- long work: a core stage in a thread worker, its events as messages ----------------------


@dataclass
class StageEvent(Message, bubble=False):
    """A ``loop.events`` event from a stage running in a worker; ``job`` names the worker."""

    job: str
    event: Any


@dataclass
class JobDone(Message, bubble=False):
    """A worker's stage returned (``result``) or failed (``error``, one line)."""

    job: str
    result: Any = None
    error: str | None = None


def reason(e: BaseException) -> str:
    return str(e) if str(e) else type(e).__name__


def run_stage(screen: Any, job: str, fn: Callable[[Callable], Any]) -> None:
    """Call ``fn(emit)`` in the current thread worker and post its events and end as
    messages to ``screen``; nothing is posted once the worker is cancelled."""
    worker = get_current_worker()

    def emit(event: Any) -> None:
        if not worker.is_cancelled:
            screen.post_message(StageEvent(job, event))

    try:
        result = fn(emit)
    except Exception as e:  # shown as a notification, never a traceback
        if not worker.is_cancelled:
            screen.post_message(JobDone(job, error=reason(e)))
        return
    if not worker.is_cancelled:
        screen.post_message(JobDone(job, result=result))


class Meter:
    """Rate and ETA of a stage from its Started/Progress events (plain data, no Textual)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.last: float | None = None
        self.done, self.total, self.info = 0, None, {}

    def feed(self, event: Any) -> None:
        from loop.events import Progress, Started

        if isinstance(event, Started):
            self.t0, self.done, self.total, self.info = event.at, 0, event.total, {}
        elif isinstance(event, Progress):
            self.t0 = self.t0 or event.at
            self.done, self.total = event.done, event.total
            self.info = dict(event.info)
            self.last = event.at

    @property
    def rate(self) -> float:
        elapsed = (self.last or 0) - (self.t0 or 0) if self.last else 0
        return self.done / elapsed if elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.total or not self.rate:
            return None
        return max(self.total - self.done, 0) / self.rate


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
