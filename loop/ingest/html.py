"""HTML to structured text with lxml (a real parser): no scripts, styles or markup."""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

_DROP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
_BLOCK = {
    "address", "article", "aside", "blockquote", "body", "dd", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "ul",
    "h1", "h2", "h3", "h4", "h5", "h6", "caption", "details", "summary",
}
_CELL = {"td", "th"}
# Private-use sentinels survive whitespace collapsing and become real breaks at the end.
_PARA, _LINE, _CELLSEP = "\ue000", "\ue001", "\ue002"
_BREAKS = re.compile(f"[{_PARA}{_LINE}]+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
# huge_tree: libxml2 otherwise truncates text nodes over 10 MB and very deep trees.
_PARSER = lxml_html.HTMLParser(huge_tree=True, remove_comments=True, remove_pis=True)


class TooDeep(ValueError):
    """The markup nests deeper than libxml2 parses (2048 elements even with huge_tree)."""


def html_to_text(markup: str) -> tuple[str, str]:
    """Return ``(title, text)``: blocks separated by blank lines, headings as ``#`` lines.
    Raises ``TooDeep`` when the parser gave up on the nesting (it then returns a tree with
    no text, which would read as a page with none)."""
    markup = _XML_DECL.sub("", markup, count=1)
    if not markup.strip():
        return "", ""
    try:
        root = lxml_html.document_fromstring(markup, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return "", ""
    limit = [e.message for e in _PARSER.error_log if e.type_name == "ERR_RESOURCE_LIMIT"]
    if limit:
        raise TooDeep(f"HTML nested deeper than the parser's limit ({limit[0]})")
    title = " ".join((root.findtext(".//title") or "").split())
    body = root.find("body")
    if body is None:
        body = root
    parts: list[str] = []
    dropped = 0  # depth inside a dropped element (script, style, ...)
    row_start = False  # no cell separator before a row's first cell
    # iterwalk, not recursion: deeply nested markup must not hit Python's recursion limit.
    for event, el in etree.iterwalk(body, events=("start", "end")):
        tag = el.tag if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _DROP:
                dropped += 1
            elif not dropped:
                if tag in _CELL and row_start:
                    row_start = False
                else:
                    parts.extend(_opening(tag))
                    row_start = row_start or tag == "tr"
                if tag and el.text:
                    parts.append(el.text)
            continue
        if tag in _DROP:
            dropped -= 1
        elif not dropped and tag in _BLOCK:
            parts.append(_PARA)
        if not dropped and el.tail and el is not body:
            parts.append(el.tail)
    text = _layout(" ".join("".join(parts).split()))
    if not title:
        m = re.search(r"^#{1,6} (.+)$", text, re.MULTILINE)
        title = m.group(1).strip() if m else ""
    return title, text.strip()


def _layout(text: str) -> str:
    """Sentinels to real breaks. str.replace and literal-led patterns only: a pattern that
    starts with an optional space scanned at ~40 MB/s, too slow for big pages."""
    for sep in (_PARA, _LINE, _CELLSEP):
        text = text.replace(f" {sep}", sep).replace(f"{sep} ", sep)
    text = text.replace(_CELLSEP, " | ")
    text = _BREAKS.sub(lambda m: "\n\n" if _PARA in m.group() else "\n", text)
    return text


def _opening(tag: str) -> list[str]:
    if tag in _BLOCK:
        if tag[0] == "h" and tag[1:].isdigit():
            return [_PARA, "#" * int(tag[1]) + " "]
        return [_PARA, "- "] if tag == "li" else [_PARA]
    if tag in ("br", "tr"):  # a table stays one block, a row per line
        return [_LINE]
    return [_CELLSEP] if tag in _CELL else []
