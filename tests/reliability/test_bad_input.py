"""The bad-input zoo: every kind gets a clear message naming the file (or the config key),
and nothing crashes. One ingest over a folder holding every bad file at once, the single
50 MB line, many tiny files, then the bad eval sets, configs and model URIs through the CLI
(in-process with typer's runner: the same error handling, no start-up cost).

Each kind is also tested alone where it was introduced: tests/loop/test_ingest.py (formats,
encodings, PDFs, symlinks, permissions), tests/loop/test_config.py, tests/retrieval/."""

from __future__ import annotations

import json
import os
import time

import pytest
from typer.testing import CliRunner

from loop.cli import app
from loop.corpus import load_corpus
from loop.ingest import ingest
from loop.ingest.chunking import MAX_CHARS_PER_TOKEN
from loop.ingest.config import IngestConfig

runner = CliRunner()


def _zoo(d, write_pdf):
    """file name -> the words its skip reason or warning must hold."""
    d.mkdir()
    (d / "good.md").write_text("# Good\n\nThe ferry leaves Pier 3 at 7:15.\n")
    kinds = {
        "empty.md": (b"", "empty"),
        "binary.txt": (b"\x00\x01\x02\x03" * 100, "binary"),
        "photo.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image"),
        "broken.pdf": (b"%PDF-1.4\n not really a pdf", "pdf"),
        "invalid-utf8.txt": ("Market square, Malmö. ".encode() * 20 + b"\xff\xfe oops", "invalid utf-8"),
        "mixed.txt": ("Café au lait. ".encode() * 20 + "Crème brûlée.".encode("latin-1"), "invalid utf-8"),
        "deep.json": (b"[" * 200_000 + b"]" * 200_000, "recursion"),
        "squad-wrong-fields.json": (json.dumps({"data": [{"title": "x", "paragraphs": [
            {"ctx": "text", "questions": []}]}]}).encode(), "squad"),
        "squad-data-not-a-list.json": (b'{"data": "nope"}', "squad"),
        "squad-context-a-number.json": (b'{"data": [{"paragraphs": [{"context": 5}]}]}', "squad"),
        "records.jsonl": (b'{"body": "no text field"}\n', "text"),
        "archive.zip": (b"PK\x03\x04rest", "unsupported"),
    }
    for name, (content, _) in kinds.items():
        (d / name).write_bytes(content)
    expect = {name: words for name, (_, words) in kinds.items()}
    write_pdf(d / "locked.pdf", "secret", encrypt="pw")
    expect["locked.pdf"] = "encrypted"
    (d / "deep.html").write_text("<div>" * 5000 + "deep text" + "</div>" * 5000)
    os.symlink(d, d / "loop")
    expect["loop"] = "symlink loop"
    os.symlink(d / "missing.md", d / "dangling.md")
    expect["dangling.md"] = "broken symlink"
    os.mkfifo(d / "pipe.txt")  # reading it would block forever
    expect["pipe.txt"] = "not a regular file"
    with open(os.path.join(os.fsencode(d), b"latin1-\xe9t\xe9.md"), "w") as f:
        f.write("# Name\n\nA file whose name is not UTF-8.\n")
    expect["latin1-\ufffdt\ufffd.md"] = "not valid utf-8"
    (d / "locked.txt").write_text("no access")
    (d / "locked.txt").chmod(0)
    if os.geteuid() != 0:  # root reads anything
        expect["locked.txt"] = "permission denied"
    return expect


def test_one_ingest_over_the_whole_zoo_names_every_bad_file(tmp_path, rel, write_pdf):
    expect = _zoo(tmp_path / "zoo", write_pdf)
    r = runner.invoke(app, ["ingest", str(tmp_path / "zoo"), "-w", str(tmp_path / "ws"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    said = {os.path.basename(s["path"]): s["reason"] for s in out["skipped"]}
    said.update({os.path.basename(w["path"]): w["message"] for w in out["warnings"]})
    for name, words in expect.items():
        assert name in said, f"{name}: no message"
        assert words in said[name].lower(), (name, said[name])
        rel.record("bad input (ingest)", trial=name, message=said[name])
    sources = set(load_corpus_sources(tmp_path / "ws"))
    assert {"zoo/good.md", "zoo/invalid-utf8.txt", "zoo/mixed.txt"} <= sources


def load_corpus_sources(root):
    from loop.workspace import Workspace

    with Workspace(root) as ws:
        return load_corpus(ws)["source"]


def test_a_single_50_mb_line(tmp_path, ws, rel, elapsed):
    """50 MB of words without a newline, and 8 MB without even a space (base64-like):
    ingested in bounded chunks, every character kept."""
    mb = int(os.environ.get("SYNTHLOOP_BIG_MB", 50))
    d = tmp_path / "big"
    d.mkdir()
    words = b"harbour ferry lantern quay market tide "
    with open(d / "one-line.txt", "wb") as f:
        f.write(words * (mb * 1024 * 1024 // len(words)))
    (d / "no-spaces.txt").write_bytes(b"QUJD" * (2 * 1024 * 1024))
    r = ingest(ws, [d])
    assert r.skipped == [] and r.documents == 2
    cfg = IngestConfig()
    longest = 0
    for batch in load_corpus(ws).select_columns(["text", "start", "end"]).iter(batch_size=10_000):
        longest = max([longest, *map(len, batch["text"])])
    assert longest <= cfg.chunk_tokens * MAX_CHARS_PER_TOKEN  # before the fix: one 8 MB chunk
    rel.record("bad input: a single 50 MB line", trial=f"{mb} MB + 8 MB without spaces",
               chunks=r.chunks, longest_chunk_chars=longest, seconds=round(elapsed(), 1))


def test_huge_numbers_of_tiny_files(tmp_path, ws, rel, elapsed):
    n = int(os.environ.get("SYNTHLOOP_TINY_FILES", 3000))
    d = tmp_path / "tiny"
    for i in range(n):
        folder = d / f"f{i % 50:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{i:05d}.txt").write_text(f"Note {i}: bin day {i % 7}.")
    t = time.perf_counter()
    r = ingest(ws, [d], IngestConfig(workers=1))
    first = time.perf_counter() - t
    t = time.perf_counter()
    again = ingest(ws, [d], IngestConfig(workers=1))
    rel.record("bad input: huge numbers of tiny files", trial=f"{n} files",
               documents=r.documents, ingest_s=round(first, 1),
               unchanged_reingest_s=round(time.perf_counter() - t, 1))
    assert r.documents == n and r.skipped == []
    assert again.cached and again.unchanged == n


# -- the CLI: eval sets, config files, model URIs -----------------------------------------


def _cli_cases(tmp):
    """name -> (argv, words the one-line error must hold)."""
    docs = tmp / "docs"
    cases = {}

    def cfg(name, text):
        (tmp / name).write_text(text)
        return tmp / name

    def evalset(name, text):
        (tmp / name).write_text(text)
        return tmp / name

    # scratch:tiny: checked in no time (smollm2 would be dequantized into every fresh
    # workspace first, ~18 s a case); the URI under test fails at the stage that uses it
    run = ["run", str(docs), "-w", str(tmp / "ws"), "--json", "--student", "scratch:tiny"]
    cases["config: unknown key"] = (run + ["-c", cfg("a.toml", "[train]\nlearning_rate = 0.1\n")],
                                    ["unknown key 'learning_rate'", "[train]"])
    cases["config: wrong type"] = (run + ["-c", cfg("b.toml", '[generate]\nper_chunk = "three"\n')],
                                   ["'per_chunk'", "three"])
    cases["config: out of range"] = (run + ["-c", cfg("c.toml", "[ingest]\nchunk_tokens = 3\n")],
                                     ["'chunk_tokens'", "16"])
    cases["config: unknown section"] = (run + ["-c", cfg("d.toml", "[trian]\nlr = 1\n")],
                                        ["unknown section [trian]", "d.toml"])
    cases["config: not TOML"] = (run + ["-c", cfg("e.toml", "[ingest\nchunk_tokens = \n")],
                                 ["not valid TOML", "e.toml"])
    cases["config: missing file"] = (run + ["-c", str(tmp / "nope.toml")], ["nope.toml"])
    cases["unknown teacher prefix"] = (run + ["--teacher", "gpt:4"], ["gpt:4", "openai", "rules"])
    cases["unknown embedder prefix"] = (
        run + ["-c", cfg("f.toml", '[index]\nembedder = "bert:base"\n')], ["bert", "st:"])
    cases["eval set: missing answers"] = (run + ["--eval-set", evalset(
        "noans.jsonl", '{"question": "When?"}\n{"question": "Where?", "answers": []}\n')],
        ["noans.jsonl", "no question with an answer"])
    cases["eval set: wrong fields"] = (run + ["--eval-set", evalset(
        "wrong.jsonl", '{"q": "When?", "a": "7:15"}\n')], ["wrong.jsonl:1", "question"])
    cases["eval set: SQuAD with wrong fields"] = (run + ["--eval-set", evalset(
        "squad.json", json.dumps({"data": [{"paragraphs": [{"qas": [{"query": "When?"}]}]}]}))],
        ["squad.json", "SQuAD"])
    cases["eval set: not UTF-8"] = (run + ["--eval-set", evalset("latin.jsonl", "x")],
                                    ["latin.jsonl", "utf-8"])
    (tmp / "latin.jsonl").write_bytes('{"question": "Où?", "answers": ["là"]}'.encode("latin-1"))
    return cases


CLI_NAMES = ["config: unknown key", "config: wrong type", "config: out of range",
             "config: unknown section", "config: not TOML", "config: missing file",
             "unknown teacher prefix", "unknown embedder prefix", "eval set: missing answers",
             "eval set: wrong fields", "eval set: SQuAD with wrong fields", "eval set: not UTF-8",
             ]


def test_a_value_outside_a_flags_choices_is_a_usage_error_naming_them(tmp_path, rel):
    for argv, words in (
        (["export", "-w", str(tmp_path / "ws"), "-f", "xml", "-o", str(tmp_path / "x.xml")],
         ["'xml' is not one of", "'messages'", "'parquet'"]),
        (["train", "-w", str(tmp_path / "ws"), "--method", "magic"], ["'magic'", "'lora'"]),
        (["generate", "-w", str(tmp_path / "ws"), "--dry-run", "--tasks", "qa,nope"], ["'nope' is not one of", "'qa'", "'raft'"]),
    ):
        r = runner.invoke(app, argv, env={"COLUMNS": "300"})
        assert r.exit_code == 2, r.output
        assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
        text = " ".join(r.output.split())
        for w in words:
            assert w in text, (argv, text)
        rel.record("bad input (CLI)", trial=" ".join(argv[:1] + argv[3:]), message=text[-200:])
    assert not (tmp_path / "ws" / "corpus").exists()


@pytest.mark.parametrize("name", CLI_NAMES)
def test_cli_bad_input_is_one_clear_line(name, tmp_path, rel):
    rel.write_docs(tmp_path / "docs")
    argv, words = _cli_cases(tmp_path)[name]
    r = runner.invoke(app, argv)
    assert r.exit_code == 1, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception  # no traceback
    error = json.loads(r.stdout)["error"]
    for w in words:
        assert w.lower() in error.lower(), (name, error)
    # bad configs and gold sets stop `run` before its first stage (a URI is checked by the
    # stage that uses it)
    assert not (tmp_path / "ws" / "corpus").exists() or name.startswith(("unknown", "export"))
    rel.record("bad input (CLI)", trial=name, message=error)
