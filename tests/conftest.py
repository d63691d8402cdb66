"""Shared fixtures: tiny data made on the fly; nothing from the network or outside the repo."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture
def ws(tmp_path):
    from loop.workspace import Workspace

    w = Workspace(tmp_path / "ws")
    yield w
    w.close()


def _write_pdf(path, text, *, encrypt=None):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    if encrypt:
        pdf.set_encryption(owner_password="owner", user_password=encrypt)
    pdf.output(str(path))


@pytest.fixture
def write_pdf():
    """``write_pdf(path, text, encrypt=None)``: a one-page PDF (fpdf2), optionally encrypted."""
    return _write_pdf


def _build_tiny_llama(path: Path, text: str, *, vocab_size: int = 400,
                      max_positions: int = 4096) -> Path:
    """A 2-layer, 32-wide Llama and a byte-level BPE trained on ``text``, saved the way a
    user's model is (safetensors + tokenizer files)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text] * 30, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.save_pretrained(path)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                      bos_token_id=1, eos_token_id=2, pad_token_id=3)
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def build_tiny_llama():
    """``build_tiny_llama(path, text, vocab_size=400, max_positions=4096)``: a tiny chat-less
    Llama for the scoring, dashboard and hf-teacher tests."""
    return _build_tiny_llama


@pytest.fixture
def example_dir() -> Path:
    return EXAMPLES / "marrowick"


# -- a real OpenAI-compatible HTTP server on 127.0.0.1, scripted per test -----------------


def good_reply(messages: list[dict]) -> str:
    """A deterministic, grounded QA reply built from the <document> in the prompt."""
    user = messages[-1]["content"]
    if "Grade a training sample" in user:  # the generate stage's judge
        score = 1 if "Which word number 1" in user else 4
        return json.dumps({"score": score, "reason": "scripted"})
    if "Grade a candidate answer" in user:  # the eval stage's judge: right if it echoes a reference
        cand = user.split("Candidate answer:", 1)[1].split("\n", 1)[0].strip().lower()
        refs = user.split("Reference answer(s):", 1)[1].split("\n", 1)[0].lower()
        return json.dumps({"score": 5 if cand and cand in refs else 1, "reason": "scripted"})
    if "Grade how well an answer follows a style guide" in user:  # the eval stage's style grade
        return json.dumps({"score": 5 if "crowns" in user.rsplit("<answer>", 1)[1] else 2,
                           "reason": "scripted"})
    if "Allowed labels:" in user:  # classify: the label named on the document's title line
        labels = [x.strip() for x in user.split("Allowed labels:", 1)[1].split("\n", 1)[0].split(",")]
        title = re.search(r'<document title="([^"]*)"', user)
        hit = [lab for lab in labels if title and lab.lower() in title.group(1).lower()]
        return json.dumps({"label": (hit or labels)[0]})
    m = re.search(r"<document[^>]*>\n(.*?)\n</document>", user, re.DOTALL)
    doc = m.group(1) if m else user
    words = re.findall(r"[A-Za-z][a-z]{3,}", doc)
    pairs = []
    for i, w in enumerate(dict.fromkeys(words)):
        if i >= 2:
            break
        pairs.append({"question": f"Which word number {i} appears in the passage about {words[0]}?",
                      "answer": w})
    if "<document" in user and "reasoning" in user:  # cot / raft prompts
        return json.dumps({"question": f"What is {words[0]}?",
                           "reasoning": f'The text says "{words[0]}".', "answer": words[0]})
    return json.dumps({"pairs": pairs or [{"question": "q?", "answer": "a"}]})


class Scripted:
    """Each request pops a behaviour ('ok', '429', '500', 'hang', 'malformed', 'truncated',
    'garbage', 'echo401'); when the script is empty every request gets 'ok'.

    Replies are plain JSON (a server that does not stream) unless ``streams`` is set: then a
    request with ``"stream": true`` gets server-sent events, a piece of ``piece`` characters
    every ``drip`` seconds, and the stream modes 'stall' (two pieces, then ``hang`` seconds of
    nothing), 'cut' (two pieces, then the connection closes) and 'refuse-stream' (HTTP 400
    naming stream_options, as a server without streaming says)."""

    def __init__(self) -> None:
        self.script: deque[str] = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.delay = 0.0
        self.retry_after = "1"
        self.hang = 5.0
        self.reply = good_reply  # messages -> the assistant's text; a test may swap it
        self.die_after: int | None = None  # after this many requests the server goes away
        self.streams = False
        self.drip = 0.0
        self.piece = 8

    def next(self) -> str:
        with self.lock:
            return self.script.popleft() if self.script else "ok"


def _handler(state: Scripted):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm and delayed ACKs
        # each reply would stall ~40 ms, and the figure would measure that.
        disable_nagle_algorithm = True

        def log_message(self, *a):  # keep test output clean
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append(body)
                state.headers.append(dict(self.headers))
            if state.die_after is not None and len(state.requests) > state.die_after:
                threading.Thread(target=state.stop, daemon=True).start()  # mid-run, for good
                self.close_connection = True
                return None  # this request gets no answer
            mode = state.next()
            if state.delay:
                time.sleep(state.delay)
            if mode == "429":
                return self._send(429, b'{"error": "rate limited"}', {"Retry-After": state.retry_after})
            if mode == "400":
                return self._send(400, b'{"error": "bad request"}')
            if mode == "500":
                return self._send(500, b'{"error": "boom"}')
            if mode == "echo401":  # a proxy that echoes the request's headers in its error
                echo = json.dumps({"error": "unauthorized", "headers": dict(self.headers)})
                return self._send(401, echo.encode())
            if mode == "hang":
                time.sleep(state.hang)
                return self._send(200, b"{}")
            text = state.reply(body["messages"]) if mode != "garbage" else "I am not JSON at all"
            if state.streams and body.get("stream"):
                if mode == "refuse-stream":
                    return self._send(400, b'{"error": "stream_options is not supported"}')
                return self._events(text, mode, body)
            payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}],
                                  "usage": {"prompt_tokens": 11, "completion_tokens": 7}}).encode()
            if mode == "malformed":
                payload = b'{"choices": [ {"message": '
            if mode == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return None
            return self._send(200, payload)

        def _events(self, text, mode, body):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")  # the body ends when the connection does
            self.end_headers()
            self.close_connection = True
            pieces = [text[i:i + state.piece] for i in range(0, len(text), state.piece)]

            def event(chunk):
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()

            for n, piece in enumerate(pieces):
                if n and state.drip:
                    time.sleep(state.drip)
                event({"object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                if n == 1 and mode == "stall":
                    time.sleep(state.hang)
                    return None
                if n == 1 and mode == "cut":
                    return None
            event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                event({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7}})
            self.wfile.write(b"data: [DONE]\n\n")
            return None

        def _send(self, code, payload, headers=None):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

    return H


def start_server() -> Scripted:
    """A scripted server on 127.0.0.1; ``state.stop()`` shuts it (later requests are refused)."""
    state = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"

    def stop() -> None:
        if not state.stopped:
            state.stopped = True
            httpd.shutdown()
            httpd.server_close()

    state.stopped, state.stop = False, stop
    return state


@pytest.fixture
def server():
    state = start_server()
    yield state
    state.stop()


@pytest.fixture(scope="module")
def module_server():
    """One scripted server for a module's shared fixtures."""
    state = start_server()
    yield state
    state.stop()


@pytest.fixture
def servers():
    """``servers(n)``: n scripted servers, all stopped after the test."""
    made: list[Scripted] = []

    def make(n: int) -> list[Scripted]:
        made.extend(start_server() for _ in range(n))
        return made[-n:]

    yield make
    for s in made:
        s.stop()


# -- a real OpenAI-compatible server: transformers serve on SmolLM2 (tests/serving.py) ------


@pytest.fixture(scope="module")
def smollm2_folder(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct as a safetensors folder, made from the wheel's GGUF file."""
    from tests.serving import smollm2_safetensors

    return smollm2_safetensors(tmp_path_factory.mktemp("model-cache"))


@pytest.fixture(scope="module")
def smollm2_server(smollm2_folder, tmp_path_factory):
    """``transformers serve`` pinned to the folder, fp32 on the CPU, on a free port; a module
    that uses it carries ``tests.serving.needs_serve``."""
    from tests.serving import transformers_serve

    with transformers_serve(smollm2_folder, tmp_path_factory.mktemp("serve") / "serve.log") as srv:
        yield srv
