"""Training settings chosen on validation: every setting of a grid trained, the lowest
validation loss kept::

    synthloop train --sweep "lr=1e-4,3e-4 lora_r=8,16 epochs=1,3"

Each setting is an ordinary train run, the same model (and id) that ``train --lr 1e-4
--lora-r 8 --epochs 1`` makes by hand: a re-run finds finished settings cached and resumes a
killed one from its checkpoint. The sweep and every setting with its validation curve go to
the ledger (``sweeps``, ``sweep_settings``); the winner becomes the current model of its kind.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from loop.config import is_list_type, is_simple_type, resolve, strip_optional
from loop.errors import ConfigError, InputError, StageError, UsageError
from loop.events import EventSink, Finished, Progress, Started, Warned, null_sink
from loop.handoff import Inputs, given
from loop.train.config import TrainConfig
from loop.train.stage import TrainResult, is_main_process, train
from loop.workspace import Workspace

STAGE = "sweep"
ALIASES = {"learning_rate": "lr"}
# Settings that change what the validation loss is measured on (another student's tokens,
# other rows, another objective): losses across them do not compare, so they are not swept.
# max_length truncates the validation rows, packing changes the tokens a loss is averaged
# over, dpo_beta scales the DPO loss itself.
FIXED = frozenset({"student", "method", "with_context", "then_sft", "init_from",
                   "target_modules", "sweep", "max_length", "packing", "dpo_beta"})


def sweep_keys() -> list[str]:
    """The TrainConfig fields a sweep may vary: scalars that change the model made."""
    return [name for name, f in TrainConfig.model_fields.items()
            if name not in FIXED | TrainConfig.execution_only and is_simple_type(f.annotation)
            and not is_list_type(strip_optional(f.annotation))]


def parse_grid(text: str) -> dict[str, list[str]]:
    """``"lr=1e-4,3e-4 lora_r=8,16"`` -> ``{"lr": ["1e-4", "3e-4"], "lora_r": ["8", "16"]}``;
    an unknown key, a repeated one or an empty list is a UsageError (exit 2)."""
    known = sweep_keys()
    hint = f"known keys: {', '.join(known)}"
    grid: dict[str, list[str]] = {}
    for part in text.replace(";", " ").split():
        key, sep, values = part.partition("=")
        name = key.strip().replace("-", "_")
        name = ALIASES.get(name, name)
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise UsageError(f"--sweep: '{part}' is not key=value,value,...", hint=hint)
        if name in FIXED:
            raise UsageError(f"--sweep: '{key}' cannot be swept: validation losses of another "
                             f"{key.replace('_', ' ')} do not compare; run one sweep per {key}",
                             hint=hint)
        if name not in known:
            raise UsageError(f"--sweep: unknown key '{key}'", hint=hint)
        if name in grid:
            raise UsageError(f"--sweep: '{key}' is given twice", hint="one key=values per setting")
        grid[name] = items
    if not grid:
        raise UsageError("--sweep: no settings to try", hint=f"e.g. 'lr=1e-4,3e-4 lora_r=8,16'; {hint}")
    return grid


def setting_configs(base: TrainConfig, grid: dict[str, list[str]]) -> list[TrainConfig]:
    """One config per grid point (the cartesian product, in grid order, duplicates once),
    each the base with the sweep removed: exactly what the flags by hand would make."""
    fixed = {**base.model_dump(), "sweep": None}
    for key, values in grid.items():  # each value alone first: the error names it
        for v in values:
            try:
                resolve(TrainConfig, {**fixed, key: v})
            except ConfigError as e:
                raise UsageError(f"--sweep {key}={v}: {e.message}") from None
    configs: dict[str, TrainConfig] = {}
    for combo in itertools.product(*grid.values()):
        try:
            cfg = resolve(TrainConfig, {**fixed, **dict(zip(grid, combo, strict=True))})
        except ConfigError as e:
            raise UsageError(f"--sweep {dict(zip(grid, combo, strict=True))}: {e.message}") from None
        configs.setdefault(cfg.digest(), cfg)
    return list(configs.values())


@dataclass
class Setting:
    """One grid point and the model it made."""

    settings: dict[str, Any]
    model_id: str
    val_loss: float | None  # None: diverged (NaN), never the best
    curve: list[list[float]]  # [[step, validation loss], ...]
    cached: bool = False

    def summary(self) -> dict[str, Any]:
        return {"settings": self.settings, "val_loss": self.val_loss, "model_id": self.model_id,
                "cached": self.cached}


@dataclass
class SweepResult:
    sweep_id: str
    settings: list[Setting]
    best: Setting
    model: TrainResult  # the winner's train result
    grid: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "sweep": [s.summary() for s in self.settings],
                "best": self.best.summary()}


def sweep(ws: Workspace, cfg: TrainConfig, emit: EventSink = null_sink, *,
          callbacks: list[Any] | None = None, inputs: Inputs | None = None) -> SweepResult:
    """Train every setting of ``cfg.sweep`` on ``inputs`` (unset: the workspace's latest) and
    make the lowest validation loss current. The grid and its values are checked before any
    training."""
    inputs = given(ws, inputs)
    grid = parse_grid(cfg.sweep or "")
    configs = setting_configs(cfg, grid)
    _require_validation(ws, configs[0], inputs)
    lock = ws.writing("train") if is_main_process() else contextlib.nullcontext()
    with lock:  # one sweep at a time: no other writer between its settings
        emit(Started(STAGE, total=len(configs), unit="settings"))
        trained: list[tuple[Setting, TrainResult]] = []
        for i, c in enumerate(configs):
            values = {k: getattr(c, k) for k in grid}
            emit(Progress(STAGE, done=i, total=len(configs), info=values))
            r = train(ws, c, emit, callbacks=callbacks, inputs=inputs)
            # a diverged setting (NaN, or none recorded: SQLite keeps NaN as NULL) is kept,
            # with no loss, and never chosen
            loss = r.val_loss if r.val_loss is not None and math.isfinite(r.val_loss) else None
            if loss is None:
                emit(Warned(STAGE, message=f"setting {values}: no finite validation loss "
                                           f"(model {r.model_id} diverged?); not a candidate"))
            trained.append((Setting(values, r.model_id, loss, _val_curve(r), r.cached), r))
        emit(Progress(STAGE, done=len(configs), total=len(configs)))
        finite = [t for t in trained if t[0].val_loss is not None]
        if not finite:
            raise StageError("no setting of the sweep reached a finite validation loss",
                             hint="lower the learning rate")
        best, model = min(finite, key=lambda t: t[0].val_loss)  # ties: the first in the grid
        result = SweepResult(_sweep_id([s for s, _ in trained]), [s for s, _ in trained], best,
                             model, grid)
        if is_main_process():
            _record(ws, cfg, result)
    emit(Finished(STAGE, summary=result.summary()))
    return result


def _require_validation(ws: Workspace, cfg: TrainConfig, inputs: Inputs) -> None:
    """A sweep ranks by validation loss: with no validation rows it has nothing to rank by."""
    from loop.train.stage import _Train

    _, val, _ = _Train(ws, cfg, null_sink, [], inputs)._rows()
    if val is None:
        raise InputError(f"--sweep picks the setting with the lowest validation loss, and the "
                         f"dataset has no validation rows for --method {cfg.method}",
                         hint="generate with a validation share (`synthloop generate "
                              "--val-share 0.1`), or train one setting without --sweep")


def _val_curve(r: TrainResult) -> list[list[float]]:
    f = r.path / "curves.json"
    return json.loads(f.read_text()).get("val", []) if f.exists() else []


def _sweep_id(settings: list[Setting]) -> str:
    blob = json.dumps(sorted(s.model_id for s in settings)).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _record(ws: Workspace, base: TrainConfig, result: SweepResult) -> None:
    """The sweep and its settings in the ledger; the winner current, as plain train does."""
    db, best = ws.ledger, result.model
    with db.transaction():
        db.insert("sweeps", conflict="replace", id=result.sweep_id, kind=best.kind,
                  dataset_id=best.dataset_id, created_at=time.time(), grid=result.grid,
                  best_model_id=best.model_id, config=base.resolved())
        db.conn.execute("DELETE FROM sweep_settings WHERE sweep_id = ?", (result.sweep_id,))
        db.insert_many("sweep_settings", [
            {"sweep_id": result.sweep_id, "seq": i, "settings": s.settings, "model_id": s.model_id,
             "val_loss": s.val_loss, "curve": s.curve} for i, s in enumerate(result.settings)])
        db.set_current("model", best.model_id)
        db.set_current(f"model.{best.kind}", best.model_id)
