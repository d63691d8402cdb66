"""The memory plan (micro-batch, accumulation, checkpointing from a budget), the answer-only
loss, and what max_length does to rows: fast, on the 32-wide fixture model and configs."""

from __future__ import annotations

import pytest


def smollm2_config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                       num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)


def plan(budget_gb: float, **kw):
    from loop.models.memory import GB, plan_memory

    args = dict(params=134_515_008, trainable=4_884_480, effective_batch=8, row_tokens=1024,
                dtype="fp32", budget=int(budget_gb * GB), want_checkpointing=False, full_vocab=False)
    args.update(kw)
    return plan_memory(smollm2_config(), **args)


def test_the_old_default_does_not_fit_and_the_plan_keeps_the_effective_batch():
    from loop.models.memory import GB, estimate_bytes

    old = estimate_bytes(smollm2_config(), params=134_515_008, trainable=4_884_480, micro_batch=8,
                         row_tokens=1024, dtype_bytes=4, checkpointing=False, full_vocab=True)
    assert old > 23 * GB  # the run the OOM killer ended at 23 GB
    p = plan(9)
    assert (p.micro_batch, p.grad_accum, p.gradient_checkpointing) == (1, 8, False)
    assert p.estimate_bytes <= p.budget_bytes
    # bf16 autocast: activations counted at 3 bytes (norms and LoRA stay fp32), still one row
    assert plan(6.5, dtype="bf16").micro_batch == 1 and plan(12, dtype="bf16").micro_batch == 2
    big = plan(40)
    assert big.micro_batch * big.grad_accum == 8 and big.micro_batch > 1


def test_checkpointing_turns_on_when_one_row_does_not_fit_and_nothing_fitting_is_one_line():
    from loop.errors import StageError

    p = plan(3)
    assert p.gradient_checkpointing and p.micro_batch >= 1 and p.micro_batch * p.grad_accum == 8
    with pytest.raises(StageError, match="does not fit the memory budget") as e:
        plan(0.5)
    assert "--max-length" in str(e.value)


def test_budget_parsing():
    from loop.errors import StageError
    from loop.models.memory import GB, available_bytes, parse_budget

    assert parse_budget("6GB", "cpu") == 6 * GB
    # auto grants weights that are not loaded yet their room, then its share of the rest
    free = available_bytes("cpu")
    assert parse_budget("auto", "cpu", weights_bytes=GB) > parse_budget("auto", "cpu")
    assert parse_budget("auto", "cpu", weights_bytes=2 * free) <= free
    assert parse_budget("512MB", "cpu") == 512 * 1024**2
    assert 0 < parse_budget("auto", "cpu") < available_bytes("cpu")
    assert abs(parse_budget("0.5", "cpu") - available_bytes("cpu") / 2) < available_bytes("cpu") * 0.1
    for bad in ("lots", "3"):
        with pytest.raises(StageError):
            parse_budget(bad, "cpu")


def test_answer_loss_equals_the_models_own_loss(tiny_student):
    import torch
    from transformers import AutoModelForCausalLM

    from loop.train.sft import IGNORE, answer_loss

    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    ids = torch.randint(3, 300, (2, 40))
    labels = ids.clone()
    labels[:, :25] = IGNORE  # a prompt, then the answer
    pos = torch.arange(40).repeat(2, 1)
    inputs = {"input_ids": ids, "position_ids": pos, "labels": labels}
    want = model(**inputs).loss
    got = answer_loss(model, inputs)
    assert torch.allclose(got, want, atol=1e-5)
    got.backward()  # gradients flow through the gathered positions
    assert model.model.layers[0].self_attn.q_proj.weight.grad is not None


def test_rows_cut_by_max_length_are_counted_and_a_lost_validation_split_is_refused(ws, tiny_student, kit):
    from loop.errors import InputError
    from loop.samples import make_sample
    from loop.train import train

    long_q = "Tell me about the harbour. " * 40
    rows = kit.fact_rows(24)
    rows += [make_sample("qa", [{"role": "user", "content": long_q + str(i)},
                                {"role": "assistant", "content": "It opens at dawn."}], ["cx"],
                         split="train") for i in range(3)]
    kit.write_dataset(ws, rows)
    r = train(ws, kit.fast_config(tiny_student, max_steps=2, max_length=96))
    assert any("3 dropped" in n and "training rows" in n for n in r.notes), r.notes
    # every validation row loses its answer: refused before training, in one line
    val_only_long = [dict(x, split="val") if x["split"] == "val" else x for x in rows]
    for x in val_only_long:
        if x["split"] == "val":
            x["messages"] = [{"role": "user", "content": long_q}, x["messages"][1]]
    kit.write_dataset(ws, val_only_long, dataset_id="longval0000000001")
    with pytest.raises(InputError, match="no validation row keeps an answer token"):
        train(ws, kit.fast_config(tiny_student, max_steps=2, max_length=96))


def test_answer_batches_shrink_for_long_prompts_only():
    from loop.models.memory import GB, answer_batch_size

    kw = dict(dtype="fp32", new_tokens=24, wanted=16)
    assert answer_batch_size(smollm2_config(), prompt_tokens=400, budget=8 * GB, **kw) == 16
    few = answer_batch_size(smollm2_config(), prompt_tokens=32_000, budget=8 * GB, **kw)
    assert 1 <= few < 16
    assert answer_batch_size(smollm2_config(), prompt_tokens=400, budget=GB // 32, **kw) == 1
