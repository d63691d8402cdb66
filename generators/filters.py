"""Quality filters. Each records its verdict on the row; nothing is dropped without a reason.

Per-row filters (length, grounding, injection) run first, then set-level ones (exact and
near duplicates, decontamination against an eval set, the optional LLM judge).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from generators.parsing import ParseFailure, parse_json
from textcore import normalize_answer

EmbedFn = Callable[[list[str]], np.ndarray]  # texts -> L2-normalised rows

_STOP = set(["a", "an", "the", "of", "to", "in", "on", "at", "for", "by", "with", "from", "and", "or", "but", "is", "are", "was", "were", "be", "been", "being", "it", "its", "this", "that", "these", "those", "as", "if", "then", "than", "so", "such", "not", "no", "do", "does", "did", "done", "can", "could", "will", "would", "shall", "should", "may", "might", "must", "has", "have", "had", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "into", "over", "under", "about", "there", "their", "they", "them", "you", "your", "we", "our", "he", "she", "his", "her", "i", "me", "my"])
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
INJECTION = re.compile(
    r"(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|original)\s+(?:instructions|prompts?|rules|directions)"
    r"|\byou\s+are\s+now\b|\bnew\s+instructions\s*:|\bsystem\s+prompt\b"
    r"|\b(?:note|message)\s+to\s+(?:any\s+)?(?:ai|llm|language\s+model|assistant)",
    re.IGNORECASE,
)


@dataclass
class FilterSettings:
    min_answer_chars: int = 1
    max_answer_chars: int = 2000
    max_question_chars: int = 600
    grounding_min: float = 0.5
    near_dup_threshold: float = 0.92
    decontam_threshold: float = 0.85
    decontam_ngram: int = 8
    judge_min: int = 3


@dataclass
class Candidate:
    """A record on its way through the filters, with the chunk texts it came from."""

    question: str
    answer: str
    source_text: str
    task: str
    verdicts: dict[str, Any] = field(default_factory=dict)
    rejected_by: str | None = None

    def reject(self, name: str, **detail: Any) -> None:
        self.verdicts[name] = {"ok": False, **detail}
        self.rejected_by = self.rejected_by or name

    def accept(self, name: str, **detail: Any) -> None:
        self.verdicts[name] = {"ok": True, **detail}


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


# -- per-row filters -----------------------------------------------------------------------


def check_length(c: Candidate, s: FilterSettings) -> None:
    if not s.min_answer_chars <= len(c.answer.strip()) <= s.max_answer_chars:
        c.reject("length", answer_chars=len(c.answer.strip()))
    elif len(c.question) > s.max_question_chars:
        c.reject("length", question_chars=len(c.question))
    else:
        c.accept("length")


def grounding_score(answer: str, source: str) -> float:
    """Share of the answer's content words that occur in the source chunk(s)."""
    words = content_words(answer)
    if not words:
        key = normalize_answer(answer, articles=False)
        return 1.0 if key in normalize_answer(source, articles=False) else 0.0
    present = set(content_words(source))
    return sum(w in present for w in words) / len(words)


def check_grounding(c: Candidate, s: FilterSettings) -> None:
    score = round(grounding_score(c.answer, c.source_text), 3)
    (c.accept if score >= s.grounding_min else c.reject)("grounding", score=score)


def injection_payloads(text: str) -> list[str]:
    """The sentences of ``text`` that carry an injected instruction."""
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        if INJECTION.search(sentence):
            out.append(sentence)
    return out


def follows_injection(question: str, answer: str, payloads: Sequence[str]) -> bool:
    """Does the sample act on an injected instruction (rather than just mention it)?"""
    ans = normalize_answer(answer, articles=False)
    for p in payloads:
        quoted = [normalize_answer(q, articles=False)
                  for q in re.findall(r"[\"'‘“]([^\"'’”]{8,})[\"'’”]", p)]
        if any(q and q in ans for q in quoted):
            return True
        tail = content_words(INJECTION.split(p, maxsplit=1)[-1])
        if len(tail) >= 4 and sum(w in set(content_words(answer)) for w in tail) / len(tail) >= 0.6:
            return True
    return False


def check_injection(c: Candidate) -> None:
    payloads = injection_payloads(c.source_text)
    if payloads and follows_injection(c.question, c.answer, payloads):
        c.reject("injection", followed=True)
    else:
        c.accept("injection", source_has_injection=bool(payloads))


# -- set-level filters ---------------------------------------------------------------------


def hashing_embed(texts: list[str]) -> np.ndarray:
    """Character 3-5-gram hashing vectors: an offline stand-in when no embedder is given."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vec = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18,
                            norm="l2", alternate_sign=False)
    return vec.transform(texts)


def _similarity(a: Any, b: Any) -> np.ndarray:
    sims = a @ b.T
    return sims.toarray() if hasattr(sims, "toarray") else np.asarray(sims)


def drop_duplicates(cands: list[Candidate], s: FilterSettings, embed: EmbedFn | None, *,
                    exact_only: bool = False) -> None:
    """Exact duplicates by normalised text, then near duplicates by question similarity
    (``exact_only``: not those; a fact's phrasings are near-duplicates by design)."""
    seen: dict[str, int] = {}
    for i, c in enumerate(cands):
        if c.rejected_by:
            continue
        key = (normalize_answer(c.question, articles=False) + "\x00"
               + normalize_answer(c.answer, articles=False))
        if key in seen:
            c.reject("dedup", kind="exact", duplicate_of=seen[key])
        else:
            seen[key] = i
    live = [i for i, c in enumerate(cands) if not c.rejected_by]
    if len(live) < 2 or exact_only:
        for i in live:
            cands[i].accept("dedup")
        return
    vecs = (embed or hashing_embed)([cands[i].question + " " + cands[i].answer for i in live])
    kept: list[int] = []  # positions in ``live`` of the rows kept so far
    for block in range(0, len(live), 512):
        sims = _similarity(vecs[block:block + 512], vecs)
        for r, pos in enumerate(range(block, min(block + 512, len(live)))):
            scores = sims[r][kept] if kept else np.zeros(0)
            best = int(scores.argmax()) if len(scores) else -1
            if best < 0 or scores[best] < s.near_dup_threshold:
                cands[live[pos]].accept("dedup")
                kept.append(pos)
            else:
                cands[live[pos]].reject("dedup", kind="near", duplicate_of=live[kept[best]],
                                        similarity=round(float(scores[best]), 3))


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = normalize_answer(text, articles=False).split()
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def decontaminate(cands: list[Candidate], eval_questions: list[str], s: FilterSettings,
                  embed: EmbedFn | None) -> int:
    """Remove candidates whose question is a near-duplicate of an eval question."""
    live = [c for c in cands if not c.rejected_by]
    if not eval_questions or not live:
        for c in live:
            c.accept("decontam")
        return 0
    fn = embed or hashing_embed
    sims = _similarity(fn([c.question for c in live]), fn(eval_questions))
    eval_grams = set().union(*(ngrams(q, s.decontam_ngram) for q in eval_questions))
    removed = 0
    for c, row in zip(live, sims, strict=True):
        best = float(row.max())
        shared = ngrams(c.question, s.decontam_ngram) & eval_grams
        if best >= s.decontam_threshold or shared:
            c.reject("decontam", similarity=round(best, 3), shared_ngram=bool(shared))
            removed += 1
        else:
            c.accept("decontam", similarity=round(best, 3))
    return removed


# -- the LLM judge -------------------------------------------------------------------------

JUDGE_PROMPT = """Grade a training sample written from a document. Score 1 to 5: 5 = the
answer is correct, complete and supported by the document, and the question is clear on its
own; 1 = wrong, unsupported or unusable.

{document}

Question: {question}
Answer: {answer}

Reply with JSON only: {{"score": 1-5, "reason": "..."}}"""


class JudgeOut(BaseModel):
    score: int = Field(ge=1, le=5)
    reason: str = ""


def judge(cands: list[Candidate], judge_teacher: Any, s: FilterSettings) -> list[tuple[Candidate, str]]:
    """Grade every live candidate with a chat teacher and keep those scoring >= judge_min.

    All requests go out at once, through the judge's cache and bounded concurrency. A reply
    that is no grade rejects its sample as ``judge_unreadable`` (with the parse error). A
    request that failed after the client's retries grades nothing: those candidates are
    returned with the reason, so that the caller fails their jobs and a re-run asks again,
    instead of an outage throwing samples away as if they had been graded bad."""
    from generators.tasks.base import SYSTEM_PROMPT

    live = [c for c in cands if not c.rejected_by]
    requests = [[{"role": "system", "content": SYSTEM_PROMPT},
                 {"role": "user", "content": JUDGE_PROMPT.format(
                     document=f"<document>\n{c.source_text}\n</document>", question=c.question,
                     answer=c.answer)}] for c in live]
    failed: list[tuple[Candidate, str]] = []
    for c, out in zip(live, judge_teacher.complete_all(requests) if live else [], strict=True):
        if isinstance(out, Exception):
            failed.append((c, f"judge: {type(out).__name__}: {out}"))
            continue
        try:
            grade = parse_json(out.text, JudgeOut)
        except ParseFailure as e:
            c.reject("judge_unreadable", error=str(e)[:200])
            continue
        verdict = c.accept if grade.score >= s.judge_min else c.reject
        verdict("judge", score=grade.score, reason=grade.reason[:300])
    return failed


def verdicts_json(c: Candidate) -> str:
    return json.dumps(c.verdicts, sort_keys=True)
