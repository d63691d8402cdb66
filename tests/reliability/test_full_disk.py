"""A full disk during a write, simulated with a file-size limit (RLIMIT_FSIZE, SIGXFSZ
ignored so a write past it fails with EFBIG, as on a full disk): each verb fails with one
clear line, keeps no half-written artefact as complete, leaves the ledger intact, and a
re-run with the limit lifted completes with the result an unlimited run gives.

The limits are chosen so the failing write differs: the ledger, the Arrow dataset, the
index's vectors, a training checkpoint, an export file."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from loop.workspace import ARTEFACT_KINDS, Workspace

_LIMITED = ("import os, resource, signal, sys; lim = int(sys.argv[1]); "
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (lim, lim)); "
            "os.execv(sys.argv[2], sys.argv[2:])")

# bytes a file may grow to; each stage gets limits that make a different write fail first
LIMITS = {
    "ingest": [150_000, 170_000],
    "generate": [150_000, 300_000],
    "index": [200_000],
    "train": [150_000],
    "export": [100_000],
}
KEYS = {"ingest": "corpus_id", "generate": "dataset_id", "index": "index_id", "train": "model_id",
        "export": "rows"}


def _prepare(stage, tmp_path, request, rel):
    """A workspace ready for ``stage`` and the arguments of the stage's command."""
    from loop.generate import generate
    from loop.ingest import ingest

    root = tmp_path / "ws"
    example = request.getfixturevalue("example_dir")
    if stage == "ingest":
        return ["ingest", example, "-w", root, "--json"]
    if stage == "train":
        student = request.getfixturevalue("tiny_student")
        (tmp_path / "t.toml").write_text(
            f'[train]\nstudent = "hf:{student}"\nmax_steps = 8\nsave_steps = 4\neval_steps = 4\n'
            'patience = 0\nbatch_size = 4\nmax_length = 128\ndevice = "cpu"\ndtype = "fp32"\n')
        with Workspace(root) as ws:
            rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows())
        return ["train", "-w", root, "-c", tmp_path / "t.toml", "--json"]
    if stage == "index":  # 200 distinct sentences: the vectors (300 kB) outgrow the ledger
        with Workspace(root) as ws:
            ingest(ws, [rel.write_docs(tmp_path / "docs", rel.varied_docs(50))])
        return ["index", "-w", root, "--json"]
    with Workspace(root) as ws:
        ingest(ws, [example])
        if stage == "export":
            from loop.generate import GenerateConfig

            generate(ws, GenerateConfig(limit=80))
    if stage == "generate":
        return ["generate", "-w", root, "--limit", "80", "--json"]
    return ["export", "-w", root, "-o", tmp_path / "out" / "train.jsonl", "--json"]


# The default run takes the quick cases (~20 s); SYNTHLOOP_TRIALS (bench/reliability.py)
# adds index and train (~25 s and ~60 s on 2 busy cores: three model loads each).
DEFAULT = {("ingest", 150_000), ("generate", 300_000), ("export", 100_000)}


def _cases():
    everything = "SYNTHLOOP_TRIALS" in os.environ
    for stage, limits in LIMITS.items():
        for limit in limits:
            if everything or (stage, limit) in DEFAULT:
                yield pytest.param(stage, limit, id=f"{stage}-{limit // 1000}k")


@pytest.mark.parametrize(("stage", "limit"), list(_cases()))
def test_full_disk_fails_clearly_keeps_nothing_half_written_and_rerun_completes(
        stage, limit, tmp_path, request, rel):
    args = _prepare(stage, tmp_path, request, rel)
    root = tmp_path / "ws"
    clean = tmp_path / "clean"
    if root.exists():
        shutil.copytree(root, clean)
    before = {f for k in ARTEFACT_KINDS for f in (root / k).glob("*")}
    limited = _run_limited(limit, args, rel)
    again = rel.cli(*args)
    out = tmp_path / "out" / "train.jsonl"  # export: the reference writes its own file
    reference = rel.cli(*[clean if a == root else tmp_path / "reference.jsonl" if a == out else a
                          for a in args])
    new = {f for k in ARTEFACT_KINDS for f in (root / k).glob("*")} - before
    rel.record(f"full disk during {stage}", trial=f"limit {limit} B", failed=limited.returncode == 1,
               message=json.loads(limited.stdout)["error"] if limited.returncode == 1 else "",
               integrity=rel.integrity(root), rerun_ok=again.returncode == 0)
    assert limited.returncode in (0, 1), limited.stderr[-3000:]
    assert "Traceback" not in limited.stderr, limited.stderr[-3000:]
    if limited.returncode == 1:
        error = json.loads(limited.stdout)["error"]
        assert any(w in error for w in ("disk", "too large", "could not write", "cannot write")), error
    assert rel.integrity(root) == "ok"
    assert all((f / "synthloop.json").exists() for f in new)  # nothing half-written kept
    assert not list((tmp_path / "out").glob(".*.part")) if stage == "export" else True
    assert again.returncode == 0, again.stderr[-3000:]
    assert reference.returncode == 0, reference.stderr[-3000:]
    key = KEYS[stage]
    assert json.loads(again.stdout)[key] == json.loads(reference.stdout)[key]


def _run_limited(limit, args, rel):
    import subprocess

    return subprocess.run([sys.executable, "-c", _LIMITED, str(limit), str(rel.SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=200)


def test_the_limit_really_limits(tmp_path):
    """The harness itself: a write past the limit fails with EFBIG, not a signal."""
    import subprocess

    code = "open(r'%s', 'wb').write(b'x' * 50_000)" % (tmp_path / "big")
    r = subprocess.run([sys.executable, "-c", _LIMITED, "10000", sys.executable, "-c", code],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "File too large" in r.stderr
