"""Direct preference optimisation on the generators' preference pairs, with TRL's DPOTrainer.

The student is wrapped in LoRA; with no separate reference model TRL scores the reference
with the adapter disabled, so DPO costs one copy of the weights.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from loop.train import runner
from loop.train.data import to_preference


def dpo_trainer(model: Any, tokenizer: Any, train: Dataset, val: Dataset | None,
                plan: runner.Plan) -> Any:
    from trl import DPOConfig, DPOTrainer

    runner.plan_memory(plan, model, row_tokens=plan.cfg.max_length, answer_share=1.0,
                       full_vocab=True, pairs=True)
    args = DPOConfig(**runner.trainer_kwargs(plan), beta=plan.cfg.dpo_beta,
                     max_length=plan.cfg.max_length, dataset_num_proc=None)
    return DPOTrainer(
        model=model, ref_model=None, args=args, train_dataset=to_preference(train),
        eval_dataset=to_preference(val) if val is not None else None,
        processing_class=tokenizer, callbacks=runner.callbacks(plan),
    )
