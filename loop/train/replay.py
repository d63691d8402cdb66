"""Replay rows against forgetting, written by the student itself.

Tuning on one domain's facts can wear away what the student knew, and worse, teach it to
answer general questions with the domain's names (a smollm2 tuned on the bundled example
put the Eiffel Tower "in a suburb of Marrowick"). Mixing a share of general rows into
training holds that back (sdg_hub's knowledge recipe replays 10 %). Here the rows are general
questions answered by the student *before* it is tuned, greedily, under the same system
message, so no outside data set is needed and the rows ask the student to stay as it was.

The questions are the shipped ones (``replay.txt``) and, so that the replay is wide rather
than repeated, ``written`` more that the student writes for itself the way Magpie does
(arXiv 2406.08464): the chat template up to the user turn, seeded with a question word
("Who", "In which", ...), sampled. None is the forgetting probe's: a written question whose
words overlap a probe question's is dropped. Questions and answers are cached per student
under ``cache/replay/``: the same student writes and answers once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

REPLAY_NEW_TOKENS = 64
QUESTION_TOKENS = 32
# question words that open the written prompts, in turn: general questions of every kind
OPENERS = ("What", "Who", "Which", "Where", "When", "How many", "In which", "Why", "How",
           "What is the")
WRITE_TEMPERATURE = 0.8
VERSION = 2  # of the replay set: 2 adds the written questions


def replay_prompts() -> list[str]:
    """The shipped general prompts (none of them a forgetting-probe question)."""
    text = resources.files("loop.train").joinpath("replay.txt").read_text(encoding="utf-8")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower())) - _STOP


_STOP = frozenset(["a", "an", "the", "of", "in", "on", "at", "to", "is", "are", "was", "were",
                   "do", "does", "did", "what", "who", "which", "where", "when", "why", "how",
                   "many", "much", "and", "or", "for", "by", "with", "as", "from"])


def _probe_questions() -> list[set[str]]:
    from loop.probes import general_questions

    return [_words(q["question"]) for q in general_questions()]


def clean_question(text: str) -> str | None:
    """A written prompt cut after its first question mark, or None when it is no short,
    one-line question (the sampled text often runs on into an answer or a second turn)."""
    head, mark, _ = text.partition("?")
    head = " ".join(head.split())
    if not mark or "\n" in text[: len(head)] or "<|" in head or not 3 <= len(head.split()) <= 25:
        return None
    if any(not ch.isprintable() for ch in head):
        return None
    return head + "?"


def near_probe(question: str, probe: list[set[str]], overlap: float = 0.5) -> bool:
    """True when the question's words overlap a probe question's (Jaccard >= ``overlap``),
    so the forgetting probe never measures a question the replay trained."""
    w = _words(question)
    return any(w and p and len(w & p) / len(w | p) >= overlap for p in probe)


def write_questions(model: Any, tok: Any, n: int, *, system: str, seed: int = 0,
                    batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> list[str]:
    """Up to ``n`` distinct general questions the student writes for itself (Magpie with a
    question-word seed), none near a forgetting-probe question or a shipped prompt."""
    import torch

    if n < 1:
        return []
    if tok.padding_side != "left":
        tok.padding_side = "left"
    # the template up to where the user's words go (a marker cut out of a rendered chat)
    chat = tok.apply_chat_template([{"role": "system", "content": system},
                                    {"role": "user", "content": "\x00"}], tokenize=False)
    head = chat[: chat.index("\x00")]
    probe = _probe_questions()
    seen = {" ".join(sorted(_words(p))) for p in replay_prompts()}
    out: list[str] = []
    device = next(model.parameters()).device
    end = tok.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in tok.get_vocab() else None
    for round_ in range(max(4, 3 * n // batch_size + 1)):
        if len(out) >= n:
            break
        openers = [OPENERS[(round_ * batch_size + i) % len(OPENERS)] for i in range(batch_size)]
        enc = tok([head + o for o in openers], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(device)
        torch.manual_seed(seed + round_)
        with torch.inference_mode():
            gen = model.generate(**enc, do_sample=True, temperature=WRITE_TEMPERATURE, top_p=0.95,
                                 max_new_tokens=QUESTION_TOKENS, pad_token_id=tok.pad_token_id,
                                 eos_token_id=end if end is not None else tok.eos_token_id)
        texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:].cpu(), skip_special_tokens=True)
        for o, t in zip(openers, texts, strict=True):
            q = clean_question(o + t)
            key = " ".join(sorted(_words(q))) if q else ""
            if q and key and key not in seen and not near_probe(q, probe):
                seen.add(key)
                out.append(q)
        if on_batch:
            on_batch(min(len(out), n))
    return out[:n]


def student_answers(root: Path, fingerprint: str, model: Any, tok: Any, *, written: int = 0,
                    seed: int = 0, on_progress: Callable[[str, int, int], None] | None = None
                    ) -> list[tuple[str, str]]:
    """(prompt, answer) for every replay prompt — the shipped ones and ``written`` the
    student writes — the student answering before tuning."""
    from generators.tasks.base import STUDENT_SYSTEM, student_chat
    from generators.teachers.hf import generate_texts

    shipped = replay_prompts()
    key = hashlib.sha256(json.dumps([fingerprint, shipped, REPLAY_NEW_TOKENS, written, seed,
                                     VERSION]).encode()).hexdigest()[:16]
    path = root / "cache" / "replay" / f"{key}.json"
    if path.exists():
        return [tuple(x) for x in json.loads(path.read_text(encoding="utf-8"))]

    def tell(what: str, done: int, total: int) -> None:
        if on_progress:
            on_progress(what, done, total)

    own = write_questions(model, tok, written, system=STUDENT_SYSTEM, seed=seed,
                          on_batch=lambda d: tell("writing", d, written))
    if written:
        tell("writing", len(own), len(own))  # the bar ends where the writing did
    prompts = shipped + own
    out: list[tuple[str, str]] = []
    for i in range(0, len(prompts), 16):
        batch = prompts[i:i + 16]
        texts = generate_texts(model, tok, [student_chat([{"role": "user", "content": p}]) for p in batch],
                               max_new_tokens=REPLAY_NEW_TOKENS)
        out += [(p, t.text.strip()) for p, t in zip(batch, texts, strict=True) if t.text.strip()]
        tell("answering", min(i + 16, len(prompts)), len(prompts))
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
