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
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

from loop.errors import SynthloopError
from loop.workspace import DEFAULT_WORKSPACE

console = Console(stderr=True)

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


def field_help(model: type[BaseModel], name: str) -> str:
    """A flag's help is the config field's description: written once, in the config class."""
    f = model.model_fields[name]
    return f"{f.description} [default: {f.default}]"


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
        # escape(): a message may hold [brackets] (paths, torch errors) that rich would eat
        console.print(f"[red]{e.title}:[/] {escape(str(e))}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: finished work is kept; re-run the command to continue")
        raise typer.Exit(130) from None
    except sqlite3.Error as e:  # the ledger, written outside a transaction (a full disk)
        msg = f"cannot write the ledger: {e} (is the disk full?)"
        if as_json:
            emit_json({"error": msg, "kind": "workspace error"})
        console.print(f"[red]workspace error:[/] {escape(msg)}", highlight=False)
        raise typer.Exit(1) from None
    except OSError as e:  # a full disk, a vanished folder: say what and where, no traceback
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        msg = f"{e.strerror or e}{where}"
        if as_json:
            emit_json({"error": msg, "kind": "os error"})
        console.print(f"[red]error:[/] {escape(msg)}", highlight=False)
        raise typer.Exit(1) from None
