"""Forgetting probe: general text and general questions, shipped with the project.

Fine-tuning on a narrow domain can erode what a model knew (catastrophic forgetting). The
probe compares the base student and each tuned one on the same general text (perplexity)
and the same general questions (F1), so the report can say whether tuning cost anything.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any


def general_text() -> str:
    return resources.files(__package__).joinpath("general.txt").read_text(encoding="utf-8")


def general_questions() -> list[dict[str, Any]]:
    raw = resources.files(__package__).joinpath("general.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def perplexity(model, tok, text: str, window: int = 512) -> float:
    """Token-level perplexity of ``text`` in non-overlapping windows (exact for the text)."""
    import torch

    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start:start + window + 1].unsqueeze(0).to(device)
            if chunk.shape[1] < 2:
                break
            out = model(input_ids=chunk, labels=chunk)
            n = chunk.shape[1] - 1
            total += float(out.loss) * n
            count += n
    return math.exp(total / max(1, count))
