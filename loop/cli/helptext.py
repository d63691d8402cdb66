"""How ``--help`` is laid out: click's plain formatter, not typer's rich tables.

Rich tables cut an option name to fit 80 columns (``--near-dup-thre…``) and read help as
markup (a docstring's ``[generate]`` vanished); click's formatter puts a long name on its own
line and wraps the help beside it, and prints text as written. Panels (``rich_help_panel``)
stay as sections, typer's type hints (``<list[Path]>``) become placeholders (``PATH``), and
lines break between words only, never at a hyphen (``synthloop-`` / ``work``).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from typing import Any

import typer
from typer.core import TyperCommand

# the widest help a wide terminal gets; a narrower one wraps to its own width
MAX_WIDTH = 100

_NAMES = {"str": "TEXT", "int": "INT", "int range": "INT", "float": "FLOAT",
          "float range": "FLOAT", "path": "PATH", "file": "FILE", "directory": "DIR",
          "bool": "BOOL"}


def placeholder(label: str) -> str:
    """Typer's ``<label>`` as a placeholder: ``str`` TEXT, ``list[Path]`` PATH (the option is
    repeatable, an argument's ``...`` says so), ``a|b`` [a|b]."""
    inner = re.fullmatch(r"list\[(.*)\]", label)
    if inner:
        return placeholder(inner[1])
    if "|" in label:
        return f"[{label}]"
    return _NAMES.get(label.lower(), label.upper())


def whole_words(text: str, width: int) -> str:
    """``text`` wrapped to ``width`` at spaces only, each paragraph marked (``\\b``) so that
    click keeps these lines: its own wrap splits ``st:all-MiniLM-L6-v2`` at the hyphen."""
    return "\n\n".join(
        par if par.startswith("\b") else "\b\n" + "\n".join(textwrap.wrap(
            " ".join(par.split()), max(width, 10), break_on_hyphens=False,
            break_long_words=False))
        for par in text.split("\n\n") if par.strip())


class HelpCommand(TyperCommand):
    """A verb whose ``--help`` is click's plain layout, grouped by panel."""

    def format_help_text(self, ctx: Any, formatter: Any) -> None:
        text = inspect.cleandoc(self.help or "").partition("\f")[0]
        if self.deprecated or not text:
            return super().format_help_text(ctx, formatter)
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(whole_words(text, formatter.width - formatter.current_indent))

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            names, text = record
            names = re.sub(r"<([^<>]+)>$", lambda m: placeholder(m[1]), names)
            section = ("Arguments" if param.param_type_name == "argument"
                       else getattr(param, "rich_help_panel", None) or "Options")
            sections.setdefault(section, []).append((names, text))
        for title, rows in sections.items():
            if rows:
                # the help column's width as write_dl will lay it out (col_max 30, spacing 2)
                first = min(max(len(names) for names, _ in rows), 30) + 2
                width = formatter.width - first - 2
                with formatter.section(title):
                    formatter.write_dl([(names, whole_words(text, width))
                                        for names, text in rows])


def use_plain_help(app: typer.Typer) -> None:
    """Every verb registered on ``app`` so far gets :class:`HelpCommand` (unless it chose a
    class of its own; typer fills in its TyperCommand)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = HelpCommand
