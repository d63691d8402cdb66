"""Training: students by URI, LoRA/full/QLoRA SFT, DPO, continued pretraining, RAFT, export.

The public API the CLI, the scorer and the dashboard use::

    from loop.train import TrainConfig, train, load_tuned, export_merged
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop.train.config import TrainConfig

if TYPE_CHECKING:
    from loop.train.stage import TrainResult

__all__ = ["TrainConfig", "train", "run", "sweep", "load_tuned", "export_merged",
           "current_model_id", "TrainResult"]


def train(*args: Any, **kwargs: Any) -> TrainResult:
    """Run the train stage (see :func:`loop.train.stage.train`); imports torch lazily."""
    from loop.train.stage import train as run

    return run(*args, **kwargs)


run = train


def sweep(*args: Any, **kwargs: Any) -> Any:
    """Train every setting of ``cfg.sweep``, keep the best by validation loss (see
    :mod:`loop.train.sweep`)."""
    from loop.train.sweep import sweep as run_sweep

    return run_sweep(*args, **kwargs)


def current_model_id(*args: Any, **kwargs: Any) -> str | None:
    from loop.train.stage import current_model_id as get

    return get(*args, **kwargs)


def load_tuned(*args: Any, **kwargs: Any) -> Any:
    """Load a trained model (adapter applied) and its tokenizer; see :mod:`loop.train.merge`."""
    from loop.train.merge import load_tuned as load

    return load(*args, **kwargs)


def export_merged(*args: Any, **kwargs: Any) -> Any:
    """Write a merged, plain-transformers model with a model card; see :mod:`loop.train.merge`."""
    from loop.train.merge import export_merged as export

    return export(*args, **kwargs)
