"""Supervised fine-tuning (LoRA, full, QLoRA) with TRL's SFTTrainer: assistant tokens only.

Rows are packed padding-free (best-fit decreasing; position ids restart per row, so rows in
one pack do not attend to each other) unless ``packing = false``. The loss covers assistant
tokens only: with a chat template that marks them (``{% generation %}``, the default
template does) every assistant turn is trained; otherwise the last assistant turn is the
completion of a prompt/completion row.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from loop.train import runner
from loop.train.data import to_messages, to_prompt_completion


def uses_assistant_masks(tokenizer: Any) -> bool:
    """Whether TRL can mask by assistant turn with this tokenizer's chat template."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(tokenizer.chat_template):
        return True
    try:  # TRL ships marked versions of the common families' templates
        return get_training_chat_template(tokenizer) is not None
    except (ValueError, KeyError, NotImplementedError):
        return False


def sft_rows(ds: Dataset, tokenizer: Any) -> tuple[Dataset, bool]:
    masks = uses_assistant_masks(tokenizer)
    return (to_messages(ds) if masks else to_prompt_completion(ds)), masks


def sft_trainer(model: Any, tokenizer: Any, train: Dataset, val: Dataset | None,
                plan: runner.Plan, *, text: bool = False) -> Any:
    """An SFTTrainer over chat rows (or raw ``text`` rows for continued pretraining)."""
    from trl import SFTConfig, SFTTrainer

    assistant_only = False
    if not text:
        train, assistant_only = sft_rows(train, tokenizer)
        val = sft_rows(val, tokenizer)[0] if val is not None else None
    args = SFTConfig(
        **runner.trainer_kwargs(plan), packing=plan.cfg.packing, packing_strategy="bfd",
        padding_free=plan.cfg.packing, assistant_only_loss=assistant_only,
        dataset_text_field="text", dataset_num_proc=None,
    )
    return SFTTrainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      processing_class=tokenizer, callbacks=runner.callbacks(plan))
