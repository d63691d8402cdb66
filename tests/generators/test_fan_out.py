"""Teacher fan-out: several OpenAI-compatible servers share the requests (least outstanding
first); one that dies mid-run is backed off and the others finish the work; the dataset is
the one a single server makes (the call cache does not know which server answered)."""

from __future__ import annotations

from loop.generate import GenerateConfig, generate
from loop.ingest import ingest
from loop.samples import load_samples
from loop.workspace import Workspace


def _run(root, docs, url):
    with Workspace(root) as ws:
        ingest(ws, [docs])
        cfg = GenerateConfig(teacher="openai:m", teacher_url=url, tasks=["qa"], limit=12,
                             concurrency=4, max_retries=4, timeout=10)
        r = generate(ws, cfg)
        rows = sorted((s["id"], s["messages"][0]["content"]) for s in load_samples(ws).to_list())
        return r, rows


def test_two_servers_one_dying_mid_run_give_the_one_server_dataset(tmp_path, example_dir, servers):
    one, a, b = servers(3)
    single, single_rows = _run(tmp_path / "one", example_dir, one.url)
    b.die_after = 3  # serves three requests, then drops the fourth and is gone
    both, both_rows = _run(tmp_path / "two", example_dir, f"{a.url}, {b.url}")
    assert not both.failed_chunks, both.failed_chunks
    assert both.dataset_id == single.dataset_id and both_rows == single_rows
    assert len(b.requests) >= 4 and b.stopped  # it took its share, then died (a request in
    # flight as it went down may also be counted)
    assert len(a.requests) >= 12 - 3  # the other carried on with the rest
    # a re-run is a cache hit whichever server is up: the call cache ignores the server
    again, again_rows = _run(tmp_path / "two", example_dir, a.url)
    assert again.cached and again_rows == single_rows


def test_requests_go_to_the_server_with_fewest_outstanding(servers):
    from generators.teachers.openai import OpenAITeacher

    a, b = servers(2)
    a.delay = 0.3  # a slow server: its requests stay outstanding, the fast one takes more
    t = OpenAITeacher("m", base_url=f"{a.url},{b.url}", concurrency=4, max_retries=0)
    out = []
    t.complete_many([[{"role": "user", "content": f"q{i}"}] for i in range(24)],
                    lambda i, r: out.append(r))
    assert len(out) == 24 and not any(isinstance(r, Exception) for r in out)
    assert len(b.requests) > 2 * len(a.requests) and len(a.requests) > 0


def test_a_list_of_urls_in_the_config_is_the_same_as_commas():
    cfg = GenerateConfig(teacher_url=["http://a/v1", "http://b/v1"])
    assert cfg.teacher_url == "http://a/v1,http://b/v1"
