"""Gold sets read line by line: a bad line (not JSON, nested past the JSON reader's depth,
a wrong field, an unknown task) is passed over and named with its line number and reason,
the other lines are kept, in `eval` (read_gold_set), `generate` (gold_questions) and
`retrieval-eval`. A set with no usable line is one error naming the first line's reason."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()
DEEP = "[" * 100_000 + "]" * 100_000


def _gold(path):
    lines = [json.dumps({"question": "When does the ferry leave?", "answers": ["7:15"]}), DEEP,
             "not json at all", json.dumps({"question": "x?", "answers": ["y"], "task": "dance"}),
             json.dumps({"q": "no question field"}),
             json.dumps({"question": "Which pier?", "answers": ["Pier 3"]})]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_gold_set_keeps_the_good_lines_and_names_the_bad(tmp_path, rel):
    from loop.goldset import gold_questions, read_gold_set

    items = read_gold_set(_gold(tmp_path / "gold.jsonl"))
    assert [it.question for it in items] == ["When does the ferry leave?", "Which pier?"]
    assert [s.split(":")[1] for s in items.skipped] == ["2", "3", "4", "5"]
    assert "nested too deep" in items.skipped[0] and "unknown task 'dance'" in items.skipped[2]
    assert "4 line(s) skipped" in items.skipped_note()
    qs = gold_questions(tmp_path / "gold.jsonl")
    assert qs == ["When does the ferry leave?", "x?", "Which pier?"]
    assert [s.split(":")[1] for s in qs.skipped] == ["2", "3", "5"]
    rel.record("hostile: eval set with bad lines", kept=2, skipped=4)


def test_a_set_of_only_bad_lines_is_one_error_with_the_first_reason(tmp_path):
    from loop.errors import InputError
    from loop.goldset import gold_questions, read_gold_set

    (tmp_path / "deep.jsonl").write_text(DEEP + "\n")
    with pytest.raises(InputError, match="deep.jsonl:1: JSON nested too deep"):
        read_gold_set(tmp_path / "deep.jsonl")
    with pytest.raises(InputError, match="deep.jsonl:1: JSON nested too deep"):
        gold_questions(tmp_path / "deep.jsonl")
    (tmp_path / "deep.json").write_text(DEEP)  # SQuAD JSON is one document: one reason
    with pytest.raises(InputError, match="nested too deep|RecursionError"):
        read_gold_set(tmp_path / "deep.json")
    with pytest.raises(InputError, match="RecursionError"):
        gold_questions(tmp_path / "deep.json")


def test_retrieval_eval_scores_the_good_lines_and_lists_the_bad(tmp_path, rel):
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    docs = rel.write_docs(tmp_path / "docs")
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
    gold = _gold(tmp_path / "gold.jsonl")
    r = runner.invoke(app, ["retrieval-eval", "--eval-set", str(gold), "-w", str(tmp_path / "ws"),
                            "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["questions"] == 2 and len(out["skipped_lines"]) == 4
    assert "gold.jsonl:2: JSON nested too deep" in out["skipped_lines"][0]
    r = runner.invoke(app, ["retrieval-eval", "--eval-set", str(gold), "-w", str(tmp_path / "ws")])
    assert r.exit_code == 0 and "gold.jsonl:4: unknown task" in r.output, r.output
