"""Supervised fine-tuning (LoRA, full, QLoRA) and continued pretraining on ``transformers.Trainer``.

Loss on assistant tokens only: with a chat template that marks them (``{% generation %}``;
the default template does, and TRL supplies marked versions of the common families') every
assistant turn is trained; otherwise the last assistant turn is the completion of its prompt.

Rows are packed best-fit-decreasing (TRL's ``pack_dataset``) into ``max_length`` rows whose
position ids restart at every sample. With no attention mask, transformers turns restarting
position ids into a block-diagonal mask, so packed samples never see each other. TRL's own
padding-free mode flattens a whole batch into one row instead, which costs
O((batch x length)^2) attention without FlashAttention's varlen kernels (40x slower on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from loop.errors import InputError
from loop.events import Warned
from loop.train import runner

IGNORE = -100


def chat_template_for_training(tok: Any) -> str | None:
    """A template that marks assistant turns, or None when neither we nor TRL have one."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(tok.chat_template):
        return tok.chat_template
    try:
        return get_training_chat_template(tok)
    except (ValueError, KeyError, NotImplementedError):
        return None


def tokenize_chat(tok: Any, messages: list[dict[str, str]], template: str | None) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` of one chat, every non-assistant token labelled -100."""
    if template is not None:
        out = tok.apply_chat_template(messages, chat_template=template, tokenize=True,
                                      return_dict=True, return_assistant_tokens_mask=True)
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    else:  # no marks: everything up to the last assistant turn is prompt
        prompt = tok.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
        ids = list(tok.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])
        n = _common_prefix(prompt, ids)
        mask = [0] * n + [1] * (len(ids) - n)
    return {"input_ids": ids, "labels": [t if m else IGNORE for t, m in zip(ids, mask, strict=True)]}


def tokenize_text(tok: Any, text: str) -> dict[str, list[int]]:
    """Continued pretraining: every token is a target; EOS closes the chunk."""
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    return {"input_ids": ids, "labels": list(ids)}


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def prepare(ds: Dataset, tok: Any, *, max_length: int, packing: bool, seed: int, text: bool = False,
            stats: dict[str, int] | None = None,
            oracle_texts: dict[str, str] | None = None,
            replay_share: float | None = None) -> Dataset:
    """Tokenize, label, fit context rows, cut to ``max_length`` and (optionally) pack a split.
    ``stats`` gets how many rows there were, how many had their context shortened to fit
    (``loop.train.fit``; ``oracle_texts``, chunk id -> text, names each row's oracle
    passage), how many ``max_length`` still cut, and how many it dropped because no answer
    token was left. With ``replay_share`` and replay rows in the split, every token gets a
    ``loss_weights`` entry (:func:`replay_weights`)."""
    from trl.data_utils import pack_dataset

    trimmed = 0
    if text:
        ds = ds.map(lambda r: tokenize_text(tok, r["text"]), remove_columns=ds.column_names)
    else:
        template = chat_template_for_training(tok)
        fit = _context_fitter(tok, template, max_length, oracle_texts or {})
        ds = ds.map(fit, remove_columns=ds.column_names)
        trimmed = sum(ds["trimmed"]) if len(ds) else 0
        ds = ds.remove_columns("trimmed")
        if replay_share is not None and len(ds):
            ds = replay_weights(ds, replay_share)
        ds = ds.remove_columns("replay")
    rows = len(ds)
    cut = sum(1 for n in ds.map(lambda r: {"n": len(r["input_ids"])})["n"] if n > max_length) if rows else 0
    if not (text and packing):  # text packing splits long chunks instead of cutting them
        ds = ds.map(lambda r: {k: r[k][:max_length] for k in ("input_ids", "labels", "loss_weights")
                               if k in r})
    ds = ds.filter(lambda r: any(t != IGNORE for t in r["labels"][1:]))
    if stats is not None:
        stats.update(rows=rows, cut=0 if (text and packing) else cut, dropped=rows - len(ds),
                     trimmed=trimmed)
    if len(ds) == 0:  # every row lost its answer to max_length: the caller says so
        return ds
    ds = ds.shuffle(seed=seed)
    if packing:
        return pack_dataset(ds, max_length, "bfd_split" if text else "bfd")
    return ds.map(lambda r: {"seq_lengths": [len(r["input_ids"])]})


def replay_weights(ds: Dataset, share: float) -> Dataset:
    """Weight the replay rows' tokens so that they carry ``share`` of the loss.

    The loss sums over answer tokens, so a row weighs as many tokens as its answer has. A
    replay answer (the student's own, up to 64 tokens) is ~20 times a fact answer ("42
    beds"): at replay 0.2 on the bundled example the replay rows were 15% of the rows and
    76% of the labelled tokens, so the facts got a quarter of every gradient. Here every
    replay token weighs ``w`` and every other token 1, with ``w`` chosen so that the replay
    tokens' weight is ``share`` of the whole. A split without replay rows (or without
    other rows) is left unweighted."""
    counts = [sum(1 for t in labels[1:] if t != IGNORE) for labels in ds["labels"]]
    replay = ds["replay"]
    ours = sum(n for n, r in zip(counts, replay, strict=True) if r)
    rest = sum(counts) - ours
    if not ours or not rest:
        return ds
    w = share * rest / ((1 - share) * ours)
    return ds.map(lambda r: {"loss_weights": [w if r["replay"] else 1.0] * len(r["input_ids"])})


def _context_fitter(tok: Any, template: str | None, max_length: int,
                    oracle_texts: dict[str, str]) -> Any:
    """The row-tokenizing function of ``prepare``: a row of a task that shows context
    (raft) and runs past ``max_length`` is fitted first (``loop.train.fit.fit_row``)."""
    from generators.tasks import task_names
    from loop.train.fit import fit_row

    context_tasks = set(task_names(uses_context=True))

    def tokenize(messages: list[dict[str, str]]) -> dict[str, list[int]]:
        return tokenize_chat(tok, messages, template)

    def count(passage: str) -> int:
        return len(tok(passage, add_special_tokens=False)["input_ids"])

    def row(r: dict[str, Any]) -> dict[str, Any]:
        if r.get("task") in context_tasks:
            ids = r.get("chunk_ids") or []
            fitted = fit_row(r["messages"], max_length, tokenize, count,
                             oracle_texts.get(ids[0]) if ids else None)
            if fitted is not None:
                return {**fitted[0], "trimmed": fitted[1], "replay": False}
        return {**tokenize(r["messages"]), "trimmed": False, "replay": r.get("task") == "replay"}

    return row


def row_shape(ds: Dataset) -> tuple[int, float]:
    """The longest row's tokens and the share of tokens that carry a label."""
    longest, total, labelled = 1, 0, 0
    for ids, labels in zip(ds["input_ids"], ds["labels"], strict=True):
        longest = max(longest, len(ids))
        total += len(ids)
        labelled += sum(1 for t in labels if t != IGNORE)
    return longest, labelled / max(total, 1)


def cut_note(split: str, stats: dict[str, int], max_length: int) -> str | None:
    """One line on what max_length did to a split's rows, or None when it did nothing."""
    if not stats.get("cut") and not stats.get("dropped") and not stats.get("trimmed"):
        return None
    fitted = (f"{stats['trimmed']} of {stats['rows']} {split} rows had their context trimmed to "
              "fit (distractor passages first; question and answer kept)") if stats.get("trimmed") else ""
    if not stats.get("cut") and not stats.get("dropped"):
        return f"max_length={max_length}: {fitted}"
    return (f"max_length={max_length}: {fitted + '; ' if fitted else ''}{stats['cut']} of "
            f"{stats['rows']} {split} rows were cut, {stats['dropped']} dropped (no answer token left)")


@dataclass
class PackedCollator:
    """Pads packed rows; position ids restart per sample and no attention mask is sent."""

    pad_token_id: int

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        # numpy fills from the rows' lists ~7x faster than torch.tensor per row plus a cat of
        # aranges (8 x 4096 tokens: 1.3 ms against 8.8 ms), and this runs every step while
        # the accelerator waits
        import numpy as np
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = np.full((len(examples), width), self.pad_token_id, dtype=np.int64)
        labels = np.full_like(ids, IGNORE)
        pos = np.zeros_like(ids)
        for i, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[i, :n] = e["input_ids"]
            labels[i, :n] = e["labels"]
            lengths = np.asarray(e["seq_lengths"], dtype=np.int64)
            pos[i, :n] = np.arange(n) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            pos[i, n:] = np.arange(width - n)  # padding is a segment of its own
        labels[pos == 0] = IGNORE  # never predict a sample's first token from the previous one
        ids, labels, pos = torch.from_numpy(ids), torch.from_numpy(labels), torch.from_numpy(pos)
        out = {"input_ids": ids, "labels": labels, "position_ids": pos}
        if "loss_weights" in examples[0]:  # replay_weights: padding weighs nothing
            weights = np.zeros(ids.shape, dtype=np.float32)
            for i, e in enumerate(examples):
                weights[i, :len(e["loss_weights"])] = e["loss_weights"]
            out["loss_weights"] = torch.from_numpy(weights)
        return out


def answer_loss(model: Any, inputs: dict[str, Any], num_items: Any = None) -> Any | None:
    """Cross-entropy over the labelled (answer) positions only, or None where this does not
    apply (a model that scales or caps its logits, or one wrapped for data parallelism).

    The model's own loss projects every position to the full vocabulary first: at 8 rows of
    1,024 tokens and SmolLM2's 49,152-token vocabulary that is 1.6 GB of fp32 logits, kept
    for the backward pass with their softmax, almost all of it for prompt tokens whose
    labels are ignored. Here the decoder's hidden states are gathered at the answer
    positions and only those rows meet the output head. The sum is divided by
    ``num_items`` (the labelled tokens of the whole accumulated batch) when the Trainer
    gives it, so gradient accumulation weighs every token alike. With ``loss_weights`` in
    ``inputs`` (:func:`replay_weights`) each token's loss is weighted and ``num_items`` is
    the weights' sum (the trainer counts it so)."""
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if (config is None or not hasattr(base, "get_decoder") or hasattr(model, "module")
            or getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None)
            or getattr(config, "logits_scaling", None)):
        return None
    decoder, head = base.get_decoder(), base.get_output_embeddings()
    if decoder is None or head is None:
        return None
    out = decoder(input_ids=inputs["input_ids"], position_ids=inputs.get("position_ids"),
                  attention_mask=inputs.get("attention_mask"), use_cache=False)
    labels = inputs["labels"][:, 1:]
    keep = labels != IGNORE
    logits = head(out.last_hidden_state[:, :-1][keep]).float()
    weights = inputs.get("loss_weights")
    if weights is None:
        total = F.cross_entropy(logits, labels[keep], reduction="sum")
        return total / (num_items if num_items is not None else keep.sum().clamp(min=1))
    w = weights[:, 1:][keep].float()
    total = (F.cross_entropy(logits, labels[keep], reduction="none") * w).sum()
    return total / (num_items if num_items is not None else w.sum().clamp(min=1e-8))


def _answer_loss_trainer() -> type:
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        """A Trainer whose loss never builds full-vocabulary logits for prompt tokens."""

        heldout = None  # held-out chunks' rows, scored beside the fact probe (eval_dataset)

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            out = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            if self.heldout is not None and eval_dataset is None and metric_key_prefix == "eval":
                out.update(super().evaluate(self.heldout, ignore_keys, "heldout"))
            return out

        def _get_num_items_in_batch(self, batch_samples, device):
            # weighted tokens (replay_weights): the accumulated batch's weight, not its count
            if batch_samples and all("loss_weights" in b for b in batch_samples):
                total = sum((b["loss_weights"][:, 1:] * b["labels"][:, 1:].ne(IGNORE)).sum()
                            for b in batch_samples)
                return total.to(device)
            return super()._get_num_items_in_batch(batch_samples, device)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # accelerate applies bf16/fp16 autocast by wrapping model.forward; calling the
            # decoder and head directly needs it said here
            with self.accelerator.autocast():
                loss = answer_loss(model, inputs, num_items_in_batch)
            if loss is None:
                self.loss_is_scaled_for_ga = None  # the Trainer's own rule for its own loss
                if "loss_weights" in inputs:  # the model's own loss weighs every token alike
                    inputs = {k: v for k, v in inputs.items() if k != "loss_weights"}
                    if num_items_in_batch is not None:
                        num_items_in_batch = None  # a count of weights, not of tokens
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # summed over the accumulated batch's tokens: already scaled for accumulation
            self.loss_is_scaled_for_ga = num_items_in_batch is not None
            return (loss, {"loss": loss}) if return_outputs else loss

    return AnswerLossTrainer


def sft_trainer(model: Any, tokenizer: Any, train: Dataset, val: Dataset | None,
                plan: runner.Plan, *, text: bool = False, probe: Dataset | None = None,
                oracle_texts: dict[str, str] | None = None) -> Any:
    """A Trainer over chat rows (or raw ``text`` rows for continued pretraining). With
    ``probe`` rows (held-out phrasings of trained facts) the probe is the validation set that
    early stopping and the curves read, and ``val`` (held-out chunks) is scored beside it
    as ``heldout_loss``."""
    if probe is not None:
        val, heldout = probe, val
    else:
        heldout = None
    from transformers import TrainingArguments

    cfg = plan.cfg
    # oracle_texts (chunk id -> text): a context row shortened to fit keeps its oracle passage
    kw = dict(max_length=cfg.max_length, packing=cfg.packing, seed=cfg.seed, text=text,
              oracle_texts=oracle_texts, replay_share=getattr(cfg, "replay_share", None))
    hint = ("raise --max-length (rows with context chunks are long) or lower the raft context "
            "budget (generate --context-tokens)")
    train_stats: dict[str, int] = {}
    train = prepare(train, tokenizer, stats=train_stats, **kw)
    if len(train) == 0:
        raise InputError(f"no training row keeps an answer token within max_length={cfg.max_length} "
                         f"(all {train_stats['rows']} were cut past their answers)", hint=hint)
    val_stats: dict[str, int] = {}
    val = prepare(val, tokenizer, stats=val_stats, **kw) if val is not None else None
    if val is not None and len(val) == 0:  # refused now, not after training (was a traceback)
        raise InputError(f"no validation row keeps an answer token within max_length={cfg.max_length} "
                         f"(all {val_stats['rows']} were cut past their answers)", hint=hint)
    for split, stats in (("training", train_stats), ("validation", val_stats)):
        note = cut_note(split, stats, cfg.max_length) if stats else None
        if note:
            plan.notes.append(note)
            plan.emit(Warned("train", message=note))
    longest, share = row_shape(train)
    runner.plan_memory(plan, model, row_tokens=longest, answer_share=share, full_vocab=text)
    args = TrainingArguments(**runner.trainer_kwargs(plan), remove_unused_columns=False,
                             prediction_loss_only=True)
    trainer = _answer_loss_trainer()(
        model=model, args=args, train_dataset=train, eval_dataset=val,
        data_collator=PackedCollator(tokenizer.pad_token_id), processing_class=tokenizer,
        callbacks=runner.callbacks(plan))
    if heldout is not None:
        trainer.heldout = prepare(heldout, tokenizer, **kw)
    return trainer
