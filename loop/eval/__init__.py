"""``synthloop eval`` and ``report``: every setup answers the same questions; metrics with
95% intervals, paired differences and a verdict. ``EvalConfig`` is the ``[eval]`` section,
``evaluate`` runs the stage, ``EvalResult`` is what it returns; setups and metrics come from
the registries in :mod:`loop.eval.setups` and :mod:`loop.eval.metrics`."""

from loop.eval.stage import EvalConfig, EvalResult, evaluate

run = evaluate

__all__ = ["EvalConfig", "EvalResult", "evaluate", "run"]
