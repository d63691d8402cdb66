"""Ingestion: files and folders in, a chunked corpus (a datasets.Dataset) out."""

from loop.ingest.stage import CHUNK_SCHEMA, IngestResult, ingest

__all__ = ["CHUNK_SCHEMA", "IngestResult", "ingest"]
