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
    from loop.cli.common import verb
    from loop.plugins import load_plugins

    with verb(False):  # a plugin that cannot load is one line, before any verb runs
        load_plugins()


# Each verb's module registers it on ``app``; ``--help`` lists them in this (the loop's) order.
VERB_MODULES = ("ingest", "import_", "generate", "index", "search", "retrieval_eval", "train", "eval", "ask",
                "run", "export", "plugins")


def _verb_names() -> list[str]:
    return [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands] + [
        g.name for g in app.registered_groups if g.name]


def _register() -> None:
    import importlib

    for name in VERB_MODULES:
        importlib.import_module(f"loop.cli.{name}")

    # Verbs from outside loop/ (the dashboard, plugins) join through the plugin mechanism's
    # "verb" kind (entry-point group synthloop.verbs): loop never imports them by name.
    from loop import plugins

    plugins.register_kind(plugins.Kind("verb", "synthloop.verbs", _verb_names,
                                       lambda name, add: add(app)))
    plugins.load_group("verb")
    use_plain_help(app)


def main() -> None:
    """Entry point of the ``synthloop`` script."""
    app()


_register()
