"""What every method shares: Trainer arguments, LoRA, progress events, resume and OOM handling."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from loop.errors import InputError, StageError
from loop.events import EventSink, Progress, Started, Warned
from loop.models.merge import safetensors_problem
from loop.train.config import TrainConfig

STAGE = "train"


@dataclass
class Plan:
    """Where and how one training run happens (the parts that are not in TrainConfig)."""

    cfg: TrainConfig
    checkpoints: Path
    device: str
    dtype: str
    has_val: bool
    emit: EventSink
    callbacks: list[Any] = field(default_factory=list)
    tensorboard_dir: Path | None = None  # --report-to tensorboard writes here, kept after the run
    memory: Any = None  # the MemoryPlan, set once the rows' lengths are known
    budget: int | None = None  # bytes, fixed before the weights loaded (None: read now)
    notes: list[str] = field(default_factory=list)  # what preparing the rows cut or dropped


def plan_memory(plan: Plan, model: Any, *, row_tokens: int, answer_share: float,
                full_vocab: bool, pairs: bool = False) -> None:
    """Decide micro-batch, accumulation and checkpointing for this run (see memory.py)."""
    from loop.models.memory import parse_budget
    from loop.models.memory import plan_memory as plan_for

    cfg = plan.cfg
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    plan.memory = plan_for(
        model.config, params=params, trainable=trainable,
        effective_batch=cfg.batch_size * cfg.grad_accum, row_tokens=row_tokens, dtype=plan.dtype,
        budget=plan.budget if plan.budget is not None else parse_budget(cfg.memory_budget, plan.device),
        want_checkpointing=cfg.gradient_checkpointing, full_vocab=full_vocab, pairs=pairs,
        answer_share=answer_share)


# What ``pip install`` needs for a --report-to name, where the package is named otherwise.
REPORTER_PACKAGES = {"tensorboard": "tensorboard", "azure_ml": "azureml-core", "flyte": "flytekit",
                     "kubeflow": "kubeflow"}


def reporters(report_to: str) -> list[str]:
    """The ``--report-to`` names (comma-separated; ``none`` for none), each one checked up
    front: a logger transformers knows, whose package is installed. Otherwise the Trainer
    fails with a traceback after the model is loaded."""
    names = [n.strip() for n in report_to.split(",") if n.strip() and n.strip() != "none"]
    if not names:
        return []
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    if "all" in names:  # as in transformers: every logger whose package is installed
        names = [n for n in names if n != "all"] + get_available_reporting_integrations()
        names = list(dict.fromkeys(names))

    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise InputError(f"--report-to {name!r} is not a logger transformers knows",
                             hint="one of: none, " + ", ".join(sorted(INTEGRATION_TO_CALLBACK)))
        if name not in get_available_reporting_integrations():
            raise InputError(f"--report-to {name} needs its package, which is not installed",
                             hint=f"pip install {REPORTER_PACKAGES.get(name, name)}")
    return names


def trainer_kwargs(plan: Plan) -> dict[str, Any]:
    """Arguments SFTConfig and DPOConfig share (both extend TrainingArguments)."""
    cfg = plan.cfg
    micro, accum = cfg.batch_size, cfg.grad_accum
    checkpointing = cfg.gradient_checkpointing
    if plan.memory is not None:
        micro, accum = plan.memory.micro_batch, plan.memory.grad_accum
        checkpointing = plan.memory.gradient_checkpointing
    kw: dict[str, Any] = dict(
        output_dir=str(plan.checkpoints), per_device_train_batch_size=micro,
        per_device_eval_batch_size=micro, gradient_accumulation_steps=accum,
        learning_rate=cfg.learning_rate(), lr_scheduler_type="cosine", warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        seed=cfg.seed, data_seed=cfg.seed, logging_steps=cfg.logging_steps, logging_first_step=True,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=2,
        # tensorboard is added in callbacks(), to log where the run's checkpoints are not
        report_to=[n for n in reporters(cfg.report_to) if n != "tensorboard"],
        disable_tqdm=True,  # progress goes out as events; the CLI draws its own bar
        include_num_input_tokens_seen="non_padding",
        bf16=plan.dtype == "bf16", fp16=plan.dtype == "fp16", use_cpu=plan.device == "cpu",
        dataloader_pin_memory=plan.device.startswith("cuda"),
        # LoRA leaves no trainable parameter out of the forward pass: under DDP the search
        # for unused ones would cost a graph traversal per step (and warn every run)
        ddp_find_unused_parameters=False,
    )
    if checkpointing:  # passed only when on: the flag is deprecated in transformers 5
        kw["gradient_checkpointing"] = True
        kw["gradient_checkpointing_kwargs"] = {"use_reentrant": False}  # frozen inputs (LoRA)
    if plan.has_val:
        # Early stopping restores the best checkpoint, so saves must land on evaluations.
        save = max(1, round(cfg.save_steps / cfg.eval_steps)) * cfg.eval_steps
        kw.update(eval_strategy="steps", eval_steps=cfg.eval_steps, save_steps=save,
                  load_best_model_at_end=cfg.patience > 0, metric_for_best_model="eval_loss",
                  greater_is_better=False)
    return kw


def callbacks(plan: Plan) -> list[Any]:
    from transformers import EarlyStoppingCallback

    out: list[Any] = [EventsCallback(plan.emit, plan), *plan.callbacks]
    if "tensorboard" in reporters(plan.cfg.report_to) and plan.tensorboard_dir is not None:
        out.append(_tensorboard(plan.tensorboard_dir))
    if plan.has_val and plan.cfg.patience > 0:
        out.append(EarlyStoppingCallback(early_stopping_patience=plan.cfg.patience))
    return out


def _tensorboard(log_dir: Path) -> Any:
    """transformers' TensorBoard logger, writing to ``log_dir``: by default it writes under
    the Trainer's output folder, the checkpoints, which are deleted when the run succeeds."""
    from transformers.integrations import TensorBoardCallback

    class _Logger(TensorBoardCallback):
        def _init_summary_writer(self, args: Any, log_dir_arg: Any = None) -> None:
            # the writer opens at train begin; transformers 4.x would take args.logging_dir
            self.tb_writer = self._SummaryWriter(log_dir=str(log_dir))

    return _Logger()


# -- LoRA --------------------------------------------------------------------------------


def find_target_modules(model: Any) -> list[str]:
    """Every linear layer's name but the output head's: the modules LoRA should wrap."""
    import torch.nn as nn
    from transformers.pytorch_utils import Conv1D

    head = model.get_output_embeddings()
    names = set()
    for name, mod in model.named_modules():
        linear = isinstance(mod, nn.Linear | Conv1D) or type(mod).__name__ in {"Linear4bit", "Linear8bitLt"}
        if linear and mod is not head and name:
            names.add(name.rsplit(".", 1)[-1])
    assert names, f"no linear layers found in {type(model).__name__}"
    return sorted(names)


def add_lora(model: Any, cfg: TrainConfig) -> tuple[Any, list[str]]:
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules or find_target_modules(model)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM")
    return get_peft_model(model, lora), targets


def scale_adapter(model: Any, adapter: str, scale: float) -> int:
    """Scale ``adapter``'s LoRA update to ``scale`` times its trained size, in place: every
    ``lora_B`` weight times ``scale`` makes ``W + scale * BA`` exactly, whatever the
    alpha/r scaling (WiSE-FT's weight interpolation, for an adapter). Returns the number of
    layers scaled; none is an error (nothing to scale means the wrong model)."""
    import torch
    from peft.tuners.lora import LoraLayer

    n = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoraLayer) and adapter in module.lora_B:
                module.lora_B[adapter].weight.mul_(scale)
                n += 1
    if not n:
        raise ValueError(f"no LoRA layer holds adapter {adapter!r} to scale")
    return n


# -- progress events ------------------------------------------------------------------------


class EventsCallback(TrainerCallback):
    """Turns Trainer hooks into Started/Progress events: step, loss, tokens/s, ETA."""

    def __init__(self, emit: EventSink, plan: Plan | None = None) -> None:
        self.emit = emit
        self.plan = plan
        self.loss: float | None = None
        self.val_loss: float | None = None
        self.t0 = time.perf_counter()
        self.step0 = 0
        self.tokens0 = 0

    def on_train_begin(self, args, state, control, **kw):
        self.t0, self.step0, self.tokens0 = time.perf_counter(), state.global_step, state.num_input_tokens_seen
        memory = self.plan.memory if self.plan is not None else None
        self.emit(Started(STAGE, total=state.max_steps, unit="steps",
                          message=plan_line(memory) if memory else ""))

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        self.loss = logs.get("loss", self.loss)
        self.val_loss = logs.get("eval_loss", self.val_loss)

    def on_step_end(self, args, state, control, **kw):
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        done = state.global_step - self.step0
        rate = (state.num_input_tokens_seen - self.tokens0) / elapsed
        eta = (state.max_steps - state.global_step) * elapsed / max(done, 1)
        info: dict[str, Any] = {"step": state.global_step, "tok/s": round(rate), "eta_s": round(eta),
                                "tokens": int(state.num_input_tokens_seen)}
        if self.loss is not None:
            info["loss"] = round(self.loss, 4)
        if self.val_loss is not None:
            info["val_loss"] = round(self.val_loss, 4)
        self.emit(Progress(STAGE, done=state.global_step, total=state.max_steps, info=info))


def plan_line(m: Any) -> str:
    """The memory plan in one line, for the progress display."""
    return (f"{m.micro_batch} x {m.row_tokens}-token rows per micro-batch, {m.grad_accum} "
            "accumulated" + (", gradient checkpointing" if m.gradient_checkpointing else "")
            + f"; ~{m.estimate_bytes / 2**30:.1f} of {m.budget_bytes / 2**30:.1f} GB budget")


def tokens_per_s(trainer: Any) -> float:
    """Tokens per second of this process's training steps (EventsCallback's clock starts at
    train begin, after any checkpoint was restored)."""
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, EventsCallback):
            seen = trainer.state.num_input_tokens_seen - cb.tokens0
            return seen / max(time.perf_counter() - cb.t0, 1e-9)
    return 0.0


# -- running, resuming, failing clearly ------------------------------------------------------


def last_checkpoint(folder: Path, skipped: list[str] | None = None) -> str | None:
    """The newest complete checkpoint that loads: the Trainer writes trainer_state.json
    last, and a checkpoint whose files were cut short since (a disk that filled, a copy that
    stopped) is passed over, with the reason appended to ``skipped``, for the next newest."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists()]
    for path in sorted(done, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        if skipped is not None:
            skipped.append(f"{path.name}: {problem}")
    return None


def checkpoint_problem(path: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from (None: its files are whole). Checks
    lengths, not values: a safetensors file must be as long as its header says, a torch
    file (optimizer, scheduler, RNG state) must be a readable zip, the state valid JSON."""
    import zipfile

    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError) as e:
        return f"trainer_state.json is unreadable ({type(e).__name__})"
    for f in sorted(path.rglob("*")):
        if f.suffix == ".safetensors" and (why := safetensors_problem(f)):
            return f"{f.relative_to(path)} {why}"
        if f.suffix in (".pt", ".pth", ".bin"):
            try:
                zipfile.ZipFile(f).close()
            except (OSError, zipfile.BadZipFile) as e:
                return f"{f.relative_to(path)} is cut short or damaged ({e})"
    return None




def quiet() -> None:
    """Progress is ours to report (events): silence the libraries' own bars and log lines."""
    import warnings

    import datasets
    import transformers

    # TRL 1.x still calls transformers' deprecated gradient_checkpointing_* names.
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    datasets.disable_progress_bars()
    # map/filter over a dataset loaded from an artefact folder would write cache-*.arrow
    # files into it: artefacts are complete once renamed into place, so the cache goes to
    # a temporary folder of its own instead (datasets deletes it at exit)
    datasets.disable_caching()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def run(trainer: Any, plan: Plan) -> tuple[Any, str | None]:
    """Train, resuming from the last checkpoint if an earlier run was killed."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log dict when tqdm is off
    skipped: list[str] = []
    resume = last_checkpoint(plan.checkpoints, skipped)
    for why in skipped:  # said, and removed: the Trainer would write the same step there again
        note = (f"skipped {why}; resumed from {Path(resume).name}" if resume
                else f"skipped {why}; started again from the beginning")
        plan.notes.append(note)
        plan.emit(Warned(STAGE, message=note, path=str(plan.checkpoints)))
        shutil.rmtree(plan.checkpoints / why.split(":", 1)[0], ignore_errors=True)
    try:
        trainer.train(resume_from_checkpoint=resume)
    except Exception as e:
        if _is_oom(e):
            raise StageError(f"out of memory while training on {plan.device}", hint=oom_hint(plan.cfg)) from e
        if _is_disk_full(e):
            raise StageError(f"could not write a checkpoint under {plan.checkpoints}: {e}",
                             hint="is the disk full? a re-run resumes from the last complete "
                                  "checkpoint") from e
        raise
    return trainer, resume


def _is_disk_full(e: BaseException | None) -> bool:
    """A full disk while saving: an OSError, or torch's zip writer failing part-way
    ("unexpected pos ...", "PytorchStreamWriter failed writing file")."""
    from loop.workspace import disk_full

    while e is not None:
        if isinstance(e, OSError) and disk_full(e):
            return True
        if isinstance(e, RuntimeError) and any(
                w in str(e) for w in ("unexpected pos", "PytorchStreamWriter failed", "file write failed")):
            return True
        e = e.__cause__ or e.__context__
    return False


def _is_oom(e: BaseException) -> bool:
    import torch

    oom = getattr(torch, "OutOfMemoryError", None)
    return (oom is not None and isinstance(e, oom)) or "out of memory" in str(e).lower()


def oom_hint(cfg: TrainConfig) -> str:
    return (f"lower memory_budget in [train] (now {cfg.memory_budget}) so the plan takes smaller "
            f"micro-batches, lower --max-length (now {cfg.max_length}), set "
            "gradient_checkpointing = true in [train], or use --method qlora")


def curves(log_history: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    """Train and validation loss per step from the Trainer's log (kept across resumes)."""
    train = [[h["step"], h["loss"]] for h in log_history if "loss" in h and _finite(h["loss"])]
    val = [[h["step"], h["eval_loss"]] for h in log_history if "eval_loss" in h]
    heldout = [[h["step"], h["heldout_loss"]] for h in log_history if "heldout_loss" in h]
    # with a fact probe, "val" is the probe's loss and "heldout" the held-out chunks'
    return {"train": train, "val": val, **({"heldout": heldout} if heldout else {})}


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def clear_checkpoints(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
