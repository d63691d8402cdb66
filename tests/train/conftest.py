"""Tiny students and datasets made on the fly: a 2-layer Llama, a BPE trained in the fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

COLOURS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black"]
PLACES = ["Kell Island", "the harbour", "Old Quay", "the library", "Tarn Park", "the market"]


def fact_rows(n: int = 48) -> list[dict]:
    """qa, raft and preference rows about invented facts, split train/val by fact."""
    from loop.samples import make_sample

    rows = []
    for i in range(n):
        colour, place = COLOURS[i % len(COLOURS)], PLACES[i % len(PLACES)]
        q = f"What colour is the door of house {i} near {place}?"
        a = f"The door of house {i} is {colour}."
        split = "val" if i % 6 == 5 else "train"
        chunk = f"c{i:03d}"
        rows.append(make_sample("qa", [{"role": "user", "content": q},
                                       {"role": "assistant", "content": a}], [chunk], split=split))
        ctx = f"Context:\n[1] House {i} near {place} has a {colour} door.\n[2] Tarn Park opens at 8.\n\n{q}"
        rows.append(make_sample("raft", [{"role": "user", "content": ctx},
                                         {"role": "assistant", "content": a}], [chunk], split=split))
        if i % 3 == 0:
            rows.append(make_sample("preference", [{"role": "user", "content": q},
                                                   {"role": "assistant", "content": a}], [chunk],
                                    split=split, rejected=f"The door of house {i} is purple."))
    return rows


def write_dataset(ws, rows: list[dict], dataset_id: str = "testdataset0001") -> str:
    """Put rows in the workspace as ``generate`` would: a datasets artefact + ledger meta."""
    from loop.samples import samples_dataset

    with ws.writing("test"), ws.atomic_dir(ws.artefact("datasets", dataset_id)) as tmp:
        samples_dataset(rows).save_to_disk(str(tmp / "data"))
    ws.ledger.set_current("dataset", dataset_id)
    return dataset_id


def build_tiny_student(folder: Path, *, chat_template: bool = False) -> Path:
    """A 2-layer, 32-wide Llama and a byte-level BPE trained on the fixture's own text."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [m["content"] for r in fact_rows() for m in r["messages"]] + ["<|user|> <|assistant|>"] * 4
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<eos>", "<pad>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    if chat_template:
        from loop.models.students import DEFAULT_CHAT_TEMPLATE

        tok.chat_template = DEFAULT_CHAT_TEMPLATE
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, intermediate_size=64, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_student(tmp_path_factory) -> Path:
    return build_tiny_student(tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture
def train_ws(ws):
    write_dataset(ws, fact_rows())
    return ws


def fast_config(student: Path, **kw):
    """A TrainConfig small enough for 2 CPU cores: a few steps, short rows."""
    from loop.train import TrainConfig

    base = dict(student=f"hf:{student}", max_steps=12, batch_size=8, max_length=128, lr=5e-3,
                eval_steps=6, save_steps=6, logging_steps=2, lora_r=8, lora_dropout=0.0,
                device="cpu", warmup_ratio=0.0, exposures=None,  # steps, not exposures, size these
                replay=0.0)
    base.update(kw)
    return TrainConfig(**base)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="session")
def kit():
    """The helpers above, for test modules (importlib mode cannot import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(fact_rows=fact_rows, write_dataset=write_dataset, fast_config=fast_config,
                           COLOURS=COLOURS,
                           build_tiny_student=build_tiny_student, read_json=read_json)
