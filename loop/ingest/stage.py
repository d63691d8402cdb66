"""The ingest stage: files in, a chunk Dataset (``corpus/<id>/``) and ledger rows out.

Incremental: a file whose size, mtime and chunking config are unchanged is not read; a
changed file replaces only its own documents' chunks; identical documents (same text) are
stored once. Streaming: chunks go to an Arrow stream on disk as they are made, so memory
stays flat however large the folder is.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loop.errors import InputError
from loop.events import EventSink, Progress, Started, Warned, null_sink
from loop.handoff import Inputs, given
from loop.ingest.chunking import chunk_id_for, doc_id_for
from loop.ingest.config import IngestConfig
from loop.ingest.discover import Found, discover
from loop.ingest.parse import parse_files
from loop.ingest.readers import SUPPORTED
from loop.stage import stage_run
from loop.workspace import Workspace, save_dataset, write_json

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
    ]
)
_FLUSH_ROWS = 2048
# Bump when a reader changes what text it makes of a file (2: rst through docutils,
# Markdown front matter and links; chunks measured by the embedder's tokenizer).
READERS_VERSION = 2


@dataclass
class DocRef:
    seq: int
    doc_id: str
    source: str
    title: str
    n_chunks: int


@dataclass
class FileState:
    path: str
    source: str
    size: int
    mtime_ns: int
    status: str  # ok | skipped
    reason: str | None = None
    docs: list[DocRef] = field(default_factory=list)


@dataclass
class IngestResult:
    corpus_id: str
    corpus_path: Path
    documents: int
    chunks: int
    files: int
    read: int
    unchanged: int
    removed: int
    duplicates: int
    skipped: list[dict[str, str]]
    warnings: list[dict[str, str]]
    cached: bool

    def summary(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "corpus_path"}
        d["corpus_path"] = str(self.corpus_path)
        return d


class _ChunkWriter:
    """Buffers chunk rows and appends them to an Arrow IPC stream file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.closed = False
        self.writer = pa.ipc.new_stream(str(path), CHUNK_SCHEMA)
        self.rows: dict[str, list] = {name: [] for name in CHUNK_SCHEMA.names}
        self.count = 0

    def add(self, **row: Any) -> None:
        for k, v in row.items():
            self.rows[k].append(v)
        self.count += 1
        if len(self.rows["chunk_id"]) >= _FLUSH_ROWS:
            self.flush()

    def add_batch(self, batch: pa.RecordBatch) -> None:
        self.flush()
        self.writer.write_batch(batch)
        self.count += batch.num_rows

    def flush(self) -> None:
        if self.rows["chunk_id"]:
            self.writer.write_batch(pa.record_batch(self.rows, schema=CHUNK_SCHEMA))
            self.rows = {name: [] for name in CHUNK_SCHEMA.names}

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.flush()
            self.writer.close()


def ingest(
    ws: Workspace,
    paths: Iterable[str | Path],
    cfg: IngestConfig | None = None,
    emit: EventSink = null_sink,
    *,
    only: bool = False,
    inputs: Inputs | None = None,
) -> IngestResult:
    """Ingest files and folders into the workspace's corpus; see the module docstring.

    ``inputs.corpus_id`` is the corpus this one grows from: its unchanged documents' chunks
    are copied, not re-read (unset: the workspace's latest). By default the corpus keeps
    what that one ingested from other paths; with ``only`` it becomes exactly ``paths``
    (``synthloop run`` uses this, so a re-run does not depend on what else was ingested in
    the workspace before)."""
    cfg = cfg or IngestConfig()
    paths = [str(p) for p in paths]
    check_paths(paths)
    previous = given(ws, inputs).corpus_id
    with stage_run(ws, "ingest", cfg.resolved(), argv=paths, emit=emit) as run:
        result = _Ingest(ws, cfg, emit, only, previous).run(paths)
        run.done(result.summary(), result.corpus_id)
    return result


def require_chunks(result: IngestResult, paths: list[str | Path]) -> None:
    """``ingest`` and ``run`` stop here when the corpus came out empty: one line saying
    why (nothing found, or every file skipped: the first reason), exit 1."""
    if result.chunks:
        return
    where = ", ".join(str(p) for p in paths) or "(no path given)"
    if not result.files:
        raise InputError(f"no files to ingest in {where} (empty, or only hidden files); "
                         f"supported: {', '.join(sorted(SUPPORTED))}")
    first = result.skipped[0] if result.skipped else None
    why = f" (first: {first['path']}: {first['reason']})" if first else ""
    raise InputError(f"no text to chunk in {where}: {result.files} file(s) found, "
                     f"none readable{why}")


def check_paths(paths: list[str | Path]) -> None:
    """Every path must exist: a typo is one line now, not an empty corpus after the work.
    Needs no model, so ``run`` calls it before anything loads."""
    missing = [str(p) for p in paths if not os.path.lexists(p)]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    if not paths:
        raise InputError("no documents given: name at least one file or folder")


class _Ingest:
    def __init__(self, ws: Workspace, cfg: IngestConfig, emit: EventSink, only: bool,
                 previous: str | None) -> None:
        self.ws, self.cfg, self.emit, self.only, self.previous = ws, cfg, emit, only, previous
        # the readers' version too: a reader that reads a format better makes new chunks
        self.digest = hashlib.sha256(f"{cfg.digest()}:{READERS_VERSION}".encode()).hexdigest()[:16]
        self.skipped: list[dict[str, str]] = []
        self.warnings: list[dict[str, str]] = []

    def run(self, paths: list[str]) -> IngestResult:
        known = self._known_files()
        prev_id = self.previous
        prev_path = self.ws.artefact("corpus", prev_id) if prev_id else None
        usable = prev_path is not None and prev_path.exists() and self._same_chunking(prev_path)
        chunk_counts = self._chunk_counts(prev_path) if usable else {}

        found: list[Found] = []
        for item in discover(paths, follow_symlinks=self.cfg.follow_symlinks):
            if isinstance(item, Found):
                found.append(item)
            else:
                self._skip(item.path, item.reason)
        if not self.only:
            found += self._stale_elsewhere(paths, known, found, chunk_counts)

        pending = self.ws.dir("tmp") / f"chunks.{os.getpid()}.{time.time_ns()}.arrow"
        writer = _ChunkWriter(pending)
        states: dict[str, FileState] = {}
        made: set[str] = set()  # doc ids chunked in this run
        total_bytes = sum(f.size for f in found)
        self.emit(Started("ingest", total=total_bytes, unit="bytes", message=f"{len(found)} files"))
        done_bytes = 0
        to_read = []
        try:
            for f in found:
                old = known.get(f.path)
                if old and self._unchanged(old, f, chunk_counts):
                    states[f.path] = old.state
                    if old.state.status == "skipped":
                        self._skip(f.path, old.state.reason or "skipped")
                    done_bytes += f.size
                else:
                    to_read.append(f)
            unchanged = len(states)
            for f, items in parse_files(to_read, self.cfg):
                states[f.path] = self._consume(f, items, writer, chunk_counts, made)
                done_bytes += f.size
                self.emit(Progress("ingest", done=done_bytes, total=total_bytes,
                                   info={"files": len(states), "chunks": writer.count}))
            read = len(to_read)
            removed = self._removed(paths, known, states)
            live = self._live_documents(states, removed)
            corpus_id = self._corpus_id(live)
            final = self.ws.artefact("corpus", corpus_id)
            cached = final.exists()
            if not cached:
                self._copy_kept(prev_path, {d for d in live if d not in made}, live, writer)
            writer.close()
            n_chunks = self._count(final) if cached else self._build(pending, final, live)
        finally:
            writer.close()
            pending.unlink(missing_ok=True)
        self._record(states, removed, corpus_id, final, len(live), n_chunks)
        ok_refs = [d for s in states.values() if s.status == "ok" for d in s.docs]
        return IngestResult(
            corpus_id=corpus_id, corpus_path=final, documents=len(live), chunks=n_chunks,
            files=len(found), read=read, unchanged=unchanged, removed=len(removed),
            duplicates=len(ok_refs) - len({d.doc_id for d in ok_refs}),
            skipped=self.skipped, warnings=self.warnings, cached=cached,
        )

    def _unchanged(self, old: _Known, f: Found, chunk_counts: dict[str, int]) -> bool:
        if (old.size, old.mtime_ns, old.chunking) != (f.size, f.mtime_ns, self.digest):
            return False
        # Its chunks must still be in the previous corpus (that folder may have been deleted).
        return all(d.doc_id in chunk_counts for d in old.state.docs)

    def _stale_elsewhere(self, paths: list[str], known: dict[str, _Known], found: list[Found],
                         chunk_counts: dict[str, int]) -> list[Found]:
        """Files from earlier runs, outside ``paths``, whose chunks must be made again
        (the chunking config changed, or the previous corpus folder is gone)."""
        seen = {f.path for f in found} | set(self._under(paths, known))
        stale = []
        for path, old in known.items():
            if path in seen or old.state.status != "ok":
                continue
            if old.chunking == self.digest and all(d.doc_id in chunk_counts for d in old.state.docs):
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone: _removed() does not drop it (outside paths), so it stays known
            stale.append(Found(path, old.state.source, st.st_size, st.st_mtime_ns))
        return stale

    # -- reading ---------------------------------------------------------------------------

    def _consume(self, f: Found, items: Iterable[tuple], writer: _ChunkWriter,
                 chunk_counts: dict[str, int], made: set[str]) -> FileState:
        """Write the chunks of one parsed file's new documents; return the file's state."""
        state = FileState(f.path, f.source, f.size, f.mtime_ns, "ok")
        seq = 0
        for item in items:
            if item[0] == "note":
                self._warn(f.path, item[1])
                continue
            if item[0] == "skip":
                if state.docs:  # a streamed file failed part-way: its first documents are
                    # written already, so the report says so rather than "skipped"
                    self._warn(f.path, f"stopped reading after {len(state.docs)} document(s): {item[1]}")
                    return state
                return self._skipped_state(state, item[1])
            _, text, title, source, spans = item
            doc_id = doc_id_for(text)
            if doc_id not in chunk_counts:  # identical documents are stored once
                made.add(doc_id)
                chunk_counts[doc_id] = len(spans)
                for start, end in spans:
                    writer.add(chunk_id=chunk_id_for(doc_id, start, end), doc_id=doc_id,
                               source=source, title=title, text=text[start:end],
                               start=start, end=end)
            state.docs.append(DocRef(seq, doc_id, source, title, chunk_counts[doc_id]))
            seq += 1
        if not state.docs:
            return self._skipped_state(state, "no text found")
        return state

    def _skipped_state(self, state: FileState, reason: str) -> FileState:
        self._skip(state.path, reason)
        state.status, state.reason = "skipped", reason
        return state

    def _skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})
        self.emit(Warned("ingest", message=f"skipped: {reason}", path=path))

    def _warn(self, path: str, message: str) -> None:
        self.warnings.append({"path": path, "message": message})
        self.emit(Warned("ingest", message=message, path=path))

    # -- the ledger's view -----------------------------------------------------------------

    def _known_files(self) -> dict[str, _Known]:
        db = self.ws.ledger
        docs: dict[str, list[DocRef]] = {}
        for r in db.file_documents():
            docs.setdefault(r["path"], []).append(
                DocRef(r["seq"], r["doc_id"], r["source"], r["title"], r["n_chunks"])
            )
        known = {}
        for r in db.files():
            state = FileState(r["path"], r["source"], r["size"], r["mtime_ns"], r["status"],
                              r["reason"], docs.get(r["path"], []))
            known[r["path"]] = _Known(r["size"], r["mtime_ns"], r["chunking"], state)
        return known

    def _removed(self, paths: list[str], known: dict[str, _Known],
                 seen: dict[str, FileState]) -> list[str]:
        """Known files under a PATH argument that are gone now (deleted or renamed); with
        ``only``, every known file this run did not see."""
        if self.only:
            return [p for p in known if p not in seen]
        return [p for p in self._under(paths, known) if p not in seen]

    @staticmethod
    def _under(paths: list[str], known: dict[str, _Known]) -> list[str]:
        roots = [os.path.abspath(p).rstrip(os.sep) for p in paths]
        return [k for k in known if any(k == r or k.startswith(r + os.sep) for r in roots)]

    def _live_documents(self, states: dict[str, FileState], removed: list[str]) -> dict[str, DocRef]:
        """Every document of the corpus after this run: doc_id -> its canonical reference."""
        touched = set(states) | set(removed)
        refs: list[tuple[str, DocRef]] = [
            (path, d) for path, s in states.items() if s.status == "ok" for d in s.docs
        ]
        for r in self.ws.ledger.file_documents():
            if r["path"] not in touched:
                refs.append((r["path"], DocRef(r["seq"], r["doc_id"], r["source"], r["title"], r["n_chunks"])))
        live: dict[str, DocRef] = {}
        for _, ref in sorted(refs, key=lambda pr: (pr[1].source, pr[0], pr[1].seq)):
            live.setdefault(ref.doc_id, ref)  # identical documents: the first source names it
        return live

    def _corpus_id(self, live: dict[str, DocRef]) -> str:
        h = hashlib.sha256(self.digest.encode())
        for doc_id, ref in sorted(live.items()):
            h.update(json.dumps([doc_id, ref.source, ref.title]).encode())
        return h.hexdigest()[:16]

    def _same_chunking(self, path: Path) -> bool:
        try:
            meta = json.loads((path / "synthloop.json").read_text())
        except (OSError, ValueError):
            return False
        return meta.get("config_digest") == self.digest

    @staticmethod
    def _chunk_counts(path: Path) -> dict[str, int]:
        counts = _load_table(path).column("doc_id").value_counts()
        return {c["values"].as_py(): c["counts"].as_py() for c in counts}

    # -- writing ---------------------------------------------------------------------------

    def _copy_kept(self, prev_path: Path | None, keep: set[str], live: dict[str, DocRef],
                   writer: _ChunkWriter) -> None:
        """Append the previous corpus's chunks of unchanged documents, with current names."""
        if not keep:
            return
        assert prev_path is not None and prev_path.exists(), "kept documents need the previous corpus"
        table = _load_table(prev_path)
        mask = pc.is_in(table.column("doc_id"), value_set=pa.array(sorted(keep)))
        for batch in table.filter(mask).to_batches(max_chunksize=_FLUSH_ROWS):
            ids = batch.column("doc_id").to_pylist()
            cols = {name: batch.column(name) for name in CHUNK_SCHEMA.names}
            cols["source"] = pa.array([live[d].source for d in ids], pa.string())
            cols["title"] = pa.array([live[d].title for d in ids], pa.string())
            writer.add_batch(pa.record_batch(cols, schema=CHUNK_SCHEMA))

    def _build(self, pending: Path, final: Path, live: dict[str, DocRef]) -> int:
        from datasets import Dataset

        ds = Dataset.from_file(str(pending))
        if len(ds):  # canonical order, so an incremental build equals a fresh one row for row
            keys = ds.data.table.select(["source", "start"])
            ds = ds.select(pc.sort_indices(keys, sort_keys=[("source", "ascending"),
                                                            ("start", "ascending")]))
        with self.ws.atomic_dir(final) as tmp:
            save_dataset(ds, tmp / "data")
            write_json(tmp / "synthloop.json", {
                "kind": "corpus",
                "config": self.cfg.resolved(),
                "config_digest": self.digest,
                "documents": len(live),
                "chunks": len(ds),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            })
        return len(ds)

    @staticmethod
    def _count(final: Path) -> int:
        return int(json.loads((final / "synthloop.json").read_text())["chunks"])

    def _record(self, states: dict[str, FileState], removed: list[str], corpus_id: str,
                final: Path, n_docs: int, n_chunks: int) -> None:
        now, db = time.time(), self.ws.ledger
        with db.transaction() as c:
            for path in removed:
                c.execute("DELETE FROM files WHERE path = ?", (path,))
            for s in states.values():
                db.insert("files", conflict="replace", path=s.path, source=s.source, size=s.size,
                          mtime_ns=s.mtime_ns, chunking=self.digest, status=s.status,
                          reason=s.reason, updated_at=now)
                c.execute("DELETE FROM file_documents WHERE path = ?", (s.path,))
                db.insert_many("file_documents", [
                    {"path": s.path, "seq": d.seq, "doc_id": d.doc_id, "source": d.source,
                     "title": d.title, "n_chunks": d.n_chunks} for d in s.docs])
            db.insert("corpora", conflict="ignore", id=corpus_id, path=str(final), created_at=now,
                      n_documents=n_docs, n_chunks=n_chunks, config=self.cfg.resolved())
            db.set_current("corpus", corpus_id)


@dataclass
class _Known:
    size: int
    mtime_ns: int
    chunking: str
    state: FileState


def _load_table(path: Path) -> pa.Table:
    from datasets import load_from_disk

    return load_from_disk(str(path / "data")).data.table
