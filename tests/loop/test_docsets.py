"""Documentation sets as they come (issue 27): reStructuredText through docutils, Markdown
front matter and links, chunks measured by the embedder's own tokenizer, and the checks
that need no model failing before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loop.errors import InputError
from loop.ingest import ingest
from loop.ingest.chunking import Chunker, token_counter
from loop.ingest.config import IngestConfig
from loop.workspace import Workspace

SPHINX_PAGE = """\
.. _quickstart:

Quickstart
==========

Flask is easy to start. See :ref:`the tutorial <tutorial>`, :issue:`1234` and
:py:func:`~flask.Flask.run`.

.. versionadded:: 2.3
   The ``--debug`` flag.

.. toctree::
   :maxdepth: 2

   installation
   tutorial/index

.. include:: /etc/passwd

Minimal Application
-------------------

The development server listens on port 5000.

.. code-block:: python

    from flask import Flask
    app = Flask(__name__)

* the first item is **bold**
* the second item

.. note::
   Do not use the development server in production.

=====  ========
Port   Purpose
=====  ========
5000   development
=====  ========
"""


@pytest.fixture()
def ws(tmp_path):
    with Workspace(tmp_path / "ws") as w:
        yield w


def _doc(ws, tmp_path, name, text):
    from loop.corpus import load_corpus

    d = tmp_path / "docs"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    ingest(ws, [d])
    rows = load_corpus(ws)
    return "\n".join(rows["text"]), set(rows["title"])


def test_rst_reads_as_its_text_with_headings_and_code(ws, tmp_path):
    text, titles = _doc(ws, tmp_path, "quickstart.rst", SPHINX_PAGE)
    assert titles == {"Quickstart"}  # the document's title, not the file name
    assert "# Quickstart" in text and "## Minimal Application" in text
    # roles keep their text, directives their body; the markup itself is gone
    assert "See the tutorial, 1234 and run." in text
    assert "New in version 2.3: The --debug flag." in text
    assert "Note: Do not use the development server in production." in text
    assert "5000 | development" in text
    assert "```\nfrom flask import Flask\napp = Flask(__name__)\n```" in text  # code stays code
    prose = text.replace("```", "")
    for markup in (":ref:", ":issue:", ".. ", "====", "----", "toctree", "maxdepth", "``"):
        assert markup not in prose, markup
    assert "root:" not in text  # include never reads a file (here: outside the folder)


def test_rst_that_docutils_cannot_parse_is_read_as_plain_text(ws, tmp_path, monkeypatch):
    import loop.ingest.rst as rst
    from loop.corpus import load_corpus

    def broken(_source):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(rst, "rst_to_text", broken)
    d = tmp_path / "docs"
    d.mkdir()
    (d / "odd.rst").write_text("Odd\n===\n\nThe text survives.\n")
    result = ingest(ws, [d])
    assert "The text survives." in "\n".join(load_corpus(ws)["text"])
    assert any("could not be parsed (RecursionError" in w["message"] for w in result.warnings)


def test_markdown_front_matter_links_and_comments(ws, tmp_path):
    page = ("---\ntitle: \"Ferry guide\"\nlayout: page\n---\n<!-- draft: do not publish -->\n"
            "The ferry leaves from [Pier 3](https://x.org/piers_(map) \"map\") at 7:15 "
            "![a ferry](ferry.png) ([timetable][tt]).\n\n[tt]: https://x.org/tt\n\n"
            "```\nkeep [this](as/code)\n```\n")
    text, titles = _doc(ws, tmp_path, "guide.md", page)
    assert titles == {"Ferry guide"}
    assert "The ferry leaves from Pier 3 at 7:15 a ferry (timetable)." in text
    assert "keep [this](as/code)" in text  # code blocks untouched
    for gone in ("layout:", "draft", "https://x.org", "]("):
        assert gone not in text.replace("keep [this](as/code)", ""), gone


def test_chunks_fit_the_embedders_window_by_its_own_tokenizer(ws, tmp_path):
    # code-like text has many tokens per word: the word estimate (1.3) would let chunks of
    # ~10x the budget through to the index, where the embedder cuts their tails
    line = " ".join(f"os.path.join(root{i},name{i})[{i}]::x" for i in range(60))
    page = "\n\n".join(f"# Part {n}\n\n{line}" for n in range(4))
    cfg = IngestConfig()
    count = token_counter(cfg.tokenizer)
    estimated = Chunker(cfg, counter=False).spans(page)
    assert max(count([page[s.start:s.end] for s in estimated])) > 3 * cfg.chunk_tokens
    from loop.corpus import load_corpus

    d = tmp_path / "code"
    d.mkdir()
    (d / "api.md").write_text(page)
    ingest(ws, [d], cfg)
    texts = load_corpus(ws)["text"]
    assert max(count(texts)) <= cfg.chunk_tokens
    assert " ".join(t for t in texts).count("os.path.join(root59") >= 4  # nothing lost


def test_the_run_config_measures_chunks_with_the_index_embedder(tmp_path):
    from loop.stages import RunConfig

    assert RunConfig.from_tables({}).ingest.tokenizer == "st:all-MiniLM-L6-v2"
    other = RunConfig.from_tables({"index": {"embedder": f"st:{tmp_path}"}})
    assert other.ingest.tokenizer == f"st:{tmp_path}"
    given = RunConfig.from_tables({"index": {"embedder": f"st:{tmp_path}"}, "ingest": {"tokenizer": ""}})
    assert given.ingest.tokenizer == ""


def test_missing_paths_and_empty_folders_are_errors(ws, tmp_path):
    from loop.ingest.stage import require_chunks

    with pytest.raises(InputError, match="no such file or folder: .*nope"):
        ingest(ws, [tmp_path / "nope"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no files to ingest"):
        require_chunks(ingest(ws, [empty]), [empty])
    (empty / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(InputError, match="none readable .*logo.png: image file"):
        require_chunks(ingest(ws, [empty]), [empty])


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loop", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_fails_before_any_model_loads(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    ws = str(tmp_path / "ws")
    # every model load goes through transformers: a transformers that cannot be imported
    # proves the check came first (a structural check, not a timed one)
    poison = tmp_path / "poison" / "transformers"
    poison.mkdir(parents=True)
    (poison / "__init__.py").write_text('raise ImportError("transformers imported before the check")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(poison.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for args, says in [
        (["ingest", str(tmp_path / "missing"), "--workspace", ws], "no such file or folder"),
        (["ingest", str(empty), "--workspace", ws], "no files to ingest"),
        (["train", "--workspace", ws], "no synthetic dataset"),
        (["run", str(empty), "--workspace", ws], "no files to ingest"),
    ]:
        r = _cli(*args, cwd=tmp_path, env=env)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert says in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and "imported before the check" not in r.stderr
        # no student loaded: a dequantization or a model load would show in the output
        assert "dequantiz" not in r.stderr.lower() and "Loading" not in r.stderr
