"""Hostile documents for `ingest`: symlinks that leave the folder, JSONL files with bad
lines among good ones, HTML nested past any parser's depth, and chunking flags that
contradict each other. Every document is made here, in tmp."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()
SECRET = "root:x:0:0:root:/root:/bin/bash and other secret words"


def _ingest(ws_root, *args):
    r = runner.invoke(app, ["ingest", "-w", str(ws_root), *map(str, args), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _texts(corpus_path) -> str:
    from datasets import load_from_disk

    return "\n".join(load_from_disk(f"{corpus_path}/data")["text"])


def _outside(tmp_path):
    """docs/ with one normal file, a link to a file outside, a link to a folder outside
    (holding many files) and a link that stays inside."""
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "passwd.txt").write_text(SECRET + "\n")
    for i in range(20):
        (outside / f"conf{i}.txt").write_text(f"secret config number {i} words words\n")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "ferry.md").write_text("# Ferry\n\nThe island ferry leaves Pier 3 at 7:15 every day.\n")
    (docs / "sub" / "bins.md").write_text("# Bins\n\nGreen bins are emptied every second Tuesday.\n")
    (docs / "passwd.txt").symlink_to(outside / "passwd.txt")
    (docs / "etcdir").symlink_to(outside, target_is_directory=True)
    (docs / "also-bins.md").symlink_to(docs / "sub" / "bins.md")  # inside: fine
    return docs


def test_symlinks_out_of_the_folder_are_skipped_with_the_reason(tmp_path, rel):
    docs = _outside(tmp_path)
    out = _ingest(tmp_path / "ws", docs)
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in out["skipped"]}
    assert set(reasons) == {"passwd.txt", "etcdir"}, out["skipped"]
    assert all("outside the folder" in r and "--follow-symlinks" in r for r in reasons.values())
    assert str(tmp_path / "etc") in reasons["etcdir"]  # names where it leads
    text = _texts(out["corpus_path"])
    assert "root:x:0:0" not in text and "secret config" not in text
    assert "Pier 3" in text and "Green bins" in text
    assert out["files"] == 3  # ferry, sub/bins and the inside link (identical: one document)
    rel.record("hostile: ingest symlinks out of the folder", skipped=len(reasons), leaked=0)


def test_follow_symlinks_is_an_opt_in(tmp_path):
    docs = _outside(tmp_path)
    out = _ingest(tmp_path / "ws", docs, "--follow-symlinks")
    assert not out["skipped"], out["skipped"]
    text = _texts(out["corpus_path"])
    assert "root:x:0:0" in text and "secret config number 19" in text
    assert out["files"] == 4 + 21
    (tmp_path / "c.toml").write_text("[ingest]\nfollow_symlinks = true\n")  # a config key too
    out = _ingest(tmp_path / "ws2", docs, "-c", tmp_path / "c.toml")
    assert not out["skipped"]


def test_overlap_as_large_as_a_chunk_is_refused(tmp_path):
    (tmp_path / "a.md").write_text("words " * 50)
    for overlap in ("100", "300"):
        r = runner.invoke(app, ["ingest", str(tmp_path / "a.md"), "-w", str(tmp_path / "ws"),
                                "--chunk-tokens", "100", "--overlap-tokens", overlap, "--json"])
        assert r.exit_code == 1, r.output
        assert "overlap_tokens" in json.loads(r.stdout)["error"] and "smaller than" in r.stdout


def test_a_jsonl_file_with_bad_lines_keeps_the_good_ones_and_names_the_bad(tmp_path, rel):
    """A good 1 MB line, a 100k-deep array, a line whose text is a dict, a good line."""
    big = "The harbour ferry leaves at dawn. " * 30_000  # ~1 MB
    lines = [json.dumps({"text": big, "title": "Big"}), "[" * 100_000 + "]" * 100_000,
             json.dumps({"text": {"nested": "dict"}}),
             json.dumps({"text": "Green bins are emptied every second Tuesday.", "title": "Bins"})]
    d = tmp_path / "docs"
    d.mkdir()
    (d / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    out = _ingest(tmp_path / "ws", d)
    assert out["skipped"] == [], out["skipped"]  # the file is not "skipped whole"
    messages = [w["message"] for w in out["warnings"]]
    assert any("line 2" in m and "nested too deep" in m for m in messages), messages
    assert any("line 3" in m and "JSON dict" in m for m in messages), messages
    assert out["documents"] == 2
    text = _texts(out["corpus_path"])
    assert "Green bins" in text and "harbour ferry" in text  # line 4 is not lost
    rel.record("hostile: JSONL with bad lines", kept=2, named=2)


def test_html_nested_past_the_parsers_limit_says_so(tmp_path):
    d = tmp_path / "docs"
    d.mkdir()
    (d / "deep.html").write_text("<html><body>" + "<div>" * 200_000 + "deep text"
                                 + "</div>" * 200_000 + "</body></html>")
    (d / "empty.html").write_text("<html><body><script>x()</script></body></html>")
    out = _ingest(tmp_path / "ws", d)
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in out["skipped"]}
    assert "nested deeper than the parser's limit" in reasons["deep.html"], reasons
    assert "no visible text" in reasons["empty.html"]  # a page with none still says that
