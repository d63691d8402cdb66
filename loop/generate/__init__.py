"""``synthloop generate``: the teacher turns the corpus into a synthetic dataset (or, with
``--eval``, a generated eval set). ``GenerateConfig`` is its ``[generate]`` section,
``generate`` runs it, ``GenerateResult`` is what it returns."""

from loop.generate.stage import (
    GenerateConfig,
    GenerateResult,
    generate,
    plan,
    rag_context,
    select_chunks,
)

run = generate

__all__ = ["GenerateConfig", "GenerateResult", "generate", "plan", "rag_context", "run",
           "select_chunks"]
