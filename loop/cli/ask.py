"""``synthloop ask``: one question, every setup's answer (the playground in the terminal)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from loop.cli import app
from loop.cli.common import (
    DEFAULT_WS,
    ConfigOpt,
    JsonOpt,
    WorkspaceOpt,
    emit_json,
    say,
    stdout_console,
    verb,
)
from loop.cli.flags import config_flags
from loop.config import resolve
from loop.eval.config import EvalConfig
from loop.stages import read_config_file
from loop.train.config import TrainConfig
from loop.workspace import Workspace

PREVIEW_CHARS = 200


@app.command()
@config_flags(EvalConfig, only=("setups", "student", "k", "max_new_tokens", "context_tokens",
                                "device", "trust_remote_code", "allow_pickle"))
def ask(
    overrides: dict,
    question: Annotated[str, typer.Argument(help="The question every setup answers.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask every setup one question: each answer, and the chunks the RAG setups were shown.

    The same models, retriever, prompts and answer cleaning as `eval`: what you read here is
    what the scoreboard measured. Without --setups, every setup the workspace can build.
    Without --student: the trained models' student, else the latest evaluation's, else the
    config's [train] student (smollm2 by default), so base and rag answer before any training.
    """
    from loop.eval.ask import Playground

    with verb(as_json):
        file = read_config_file(config)
        cfg = resolve(EvalConfig, file.get("eval"),
                      **{k: v for k, v in overrides.items() if k != "setups"})
        student = resolve(TrainConfig, file.get("train")).student
        with Workspace(workspace, create=False) as ws:
            pg = Playground(ws, student=cfg.student, k=cfg.k, max_new_tokens=cfg.max_new_tokens,
                            context_tokens=cfg.context_tokens, device=cfg.device,
                            only=overrides.get("setups"), trust_remote_code=cfg.trust_remote_code,
                            allow_pickle=cfg.allow_pickle, default_student=student)
            answers = pg.ask(question)
        out = {"question": question, "student": pg.pool.student.uri, "notes": pg.notes,
               "answers": [{"setup": a.setup, "answer": a.answer, "raw": a.raw,
                            "latency_ms": a.latency_ms,
                            "sources": [h.as_dict() for h in a.sources]} for a in answers]}
        if as_json:
            emit_json(out)
            return
        _print(out)


def _print(out: dict) -> None:
    console = stdout_console  # the answers are the verb's output: stdout
    for a in out["answers"]:
        body = Text(a["answer"] or "(no answer)")
        for n, h in enumerate(a["sources"], 1):
            text = " ".join(h["text"].split())
            text = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " ..."
            body.append(f"\n[{n}] ", style="dim")
            body.append(f"{h['source']}", style="cyan")
            body.append(f"  {text}", style="dim")
        console.print(Panel(body, title=Text(f"{a['setup']}  {a['latency_ms']:.0f} ms"),
                            title_align="left"))
    for note in out["notes"]:
        say(("note:", "yellow"), " ", note)
