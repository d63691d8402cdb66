"""The ``[ingest]`` section: how documents are read and chunked (``IngestConfig``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from loop.config import StageConfig


class IngestConfig(StageConfig):
    """How documents become chunks."""

    section: ClassVar[str] = "ingest"

    # follow_symlinks changes which files are found, not how they are chunked: the corpus id
    # already follows from the documents it holds.
    execution_only: ClassVar[frozenset[str]] = frozenset({"workers", "follow_symlinks"})

    chunk_tokens: int = Field(
        220, ge=16, le=8192,
        description="Token budget of one chunk (estimated as words x tokens_per_word); "
        "the default fits the default embedder's 256-token window.",
    )
    overlap_tokens: int = Field(
        32, ge=0, le=4096, description="Tokens of the previous chunk repeated at the start of the next."
    )
    min_chunk_tokens: int = Field(
        24, ge=0, description="A section shorter than this is merged with the next one."
    )
    tokens_per_word: float = Field(
        1.3, gt=0.5, le=4.0,
        description="Estimated tokens per whitespace word (1.3 fits WordPiece/BPE on English prose).",
    )
    tokenizer: str = Field(
        "st:all-MiniLM-L6-v2",
        description="The embedder whose tokenizer measures every chunk, so none overflows "
        "its window (st:NAME, or a folder with tokenizer.json; '' estimates from words). "
        "synthloop run sets it to the index's embedder.",
    )
    max_file_mb: float = Field(
        256.0, gt=0, description="Files larger than this are skipped with a reason."
    )
    workers: int = Field(
        0, ge=0, le=64,
        description="Processes that parse and chunk in parallel (0: one per core; "
        "small runs stay in one process).",
    )
    follow_symlinks: bool = Field(
        False, description="Follow symlinks whose target lies outside the folder given "
        "(by default they are skipped with the reason).",
    )

    @model_validator(mode="after")
    def _overlap_below_budget(self) -> IngestConfig:
        # an overlap of a whole chunk or more repeats every chunk into the next without end
        if self.overlap_tokens >= self.chunk_tokens:
            raise ValueError(f"overlap_tokens ({self.overlap_tokens}) must be smaller than "
                             f"chunk_tokens ({self.chunk_tokens})")
        return self
