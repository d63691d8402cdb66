"""``synthloop index``, ``search`` and ``retrieval-eval``: the retrieval index over the
corpus's chunks. ``IndexConfig`` is the ``[index]`` section, ``build_index`` runs the stage,
``IndexResult`` is what it returns; ``load_retriever`` opens the index for searching.

The config is imported at once; the stage on first use of any other name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop.index.config import IndexConfig

if TYPE_CHECKING:
    from loop.index.stage import (
        IndexResult,
        Retriever,
        build_index,
        evaluate_retrieval,
        index_id_for,
        load_retriever,
    )

    run = build_index

_STAGE_NAMES = ("IndexResult", "Retriever", "build_index", "evaluate_retrieval", "index_id_for",
                "load_retriever")
__all__ = ["IndexConfig", "IndexResult", "Retriever", "build_index", "evaluate_retrieval",
           "index_id_for", "load_retriever", "run"]


def __getattr__(name: str) -> Any:
    if name in _STAGE_NAMES or name == "run":
        from loop.index import stage

        return getattr(stage, "build_index" if name == "run" else name)
    raise AttributeError(f"module 'loop.index' has no attribute {name!r}")
