"""The model kinds: what a trained model is for, in one table.

A kind names what ``train`` made (its ledger row's ``kind`` and the ``model.<kind>``
pointer), which setups load it (``loop.eval.setups``: a setup's ``adapter``), what ``run``
and its plan train, what ``--from`` and ``export --model`` accept, and the ``train`` flags
that make one (the hint when a setup's model is missing). A new kind is one
:func:`register_model_kind` call and, when a method decides it, that method in the train
stage.

A leaf: it imports nothing of the project, so the stages, the plan and the report can read
it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelKind:
    name: str
    summary: str  # how it is trained, in a few words
    with_context: bool  # its rows carry retrieved chunks (RAFT): trained with --with-context
    method: str | None = None  # the train method that makes it (dpo, pretrain); None: any SFT
    run_trains: bool = False  # `synthloop run` (and its plan) trains one, in this table's order
    adapter: bool = True  # a LoRA adapter that `--from` can continue (pretrain merges)

    @property
    def train_flags(self) -> str:
        """The ``synthloop train`` flags that make one (empty for the plain tuned model)."""
        flags = [f"--method {self.method}"] if self.method else []
        if self.with_context:
            flags.append("--with-context")
        if self.method == "dpo":
            flags.append("--from tuned")
        return " ".join(flags)


MODEL_KINDS: dict[str, ModelKind] = {}


def register_model_kind(kind: ModelKind) -> ModelKind:
    """Add a kind; a name already taken is refused (two plugins cannot both own it)."""
    if kind.name in MODEL_KINDS and MODEL_KINDS[kind.name] != kind:
        raise ValueError(f"model kind {kind.name!r} is registered twice")
    MODEL_KINDS[kind.name] = kind
    return kind


def kind_of(method: str, with_context: bool) -> str:
    """The kind a training makes: the kind its method makes, else the SFT kind of its rows."""
    for k in MODEL_KINDS.values():
        if k.method is not None and k.method == method:
            return k.name
    for k in MODEL_KINDS.values():
        if k.method is None and k.with_context == with_context:
            return k.name
    raise ValueError(f"no model kind for method {method!r} (with_context={with_context})")


def run_kinds() -> list[ModelKind]:
    """The kinds ``synthloop run`` trains, in order (tuned before combined: combined may
    continue tuned)."""
    return [k for k in MODEL_KINDS.values() if k.run_trains]


for _k in (
    ModelKind("tuned", "closed-book SFT on the generated rows", False, run_trains=True),
    ModelKind("combined", "SFT on RAFT rows (retrieved chunks with distractors)", True,
              run_trains=True),
    ModelKind("dpo", "the SFT adapter preference-tuned (DPO)", False, method="dpo"),
    ModelKind("pretrain", "continued pretraining on the chunks and their rewrites (merged)",
              False, method="pretrain", adapter=False),
):
    register_model_kind(_k)
