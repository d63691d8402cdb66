"""Scores beyond factoid QA: format compliance, classification accuracy and macro-F1,
extraction field F1, and the judge's style grade (issue 16)."""

from __future__ import annotations

import json

import pytest

from generators.formats import FormatError, complies, parse_spec, violations
from loop.eval.metrics import field_f1, macro_f1, predicted_label


def test_format_specs_check_what_they_say():
    assert complies("At 7:15.", {"max_words": 3})
    assert violations("It leaves at 7:15 every day", {"max_words": 3}) == ["6 words > 3"]
    assert complies("2024-05-01", parse_spec({"regex": r"\d{4}-\d\d-\d\d"}))
    assert not complies("on 2024-05-01", parse_spec({"regex": r"\d{4}-\d\d-\d\d"}))
    spec = parse_spec({"json_schema": {"type": "object", "required": ["fee"],
                                       "properties": {"fee": {"type": "number"}}}})
    assert complies('```json\n{"fee": 12}\n```', spec)
    assert violations('{"fee": "twelve"}', spec)[0].startswith("JSON fails the schema")
    assert violations("twelve", spec) == ["no JSON object"]
    bullets = parse_spec("bullets=2;headings=Summary")
    assert complies("## Summary\n- one\n- two", bullets)
    assert violations("Summary:\n- one", bullets) == ["1 bullets, not 2"]
    assert violations("- one\n- two", bullets) == ["missing heading(s) Summary"]
    assert parse_spec("max_words=12") == {"max_words": 12} and parse_spec("") is None


@pytest.mark.parametrize("bad", ['{"max_wrds": 3}', "max_words=lots", '{"regex": "("}',
                                 '{"json_schema": {"type": 7}}', "max_words", "[1]"])
def test_a_bad_format_spec_is_one_clear_error(bad):
    with pytest.raises(FormatError):
        parse_spec(bad)


def test_predicted_label_and_macro_f1_match_sklearn():
    from sklearn.metrics import f1_score

    labels = ["transit", "parks", "council"]
    assert predicted_label("Transit.", labels) == "transit"
    assert predicted_label("This text is about the parks and the council", labels) == "parks"
    assert predicted_label("no idea", labels) == "no idea"
    gold = ["transit", "transit", "parks", "council", "council", "parks"]
    pred = ["transit", "parks", "parks", "council", "transit", "no idea"]
    rows = [{"label": p, "gold_label": g} for p, g in zip(pred, gold, strict=True)]
    want = f1_score(gold, pred, labels=sorted(set(gold)), average="macro")
    assert macro_f1(rows) == pytest.approx(want)


def test_field_f1_compares_keys_and_values_after_normalising():
    gold = {"fare": "2.40 crowns", "Route": "Harbour Loop", "stops": ["Quay", "Mill"]}
    assert field_f1('{"fare": "2.40 Crowns", "route": "harbour loop", "stops": ["Quay", "Mill"]}', gold) == 1
    assert field_f1('{"fare": "2.40 crowns", "operator": "X"}', gold) == pytest.approx(2 * 1 / 5)
    assert field_f1("the fare is 2.40 crowns", gold) == 0


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_student, module_server):
    from loop.eval.stage import EvalConfig, evaluate
    from loop.ingest import ingest
    from loop.workspace import Workspace

    root = tmp_path_factory.mktemp("tasks")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    (docs / "fees.md").write_text("# Fees\n\nHarbour mooring fees are 12 crowns a night.\n")
    gold = root / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"question": "When does the ferry leave?", "answers": ["7:15"], "doc": "ferry.md"},
        {"question": "Mooring fee? One short line.", "answers": ["12 crowns"],
         "format": {"max_words": 40}},
        {"question": "Mooring fee as JSON", "answers": ["12 crowns"],
         "format": {"json_schema": {"type": "object", "required": ["fee"]}}},
        {"task": "classify", "question": "Topic of: 'mooring fees'? Labels: fees, ferry",
         "label": "fees", "labels": ["fees", "ferry"]},
        {"task": "classify", "question": "Topic of: 'the 7:15 boat'? Labels: fees, ferry",
         "label": "ferry", "labels": ["fees", "ferry"]},
        {"task": "extract", "question": "Extract the fee as JSON.", "fields": {"fee": "12 crowns"}},
    ]))
    style = root / "style.txt"
    style.write_text("Answer like a harbour clerk: plain words, amounts in crowns.\n")
    ws = Workspace(root / "ws")
    ingest(ws, [docs])
    server = module_server
    cfg = EvalConfig(student=f"hf:{tiny_student}", setups=["base"], max_new_tokens=6, n_boot=200,
                     judge="openai:judge", judge_url=server.url, style=str(style))
    result = evaluate(ws, cfg, eval_set=gold)
    yield ws, result, server
    ws.close()


def test_every_task_score_has_an_interval(scored):
    _, result, _ = scored
    row = result.setups["base"]
    for m in ("em", "f1", "format", "accuracy", "macro_f1", "field_f1", "style"):
        assert row[m]["ci_low"] <= row[m]["mean"] <= row[m]["ci_high"], m
    assert row["format"]["mean"] in (0, 0.5, 1)  # two format items
    assert "Task scores," in result.verdict


def test_each_metric_reads_only_its_items(scored):
    from datasets import load_from_disk

    _, result, server = scored
    preds = {p["eval_id"]: p for p in load_from_disk(str(result.path / "predictions")).to_list()}
    assert [preds[i]["f1"] is not None for i in "123456"] == [True, True, True, False, False, False]
    assert [preds[i]["format"] is not None for i in "123456"] == [False, True, True, False, False, False]
    assert [preds[i]["accuracy"] is not None for i in "123456"] == [False] * 3 + [True, True, False]
    assert preds["4"]["gold_label"] == "fees" and preds["4"]["label"] is not None
    assert preds["6"]["field_f1"] is not None and preds["6"]["judge"] is None
    styled = [r["messages"][0]["content"] for r in server.requests
              if "follows a style guide" in r["messages"][0]["content"]]
    assert len(styled) == sum(bool(p["answer"]) for p in preds.values())
    assert all("harbour clerk" in m for m in styled)


def test_the_console_prints_the_task_scores(scored, capsys):
    from loop.cli.eval import show_scores

    _, result, _ = scored
    show_scores(result.summary())
    line = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip().startswith("base")][0]
    assert all(k in line for k in ("F1", "format", "accuracy", "macro_f1", "field_f1", "style"))


def test_a_bad_format_in_a_gold_set_names_the_item(tmp_path):
    from loop.errors import InputError
    from loop.goldset import read_gold_set

    gold = tmp_path / "g.jsonl"
    gold.write_text(json.dumps({"id": "q7", "question": "x?", "answers": ["y"],
                                "format": {"max_wrds": 3}}) + "\n")
    with pytest.raises(InputError, match="item q7: unknown format key"):
        read_gold_set(gold)


def test_edge_cases_the_review_found(tmp_path):
    from loop.errors import InputError
    from loop.eval.metrics import METRICS
    from loop.eval.stage import EvalConfig, Question
    from loop.goldset import read_gold_set

    fmt = METRICS["format"].per_answer
    q = Question("1", "q", ["a"], [], "", format={"max_words": 4})
    assert fmt("", q, None) == 0.0 and fmt("two words", q, None) == 1.0  # nothing is no format
    assert "style" not in EvalConfig().resolved()  # evaluations made before keep their ids
    for bad in ('{"regex": 5}', '{"headings": 5}'):
        with pytest.raises(FormatError):
            parse_spec(bad)
    gold = tmp_path / "g.jsonl"
    gold.write_text(json.dumps({"task": "extract", "question": "x?", "answers": ["y"]}) + "\n")
    with pytest.raises(InputError, match="needs its gold 'fields'"):
        read_gold_set(gold)


def test_a_classify_only_set_has_no_f1_verdict_and_no_nan(tmp_path, tiny_student):
    import math

    from loop.eval.stage import EvalConfig, evaluate
    from loop.ingest import ingest
    from loop.workspace import Workspace

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nThe ferry leaves at 7:15.\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps({"task": "classify", "question": f"Label {i}?",
                                          "label": "Ferry", "labels": ["ferry", "fees"]})
                              for i in range(3)))
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [docs])
        r = evaluate(ws, EvalConfig(student=f"hf:{tiny_student}", setups=["base"],
                                    max_new_tokens=3, n_boot=100), eval_set=gold)
    assert r.verdict.startswith("No question-answer items") and r.differences == []
    assert set(r.setups["base"]) == {"accuracy", "macro_f1"}
    assert not any(math.isnan(v) for cell in r.setups["base"].values() for v in cell.values())
