"""Structure-aware chunking: headings, then paragraphs, then sentences, then words.

A chunk is a span ``[start, end)`` of its document's text, so its text is an exact slice
and its id (a hash of document and span) is stable across runs. Packing estimates tokens
from whitespace words (``tokens_per_word``): tokenizing every candidate block would cost
more than the rest of ingestion. Each finished chunk is then counted once with the
embedder's own tokenizer (``IngestConfig.tokenizer``) and one over the budget is split
again, so no chunk reaches the index longer than the embedder's window: text with many
tokens per word (code, reStructuredText, German) is measured, not guessed.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from loop.ingest.config import IngestConfig

_BLOCK_GAP = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# A sentence or line ends at terminal punctuation (with closing quotes) or a newline.
_UNIT_END = re.compile(r"[.!?]+[\"')\]]*\s+|\n\s*")
_WORD = re.compile(r"\S+")
_CUT = re.compile(r"[.!?\n]")  # a literal class: scans far faster than _UNIT_END's alternation
_MD_HEADING = re.compile(r"#{1,6}\s")
_RST_UNDERLINE = re.compile(r"\n([=\-~^\"'`#*+])\1{2,}\s*$")
# At most this many characters count as one token: English runs ~4.6 per token, so prose
# is never affected, but a 50 MB line without a space (base64, minified data) is not
# taken for one word and one chunk.
MAX_CHARS_PER_TOKEN = 16


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def doc_id_for(text: str) -> str:
    """A document's id: the hash of its text, so identical documents share one id."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def chunk_id_for(doc_id: str, start: int, end: int) -> str:
    """A chunk's id: the hash of its document and span (stable across runs)."""
    return hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).hexdigest()[:16]


def is_heading(text: str, start: int = 0, end: int | None = None) -> bool:
    """A Markdown ``#`` heading or an underlined reStructuredText title."""
    end = len(text) if end is None else end
    if _MD_HEADING.match(text, start, end):
        return True
    lines = text.count("\n", start, end)
    return 0 < lines <= 2 and bool(_RST_UNDERLINE.search(text, start, end))


Counter = Callable[[list[str]], list[int]]


@lru_cache(maxsize=4)
def token_counter(name: str) -> Counter | None:
    """Real token counts (special tokens included, as the embedder sees them) from the
    tokenizer of an ``st:`` embedder or a folder holding ``tokenizer.json``; None for ''.

    Only the ``tokenizers`` library is loaded, not the model: ~0.1 s, once per process."""
    if not name:
        return None
    from tokenizers import Tokenizer

    from retrieval.embedders import _resolve_st_path

    rest = name.partition(":")[2] if name.startswith("st:") else name
    path = Path(_resolve_st_path(rest)) / "tokenizer.json"
    if not path.is_file():
        raise ValueError(f"ingest.tokenizer '{name}': no tokenizer.json at {path} "
                         "(give a folder with one, or '' to estimate tokens from words)")
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()

    def count(texts: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=True)]

    return count


class Chunker:
    """Packs a document's blocks into spans within a token budget."""

    def __init__(self, cfg: IngestConfig, counter: Counter | None | bool = True) -> None:
        self.budget = cfg.chunk_tokens
        self.overlap = cfg.overlap_tokens
        self.min_tokens = cfg.min_chunk_tokens
        self.tpw = cfg.tokens_per_word
        self.cfg = cfg
        # True: the config's tokenizer; None/False: the word estimate alone
        self.counter = token_counter(cfg.tokenizer) if counter is True else (counter or None)

    def tokens(self, text: str, start: int = 0, end: int | None = None) -> int:
        """Estimated tokens of ``text[start:end]``: separators counted in place (no slice,
        no word list), which runs ~50x faster than ``len(text.split())`` and only
        overestimates where spaces repeat, the safe side for a budget."""
        end = len(text) if end is None else end
        if end <= start:
            return 0
        words = text.count(" ", start, end) + text.count("\n", start, end) + 1
        return max(math.ceil(words * self.tpw), math.ceil((end - start) / MAX_CHARS_PER_TOKEN))

    def spans(self, text: str) -> list[Span]:
        out: list[Span] = []
        start = end = None  # the open chunk
        used = 0
        for b_start, b_end in _blocks(text):
            n = self.tokens(text, b_start, b_end)
            heading = is_heading(text, b_start, b_end)
            if start is not None and heading and used >= self.min_tokens:
                out.append(Span(start, end))  # a new section starts a new chunk
                start, used = None, 0
            if used + n <= self.budget:
                start = b_start if start is None else start
                end, used = b_end, used + n
                continue
            if start is not None and n <= self.budget and used >= self.min_tokens:
                out.append(Span(start, end))  # keep the paragraph whole in the next chunk
                start, used = self._carry_over(text, start, end, n)
                start = b_start if start is None else start
                end, used = b_end, used + n
                continue
            # The block does not fit: add it unit by unit (sentences, lines, then words).
            for u_start, u_end in self._units(text, b_start, b_end):
                u = self.tokens(text, u_start, u_end)
                if start is not None and used + u > self.budget:
                    out.append(Span(start, end))
                    start, used = self._carry_over(text, start, end, u)
                start = u_start if start is None else start
                end, used = u_end, used + u
        if start is not None:
            out.append(Span(start, end))
        return self._fit(text, out) if self.counter else out

    def _fit(self, text: str, spans: list[Span], depth: int = 0) -> list[Span]:
        """Spans over the budget by the real tokenizer, split again until they fit."""
        if not spans:
            return spans
        counts = self.counter([text[s.start:s.end] for s in spans])
        out: list[Span] = []
        for s, n in zip(spans, counts, strict=True):
            if n <= self.budget or depth >= 8:
                out.append(s)
                continue
            # Re-pack the span with the ratio this text really has (and a margin that grows
            # each round); a span with no structure left to cut at is halved at a space.
            est = max(self.tokens(text, s.start, s.end), 1)
            tpw = min(self.tpw * n / est * (1.1 + 0.1 * depth), 64.0)
            sub = Chunker(self.cfg.model_copy(update={"overlap_tokens": 0, "min_chunk_tokens": 0}),
                          counter=False)
            sub.tpw = tpw
            piece = text[s.start:s.end]
            parts = [Span(s.start + p.start, s.start + p.end) for p in sub.spans(piece)]
            if len(parts) <= 1:
                parts = _halves(text, s)
            out += self._fit(text, parts, depth + 1)
        return out

    def _units(self, text: str, b_start: int, b_end: int) -> Iterator[tuple[int, int]]:
        for u_start, u_end in _sentences(text, b_start, b_end):
            if self.tokens(text, u_start, u_end) <= self.budget:
                yield u_start, u_end
            else:  # a sentence longer than a chunk (a 50 MB line): cut it by words
                yield from self._word_pieces(text, u_start, u_end)

    def _word_pieces(self, text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
        per_piece = max(1, int(self.budget / self.tpw))
        max_chars = self.budget * MAX_CHARS_PER_TOKEN
        piece_start = piece_end = None
        count = 0
        for m in _WORD.finditer(text, start, end):
            if piece_start is not None and m.end() - piece_start > max_chars:
                yield piece_start, piece_end  # long words: the piece is full by characters
                piece_start, count = None, 0
            if m.end() - m.start() > max_chars:  # one "word" longer than a chunk: cut it
                for cut in range(m.start(), m.end(), max_chars):
                    yield cut, min(cut + max_chars, m.end())
                continue
            if piece_start is None:
                piece_start = m.start()
            piece_end, count = m.end(), count + 1
            if count == per_piece:
                yield piece_start, piece_end
                piece_start, count = None, 0
        if piece_start is not None:
            yield piece_start, piece_end

    def _carry_over(self, text: str, start: int, end: int, incoming: int) -> tuple[int | None, int]:
        """Start and size of the overlap the next chunk repeats from the one just closed:
        whole trailing sentences up to ``overlap`` tokens, none if the next unit won't fit."""
        best, used = None, 0
        if self.overlap <= 0:
            return best, used
        # Only the tail can fit in the overlap: scan ~16 characters per allowed word.
        window = max(start, end - int(self.overlap / self.tpw * 16) - 1)
        # Tokens only shrink as the cut moves right: the first cut that fits is the longest.
        for m in _CUT.finditer(text, window, end):
            pos = m.end()
            while m.group() != "\n" and pos < end and text[pos] in "\"')]":
                pos += 1
            if pos >= end or (m.group() != "\n" and not text[pos].isspace()):
                continue  # "3.5", "e.g." inside a word: not a sentence end
            while pos < end and text[pos].isspace():
                pos += 1
            n = self.tokens(text, pos, end)
            if pos > start and n <= self.overlap and n + incoming <= self.budget:
                return pos, n
        return best, used


def _halves(text: str, s: Span) -> list[Span]:
    mid = (s.start + s.end) // 2
    cut = text.rfind(" ", s.start + 1, mid + 1)
    if cut <= s.start:
        cut = text.find(" ", mid, s.end - 1)
    if cut <= s.start:
        cut = mid  # no space at all: cut between characters
    return [Span(a, b) for lo, hi in ((s.start, cut), (cut, s.end)) for a, b in _strip(text, lo, hi)]


def _blocks(text: str) -> Iterator[tuple[int, int]]:
    """Paragraph-like blocks separated by blank lines, as stripped spans."""
    pos = 0
    for gap in _BLOCK_GAP.finditer(text):
        yield from _strip(text, pos, gap.start())
        pos = gap.end()
    yield from _strip(text, pos, len(text))


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    pos = start
    for m in _UNIT_END.finditer(text, start, end):
        yield from _strip(text, pos, m.end())
        pos = m.end()
    yield from _strip(text, pos, end)


def _strip(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end
