"""Ingestion: every format, every bad input, stable ids and incremental re-ingest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loop.corpus import load_corpus
from loop.events import Collector, Finished, Started, Warned
from loop.ingest import ingest
from loop.ingest.config import IngestConfig


@pytest.fixture
def docs(tmp_path, write_pdf):
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "guide.md").write_text("# Ferry guide\n\nThe ferry leaves at 7:15 from Pier 3.\n")
    (d / "notes.txt").write_text("Notes\n\nThe harbour master is Ilse Brannock.\n")
    (d / "sub" / "manual.rst").write_text("Manual\n======\n\nPress the red lever twice.\n")
    (d / "sub" / "page.html").write_text(
        "<html><head><title>Fares</title><style>p{color:red}</style>"
        "<script>alert('no')</script></head><body><nav>Home</nav><h1>Bus fares</h1>"
        "<p>An adult ticket costs <b>2.40</b> crowns.</p><!-- a comment --></body></html>"
    )
    write_pdf(d / "sub" / "report.pdf", "Annual report. The council met 14 times in 2031.")
    (d / "squad.json").write_text(json.dumps({"data": [{"title": "Lighthouse", "paragraphs": [
        {"context": "The lighthouse was built in 1842 by Tomas Wrede.", "qas": []},
        {"context": "It is 31 metres tall.", "document_id": 7, "qas": []}]}]}))
    (d / "records.jsonl").write_text(
        json.dumps({"text": "Library cards are free for residents.", "title": "Library"}) + "\n"
        + "not json\n" + json.dumps({"text": "Parks close at dusk."}) + "\n"
    )
    latin = ("Le café du port sert une crème brûlée à 4 couronnes. Les éclairs sont préparés "
             "chaque matin, et la pâtisserie ferme à midi. Où est la bibliothèque? Près du marché. ")
    (d / "latin1.txt").write_bytes((latin * 3).encode("latin-1"))
    (d / "badbytes.txt").write_bytes(
        ("Mostly fine UTF-8 text about the market square, Malmö. " * 30).encode() + b"\xff oops"
    )
    return d


def _by_source(ws):
    ds = load_corpus(ws)
    out = {}
    for row in ds:
        out.setdefault(row["source"], []).append(row)
    return out


def test_every_format_is_read(ws, docs):
    events = Collector()
    r = ingest(ws, [docs], emit=events)
    rows = _by_source(ws)
    text = {src: " ".join(c["text"] for c in chunks) for src, chunks in rows.items()}
    assert "7:15 from Pier 3" in text["docs/guide.md"]
    assert "Ilse Brannock" in text["docs/notes.txt"]
    assert "red lever" in text["docs/sub/manual.rst"]
    html = text["docs/sub/page.html"]
    assert "# Bus fares" in html and "2.40 crowns" in html
    assert "alert" not in html and "color" not in html and "comment" not in html
    assert "14 times in 2031" in text["docs/sub/report.pdf"]
    assert "1842" in text["docs/squad.json#0.0"] and "31 metres" in text["docs/squad.json#0.1"]
    assert rows["docs/squad.json#0.0"][0]["title"] == "Lighthouse"
    assert rows["docs/records.jsonl:1"][0]["title"] == "Library"
    assert "Parks close" in text["docs/records.jsonl:3"]
    assert "crème brûlée" in text["docs/latin1.txt"]
    assert "market square" in text["docs/badbytes.txt"]
    assert r.documents == len(rows) == 11 and r.skipped == []
    warned = [e.message for e in events.of(Warned)]
    assert any("line 2" in m for m in warned)  # the bad JSONL line is reported, not dropped
    assert any("invalid UTF-8" in m for m in warned)
    assert events.of(Started) and events.of(Finished)
    for chunks in rows.values():
        for c in chunks:
            assert set(c) == {"chunk_id", "doc_id", "source", "title", "text", "start", "end"}


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty"),
        ("blank.txt", b"  \n\n \t", "empty"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image"),
        ("binary.txt", b"\x00\x01\x02\x03" * 100, "binary"),
        ("fake.md", b"\x89PNG\r\n\x1a\n" + bytes(200), "binary"),
        ("broken.pdf", b"%PDF-1.4\n this is not really a pdf", "PDF"),
        ("notsquad.json", b'{"rows": [1, 2]}', "SQuAD"),
        ("badjson.json", b'{"data": [', "invalid JSON"),
        ("notext.jsonl", b'{"body": "x"}\n', "text"),
        ("archive.zip", b"PK\x03\x04rest", "unsupported"),
        ("script.html", b"<html><script>var a = 1;</script></html>", "no visible text"),
    ],
)
def test_bad_input_is_skipped_with_a_reason(ws, tmp_path, name, content, reason):
    d = tmp_path / "bad"
    d.mkdir()
    (d / name).write_bytes(content)
    (d / "good.md").write_text("# Good\n\nA good file.")
    r = ingest(ws, [d])
    assert r.documents == 1
    assert [s["path"].endswith(name) for s in r.skipped] == [True]
    assert reason.lower() in r.skipped[0]["reason"].lower()


def test_encrypted_and_image_only_pdfs_are_skipped(ws, tmp_path, write_pdf):
    d = tmp_path / "pdfs"
    d.mkdir()
    write_pdf(d / "locked.pdf", "secret text", encrypt="pw")
    from fpdf import FPDF

    blank = FPDF()
    blank.add_page()
    blank.output(str(d / "blank.pdf"))
    (d / "ok.txt").write_text("fine")
    r = ingest(ws, [d])
    reasons = {os.path.basename(s["path"]): s["reason"] for s in r.skipped}
    assert "encrypted" in reasons["locked.pdf"]
    assert "no extractable text" in reasons["blank.pdf"]


def test_symlink_loops_and_unreadable_files(ws, tmp_path):
    d = tmp_path / "tree"
    (d / "a").mkdir(parents=True)
    (d / "a" / "doc.md").write_text("# Doc\n\nText.")
    os.symlink(d, d / "a" / "back")  # a loop through a folder symlink
    os.symlink(d / "self", d / "self")  # a link to itself
    os.symlink(d / "missing.md", d / "dangling.md")
    secret = d / "secret.txt"
    secret.write_text("hidden")
    secret.chmod(0)
    r = ingest(ws, [d])
    reasons = {os.path.basename(s["path"]): s["reason"] for s in r.skipped}
    assert "symlink loop" in reasons["back"]
    assert "symlink loop" in reasons["self"]
    assert "broken symlink" in reasons["dangling.md"]
    if os.geteuid() != 0:  # root reads anything
        assert "permission denied" in reasons["secret.txt"]
    assert r.documents >= 1


def test_deep_nesting_in_html_does_not_crash(ws, tmp_path):
    d = tmp_path / "deep"
    d.mkdir()
    (d / "deep.html").write_text("<div>" * 5000 + "deep text" + "</div>" * 5000)
    r = ingest(ws, [d])
    assert r.documents + len(r.skipped) == 1


def test_chunk_ids_are_stable_across_runs_and_workspaces(tmp_path, docs):
    from loop.workspace import Workspace

    ids = []
    for name in ("w1", "w2"):
        with Workspace(tmp_path / name) as w:
            ingest(w, [docs])
            ids.append(load_corpus(w)["chunk_id"])
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0])


def test_unchanged_reingest_does_no_work(ws, docs):
    first = ingest(ws, [docs])
    again = ingest(ws, [docs])
    assert again.cached and again.read == 0 and again.corpus_id == first.corpus_id
    assert again.unchanged == first.files


def test_changed_file_replaces_only_its_own_chunks(ws, docs):
    ingest(ws, [docs])
    before = _by_source(ws)
    (docs / "notes.txt").write_text("Notes\n\nThe harbour master is now Oskar Lind.\n")
    r = ingest(ws, [docs])
    after = _by_source(ws)
    assert r.read == 1 and not r.cached
    assert "Oskar Lind" in after["docs/notes.txt"][0]["text"]
    for src in before:
        if src != "docs/notes.txt":
            assert [c["chunk_id"] for c in before[src]] == [c["chunk_id"] for c in after[src]]


def test_incremental_equals_fresh_build(tmp_path, docs):
    from loop.workspace import Workspace

    with Workspace(tmp_path / "inc") as w:
        ingest(w, [docs])
        (docs / "guide.md").write_text("# Ferry guide\n\nThe ferry now leaves at 8:00.\n")
        (docs / "sub" / "manual.rst").unlink()
        (docs / "new.md").write_text("# New\n\nA new page.")
        r = ingest(w, [docs])
        assert r.removed == 1
        inc = load_corpus(w).to_list()
    with Workspace(tmp_path / "fresh") as w:
        ingest(w, [docs])
        fresh = load_corpus(w).to_list()
    assert inc == fresh


def test_identical_documents_are_stored_once(ws, tmp_path):
    d = tmp_path / "dup"
    d.mkdir()
    (d / "a.md").write_text("# Same\n\nIdentical text.")
    (d / "b.md").write_text("# Same\n\nIdentical text.")
    r = ingest(ws, [d])
    assert r.documents == 1 and r.duplicates == 1
    assert load_corpus(ws)["source"] == ["dup/a.md"]
    (d / "a.md").unlink()  # the copy that named it is gone: the other takes over
    ingest(ws, [d])
    assert load_corpus(ws)["source"] == ["dup/b.md"]


def test_chunking_change_rechunks_everything(ws, docs):
    first = ingest(ws, [docs])
    second = ingest(ws, [docs], IngestConfig(chunk_tokens=32, overlap_tokens=8))
    assert second.read == first.files and second.corpus_id != first.corpus_id


def test_lost_corpus_folder_is_rebuilt(ws, docs):
    import shutil

    first = ingest(ws, [docs])
    shutil.rmtree(first.corpus_path)
    again = ingest(ws, [docs])
    assert again.corpus_id == first.corpus_id and again.corpus_path.exists()
    assert len(load_corpus(ws)) == first.chunks


def test_bundled_example_ingests_cleanly(ws, example_dir):
    r = ingest(ws, [example_dir])
    assert r.skipped == [] and 20 <= r.documents <= 30
    words = sum(len(t.split()) for t in load_corpus(ws)["text"])
    assert 15_000 <= words <= 30_000  # chunk overlap repeats a few words


def test_worker_processes_give_the_same_corpus(tmp_path, monkeypatch):
    import loop.ingest.parse as parse
    from loop.workspace import Workspace

    d = tmp_path / "many"
    d.mkdir()
    for i in range(12):
        (d / f"doc{i}.md").write_text(f"# Doc {i}\n\n" + f"Fact {i} is here. " * 200)
    (d / "bad.pdf").write_bytes(b"%PDF-broken")
    (d / "rows.jsonl").write_text('{"text": "streamed in the parent"}\n')
    with Workspace(tmp_path / "serial") as w:
        ingest(w, [d], IngestConfig(workers=1))
        serial = load_corpus(w).to_list()
    monkeypatch.setattr(parse, "POOL_MIN_BYTES", 0)
    with Workspace(tmp_path / "pool") as w:
        r = ingest(w, [d], IngestConfig(workers=2))
        pooled = load_corpus(w).to_list()
    assert pooled == serial
    assert [os.path.basename(s["path"]) for s in r.skipped] == ["bad.pdf"]
    assert IngestConfig(workers=2).digest() == IngestConfig(workers=1).digest()


def test_bundled_gold_answers_are_in_their_documents(ws, example_dir):
    ingest(ws, [example_dir])
    text_of = {}
    for row in load_corpus(ws):
        src = row["source"].removeprefix("marrowick/")
        text_of[src] = text_of.get(src, "") + " " + " ".join(row["text"].split())
    lines = (example_dir.parent / "marrowick-eval.jsonl").read_text().splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    assert len(items) >= 80
    for item in items:
        assert item["question"] and item["answers"], item
        if item.get("task") == "classify":  # its text is from its document, its label the folder
            excerpt = item["question"].split("<text>\n", 1)[1].split("\n</text>", 1)[0]
            assert excerpt in text_of[item["doc"]] and item["answers"] == [item["doc"].split("/")[0]]
            assert item["answers"][0] in item["labels"]
        else:
            assert " ".join(item["answers"][0].split()) in text_of[item["doc"]], item
    from loop.goldset import read_gold_set

    read = read_gold_set(example_dir.parent / "marrowick-eval.jsonl")  # format specs are valid
    assert sum(it.task == "classify" for it in read) >= 4 and sum(bool(it.format) for it in read) >= 3


def test_only_makes_the_corpus_exactly_the_given_paths(ws, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.md").write_text("# X\n\nAlpha text.")
    (b / "y.md").write_text("# Y\n\nBeta text.")
    first = ingest(ws, [a])
    both = ingest(ws, [b])
    assert both.documents == 2  # by default the corpus keeps a/
    again = ingest(ws, [a], only=True)
    assert again.documents == 1 and again.corpus_id == first.corpus_id and again.cached


def test_unreadable_file_is_skipped_as_permission_denied_even_as_root(ws, tmp_path, monkeypatch):
    """Root reads a chmod-0 file, so the denial is made where the reader reads the bytes."""
    import errno

    d = tmp_path / "d"
    d.mkdir()
    (d / "ok.md").write_text("# Ok\n\nReadable text here.\n")
    (d / "locked.txt").write_text("no access")
    real = Path.read_bytes

    def deny(self):
        if self.name == "locked.txt":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    r = ingest(ws, [d], IngestConfig(workers=1))
    reasons = {os.path.basename(s["path"]): s["reason"] for s in r.skipped}
    assert reasons == {"locked.txt": "permission denied"}
    assert r.documents == 1
