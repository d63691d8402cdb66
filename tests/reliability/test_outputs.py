"""`export --out` and `--gguf` never replace what is not a regular file (a device, a FIFO,
a symlink, a folder), refuse an existing file unless `--force`, and keep a forced file's
mode. Each refusal is one line, exit 1, and leaves the path as it was."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from loop.cli import app
from loop.workspace import Workspace

runner = CliRunner()


@pytest.fixture
def ws_root(tmp_path, rel):
    root = tmp_path / "ws"
    with Workspace(root) as ws:
        rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows())
    return root


def _export(root, out, *extra):
    return runner.invoke(app, ["export", "-w", str(root), "-o", str(out), *extra, "--json"])


def _error(r) -> str:
    return json.loads(r.stdout)["error"]


def test_export_refuses_a_fifo(ws_root, tmp_path, rel):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    for extra in ([], ["--force"]):
        r = _export(ws_root, fifo, *extra)
        assert r.exit_code == 1 and "not a regular file" in _error(r), r.output
        assert stat.S_ISFIFO(fifo.lstat().st_mode)
    rel.record("hostile: export --out FIFO", refused=True)


def test_export_refuses_a_device_node_and_a_socket(ws_root, tmp_path):
    """A copy of /dev/null's node made in tmp (as root; mknod needs it) and a unix socket
    (anyone): neither is replaced. The real /dev/null is never named: code without this
    check would replace it."""
    import socket

    nodes = []
    if os.geteuid() == 0:
        dev = tmp_path / "null"
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        nodes.append((dev, stat.S_ISCHR))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s"))
    nodes.append((tmp_path / "s", stat.S_ISSOCK))
    try:
        for node, kind in nodes:
            for extra in ([], ["--force"]):
                r = _export(ws_root, node, *extra)
                assert r.exit_code == 1 and "not a regular file" in _error(r), r.output
            assert kind(node.lstat().st_mode)
    finally:
        sock.close()


def test_export_refuses_a_symlink(ws_root, tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    for extra in ([], ["--force"]):
        r = _export(ws_root, link, *extra)
        assert r.exit_code == 1 and "is a symlink" in _error(r), r.output
    assert link.is_symlink() and target.read_text() == "keep me\n"


def test_export_refuses_an_existing_file_unless_forced_and_keeps_its_mode(ws_root, tmp_path):
    out = tmp_path / "train.jsonl"
    out.write_text("old\n")
    out.chmod(0o600)
    r = _export(ws_root, out)
    assert r.exit_code == 1 and "exists" in _error(r) and "--force" in _error(r), r.output
    assert out.read_text() == "old\n"
    r = _export(ws_root, out, "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text() != "old\n" and json.loads(out.read_text().splitlines()[0])["messages"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.part"))


def test_export_refuses_a_folder_and_a_planted_part_link_is_not_followed(ws_root, tmp_path):
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    r = _export(ws_root, folder, "--force")
    assert r.exit_code == 1 and "is a folder" in _error(r), r.output
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (tmp_path / ".new.jsonl.part").symlink_to(victim)  # where the writer writes first
    r = _export(ws_root, tmp_path / "new.jsonl")
    assert r.exit_code == 0, r.output
    assert victim.read_text() == "untouched\n" and (tmp_path / "new.jsonl").is_file()


def test_export_merge_refuses_a_file_or_link_in_place_of_its_folder(ws_root, tmp_path):
    """`--merge` writes a folder; a file or a symlink at its path is one line, before any
    model is loaded."""
    from loop.errors import InputError
    from loop.models.merge import export_merged

    regular = tmp_path / "merged"
    regular.write_text("x")
    link = tmp_path / "merged-link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with Workspace(ws_root) as ws:
        for path in (regular, link):
            with pytest.raises(InputError, match="is not a folder"):
                export_merged(ws, path, "no-such-model")
    assert regular.read_text() == "x" and link.is_symlink()


def test_gguf_export_checks_its_three_paths_first(ws_root, tmp_path):
    """The GGUF export refuses before loading any model: the .gguf, the Modelfile and the
    README beside it follow the same rules."""
    from loop.errors import InputError
    from loop.export import export_gguf

    (tmp_path / "m.Modelfile").write_text("mine\n")
    with Workspace(ws_root) as ws, pytest.raises(InputError, match="m.Modelfile exists"):
        export_gguf(ws, tmp_path / "m.gguf", "f16", "no-such-model")
    assert (tmp_path / "m.Modelfile").read_text() == "mine\n"
