"""The eval stage and the report on a tiny corpus with a tiny student (base and rag)."""

from __future__ import annotations

import json

import pytest

from loop.eval.answers import clean_answer
from loop.eval.report import recommend, verdict, write_report
from loop.eval.stage import EvalConfig, evaluate
from loop.ingest import ingest
from loop.workspace import Workspace


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_student):
    from loop.index import IndexConfig, build_index

    root = tmp_path_factory.mktemp("eval")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    (docs / "fees.md").write_text("# Fees\n\nHarbour mooring fees are 12 crowns a night.\n")
    (docs / "lib.md").write_text("# Library\n\nThe library opens at nine on Saturdays.\n")
    gold = root / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"question": "When does the boat to the islands go?", "answers": ["7:15"], "doc": "ferry.md"},
        {"question": "What does a night's mooring cost?", "answers": ["12 crowns"], "doc": "fees.md"},
        {"question": "When can I borrow books on Saturday?", "answers": ["nine"], "doc": "lib.md"},
    ]))
    ws = Workspace(root / "ws")
    ingest(ws, [docs])
    build_index(ws, IndexConfig())
    cfg = EvalConfig(student=f"hf:{tiny_student}", setups=["base", "rag"], max_new_tokens=6,
                     n_boot=200)
    result = evaluate(ws, cfg, eval_set=gold)
    yield ws, result, cfg, gold
    ws.close()


def test_every_setup_answers_every_question(scored):
    from datasets import load_from_disk

    _, result, _, _ = scored
    preds = load_from_disk(str(result.path / "predictions")).to_list()
    assert len(preds) == 6 and {p["setup"] for p in preds} == {"base", "rag"}
    for p in preds:
        assert {"eval_id", "setup", "answer", "retrieved_chunk_ids", "latency_ms",
                "prompt_tokens", "completion_tokens", "em", "f1"} <= set(p)
        assert bool(p["retrieved_chunk_ids"]) == (p["setup"] == "rag")
        assert p["question"] and p["answers"]  # the drill-down shows what was scored
    rag = [p for p in preds if p["setup"] == "rag"]
    assert all(p["hit"] is not None and p["gold_chunk_ids"] for p in rag)
    assert result.setups["rag"]["hit"]["mean"] > 0  # the retriever finds the gold chunks
    assert result.origin.startswith("human gold set")


def test_intervals_differences_and_verdict(scored):
    _, result, _, _ = scored
    for row in result.setups.values():
        for m in ("em", "f1"):
            assert row[m]["ci_low"] <= row[m]["mean"] <= row[m]["ci_high"]
    assert {(d["a"], d["b"], d["metric"]) for d in result.differences} == {
        ("base", "rag", "answer_f1"), ("base", "rag", "f1"), ("base", "rag", "em")}
    assert "Recommendation: base" in result.verdict


def test_unchanged_rerun_is_cached(scored):
    ws, result, cfg, gold = scored
    again = evaluate(ws, cfg, eval_set=gold)
    assert again.cached and again.eval_id == result.eval_id


def test_report_files(scored, tmp_path):
    ws, result, _, _ = scored
    paths = write_report(ws, result.path, tmp_path / "report")
    md = (tmp_path / "report" / "report.md").read_text()
    assert md.startswith("# synthloop report") and "**Verdict.**" in md
    assert json.loads((tmp_path / "report" / "report.json").read_text())["questions"] == 3
    assert paths["plots"]
    for png in paths["plots"]:
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_out_never_replaces_a_report_unasked(scored, tmp_path):
    from loop.errors import InputError
    from loop.eval.report import report_evaluation

    ws, result, _, _ = scored
    out = tmp_path / "mine"
    report_evaluation(ws, result.eval_id, out)
    (out / "report.md").write_text("my notes")
    with pytest.raises(InputError, match="already holds a report") as err:
        report_evaluation(ws, result.eval_id, out)
    assert "--force" in str(err.value) and (out / "report.md").read_text() == "my notes"
    report_evaluation(ws, result.eval_id, out, force=True)
    assert (out / "report.md").read_text().startswith("# synthloop report")
    report_evaluation(ws, result.eval_id)  # the workspace's own folder: always rewritten
    report_evaluation(ws, result.eval_id)


def test_verdict_follows_the_intervals():
    table = {s: {"f1": {"mean": m}} for s, m in (("base", .1), ("rag", .6), ("tuned", .3), ("combined", .62))}
    diffs = [
        {"a": "rag", "b": "tuned", "metric": "f1", "mean": .3, "ci_low": .2, "ci_high": .4, "significant": True},
        {"a": "base", "b": "rag", "metric": "f1", "mean": -.5, "ci_low": -.6, "ci_high": -.4, "significant": True},
        {"a": "combined", "b": "rag", "metric": "f1", "mean": .02, "ci_low": -.03, "ci_high": .07, "significant": False},
        {"a": "tuned", "b": "base", "metric": "f1", "mean": .2, "ci_low": .1, "ci_high": .3, "significant": True},
        {"a": "combined", "b": "base", "metric": "f1", "mean": .52, "ci_low": .4, "ci_high": .6, "significant": True},
        {"a": "combined", "b": "tuned", "metric": "f1", "mean": .32, "ci_low": .2, "ci_high": .4, "significant": True},
    ]
    text = verdict(table, diffs)
    assert text.startswith("RAG beats fine-tuning by 0.30 F1")
    assert "Combining adds nothing measurable over RAG" in text
    assert recommend(table, diffs) == "rag"


def test_clean_answer():
    assert clean_answer('The text says "x", so...\nAnswer: 7:15\n') == "7:15"
    assert clean_answer("\n\n12 crowns\nmore") == "12 crowns"
    assert clean_answer("") == ""


def test_forgetting_probe_is_reported(scored, tmp_path):
    ws, result, _, _ = scored
    probe = result.probes["forgetting"]
    row = probe["base"]
    assert row["perplexity"] > 1 and 0 <= row["general_f1"] <= 1 and row["questions"] == 100
    assert 0 <= row["general_answer_f1"] <= 1 and 0 <= row["general_contains"] <= 1
    write_report(ws, result.path, tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Forgetting probe" in md and "paired over the same 100 general questions" in md


def test_verdict_prints_the_winners_interval():
    table = {"rag": {"f1": {"mean": .1}}, "tuned": {"f1": {"mean": .3}}}
    diffs = [{"a": "rag", "b": "tuned", "metric": "f1", "mean": -.2, "ci_low": -.3,
              "ci_high": -.1, "significant": True}]
    assert verdict(table, diffs).startswith("Fine-tuning beats RAG by 0.20 F1 [0.10, 0.30]")


def test_llm_judge_grades_every_answer(scored, server):
    from loop.eval.stage import evaluate

    ws, _, cfg, gold = scored
    judged = evaluate(ws, cfg.model_copy(update={"judge": "openai:judge", "judge_url": server.url}),
                      eval_set=gold)
    grades = [r["judge"]["mean"] for r in judged.setups.values()]
    assert all(0 <= g <= 1 for g in grades)
    prompts = [r["messages"][0]["content"] for r in server.requests]
    assert prompts and all("Reference answer(s):" in p for p in prompts)


def test_playground_asks_every_setup_as_the_eval_stage_does(scored, tiny_student):
    from loop.errors import InputError
    from loop.eval.ask import Playground

    ws, _, _, _ = scored
    pg = Playground(ws, student=f"hf:{tiny_student}", max_new_tokens=4)
    assert pg.setups == ["base", "rag"]  # no tuned or combined model in this workspace
    answers = pg.ask("When does the ferry leave?")
    assert [a.setup for a in answers] == ["base", "rag"]
    assert not answers[0].sources and any(h.source.endswith("ferry.md") for h in answers[1].sources)
    with pytest.raises(InputError):
        pg.ask("   ")


def test_dpo_from_the_sft_adapter_is_scored_as_its_own_setup(tmp_path, tiny_student):
    """`train --method dpo --from tuned` continues the SFT adapter (DPO's reference is that
    SFT model), and the scoreboard gains a `dpo` setup, decoded and scored like the others."""
    from safetensors.torch import load_file

    from loop.samples import make_sample, samples_dataset
    from loop.train import TrainConfig, train
    from loop.workspace import save_dataset

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"question": "When does the ferry leave?", "answers": ["7:15"]}))
    ws = Workspace(tmp_path / "ws")
    ingest(ws, [docs])
    rows = []
    for i in range(12):
        q, a = f"When does ferry {i} leave?", f"Ferry {i} leaves at 7:15."
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        split = "val" if i % 4 == 3 else "train"
        rows += [make_sample("qa", msgs, ["c"], split=split),
                 make_sample("preference", msgs, ["c"], split=split, rejected=f"Ferry {i} is late.")]
    with ws.writing("test"), ws.atomic_dir(ws.artefact("datasets", "prefs")) as tmp:
        save_dataset(samples_dataset(rows), tmp / "data")
    ws.ledger.set_current("dataset", "prefs")
    fast = dict(student=f"hf:{tiny_student}", replay=0, max_steps=3, batch_size=4, max_length=96, lr=5e-3,
                eval_steps=3, save_steps=3, patience=0, lora_r=4, device="cpu")
    sft = train(ws, TrainConfig(**fast))
    dpo = train(ws, TrainConfig(**fast, method="dpo", init_from="tuned"))
    assert (sft.kind, dpo.kind) == ("tuned", "dpo")
    a = load_file(str(sft.path / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(dpo.path / "adapter" / "adapter_model.safetensors"))
    lora_b = [k for k in a if "lora_B" in k]
    # a fresh LoRA starts with B = 0; this one starts from the SFT adapter (and moved on)
    assert all(b[k].abs().sum() > 0 for k in lora_b) and set(a) == set(b)
    assert not (ws.root / "models" / dpo.model_id / "adapter" / "ref").exists()

    result = evaluate(ws, EvalConfig(student=f"hf:{tiny_student}", setups=["base", "tuned", "dpo"],
                                     max_new_tokens=4, n_boot=200), eval_set=gold)
    assert list(result.setups) == ["base", "tuned", "dpo"]
    assert {"mean", "ci_low", "ci_high"} <= set(result.setups["dpo"]["f1"])
    assert result.models == {"base": None, "tuned": sft.model_id, "dpo": dpo.model_id}
    assert ws.ledger.evaluation(result.eval_id)["models"] == result.models  # lineage, recorded

    # export names what it merges; its card carries that model's scores from this evaluation
    from loop.errors import UsageError
    from loop.export import export_model

    with pytest.raises(UsageError, match=r"tuned \(.*dpo \("):
        export_model(ws, tmp_path / "ambiguous", None)
    out = export_model(ws, tmp_path / "merged", "tuned")
    card = (tmp_path / "merged" / "README.md").read_text()
    f1 = result.setups["tuned"]["f1"]
    assert out["model_id"] == sft.model_id and result.eval_id in card
    assert f"F1 {f1['mean']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in card
    assert "human gold set (gold.jsonl)" in card
    ws.close()


def test_ask_prints_every_setup_and_the_chunks_shown(scored, tiny_student):
    from typer.testing import CliRunner

    from loop.cli import app

    ws, _, _, _ = scored
    base = ["ask", "When does the ferry [draft] leave?", "-w", str(ws.root),
            "--student", f"hf:{tiny_student}", "--max-new-tokens", "4"]
    r = CliRunner().invoke(app, [*base, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [a["setup"] for a in out["answers"]] == ["base", "rag"]
    assert not out["answers"][0]["sources"]
    assert any(s["source"].endswith("ferry.md") for s in out["answers"][1]["sources"])
    text = CliRunner().invoke(app, base, env={"COLUMNS": "200"})
    assert text.exit_code == 0 and "base" in text.output and "ferry.md" in text.output
    r = CliRunner().invoke(app, [*base, "--setups", "tuned", "--json"])
    assert r.exit_code == 1 and "tuned cannot answer here" in json.loads(r.stdout)["error"]
