"""The memory plan of a training run: micro-batch, accumulation and checkpointing that fit.

The Trainer's batch size is what a user asks for as the *effective* batch; how many rows go
through the model at once is decided here, from a memory budget, so a first real model does
not kill the machine (SmolLM2-135M at the old 8 x 1,024-token micro-batches needed ~40 GB).

The estimate is analytic, from the model's config and the longest row, with constants
measured on SmolLM2-135M (LoRA on every linear layer, SDPA attention, on CPU: one
1,024-token row peaked 4.4 GB above the weights in fp32, the formula says 5.0 GB; in bf16
autocast 2.9 GB, since norms, softmax and the LoRA path stay fp32: activations are counted
at 3 bytes an element, and the formula says 3.8 GB).
``bench/smollm2.py`` prints the default run's plan and estimate beside its measured peak.
No library does this for the CPU: accelerate's ``find_executable_batch_size`` retries after
a CUDA OOM, but on a CPU the kernel's OOM killer ends the process before any retry.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loop.errors import StageError

GB = 1024**3
# of available RAM: eval, the embedder and the OS share the machine, and on a CPU a larger
# micro-batch buys no speed (one 1,024-token row already keeps the matmuls busy: SmolLM2 in
# bf16 trained at ~180 tokens/s with 2 rows per micro-batch and ~190 with 1)
CPU_SHARE = 0.3
GPU_SHARE = 0.85  # of the GPU's free memory
RUNTIME_BYTES = int(0.6 * GB)  # torch, tokenizers, datasets and the Trainer themselves


@dataclass
class MemoryPlan:
    """What ``train --json`` reports under ``memory``: the budget, the plan, its estimate
    and (after training) the measured peak of the process."""

    budget_bytes: int
    micro_batch: int
    grad_accum: int
    gradient_checkpointing: bool
    estimate_bytes: int
    row_tokens: int
    peak_bytes: int | None = None  # measured after training

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- how much there is ----------------------------------------------------------------------


def available_bytes(device: str) -> int:
    """Free memory where training runs: the GPU's free memory, else the RAM this process may
    still take (MemAvailable, capped by a cgroup limit when one is set)."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    avail = _meminfo("MemAvailable") or _meminfo("MemTotal") or 8 * GB
    limit = _cgroup_room()
    return min(avail, limit) if limit else avail


def _meminfo(key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    if key == "MemTotal":
        with contextlib.suppress(ValueError, OSError, AttributeError):
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return None


def _cgroup_room() -> int | None:
    """Room left under a cgroup v2 memory limit, if the process runs under one."""
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            return max(0, int(limit) - used)
    return None


def parse_budget(value: str, device: str, weights_bytes: int = 0) -> int:
    """``auto`` (a share of what is free), ``6GB`` / ``512MB`` (absolute) or ``0.5`` (a share).

    ``weights_bytes``: weights not loaded yet, whose room ``auto`` grants on top of its share
    of the rest (a 6 GB model on a machine with 20 GB free: 6 + 0.3 x 14 GB on a CPU)."""
    text = str(value).strip().lower()
    if text in ("", "auto"):
        share = GPU_SHARE if device.startswith("cuda") else CPU_SHARE
        free = available_bytes(device)
        return int(min(weights_bytes, free) + share * max(0, free - weights_bytes))
    m = re.fullmatch(r"([\d.]+)\s*(gb|gib|g|mb|mib|m)?", text)
    if not m:
        raise StageError(f"memory budget {value!r} is not a size",
                         hint="write auto, a size such as 6GB or 512MB, or a share such as 0.5")
    number, unit = float(m.group(1)), m.group(2)
    if unit is None:
        if not 0 < number <= 1:
            raise StageError(f"memory budget {value!r}: a bare number is a share of free memory, "
                             "between 0 and 1", hint="write 6GB for an absolute size")
        return int(available_bytes(device) * number)
    return int(number * (GB if unit.startswith("g") else 1024**2))


# -- how much a step takes ------------------------------------------------------------------


def _dims(config: Any) -> tuple[int, int, int, int, int]:
    """hidden, intermediate, layers, heads, vocab of a (text) model config."""
    cfg = getattr(config, "text_config", None) or config
    hidden = int(getattr(cfg, "hidden_size", None) or getattr(cfg, "n_embd", 768))
    inter = int(getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * hidden)
    layers = int(getattr(cfg, "num_hidden_layers", None) or getattr(cfg, "n_layer", 12))
    heads = int(getattr(cfg, "num_attention_heads", None) or getattr(cfg, "n_head", 12))
    vocab = int(getattr(cfg, "vocab_size", 32000))
    return hidden, inter, layers, heads, vocab


def estimate_bytes(config: Any, *, params: int, trainable: int, micro_batch: int, row_tokens: int,
                   dtype_bytes: int, checkpointing: bool, full_vocab: bool, answer_share: float = 0.5,
                   act_bytes: int | None = None) -> int:
    """Peak bytes of one optimizer step: weights, trainable state and one micro-batch's
    activations and logits (see the module docstring for where the constants come from)."""
    hidden, inter, layers, heads, vocab = _dims(config)
    tokens = micro_batch * row_tokens
    act = act_bytes or dtype_bytes
    weights = params * dtype_bytes
    state = trainable * 16  # fp32 master copy, gradient and two Adam moments
    # kept for backward per token per layer: residuals, norms, q/k/v/o and the MLP's four
    # intermediates, LoRA's dropout copies of each input; plus one attention row per head
    per_layer = act * (40 * hidden + 6 * inter + heads * row_tokens)
    if checkpointing:  # only each layer's input is kept; one layer is recomputed at a time
        acts = tokens * (layers * act * hidden + per_layer)
    else:
        acts = tokens * layers * per_layer
    scored = tokens if full_vocab else int(tokens * answer_share) + 1
    logits = scored * vocab * 4 * 3  # fp32 logits, their softmax and its gradient
    return RUNTIME_BYTES + weights + state + acts + logits


def plan_memory(config: Any, *, params: int, trainable: int, effective_batch: int, row_tokens: int,
                dtype: str, budget: int, want_checkpointing: bool, full_vocab: bool,
                pairs: bool = False, answer_share: float = 0.5) -> MemoryPlan:
    """The largest micro-batch that divides the effective batch and fits ``budget``; with
    gradient checkpointing when not even one row fits without it. Raises StageError (one
    line, before training) when nothing fits."""
    dtype_bytes = 4 if dtype == "fp32" else 2
    act_bytes = 4 if dtype == "fp32" else 3  # bf16 autocast keeps norms and LoRA in fp32
    rows = 2 if pairs else 1  # DPO sends chosen and rejected through together

    def need(micro: int, ckpt: bool) -> int:
        return estimate_bytes(config, params=params, trainable=trainable, micro_batch=micro * rows,
                              row_tokens=row_tokens, dtype_bytes=dtype_bytes, checkpointing=ckpt,
                              full_vocab=full_vocab, answer_share=answer_share,
                              act_bytes=act_bytes)

    divisors = [d for d in range(effective_batch, 0, -1) if effective_batch % d == 0]
    for ckpt in ((True,) if want_checkpointing else (False, True)):
        for micro in divisors:
            if need(micro, ckpt) <= budget:
                return MemoryPlan(budget, micro, effective_batch // micro, ckpt, need(micro, ckpt),
                                  row_tokens)
    one = need(1, True)
    raise StageError(
        f"training does not fit the memory budget: one row of {row_tokens} tokens needs about "
        f"{one / GB:.1f} GB even with gradient checkpointing, the budget is {budget / GB:.1f} GB",
        hint="lower --max-length, raise memory_budget in [train] (e.g. 12GB), or free memory")


def measured_peak(device: str) -> int | None:
    """The peak memory of this process so far: CUDA's max allocated, else the peak RSS."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def answer_batch_size(config: Any, *, dtype: str, prompt_tokens: int, new_tokens: int,
                      budget: int, wanted: int) -> int:
    """Questions per ``generate`` call that fit ``budget``, a budget read with the model
    already loaded (its weights are no longer free memory): each row's KV cache over prompt
    and answer and one layer's prefill activations (inference keeps no others). RAG
    prompts are the long ones; ``prompt_tokens`` is the longest expected."""
    hidden, inter, layers, heads, vocab = _dims(config)
    cfg = getattr(config, "text_config", None) or config
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(cfg, "head_dim", None) or hidden // heads)
    b = 4 if dtype == "fp32" else 2
    tokens = prompt_tokens + new_tokens
    per_row = (tokens * layers * 2 * kv_heads * head_dim * b  # KV cache
               + prompt_tokens * (8 * hidden + 3 * inter) * b  # one layer's prefill
               + vocab * 4 * 2)  # last-position logits and their softmax
    return max(1, min(wanted, budget // max(per_row, 1)))
