"""The openai: teacher against a real local server that misbehaves on purpose."""

from __future__ import annotations

import time

from generators.tasks import get_task
from generators.teachers import Chunk, Job, MemoryCache, get_teacher

DOC = Chunk("c1", "The lighthouse keeper Ilse Brannock lights the lamp at dusk every evening.", "Harbour")


def _run(server, jobs, **kw):
    teacher = get_teacher("openai:test-model", base_url=server.url, api_key="sk-test",
                          timeout=kw.pop("timeout", 2.0), backoff=0.01, **kw)
    out = {}
    teacher.run(jobs, lambda job, res: out.__setitem__(job.key, res))
    return teacher, out


def _jobs(n=1, task="qa"):
    return [Job(key=f"j{i}", task=get_task(task), chunk=Chunk(f"c{i}", DOC.text, DOC.title))
            for i in range(n)]


def test_good_replies_are_parsed_and_usage_counted(server):
    _, out = _run(server, _jobs(3))
    assert all(not r.error and r.items for r in out.values())
    assert sum(r.usage.prompt_tokens for r in out.values()) == 33
    assert server.requests[0]["model"] == "test-model"
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_retries_on_429_500_malformed_and_truncated(server):
    server.script.extend(["429", "500", "malformed", "truncated"])
    server.retry_after = "0.3"
    t = time.perf_counter()
    _, out = _run(server, _jobs(1), concurrency=1)
    assert time.perf_counter() - t >= 0.3  # Retry-After was honoured
    assert out["j0"].items and not out["j0"].error
    assert len(server.requests) == 5


def test_timeout_then_success(server):
    server.script.append("hang")
    server.hang = 1.5
    _, out = _run(server, _jobs(1), timeout=0.5)
    assert out["j0"].items


def test_gives_up_with_a_reason(server):
    server.script.extend(["500"] * 10)
    _, out = _run(server, _jobs(1), max_retries=2)
    assert "HTTP 500" in out["j0"].error and "3 attempts" in out["j0"].error



def test_non_retryable_status_fails_at_once(server):
    server.script.extend(["400"] * 10)
    _, out = _run(server, _jobs(1), max_retries=5)
    assert len(server.requests) == 1 and "HTTP 400" in out["j0"].error


def test_garbage_gets_one_repair_then_a_kept_reject(server):
    server.script.extend(["garbage", "garbage"])
    _, out = _run(server, _jobs(1), concurrency=1)
    r = out["j0"]
    assert not r.items and r.rejects[0]["reason"] == "parse_error"
    assert "I am not JSON" in r.rejects[0]["raw"]
    repair = server.requests[1]["messages"]
    assert repair[-2]["content"] == "I am not JSON at all" and "could not be used" in repair[-1]["content"]


def test_repair_succeeds(server):
    server.script.append("garbage")
    _, out = _run(server, _jobs(1), concurrency=1)
    assert out["j0"].items


def test_calls_are_cached(server):
    cache = MemoryCache()
    _run(server, _jobs(2), cache=cache)
    n = len(server.requests)
    _, out = _run(server, _jobs(2), cache=cache)
    assert len(server.requests) == n  # nothing sent again
    assert all(r.usage.cached_calls == 1 for r in out.values())


def test_concurrency_is_bounded(server):
    server.delay = 0.2
    t = time.perf_counter()
    _run(server, _jobs(8), concurrency=4)
    assert 0.35 <= time.perf_counter() - t < 1.5  # two waves of four


def test_key_is_not_in_repr_or_errors(server):
    server.script.extend(["500"] * 10)
    teacher, out = _run(server, _jobs(1), max_retries=0)
    assert "sk-test" not in repr(teacher) and "sk-test" not in out["j0"].error


def test_unknown_prefix_lists_the_known_ones():
    import pytest

    from generators.errors import UnknownTeacherError

    with pytest.raises(UnknownTeacherError, match="'openai:'.*'rules'"):
        get_teacher("anthropic:claude")
