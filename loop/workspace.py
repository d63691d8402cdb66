"""The workspace: a folder with the ledger, a write lock and content-addressed artefacts.

Layout::

    synthloop-work/
      synthloop.db          the SQLite ledger (WAL)
      .lock                 held (flock) by the one process writing the workspace
      corpus/<id>/          a datasets.Dataset of chunks + synthloop.json
      datasets/ index/ models/ evals/   (later stages)
      tmp/                  where artefacts are built before they are renamed into place

A folder under an artefact kind that exists is complete: stages build in ``tmp/`` and
rename into position last (``atomic_dir``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loop.errors import WorkspaceBusyError, WorkspaceError
from loop.ledger import Ledger

DEFAULT_WORKSPACE = "./synthloop-work"
ARTEFACT_KINDS = ("corpus", "datasets", "index", "models", "evals", "splits")

try:  # POSIX advisory locks; released by the kernel when the holder dies, even by kill -9.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class Workspace:
    """Open (and create) a workspace. Use ``writing()`` around anything that writes it."""

    def __init__(self, root: str | Path = DEFAULT_WORKSPACE, *, create: bool = True) -> None:
        self.root = Path(root).expanduser()
        if not self.root.exists():
            if not create:
                raise WorkspaceError(f"no workspace at {self.root}")
            try:
                self.root.mkdir(parents=True)
            except OSError as e:
                raise WorkspaceError(f"cannot create workspace {self.root}: {e.strerror}") from e
        elif not self.root.is_dir():
            raise WorkspaceError(f"workspace {self.root} exists and is not a folder")
        self._lock_fd: int | None = None
        self._lock_depth = 0
        self.ledger = Ledger(self.root / "synthloop.db")

    def close(self) -> None:
        self.ledger.close()
        self._release()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def dir(self, kind: str) -> Path:
        assert kind in ARTEFACT_KINDS or kind == "tmp", f"unknown artefact kind {kind}"
        path = self.root / kind
        path.mkdir(exist_ok=True)
        return path

    def eval_dir(self, eval_id: str) -> Path:
        """An evaluation's folder (``evals/<id>``: scores.json, predictions, report/)."""
        if eval_id.startswith("score-"):  # an id as 0.1 printed it
            eval_id = eval_id[len("score-"):]
        legacy = self.artefact("evals", f"score-{eval_id}")  # written before 0.2
        return legacy if legacy.exists() else self.artefact("evals", eval_id)

    def artefact(self, kind: str, artefact_id: str) -> Path:
        """The folder of one artefact; it exists only if the artefact is complete."""
        # Ids come from flags too (--dataset, --model, model:ID): none may leave its folder.
        if (not artefact_id or artefact_id.startswith(".")
                or any(c in artefact_id for c in ("/", "\\", "\x00", os.sep))):
            raise WorkspaceError(f"invalid artefact id {artefact_id!r}")
        return self.dir(kind) / artefact_id

    # -- the write lock ------------------------------------------------------------------

    @contextmanager
    def writing(self, command: str = "") -> Iterator[Workspace]:
        """Hold the workspace's exclusive write lock; a second writer gets WorkspaceBusyError."""
        self._acquire(command)
        try:
            yield self
        finally:
            self._release()

    def _acquire(self, command: str) -> None:
        if self._lock_depth:
            self._lock_depth += 1
            return
        path = self.root / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
                holder = _read_holder(fd)
                os.close(fd)
                raise WorkspaceBusyError(
                    f"workspace {self.root} is in use by {holder}",
                    hint="wait for it to finish or stop it; read-only commands still work",
                ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._lock_fd = fd
        self._lock_depth = 1
        self._clean_tmp()

    def _release(self) -> None:
        if self._lock_fd is None:
            return
        self._lock_depth -= 1
        if self._lock_depth > 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._lock_fd, 0)
        os.close(self._lock_fd)  # closing the descriptor drops the flock
        self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def _clean_tmp(self) -> None:
        # Under the lock no other writer runs, so whatever is left in tmp/ is from a
        # process that died mid-write: never complete, safe to delete.
        tmp = self.root / "tmp"
        if tmp.exists():
            for child in tmp.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)

    # -- atomic artefact folders -----------------------------------------------------------

    @contextmanager
    def atomic_dir(self, final: Path) -> Iterator[Path]:
        """Yield a fresh folder in tmp/; on success rename it to ``final``, else delete it."""
        assert self.locked, "atomic_dir needs the workspace write lock"
        tmp = self.dir("tmp") / f"{final.name}.{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # an identical artefact (same content hash) is already there
                shutil.rmtree(tmp)
            else:
                os.rename(tmp, final)
                _fsync_dir(final.parent)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, OSError) and disk_full(e):
                raise WorkspaceError(
                    f"could not write {final.parent.name}/{final.name}: {e.strerror or e}",
                    hint="is the disk full? nothing half-written was kept; "
                         "re-run the command once there is space") from e
            raise


_DISK_FULL = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))


def disk_full(e: OSError) -> bool:
    """A full disk, a quota or a file-size limit (some writers set no errno: Arrow says
    "File too large", numpy's short write "73728 requested and 49968 written")."""
    text = str(e).lower()
    return e.errno in _DISK_FULL or any(
        w in text for w in ("no space left", "file too large", "quota exceeded")) or bool(
        re.search(r"\d+ requested and \d+ written", text))


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_dataset(ds: Any, path: Path) -> None:
    """``Dataset.save_to_disk`` without its tqdm bar: stages report progress as events."""
    from datasets import disable_progress_bars

    disable_progress_bars()
    # An empty dataset saved with the default sharding writes no data file, and
    # load_from_disk then fails (datasets 5: IndexError in concat_tables): one shard always.
    ds.save_to_disk(str(path), num_shards=1 if len(ds) == 0 else None)


def load_dataset(path: Path, rebuild: str) -> Any:
    """An artefact's Dataset (memory-mapped), or, when its Arrow files were cut short or
    damaged since it was written, one line naming the folder and ``rebuild`` (the command
    that makes it again) instead of pyarrow's "Expected to read N bytes"."""
    from datasets import load_from_disk

    try:
        return load_from_disk(str(path))
    except (OSError, ValueError, IndexError) as e:  # pyarrow's ArrowInvalid is a ValueError
        if isinstance(e, FileNotFoundError) and not path.exists():
            raise
        raise WorkspaceError(f"{path} is damaged and cannot be read ({type(e).__name__}: "
                             f"{str(e)[:160]})",
                             hint=f"delete {path.parent} and {rebuild}") from e


def lock_holder(root: str | Path) -> dict[str, Any] | None:
    """Who writes the workspace now, read without taking the lock: the ``.lock`` file's
    pid, host, command and start, or None when nobody holds it. Its holder empties the file
    on release; one killed mid-run leaves its words behind, so a pid on this host that is no
    longer alive counts as nobody (a pid on another host is taken at its word)."""
    try:
        info = json.loads((Path(root) / ".lock").read_text() or "{}")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not info.get("pid"):
        return None
    if info.get("host") == socket.gethostname() and not _alive(int(info["pid"])):
        return None
    return info


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (
        f"pid {info.get('pid')} on {info.get('host')} "
        f"('{info.get('command')}', started {info.get('started')})"
    )


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
