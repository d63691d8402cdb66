"""``--prefer GLOB[=W]`` on index, search and retrieval-eval: a tie between two copies of
one document goes to the preferred one, on an index built without weights."""

import json

import pytest
from typer.testing import CliRunner

from loop.cli import app

from .conftest import TOPICS

runner = CliRunner()
QUESTION = "how much does a ferry ticket cost"


@pytest.fixture
def workspace(tmp_path):
    docs = tmp_path / "docs"
    # the same ferry page under two paths (headed apart: ingest keeps one of two identical files)
    for folder, heading in (("a", "Ferry notes"), ("b", "Ferry page")):
        (docs / folder).mkdir(parents=True)
        (docs / folder / "ferry.md").write_text(f"# {heading}\n\n{TOPICS['ferry']}\n")
    (docs / "library.md").write_text(f"# Library\n\n{TOPICS['library']}\n")
    ws = tmp_path / "ws"
    assert runner.invoke(app, ["ingest", str(docs), "-w", str(ws), "--json"]).exit_code == 0
    cfg = tmp_path / "synthloop.toml"
    cfg.write_text('[index]\nembedder = "fake:cli"\nwindow_words = 40\n')
    r = runner.invoke(app, ["index", "-w", str(ws), "-c", str(cfg), "--json"])
    assert r.exit_code == 0, r.output
    return ws, cfg, tmp_path, json.loads(r.stdout)["index_id"]


def invoke(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout) if r.stdout.strip().startswith("{") else r.stdout


def first(ws, *flags):
    out = invoke("search", QUESTION, "-k", 2, "-w", ws, "--json", *flags)
    return out["hits"][0]["source"], out


def test_search_prefer_changes_the_first_hit(workspace):
    ws, *_ = workspace
    plain, out = first(ws)
    assert out["source_weights"] == {} and out["hits"][0]["weight"] == 1.0
    other = "docs/a/ferry.md" if plain.endswith("b/ferry.md") else "docs/b/ferry.md"
    glob = other.split("/")[1] + "/*"
    source, out = first(ws, "--prefer", f"{glob}=3")
    assert source.endswith(other) and out["hits"][0]["weight"] == 3.0
    assert out["source_weights"] == {glob: 3.0}
    assert first(ws, "--prefer", glob)[1]["source_weights"] == {glob: 2.0}  # W's default
    table = invoke("search", QUESTION, "-k", 2, "-w", ws, "--prefer", f"{glob}=3")
    assert f"preferred sources: {glob}=3" in table and "x3" in table


def test_index_prefer_is_kept_for_later_searches_without_a_rebuild(workspace):
    ws, cfg, _, index_id = workspace
    plain, _ = first(ws)
    other = "a/*" if plain.endswith("b/ferry.md") else "b/*"
    out = invoke("index", "-w", ws, "-c", cfg, "--prefer", f"{other}=2", "--json")
    assert out["cached"] and out["index_id"] == index_id
    assert not first(ws)[0].endswith(plain)  # searches now use the index's weights
    invoke("index", "-w", ws, "-c", cfg, "--json")  # back to none
    assert first(ws)[0] == plain


def test_retrieval_eval_prefer_shows_the_weights_and_what_they_changed(workspace):
    ws, _, tmp, _ = workspace
    gold = tmp / "gold.jsonl"
    gold.write_text(json.dumps({"question": QUESTION, "answers": ["four crowns"],
                                "doc": "b/ferry.md"}) + "\n")
    args = ("retrieval-eval", "--eval-set", gold, "-w", ws, "--k", "1,5")
    plain = invoke(*args, "--json")
    assert "source_weights" not in plain and "changed@1" not in plain["methods"]["hybrid"]
    out = invoke(*args, "--prefer", "b/*=3", "--json")
    assert out["source_weights"] == {"b/*": 3.0}
    hybrid = out["methods"]["hybrid"]
    assert hybrid["preferred@1"] == 1.0 and hybrid["recall@1"] == 1.0
    assert hybrid["changed@1"] == 1.0 - plain["methods"]["hybrid"]["recall@1"]
    table = invoke(*args, "--prefer", "b/*=3")
    assert "preferred sources: b/*=3" in table


@pytest.mark.parametrize("bad", ["b/*=0", "b/*=-2", "b/*=x", "=3"])
def test_a_weight_that_is_not_positive_is_a_clear_error(workspace, bad):
    ws, *_ = workspace
    r = runner.invoke(app, ["search", QUESTION, "-w", str(ws), "--prefer", bad],
                      env={"COLUMNS": "250"})
    assert r.exit_code == 2 and "--prefer" in r.output and "W > 0" in r.output


def test_a_config_file_weight_of_zero_names_the_key(workspace):
    ws, _, tmp, _ = workspace
    cfg = tmp / "bad.toml"
    cfg.write_text('[index]\nembedder = "fake:cli"\nsource_weights = {"b/*" = 0}\n')
    r = runner.invoke(app, ["index", "-w", str(ws), "-c", str(cfg)], env={"COLUMNS": "250"})
    assert r.exit_code == 1 and "source_weights" in r.output and "> 0" in r.output
