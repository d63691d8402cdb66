"""``openai:MODEL`` — any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp, TGI.

Async with bounded concurrency; retries with exponential backoff and full jitter on 429,
5xx, timeouts, dropped connections and broken bodies, honouring ``Retry-After``. The API key
comes from the environment (or the caller) and is never logged, cached or put in an error.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import ssl
import time
from collections.abc import Sequence
from typing import Any

import httpx

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
        queue: asyncio.Queue[tuple[int, Messages]] = asyncio.Queue()
        for item in enumerate(requests):
            queue.put_nowait(item)

        async def worker() -> None:
            # One client with one connection per worker: httpcore's shared pool rescans every
            # connection on every state change, which cost ~1 ms per request at 32 in flight
            # (profiled in bench/generate.py) and capped throughput near 0.65 of ideal.
            async with httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                         timeout=self.timeout, verify=tls,
                                         limits=httpx.Limits(max_connections=1)) as client:
                while not queue.empty():
                    i, messages = queue.get_nowait()
                    try:
                        result: Completion | Exception = await self._call(client, messages)
                    except TeacherError as e:
                        result = e
                    on_done(i, result)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(requests)))))

    async def _call(self, client: httpx.AsyncClient, messages: Messages) -> Completion:
        body = {"model": self.model, "messages": messages, **self.params}
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = None
            try:
                resp = await client.post("/chat/completions", json=body)
                if resp.status_code == 200:
                    return _completion(resp)
                last = f"HTTP {resp.status_code}: {_snippet(resp)}"
                if resp.status_code not in _RETRY_STATUS:
                    raise TeacherError(last)
                wait = _retry_after(resp.headers.get("retry-after"))
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__} after {self.timeout:g}s" if isinstance(
                    e, httpx.TimeoutException) else f"connection error: {type(e).__name__}"
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


def _completion(resp: httpx.Response) -> Completion:
    try:
        data = resp.json()
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


def _snippet(resp: httpx.Response) -> str:
    try:
        text = resp.text
    except Exception:  # noqa: BLE001 - a body we cannot decode is still an HTTP error
        return ""
    return " ".join(text.split())[:200]
