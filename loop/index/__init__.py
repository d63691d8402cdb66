"""``synthloop index``, ``search`` and ``retrieval-eval``: the retrieval index over the
corpus's chunks. ``IndexConfig`` is the ``[index]`` section, ``build_index`` runs the stage,
``IndexResult`` is what it returns; ``load_retriever`` opens the index for searching."""

from loop.index.stage import (
    IndexConfig,
    IndexResult,
    Retriever,
    build_index,
    evaluate_retrieval,
    index_id_for,
    load_retriever,
)

run = build_index

__all__ = ["IndexConfig", "IndexResult", "Retriever", "build_index", "evaluate_retrieval",
           "index_id_for", "load_retriever", "run"]
