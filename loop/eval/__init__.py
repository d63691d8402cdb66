"""``synthloop eval`` and ``report``: every setup answers the same questions; metrics with
95% intervals, paired differences and a verdict. ``EvalConfig`` is the ``[eval]`` section,
``evaluate`` runs the stage, ``EvalResult`` is what it returns; setups and metrics come from
the registries in :mod:`loop.eval.setups` and :mod:`loop.eval.metrics`.

The config is imported at once (it is light); the stage on first use of any other name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop.eval.config import EvalConfig

if TYPE_CHECKING:
    from loop.eval.stage import EvalResult, evaluate

    run = evaluate

__all__ = ["EvalConfig", "EvalResult", "evaluate", "run"]


def __getattr__(name: str) -> Any:
    if name in ("EvalResult", "evaluate", "run"):
        from loop.eval import stage

        return getattr(stage, "evaluate" if name == "run" else name)
    raise AttributeError(f"module 'loop.eval' has no attribute {name!r}")
