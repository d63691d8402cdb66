"""The ``[eval]`` section: how the setups are scored (``EvalConfig``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from loop.config import StageConfig
from loop.eval.setups import setup_names


class EvalConfig(StageConfig):
    """How the setups are scored."""

    section: ClassVar[str] = "eval"

    setups: list[str] = Field(default_factory=setup_names, description="Setups to score.")
    student: str | None = Field(None, description="Student URI for base/rag (default: the tuned model's student).")
    max_new_tokens: int = Field(48, ge=1, description="Answer length limit, the same for every setup.")
    k: int | None = Field(None, ge=1, description="Chunks retrieved per question (default: the index's k).")
    context_tokens: int = Field(1500, ge=64, description="Token budget of the RAG context block.")
    max_questions: int | None = Field(None, ge=1, description="Score only the first N questions.")
    n_boot: int = Field(2000, ge=100, description="Bootstrap resamples per interval.")
    seed: int = Field(0, description="Seed of the bootstrap.")
    judge: str | None = Field(None, description="Teacher URI of an LLM judge: a reference-guided correctness grade per answer.")
    judge_url: str | None = Field(None, description="Base URL of the judge's OpenAI-compatible server.")
    style: str | None = Field(None, description="A style guide file (plain text): with a judge, "
                              "every answer gets a style grade against it.")
    batch_size: int = Field(16, ge=1, description="Questions answered per generate call (fewer "
                            "when long prompts would not fit memory_budget).")
    memory_budget: str = Field(
        "auto", description="Memory answering may use beyond the loaded models: auto (30% of "
        "free RAM on CPU, 85% of free GPU memory), a size (6GB) or a share (0.5).")
    device: str = Field("auto", description="auto | cpu | cuda | mps.")
    dtype: str = Field("auto", description="auto | bf16 | fp16 | fp32.")
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the student's checkpoint (off by default).")
    allow_pickle: bool = Field(
        False, description="Load a student that has only pickle weights (.bin); they can run "
                           "code when loaded, so only for a trusted source.")
    serve: dict[str, str] = Field(
        default_factory=dict,
        description="Setups answered by an OpenAI-compatible endpoint instead of in-process "
        "(setup -> openai:NAME@URL; vLLM, llama-server, Ollama, transformers serve): the same "
        "prompts, greedy, max_new_tokens; the key from OPENAI_API_KEY.")
    serve_concurrency: int | None = Field(
        None, ge=1, le=512, description="Requests in flight at once per served setup (default 8).")
    serve_timeout: float | None = Field(
        None, gt=0, description="Seconds a served setup's request may wait with nothing "
        "received (an idle timeout: a reply that keeps streaming is never cut; default 120).")
    serve_retries: int | None = Field(
        None, ge=0, le=20, description="Retries of a failed request to a served setup (default 5).")
    engine: str | None = Field(
        None, description="Start a serving engine on the workspace's models and answer the "
        "setups through it: transformers (transformers serve: the student and each model "
        "merged), vllm (one base, the adapters per request), llamacpp (llama-server on each "
        "GGUF); stopped when the eval ends.")
    engine_timeout: float | None = Field(
        None, gt=0, description="Seconds an engine may take to be ready (default 600).")
    as_exported: str | None = Field(
        None, description="A file `synthloop export` wrote (a .gguf of any quant, or a merged "
        "folder), scored as the 'exported' setup beside tuned on the same questions: the "
        "report gives the paired difference, what the export (quantization) cost.")

    @classmethod
    def choices(cls) -> dict[str, list[str]]:
        from loop.eval.engines import ENGINES

        return {"setups": setup_names(), "engine": list(ENGINES)}

    @field_validator("serve")
    @classmethod
    def _served(cls, value: dict[str, str]) -> dict[str, str]:
        from loop.eval.served import check_serve

        return check_serve(value)

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str | None) -> str | None:
        from loop.eval.engines import ENGINES

        if value and value not in ENGINES:
            raise ValueError(f"unknown engine {value!r} (known: {', '.join(ENGINES)})")
        return value or None

    execution_only: ClassVar[frozenset[str]] = frozenset(
        {"batch_size", "device", "dtype", "judge_url", "trust_remote_code", "allow_pickle",
         "memory_budget", "serve_concurrency", "serve_timeout", "serve_retries", "engine_timeout"})
    # fields added later: left out while empty, so earlier evaluations keep their ids
    omit_when_empty: ClassVar[frozenset[str]] = frozenset(
        {"style", "serve", "serve_concurrency", "serve_timeout", "serve_retries", "as_exported",
         "engine", "engine_timeout"})
