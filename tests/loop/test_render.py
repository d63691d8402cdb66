"""The terminal renderer prints outside text as it is: a server's error body or a file name
can hold square brackets, which rich would read as markup (and drop, or fail on)."""

from __future__ import annotations

import io

from rich.console import Console

from loop import events as ev
from loop.render import RichSink


def test_warnings_print_brackets_as_text():
    out = io.StringIO()
    sink = RichSink(Console(file=out, width=200))
    body = 'qa on c1: TeacherError: HTTP 401 {"auth": "[api key redacted]"} [/b] [bold]'
    sink(ev.Warned("generate", message=body, path="notes/[draft].md"))
    sink.close()
    assert f"warning notes/[draft].md: {body}" in out.getvalue()
