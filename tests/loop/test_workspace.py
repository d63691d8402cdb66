"""Workspace: the write lock between processes, and atomic artefact folders."""

import subprocess
import sys
import textwrap

import pytest

from loop.errors import WorkspaceBusyError
from loop.workspace import Workspace, lock_holder


def _hold_lock(path):
    code = textwrap.dedent(f"""
        import sys, time
        from loop.workspace import Workspace
        ws = Workspace({str(path)!r})
        with ws.writing("generate --teacher rules"):
            print("locked", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    proc = _hold_lock(tmp_path / "ws")
    try:
        ws = Workspace(tmp_path / "ws")
        with pytest.raises(WorkspaceBusyError) as err, ws.writing("ingest"):
            pass
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and "generate --teacher rules" in msg
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)
    with ws.writing("ingest"):  # released when the holder exits
        assert ws.locked


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    proc = _hold_lock(tmp_path / "ws")
    proc.kill()
    proc.wait(timeout=30)
    ws = Workspace(tmp_path / "ws")
    with ws.writing("ingest"):
        assert ws.locked


def test_lock_holder_names_a_live_writer_and_not_a_killed_one(tmp_path):
    """What the dashboard reads to tell a running CLI stage from a row a killed one left."""
    assert lock_holder(tmp_path / "ws") is None  # no workspace, no lock file
    proc = _hold_lock(tmp_path / "ws")
    holder = lock_holder(tmp_path / "ws")
    assert holder["pid"] == proc.pid and holder["command"] == "generate --teacher rules"
    proc.kill()
    proc.wait(timeout=30)
    assert (tmp_path / "ws" / ".lock").read_text()  # a killed holder leaves its words behind
    assert lock_holder(tmp_path / "ws") is None


def test_atomic_dir_renames_on_success_and_cleans_on_failure(tmp_path):
    ws = Workspace(tmp_path / "ws")
    final = ws.artefact("corpus", "abc")
    with ws.writing():
        with pytest.raises(RuntimeError), ws.atomic_dir(final) as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("disk full")
        assert not final.exists() and not any((ws.root / "tmp").iterdir())
        with ws.atomic_dir(final) as tmp:
            (tmp / "whole").write_text("x")
    assert (final / "whole").exists()


def test_leftovers_of_a_killed_writer_are_cleaned(tmp_path):
    ws = Workspace(tmp_path / "ws")
    (ws.dir("tmp") / "corpus.dead").mkdir()
    with ws.writing():
        assert not any((ws.root / "tmp").iterdir())


def test_artefact_ids_cannot_escape_the_workspace(tmp_path):
    from loop.errors import WorkspaceError

    ws = Workspace(tmp_path / "ws")
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(WorkspaceError):
            ws.artefact("corpus", bad)


def test_an_empty_dataset_saves_and_loads_back(tmp_path):
    # datasets writes no shard for an empty dataset by default and then cannot load it (a
    # generate run whose every job was rejected: a 135M teacher's usual outcome)
    from datasets import Dataset, load_from_disk

    from loop.workspace import save_dataset

    save_dataset(Dataset.from_dict({"id": [], "task": []}), tmp_path / "empty")
    back = load_from_disk(str(tmp_path / "empty"))
    assert len(back) == 0 and back.column_names == ["id", "task"]
