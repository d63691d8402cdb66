"""export --gguf: a tuned model as one GGUF file that transformers' GGUF reader loads back
with the same greedy answers (f32, f16) and close logits (q8_0), plus its Modelfile."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from loop.errors import InputError
from loop.train import train

PROMPTS = ["What colour is the door of house 3 near Old Quay?",
           "What colour is the door of house 10 near the market?", "Tarn Park opens at"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, kit):
    from loop.workspace import Workspace

    root = tmp_path_factory.mktemp("gguf")
    student = kit.build_tiny_student(root / "student", chat_template=True)
    ws = Workspace(root / "ws")
    kit.write_dataset(ws, kit.fact_rows(24))
    r = train(ws, kit.fast_config(student, max_steps=4, patience=0))
    yield ws, r
    ws.close()


def _greedy(model, tok, n=8):
    out = []
    for p in PROMPTS:
        ids = tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=n, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            logits = model(ids).logits[0, -1]
        out.append((tok.decode(gen[0, ids.shape[1]:]), logits))
    return out


def test_f32_f16_q8_round_trip_through_transformers_gguf_reader(tuned, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from loop.export import export_gguf
    from loop.models.merge import load_tuned

    ws, r = tuned
    merged, tok = load_tuned(ws, r.model_id, dtype="fp32")
    merged = merged.merge_and_unload()
    want = _greedy(merged, tok)
    sizes = {}
    for quant in ("f32", "f16", "q8_0"):
        out = export_gguf(ws, tmp_path / f"m-{quant}.gguf", quant, "tuned")
        sizes[quant] = out["bytes"]
        back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=f"m-{quant}.gguf",
                                                    dtype=torch.float32).eval()
        back_tok = AutoTokenizer.from_pretrained(tmp_path, gguf_file=f"m-{quant}.gguf")
        assert back_tok(PROMPTS[0]).input_ids == tok(PROMPTS[0]).input_ids
        got = _greedy(back, tok)
        if quant == "f32":
            assert all(torch.allclose(a[1], b[1], atol=1e-5) for a, b in zip(want, got, strict=True))
        if quant in ("f32", "f16"):
            assert [g[0] for g in got] == [w[0] for w in want]
        else:  # q8_0: per-32-value blocks of int8 with a scale; logits stay close
            worst = max((a[1] - b[1]).abs().max().item() for a, b in zip(want, got, strict=True))
            assert worst < 0.05, worst
    assert sizes["f16"] < 0.6 * sizes["f32"]
    assert sizes["q8_0"] < 0.75 * sizes["f16"]  # the tiny model's norms and header weigh more
    mf = (tmp_path / "m-f16.Modelfile").read_text()
    assert mf.startswith("FROM ./m-f16.gguf") and "TEMPLATE" in mf and 'PARAMETER stop "<|user|>"' in mf
    assert "ollama create m-f16 -f m-f16.Modelfile" in (tmp_path / "m-f16.README.md").read_text()


def test_an_architecture_it_cannot_write_is_one_line(tuned, tmp_path):
    from types import SimpleNamespace

    from loop.export_gguf import write_gguf

    fake = SimpleNamespace(config=SimpleNamespace(architectures=["GPT2LMHeadModel"]))
    with pytest.raises(InputError, match="LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"):
        write_gguf(fake, None, tmp_path, tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())


def test_the_exported_file_is_scored_beside_the_tuned_model(tuned, tmp_path, kit):
    """`eval --as-exported FILE`: the GGUF a user takes home is scored as the 'exported'
    setup on the same questions as tuned; f32 answers as tuned does, q8_0 is its own
    evaluation, and the verdict gives the paired difference (what the export cost)."""
    import json

    from loop.eval.report import write_report
    from loop.eval.stage import EvalConfig, evaluate
    from loop.export import export_gguf
    from loop.ingest import ingest

    ws, _ = tuned
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "doors.md").write_text("# Doors\n\n" + " ".join(
        f"House {i} has a {c} door." for i, c in enumerate(["red", "blue", "green", "amber"])) + "\n")
    ingest(ws, [docs])
    gold = tmp_path / "gold.jsonl"
    rows = [{"question": r["messages"][0]["content"],
             "answers": [r["messages"][1]["content"].split()[-1].rstrip(".")]}
            for r in kit.fact_rows(6) if r["task"] == "qa"]
    gold.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    files = {q: export_gguf(ws, tmp_path / f"m-{q}.gguf", q, "tuned")["path"] for q in ("f32", "q8_0")}
    cfg = EvalConfig(setups=["base", "tuned"], as_exported=str(files["f32"]), max_new_tokens=8,
                     n_boot=200, dtype="fp32", device="cpu")
    res = evaluate(ws, cfg, eval_set=gold)
    assert list(res.setups) == ["base", "tuned", "exported"]
    from datasets import load_from_disk

    preds = load_from_disk(str(res.path / "predictions")).to_list()
    by = {(p["setup"], p["eval_id"]): p["raw"] for p in preds}
    assert len(by) == 18
    assert all(by[("exported", q)] == by[("tuned", q)] for s, q in by if s == "tuned")
    # the forgetting probe: tuned against base, paired over the same general questions
    vs = res.probes["forgetting"]["tuned"]["vs_base"]
    assert {"f1", "answer_f1", "contains"} <= set(vs)
    assert vs["answer_f1"]["ci_low"] <= vs["answer_f1"]["mean"] <= vs["answer_f1"]["ci_high"]
    d = [x for x in res.differences if {x["a"], x["b"]} == {"tuned", "exported"}]
    assert d and all(x["mean"] == 0 for x in d)
    assert "The exported file scores" in res.verdict and "not measurably" in res.verdict
    assert "Recommendation: exported" not in res.verdict  # a copy is never the recommendation
    assert res.lineage["exported"]["file"] == str(Path(files["f32"]).resolve())

    q8 = evaluate(ws, cfg.model_copy(update={"as_exported": str(files["q8_0"])}), eval_set=gold)
    assert q8.eval_id != res.eval_id
    assert q8.lineage["exported"]["weights"] != res.lineage["exported"]["weights"]
    report = Path(write_report(ws, q8.path)["markdown"]).read_text()
    assert "exported" in report and "The exported file scores" in report

    with pytest.raises(InputError, match="no such file"):
        evaluate(ws, cfg.model_copy(update={"as_exported": str(tmp_path / "gone.gguf")}),
                 eval_set=gold)

