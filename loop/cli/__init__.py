"""The ``synthloop`` command: one verb per pipeline stage."""

from __future__ import annotations

import typer

from loop import __version__

app = typer.Typer(
    name="synthloop",
    help="Fine-tune, RAG, or both? Build synthetic data from your documents and score "
    "base, rag, tuned and combined side by side.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"synthloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Fine-tune, RAG, or both? Scored side by side on your own documents."""


def _register() -> None:
    # Each verb lives in its own module and registers itself on ``app``.
    from loop.cli import (  # noqa: F401
        dashboard,
        export,
        generate,
        index,
        ingest,
        retrieval_eval,
        run,
        score,
        search,
        train,
    )


def main() -> None:
    """Entry point of the ``synthloop`` script."""
    app()


_register()
