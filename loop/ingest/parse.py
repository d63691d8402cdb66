"""Read and chunk files, in worker processes when there is enough to share out.

Parsing and chunking are pure Python and CPU-bound; a process pool spreads them over the
cores (measured in bench/ingest.py). The parent keeps what must be serial: dedup by
document id, chunk ids, the Arrow writer and the ledger.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from loop.ingest.chunking import Chunker
from loop.ingest.config import IngestConfig
from loop.ingest.discover import Found
from loop.ingest.readers import Skip, reader_for

# Below this many bytes to read, starting worker processes costs more than it saves.
POOL_MIN_BYTES = 16_000_000
# JSONL is streamed record by record in the parent: one file may hold the whole corpus.
_STREAMED = (".jsonl",)

Item = tuple  # ("note", msg) | ("doc", text, title, source, spans) | ("skip", reason)


def parse_items(path: str, source: str, cfg: IngestConfig) -> Iterator[Item]:
    """One file's notes and documents with their chunk spans; a final ("skip", reason)
    item replaces everything when the file cannot be used."""
    try:
        if os.path.getsize(path) > cfg.max_file_mb * 1e6 and not path.endswith(_STREAMED):
            raise Skip(f"larger than max_file_mb ({cfg.max_file_mb:g} MB)")
        chunker = Chunker(cfg)
        reader = reader_for(Path(path))
        for raw in reader(Path(path), source):
            for note in raw.notes:
                yield ("note", note)
            if raw.text.strip():
                spans = [(s.start, s.end) for s in chunker.spans(raw.text)]
                yield ("doc", raw.text, raw.title, raw.source, spans)
    except Skip as e:
        yield ("skip", str(e))
    except (RecursionError, MemoryError, UnicodeError, ValueError, OSError) as e:
        yield ("skip", f"could not parse: {type(e).__name__}: {e}")


def _parse_all(path: str, source: str, cfg: IngestConfig) -> list[Item]:
    return list(parse_items(path, source, cfg))


def parse_files(files: list[Found], cfg: IngestConfig) -> Iterator[tuple[Found, Iterable[Item]]]:
    """Yield ``(file, items)`` in the order of ``files``."""
    workers = cfg.workers or min(os.cpu_count() or 1, 8)
    pooled = [f for f in files if not f.path.endswith(_STREAMED)]
    if workers < 2 or sum(f.size for f in pooled) < POOL_MIN_BYTES:
        for f in files:
            yield f, parse_items(f.path, f.source, cfg)
        return
    # spawn, not fork: the parent may hold threads (pyarrow, torch) that fork would copy
    # in a locked state.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        window: deque[tuple[Found, Future | None]] = deque()
        ahead = 4 * workers  # bounded read-ahead: results wait in memory only this deep
        it = iter(files)
        for f in it:
            window.append((f, _submit(pool, f, cfg)))
            if len(window) >= ahead:
                break
        while window:
            f, fut = window.popleft()
            yield f, (fut.result() if fut is not None else parse_items(f.path, f.source, cfg))
            nxt = next(it, None)
            if nxt is not None:
                window.append((nxt, _submit(pool, nxt, cfg)))


def _submit(pool: ProcessPoolExecutor, f: Found, cfg: IngestConfig) -> Future | None:
    if f.path.endswith(_STREAMED):
        return None  # parsed lazily in the parent when its turn comes
    return pool.submit(_parse_all, f.path, f.source, cfg)
