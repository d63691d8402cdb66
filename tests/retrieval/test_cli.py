"""The index, search and retrieval-eval verbs through typer's CliRunner (in-process, so
the fake embedder registered by the fixture is used via a config file)."""

import json
import re

import pytest
from typer.testing import CliRunner

from loop.cli import app

from .conftest import TOPICS

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TOPICS.items():
        (docs / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n")
    ws = tmp_path / "ws"
    r = runner.invoke(app, ["ingest", str(docs), "-w", str(ws), "--json"])
    assert r.exit_code == 0, r.output
    cfg = tmp_path / "synthloop.toml"
    cfg.write_text('[index]\nembedder = "fake:cli"\nwindow_words = 40\n')
    return ws, cfg, tmp_path


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None)


def test_index_search_and_eval(workspace):
    ws, cfg, tmp = workspace
    r, out = invoke("index", "-w", ws, "-c", cfg, "--json")
    assert r.exit_code == 0, r.output
    assert out["chunks"] == 5 and not out["cached"] and out["embedded"] > 0
    r, again = invoke("index", "-w", ws, "-c", cfg, "--json")
    assert again["cached"] and again["index_id"] == out["index_id"]
    # other search settings reuse the build and are kept for later searches
    other = tmp / "k3.toml"
    other.write_text(cfg.read_text() + 'k = 3\nmethod = "bm25"\n')
    r, third = invoke("index", "-w", ws, "-c", other, "--json")
    assert third["cached"] and third["index_id"] == out["index_id"]
    r, three = invoke("search", "ferry books glass yacht lighthouse", "-w", ws, "--json")
    assert three["method"] == "bm25" and len(three["hits"]) == 3
    invoke("index", "-w", ws, "-c", cfg, "--json")  # back to the defaults

    r, hits = invoke("search", "when does the ferry leave", "-k", 2, "-w", ws, "--json")
    assert r.exit_code == 0, r.output
    assert hits["method"] == "hybrid" and len(hits["hits"]) == 2
    assert hits["hits"][0]["source"].endswith("ferry.md")
    r, _ = invoke("search", "library books", "--method", "bm25", "-w", ws)
    assert r.exit_code == 0 and "library.md" in r.stdout

    gold = tmp / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(g) for g in [
        {"question": "How much is an adult ferry ticket?", "answers": ["four crowns"], "doc": "ferry.md"},
        {"question": "How many books can a member borrow?", "answers": ["twelve"], "doc": "library.md"},
    ]) + "\n")
    r, ev = invoke("retrieval-eval", "--eval-set", gold, "--k", "1,5", "-w", ws, "--json")
    assert r.exit_code == 0, r.output
    assert ev["default"] == "hybrid" and set(ev["methods"]) == {"bm25", "dense", "hybrid"}
    for figures in ev["methods"].values():
        assert {"recall@1", "recall@5", "mrr@10", "ndcg@10", "words@5"} <= set(figures)
    assert ev["methods"]["bm25"]["recall@5"] == 1.0


def test_errors_are_one_line(workspace):
    ws, cfg, tmp = workspace
    r, out = invoke("search", "ferry", "-w", ws, "--json")
    assert r.exit_code == 1 and "no index" in out["error"]
    r, out = invoke("index", "-w", ws, "--embedder", "nope:x", "--json")
    assert r.exit_code == 1 and "known prefixes" in out["error"] and "st:" in out["error"]
    invoke("index", "-w", ws, "-c", cfg)
    r = CliRunner().invoke(app, ["search", "ferry", "--method", "magic", "-w", str(ws)])
    assert r.exit_code == 2  # a usage error that lists the registered methods
    assert "'magic' is not one of" in r.output and "bm25_local" in r.output
    r, out = invoke("search", "ferry", "--reranker", "nope:x", "-w", ws, "--json")
    assert r.exit_code == 1 and "unknown reranker 'nope:x'" in out["error"]
    r, out = invoke("retrieval-eval", "--eval-set", tmp / "missing.jsonl", "-w", ws, "--json")
    assert r.exit_code == 1 and "cannot read" in out["error"]
    r, out = invoke("retrieval-eval", "--eval-set", tmp / "x.jsonl", "--k", "a,b", "-w", ws, "--json")
    assert r.exit_code == 1 and "--k" in out["error"]


def test_changed_corpus_reuses_vectors(workspace, fake_embedder):
    ws, cfg, tmp = workspace
    _, first = invoke("index", "-w", ws, "-c", cfg, "--json")
    (tmp / "docs" / "museum.md").write_text("# Museum\n\nThe museum shows ship models.\n")
    runner.invoke(app, ["ingest", str(tmp / "docs"), "-w", str(ws), "--json"])
    _, second = invoke("index", "-w", ws, "-c", cfg, "--json")
    assert second["index_id"] != first["index_id"]
    assert 0 < second["embedded"] <= 3 and second["reused"] >= first["embedded"]


def test_search_and_eval_with_a_named_cross_encoder(workspace, tiny_cross_encoder):
    ws, cfg, tmp = workspace
    invoke("index", "-w", ws, "-c", cfg)
    uri = f"ce:{tiny_cross_encoder}"
    r, out = invoke("search", "ferry ticket", "-k", 2, "--reranker", uri, "-w", ws, "--json")
    assert r.exit_code == 0, r.output
    assert len(out["hits"]) == 2 and out["hits"][0]["score"] >= out["hits"][1]["score"]
    gold = tmp / "gold.jsonl"
    gold.write_text(json.dumps({"question": "How much is a ferry ticket?",
                                "answers": ["four crowns"], "doc": "ferry.md"}) + "\n")
    r, ev = invoke("retrieval-eval", "--eval-set", gold, "--k", "5", "--reranker", uri,
                   "-w", ws, "--json")
    assert r.exit_code == 0, r.output
    assert ev["methods"]["hybrid"]["recall@5"] == 1.0  # 5 topics: the pool holds them all


def test_over_window_warning_names_the_ingest_setting_that_fits(workspace):
    ws, cfg, tmp = workspace
    (tmp / "docs" / "long.md").write_text("# Long\n\n" + " ".join(["harbour"] * 150) + "\n")
    runner.invoke(app, ["ingest", str(tmp / "docs"), "-w", str(ws), "--tokens-per-word", "0.6"])
    _, out = invoke("index", "-w", ws, "-c", cfg, "--json")
    (warning,) = out["warnings"]  # the fake embedder's window is 64 tokens
    assert "exceed the embedder's 64-token window" in warning
    fix = re.search(r"Chunking assumed 220 tokens at 0.6 per word: re-ingest with "
                    r"`--chunk-tokens 54 --tokens-per-word (1\.\d\d)`", warning)
    assert fix, warning
    runner.invoke(app, ["ingest", str(tmp / "docs"), "-w", str(ws), "--chunk-tokens", "54",
                        "--tokens-per-word", fix.group(1)])
    _, out = invoke("index", "-w", ws, "-c", cfg, "--json")
    assert not out["warnings"]  # the advice fits every chunk into the window
