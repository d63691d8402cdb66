"""The 0004_models migration, column by column."""

from loop.ledger import Ledger


def test_models_table_columns(tmp_path):
    db = Ledger(tmp_path / "synthloop.db")
    cols = [(r["name"], r["type"], r["notnull"]) for r in db.conn.execute("PRAGMA table_info(models)")]
    assert cols == [
        ("id", "TEXT", 0), ("kind", "TEXT", 1), ("student", "TEXT", 1), ("method", "TEXT", 1),
        ("dataset_id", "TEXT", 1), ("path", "TEXT", 1), ("created_at", "REAL", 1),
        ("steps", "INTEGER", 1), ("loss_first", "REAL", 0), ("loss_last", "REAL", 0),
        ("val_loss", "REAL", 0), ("config", "TEXT", 1),
    ]
    assert "0004_models" in db.applied_migrations()
    db.close()
