"""``synthloop ingest``: files and folders in, a chunked corpus (a datasets.Dataset) out.
``IngestConfig`` is its ``[ingest]`` section, ``ingest`` runs it, ``IngestResult`` is what it
returns."""

from loop.config import IngestConfig
from loop.ingest.stage import CHUNK_SCHEMA, IngestResult, ingest

run = ingest

__all__ = ["CHUNK_SCHEMA", "IngestConfig", "IngestResult", "ingest", "run"]
