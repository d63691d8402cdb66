"""``scratch:tiny``: a byte-level BPE and a ~1.6M-parameter Llama built from the corpus, offline.

For the offline demo only. The tokenizer is trained on the corpus chunks, the model briefly
pretrained on them (next-token loss on packed 256-token blocks), so it is a domain "base"
that a LoRA can then tune. It is cached per corpus as ``models/scratch-<hash>/model``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from loop.corpus import current_corpus_id, load_corpus
from loop.errors import InputError
from loop.events import EventSink, Finished, Progress, Started, null_sink
from loop.workspace import Workspace, write_json

LIMITS = (
    "scratch:tiny is a ~1.6M-parameter model pretrained for seconds on this corpus alone: it "
    "can learn to recall answers it was trained on, but it cannot read a context or reason, "
    "so its rag and combined scores say nothing about a real student."
)
SPECIAL = ["<|endoftext|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"]

# One recipe per size. Bump "version" when the recipe changes so old caches are not reused.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        # ~1.6M parameters, 120 steps of 8 x 256 tokens (~8 passes over a 22k-word corpus):
        # about 30 s on 2 idle CPU cores. 2.4M parameters trained at half the speed.
        "version": 3, "vocab": 2048, "hidden": 160, "layers": 4, "heads": 5,
        "intermediate": 448, "block": 256, "batch": 8, "steps": 120, "lr": 3e-3, "seed": 0,
    },
}


def _recipe(size: str) -> dict[str, Any]:
    if size not in SIZES:
        raise InputError(f"unknown scratch size {size!r} (known: {', '.join(SIZES)})")
    return SIZES[size]


def scratch_id(ws: Workspace, size: str) -> str:
    """The artefact id: the corpus and the recipe decide the model."""
    corpus = current_corpus_id(ws)
    if not corpus:
        raise InputError("scratch:tiny is built from the corpus, and this workspace has none",
                         hint="run `synthloop ingest DOCS` first")
    blob = json.dumps([corpus, size, _recipe(size)], sort_keys=True).encode()
    return "scratch-" + hashlib.sha256(blob).hexdigest()[:16]


def build_scratch(ws: Workspace, size: str = "tiny", emit: EventSink = null_sink) -> Path:
    """Build (or reuse) the scratch model of this corpus; returns its transformers folder."""
    final = ws.artefact("models", scratch_id(ws, size))
    if (final / "model").is_dir():
        return final / "model"
    recipe = _recipe(size)
    texts = [t for t in load_corpus(ws)["text"] if t.strip()]
    with ws.writing("train scratch"), ws.atomic_dir(final) as tmp:
        tok = train_tokenizer(texts, recipe["vocab"])
        model = make_model(tok, recipe)
        curve = pretrain_blocks(model, pack_blocks(tok, texts, recipe["block"]), recipe, emit)
        out = tmp / "model"
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        write_json(tmp / "synthloop.json", {
            "id": final.name, "kind": "scratch", "size": size, "recipe": recipe,
            "corpus_id": current_corpus_id(ws), "params": model.num_parameters(),
            "loss_curve": curve, "notes": [LIMITS],
        })
    return final / "model"


def train_tokenizer(texts: list[str], vocab: int) -> Any:
    """A byte-level BPE (GPT-2 style: no unknown tokens) trained on the chunks."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from loop.models.students import DEFAULT_CHAT_TEMPLATE

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                  bos_token="<|endoftext|>", pad_token="<|pad|>")
    tok.add_special_tokens({"additional_special_tokens": SPECIAL[2:]})
    tok.chat_template = DEFAULT_CHAT_TEMPLATE
    return tok


def make_model(tok: Any, recipe: dict[str, Any]) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=recipe["hidden"], num_hidden_layers=recipe["layers"],
        num_attention_heads=recipe["heads"], num_key_value_heads=recipe["heads"],
        intermediate_size=recipe["intermediate"], max_position_embeddings=2048,
        tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(recipe["seed"])
    return LlamaForCausalLM(cfg)


def pack_blocks(tok: Any, texts: list[str], block: int) -> Any:
    """Concatenate every chunk (each ended by EOS) and cut into full ``block``-token rows."""
    import torch

    ids: list[int] = []
    for enc in tok(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc + [tok.eos_token_id])
    n = max(1, len(ids) // block)
    ids = (ids * math.ceil(n * block / max(len(ids), 1)))[: n * block]  # tiny corpora: repeat
    return torch.tensor(ids).view(n, block)


def pretrain_blocks(model: Any, blocks: Any, recipe: dict[str, Any], emit: EventSink) -> list:
    """A fixed, short next-token pretraining run; deterministic under the recipe's seed.

    A plain loop on purpose: the recipe is fixed and tiny, and this avoids the Trainer's
    start-up cost inside the demo's time budget.
    """
    import torch

    gen = torch.Generator().manual_seed(recipe["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.01)
    steps, warm = recipe["steps"], max(1, recipe["steps"] // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(s, steps) / steps)))
    emit(Started("scratch", total=steps, unit="steps", message="pretraining scratch:tiny"))
    model.train()
    curve, t0 = [], time.perf_counter()
    for step in range(steps):
        rows = blocks[torch.randint(len(blocks), (recipe["batch"],), generator=gen)]
        loss = model(input_ids=rows, labels=rows).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(), sched.step(), opt.zero_grad(set_to_none=True)
        curve.append([step + 1, round(loss.item(), 4)])
        rate = (step + 1) * rows.numel() / (time.perf_counter() - t0)
        emit(Progress("scratch", done=step + 1, total=steps,
                      info={"loss": f"{loss.item():.3f}", "tok/s": f"{rate:.0f}"}))
    model.eval()
    emit(Finished("scratch", summary={"loss_last": curve[-1][1]}))
    return curve
