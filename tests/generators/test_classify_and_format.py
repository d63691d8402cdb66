"""The classify task (labels from the corpus's structure or a label file) and answer formats
in generation (issue 16)."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import pytest

from loop.errors import ConfigError
from loop.events import Warned
from loop.generate import GenerateConfig, generate
from loop.samples import load_generated_eval_set, load_samples


def test_rules_labels_each_chunk_by_its_folder_offline(example_ws):
    from loop.corpus import load_corpus

    r = generate(example_ws, GenerateConfig(tasks=["classify"], limit=60))
    ds = load_samples(example_ws)
    assert r.by_task == {"classify": len(ds)} and len(ds) >= 50
    source = dict(zip(*load_corpus(example_ws).select_columns(["chunk_id", "source"]).to_dict().values(),
                      strict=True))
    labels = {row["messages"][-1]["content"] for row in ds}
    assert {"transit", "council", "harbour"} <= labels
    for row in ds:
        user, label = row["messages"][0]["content"], row["messages"][-1]["content"]
        assert label == PurePosixPath(source[row["chunk_ids"][0]]).parent.name
        assert user.startswith("Which one of these labels fits the text best: about, council,")
        assert "\n\n<text>\n" in user  # the text it labels, without the title or headings
        assert "\n#" not in user.split("<text>", 1)[1]


def test_generated_classify_eval_items_come_only_from_untrained_chunks(example_ws):
    generate(example_ws, GenerateConfig(tasks=["classify"], limit=60))
    train = load_samples(example_ws)
    trained = {r["chunk_ids"][0] for r in train if r["split"] == "train"}
    generate(example_ws, GenerateConfig(tasks=["classify"], limit=60), eval_mode=True)
    items = [r for r in load_generated_eval_set(example_ws) if r["task"] == "classify"]
    assert items and all(r["chunk_ids"][0] not in trained for r in items)
    assert all(r["answers"][0] in r["labels"] and len(r["labels"]) >= 5 for r in items)


def test_a_label_file_needs_a_model_teacher(example_ws, tmp_path, server):
    labels = tmp_path / "labels.txt"
    labels.write_text("Transit\nCouncil\nHarbour\n")
    with pytest.raises(ConfigError, match="needs a model teacher"):
        generate(example_ws, GenerateConfig(tasks=["classify"], labels=str(labels), limit=5))
    r = generate(example_ws, GenerateConfig(tasks=["classify"], labels=str(labels), limit=12,
                                            teacher="openai:scripted", teacher_url=server.url))
    ds = load_samples(example_ws)
    assert r.samples == len(ds) > 0
    assert {row["messages"][-1]["content"] for row in ds} <= {"Transit", "Council", "Harbour"}
    assert all("Allowed labels: Transit, Council, Harbour" in q["messages"][-1]["content"]
               for q in server.requests)


def test_a_format_is_told_filtered_and_carried_and_rules_says_once_it_cannot_apply_it(example_ws, tmp_path):
    events = []
    cfg = GenerateConfig(tasks=["qa"], limit=40, format="max_words=2")
    r = generate(example_ws, cfg, style="Write like a harbour clerk.", emit=events.append)
    warned = [e.message for e in events if isinstance(e, Warned) and "cannot apply" in e.message]
    assert len(warned) == 1 and "--style and --format" in warned[0]
    ds = load_samples(example_ws)
    assert r.rejected.get("format", 0) > 0
    assert all(len(row["messages"][-1]["content"].split()) <= 2 for row in ds)
    assert all(json.loads(row["filters"])["format"]["ok"] for row in ds)
    generate(example_ws, cfg, eval_mode=True)
    assert {row["format"] for row in load_generated_eval_set(example_ws)} == {json.dumps({"max_words": 2})}


def test_a_bad_format_is_refused_before_any_work():
    with pytest.raises(ValueError, match="unknown format key"):
        GenerateConfig(format='{"max_wrds": 2}')


def test_classify_rows_are_decontaminated_on_their_text_not_their_instruction(example_ws, example_dir):
    """The bundled gold set's classify items share the instruction with every classify row:
    only the rows whose chunk holds a gold item's text are removed."""
    gold = example_dir.parent / "marrowick-eval.jsonl"
    r = generate(example_ws, GenerateConfig(tasks=["classify"]), eval_set=gold)
    assert r.samples > 200 and 1 <= r.rejected.get("decontam", 0) <= 15, r.rejected
    texts = [json.loads(line)["question"].split("<text>\n", 1)[1].split("\n</text>")[0]
             for line in gold.read_text().splitlines() if '"classify"' in line]
    for row in load_samples(example_ws):
        assert not any(t in " ".join(row["messages"][0]["content"].split()) for t in texts)


def test_gold_lines_generate_cannot_read_are_said_not_dropped(example_ws, tmp_path):
    """A gold set line `generate --eval-set` cannot read is not decontaminated against: one
    warning names it, the other lines are still kept out of the training data."""
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"question": "When does the Kell Island ferry leave?", "answers": ["06:40"]}\n'
                    '{"question": "broken\n')
    seen = []
    generate(example_ws, GenerateConfig(tasks=["qa"], limit=10), eval_set=gold, emit=seen.append)
    warned = [e.message for e in seen if isinstance(e, Warned)]
    assert any("1 line(s) skipped" in m and "gold.jsonl:2" in m and "not kept out" in m for m in warned), warned
