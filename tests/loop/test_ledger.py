"""The ledger: named, append-only migrations, checked column by column."""

import sqlite3

from loop.ledger import Ledger
from loop.migrations import MIGRATIONS


def _columns(conn, table):
    return [(r[1], r[2], bool(r[3]), bool(r[5])) for r in conn.execute(f"PRAGMA table_info({table})")]


def test_fresh_ledger_applies_every_migration_in_order(tmp_path):
    db = Ledger(tmp_path / "s.db")
    assert db.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_0001_initial_columns(tmp_path):
    c = Ledger(tmp_path / "s.db").conn
    assert _columns(c, "meta") == [("key", "TEXT", False, True), ("value", "TEXT", True, False)]
    assert [col[0] for col in _columns(c, "runs")] == [
        "id", "stage", "status", "started_at", "finished_at", "argv", "config", "summary",
        "artefact_id", "error",
    ]
    assert [col[0] for col in _columns(c, "corpora")] == [
        "id", "path", "created_at", "n_documents", "n_chunks", "config",
    ]
    assert _columns(c, "files") == [
        ("path", "TEXT", False, True), ("source", "TEXT", True, False),
        ("size", "INTEGER", True, False), ("mtime_ns", "INTEGER", True, False),
        ("chunking", "TEXT", True, False), ("status", "TEXT", True, False),
        ("reason", "TEXT", False, False), ("updated_at", "REAL", True, False),
    ]
    assert [col[0] for col in _columns(c, "file_documents")] == [
        "path", "seq", "doc_id", "source", "title", "n_chunks",
    ]


def test_reopening_applies_nothing_and_keeps_data(tmp_path):
    db = Ledger(tmp_path / "s.db")
    db.set_meta("k", "v")
    db.close()
    again = Ledger(tmp_path / "s.db")
    assert again.migrate() == []
    assert again.get_meta("k") == "v"


def test_only_new_migrations_are_applied(tmp_path, monkeypatch):
    Ledger(tmp_path / "s.db").close()
    import loop.ledger as ledger_mod

    extra = [*MIGRATIONS, ("9999_test", "CREATE TABLE t (x INTEGER)")]
    monkeypatch.setattr(ledger_mod, "MIGRATIONS", extra)
    db = Ledger(tmp_path / "s.db")
    assert db.applied_migrations()[-1] == "9999_test"
    assert _columns(db.conn, "t") == [("x", "INTEGER", False, False)]


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    import pytest

    import loop.ledger as ledger_mod
    from loop.errors import WorkspaceError

    bad = [*MIGRATIONS, ("9998_bad", "CREATE TABLE ok (x INTEGER); CREATE TABLE broken (")]
    monkeypatch.setattr(ledger_mod, "MIGRATIONS", bad)
    with pytest.raises(WorkspaceError):
        Ledger(tmp_path / "s.db")
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'ok'").fetchone() is None


def test_runs_are_recorded(tmp_path):
    db = Ledger(tmp_path / "s.db")
    run = db.start_run("ingest", ["docs"], {"chunk_tokens": 1})
    db.finish_run(run, status="ok", summary={"chunks": 3}, artefact_id="abc")
    row = db.conn.execute("SELECT * FROM runs WHERE id = ?", (run,)).fetchone()
    assert row["status"] == "ok" and row["artefact_id"] == "abc" and '"chunks": 3' in row["summary"]


def test_0003_generation_columns(tmp_path):
    c = Ledger(tmp_path / "s.db").conn
    assert _columns(c, "teacher_calls") == [
        ("key", "TEXT", False, True), ("value", "TEXT", True, False), ("created_at", "REAL", True, False)]
    assert [col[0] for col in _columns(c, "datasets")] == [
        "id", "kind", "corpus_id", "path", "created_at", "teacher", "n_samples", "n_rejected",
        "config", "summary"]
    assert [col[0] for col in _columns(c, "rejects")] == [
        "dataset_id", "seq", "task", "chunk_id", "reason", "detail", "raw"]


def test_0005_sample_reviews_columns(tmp_path):
    c = Ledger(tmp_path / "s.db").conn
    assert _columns(c, "sample_reviews") == [
        ("dataset_id", "TEXT", True, True), ("sample_id", "TEXT", True, True),
        ("verdict", "TEXT", True, False), ("messages", "TEXT", False, False),
        ("reviewed_at", "REAL", True, False),
    ]
