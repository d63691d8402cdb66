"""``synthloop plugins``: what every extension point holds, and who registered it."""

from __future__ import annotations

import sys

from loop.cli import app
from loop.cli.common import JsonOpt, emit_json, verb
from loop.terminal import printable


@app.command("plugins")
def plugins_(as_json: JsonOpt = False) -> None:
    """List every registered teacher, task, metric, setup, model kind, retrieval method,
    reranker, embedder, student loader and verb, built-in or from an installed plugin
    (entry-point groups synthloop.teachers, synthloop.metrics, ...; see loop/plugins.py)."""
    from loop.plugins import KINDS, registered

    with verb(as_json):
        table = {kind: registered(kind) for kind in KINDS}
        if as_json:
            emit_json({"kinds": {k: {"group": KINDS[k].group, "registered": v}
                                 for k, v in table.items()}})
            return
        for kind, rows in table.items():
            sys.stdout.write(f"{kind} ({KINDS[kind].group}):\n")
            for r in rows:
                owner = "" if r["owner"] == "built-in" else f"  [{printable(r['owner'])}]"
                sys.stdout.write(f"  {printable(r['name'])}{owner}\n")
