"""synthloop core: config, workspace and ledger, ingestion, training, scoring, the CLI.

The core never imports Textual; the dashboard (``tui``) sits on top of it.
"""

__version__ = "0.1.0"
