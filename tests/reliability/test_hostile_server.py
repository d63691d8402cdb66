"""A hostile OpenAI-compatible server (aiohttp, on 127.0.0.1, made here): it echoes the API
key back in other forms (without its prefix, lowercased, base64, the whole Authorization
header, in error bodies and in 200 replies), sends a 10 MB reply, answers with a web page,
and redirects to another origin. The key is in no stored or printed text, the big reply is
refused with its reason, a run where every job failed exits 1, and no prompt is re-sent to
another origin."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections import deque

import pytest
from aiohttp import web
from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def forms(key: str) -> list[str]:
    """The key as hostile servers echo it."""
    bare = key.removeprefix("sk-")
    return [key, bare, key.lower(), bare.upper(), _b64(key), _b64(bare),
            _b64(f"Authorization: Bearer {key}"), base64.urlsafe_b64encode(f"u:{key}".encode()).decode()]


def leaks(key: str, text: str) -> list[str]:
    """Which forms of ``key`` ``text`` still holds (a base64 form: the part that encodes the
    key alone)."""
    bare = key.removeprefix("sk-")
    plain = [p for p in (key, bare) if p.lower() in text.lower()]
    header = _b64(f"Authorization: Bearer {key}")  # the key's bytes from character 30 on
    basic = base64.urlsafe_b64encode(f"u:{key}".encode()).decode()  # from character 3 on
    encoded = [e for e in (_b64(key)[:-4], _b64(bare)[:-4], header[31:70], basic[3:45])
               if e in text]
    return plain + encoded


class Hostile:
    """Each request pops a mode; ``default`` when the script is empty."""

    def __init__(self) -> None:
        self.modes: deque[str] = deque()
        self.default = "ok"
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.redirect_to = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.paths.append(request.path)
        mode = self.modes.popleft() if self.modes else self.default
        auth = request.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        if mode == "echo401":
            return web.json_response({"error": "unauthorized", "echo": forms(key),
                                      "headers": dict(request.headers)}, status=401)
        if mode == "echo200":  # a "reply" that is the request's headers, and not JSON
            return _reply(f"You sent Authorization: {auth}; as base64 {' '.join(forms(key))}")
        if mode == "leak-in-answer":
            return _reply(json.dumps({"pairs": [{"question": "What is the key?",
                                                 "answer": f"It is {key.lower()} ({_b64(key)})"}]}))
        if mode == "huge":
            return _reply("x" * 10_000_000)
        if mode == "huge-stream":  # no Content-Length: the limit must hold while reading
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for _ in range(200):
                await resp.write(b"x" * 50_000)
            await resp.write_eof()
            return resp
        if mode == "html":
            return web.Response(text="<html><body><h1>Welcome to our site</h1></body></html>",
                                content_type="text/html")
        if mode == "redirect":
            return web.Response(status=307, headers={"Location": self.redirect_to})
        return _reply(json.dumps({"pairs": [{"question": "Where does the ferry leave from?",
                                             "answer": "Pier 3"}]}))


def _reply(text: str) -> web.Response:
    return web.json_response({"choices": [{"message": {"role": "assistant", "content": text}}],
                              "usage": {"prompt_tokens": 3, "completion_tokens": 2}})


@pytest.fixture
def hostile():
    """``hostile()``: a new server (its own port, so its own origin); all stopped after."""
    started = []

    def make() -> Hostile:
        state = Hostile()
        loop = asyncio.new_event_loop()
        webapp = web.Application(client_max_size=64 * 2**20)
        webapp.router.add_post("/{tail:.*}", state.handle)
        run = web.AppRunner(webapp)
        loop.run_until_complete(run.setup())
        site = web.TCPSite(run, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]
        state.origin = f"http://127.0.0.1:{port}"
        state.url = f"{state.origin}/v1"
        threading.Thread(target=loop.run_forever, daemon=True).start()
        started.append((loop, run))
        return state

    yield make
    for loop, run in started:
        asyncio.run_coroutine_threadsafe(run.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)


@pytest.fixture
def ingested(tmp_path, rel):
    from loop.ingest import ingest
    from loop.workspace import Workspace

    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [rel.write_docs(tmp_path / "docs")])
    return tmp_path / "ws"


def _generate(ws_root, url, key, *extra):
    return runner.invoke(app, ["generate", "-w", str(ws_root), "--teacher", "openai:m",
                               "--teacher-url", url, "--limit", "3", "--tasks", "qa",
                               "--max-retries", "0", *extra, "--json"],
                         env={"OPENAI_API_KEY": key})


def test_the_key_in_any_form_is_in_no_stored_or_printed_text(ingested, hostile, rel):
    server = hostile()
    server.modes.extend(["echo401", "echo200", "echo200", "leak-in-answer"])
    server.default = "leak-in-answer"
    r = _generate(ingested, server.url, rel.FAKE_KEY)
    assert len(server.bodies) >= 4, r.output
    assert all(leaks(rel.FAKE_KEY, f) for f in forms(rel.FAKE_KEY))  # the check sees every form
    found = {"output": leaks(rel.FAKE_KEY, r.output)}
    files = 0
    for path in ingested.rglob("*"):
        if path.is_file():
            files += 1
            text = path.read_bytes().decode("utf-8", "replace")
            if hit := leaks(rel.FAKE_KEY, text):
                found[str(path.relative_to(ingested))] = hit
    from loop.workspace import Workspace

    with Workspace(ingested) as ws:  # the ledger as SQL sees it (WAL pages included)
        for table, col in (("teacher_calls", "value"), ("rejects", "raw"), ("rejects", "detail"),
                           ("datasets", "summary")):
            for row in ws.ledger.conn.execute(f"SELECT {col} FROM {table}").fetchall():
                if hit := leaks(rel.FAKE_KEY, str(row[0])):
                    found[f"{table}.{col}"] = hit
        stored = ws.ledger.conn.execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0]
    assert stored >= 3  # the replies were stored, redacted
    rel.record("hostile: API key in other forms", files_grepped=files, leaks=len(found) - 1
               + bool(found["output"]))
    assert found == {"output": []}, found
    assert "[api key redacted]" in r.output


def test_a_huge_reply_is_refused_with_the_reason(ingested, hostile, rel):
    server = hostile()
    server.modes.extend(["huge", "huge-stream"])
    server.default = "ok"
    before = (ingested / "synthloop.db").stat().st_size
    (ingested.parent / "c.toml").write_text("[generate]\nmax_reply_kb = 256\n")
    r = _generate(ingested, server.url, "none", "-c", str(ingested.parent / "c.toml"))
    out = json.loads(r.stdout[r.stdout.index("{"):])
    reasons = [f["reason"] for f in out["failed_chunks"]]
    assert len(reasons) == 2 and all("larger than max_reply_kb (256 KB): not kept" in x
                                     for x in reasons), reasons
    grown = sum(p.stat().st_size for p in ingested.glob("synthloop.db*")) - before
    assert grown < 2_000_000, grown  # before: the 10 MB reply was stored twice
    rel.record("hostile: 10 MB teacher reply", refused=2, ledger_growth_bytes=grown)


def test_generate_exits_1_when_every_job_failed(ingested, hostile):
    server = hostile()
    server.default = "html"  # the URL points at a plain web page
    r = _generate(ingested, server.url, "none")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["samples"] == 0 and "no sample was made: 3 job(s) failed" in out["error"]
    r = runner.invoke(app, ["generate", "-w", str(ingested), "--teacher", "openai:m",
                            "--teacher-url", server.url, "--limit", "3", "--tasks", "qa",
                            "--max-retries", "0"])
    assert r.exit_code == 1 and "no sample was made" in r.output, r.output


def test_run_exits_1_when_every_generate_job_failed(tmp_path, hostile, rel):
    """`run` stops at generate with the reason, instead of training nothing and reporting
    base and rag as a finished run."""
    server = hostile()
    server.default = "html"
    docs = rel.write_docs(tmp_path / "docs")
    (tmp_path / "c.toml").write_text('[generate]\ntasks = ["qa"]\nmax_retries = 0\nlimit = 3\n')
    r = runner.invoke(app, ["run", str(docs), "-w", str(tmp_path / "ws"), "--teacher", "openai:m",
                            "--teacher-url", server.url, "--student", "scratch:tiny",
                            "--config", str(tmp_path / "c.toml"), "--budget", "0"],
                      env={"OPENAI_API_KEY": "none"})
    assert r.exit_code == 1, r.output
    assert "generate: no sample was made: 3 job(s) failed" in r.output
    assert not (tmp_path / "ws" / "models").exists() or not any((tmp_path / "ws" / "models").iterdir())


def test_a_redirect_to_another_origin_is_not_followed(hostile):
    """A 307 keeps the method and body: following it would send the prompt (documents
    included) to the other server. Within the same origin it is followed."""
    from generators.errors import TeacherError
    from generators.teachers.openai import OpenAITeacher

    a, b = hostile(), hostile()
    a.modes.append("redirect")
    a.redirect_to = f"{b.url}/chat/completions"
    teacher = OpenAITeacher("m", base_url=a.url, api_key="none", max_retries=0)
    with pytest.raises(TeacherError, match=f"redirect to {b.origin} not followed"):
        teacher.complete([{"role": "user", "content": "SECRET DOCUMENT TEXT"}])
    assert b.bodies == []  # nothing reached the other origin
    a.modes.append("redirect")
    a.redirect_to = "/moved/v1/chat/completions"  # same origin: followed
    done = teacher.complete([{"role": "user", "content": "another prompt"}])
    assert "Pier 3" in done.text and a.paths[-1] == "/moved/v1/chat/completions"
