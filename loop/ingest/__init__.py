"""``synthloop ingest``: files and folders in, a chunked corpus (a datasets.Dataset) out.
``IngestConfig`` is its ``[ingest]`` section, ``ingest`` runs it, ``IngestResult`` is what it
returns.

The config is imported at once (it is light); the stage, which loads pyarrow and the
readers, on first use of any other name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loop.ingest.config import IngestConfig

if TYPE_CHECKING:
    from loop.ingest.stage import CHUNK_SCHEMA, IngestResult, ingest

    run = ingest

__all__ = ["CHUNK_SCHEMA", "IngestConfig", "IngestResult", "ingest", "run"]


def __getattr__(name: str) -> Any:
    if name in ("CHUNK_SCHEMA", "IngestResult", "ingest", "run"):
        from loop.ingest import stage

        return getattr(stage, "ingest" if name == "run" else name)
    raise AttributeError(f"module 'loop.ingest' has no attribute {name!r}")
