"""Stopping a training run from outside (the dashboard's Stop) without losing it.

``StopTraining`` is a Trainer callback: once ``request()`` is called (from any thread) the
Trainer saves a checkpoint at the end of the current step and stops; the callback then
raises ``TrainingStopped`` from ``on_save``, after the checkpoint is complete, so the stage
writes no model artefact for a run that did not finish (its id promises the whole config).
``train`` with the same settings resumes from that checkpoint.
"""

from __future__ import annotations

import threading
from typing import Any

from transformers import TrainerCallback

from loop.errors import StageError


class TrainingStopped(StageError):
    """Training stopped on request; ``checkpoint`` is where a re-run resumes."""

    def __init__(self, step: int, checkpoint: str) -> None:
        super().__init__(f"training stopped at step {step}; checkpoint kept: {checkpoint}",
                         hint="run train again with the same settings to resume from it")
        self.step, self.checkpoint = step, checkpoint


class StopTraining(TrainerCallback):
    """``event``: share one with the caller (a UI sets it without importing transformers)."""

    def __init__(self, event: threading.Event | None = None) -> None:
        self._requested = event or threading.Event()

    def request(self) -> None:
        self._requested.set()

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
        if self.requested:
            raise TrainingStopped(state.global_step, f"{args.output_dir}/checkpoint-{state.global_step}")
        return control
