"""Outside text on its way to a terminal: control characters made visible.

Documents, model answers, server bodies and file names can hold terminal control sequences:
``ESC[2J`` clears the screen, ``ESC]0;...BEL`` retitles the window, an OSC 8 hyperlink
hides where it points. rich and Textual drop a few of these (BEL, BS, VT, FF, CR) and pass
ESC through, so the sequences reach the terminal. ``printable`` turns every C0 and C1
control character (DEL included), except newline and tab, into a visible ``\\xNN`` escape.
It is the one function every path to a terminal uses (the CLI's consoles, the progress
bars and warnings, the dashboard); ``--json`` output never goes through it and stays exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

ESCAPES: dict[int, str] = {
    cp: f"\\x{cp:02x}"
    for cp in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
    if cp not in (0x09, 0x0A)  # tab and newline lay text out; they never start a sequence
}


def printable(text: str) -> str:
    """``text`` with its control characters as visible escapes (idempotent: an escape is
    plain characters)."""
    return text.translate(ESCAPES)


def printable_segments(segments: Iterable) -> Iterator:
    """rich Segments with their text made printable. A control segment (a cursor move the
    console made itself) is kept as it is: it never holds outside text."""
    from rich.segment import Segment

    for seg in segments:
        if seg.control or not seg.text:
            yield seg
        else:
            clean = printable(seg.text)
            yield seg if clean == seg.text else Segment(clean, seg.style, seg.control)
