"""``openai:MODEL`` — any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp, TGI.

Async with bounded concurrency; retries with exponential backoff and full jitter on 429,
5xx, timeouts, dropped connections and broken bodies, honouring ``Retry-After``. The API key
comes from the environment (or the caller) and is never logged, cached or put in an error:
every form of it (``generators.secrets``) is cut out of error bodies and replies alike,
before either is stored or shown.

Replies are streamed (``"stream": true``, server-sent events, usage from the last chunk
with ``stream_options.include_usage``), so ``timeout`` is an idle timeout: the longest wait
for the reply to start or for its next chunk. A slow server that keeps sending is never cut
off (against llama-server at ~2.5 tokens/s, a 120 s cap on the whole request cancelled every
long generation and retried it from scratch); ``total_timeout`` caps a whole request when
set. A server that answers a stream request with a plain JSON body is read as before, and
one that refuses the stream fields (an error naming them) is asked without them.

A reply larger than ``max_reply_kb`` is refused with that reason (a 10 MB reply was stored
twice in the ledger). Redirects are followed only within the server's own origin: a 307 to
another host would re-send the prompt, documents included, there.

Several servers (``base_url="http://a/v1,http://b/v1"``) share the requests: each request
goes to the server with the fewest requests outstanding; a server that fails is backed off
(exponentially, per server) while the others carry on, and the request is retried on
another one. Which server answered never enters the call cache's key.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import ssl
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from yarl import URL

from generators.errors import TeacherError
from generators.secrets import Redactor
from generators.teachers.chat import ChatTeacher, Completion, Messages, OnDone

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524}
_REDIRECTS = {301, 302, 303, 307, 308}
MAX_REPLY_KB = 1024  # a chat completion of a few thousand tokens is a few KB


class OpenAITeacher(ChatTeacher):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        total_timeout: float | None = None,
        max_retries: int = 5,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        max_reply_kb: int = MAX_REPLY_KB,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.uri = f"openai:{model}"
        urls = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.base_urls = [u.strip().rstrip("/") for u in urls.split(",") if u.strip()]
        self.base_url = self.base_urls[0]
        self.servers = [_Server(u) for u in self.base_urls]
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self._redact = Redactor(self._api_key).apply
        self.max_reply_bytes = max(1, int(max_reply_kb)) * 1024
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.total_timeout = total_timeout
        self.stream = True  # off for good once a server refuses the stream fields
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(model={self.model!r}, base_urls={self.base_urls!r})"

    def complete_many(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        asyncio.run(self._all(requests, on_done))

    async def _all(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # One TLS context for all workers: building one costs ~40 ms (loading the CA store).
        tls = ssl.create_default_context() if any(u.startswith("https") for u in self.base_urls) else False
        # idle, not total: each chunk that arrives resets sock_read's clock
        timeout = aiohttp.ClientTimeout(total=self.total_timeout, sock_connect=self.timeout,
                                        sock_read=self.timeout)
        queue: asyncio.Queue[tuple[int, Messages]] = asyncio.Queue()
        for item in enumerate(requests):
            queue.put_nowait(item)

        async def worker() -> None:
            # A session with one connection per worker: with 32 in flight every response
            # waits for the client's per-request CPU of the other 31, so that cost sets the
            # throughput (aiohttp measured 0.93 of ideal where httpx gave 0.78).
            conn = aiohttp.TCPConnector(limit=len(self.servers), ssl=tls)
            async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=conn) as s:
                while not queue.empty():
                    i, messages = queue.get_nowait()
                    try:
                        result: Completion | Exception = await self._call(s, messages)
                    except TeacherError as e:
                        result = e
                    on_done(i, result)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))

    async def _call(self, session: aiohttp.ClientSession, messages: Messages) -> Completion:
        body = {"model": self.model, "messages": messages, **self.params}
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = None
            server = self._pick()
            server.outstanding += 1
            try:
                status, raw, retry_after = await self._post_any(session, f"{server.url}/chat/completions", body)
                if status == 200:
                    result = raw if isinstance(raw, Completion) else _completion(raw, self._redact)
                    server.ok()
                    return result
                last = f"HTTP {status}: {_snippet(raw, self._redact)}"
                if status not in _RETRY_STATUS:
                    raise TeacherError(last)
                wait = _retry_after(retry_after)
            except asyncio.TimeoutError as e:  # before ClientError: aiohttp's are both
                last = (f"timeout: nothing received for {self.timeout:g}s"
                        if isinstance(e, aiohttp.ServerTimeoutError) or self.total_timeout is None
                        else f"timeout: the reply took over total_timeout ({self.total_timeout:g}s)")
            except aiohttp.ClientError as e:
                last = f"connection error: {type(e).__name__}"
            except _BrokenBody as e:
                last = f"broken response body: {e}"
            finally:
                server.outstanding -= 1
            # this request's own backoff grows with its attempts (as with one server); the
            # server is held back at least that long, longer when it said Retry-After
            server.failed(wait if wait is not None else self._delay(attempt))
            if len(self.servers) > 1:
                last = f"{server.url}: {last}"
            if attempt == self.max_retries:
                break
            # another server that is not backed off takes the retry at once
            if not any(s.available() for s in self.servers):
                await asyncio.sleep(max(0.0, min(s.down_until for s in self.servers) - time.monotonic()))
        raise TeacherError(f"{last} (gave up after {self.max_retries + 1} attempts)")

    async def _post_any(self, session: aiohttp.ClientSession, url: str,
                        body: dict[str, Any]) -> tuple[int, bytes | Completion, str | None]:
        """POST as a stream; again without the stream fields (and never again with them) when
        the server's error names them."""
        if not self.stream:
            return await self._post(session, url, body)
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        status, raw, retry_after = await self._post(session, url, streamed)
        if status in (400, 422) and isinstance(raw, bytes) and b"stream" in raw.lower():
            self.stream = False
            return await self._post(session, url, body)
        return status, raw, retry_after

    async def _post(self, session: aiohttp.ClientSession, url: str,
                    body: dict[str, Any]) -> tuple[int, bytes | Completion, str | None]:
        """POST, following at most 3 redirects within the URL's origin; the body read up to
        ``max_reply_bytes``. Returns status, body (an event stream already read as the
        Completion it makes), Retry-After."""
        for _ in range(4):
            async with session.post(url, json=body, allow_redirects=False) as resp:
                if resp.status in _REDIRECTS and resp.headers.get("Location"):
                    target = resp.url.join(URL(resp.headers["Location"]))
                    if target.origin() != resp.url.origin():
                        raise TeacherError(
                            f"HTTP {resp.status}: redirect to {target.origin()} not followed "
                            "(the prompt would go to another server; name it in --teacher-url "
                            "if it is the right one)")
                    url = str(target)
                    continue
                if resp.status == 200 and resp.content_type == "text/event-stream":
                    return 200, await self._read_events(resp), None
                return resp.status, await self._read(resp), resp.headers.get("Retry-After")
        raise TeacherError(f"more than 3 redirects from {url}")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.max_reply_bytes
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise TeacherError(self._too_big(declared))
        parts, size = [], 0
        async for part in resp.content.iter_chunked(1 << 16):
            size += len(part)
            if size > limit:
                raise TeacherError(self._too_big(size, more=True))
            parts.append(part)
        return b"".join(parts)

    async def _read_events(self, resp: aiohttp.ClientResponse) -> Completion:
        """A streamed chat completion: ``data:`` lines of chunks, ``[DONE]`` last (or a
        finish_reason); the text is choice 0's ``delta.content`` pieces joined, then redacted
        whole (a key split across two chunks would slip past a per-chunk cut). Read up to
        ``max_reply_bytes``, like a plain body."""
        events = _Events()
        pending, size = b"", 0
        async for part in resp.content.iter_any():
            size += len(part)
            if size > self.max_reply_bytes:
                raise TeacherError(self._too_big(size, more=True))
            *lines, pending = (pending + part).split(b"\n")
            for line in lines:
                events.line(line, self._redact)
            if events.done:
                break
        events.line(pending, self._redact)
        events.line(b"", self._redact)  # an event the stream's end cut short
        if not (events.done or events.finished):
            raise _BrokenBody("the event stream ended before its last chunk")
        text = self._redact("".join(events.text))
        return Completion(text, int(events.usage.get("prompt_tokens") or 0),
                          int(events.usage.get("completion_tokens") or 0))

    def _too_big(self, size: int, more: bool = False) -> str:
        return (f"reply of {'over ' if more else ''}{size} bytes is larger than max_reply_kb "
                f"({self.max_reply_bytes // 1024} KB): not kept")

    def _pick(self) -> _Server:
        """The server with the fewest requests in flight among those not backed off (all
        backed off: the one that comes back first)."""
        up = [s for s in self.servers if s.available()]
        if not up:
            return min(self.servers, key=lambda s: s.down_until)
        return min(up, key=lambda s: (s.outstanding, s.failures))

    def _delay(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many concurrent clients.
        return random.uniform(0, min(self.backoff_cap, self.backoff * 2**attempt))


class _BrokenBody(ValueError):
    pass


class _Events:
    """Server-sent events, line by line: an event's ``data:`` lines end at a blank line."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.usage: dict[str, Any] = {}
        self.data: list[bytes] = []
        self.done = self.finished = False

    def line(self, raw: bytes, redact: Any) -> None:
        line = raw.rstrip(b"\r")
        if line.startswith(b"data:"):
            self.data.append(line[5:].removeprefix(b" "))
        elif not line and self.data:
            data, self.data = b"\n".join(self.data), []
            self._event(data, redact)

    def _event(self, data: bytes, redact: Any) -> None:
        if self.done:
            return
        if data.strip() == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
            choices = chunk.get("choices") or []
        except (ValueError, AttributeError) as e:
            raise _BrokenBody(f"bad event: {type(e).__name__}: {str(e)[:120]}") from e
        if chunk.get("error"):
            raise _BrokenBody(f"error in the stream: {_snippet(json.dumps(chunk['error']).encode(), redact)}")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            piece = (choice.get("delta") or {}).get("content")
            if isinstance(piece, str):
                self.text.append(piece)
            self.finished = self.finished or bool(choice.get("finish_reason"))
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]


class _Server:
    """One server of the pool: requests in flight, failures in a row, backed off until."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outstanding = 0
        self.failures = 0
        self.down_until = 0.0

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def ok(self) -> None:
        self.failures, self.down_until = 0, 0.0

    def failed(self, delay: float) -> None:
        self.failures += 1
        self.down_until = max(self.down_until, time.monotonic() + delay)


def _completion(raw: bytes, redact: Any = None) -> Completion:
    """The reply's text, with the key cut out (a reply may echo the request's headers)."""
    try:
        data = json.loads(raw)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise _BrokenBody(f"{type(e).__name__}: {str(e)[:120]}") from e
    if not isinstance(text, str):
        raise _BrokenBody("message content is not a string")
    usage = data.get("usage") or {}
    if redact is not None:
        text = redact(text)
    return Completion(text, int(usage.get("prompt_tokens") or 0),
                      int(usage.get("completion_tokens") or 0))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _snippet(raw: bytes, redact: Any = None) -> str:
    text = raw.decode("utf-8", errors="replace")
    # An error body may echo the request's headers (some proxies do): the snippet goes to
    # the ledger, the dataset's summary and the terminal, so the key is cut out before the
    # text is shortened (a key cut in half by [:200] would slip past).
    if isinstance(redact, str):  # a key given as it is
        redact = Redactor(redact).apply
    if redact is not None:
        text = redact(text)
    return " ".join(text.split())[:200]
