"""The train stage on a 2-layer, 32-wide Llama built in a fixture (a few seconds per run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from loop.errors import InputError, StageError, UnknownPrefixError
from loop.events import Collector, Progress, Started
from loop.train import train
from loop.workspace import Workspace


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_student, kit):
    """One LoRA run shared by the tests that only read its outputs."""
    ws = Workspace(tmp_path_factory.mktemp("trained") / "ws")
    kit.write_dataset(ws, kit.fact_rows())
    events = Collector()
    result = train(ws, kit.fast_config(tiny_student), emit=events)
    yield ws, result, events
    ws.close()


def test_lora_loss_falls_and_outputs_are_complete(trained, kit):
    ws, r, _ = trained
    assert r.steps == 12 and r.loss_last < r.loss_first
    assert r.val_loss is not None and r.kind == "tuned"
    folder = r.path
    for name in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json",
                 "adapter/tokenizer.json", "curves.json", "synthloop.json"):
        assert (folder / name).exists(), name
    meta = kit.read_json(folder / "synthloop.json")
    assert meta["dataset_id"] == "testdataset0001" and meta["config"]["method"] == "lora"
    assert meta["target_modules"]  # found from the architecture
    curves = kit.read_json(folder / "curves.json")
    assert curves["train"][0][0] == 1 and curves["val"]
    row = ws.ledger.conn.execute("SELECT * FROM models WHERE id = ?", (r.model_id,)).fetchone()
    assert row["kind"] == "tuned" and row["steps"] == 12
    assert ws.ledger.get_meta("model.tuned") == r.model_id
    assert not (ws.root / "checkpoints" / r.model_id).exists()  # cleared on success


def test_progress_events_carry_step_loss_rate_eta(trained):
    _, _, events = trained
    assert events.of(Started)[0].total == 12
    last = events.of(Progress)[-1]
    assert last.done == 12 and {"step", "loss", "tok/s", "eta_s"} <= set(last.info)


def test_adapter_changed_base_did_not_and_peft_loads_it(trained, tiny_student):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    _, r, _ = trained
    base_before = {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(tiny_student).state_dict().items()}
    adapter = load_file(str(r.path / "adapter" / "adapter_model.safetensors"))
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it moved
    assert not any("lora" not in k for k in adapter)  # only adapter weights were saved
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_student), r.adapter_path)
    base_after = model.get_base_model().state_dict()
    for k, v in base_before.items():
        key = next(n for n in base_after if n.endswith(k.replace(".weight", ".base_layer.weight"))
                   or n == k)
        assert torch.equal(base_after[key], v), k


def test_unchanged_rerun_is_a_cache_hit(trained, tiny_student, kit):
    ws, r, _ = trained
    again = train(ws, kit.fast_config(tiny_student))
    assert again.cached and again.model_id == r.model_id and again.adapter_path == r.adapter_path


def test_export_merged_loads_in_plain_transformers(trained, tmp_path):
    from transformers import AutoModelForCausalLM

    from loop.models.merge import export_merged, load_tuned

    ws, r, _ = trained
    out = export_merged(ws, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    tuned, tok = load_tuned(ws, r.model_id, device="cpu", dtype="fp32")
    ids = tok("What colour is the door of house 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, tuned(ids).logits, atol=1e-4)
    card = (out / "README.md").read_text()
    assert "testdataset0001" in card and "--method lora" in card and "qa: " in card


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, tiny_student, kit):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class Crash(TrainerCallback):  # dies between checkpoints, as kill -9 would
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:
                raise RuntimeError("simulated crash")

    cfg = kit.fast_config(tiny_student, max_steps=8, save_steps=4, eval_steps=4, patience=0)
    runs = {}
    for name in ("straight", "crashed"):
        ws = Workspace(tmp_path / name)
        kit.write_dataset(ws, kit.fact_rows())
        if name == "crashed":
            with pytest.raises(RuntimeError, match="simulated crash"):
                train(ws, cfg, callbacks=[Crash()])
            assert (ws.root / "checkpoints").exists()
        runs[name] = train(ws, cfg)
        ws.close()
    assert runs["crashed"].resumed_from == "checkpoint-4" and runs["straight"].resumed_from is None
    a = load_file(str(runs["straight"].path / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(runs["crashed"].path / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    assert runs["crashed"].loss_last == pytest.approx(runs["straight"].loss_last, abs=1e-4)


def test_dpo_runs_on_preference_rows(train_ws, tiny_student, kit):
    r = train(train_ws, kit.fast_config(tiny_student, method="dpo", max_steps=3, batch_size=4))
    assert r.kind == "dpo" and r.steps == 3 and r.loss_first is not None
    assert (r.path / "adapter" / "adapter_model.safetensors").exists()


def test_with_context_trains_on_raft_rows_only(train_ws, tiny_student, kit):
    r = train(train_ws, kit.fast_config(tiny_student, with_context=True, max_steps=2))
    assert r.kind == "combined"
    assert train_ws.ledger.get_meta("model.combined") == r.model_id


def test_missing_rows_name_the_generate_command(ws, tiny_student, kit):
    kit.write_dataset(ws, [row for row in kit.fact_rows() if row["task"] == "qa"])
    with pytest.raises(InputError, match=r"context chunks \(raft") as e:
        train(ws, kit.fast_config(tiny_student, with_context=True))
    assert "--tasks raft" in str(e.value)
    with pytest.raises(InputError, match="preference"):
        train(ws, kit.fast_config(tiny_student, method="dpo"))


def test_full_fine_tuning_writes_full_weights(train_ws, tiny_student, kit):
    from transformers import AutoModelForCausalLM

    r = train(train_ws, kit.fast_config(tiny_student, method="full", max_steps=2, lr=1e-3))
    assert r.adapter_path.endswith("model")
    AutoModelForCausalLM.from_pretrained(r.adapter_path)


def test_out_of_memory_becomes_a_clear_message(train_ws, tiny_student, kit):
    from transformers import TrainerCallback

    class Oom(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(StageError) as e:
        train(train_ws, kit.fast_config(tiny_student), callbacks=[Oom()])
    assert "memory_budget in [train] (now auto)" in str(e.value) and "--max-length (now 128)" in str(e.value)


def test_student_uris(ws, tmp_path):
    from loop.models.students import LoadOptions, load_student, split_uri

    assert split_uri("some/local/path") == ("hf", "some/local/path")
    with pytest.raises(UnknownPrefixError, match="known: hf:, model:, scratch:"):
        split_uri("ollama:llama3")
    with pytest.raises(InputError, match="cannot load student model"):
        load_student(f"hf:{tmp_path / 'nowhere'}", LoadOptions(ws=ws))


def test_qlora_trains_lora_over_4bit_weights(train_ws, tiny_student, kit):
    """bitsandbytes >= 0.46 has 4-bit CPU kernels, so the real QLoRA path runs here, on a
    model whose 32-wide layers its CPU inference kernel could not pack (validation runs)."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from loop.models.merge import load_tuned

    r = train(train_ws, kit.fast_config(tiny_student, method="qlora"))
    assert r.steps == 12 and r.loss_last < r.loss_first
    assert kit.read_json(r.path / "synthloop.json")["config"]["method"] == "qlora"
    adapter = load_file(str(r.path / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("lora" in k for k in adapter)  # no quantized base saved with it
    assert all(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)
    # the adapter applies to the full-precision base, as users run it and as export merges it
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_student), r.adapter_path)
    tuned, _ = load_tuned(train_ws, r.model_id, device="cpu", dtype="fp32")
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert torch.allclose(peft(ids).logits, tuned(ids).logits, atol=1e-5)


def test_qlora_without_4bit_kernels_is_a_clear_error(train_ws, tiny_student, kit, monkeypatch):
    import importlib.util

    import bitsandbytes.functional as bnbf

    def no_kernel(*a, **kw):
        raise NotImplementedError("no kernel registered for this device")

    monkeypatch.setattr(bnbf, "quantize_4bit", no_kernel)
    with pytest.raises(StageError, match=r"cannot run 4-bit on cpu \(no kernel registered"):
        train(train_ws, kit.fast_config(tiny_student, method="qlora"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(StageError, match="needs bitsandbytes") as e:
        train(train_ws, kit.fast_config(tiny_student, method="qlora"))
    assert "synthloop[qlora]" in e.value.hint


def test_tokenizer_without_template_gets_the_default(tmp_path, kit):
    from loop.models.students import DEFAULT_CHAT_TEMPLATE, LoadOptions, load_student

    folder = kit.build_tiny_student(tmp_path / "plain")
    assert "chat_template" not in json.loads((folder / "tokenizer_config.json").read_text())
    student = load_student(str(folder), LoadOptions(device="cpu"))
    assert student.tokenizer.chat_template == DEFAULT_CHAT_TEMPLATE
    assert student.tokenizer.pad_token is not None


def test_early_stopping_stops_when_validation_loss_rises_and_keeps_the_best(ws, tiny_student, kit,
                                                                           monkeypatch):
    """Validation rows contradict the training rows (same questions, other colours): once the
    format is learnt, every step that learns the training colours raises validation loss."""
    from loop.samples import make_sample

    rows = []
    for i in range(24):
        q = f"What colour is the door of house {i}?"
        for split, colour in (("train", kit.COLOURS[i % 8]), ("val", kit.COLOURS[(i + 3) % 8])):
            rows.append(make_sample("qa", [{"role": "user", "content": q}, {
                "role": "assistant", "content": f"The door of house {i} is {colour}."}],
                [f"c{i}"], split=split))
    kit.write_dataset(ws, rows)
    # the rows as written: with the student's system message in every row this tiny model
    # was still learning the shared format at step 60 (validation loss never rose)
    monkeypatch.setattr("loop.train.data.student_chat", lambda m: list(m))
    cfg = kit.fast_config(tiny_student, max_steps=60, eval_steps=2, save_steps=2, patience=1,
                          lr=5e-2)  # at 1e-2 this tiny LoRA still learnt the format at step 60;
    # patience 1: on some machines the curve rises once, falls a hair, then rises (6.13 5.91 5.84
    # 5.90 5.83 ...), which patience 2 never stops on within 60 steps
    r = train(ws, cfg)
    curve = json.loads((r.path / "curves.json").read_text())
    val = dict(curve["val"])
    assert r.stopped_early and r.steps < 60, (r.steps, curve["val"])
    assert r.best_step == min(val, key=val.get)  # the lowest validation loss was kept ...
    assert r.val_loss == pytest.approx(val[r.best_step], rel=1e-3)  # ... and is the model's
    assert r.summary()["stopped_early"] is True and r.summary()["best_step"] == r.best_step


def test_exposures_size_the_run_by_facts_not_steps(ws, tiny_student, kit):
    """8 exposures of facts stated by 2 rows each is 4 epochs; epochs given explicitly wins."""
    from datasets import Dataset

    from loop.events import null_sink
    from loop.handoff import current_inputs
    from loop.train.stage import _Train

    rows = Dataset.from_list([{"chunk_ids": [f"c{i}"], "messages": [
        {"role": "user", "content": f"q{i}{v}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(10) for v in "xy"])
    t = _Train(ws, kit.fast_config(tiny_student, exposures=8), null_sink, [], current_inputs(ws))
    sized = t.sized(rows)
    assert sized.epochs == 4.0 and "8 exposures per fact: 4.0 epochs over 20 rows (10 facts" in t.sizing
    t = _Train(ws, kit.fast_config(tiny_student, exposures=8, epochs=1), null_sink, [], current_inputs(ws))
    assert t.sized(rows).epochs == 1  # set by the user: not resized


def test_written_replay_questions_are_cut_and_kept_away_from_the_probe():
    """A sampled user turn becomes one short question (cut after its first '?'), or nothing;
    a question that shares most words with a forgetting-probe question is never trained."""
    from loop.train.replay import _probe_questions, clean_question, near_probe

    assert clean_question("Who wrote the novel Dune? It was Frank Herbert.") == "Who wrote the novel Dune?"
    assert clean_question("What  is\tthe best way to bake bread?\n\nAnswer") == "What is the best way to bake bread?"
    assert clean_question("Write a C# function that returns a tree.") is None  # no question
    assert clean_question("What is\nthe answer?") is None  # runs over a line
    assert clean_question("Why?") is None  # too short to say anything
    assert clean_question("What " + "very " * 30 + "long?") is None
    assert clean_question("What is <|im_end|> here?") is None
    probe = _probe_questions()
    assert len(probe) == 100
    assert near_probe("Who was the first person to walk on the Moon?", probe)
    assert near_probe("Who was the very first person who walked on the Moon?", probe)
    assert not near_probe("What is the best way to prepare for a job interview?", probe)


def test_replay_rows_are_the_students_own_answers_and_cached(ws, tiny_student, kit):
    """replay = 0.5: half as many rows again, the student's answers to general prompts written
    before tuning; a second run reads them from the cache."""
    from loop.train.replay import replay_prompts

    kit.write_dataset(ws, kit.fact_rows())
    r = train(ws, kit.fast_config(tiny_student, max_steps=2, replay=0.5))
    note = next(n for n in r.notes if n.startswith("replay:"))
    assert f"answers to {len(replay_prompts())} general prompts" in note
    cached = list((ws.root / "cache" / "replay").glob("*.json"))
    assert len(cached) == 1
    answers = json.loads(cached[0].read_text())
    assert all(p in replay_prompts() and a for p, a in answers)
    general = {q["question"] for q in __import__("loop.probes", fromlist=["x"]).general_questions()}
    assert not general & set(replay_prompts())  # the forgetting probe is never trained on


def test_replay_share_trains_with_weighted_replay_rows(ws, tiny_student, kit):
    """replay_share set: the run trains on weighted rows to the end and says what it did."""
    kit.write_dataset(ws, kit.fact_rows())
    r = train(ws, kit.fast_config(tiny_student, max_steps=2, replay=0.5, replay_share=0.3))
    assert r.steps == 2 and r.loss_last is not None and r.loss_last > 0
    assert any(n.startswith("replay:") and "weighted to 30% of the loss" in n for n in r.notes)


def test_adapter_scale_saves_the_trained_update_scaled(ws, tiny_student, kit):
    """adapter_scale: the same training, saved with every lora_B times the scale (so the
    update W + s*BA is exactly scaled) and lora_A untouched; another model id, and a
    method without a LoRA adapter refuses it before any work."""
    from safetensors.torch import load_file

    kit.write_dataset(ws, kit.fact_rows())
    plain = train(ws, kit.fast_config(tiny_student, max_steps=2))
    half = train(ws, kit.fast_config(tiny_student, max_steps=2, adapter_scale=0.5))
    assert half.model_id != plain.model_id
    a = load_file(str(Path(plain.adapter_path) / "adapter_model.safetensors"))
    b = load_file(str(Path(half.adapter_path) / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and any("lora_B" in k for k in a)
    for k in a:
        want = a[k] * 0.5 if "lora_B" in k else a[k]
        assert torch.allclose(b[k], want, atol=1e-6), k
    assert kit.read_json(Path(half.path) / "synthloop.json")["config"]["adapter_scale"] == 0.5
    with pytest.raises(InputError, match="adapter_scale scales a LoRA adapter"):
        train(ws, kit.fast_config(tiny_student, max_steps=2, method="full", adapter_scale=0.5))
