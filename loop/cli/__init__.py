"""The ``synthloop`` command: one verb per pipeline stage."""

from __future__ import annotations

import os

# progress is ours to report: the libraries' own bars are off before any of them is imported
# (loop.render.quiet_library_bars tells one already imported)
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import typer

from loop import __version__
from loop.cli.helptext import MAX_WIDTH, use_plain_help

app = typer.Typer(
    name="synthloop",
    help="Fine-tune, RAG, or both? Build synthetic data from your documents and score "
    "base, rag, tuned and combined side by side.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # help and usage errors as plain text (loop.cli.helptext): no name cut, no markup eaten
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": MAX_WIDTH},
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


# Each verb's module registers it on ``app``; ``--help`` lists them in this (the loop's) order.
VERB_MODULES = ("ingest", "import_", "generate", "index", "search", "retrieval_eval", "train", "eval", "ask",
                "run", "export")


def _register() -> None:
    import importlib

    for name in VERB_MODULES:
        importlib.import_module(f"loop.cli.{name}")

    # Verbs from outside loop/ (the dashboard, plugins) join through an entry-point group:
    # loop never imports them by name.
    import sys
    from importlib.metadata import entry_points

    for ep in entry_points(group="synthloop.verbs"):
        module = sys.modules.get(ep.module)
        if module is not None and not hasattr(module, ep.attr):
            continue  # that module is importing loop.cli right now (its own entry: it runs alone)
        ep.load()(app)
    use_plain_help(app)


def main() -> None:
    """Entry point of the ``synthloop`` script."""
    app()


_register()
