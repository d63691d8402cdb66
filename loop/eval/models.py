"""The models behind the setups: one student in memory, its adapters switched in and out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from loop.eval.setups import SETUPS, adapter_kinds
from loop.workspace import Workspace


def models_of(ws: Workspace, ids: Mapping[str, str]) -> dict[str, Path]:
    """The folders of the models ``ids`` names (kind -> model id) for every adapter kind a
    setup uses (``tuned``, ``combined``); kinds not named (or whose folder is gone) are
    left out."""
    found = {}
    for kind in adapter_kinds():
        row = ws.ledger.model(ids[kind]) if ids.get(kind) else None
        path = ws.artefact("models", row["id"]) if row else None
        if path is not None and (path / "synthloop.json").exists():
            found[kind] = path
    return found


class SetupModels:
    """``use(setup)`` yields ``(model, tokenizer)`` for a setup: the base student with every
    adapter disabled, or with the tuned or combined adapter active (PEFT multi-adapter, so
    the base weights are loaded once)."""

    def __init__(self, ws: Workspace, student_uri: str, models: dict[str, Path],
                 device: str = "auto", dtype: str = "auto", *, trust_remote_code: bool = False,
                 allow_pickle: bool = False) -> None:
        from loop.models.students import (
            LoadOptions,
            load_pretrained,
            load_student,
            resolve_device,
            resolve_dtype,
        )

        dev = resolve_device(device)
        self.opts = LoadOptions(ws=ws, device=dev, dtype=resolve_dtype(dtype, dev),
                                trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        self.student = load_student(student_uri, self.opts)
        if not self.opts.quantize_4bit:  # the loader leaves weights on the CPU; answer on dev
            self.student.model.to(dev)
        self.tok = self.student.tokenizer
        self.notes = list(self.student.notes)
        self.peft: Any = None
        self.full: dict[str, Any] = {}
        from loop.models.merge import check_weights

        for kind, path in sorted(models.items()):
            check_weights(path)  # a damaged adapter: one line naming it, before any load
            if (path / "adapter" / "adapter_config.json").exists():
                self._add_adapter(kind, path / "adapter")
            elif (path / "model").exists():  # --method full: its own weights
                self.full[kind] = load_pretrained(str(path / "model"), self.opts).to(dev).eval()
        self.student.model.eval()

    def _add_adapter(self, kind: str, path: Path) -> None:
        from peft import PeftModel

        if self.peft is None:
            self.peft = PeftModel.from_pretrained(self.student.model, str(path), adapter_name=kind)
            self.peft.eval()
        else:
            self.peft.load_adapter(str(path), adapter_name=kind)

    @contextlib.contextmanager
    def use(self, setup: str) -> Iterator[tuple[Any, Any]]:
        kind = SETUPS[setup].adapter
        if kind in self.full:
            yield self.full[kind], self.tok
        elif kind is not None:
            self.peft.set_adapter(kind)
            yield self.peft, self.tok
        elif self.peft is not None:
            with self.peft.disable_adapter():
                yield self.peft, self.tok
        else:
            yield self.student.model, self.tok
