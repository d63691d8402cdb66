"""The shape every stage shares: the write lock, a ledger run row, and its end.

A stage's public ``run`` wraps its work in :func:`stage_run`::

    with stage_run(ws, "index", cfg.resolved(), emit=emit) as run:
        result = _build(ws, cfg, emit)
        run.done(result.summary(), result.index_id)

The run row is ``running`` while the work goes on, ``ok`` (or the status given to
:meth:`StageRun.done`) when it ends, ``failed`` with the error's words on any exception
(``stopped`` for the ones ``stopped_by`` names: a Stop on request keeps its checkpoint), and
the stage's :class:`~loop.events.Finished` event is sent once the lock is released.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loop.events import EventSink, Finished, null_sink

if TYPE_CHECKING:
    from loop.workspace import Workspace


@dataclass
class StageRun:
    """The ledger row of one stage run; the stage calls :meth:`done` with what it made."""

    stage: str
    run_id: int
    status: str = "ok"
    summary: dict[str, Any] | None = None
    artefact_id: str | None = None

    def done(self, summary: dict[str, Any], artefact_id: str | None = None, *,
             status: str = "ok") -> None:
        self.summary, self.artefact_id, self.status = summary, artefact_id, status


@contextmanager
def stage_run(ws: Workspace, stage: str, config: dict[str, Any], *, argv: list[str] | None = None,
              emit: EventSink = null_sink, lock: bool = True,
              stopped_by: tuple[type[BaseException], ...] = ()) -> Iterator[StageRun]:
    """Hold the workspace lock (unless ``lock`` is False: a caller that already holds it, or
    a non-main rank that writes nothing), record the run, and end it whatever happens."""
    db = ws.ledger
    with ws.writing(stage) if lock else _nothing():
        run = StageRun(stage, db.start_run(stage, argv, config))
        try:
            yield run
        except BaseException as e:
            status = "stopped" if stopped_by and isinstance(e, stopped_by) else "failed"
            db.finish_run(run.run_id, status=status, error=str(e) or type(e).__name__)
            raise
        db.finish_run(run.run_id, status=run.status, summary=run.summary,
                      artefact_id=run.artefact_id)
    if run.summary is not None:
        emit(Finished(stage, summary=run.summary))


@contextmanager
def _nothing() -> Iterator[None]:
    yield
