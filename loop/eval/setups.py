"""The setup registry: what each scored setup is made of.

A setup is the student plus, optionally, the adapter of one model kind and retrieved chunks
in the prompt. The eval stage, the report's verdict, ``ask``, the pipeline and the
dashboard all read this table, so a new setup is one :func:`register_setup` call (a new
adapter kind is a ``loop.kinds`` entry, and a train method that makes it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setup:
    name: str
    adapter: str | None  # the model kind whose adapter it loads ("tuned", "combined"), or None
    retrieval: bool  # retrieved chunks in the prompt
    cost: float  # cheapest first: the scoreboard's order, and the verdict's (a setup is
    #            recommended only if it beats every cheaper one measurably)
    label: str  # how the verdict names it
    optional: bool = False  # scored only when its model exists (no warning when it does not)
    # a copy of another setup's model (the exported file, ``--as-exported``): scored only when
    # asked for, compared with the setup it copies, never a candidate of the verdict
    derived: str | None = None


SETUPS: dict[str, Setup] = {}


def register_setup(setup: Setup) -> Setup:
    """Add a setup. Its ``adapter`` must be a registered model kind (``loop.kinds``): a
    setup cannot load a model that nothing trains."""
    from loop.kinds import MODEL_KINDS

    if setup.adapter is not None and setup.adapter not in MODEL_KINDS:
        raise ValueError(f"setup {setup.name!r}: no model kind {setup.adapter!r} "
                         f"(known: {', '.join(MODEL_KINDS)}; register it in loop.kinds first)")
    SETUPS[setup.name] = setup
    return setup


def get_setup(name: str) -> Setup:
    from loop.errors import InputError

    if name not in SETUPS:
        raise InputError(f"unknown setup {name!r} (known: {', '.join(setup_names())})")
    return SETUPS[name]


def setup_names() -> list[str]:
    """Every registered setup but the derived ones (``exported``), cheapest first."""
    return [s.name for s in sorted(SETUPS.values(), key=lambda s: s.cost) if not s.derived]


def rag_setups() -> set[str]:
    return {s.name for s in SETUPS.values() if s.retrieval}


def adapter_kinds() -> list[str]:
    """The model kinds some setup loads an adapter of, in cost order."""
    out: list[str] = []
    for name in setup_names():
        kind = SETUPS[name].adapter
        if kind and kind not in out:
            out.append(kind)
    return out


def ordered(names: list[str] | set[str]) -> list[str]:
    """``names`` in cost order; names no registry knows (an old evaluation's) go last."""
    known = [n for n in setup_names() if n in names]
    return known + sorted(set(names) - set(known))


for _s in (
    Setup("base", None, False, 0, "the base model"),
    Setup("rag", None, True, 1, "RAG"),
    Setup("tuned", "tuned", False, 2, "fine-tuning"),
    Setup("tuned+rag", "tuned", True, 3, "fine-tuning plus retrieval"),
    Setup("combined", "combined", True, 4, "combining (RAFT + RAG)"),
    # `train --method dpo --from tuned`: the SFT adapter preference-tuned, closed book
    Setup("dpo", "dpo", False, 2.5, "preference tuning (SFT + DPO)", optional=True),
    # `eval --as-exported FILE`: the file `export` wrote (a q8_0 GGUF, a merged folder), loaded
    # as a student of its own and answered closed book, beside the tuned model it was made from
    Setup("exported", None, False, 2.1, "the exported model", optional=True, derived="tuned"),
):
    register_setup(_s)
