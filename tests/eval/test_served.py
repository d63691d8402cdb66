"""Served setups against the scripted OpenAI-compatible server: the same chats as in-process,
greedy, the answer length as max_tokens; a dead endpoint is one line and the rest is scored;
the lineage names the model and URL, never the key."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from loop.config import resolve
from loop.errors import ConfigError
from loop.eval.served import parse_served
from loop.eval.stage import EvalConfig, _Eval, evaluate
from loop.workspace import Workspace

KEY = "sk-served-secret-4f9c2a7d1e"
GOLD = [
    {"question": "When does the boat to the islands go?", "answers": ["7:15"], "doc": "ferry.md"},
    {"question": "What does a night's mooring cost?", "answers": ["12 crowns"], "doc": "fees.md"},
    {"question": "When can I borrow books on Saturday?", "answers": ["nine"], "doc": "lib.md"},
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Three documents, their index and a gold set; a fresh workspace per test copies it."""
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest

    root = tmp_path_factory.mktemp("served")
    docs = root / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning.\n")
    (docs / "fees.md").write_text("# Fees\n\nHarbour mooring fees are 12 crowns a night.\n")
    (docs / "lib.md").write_text("# Library\n\nThe library opens at nine on Saturdays.\n")
    gold = root / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in GOLD))
    with Workspace(root / "ws") as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
    return root / "ws", gold


@pytest.fixture
def ws(corpus, tmp_path):
    import shutil

    shutil.copytree(corpus[0], tmp_path / "ws")
    with Workspace(tmp_path / "ws") as w:
        yield w


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on once the socket is closed
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def _has_context(messages) -> bool:
    from textcore import QUESTION_MARK

    return QUESTION_MARK in messages[-1]["content"]


def _reply(messages):
    """What the scripted engine answers: the gold answer when the chunk is in the prompt."""
    for row in GOLD:
        if row["question"] in messages[-1]["content"]:
            return row["answers"][0] if _has_context(messages) else "I do not know"
    return "?"


def test_a_served_setup_sends_the_chats_the_in_process_setup_builds(ws, corpus, server,
                                                                     tiny_student, monkeypatch):
    built: dict[str, list] = {"base": [], "rag": []}
    answer_batch = _Eval._answer_batch

    def recording(self, model, tok, batch, setup, contexts):
        from loop.eval.answers import setup_messages

        built[setup] += [setup_messages(q, contexts.get(q.id), setup) for q in batch]
        return answer_batch(self, model, tok, batch, setup, contexts)

    monkeypatch.setattr(_Eval, "_answer_batch", recording)
    gold = corpus[1]
    common = {"setups": ["base", "rag"], "max_new_tokens": 7, "n_boot": 200, "k": 1}
    evaluate(ws, EvalConfig(student=f"hf:{tiny_student}", **common), eval_set=gold)

    server.streams = True  # the teacher's client streams; the server here does too
    server.reply = _reply
    cfg = EvalConfig(serve={s: f"openai:student-x@{server.url}" for s in ("base", "rag")}, **common)
    result = evaluate(ws, cfg, eval_set=gold)

    sent = {"base": [], "rag": []}
    for body in server.requests:
        sent["rag" if _has_context(body["messages"]) else "base"].append(body["messages"])
        # greedy, the eval's answer length, the name the server knows
        assert body["model"] == "student-x" and body["temperature"] == 0.0
        assert body["max_tokens"] == 7 and body["stream"] is True
    key = lambda chats: sorted(json.dumps(c) for c in chats)  # noqa: E731
    assert key(sent["base"]) == key(built["base"]) and len(sent["base"]) == 3
    assert key(sent["rag"]) == key(built["rag"]) and len(sent["rag"]) == 3
    assert built["base"][0][0]["role"] == "system"  # the short-answer instruction rides along

    # scored like any setup: the engine's answers, cleaned the same way
    assert result.student is None  # every setup served, no student named or trained
    assert result.setups["rag"]["em"]["mean"] == 1.0 and result.setups["base"]["em"]["mean"] == 0.0
    from datasets import load_from_disk

    preds = load_from_disk(str(result.path / "predictions")).to_list()
    assert {p["answer"] for p in preds if p["setup"] == "rag"} == {"7:15", "12 crowns", "nine"}
    assert all(p["prompt_tokens"] == 11 and p["completion_tokens"] == 7 for p in preds)
    assert all(p["retrieved_chunk_ids"] for p in preds if p["setup"] == "rag")


def test_a_dead_endpoint_is_one_line_and_the_other_setups_are_scored(ws, corpus, server,
                                                                    tiny_student):
    from loop.events import Warned

    dead = _dead_url()
    events = []
    cfg = EvalConfig(student=f"hf:{tiny_student}", setups=["base", "rag", "tuned"],
                     max_new_tokens=5, n_boot=200,
                     serve={"base": f"openai:gone@{dead}", "tuned": f"openai:tuned@{server.url}"},
                     serve_retries=1)
    result = evaluate(ws, cfg, eval_set=corpus[1], emit=events.append)
    lines = [e.message for e in events if isinstance(e, Warned)]
    assert len(lines) == 1 and lines[0].startswith("setup 'base' not scored: gone at " + dead)
    assert "connection error" in lines[0] and "(1 of 1 requests failed" in lines[0]
    assert [n for n in result.notes if "'base'" in n] == lines  # and the report says it
    # rag in-process, tuned served (no tuned model trained here: the server holds it)
    assert set(result.setups) == {"rag", "tuned"}
    assert result.models == {"rag": None, "tuned": None}

    # an evaluation missing a setup is kept apart: with the server back, the whole run is scored
    cfg2 = cfg.model_copy(update={"serve": {**cfg.serve, "base": f"openai:gone@{server.url}"}})
    again = evaluate(ws, cfg2, eval_set=corpus[1])
    assert set(again.setups) == {"base", "rag", "tuned"} and again.eval_id != result.eval_id


def test_lineage_names_the_served_model_and_url_never_the_key(ws, corpus, server, monkeypatch):
    from loop.eval.report import write_report

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)  # openai:NAME takes its URL from here
    cfg = EvalConfig(setups=["base"], serve={"base": "openai:my-model"}, n_boot=200)
    result = evaluate(ws, cfg, eval_set=corpus[1])
    assert server.headers[0]["Authorization"] == f"Bearer {KEY}"  # the key was sent ...
    assert result.lineage["served"] == {"base": {"model": "my-model", "url": server.url}}
    assert result.models == {"base": None}
    row = ws.ledger.evaluation(result.eval_id)
    assert row["config"]["serve"] == {"base": f"openai:my-model@{server.url}"}
    report = write_report(ws, result.path)
    text = Path(report["markdown"]).read_text()
    assert f"Served: `base` by `my-model` at {server.url}" in text
    # ... and is stored nowhere: not in the evaluation's files, the report or the ledger
    ws.ledger.conn.commit()
    for f in [*ws.root.rglob("*")]:
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


def test_evaluations_without_a_served_setup_keep_their_ids():
    resolved = EvalConfig().resolved()
    assert EvalConfig().digest() == "22344c1be874a155"  # as before served setups existed
    assert not {"serve", "serve_concurrency", "serve_timeout", "serve_retries"} & set(resolved)
    # execution settings of the client never change what an evaluation is
    served = EvalConfig(serve={"base": "openai:m@http://h:8000/v1"})
    assert served.digest() == served.model_copy(update={"serve_retries": 0,
                                                        "serve_timeout": 5.0}).digest()
    assert served.digest() != EvalConfig().digest()


@pytest.mark.parametrize(("spec", "model", "url"), [
    ("openai:llama3.2:1b@http://127.0.0.1:11434/v1", "llama3.2:1b", "http://127.0.0.1:11434/v1"),
    ("openai:org/model@name@https://h.example/v1/", "org/model@name", "https://h.example/v1"),
    ("openai:tuned@http://a:8000/v1,http://b:8000/v1", "tuned", "http://a:8000/v1,http://b:8000/v1"),
])
def test_served_specs(spec, model, url):
    s = parse_served(spec, env={})
    assert (s.model, s.url) == (model, url)


@pytest.mark.parametrize(("serve", "says"), [
    ({"bse": "openai:m@http://h/v1"}, "unknown setup 'bse'"),
    ({"base": "hf:m"}, "known prefixes: openai:"),
    ({"base": "openai:@http://h/v1"}, "names no model"),
    ({"base": "openai:m@http://user:sk-1@h/v1"}, "OPENAI_API_KEY"),
])
def test_a_bad_serve_table_is_one_config_error(serve, says):
    with pytest.raises(ConfigError, match="serve") as e:
        resolve(EvalConfig, {"serve": serve})
    assert says in str(e.value)


def test_the_serve_flag(tmp_path):
    from loop.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["eval", "--workspace", str(tmp_path / "w"), "--serve", "base"])
    assert out.exit_code != 0 and "SETUP=openai:NAME@URL" in out.output
    out = runner.invoke(app, ["eval", "--workspace", str(tmp_path / "w"),
                              "--serve", "bsae=openai:m@http://h/v1"])
    assert out.exit_code == 1 and "unknown setup 'bsae'" in out.output
