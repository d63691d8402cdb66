"""What a stage works on, by id: the explicit handoff between stages.

Every stage reads artefacts other stages wrote (the corpus, the dataset, the index, the
generated eval set, trained models). It is told which by an :class:`Inputs`; nothing inside
a stage package reads the ledger's "current" pointers (a test holds this). The pointers are
the edges' default: a CLI verb or a dashboard action that names nothing works on the
workspace's latest artefacts, resolved here by :func:`current_inputs`, and ``run_pipeline``
hands each stage's result ids to the next stage instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loop.workspace import Workspace


@dataclass(frozen=True)
class Inputs:
    """The artefact ids a stage reads. A field left None means "none": a stage that needs
    it says so (``run `synthloop ingest` first``), it never looks for one itself."""

    corpus_id: str | None = None
    dataset_id: str | None = None  # the synthetic dataset (training rows)
    index_id: str | None = None
    eval_set_id: str | None = None  # the generated eval set (a gold file is a path, not an id)
    models: Mapping[str, str] = field(default_factory=dict)  # model kind -> model id
    eval_id: str | None = None  # an evaluation (what `report` and `ask` read)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", MappingProxyType(dict(self.models)))

    def but(self, **changes: object) -> Inputs:
        """A copy with some ids replaced (``inputs.but(corpus_id=result.corpus_id)``)."""
        if "models" in changes:
            changes["models"] = {**self.models, **changes["models"]}  # type: ignore[dict-item]
        return replace(self, **changes)  # type: ignore[arg-type]

    def model(self, kind: str) -> str | None:
        return self.models.get(kind)


def current_inputs(ws: Workspace) -> Inputs:
    """The workspace's latest artefact of each kind: what a verb that names none works on."""
    from loop.kinds import MODEL_KINDS

    db = ws.ledger
    models = {kind: mid for kind in MODEL_KINDS if (mid := db.current(f"model.{kind}"))}
    return Inputs(corpus_id=db.current("corpus"), dataset_id=db.current("dataset"),
                  index_id=db.current("index"), eval_set_id=db.current("eval_set"),
                  models=models, eval_id=db.current("eval"))


def given(ws: Workspace, inputs: Inputs | None) -> Inputs:
    """``inputs``, or (called from an edge that named none) the workspace's latest."""
    return inputs if inputs is not None else current_inputs(ws)
