"""Labels of a labelling task (classify): the user's list, or the corpus's own structure."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from generators.teachers import Chunk
from loop.errors import InputError
from loop.generate.config import GenerateConfig
from loop.workspace import Workspace


def task_labels(ws: Workspace, cfg: GenerateConfig,
                chunks: list[Chunk]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The allowed labels of a labelling task, and each chunk's own label when the corpus's
    structure gives it (none when the labels are the user's: a model teacher picks)."""
    from loop.goldset import read_text_file

    if cfg.labels:
        path = Path(cfg.labels)
        text = read_text_file(path) if path.is_file() else cfg.labels.replace(",", "\n")
        labels = tuple(dict.fromkeys(ln.strip() for ln in text.splitlines() if ln.strip()))
        if len(labels) < 2:
            raise InputError(f"--labels {cfg.labels}: classify needs at least two labels "
                             "(a file with one per line, or comma-separated)")
        return labels, {}
    by = cfg.label_by or "folder"
    label_of = {c.chunk_id: lab for c in chunks if (lab := structure_label(c, by))}
    labels = tuple(sorted(set(label_of.values())))
    if len(labels) < 2:
        raise InputError(f"classify: the corpus's structure by {by} gives {len(labels)} label(s); "
                         "it needs two or more", hint="try --label-by title|section, or "
                         "--labels FILE with a model teacher")
    return labels, label_of


def structure_label(chunk: Chunk, by: str) -> str:
    """A chunk's label from the corpus's structure: its document's folder, title or section."""
    if by == "title":
        return chunk.title.strip()
    if by == "section":
        for line in chunk.text.splitlines():
            if line.lstrip().startswith("#"):
                return line.lstrip("# ").strip()
        return chunk.title.strip()
    return PurePosixPath(chunk.source.replace("\\", "/")).parent.name
