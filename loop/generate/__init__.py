"""``synthloop generate``: the teacher turns the corpus into a synthetic dataset (or, with
``--eval``, a generated eval set). ``GenerateConfig`` is its ``[generate]`` section,
``generate`` runs it, ``GenerateResult`` is what it returns.

The config is imported at once (it is light); the stage, which loads ``datasets`` and the
generators, on first use of any other name.
"""

from typing import Any

from loop.generate.config import GenerateConfig

_STAGE_NAMES = ("GenerateResult", "generate", "plan")
_JOB_NAMES = ("rag_context", "select_chunks")


def __getattr__(name: str) -> Any:
    if name in _STAGE_NAMES or name == "run":
        from loop.generate import stage

        return stage.generate if name == "run" else getattr(stage, name)
    if name in _JOB_NAMES:
        from loop.generate import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'loop.generate' has no attribute {name!r}")


__all__ = ["GenerateConfig", *_STAGE_NAMES, *_JOB_NAMES, "run"]
