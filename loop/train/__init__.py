"""Training: LoRA/full/QLoRA SFT, DPO, continued pretraining, RAFT, sweeps.

The public API the CLI, the scorer and the dashboard use::

    from loop.train import TrainConfig, train          # train is loop.train.stage.train
    from loop.train.sweep import sweep

Loading students and trained models is the model layer's (``loop.models``). ``train``
(and ``run``, its name in the stage table) is resolved on first use: the stage imports
torch and transformers, which takes seconds, and reading a config must not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop.train.config import TrainConfig

if TYPE_CHECKING:
    from loop.train.stage import TrainResult, train

    run = train

__all__ = ["TrainConfig", "train", "run", "TrainResult"]


def __getattr__(name: str) -> Any:
    if name in ("train", "run", "TrainResult"):
        from loop.train import stage

        return getattr(stage, "train" if name == "run" else name)
    raise AttributeError(f"module 'loop.train' has no attribute {name!r}")
