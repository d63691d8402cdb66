"""Find the files under the PATH arguments: sorted, recursive, safe against symlink loops.

A symlink inside a folder whose target resolves outside that folder is skipped with the
reason unless ``follow_symlinks``: ``docs/etc -> /etc`` would otherwise put all of /etc into
the corpus, and from there into teacher prompts (possibly a remote API) and exports. A PATH
argument that is itself a link is followed: the user named it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    """A regular file to read; ``source`` is the portable name shown in the corpus."""

    path: str
    source: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


def discover(paths: list[str | Path], *, follow_symlinks: bool = False) -> Iterator[Found | Skipped]:
    """Yield every file under ``paths`` in a stable order, or why it was passed over."""
    for raw in paths:
        root = os.path.abspath(os.fspath(raw))
        if not os.path.lexists(root):
            yield Skipped(str(raw), "no such file or folder")
            continue
        st, problem = _stat(root)
        if problem:
            yield Skipped(root, problem)
        elif stat.S_ISDIR(st.st_mode):
            name = os.path.basename(root.rstrip(os.sep)) or "root"
            yield from _walk(root, name, follow_symlinks)
        elif stat.S_ISREG(st.st_mode):
            yield Found(root, os.path.basename(root), st.st_size, st.st_mtime_ns)
        else:
            yield Skipped(root, "not a regular file (device, socket or pipe)")


def _walk(root: str, prefix: str, follow_symlinks: bool = False) -> Iterator[Found | Skipped]:
    # An explicit stack, not recursion, so a very deep tree cannot overflow Python's stack;
    # the real paths of the folders being walked detect symlink loops.
    inside = os.path.realpath(root)
    stack: list[tuple[str, str, frozenset[str]]] = [(root, prefix, frozenset())]
    while stack:
        folder, display, ancestors = stack.pop()
        real = os.path.realpath(folder)
        if real in ancestors:
            yield Skipped(folder, "symlink loop (links back to a folder that contains it)")
            continue
        ancestors = ancestors | {real}
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            yield Skipped(folder, "permission denied (folder)")
            continue
        except OSError as e:
            yield Skipped(folder, f"unreadable folder: {e.strerror or e}")
            continue
        subfolders = []
        for entry in entries:
            path = entry.path
            shown = f"{display}/{entry.name}"
            if entry.name.startswith("."):
                yield Skipped(path, "hidden file or folder (not ingested)")
                continue
            if not _is_utf8(entry.name):  # its source name could not be stored or printed
                yield Skipped(_printable(path), "file name is not valid UTF-8 (rename it to ingest it)")
                continue
            st, problem = _stat(path)
            if problem:
                yield Skipped(path, problem)
            elif not follow_symlinks and entry.is_symlink() and not _within(path, inside):
                yield Skipped(path, f"symlink to {_printable(os.path.realpath(path))}, outside "
                                    f"the folder {_printable(root)} (not followed; pass "
                                    "--follow-symlinks to ingest it)")
            elif stat.S_ISDIR(st.st_mode):
                subfolders.append((path, shown, ancestors))
            elif stat.S_ISREG(st.st_mode):
                yield Found(path, shown, st.st_size, st.st_mtime_ns)
            else:
                yield Skipped(path, "not a regular file (device, socket or pipe)")
        stack.extend(reversed(subfolders))  # files first, then folders in name order


def _within(path: str, folder: str) -> bool:
    real = os.path.realpath(path)
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def _stat(path: str) -> tuple[os.stat_result | None, str | None]:
    try:
        return os.stat(path), None
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "symlink loop"
        if e.errno == errno.ENOENT and os.path.islink(path):
            return None, "broken symlink"
        if e.errno == errno.EACCES:
            return None, "permission denied"
        return None, f"cannot stat: {e.strerror or e}"


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (PEP 383)
        return False
    return True


def _printable(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
