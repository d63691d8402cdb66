"""Loss on assistant tokens only, and packed rows that never attend across samples."""

from __future__ import annotations

import pytest
import torch

from loop.models.students import LoadOptions, load_student
from loop.train.sft import IGNORE, PackedCollator, chat_template_for_training, tokenize_chat

CHAT = [
    {"role": "system", "content": "Answer from the handbook."},
    {"role": "user", "content": "What colour is the door of house 7?"},
    {"role": "assistant", "content": "The door of house 7 is amber."},
    {"role": "user", "content": "And house 8?"},
    {"role": "assistant", "content": "The door of house 8 is violet."},
]


def _tok(tiny_student):
    return load_student(str(tiny_student), LoadOptions(device="cpu")).tokenizer


def test_prompt_tokens_carry_label_minus_100(tiny_student):
    tok = _tok(tiny_student)
    row = tokenize_chat(tok, CHAT, chat_template_for_training(tok))
    trained = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != IGNORE]
    assert tok.decode(trained) == (
        "The door of house 7 is amber.<eos>The door of house 8 is violet.<eos>")
    prompt_text = tok.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tok(prompt_text, add_special_tokens=False)["input_ids"])
    assert all(lab == IGNORE for lab in row["labels"][:n_prompt])


def test_templates_without_generation_marks_train_the_last_turn(tiny_student):
    tok = _tok(tiny_student)
    tok.chat_template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}"
                         "{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    assert chat_template_for_training(tok) is None
    row = tokenize_chat(tok, CHAT, None)
    trained = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != IGNORE]
    assert tok.decode(trained).strip() == "The door of house 8 is violet."


def test_packed_rows_restart_positions_and_mask_sample_starts():
    batch = PackedCollator(pad_token_id=0)([
        {"input_ids": [5, 6, 7, 8, 9], "labels": [IGNORE, 6, 7, IGNORE, 9], "seq_lengths": [3, 2]},
        {"input_ids": [4, 4], "labels": [4, 4], "seq_lengths": [2]},
    ])
    assert "attention_mask" not in batch  # transformers derives a block-diagonal mask
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 0, 1, 2]]
    assert batch["labels"].tolist() == [[IGNORE, 6, 7, IGNORE, 9], [IGNORE, 4, IGNORE, IGNORE, IGNORE]]


def test_packed_samples_do_not_see_each_other(tiny_student):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_student).eval()
    a, b = torch.tensor([[11, 12, 13, 14]]), torch.tensor([[21, 22, 23]])
    packed = torch.cat([a, b], dim=1)
    pos = torch.tensor([[0, 1, 2, 3, 0, 1, 2]])
    with torch.no_grad():
        # use_cache=False as in training: with a cache transformers ignores packed positions
        together = model(input_ids=packed, position_ids=pos, use_cache=False).logits
        alone = model(input_ids=b, use_cache=False).logits
    assert torch.allclose(together[:, 4:], alone, atol=1e-5)


def test_replay_rows_carry_the_share_of_the_loss_they_are_given(tiny_student):
    """replay_share: replay tokens weigh so that they are that share of the loss, through
    packing and the collator; the weighted loss is the hand-weighted mean."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from loop.samples import make_sample
    from loop.train.sft import answer_loss, prepare

    tok = _tok(tiny_student)
    facts = [make_sample("knowledge", [{"role": "user", "content": f"What colour is door {i}?"},
                                       {"role": "assistant", "content": "Amber."}], [f"c{i}"])
             for i in range(6)]
    long = " ".join(["The capital of France is Paris, a city on the Seine."] * 3)
    replay = [make_sample("replay", [{"role": "user", "content": "What is the capital of France?"},
                                     {"role": "assistant", "content": long}], [], teacher="student")
              for _ in range(2)]
    ds = Dataset.from_list(facts + replay)
    rows = prepare(ds, tok, max_length=512, packing=True, seed=0, replay_share=0.25)
    assert "loss_weights" in rows.column_names and "replay" not in rows.column_names
    batch = PackedCollator(pad_token_id=0)(rows.to_list())
    w, keep = batch["loss_weights"][:, 1:], batch["labels"][:, 1:] != IGNORE
    weights = w[keep]
    replay_w = weights[weights != 1.0]
    assert len(replay_w) > 0 and float(replay_w.sum() / weights.sum()) == pytest.approx(0.25, abs=1e-4)
    unweighted = prepare(ds, tok, max_length=512, packing=True, seed=0)
    assert "loss_weights" not in unweighted.column_names

    model = AutoModelForCausalLM.from_pretrained(tiny_student).eval()
    with torch.no_grad():
        got = answer_loss(model, batch)
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       use_cache=False).logits[:, :-1]
        ce = torch.nn.functional.cross_entropy(logits[keep], batch["labels"][:, 1:][keep],
                                               reduction="none")
    assert float(got) == pytest.approx(float((ce * weights).sum() / weights.sum()), rel=1e-4)
