"""reStructuredText through docutils: the document's own headings, sections and title.

Sphinx documentation sets use roles (``:issue:``, ``:py:func:``) and directives
(``versionadded``, ``toctree``, ``automodule``) that plain docutils does not know. Each
unknown one found in a file is registered before parsing with a generic handler that
keeps its text (a role's title, a directive's arguments and body) and drops pure
navigation (``toctree``, ``index``). The doctree is then written back as the plain text
with ``#`` headings that the chunker reads; code blocks stay code, fenced.

docutils' file and raw inclusion are off: a document never pulls in another file (a
path outside the folder the user gave) or raw HTML.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict

from docutils import nodes
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles

_ROLE = re.compile(r"(?<![\w`]):((?:[A-Za-z][\w+.-]*:)*[A-Za-z][\w+.-]*):`")
_DIRECTIVE = re.compile(r"^\s*\.\.\s+([A-Za-z][\w+.:-]*)::", re.MULTILINE)
# Navigation and build instructions: nothing a reader of the page would read as text.
_DROP = {
    "toctree", "index", "highlight", "currentmodule", "module", "sectionauthor",
    "moduleauthor", "codeauthor", "literalinclude", "include", "raw", "image", "only",
    "tabularcolumns", "autosummary", "automodule", "py:module", "py:currentmodule",
    "default-domain", "default-role", "meta", "contents", "sectnum", "role", "ifconfig",
    "graphviz", "plot", "spelling:word-list", "sidebar-links",
}
_CODE = {"doctest", "testcode", "testoutput", "testsetup", "productionlist", "prompt",
         "ipython", "jupyter-execute", "console"}
_SETTINGS = {
    "report_level": 5,  # markup problems are the author's, not the user's: say nothing
    "halt_level": 5,
    "warning_stream": io.StringIO(),
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "input_encoding": "unicode",
    "_disable_config": True,
    "doctitle_xform": True,
    "sectsubtitle_xform": False,
    "line_length_limit": 1_000_000,
    "syntax_highlight": "none",
    "character_level_inline_markup": False,
}


class _Kept(Directive):
    """An unknown directive: its arguments as a line, its body parsed as rst."""

    has_content = True
    optional_arguments = 64
    final_argument_whitespace = True
    option_spec = defaultdict(lambda: directives.unchanged)  # any :option: is accepted

    def run(self) -> list[nodes.Node]:
        name = self.name.rsplit(":", 1)[-1]
        if self.name in _DROP or name in _DROP:
            return []
        if name in _CODE or "code" in name:
            return [nodes.literal_block("", "\n".join(self.content))] if self.content else []
        out: list[nodes.Node] = []
        head = " ".join(self.arguments).strip()
        if name.startswith(("version", "deprecated")):
            label = {"versionadded": "New in version", "versionchanged": "Changed in version",
                     "deprecated": "Deprecated since version"}.get(name, name)
            version, _, rest = head.partition(" ")
            head = f"{label} {version}:" + (f" {rest.strip()}" if rest.strip() else "")
        if head:  # the arguments are rst too (``literal``, :role:`x`)
            inline, _ = self.state.inline_text(head, self.lineno)
            out.append(nodes.paragraph("", "", *inline))
        if self.content:
            box = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, box)
            out.append(box)
        return out


def _kept_role(name, rawtext, text, lineno, inliner, options=None, content=None):  # docutils' role signature
    """An unknown role: its title (``title <target>``), a ``~dotted.name``'s last part."""
    m = re.match(r"^(.*?)\s*<[^<>]*>$", text, re.DOTALL)
    shown = (m.group(1) if m and m.group(1) else text).lstrip("!")
    if shown.startswith("~"):
        shown = shown[1:].rsplit(".", 1)[-1]
    return [nodes.literal(rawtext, shown)], []


def _register_unknown(text: str) -> None:
    for name in set(_ROLE.findall(text)):
        role, _ = roles.role(name, _LANGUAGE, 0, _REPORTER)
        if role is None:
            roles.register_local_role(name, _kept_role)
    for name in set(_DIRECTIVE.findall(text)):
        if name in _DROP:
            directives.register_directive(name, _Kept)
            continue
        known, _ = directives.directive(name, _LANGUAGE, _DOC)
        if known is None:
            directives.register_directive(name, _Kept)


def rst_to_text(source: str) -> tuple[str, str | None]:
    """The text of an rst document, with ``#`` headings, and its title (or None).

    Raises whatever docutils raises on input it cannot parse at all; the reader falls
    back to the raw text then."""
    _register_unknown(source)
    tree = publish_doctree(source, settings_overrides=dict(_SETTINGS, warning_stream=io.StringIO()))
    title = None
    blocks: list[str] = []
    for child in tree.children:
        if isinstance(child, nodes.title):
            title = _inline(child)
            blocks.append(f"# {title}")
        elif isinstance(child, nodes.subtitle):
            blocks.append(f"## {_inline(child)}")
        else:
            blocks += _blocks(child, 2 if title else 1)
    if title is None:
        first = next((b for b in blocks if b.startswith("#")), None)
        title = first.lstrip("# ").strip() if first else None
    return "\n\n".join(b for b in blocks if b.strip()) + "\n", title


_SKIP = (nodes.comment, nodes.target, nodes.substitution_definition, nodes.system_message,
         nodes.raw, nodes.pending, nodes.image, nodes.decoration)


def _blocks(node: nodes.Node, depth: int) -> list[str]:  # one case per node kind
    if isinstance(node, _SKIP):
        return []
    if isinstance(node, nodes.section):
        out: list[str] = []
        for child in node.children:
            if isinstance(child, nodes.title):
                out.append("#" * min(depth, 6) + " " + _inline(child))
            else:
                out += _blocks(child, depth + 1)
        return out
    if isinstance(node, (nodes.literal_block, nodes.doctest_block)):
        return ["```\n" + node.astext().rstrip("\n") + "\n```"]
    if isinstance(node, (nodes.paragraph, nodes.rubric, nodes.caption)):
        return [_inline(node)]
    if isinstance(node, nodes.line_block):
        return ["\n".join(_inline(line) for line in node.findall(nodes.line))]
    if isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
        lines = []
        for i, item in enumerate(node.children, 1):
            mark = f"{i}." if isinstance(node, nodes.enumerated_list) else "-"
            lines.append(f"{mark} " + " ".join(b.replace("\n", " ") for b in _children(item, depth)))
        return ["\n".join(lines)]
    if isinstance(node, (nodes.definition_list, nodes.field_list, nodes.option_list)):
        lines = []
        for item in node.children:
            parts = [_inline(c) if isinstance(c, nodes.TextElement) else
                     " ".join(b.replace("\n", " ") for b in _children(c, depth))
                     for c in item.children if not isinstance(c, nodes.classifier)]
            parts = [p for p in parts if p]
            if parts:
                lines.append(parts[0] + (": " + " ".join(parts[1:]) if parts[1:] else ""))
        return ["\n".join(lines)]
    if isinstance(node, nodes.table):
        rows = []
        for row in node.findall(nodes.row):
            cells = [" ".join(b.replace("\n", " ") for b in _children(e, depth)) for e in row.children]
            rows.append(" | ".join(cells))
        title = [_inline(t) for t in node.children if isinstance(t, nodes.title)]
        return title + ["\n".join(rows)]
    if isinstance(node, (nodes.Admonition, nodes.topic, nodes.sidebar)):
        label = node.tagname.capitalize() if not isinstance(node, (nodes.topic, nodes.sidebar)) else ""
        body = []
        for c in node.children:
            if isinstance(c, nodes.title):
                label = _inline(c)
            else:
                body += _blocks(c, depth)
        if body and label:
            body[0] = f"{label}: {body[0]}"
        return body
    if isinstance(node, nodes.TextElement):
        return [_inline(node)]
    if isinstance(node, nodes.Element):
        return _children(node, depth)
    return [node.astext()] if node.astext().strip() else []


def _children(node: nodes.Node, depth: int) -> list[str]:
    out: list[str] = []
    for c in node.children:
        out += _blocks(c, depth)
    return out


def _inline(node: nodes.Node) -> str:
    return re.sub(r"\s+", " ", _text(node)).strip()


def _text(node: nodes.Node) -> str:
    if isinstance(node, nodes.Text):
        return str(node)
    if isinstance(node, _SKIP):
        return ""
    if isinstance(node, nodes.problematic):  # an unresolved |substitution| or reference
        return node.astext().strip("|_")
    return "".join(_text(c) for c in node.children)


# What the lookups above need of a document: a language module and a silent reporter.
def _lookup_context():
    from docutils.frontend import get_default_settings
    from docutils.languages import get_language
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document

    settings = get_default_settings(Parser)
    settings.report_level, settings.halt_level = 5, 5
    settings.warning_stream = io.StringIO()
    doc = new_document("<lookup>", settings)
    return get_language("en", doc.reporter), doc.reporter, doc


_LANGUAGE, _REPORTER, _DOC = _lookup_context()
