"""What every verb shares: --workspace, --json, --config, error handling and output."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from loop.errors import SynthloopError
from loop.workspace import DEFAULT_WORKSPACE


class _Printable(Console):
    """Every segment it renders passes ``loop.terminal.printable``: outside text (a
    document's ``ESC[2J``, a server's OSC sequence) reaches the terminal as visible escapes,
    never as control codes."""

    def render(self, renderable: Any, options: Any = None) -> Any:  # type: ignore[override]
        from loop.terminal import printable_segments

        return printable_segments(super().render(renderable, options))


class _Console(_Printable):
    """Wraps long lines on a terminal; to a pipe or a file it never does: a script greps a
    message whole (a path or a pid split at column 80 is not found)."""

    @property
    def soft_wrap(self) -> bool:  # type: ignore[override]
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value


console = _Console(stderr=True)
stdout_console = _Printable()  # a verb's own output on stdout (search hits, answers, tables)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", envvar="SYNTHLOOP_WORKSPACE",
                 help="Workspace folder (ledger and artefacts).", show_default=True),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object on stdout (progress stays on stderr).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML file with a [section] per stage; flags override it.",
                 exists=False, dir_okay=False),
]
DEFAULT_WS = Path(DEFAULT_WORKSPACE)


def say(*parts: str | tuple[str, str], end: str = "\n") -> None:
    """One line on stderr. A ``(words, style)`` pair is ours and styled; a plain string is
    printed as it is, never read as markup: paths, notes, hints and messages hold outside
    text (a document's ``[draft]``, a server's ``[/b]``) that rich would drop or fail on."""
    console.print(Text.assemble(*parts), end=end, highlight=False)


@contextmanager
def stage_sink() -> Iterator[Any]:
    """Progress on stderr for one stage's events (bars on a terminal, plain timed lines in
    a log), closed however the stage ends."""
    from loop.render import sink_for

    sink = sink_for(console)
    try:
        yield sink
    finally:
        sink.close()


def emit_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def verb(as_json: bool) -> Iterator[None]:
    """Turn domain errors into one line (or a JSON error object) and exit code 1."""
    try:
        yield
    except SynthloopError as e:
        if as_json:
            emit_json({"error": str(e), "kind": e.title})
        # a message may hold [brackets] (paths, torch errors) that rich would eat
        say((f"{e.title}:", "red"), " ", str(e))
        raise typer.Exit(getattr(e, "exit_code", 1)) from None
    except KeyboardInterrupt:
        say(("interrupted", "red"), ": finished work is kept; re-run the command to continue")
        raise typer.Exit(130) from None
    except sqlite3.Error as e:  # the ledger, written outside a transaction (a full disk)
        msg = f"cannot write the ledger: {e} (is the disk full?)"
        if as_json:
            emit_json({"error": msg, "kind": "workspace error"})
        say(("workspace error:", "red"), " ", msg)
        raise typer.Exit(1) from None
    except OSError as e:  # a full disk, a vanished folder: say what and where, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        msg = f"{e.strerror or e}{where}"
        if as_json:
            emit_json({"error": msg, "kind": "os error"})
        say(("error:", "red"), " ", msg)
        raise typer.Exit(1) from None


def weights_text(weights: dict[str, float]) -> str:
    """Source weights as a user wrote them: ``notices/*=3, *council*=2``."""
    return ", ".join(f"{glob}={w:g}" for glob, w in weights.items())
