"""The workspace ledger: one SQLite file (WAL mode) that the CLI, reports and dashboard read."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loop.errors import WorkspaceError
from loop.migrations import MIGRATIONS


class Ledger:
    """A thin wrapper over ``sqlite3`` that applies migrations on open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            # 30 s busy timeout: readers (dashboard, report) may overlap a writer's commit.
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.row_factory = sqlite3.Row
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except sqlite3.OperationalError as e:
            if _write_failure(e):  # a full disk or a read-only folder, not damage
                raise self.write_error(e) from e
            raise WorkspaceError(f"ledger {self.path} is unreadable: {e}") from e
        except sqlite3.DatabaseError as e:
            raise WorkspaceError(f"ledger {self.path} is unreadable: {e}") from e

    def write_error(self, e: sqlite3.Error) -> WorkspaceError:
        # SQLite reports a write past RLIMIT_FSIZE as "disk I/O error", a full disk as
        # "database or disk is full": either way the cause to check is the same.
        return WorkspaceError(f"cannot write the ledger {self.path}: {e}",
                              hint="is the disk full or the folder read-only?")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as e:
            # After a failed COMMIT (a full disk) the transaction may still be open: end it,
            # or every later statement fails with "cannot start a transaction".
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.OperationalError) and _write_failure(e):
                raise self.write_error(e) from e
            raise

    def applied_migrations(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM _migrations ORDER BY rowid").fetchall()
        return [r["name"] for r in rows]

    def migrate(self) -> list[str]:
        """Apply every migration not yet recorded; returns the names applied now."""
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = set(self.applied_migrations())
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            with self.transaction() as c:
                # another process (a second rank, a second verb) may have applied it while
                # this one waited for the write lock: look again inside the transaction
                if c.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                    continue
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
            applied.append(name)
        return applied

    # -- the "current" artefact of each kind ------------------------------------------------

    def current(self, kind: str) -> str | None:
        """The id of the current artefact of ``kind`` (see :data:`CURRENT`), or None."""
        return self.get_meta(_current_key(kind))

    def set_current(self, kind: str, artefact_id: str) -> None:
        """Make ``artefact_id`` the current artefact of ``kind``."""
        self.set_meta(_current_key(kind), artefact_id)

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- writes by column name ---------------------------------------------------------------

    def insert(self, table: str, *, conflict: str = "", **columns: Any) -> None:
        """``INSERT [OR REPLACE|OR IGNORE] INTO table (col, ...) VALUES (...)`` by name;
        dict and list values are stored as JSON."""
        self.insert_many(table, [columns], conflict=conflict)

    def insert_many(self, table: str, rows: list[dict[str, Any]], *, conflict: str = "") -> None:
        if not rows:
            return
        if table not in _TABLES or conflict not in ("", "replace", "ignore"):
            raise ValueError(f"cannot insert into {table!r} (conflict={conflict!r})")
        names = list(rows[0])
        verb = f"INSERT OR {conflict.upper()}" if conflict else "INSERT"
        sql = (f"{verb} INTO {table} ({', '.join(names)}) "
               f"VALUES ({', '.join('?' for _ in names)})")
        self.conn.executemany(sql, [[_cell(r[n]) for n in names] for r in rows])

    # -- runs ---------------------------------------------------------------------------------

    def start_run(self, stage: str, argv: list[str] | None, config: dict[str, Any]) -> int:
        cur = self.conn.execute(
            "INSERT INTO runs (stage, status, started_at, argv, config) VALUES (?, 'running', ?, ?, ?)",
            (stage, time.time(), json.dumps(argv or []), json.dumps(config)),
        )
        return int(cur.lastrowid)

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        summary: dict[str, Any] | None = None,
        artefact_id: str | None = None,
        error: str | None = None,
    ) -> None:
        self.conn.execute(
            "UPDATE runs SET status = ?, finished_at = ?, summary = ?, artefact_id = ?, error = ? "
            "WHERE id = ?",
            (status, time.time(), json.dumps(summary or {}), artefact_id, error, run_id),
        )

    # -- read views: plain dicts, JSON columns decoded ----------------------------------------

    def corpus(self, corpus_id: str | None) -> dict[str, Any] | None:
        return self._by_id("corpora", corpus_id)

    def dataset(self, dataset_id: str | None) -> dict[str, Any] | None:
        return self._by_id("datasets", dataset_id)

    def index(self, index_id: str | None) -> dict[str, Any] | None:
        return self._by_id("indexes", index_id)

    def model(self, model_id: str | None) -> dict[str, Any] | None:
        return self._by_id("models", model_id)

    def evaluation(self, eval_id: str | None) -> dict[str, Any] | None:
        """What an evaluation scored (its eval set, origin, question count, verdict)."""
        return self._by_id("evaluations", eval_id)

    def evaluations(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """Evaluations, newest first; with ``model_id``, only those that scored that model."""
        if model_id is None:
            return self._all("SELECT * FROM evaluations ORDER BY created_at DESC")
        return self._all("SELECT DISTINCT e.* FROM evaluations e, json_each(e.models) j "
                         "WHERE j.value = ? ORDER BY e.created_at DESC", model_id)

    def run(self, run_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM runs WHERE id = ?", run_id)

    def models(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Models, newest first; only those of ``kind`` when given."""
        where, args = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        return self._all(f"SELECT * FROM models {where} ORDER BY created_at DESC", *args)

    def sweeps(self, best_model_id: str | None = None) -> list[dict[str, Any]]:
        """Training sweeps, newest first; with ``best_model_id``, those that model won."""
        where, args = ("WHERE best_model_id = ?", (best_model_id,)) if best_model_id else ("", ())
        return self._all(f"SELECT * FROM sweeps {where} ORDER BY created_at DESC", *args)

    def sweep_settings(self, sweep_id: str) -> list[dict[str, Any]]:
        """Every setting of a sweep, in grid order: settings, model_id, val_loss, curve."""
        return self._all("SELECT * FROM sweep_settings WHERE sweep_id = ? ORDER BY seq", sweep_id)

    def runs(self, limit: int = 500) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first."""
        return self._all("SELECT * FROM runs ORDER BY id DESC LIMIT ?", limit)

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs whose row still says ``running``, newest first (a process killed mid-run
        leaves one behind: ``workspace.lock_holder`` tells a live run from such a row)."""
        return self._all("SELECT * FROM runs WHERE status = 'running' ORDER BY id DESC")

    def run_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def documents(self) -> list[dict[str, Any]]:
        """The corpus's documents (source, title, doc_id, n_chunks) from files read well."""
        return self._all(
            "SELECT d.source, d.title, d.doc_id, d.n_chunks FROM file_documents d "
            "JOIN files f ON f.path = d.path WHERE f.status = 'ok' ORDER BY d.source, d.seq")

    def files(self) -> list[dict[str, Any]]:
        """Every file ingest has seen (read or skipped)."""
        return self._all("SELECT * FROM files")

    def file_documents(self) -> list[dict[str, Any]]:
        """The documents inside every file, by path and position."""
        return self._all("SELECT * FROM file_documents ORDER BY path, seq")

    def skipped_files(self) -> list[dict[str, Any]]:
        return self._all("SELECT source, reason FROM files WHERE status != 'ok' ORDER BY source")

    def sample_reviews(self, dataset_id: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM sample_reviews WHERE dataset_id = ?", dataset_id)

    def copy_rejects(self, from_dataset: str, to_dataset: str) -> int:
        """Replace ``to_dataset``'s rejects with a copy of ``from_dataset``'s; the next free
        ``seq`` of ``to_dataset``."""
        self.conn.execute("DELETE FROM rejects WHERE dataset_id = ?", (to_dataset,))
        self.conn.execute("INSERT INTO rejects SELECT ?, seq, task, chunk_id, reason, detail, raw "
                          "FROM rejects WHERE dataset_id = ?", (to_dataset, from_dataset))
        return int(self.conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM rejects "
                                     "WHERE dataset_id = ?", (to_dataset,)).fetchone()[0])

    def reject_count(self, dataset_id: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM rejects WHERE dataset_id = ?",
                                     (dataset_id,)).fetchone()[0])

    def _by_id(self, table: str, artefact_id: str | None) -> dict[str, Any] | None:
        if not artefact_id:
            return None
        return self._one(f"SELECT * FROM {table} WHERE id = ?", artefact_id)

    def _one(self, sql: str, *args: Any) -> dict[str, Any] | None:
        r = self.conn.execute(sql, args).fetchone()
        return _decoded(r) if r else None

    def _all(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [_decoded(r) for r in self.conn.execute(sql, args)]


# kind -> meta key of the current artefact of that kind ("model.<kind>": the latest of a kind)
CURRENT = {"corpus": "corpus", "dataset": "dataset", "eval_set": "eval_set", "index": "index",
           "model": "model", "eval": "eval"}
_TABLES = frozenset({"meta", "runs", "corpora", "files", "file_documents", "indexes",
                     "teacher_calls", "datasets", "rejects", "models", "sample_reviews",
                     "evaluations", "sweeps", "sweep_settings"})
_JSON_COLUMNS = frozenset({"config", "summary", "argv", "models", "datasets", "grid",
                           "settings", "curve"})


def _current_key(kind: str) -> str:
    base = kind.split(".", 1)[0]
    if base not in CURRENT:
        raise ValueError(f"no current artefact of kind {kind!r} (known: {', '.join(CURRENT)})")
    return CURRENT[base] + kind[len(base):]


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, dict | list) else value


def _decoded(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for k in _JSON_COLUMNS & out.keys():
        if isinstance(out[k], str):
            with contextlib.suppress(ValueError):
                out[k] = json.loads(out[k])
    return out


def _write_failure(e: sqlite3.Error) -> bool:
    """SQLite's words for a write the disk refused (not a bug such as 'no such table')."""
    text = str(e).lower()
    return any(w in text for w in ("disk i/o error", "disk is full", "readonly", "unable to open"))


def _statements(sql: str) -> list[str]:
    # sqlite3.executescript would COMMIT our transaction; split on ';' instead (no
    # migration contains a ';' inside a string literal or trigger body).
    return [s.strip() for s in sql.split(";") if s.strip()]


class TeacherCallCache:
    """The teacher-call cache in the ledger (generators' ``get``/``put`` protocol); each
    completed call is committed at once, so a killed run loses no finished call."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.ledger.conn.execute("SELECT value FROM teacher_calls WHERE key = ?",
                                       (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.ledger.insert("teacher_calls", conflict="replace", key=key, value=json.dumps(value),
                           created_at=time.time())
