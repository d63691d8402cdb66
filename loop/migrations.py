"""Named, append-only schema migrations of the workspace ledger.

Never edit or reorder an entry that has shipped: add a new one at the end. Each is applied
once, in order, inside a transaction, and recorded in ``_migrations``.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            stage TEXT NOT NULL,
            status TEXT NOT NULL,            -- running | ok | failed
            started_at REAL NOT NULL,
            finished_at REAL,
            argv TEXT,
            config TEXT,                     -- resolved config, JSON
            summary TEXT,                    -- the stage's --json summary, JSON
            artefact_id TEXT,
            error TEXT
        );
        CREATE TABLE corpora (
            id TEXT PRIMARY KEY,             -- hash of chunk config + (doc_id, source, title)
            path TEXT NOT NULL,
            created_at REAL NOT NULL,
            n_documents INTEGER NOT NULL,
            n_chunks INTEGER NOT NULL,
            config TEXT NOT NULL
        );
        CREATE TABLE files (
            path TEXT PRIMARY KEY,           -- absolute path as ingested
            source TEXT NOT NULL,            -- its portable name (folder name + relative path)
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            chunking TEXT NOT NULL,          -- digest of the ingest config that chunked it
            status TEXT NOT NULL,            -- ok | skipped
            reason TEXT,
            updated_at REAL NOT NULL
        );
        CREATE TABLE file_documents (
            path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
            seq INTEGER NOT NULL,            -- position of the document inside the file
            doc_id TEXT NOT NULL,
            source TEXT NOT NULL,
            title TEXT NOT NULL,
            n_chunks INTEGER NOT NULL,
            PRIMARY KEY (path, seq)
        );
        CREATE INDEX file_documents_doc ON file_documents(doc_id);
        """,
    ),
    (
        "0002_indexes",
        """
        CREATE TABLE indexes (
            id TEXT PRIMARY KEY,             -- hash of corpus id + the index's build settings
            corpus_id TEXT NOT NULL,
            path TEXT NOT NULL,
            created_at REAL NOT NULL,
            embedder TEXT NOT NULL,
            config TEXT NOT NULL             -- resolved [index] config, JSON
        );
        CREATE INDEX indexes_corpus ON indexes(corpus_id);
        """,
    ),
    (
        "0003_generation",
        """
        CREATE TABLE teacher_calls (
            key TEXT PRIMARY KEY,            -- hash of (model, messages, parameters)
            value TEXT NOT NULL,             -- the completion and its token usage, JSON
            created_at REAL NOT NULL
        );
        CREATE TABLE datasets (
            id TEXT PRIMARY KEY,             -- hash of corpus id, teacher, tasks, config
            kind TEXT NOT NULL,              -- train | eval
            corpus_id TEXT NOT NULL,
            path TEXT NOT NULL,
            created_at REAL NOT NULL,
            teacher TEXT NOT NULL,
            n_samples INTEGER NOT NULL,
            n_rejected INTEGER NOT NULL,
            config TEXT NOT NULL,
            summary TEXT NOT NULL
        );
        CREATE TABLE rejects (
            dataset_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            task TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            reason TEXT NOT NULL,            -- parse_error | teacher_error | grounding | dedup ...
            detail TEXT,
            raw TEXT,                        -- the teacher's text or the rejected sample, JSON
            PRIMARY KEY (dataset_id, seq)
        );
        """,
    ),
    (
        "0004_models",
        """
        CREATE TABLE models (
            id TEXT PRIMARY KEY,             -- hash of student fingerprint, dataset id, config
            kind TEXT NOT NULL,              -- tuned | combined | dpo | pretrain
            student TEXT NOT NULL,           -- the student URI
            method TEXT NOT NULL,            -- lora | full | qlora | dpo | pretrain
            dataset_id TEXT NOT NULL,        -- a datasets id, or corpus:<id> for pretrain
            path TEXT NOT NULL,
            created_at REAL NOT NULL,
            steps INTEGER NOT NULL,
            loss_first REAL,
            loss_last REAL,
            val_loss REAL,
            config TEXT NOT NULL             -- resolved [train] config, JSON
        );
        CREATE INDEX models_kind ON models(kind, created_at);
        """,
    ),
    (
        "0005_sample_reviews",
        """
        CREATE TABLE sample_reviews (
            dataset_id TEXT NOT NULL,        -- the dataset the person was looking at
            sample_id TEXT NOT NULL,
            verdict TEXT NOT NULL,           -- accepted | edited | rejected
            messages TEXT,                   -- edited: the new chat, JSON
            reviewed_at REAL NOT NULL,
            PRIMARY KEY (dataset_id, sample_id)
        );
        """,
    ),
    (
        "0006_evaluations",
        """
        CREATE TABLE evaluations (
            id TEXT PRIMARY KEY,             -- hash of the eval set, the setups' inputs, config
            path TEXT,                       -- its folder (scores.json, predictions, report)
            created_at REAL NOT NULL,
            eval_set TEXT,                   -- the gold file's digest or the eval-set dataset id
            origin TEXT,                     -- human | generated
            questions INTEGER,
            verdict TEXT,
            config TEXT                      -- resolved [eval] config, JSON
        );
        INSERT OR IGNORE INTO evaluations (id, path, created_at, origin, questions, verdict, config)
            SELECT artefact_id, NULL, COALESCE(finished_at, started_at),
                   json_extract(summary, '$.origin'), json_extract(summary, '$.questions'),
                   json_extract(summary, '$.verdict'), config
            FROM runs WHERE stage = 'eval' AND status = 'ok' AND artefact_id IS NOT NULL
            ORDER BY id;
        UPDATE meta SET key = 'eval' WHERE key = 'evaluation'
        """,
    ),
    (
        "0007_evaluation_lineage",
        # models: {setup: model id or null}; datasets: {model kind: dataset id}; index_id: the
        # index the RAG setups searched. (No comments inside: SQLite copies an added column's
        # text into the table's CREATE statement, where a trailing comment breaks it.)
        """
        ALTER TABLE evaluations ADD COLUMN models TEXT;
        ALTER TABLE evaluations ADD COLUMN datasets TEXT;
        ALTER TABLE evaluations ADD COLUMN index_id TEXT
        """,
    ),
    (
        "0008_sweeps",
        """
        CREATE TABLE sweeps (
            id TEXT PRIMARY KEY,             -- hash of the settings' model ids
            kind TEXT NOT NULL,              -- the models' kind: tuned | combined | dpo | pretrain
            dataset_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            grid TEXT NOT NULL,              -- {key: [values]}, JSON
            best_model_id TEXT NOT NULL,     -- the setting with the lowest validation loss
            config TEXT NOT NULL             -- resolved [train] config the grid varied, JSON
        );
        CREATE TABLE sweep_settings (
            sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,            -- position in the grid
            settings TEXT NOT NULL,          -- {key: value}, JSON
            model_id TEXT NOT NULL,
            val_loss REAL,                   -- NULL: no finite loss (a diverged setting)
            curve TEXT NOT NULL,             -- [[step, validation loss], ...], JSON
            PRIMARY KEY (sweep_id, seq)
        );
        CREATE INDEX sweeps_best ON sweeps(best_model_id, created_at)
        """,
    ),
]
