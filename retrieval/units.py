"""Small-to-big: chunks are split into sentence units for matching, and a hit returns a
window of words around its matched unit, cut from the chunk's whole document.

Scoring short units sharpens ranking (a question usually paraphrases one sentence), while
the window gives the reader the context the budget allows.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A sentence ends at terminal punctuation (closing quotes/brackets included) or a newline.
_SENT_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n\s*")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Unit:
    chunk: int  # row of the parent chunk
    start: int  # offsets in the parent's document
    end: int


def sentence_spans(text: str, min_words: int, max_words: int) -> list[tuple[int, int]]:
    """Sentence spans of ``text``. A sentence shorter than ``min_words`` (a citation, a figure
    label, a terse line) joins its neighbour, so a run of them becomes one unit; any unit
    longer than ``max_words`` is then cut into equal parts."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        if m.start() > start:
            spans.append((start, m.start() + len(m.group().rstrip())))
        start = m.end()
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return _cut_long(text, _merge_short(text, spans, min_words), max_words)


def _words(text: str, span: tuple[int, int]) -> int:
    return len(text[span[0] : span[1]].split())


def _merge_short(text: str, spans: list[tuple[int, int]], min_words: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for span in spans:
        if out and (_words(text, out[-1]) < min_words or _words(text, span) < min_words):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    return out


def _cut_long(text: str, spans: list[tuple[int, int]], max_words: int) -> list[tuple[int, int]]:
    out = []
    for a, b in spans:
        words = [m.span() for m in _WORD.finditer(text, a, b)]
        parts = max(1, -(-len(words) // max_words))  # equal parts, no stub at the end
        size = -(-len(words) // parts)
        for i in range(0, len(words), size):
            out.append((words[i][0], words[min(i + size, len(words)) - 1][1]))
    return out


def make_units(chunks: Sequence[dict], min_words: int, max_words: int) -> list[Unit]:
    """Every chunk's sentence units, in chunk order, with document offsets."""
    units = []
    for row, c in enumerate(chunks):
        for a, b in sentence_spans(c["text"], min_words, max_words):
            units.append(Unit(row, c["start"] + a, c["start"] + b))
    return units


def documents(chunks: Iterable[dict]) -> dict[str, str]:
    """Each document's text, stitched from its chunks' spans (gaps become spaces)."""
    parts: dict[str, list[dict]] = {}
    for c in chunks:
        parts.setdefault(c["doc_id"], []).append(c)
    out = {}
    for doc_id, cs in parts.items():
        buf = [" "] * max(c["end"] for c in cs)
        for c in cs:
            buf[c["start"] : c["end"]] = c["text"]
        out[doc_id] = "".join(buf)
    return out


class Windows:
    """Cuts a window of about ``size`` words around a span of a document."""

    def __init__(self, docs: dict[str, str]) -> None:
        self.docs = docs
        self._starts: dict[str, list[int]] = {}
        self._ends: dict[str, list[int]] = {}

    def _index(self, doc_id: str) -> tuple[list[int], list[int]]:
        if doc_id not in self._starts:
            spans = [m.span() for m in _WORD.finditer(self.docs[doc_id])]
            self._starts[doc_id] = [s for s, _ in spans]
            self._ends[doc_id] = [e for _, e in spans]
        return self._starts[doc_id], self._ends[doc_id]

    def around(self, doc_id: str, start: int, end: int, size: int,
               taken: Sequence[tuple[int, int]] = (),
               weights: Sequence[tuple[int, int, float]] = ()) -> tuple[int, int]:
        """Character span of a ``size``-word window holding ``[start, end)``.

        ``taken`` are character spans of this document already returned: the window does
        not grow into them, and takes the words it cannot have on one side from the other,
        so windows from the same document hold distinct text.

        ``weights`` are other matched spans of the document with their scores: of the
        windows that hold the unit, the one holding the most score is cut (ties: the one
        nearest the centred window), so a window around one match also covers the matches
        next to it. Without weights the window is centred on the unit.
        """
        starts, ends = self._index(doc_id)
        if not starts:
            return start, end
        i = max(bisect.bisect_right(starts, start) - 1, 0)
        j = max(bisect.bisect_left(starts, end), i + 1)
        floor, ceil = 0, len(starts)
        for a, b in taken:  # the free run of words around the unit (which it keeps)
            if a < starts[i]:
                floor = max(floor, min(bisect.bisect_left(starts, b), i))
            elif b > ends[j - 1]:
                ceil = min(ceil, max(bisect.bisect_left(starts, a), j))
        spare = max(size - (j - i), 0)
        lo = max(floor, i - spare // 2)
        hi = min(ceil, j + spare - (i - lo))
        lo = max(floor, min(lo, hi - max(size, j - i)))
        if weights and hi - lo > j - i:
            lo, hi = self._best_placement(starts, lo, hi, i, j, floor, ceil, weights)
        return starts[lo], ends[hi - 1]

    @staticmethod
    def _best_placement(starts: list[int], lo: int, hi: int, i: int, j: int, floor: int,
                        ceil: int, weights: Sequence[tuple[int, int, float]]) -> tuple[int, int]:
        """Slide the window ``[lo, hi)`` (words) over the positions that still hold the unit
        ``[i, j)`` and stay in ``[floor, ceil)``; keep the one holding most weight."""
        length = hi - lo
        first, last = max(floor, j - length), min(i, ceil - length)
        spans = [(max(bisect.bisect_right(starts, a) - 1, 0), bisect.bisect_left(starts, b), w)
                 for a, b, w in weights]
        # The sum only changes where a span's edge meets the window's: try those positions.
        tries = {lo, first, last}
        for a, b, _ in spans:
            tries.update((a, b - length))
        best = (float("-inf"), 0, lo)
        for t in sorted(x for x in tries if first <= x <= last):
            held = sum(w for a, b, w in spans if a >= t and b <= t + length)
            best = max(best, (held, -abs(t - lo), t))
        return best[2], best[2] + length
