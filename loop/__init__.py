"""synthloop core: config, workspace and ledger, ingestion, training, scoring, the CLI.

The core never imports Textual; the dashboard (``tui``) sits on top of it.
"""

__version__ = "0.2.0"

# PEFT imports bitsandbytes whenever it is installed (the qlora extra), and bitsandbytes'
# CPU backend then warns at import that an optional kernels package is missing. Its fallback
# is correct, so the warning would only alarm: drop that one logger's warnings.
import logging as _logging

_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
