"""The ``[generate]`` stage config (light to import: the dashboard builds its form from it)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from loop.config import StageConfig


class GenerateConfig(StageConfig):
    """How the teacher turns chunks into samples, and which samples survive the filters."""

    section: ClassVar[str] = "generate"

    teacher: str = Field("rules", description="Teacher URI: rules | openai:MODEL | hf:PATH_OR_ID.")
    tasks: list[str] = Field(["knowledge", "raft"], description="Tasks to generate (knowledge: "
                             "every fact as closed-book questions, several phrasings each).")
    per_chunk: int = Field(3, ge=1, le=50, description="Items asked for per chunk and task.")
    paraphrases: int = Field(
        3, ge=1, le=10, description="Phrasings per fact of the knowledge task (measured at 8 "
        "exposures per fact: 5 taught closed-book no more than 3 and forgot more; "
        "docs/benchmarks.md, 'Phrasings per fact').")
    limit: int | None = Field(None, ge=1, description="Use at most this many chunks (spread over the corpus).")
    eval_size: int = Field(
        150, ge=1, le=100_000,
        description="Questions a generated eval set aims at (150 lets the paired intervals "
        "resolve a 0.05 difference); drawn from chunks training does not use first. A corpus "
        "that cannot give that many gets a warning with the number reached.")
    focus: list[str] | None = Field(None, description="Only these chunk ids (targeted generation for missed questions).")
    source_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Preferred sources, {glob: weight}: a chunk whose title or source path "
                    "(or the path's tail after any /: notices/* matches docs/notices/a.txt) "
                    "matches a glob (fnmatch, case-insensitive) is asked per_chunk x the "
                    "largest matching weight (> 0) items per task (rounded, 1 to 50). "
                    "Flag: --prefer GLOB[=W], which replaces the config's.")
    labels: str | None = Field(
        None, description="Labels of the classify task: a file with one label per line, or "
        "comma-separated labels (default: the corpus's structure, see label_by).")
    label_by: Literal["folder", "title", "section"] | None = Field(
        None, description="Where classify takes each chunk's label when no labels are given: "
        "folder (default: the folder of its document) | title (its document's title) | section "
        "(its first heading). The rules teacher can label this way offline.")
    format: str | None = Field(
        None, description="An answer format every generated answer must follow: a JSON spec or "
        "KEY=VALUE;... pairs (max_words, regex, json_schema, headings, bullets). The teacher is "
        "told, answers that break it are dropped, and generated eval items carry it.")
    val_share: float = Field(0.1, ge=0, lt=1, description="Share of chunks whose samples go to validation.")
    raft_distractors: int = Field(3, ge=0, le=20, description="Distractor chunks shown with each raft question.")
    raft_oracle_share: float = Field(0.8, ge=0, le=1, description="Share of raft rows that show the oracle chunk.")
    raft_reasoning: bool = Field(
        True, description="Raft answers quote their evidence before 'Answer:' (RAFT's chain of "
        "thought); false: the short answer alone, for a short answer budget at eval.")
    context_tokens: int = Field(1500, ge=64, description="Token budget of a raft row's context block (match eval's).")
    temperature: float = Field(0.0, ge=0, le=2, description="Teacher sampling temperature.")
    max_tokens: int = Field(768, ge=16, description="Most tokens a teacher reply may have.")
    seed: int = Field(0, description="Seed for chunk sampling, distractors and the teacher.")
    grounding_min: float = Field(0.5, ge=0, le=1, description="Least share of answer words found in the chunk.")
    near_dup_threshold: float = Field(0.92, gt=0, le=1, description="Question similarity above which a sample is a near-duplicate.")
    decontam_threshold: float = Field(0.85, gt=0, le=1, description="Similarity to an eval question above which a sample is removed.")
    max_answer_chars: int = Field(2000, ge=1, description="Longest answer kept.")
    dedup_embedder: str | None = Field(None, description="Embedder URI (st:NAME) for near-duplicate and decontamination similarity; default: character n-gram vectors.")
    judge: str | None = Field(None, description="Teacher URI of an LLM judge; samples scoring below judge_min are removed.")
    judge_min: int = Field(3, ge=1, le=5, description="Least judge score kept (1-5).")
    teacher_url: str | None = Field(
        None, description="Base URL of an OpenAI-compatible server (else $OPENAI_BASE_URL); "
        "several, comma-separated (a list in the config file), share the requests: the least "
        "busy first, a failing one backed off while the others carry on.")

    @field_validator("source_weights")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        if value:  # imported only then: this module stays light for the dashboard
            from retrieval.fusion import valid_source_weights

            return valid_source_weights(value)
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | None) -> str | None:
        from generators.formats import FormatError, parse_spec

        try:
            parse_spec(value)
        except FormatError as e:
            raise ValueError(str(e)) from None
        return value

    @field_validator("teacher_url", mode="before")
    @classmethod
    def _urls(cls, value: object) -> object:
        return ",".join(str(v).strip() for v in value) if isinstance(value, list | tuple) else value
    concurrency: int = Field(8, ge=1, le=512, description="Teacher requests in flight at once.")
    timeout: float = Field(120.0, gt=0, description="Seconds a teacher request may wait with nothing "
                           "arriving (for the reply to start, or for its next streamed chunk).")
    total_timeout: float | None = Field(None, gt=0, description="Seconds a whole teacher request "
                                        "may take, however steadily it streams (none by default).")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a failed teacher request.")
    max_reply_kb: int = Field(1024, ge=1, description="A teacher reply larger than this is refused "
                              "(its job fails with that reason) rather than stored.")
    batch_size: int = Field(8, ge=1, description="Prompts per batch for an hf: teacher.")
    price_per_1k: float | None = Field(None, ge=0, description="Price per 1k tokens, for the cost estimate.")
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with an hf: teacher's checkpoint (off by default).")
    allow_pickle: bool = Field(
        False, description="Load an hf: teacher that has only pickle weights (.bin); they can run "
                           "code when loaded, so only for a trusted source.")

    @classmethod
    def choices(cls) -> dict[str, list[str]]:
        from generators.tasks import TASKS

        return {"tasks": [n for n, t in TASKS.items() if t.row_kind != "eval"]}

    omit_when_empty: ClassVar[frozenset[str]] = frozenset({"source_weights", "labels", "label_by", "format"})
    execution_only: ClassVar[frozenset[str]] = frozenset(
        {"teacher_url", "concurrency", "timeout", "total_timeout", "max_retries", "max_reply_kb",
         "batch_size", "price_per_1k", "trust_remote_code", "allow_pickle"}
    )
