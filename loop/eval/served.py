"""Served setups: a setup answered by an OpenAI-compatible endpoint (vLLM, llama-server,
Ollama, ``transformers serve``, OpenAI) instead of the eval stage's own ``generate``.

``[eval] serve = {base = "openai:NAME@URL"}`` (or ``--serve base=openai:NAME@URL``): the
setup's questions go to ``URL``'s ``/chat/completions`` as the chat the in-process setup
would build (:func:`loop.eval.stage.setup_messages`: the short-answer system message, the
retrieved chunks laid out by ``textcore.prompt_with_context``), greedy (temperature 0), with
``max_new_tokens`` as ``max_tokens``. The requests go through the ``openai:`` teacher's client
(concurrency, retries with backoff, streaming with an idle timeout, the key from
``OPENAI_API_KEY``, redacted from every error); nothing is cached, since what a server
answers may change behind the same name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

# One backend today; a URI prefix names it, as a teacher's does (an unknown one is an error
# that lists these).
PREFIXES = ("openai",)
_NAME_AT_URL = re.compile(r"(?P<name>.+?)@(?P<url>https?://\S+)")


@dataclass(frozen=True)
class Served:
    """One served setup: the model name the server knows and the server's base URL."""

    model: str
    url: str

    @property
    def uri(self) -> str:
        return f"openai:{self.model}@{self.url}"

    def lineage(self) -> dict[str, str]:
        return {"model": self.model, "url": self.url}


def parse_served(spec: str, *, env: dict[str, str] | None = None) -> Served:
    """``openai:NAME@URL`` (``openai:NAME``: the URL from ``OPENAI_BASE_URL``, else OpenAI's)
    as a :class:`Served`; a ValueError that says what is wrong otherwise."""
    from generators.teachers.openai import DEFAULT_BASE_URL

    prefix, sep, rest = spec.strip().partition(":")
    if not sep or prefix not in PREFIXES:
        raise ValueError(f"{spec!r} is not a served model (write openai:NAME@URL; known "
                         f"prefixes: {', '.join(p + ':' for p in PREFIXES)})")
    m = _NAME_AT_URL.fullmatch(rest)
    name, url = (m["name"], m["url"]) if m else (rest, None)
    if not name.strip() or name.startswith("@"):
        raise ValueError(f"{spec!r} names no model (write openai:NAME@URL)")
    env = os.environ if env is None else env
    # several URLs (a,b): the teacher's pool, each request to the least busy server
    urls = [u.strip().rstrip("/") for u in (url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
            .split(",") if u.strip()]
    if not urls:
        raise ValueError(f"{spec!r} names no URL (write openai:NAME@URL)")
    for u in urls:
        _check_url(spec, u)
    return Served(name.strip(), ",".join(urls))


def _check_url(spec: str, url: str) -> None:
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError as e:
        raise ValueError(f"{spec!r}: {url!r} is not a URL") from e
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{spec!r}: {url!r} is not an http(s) URL")
    # the URL is recorded in the config, the ledger and the report: no credential may ride in it
    if parsed.user or parsed.password:
        raise ValueError(f"{spec!r}: the URL carries a user or password, which would be "
                         "recorded with the evaluation; put the key in OPENAI_API_KEY")


def check_serve(serve: dict[str, str]) -> dict[str, str]:
    """The ``serve`` mapping checked: known setups, readable specs (config validation)."""
    from loop.eval.setups import setup_names

    known = setup_names()
    for setup, spec in serve.items():
        if setup not in known:
            raise ValueError(f"unknown setup {setup!r} (known: {', '.join(known)})")
        parse_served(spec)
    return serve


def pinned(serve: dict[str, str]) -> dict[str, str]:
    """Every spec with its URL written out (one taken from the environment included), so the
    evaluation's id, its config and the ledger name the server that answered."""
    return {setup: parse_served(spec).uri for setup, spec in serve.items()}


def client(served: Served, cfg: Any):
    """The ``openai:`` teacher's client for one served setup: greedy, the eval's answer
    length, the eval's concurrency, idle timeout and retries (the teacher's defaults when
    unset); the key from ``OPENAI_API_KEY``."""
    from generators.teachers import get_teacher

    options = {"concurrency": cfg.serve_concurrency, "timeout": cfg.serve_timeout,
               "max_retries": cfg.serve_retries}
    return get_teacher(f"openai:{served.model}", base_url=served.url,
                       params={"temperature": 0.0, "max_tokens": cfg.max_new_tokens, "seed": 0},
                       **{k: v for k, v in options.items() if v is not None})
