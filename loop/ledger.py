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
                for statement in _statements(sql):
                    c.execute(statement)
                c.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))
            applied.append(name)
        return applied

    # -- small helpers used across stages ---------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

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


def _write_failure(e: sqlite3.Error) -> bool:
    """SQLite's words for a write the disk refused (not a bug such as 'no such table')."""
    text = str(e).lower()
    return any(w in text for w in ("disk i/o error", "disk is full", "readonly", "unable to open"))


def _statements(sql: str) -> list[str]:
    # sqlite3.executescript would COMMIT our transaction; split on ';' instead (no
    # migration contains a ';' inside a string literal or trigger body).
    return [s.strip() for s in sql.split(";") if s.strip()]
