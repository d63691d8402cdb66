"""Replay rows against forgetting, written by the student itself.

Tuning on one domain's facts can wear away what the student knew. Mixing a small share of
general rows into training holds that back (sdg_hub's knowledge recipe replays 10 %); here
the rows are general prompts (``replay.txt``, none of them the forgetting probe's questions)
answered by the student *before* it is tuned, greedily, under the same system message, so
no outside data set is needed and the rows ask the student to stay as it was. The answers
are cached per student under ``cache/replay/``: the same student answers once.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

REPLAY_NEW_TOKENS = 64


def replay_prompts() -> list[str]:
    text = resources.files("loop.train").joinpath("replay.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def student_answers(root: Path, fingerprint: str, model: Any, tok: Any) -> list[tuple[str, str]]:
    """(prompt, answer) for every replay prompt, the student answering before tuning."""
    from generators.tasks.base import student_chat
    from generators.teachers.hf import generate_texts

    prompts = replay_prompts()
    key = hashlib.sha256(json.dumps([fingerprint, prompts, REPLAY_NEW_TOKENS]).encode()).hexdigest()[:16]
    path = root / "cache" / "replay" / f"{key}.json"
    if path.exists():
        return [tuple(x) for x in json.loads(path.read_text(encoding="utf-8"))]
    out: list[tuple[str, str]] = []
    for i in range(0, len(prompts), 16):
        batch = prompts[i:i + 16]
        texts = generate_texts(model, tok, [student_chat([{"role": "user", "content": p}]) for p in batch],
                               max_new_tokens=REPLAY_NEW_TOKENS)
        out += [(p, t.text.strip()) for p, t in zip(batch, texts, strict=True) if t.text.strip()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(out, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return out


def replay_rows(answers: list[tuple[str, str]], n: int, features: Any) -> Any:
    """``n`` training rows cycling through the student's own answers (task ``replay``)."""
    from datasets import Dataset

    from generators.tasks.base import student_chat
    from loop.samples import make_sample

    rows = [make_sample("replay", student_chat([{"role": "user", "content": p},
                                                {"role": "assistant", "content": a}]),
                        [], teacher="student", split="train")
            for p, a in (answers[i % len(answers)] for i in range(n))]
    ds = Dataset.from_list(rows)
    return ds.select_columns(list(features)).cast(features)
