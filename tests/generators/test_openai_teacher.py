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


# -- streaming: the timeout is an idle one --------------------------------------------------------

def _teacher(server, **kw):
    from generators.teachers.openai import OpenAITeacher

    kw = {"api_key": "sk-test", "timeout": 2.0, "backoff": 0.01, **kw}
    return OpenAITeacher("test-model", base_url=server.url, **kw)


def test_streamed_replies_are_parsed_and_usage_counted(server):
    server.streams = True
    _, out = _run(server, _jobs(3))
    assert all(not r.error and r.items for r in out.values())
    assert sum(r.usage.prompt_tokens for r in out.values()) == 33
    assert server.requests[0]["stream"] is True
    assert server.requests[0]["stream_options"] == {"include_usage": True}


def test_a_slow_stream_that_makes_progress_is_never_timed_out(server):
    """A piece every 0.3 s for over twice the idle timeout: one request, and it succeeds."""
    server.streams, server.drip, server.piece = True, 0.3, 4
    server.reply = lambda messages: "one two three four five six seven eight nine ten"
    t = time.perf_counter()
    done = _teacher(server, timeout=1.0, max_retries=0).complete([{"role": "user", "content": "count"}])
    assert time.perf_counter() - t > 2.0
    assert done.text == "one two three four five six seven eight nine ten"
    assert done.completion_tokens == 7 and len(server.requests) == 1


def test_a_stream_that_stalls_past_the_idle_timeout_fails_with_a_clear_line(server):
    import pytest

    from generators.errors import TeacherError

    server.streams, server.hang = True, 2.0
    server.script.append("stall")
    t = time.perf_counter()
    with pytest.raises(TeacherError, match=r"^timeout: nothing received for 0.5s \(gave up after 1 attempts\)$"):
        _teacher(server, timeout=0.5, max_retries=0).complete([{"role": "user", "content": "x"}])
    assert time.perf_counter() - t < 1.5


def test_total_timeout_still_caps_a_whole_request(server):
    import pytest

    from generators.errors import TeacherError

    server.streams, server.drip, server.piece = True, 0.3, 4
    server.reply = lambda messages: "a reply that takes a good while to stream"
    with pytest.raises(TeacherError, match=r"timeout: the reply took over total_timeout \(1s\)"):
        _teacher(server, timeout=1.0, total_timeout=1.0, max_retries=0).complete(
            [{"role": "user", "content": "x"}])


def test_a_stream_cut_short_is_retried(server):
    server.streams = True
    server.script.append("cut")
    _, out = _run(server, _jobs(1), concurrency=1)
    assert out["j0"].items and len(server.requests) == 2


def test_a_server_that_refuses_the_stream_fields_is_asked_without_them(server):
    server.streams = True
    server.script.append("refuse-stream")
    _, out = _run(server, _jobs(2), concurrency=1)
    assert all(r.items for r in out.values())
    assert server.requests[0].get("stream") and not any(r.get("stream") for r in server.requests[1:])
    assert len(server.requests) == 3  # the refused one, its plain retry, the next job


def test_a_key_split_across_streamed_pieces_is_cut_out(server):
    key = "sk-proj-0123456789abcdefSECRET"
    server.streams, server.piece = True, 3
    server.reply = lambda messages: f"your key is {key} ok"
    done = _teacher(server, api_key=key).complete([{"role": "user", "content": "x"}])
    assert key not in done.text and "SECRET" not in done.text and done.text.endswith(" ok")


def test_a_huge_stream_is_refused_while_reading(server):
    import pytest

    from generators.errors import TeacherError

    server.streams, server.piece = True, 512
    server.reply = lambda messages: "x" * 40_000
    with pytest.raises(TeacherError, match=r"reply of over \d+ bytes is larger than max_reply_kb \(4 KB\)"):
        _teacher(server, max_reply_kb=4, max_retries=0).complete([{"role": "user", "content": "x"}])
