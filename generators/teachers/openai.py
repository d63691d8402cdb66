"""``openai:MODEL`` — any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp, TGI.

Async with bounded concurrency; retries with exponential backoff and full jitter on 429,
5xx, timeouts, dropped connections and broken bodies, honouring ``Retry-After``. The API key
comes from the environment (or the caller) and is never logged, cached or put in an error.
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

from generators.errors import TeacherError
from generators.teachers.chat import ChatTeacher, Completion, Messages, OnDone

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524}


class OpenAITeacher(ChatTeacher):
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 1.0,
        backoff_cap: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(model, **kwargs)
        self.uri = f"openai:{model}"
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.backoff_cap = backoff_cap

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAITeacher(model={self.model!r}, base_url={self.base_url!r})"

    def complete_many(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        asyncio.run(self._all(requests, on_done))

    async def _all(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # One TLS context for all workers: building one costs ~40 ms (loading the CA store).
        tls = ssl.create_default_context() if self.base_url.startswith("https") else False
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        queue: asyncio.Queue[tuple[int, Messages]] = asyncio.Queue()
        for item in enumerate(requests):
            queue.put_nowait(item)

        async def worker() -> None:
            # A session with one connection per worker: with 32 in flight every response
            # waits for the client's per-request CPU of the other 31, so that cost sets the
            # throughput (aiohttp measured 0.93 of ideal where httpx gave 0.78).
            conn = aiohttp.TCPConnector(limit=1, ssl=tls)
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
        url = f"{self.base_url}/chat/completions"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                async with session.post(url, json=body) as resp:
                    raw = await resp.read()
                    if resp.status == 200:
                        return _completion(raw)
                    last = f"HTTP {resp.status}: {_snippet(raw, self._api_key)}"
                    if resp.status not in _RETRY_STATUS:
                        raise TeacherError(last)
                    wait = _retry_after(resp.headers.get("Retry-After"))
            except asyncio.TimeoutError:
                last = f"timeout after {self.timeout:g}s"
            except aiohttp.ClientError as e:
                last = f"connection error: {type(e).__name__}"
            except _BrokenBody as e:
                last = f"broken response body: {e}"
            if attempt == self.max_retries:
                break
            await asyncio.sleep(wait if wait is not None else self._delay(attempt))
        raise TeacherError(f"{last} (gave up after {self.max_retries + 1} attempts)")

    def _delay(self, attempt: int) -> float:
        # Full jitter (AWS architecture blog): spreads retries of many concurrent clients.
        return random.uniform(0, min(self.backoff_cap, self.backoff * 2**attempt))


class _BrokenBody(ValueError):
    pass


def _completion(raw: bytes) -> Completion:
    try:
        data = json.loads(raw)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise _BrokenBody(f"{type(e).__name__}: {str(e)[:120]}") from e
    if not isinstance(text, str):
        raise _BrokenBody("message content is not a string")
    usage = data.get("usage") or {}
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


def _snippet(raw: bytes, secret: str = "") -> str:
    text = raw.decode("utf-8", errors="replace")
    # An error body may echo the request's headers (some proxies do): the snippet goes to
    # the ledger, the dataset's summary and the terminal, so the key is cut out before the
    # text is shortened (a key cut in half by [:200] would slip past).
    if secret:
        text = text.replace(secret, "[api key redacted]")
    return " ".join(text.split())[:200]
