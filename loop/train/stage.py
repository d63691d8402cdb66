"""The train stage: a student and the synthetic dataset in, ``models/<id>/`` and a ledger row out.

The id hashes the student's fingerprint, the dataset id and the resolved config, so an
unchanged re-run is a cache hit. Checkpoints go to ``checkpoints/<id>/`` every
``save_steps``; a run killed at any point resumes from the newest complete one. The artefact
folder is built in ``tmp/`` and renamed into place last::

    models/<id>/
      adapter/          PEFT adapter (adapter_model.safetensors + adapter_config.json) + tokenizer
      model/            full weights + tokenizer (--method full, and pretrain: merged)
      curves.json       train and validation loss per step
      synthloop.json    student, method, dataset id, resolved config, figures, notes
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loop.corpus import load_corpus, require_corpus
from loop.errors import InputError
from loop.events import EventSink, Finished, Progress, Started, Warned, null_sink
from loop.handoff import Inputs, given
from loop.kinds import MODEL_KINDS
from loop.models.students import (
    LoadOptions,
    Student,
    fingerprint_student,
    load_student,
    pin_device,
    require_qlora,
    resolve_device,
    resolve_dtype,
)
from loop.samples import load_samples, require_dataset
from loop.stage import stage_run
from loop.train.config import TrainConfig
from loop.workspace import Workspace, write_json


@dataclass
class TrainResult:
    model_id: str
    path: Path
    adapter_path: str
    kind: str
    student: str
    method: str
    dataset_id: str
    steps: int
    loss_first: float | None
    loss_last: float | None
    val_loss: float | None
    cached: bool = False
    resumed_from: str | None = None
    notes: list[str] = field(default_factory=list)
    memory: dict[str, Any] | None = None  # the memory plan, with the measured peak
    tokens_per_s: float | None = None
    pretrain: dict[str, Any] | None = None  # then_sft: the pretraining run this one built on
    world_size: int = 1  # processes that trained it (accelerate launch / torchrun ranks)
    stopped_early: bool = False  # validation loss stopped improving before the last step
    best_step: int | None = None  # the step whose checkpoint (lowest validation loss) was kept

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def model_kind(cfg: TrainConfig) -> str:
    """Which kind of model a training makes (``loop.kinds``): tuned, combined (RAFT), dpo
    or pretrain."""
    from loop.kinds import kind_of

    return kind_of(cfg.method, cfg.with_context)




def train(ws: Workspace, cfg: TrainConfig | None = None, emit: EventSink = null_sink, *,
          callbacks: list[Any] | None = None, inputs: Inputs | None = None) -> TrainResult:
    """Fine-tune the configured student; see the module docstring for what is written.

    ``inputs`` names the dataset to train on (continued pretraining: the corpus, and the
    dataset whose rewrite rows it reads beside it) and the models ``init_from`` may name
    by kind; unset, the workspace's latest."""
    from loop.plugins import load_plugins
    from loop.train.runner import quiet

    load_plugins()  # student loaders and model kinds from installed plugins
    cfg = cfg or TrainConfig()
    inputs = given(ws, inputs)
    if cfg.method != "pretrain":
        require_dataset(ws, inputs.dataset_id)  # say so now, before torch and the student load
    quiet()
    if cfg.sweep:  # a [train.sweep] table reached a caller that trains one setting
        emit(Warned("train", message="sweep not run here: this trains the base settings only; "
                                     "`synthloop train` runs the sweep"))
    lock = ws.writing("train") if is_main_process() else contextlib.nullcontext()
    with lock:
        result = _Train(ws, cfg, emit, callbacks or [], inputs).run()
        if not (cfg.then_sft and cfg.method == "pretrain"):
            return result
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # rank 0 writes the pretrained model
            from accelerate import PartialState  # first: the others load it next

            PartialState().wait_for_everyone()
        sft = cfg.model_copy(update={"method": "lora", "student": f"model:{result.model_id}",
                                     "then_sft": False, "pretrain_epochs": None})
        tuned = _Train(ws, sft, emit, callbacks or [], inputs).run()
        tuned.pretrain = result.summary()
        return tuned


def is_main_process() -> bool:
    """Under ``accelerate launch`` every rank trains; only rank 0 writes the workspace."""
    return int(os.environ.get("RANK", "0")) == 0


class _Train:
    def __init__(self, ws: Workspace, cfg: TrainConfig, emit: EventSink, callbacks: list,
                 inputs: Inputs) -> None:
        self.ws, self.cfg, self.emit, self.extra_callbacks = ws, cfg, emit, callbacks
        self.inputs = inputs
        self.device = resolve_device(pin_device(cfg.device))
        self.dtype = resolve_dtype(cfg.dtype, self.device)
        self.opts = LoadOptions(ws=ws, device=self.device, dtype=self.dtype,
                                trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle,
                                quantize_4bit=cfg.method == "qlora", emit=emit)

    def run(self) -> TrainResult:
        from loop.train.runner import reporters

        reporters(self.cfg.report_to)  # a missing logger package fails before any work
        if self.cfg.adapter_scale is not None and self.cfg.method not in ("lora", "qlora"):
            raise InputError(f"adapter_scale scales a LoRA adapter: use it with --method lora or "
                             f"qlora, not {self.cfg.method}")
        if self.cfg.method == "qlora":
            require_qlora(self.device)
        train_rows, val_rows, dataset_id = self._rows()
        model_id = self._model_id(dataset_id)
        final = self.ws.artefact("models", model_id)
        if (final / "synthloop.json").exists():
            return self._cached(final)
        if not is_main_process():
            return self._fit(train_rows, val_rows, dataset_id, model_id)
        from loop.train.stop import TrainingStopped

        # the caller holds the lock; a Stop on request keeps its checkpoint: "stopped", not broken
        with stage_run(self.ws, "train", self.cfg.resolved(), argv=sys.argv, emit=self.emit,
                       lock=False, stopped_by=(TrainingStopped,)) as run:
            result = self._fit(train_rows, val_rows, dataset_id, model_id)
            run.done(result.summary(), model_id)
        return result

    # -- inputs ---------------------------------------------------------------------------

    def _rows(self) -> tuple[Any, Any, str]:
        from loop.train.data import corpus_text, probe_rows, select, with_student_system

        self.probe = None
        if self.cfg.method == "pretrain":
            rewrites, dataset_id = self._rewrites()
            corpus_id = require_corpus(self.ws, self.inputs.corpus_id)
            train, val = corpus_text(load_corpus(self.ws, corpus_id), seed=self.cfg.seed,
                                     extra=rewrites)
            corpus = f"corpus:{corpus_id}"
            return train, val, f"{corpus}+{dataset_id}" if rewrites else corpus
        dataset_id = require_dataset(self.ws, self.inputs.dataset_id)
        samples = load_samples(self.ws, dataset_id)
        train, val = select(samples, self.cfg.method, self.cfg.with_context)
        self.probe = probe_rows(samples, self.cfg.method, self.cfg.with_context)
        if self.cfg.method != "dpo":  # DPO's prompts get it in to_preference
            train, val, self.probe = (with_student_system(d) if d is not None else None
                                      for d in (train, val, self.probe))
        if val is None and self.probe is None:
            self.emit(Warned("train", message="no validation rows: no validation loss and no "
                                              "early stopping for this run"))
        return train, val, dataset_id

    def _rewrites(self) -> tuple[list[str], str | None]:
        """The current dataset's rewrite rows (``generate --tasks rewrite``), which continued
        pretraining reads beside the chunks; none when there is no dataset or no such row."""
        from loop.train.data import pretrain_texts

        dataset_id = self.inputs.dataset_id
        if dataset_id is None:
            return [], None
        texts = pretrain_texts(load_samples(self.ws, dataset_id))
        if texts:
            self.emit(Warned("train", message=f"pretrain: {len(texts)} rewrite rows of dataset "
                                              f"{dataset_id} beside the corpus chunks"))
        return texts, dataset_id

    def sized(self, train_rows: Any) -> TrainConfig:
        """The config a run trains with: with ``exposures`` set, ``epochs`` is what gives every
        fact that many trained rows (a fact stated by 3 phrasings gets 3 per epoch); the note
        says so. ``max_steps`` still caps it. Context rows (the combined adapter) and an
        explicit ``epochs`` keep the epochs given."""
        cfg = self.cfg
        if cfg.method == "pretrain" and cfg.pretrain_epochs:
            return cfg.model_copy(update={"epochs": cfg.pretrain_epochs})
        # raft rows teach reading the context, one row per question: epochs size them
        if (cfg.exposures is None or cfg.method in ("pretrain", "dpo") or cfg.with_context
                or "epochs" in cfg.model_fields_set):
            return cfg
        from loop.train.data import facts_per_epoch

        facts, per_epoch = facts_per_epoch(train_rows)
        epochs = round(max(cfg.exposures / per_epoch, 0.05), 3)
        self.sizing = (f"{cfg.exposures:g} exposures per fact: {epochs} epochs over {len(train_rows)} "
                       f"rows ({facts} facts, {per_epoch:.2f} rows each)")
        return cfg.model_copy(update={"epochs": epochs})

    def _model_id(self, dataset_id: str) -> str:
        student = fingerprint_student(self.cfg.student, self.opts)
        parts = [student, dataset_id, self.cfg.digest()]
        if self.cfg.init_from:  # "tuned" names whichever model is current: hash that one
            parts.append(self.init_model()["id"])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def init_model(self) -> dict[str, Any]:
        """The ledger row of the model ``init_from`` names (a kind's current model, or an
        id); one that is missing, or has no adapter to continue, is a clear error."""
        name = self.cfg.init_from or ""
        db = self.ws.ledger
        row = db.model(self.inputs.model(name) if name in MODEL_KINDS else name)
        if row is None:
            raise InputError(f"--from {name}: no such model in this workspace",
                             hint="train it first (`synthloop train`), or pass a model id")
        if not (self.ws.artefact("models", row["id"]) / "adapter" / "adapter_config.json").exists():
            raise InputError(f"--from {name}: model {row['id']} ({row['method']}) has no LoRA "
                             "adapter to continue")
        if self.cfg.method not in ("lora", "dpo"):
            raise InputError(f"--from continues a LoRA adapter: use it with --method lora or dpo, "
                             f"not {self.cfg.method}")
        if row["student"] != self.cfg.student:
            raise InputError(f"--from {name}: model {row['id']} was trained on {row['student']}, "
                             f"not {self.cfg.student}",
                             hint=f"pass --student {row['student']}")
        return row

    def _with_replay(self, train_rows: Any, student: Student) -> Any:
        """The closed-book SFT rows plus ``replay`` x as many of the student's own answers
        to general prompts, written before tuning (loop/train/replay.py)."""
        cfg = self.cfg
        if not cfg.replay or cfg.with_context or cfg.method not in ("lora", "full", "qlora"):
            return train_rows
        from datasets import concatenate_datasets

        from loop.train.replay import replay_prompts, replay_rows, student_answers

        n = round(cfg.replay * len(train_rows))
        if n < 1:
            return train_rows

        # no more written questions than rows to hold them
        shipped = set(replay_prompts())
        written = min(cfg.replay_written, max(0, n - len(shipped)))
        started: set[str] = set()

        def progress(what: str, done: int, total: int) -> None:
            # its own bar / log lines: a few minutes on a CPU before the first training step
            if what not in started:
                started.add(what)
                self.emit(Started("replay", total=total, unit="questions",
                                  message=f"{what} general questions (the student, before tuning)"))
            self.emit(Progress("replay", done=done, total=total))
            if done >= total:
                self.emit(Finished("replay"))

        answers = student_answers(self.ws.root, fingerprint_student(cfg.student, self.opts),
                                  student.model, student.tokenizer, written=written,
                                  seed=cfg.seed, on_progress=progress)
        if not answers:
            return train_rows
        own = sum(p not in shipped for p, _ in answers)
        note = (f"replay: {n} rows ({cfg.replay:g} of {len(train_rows)}) of the student's own "
                f"answers to {len(answers)} general prompts ({own} of them written by the "
                f"student itself), answered before tuning"
                + (f"; weighted to {cfg.replay_share:.0%} of the loss" if cfg.replay_share else ""))
        self.replay_note = note
        self.emit(Warned("train", message=note))
        rows = replay_rows(answers, n, train_rows.features)
        return concatenate_datasets([train_rows, rows]).shuffle(seed=cfg.seed)

    def _cached(self, final: Path) -> TrainResult:
        meta = json.loads((final / "synthloop.json").read_text())
        result = TrainResult(**{k: meta.get(k) for k in _RESULT_KEYS}, path=final, cached=True)
        result.notes = result.notes or []
        result.adapter_path = str(final / (meta["adapter_path"] or "model"))
        self.emit(Finished("train", summary=result.summary()))
        return result

    # -- training ------------------------------------------------------------------------------

    def _fit(self, train_rows: Any, val_rows: Any, dataset_id: str, model_id: str) -> TrainResult:
        from transformers import set_seed

        from loop.train import runner

        self._fits_before_loading()
        student = load_student(self.cfg.student, self.opts)
        run_cfg = self.sized(train_rows)  # before replay rows join: they are no facts
        train_rows = self._with_replay(train_rows, student)
        # No KV cache while training: with one, transformers ignores the restarting position
        # ids of packed rows and lets packed samples attend to each other.
        student.model.config.use_cache = False
        set_seed(self.cfg.seed)  # before LoRA init, so a resumed run starts from the same weights
        model, targets = self._prepare(student)
        probe = getattr(self, "probe", None)
        plan = runner.Plan(run_cfg, self.ws.root / "checkpoints" / model_id, self.device,
                           self.dtype, val_rows is not None or probe is not None, self.emit,
                           self.extra_callbacks,
                           tensorboard_dir=self.ws.root / "logs" / "tensorboard" / model_id,
                           budget=self.budget)
        if getattr(self, "sizing", None):
            plan.notes.append(self.sizing)
            self.emit(Warned("train", message=self.sizing))
        if getattr(self, "replay_note", None):
            plan.notes.append(self.replay_note)
        trainer = self._trainer(model, student, train_rows, val_rows, plan)
        trainer, resumed = runner.run(trainer, plan)
        rate = runner.tokens_per_s(trainer)  # this process's steps only, not a resumed run's
        final_eval = trainer.evaluate() if trainer.eval_dataset is not None else {}
        val_loss = final_eval.get("eval_loss")
        self.heldout_loss = final_eval.get("heldout_loss")
        student.notes = [*student.notes, *plan.notes]
        self.memory = plan.memory.as_dict() if plan.memory else None
        if self.memory is not None:
            from loop.models.memory import measured_peak

            self.memory["peak_bytes"] = measured_peak(self.device)
        self.rate = round(rate, 1) if rate > 0 else None
        if not is_main_process():
            return self._result(model_id, Path(), "", trainer, val_loss, student, resumed, dataset_id)
        final = self.ws.artefact("models", model_id)
        with self.ws.atomic_dir(final) as tmp:
            adapter = self._save(trainer.model, student, tmp)
            result = self._result(model_id, final, adapter, trainer, val_loss, student, resumed, dataset_id)
            write_json(tmp / "curves.json", runner.curves(trainer.state.log_history))
            write_json(tmp / "synthloop.json", self._meta(result, student, targets))
        result.adapter_path = str(final / adapter) if adapter else str(final / "model")
        self._record(result)
        runner.clear_checkpoints(plan.checkpoints)
        return result

    def _fits_before_loading(self) -> None:
        """Refuse, before the weights load, a run that cannot fit its memory budget even at
        the longest rows ``max_length`` allows (the exact plan follows once rows are known)."""
        from loop.models.memory import parse_budget, plan_memory
        from loop.models.students import count_parameters, student_config

        self.budget = parse_budget(self.cfg.memory_budget, self.device)
        if self.cfg.method in ("qlora",):  # 4-bit weights: the estimate's dtype does not apply
            return
        config = student_config(self.cfg.student, self.opts)
        params = count_parameters(config, self.opts) if config is not None else None
        if params is None:
            return
        # read before the weights load, which then take their room out of free memory: the
        # budget is fixed here, with that room in it, and the exact plan uses the same figure
        weight_bytes = params * (4 if self.dtype == "fp32" or self.cfg.method == "full" else 2)
        self.budget = parse_budget(self.cfg.memory_budget, self.device, weights_bytes=weight_bytes)
        trainable = params if self.cfg.method == "full" else params // 100  # LoRA: ~1-4%
        plan_memory(config, params=params, trainable=trainable,
                    effective_batch=self.cfg.batch_size * self.cfg.grad_accum,
                    row_tokens=self.cfg.max_length, dtype=self.dtype, budget=self.budget,
                    want_checkpointing=self.cfg.gradient_checkpointing,
                    full_vocab=True, pairs=self.cfg.method == "dpo")  # the worst case

    def _prepare(self, student: Student) -> tuple[Any, list[str]]:
        from loop.train import runner

        if self.cfg.method == "full":
            return student.model.float(), []  # fp32 master weights; bf16 comes from autocast
        if self.cfg.method == "qlora":
            from peft import prepare_model_for_kbit_training

            student.model = prepare_model_for_kbit_training(  # casts norms to fp32, checkpoints
                student.model, gradient_checkpointing_kwargs={"use_reentrant": False})
        if self.cfg.init_from:
            from peft import PeftModel

            folder = self.ws.artefact("models", self.init_model()["id"]) / "adapter"
            model = PeftModel.from_pretrained(student.model, str(folder), is_trainable=True)
            return model, sorted(model.peft_config["default"].target_modules)
        return runner.add_lora(student.model, self.cfg)

    def _trainer(self, model: Any, student: Student, train_rows: Any, val_rows: Any, plan: Any) -> Any:
        if self.cfg.method == "dpo":
            from loop.train.dpo import dpo_trainer

            return dpo_trainer(model, student.tokenizer, train_rows, val_rows, plan)
        from loop.train.fit import oracle_texts
        from loop.train.sft import sft_trainer

        return sft_trainer(model, student.tokenizer, train_rows, val_rows, plan,
                           text=self.cfg.method == "pretrain", probe=getattr(self, "probe", None),
                           oracle_texts=oracle_texts(self.ws, self.inputs.corpus_id, train_rows, val_rows)
                           if self.cfg.with_context else None)

    # -- outputs ---------------------------------------------------------------------------------

    def _save(self, model: Any, student: Student, tmp: Path) -> str:
        """Write the adapter (or full/merged weights) and the tokenizer; returns the adapter folder."""
        if self.cfg.method in ("full", "pretrain"):
            weights = model.merge_and_unload() if self.cfg.method == "pretrain" else model
            weights.config.use_cache = True  # for generation with the saved model
            weights.save_pretrained(tmp / "model", safe_serialization=True)
            student.tokenizer.save_pretrained(tmp / "model")
            return ""
        model.peft_config["default"].base_model_name_or_path = student.base_path
        if self.cfg.adapter_scale is not None:
            from loop.train.runner import scale_adapter

            scale_adapter(model, "default", self.cfg.adapter_scale)
        # only the trained adapter: DPO from an SFT adapter also holds its frozen "ref" copy
        model.save_pretrained(tmp / "adapter", safe_serialization=True, selected_adapters=["default"])
        student.tokenizer.save_pretrained(tmp / "adapter")
        return "adapter"

    def _result(self, model_id: str, final: Path, adapter: str, trainer: Any, val_loss: float | None,
                student: Student, resumed: str | None, dataset_id: str) -> TrainResult:
        from loop.train import runner

        train_curve = runner.curves(trainer.state.log_history)["train"]
        return TrainResult(
            model_id=model_id, path=final, adapter_path=adapter, kind=model_kind(self.cfg),
            student=self.cfg.student, method=self.cfg.method, dataset_id=dataset_id,
            steps=trainer.state.global_step,
            loss_first=train_curve[0][1] if train_curve else None,
            loss_last=train_curve[-1][1] if train_curve else None,
            val_loss=float(val_loss) if val_loss is not None else None,
            resumed_from=Path(resumed).name if resumed else None, notes=student.notes,
            memory=getattr(self, "memory", None), tokens_per_s=getattr(self, "rate", None),
            stopped_early=_stopped_early(trainer), best_step=trainer.state.best_global_step,
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
        )

    def _meta(self, result: TrainResult, student: Student, targets: list[str]) -> dict[str, Any]:
        meta = result.summary()
        for k in ("path", "cached"):
            meta.pop(k)
        meta.update(config=self.cfg.resolved(), base_path=student.base_path, target_modules=targets,
                    device=self.device, dtype=self.dtype, created_at=time.time(),
                    params=student.model.num_parameters() if hasattr(student.model, "num_parameters") else None)
        return meta

    def _record(self, r: TrainResult) -> None:
        db = self.ws.ledger
        with db.transaction():
            db.insert("models", conflict="replace", id=r.model_id, kind=r.kind, student=r.student,
                      method=r.method, dataset_id=r.dataset_id, path=str(r.path),
                      created_at=time.time(), steps=r.steps, loss_first=r.loss_first,
                      loss_last=r.loss_last, val_loss=r.val_loss, config=self.cfg.resolved())
            db.set_current("model", r.model_id)
            db.set_current(f"model.{r.kind}", r.model_id)


_RESULT_KEYS = ("model_id", "adapter_path", "kind", "student", "method", "dataset_id", "steps",
                "loss_first", "loss_last", "val_loss", "resumed_from", "notes", "memory",
                "tokens_per_s", "stopped_early", "best_step", "world_size")


def _stopped_early(trainer: Any) -> bool:
    """Early stopping ended the run: fewer steps than planned, with a patience callback that
    asked to stop (a Stop on request raises instead and never gets here)."""
    from transformers import EarlyStoppingCallback

    state = trainer.state
    patience = [c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)]
    return bool(patience) and state.global_step < state.max_steps and any(
        c.early_stopping_patience_counter >= c.early_stopping_patience for c in patience)

