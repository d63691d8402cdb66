"""Format readers: a file in, plain-text documents out, or a ``Skip`` with the reason.

Each reader yields ``RawDoc``s; a file can hold many (a SQuAD JSON, a JSONL). Text keeps
its structure as blank-line-separated blocks and ``#`` headings, which the chunker uses.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

TEXT_SUFFIXES = {".md", ".markdown", ".txt", ".text", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUPPORTED = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".json", ".jsonl"}

_MAGIC = {
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"GIF8": "GIF image",
    b"PK\x03\x04": "ZIP archive (docx/xlsx/zip)",
    b"%PDF": "PDF",
    b"\x7fELF": "executable",
    b"\x1f\x8b": "gzip archive",
}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tiff", ".webp", ".svg", ".ico"}
# Up to this share of bytes may be invalid UTF-8 and be replaced rather than re-detected.
_BAD_BYTE_SHARE = 0.01


class Skip(Exception):
    """The file cannot be ingested; ``str(e)`` is the reason shown to the user."""


@dataclass
class RawDoc:
    text: str
    title: str
    source: str
    notes: list[str] = field(default_factory=list)


Reader = Callable[[Path, str], Iterator[RawDoc]]


def reader_for(path: Path) -> Reader:
    """The reader for a path's suffix; ``Skip`` for anything unsupported."""
    suffix = path.suffix.lower()
    if suffix == ".rst":
        return read_rst
    if suffix in (".md", ".markdown"):
        return read_markdown
    if suffix in TEXT_SUFFIXES:
        return read_text
    if suffix in HTML_SUFFIXES:
        return read_html
    if suffix == ".pdf":
        return read_pdf
    if suffix == ".json":
        return read_squad_json
    if suffix == ".jsonl":
        return read_jsonl
    if suffix in _IMAGE_SUFFIXES:
        raise Skip(f"image file ({suffix}): images are not supported, only text")
    raise Skip(
        f"unsupported file type '{suffix or path.name}' "
        f"(supported: {', '.join(sorted(SUPPORTED))})"
    )


# -- decoding ------------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str | None]:
    """Bytes to text: UTF-8 (a few bad bytes replaced), else the detected charset.

    Returns the text and a note when it was not clean UTF-8. Raises ``Skip`` for binary data.
    """
    if not data.strip():
        raise Skip("empty file")
    head = data[:8192]
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise Skip(f"binary content ({kind}) in a text file")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "decoded as UTF-16"
    if b"\x00" in head:
        raise Skip("binary content (NUL bytes): not a text file")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    # Valid multi-byte sequences beside a few invalid bytes: UTF-8 with damage, not an
    # 8-bit legacy encoding (where detection would be right and replacement would lose text).
    multibyte = sum(1 for ch in text if ord(ch) > 127) - bad
    if multibyte > 0 and bad <= max(16, len(data) * _BAD_BYTE_SHARE):
        return text, f"{bad} invalid UTF-8 byte(s) replaced"
    best = from_bytes(data).best()
    if best is None:
        if bad <= len(data) * _BAD_BYTE_SHARE:
            return text, f"{bad} invalid UTF-8 byte(s) replaced"
        raise Skip("binary or undecodable content: no text encoding fits")
    text = str(best)
    if _control_share(text) > 0.01:
        raise Skip("binary content: too many control characters")
    return text, f"decoded as {best.encoding}"


def _control_share(text: str) -> float:
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t\f\v")
    return controls / max(1, len(sample))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except PermissionError as e:
        raise Skip("permission denied") from e
    except OSError as e:
        raise Skip(f"unreadable: {e.strerror or e}") from e


# -- readers -------------------------------------------------------------------------------


def read_text(path: Path, source: str) -> Iterator[RawDoc]:
    """Plain text: kept as it is."""
    text, note = decode(_read_bytes(path))
    text = _normalise_newlines(text)
    if not text.strip():
        raise Skip("empty file")
    yield RawDoc(text, _title_of_text(text, path), source, [note] if note else [])


def read_rst(path: Path, source: str) -> Iterator[RawDoc]:
    """reStructuredText through docutils (``loop/ingest/rst.py``): headings, sections and
    the title from the document; directives, roles and underlines dropped, code kept."""
    from loop.ingest.rst import rst_to_text

    raw, note = decode(_read_bytes(path))
    raw = _normalise_newlines(raw)
    if not raw.strip():
        raise Skip("empty file")
    notes = [note] if note else []
    try:
        text, title = rst_to_text(raw)
    except Exception as e:  # docutils raises many types; the text survives
        notes.append(f"reStructuredText could not be parsed ({type(e).__name__}: {e}); "
                     "read as plain text")
        text, title = raw, None
    if not text.strip():
        raise Skip("reStructuredText document has no text (only directives or comments)")
    yield RawDoc(text, title or _title_of_text(text, path), source, notes)


def read_markdown(path: Path, source: str) -> Iterator[RawDoc]:
    """Markdown: front matter read for its title and dropped, links and images reduced to
    their text, reference definitions and HTML comments dropped; code blocks untouched."""
    raw, note = decode(_read_bytes(path))
    text, meta_title = markdown_text(_normalise_newlines(raw))
    if not text.strip():
        raise Skip("empty file")
    yield RawDoc(text, meta_title or _title_of_text(text, path), source, [note] if note else [])


_FRONT_MATTER = re.compile(r"\A(?:---|\+\+\+)[ \t]*\n(.*?)\n(?:---|\+\+\+|\.\.\.)[ \t]*(?:\n|\Z)",
                           re.DOTALL)
_META_TITLE = re.compile(r"^title\s*[:=]\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_MD_INLINE = [
    (re.compile(r"<!--.*?-->", re.DOTALL), ""),
    (re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)"), r"\1"),  # image: its alt text
    (re.compile(r"\[([^\]\n]+)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+[\"'(][^\n]*?[\"')])?\)"), r"\1"),
    (re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"^[ ]{0,3}\[[^\]\n]+\]:[ \t]+\S+.*$\n?", re.MULTILINE), ""),  # [ref]: url
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # autolink
]


def markdown_text(text: str) -> tuple[str, str | None]:
    """Markdown with its markup that is not text removed, and the front matter's title."""
    title = None
    m = _FRONT_MATTER.match(text)
    if m:
        t = _META_TITLE.search(m.group(1))
        title = t.group(1).strip("\"' ") if t else None
        text = text[m.end():]
    out, pos = [], 0
    for fence in _FENCE.finditer(text):  # code is code: links inside it are not touched
        out.append(_md_inline(text[pos:fence.start()]))
        out.append(fence.group())
        pos = fence.end()
    out.append(_md_inline(text[pos:]))
    return "".join(out), title or None


def _md_inline(text: str) -> str:
    for pattern, repl in _MD_INLINE:
        text = pattern.sub(repl, text)
    return text


def read_html(path: Path, source: str) -> Iterator[RawDoc]:
    """HTML through lxml's parser: scripts and styles dropped, headings kept as ``#``."""
    from loop.ingest.html import TooDeep, html_to_text

    raw, note = decode(_read_bytes(path))
    try:
        title, text = html_to_text(raw)
    except TooDeep as e:
        raise Skip(str(e)) from e
    if not text.strip():
        raise Skip("HTML page has no visible text")
    yield RawDoc(text, title or path.stem, source, [note] if note else [])


def read_pdf(path: Path, source: str) -> Iterator[RawDoc]:
    """PDF text through pypdf; encrypted, broken and image-only PDFs are skipped."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns per malformed object
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as e:  # pypdf raises several types here
                raise Skip(f"encrypted PDF ({e})") from e
            if not ok:
                raise Skip("encrypted PDF: a password is needed")
        pages = [(page.extract_text() or "") for page in reader.pages]
        meta_title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    except Skip:
        raise
    except PermissionError as e:
        raise Skip("permission denied") from e
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise Skip(f"broken PDF: {type(e).__name__}: {e}") from e
    text = _normalise_newlines("\n\n".join(p.strip() for p in pages if p.strip()))
    if not text.strip():
        raise Skip("PDF has no extractable text (scanned pages? OCR is not supported)")
    title = str(meta_title).strip() if meta_title else _title_of_text(text, path)
    yield RawDoc(text, title, source)


def read_squad_json(path: Path, source: str) -> Iterator[RawDoc]:
    """SQuAD-format JSON: each paragraph's context is a document."""
    raw, _ = decode(_read_bytes(path))
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise Skip(f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    articles = data.get("data") if isinstance(data, dict) else None
    if not isinstance(articles, list):
        raise Skip(
            "JSON is not SQuAD format: expected {'data': [{'title', 'paragraphs': "
            "[{'context', ...}]}]} (use .jsonl with a 'text' field for other records)"
        )
    found = 0
    for i, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            continue
        for j, para in enumerate(paragraphs):
            context = para.get("context") if isinstance(para, dict) else None
            if not isinstance(context, str) or not context.strip():
                continue
            found += 1
            title = article.get("title") or para.get("document_id") or f"{path.stem} {i}.{j}"
            yield RawDoc(_normalise_newlines(context), str(title), f"{source}#{i}.{j}")
    if not found:
        raise Skip("SQuAD JSON has no paragraph with a non-empty 'context'")


def read_jsonl(path: Path, source: str) -> Iterator[RawDoc]:
    """JSON Lines with a ``text`` field (``title`` optional), streamed line by line."""
    found = 0
    bad: list[str] = []
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; lines are decoded one by one
    except PermissionError as e:
        raise Skip("permission denied") from e
    except OSError as e:
        raise Skip(f"unreadable: {e.strerror or e}") from e
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            # each line stands alone: a bad one is named and passed over, the rest are read
            try:
                text_line, _ = decode(line)
                record = json.loads(text_line)
            except (Skip, json.JSONDecodeError):
                bad.append(f"line {lineno}: not valid JSON")
                continue
            except RecursionError:
                bad.append(f"line {lineno}: JSON nested too deep to read")
                continue
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip():
                what = ("empty" if isinstance(text, str) else "missing" if text is None
                        else f"a JSON {type(text).__name__}")
                bad.append(f"line {lineno}: no 'text' string ({what})")
                continue
            found += 1
            title = record.get("title") or f"{path.stem} line {lineno}"
            notes = bad[:]
            bad.clear()
            yield RawDoc(_normalise_newlines(text), str(title), f"{source}:{lineno}", notes)
    if not found:
        detail = f" ({bad[0]})" if bad else ""
        raise Skip(f"no JSON line with a 'text' field{detail}")
    if bad:  # problems after the last good line
        yield RawDoc("", "", "", bad)


# -- helpers -------------------------------------------------------------------------------

_HEADING_LINE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _title_of_text(text: str, path: Path) -> str:
    m = _HEADING_LINE.search(text[:4096])
    if m:
        return m.group(1).strip()
    for line in text[:4096].splitlines():
        line = line.strip()
        if line:
            # An rst title or a short first line reads as a title; a paragraph does not.
            if len(line) <= 80 and not line.endswith((".", ",", ";", ":")):
                return line.strip("=#*-~ ") or path.stem
            break
    return path.stem
