"""Paths a user names for synthloop to write (``export --out``, ``--gguf``): what may be
replaced there, and how.

A rename replaces whatever is at the destination, a device node, a FIFO or a symlink as
readily as a file: ``export --out /dev/null`` run as root would swap the device for a
regular file. So only a regular file is ever replaced, only when the user said ``--force``,
and it keeps its mode (a mode-600 file stays 600).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from loop.errors import InputError


def claim(path: Path, *, force: bool = False) -> int | None:
    """Check that ``path`` may be written: absent, or a regular file and ``force``. Returns
    the mode the replacement keeps (None for a new file)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{path} is a symlink: synthloop does not write through or over one",
                         hint="name the file itself, or another path")
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path} is a folder", hint="name a file to write")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is not a regular file (a device, pipe or socket): "
                         "synthloop never replaces one", hint="name another path")
    if not force:
        raise InputError(f"{path} exists", hint="pass --force to replace it, or name another path")
    return stat.S_IMODE(st.st_mode)


def fresh_part(out: Path) -> Path:
    """The temporary file ``out`` is written to first: beside it, removed if a previous run
    (or anyone else) left one, so that the writer never follows a link planted there."""
    tmp = out.with_name(f".{out.name}.part")
    tmp.unlink(missing_ok=True)
    return tmp


def place(tmp: Path, out: Path, mode: int | None) -> None:
    """Rename the finished ``tmp`` onto ``out``, with ``mode`` if it replaces a file."""
    if mode is not None:
        os.chmod(tmp, mode)
    tmp.replace(out)


def write_text(out: Path, text: str, *, force: bool = False) -> None:
    """Write a small text file by the same rules (the GGUF export's Modelfile and README)."""
    mode = claim(out, force=force)
    tmp = fresh_part(out)
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        place(tmp, out, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
