"""``rules`` — the built-in offline teacher: extractive, deterministic, no model.

``knowledge`` rows come from :mod:`generators.teachers.knowledge` (every answerable span of
every sentence, asked several ways). The other tasks read English prose with a handful of patterns (who-is, definitions, amounts, dates and
times, counts, causes, numbered procedures) and writes questions whose answers are spans of
the chunk, so every sample is grounded by construction; ``classify`` rows take the label the
corpus's structure gives each chunk (its folder, title or section). Tasks that need a model
to be done honestly (``instruct``, ``extract``) are refused with the reason.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from generators.errors import TaskError
from generators.tasks.builtin import (
    ClassifyOut,
    CotOut,
    KnowledgeOut,
    MultiTurnOut,
    PreferenceOut,
    QAOut,
    QAPair,
    RewriteOut,
    SummaryOut,
    Turn,
)
from generators.tasks.builtin import KnowledgeFact as KnowledgeItem
from generators.teachers.base import Job, JobResult, OnResult, Usage
from generators.teachers.knowledge import knowledge_facts, rewrites

SUPPORTED = ("qa", "knowledge", "rewrite", "eval_qa", "summary", "multiturn", "cot", "raft", "preference", "classify")
UNSUPPORTED = {
    "instruct": "open-ended instructions need a model to write the responses",
    "extract": "structured extraction needs a model to name the fields",
}

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December)")
_DATE = rf"(?:\d{{1,2}} {_MONTH}(?: \d{{4}})?|{_MONTH} \d{{1,2}}(?!\d)(?:, \d{{4}})?|{_MONTH} \d{{4}}|\b1[6-9]\d\d\b|\b20\d\d\b)"
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # never a trailing comma: "€9,600," is €9,600
_MONEY = rf"(?:[€$£¥]\s?{_NUM}|\b{_NUM} (?:crowns|euros|dollars|pounds|marks))"
_TIME = r"(?:\b\d{1,2}[:.]\d{2}(?:\s?[ap]\.?m\.?)?|\b\d{1,2}\s?[ap]\.m\.)"
_COUNT = r"(?:\b[1-9][\d,]*(?:\.\d+)?(?!\s?\d)(?:\s?%| per cent| (?:[a-z]+ ){0,1}[a-z]+s\b)?)"
_SPAN = re.compile(rf"{_MONEY}|{_TIME}|{_DATE}|{_COUNT}")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_NAME = r"[A-Z][\w.'-]+(?: (?:van |de |of )?[A-Z][\w.'-]+){1,3}"

# "The ..." only: "Her coxswain was ..." has no referent once the question stands alone
_WHO = re.compile(rf"^(?P<subj>The [^,.;:()]{{3,60}}?) (?P<aux>is|was) (?P<ans>{_NAME})\b")
_NOT_SUBJECT = (r"(?!(?:In|On|At|For|There|It|This|That|These|Those|Each|Every|If|When|Where|As|"
                r"From|To|By|With|After|Before|During|Since|Until|Once|All|Some|Most)\b)")
_DEF = re.compile(_NOT_SUBJECT + r"^(?P<subj>[A-Z][\w' -]{2,50}?) (?P<aux>is|are) (?P<ans>(?:a|an) [^.;:]{8,140}?)(?:[.;:]|, (?:which|who|and|but)\b)")
_COST = re.compile(rf"^(?P<subj>[A-Z][^,;:()]{{3,80}}?) (?P<verb>costs?|is charged|are charged) (?P<ans>{_MONEY})")
_WHEN = re.compile(rf"^(?P<subj>[A-Z][^,;:()]{{3,80}}?) (?P<aux>was|were|is|are|will be) (?P<vp>[a-z]+(?:ed|en|t)\b[^,;:]*?) (?:in|on) (?P<ans>{_DATE})")
_BECAUSE = re.compile(r"^(?P<main>[A-Z][^;:]{10,160}?),? because (?P<ans>[^;:]{5,160}?)[.;]")
_STEP = re.compile(r"^\s*(?P<num>\d{1,2})[.)]\s+(?P<text>\S.{5,300})$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Fact:
    question: str
    answer: str
    sentence: str
    kind: str  # who | what | cost | when | why | step | blank


class RulesTeacher:
    uri = "rules"
    # It copies spans: a style guide or an answer format cannot change them (generate says
    # so once; the format filter still drops the answers that break a format).
    applies_style = False

    def __init__(self, **_: object) -> None:
        pass

    def supports(self, task_name: str) -> bool:
        return task_name in SUPPORTED

    def why_not(self, task_name: str) -> str:
        return UNSUPPORTED.get(task_name, "not a task the rules teacher knows")

    def close(self) -> None:
        pass

    def cannot(self, job: Job) -> str | None:
        """Why this job cannot be done offline (None: it can)."""
        if job.task.name == "classify" and not job.label:
            return ("the rules teacher labels a chunk by the corpus's structure (--label-by "
                    "folder|title|section); choosing among the labels of a label file needs a "
                    "model teacher")
        return None

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        for job in jobs:
            if not self.supports(job.task.name):
                raise TaskError(f"the rules teacher cannot do '{job.task.name}': "
                                f"{self.why_not(job.task.name)}; use a model teacher")
            items = self._items(job)
            on_result(job, JobResult(items=items, usage=Usage()) if items else JobResult(
                rejects=[{"reason": "no_fact_found", "detail": "no extractable fact in the chunk",
                          "raw": ""}]))

    def _items(self, job: Job) -> list:
        if job.task.name == "classify":  # the structure's label: right by construction
            return [ClassifyOut(label=job.label)] if job.label else []
        name = job.task.name
        if name == "rewrite":
            texts = rewrites(job.chunk.text, job.chunk.title)
            return [RewriteOut(texts=texts)] if texts else []
        if name == "knowledge":
            found = knowledge_facts(job.chunk.text, job.chunk.title, job.paraphrases)
            return [KnowledgeOut(facts=[KnowledgeItem(answer=f.answer, questions=list(f.questions))
                                        for f in found])] if found else []
        facts = list(dict.fromkeys(extract_facts(job.chunk.text, job.chunk.title)))
        if not facts:
            return []
        if name in ("qa", "eval_qa"):
            pick = facts[: job.n] if name == "qa" else facts[job.n: 2 * job.n] or facts[-1:]
            return [QAOut(pairs=[QAPair(question=_phrase(f, job, name), answer=f.answer) for f in pick])]
        if name in ("cot", "raft"):
            f = facts[0]
            reasoning = f'The text says "{f.sentence}", so the answer is {f.answer}.'
            return [CotOut(question=f.question, reasoning=reasoning, answer=f.answer)]
        if name == "multiturn" and len(facts) >= 2:
            return [MultiTurnOut(turns=[Turn(user=f.question, assistant=f.answer) for f in facts[:3]])]
        if name == "summary":
            return _summary(job)
        if name == "preference":
            return _preference(facts)
        return []


def extract_facts(text: str, title: str = "") -> list[Fact]:
    """Every question the patterns find in ``text``, most specific kinds first."""
    facts: list[Fact] = []
    heading = title
    for block in re.split(r"\n\s*\n", text):
        m = _HEADING.match(block.strip())
        if m:
            heading = m.group(1)
            continue
        facts += _steps(block, heading or title)
        for sentence in _sentences(block):
            facts += _from_sentence(sentence, heading or title)
    order = {"who": 0, "cost": 1, "when": 2, "what": 3, "why": 4, "step": 5, "blank": 6}
    return sorted(facts, key=lambda f: order[f.kind])


def _sentences(block: str) -> Iterator[str]:
    flat = " ".join(block.split())
    for s in _SENT.split(flat):
        s = s.strip()
        if 25 <= len(s) <= 400 and not s.startswith(("#", "- ")) and " | " not in s:
            yield s


def _from_sentence(s: str, where: str) -> list[Fact]:
    out = []
    _lower = _Lowerer(s)
    if m := _WHO.match(s):
        out.append(Fact(f"Who {m['aux']} {_lower(m['subj'])}?", m["ans"], s, "who"))
    if m := _COST.match(s):
        aux = "do" if m["subj"].split()[-1].endswith("s") else "does"
        out.append(Fact(f"How much {aux} {_lower(m['subj'])} cost?", m["ans"], s, "cost"))
    if m := _WHEN.match(s):
        out.append(Fact(f"When {m['aux']} {_lower(m['subj'])} {m['vp']}?", m["ans"], s, "when"))
    if m := _DEF.match(s):
        out.append(Fact(f"What {m['aux']} {m['subj']}?", m["ans"], s, "what"))
    if m := _BECAUSE.match(s):
        out.append(Fact(f"What is the reason that {_lower(m['main'])}?", m["ans"], s, "why"))
    if not out:
        out += _blank(s, where)
    return out


def _blank(s: str, where: str) -> list[Fact]:
    # A sentence with a specific span (an amount, time, date or count) and no other pattern:
    # a fill-in-the-blank question, honest and always grounded.
    m = _SPAN.search(s)
    if not m or len(m.group().strip()) < 2 or len(s.split()) < 6:
        return []
    ans = m.group().strip()
    cloze = s[: m.start()] + "____" + s[m.end():]
    lead = f"In {where}, what" if where else "What"
    return [Fact(f"{lead} fills the blank: \"{cloze}\"", ans, s, "blank")]


def _steps(block: str, where: str) -> list[Fact]:
    steps = list(_STEP.finditer(block))
    if len(steps) < 2:
        return []
    topic = where or "the procedure"
    out = []
    for m in steps:
        text = m["text"].strip().rstrip(".")
        if len(text.split()) <= 25:
            out.append(Fact(f"What is step {m['num']} of {topic}?", text, m.group().strip(), "step"))
    return out


def _phrase(f: Fact, job: Job, task: str) -> str:
    if task == "eval_qa" and f.kind != "blank" and job.chunk.title:
        return f"According to {job.chunk.title}: {f.question[0].lower()}{f.question[1:]}"
    return f.question


def _summary(job: Job) -> list[SummaryOut]:
    sentences = [s for block in re.split(r"\n\s*\n", job.chunk.text)
                 if not block.lstrip().startswith("#") for s in _sentences(block)]
    if len(sentences) < 2:
        return []
    m = _HEADING.search(job.chunk.text)
    topic = m.group(1) if m else (job.chunk.title or "this topic")
    return [SummaryOut(topic=topic, summary=" ".join(sentences[:3]))]


def _preference(facts: list[Fact]) -> list[PreferenceOut]:
    # The rejected answer is a real span of the same kind from another fact: plausible, wrong.
    f = facts[0]
    wrong = [g.answer for g in facts[1:] if g.kind == f.kind and g.answer != f.answer]
    if not wrong:
        return []
    return [PreferenceOut(question=f.question, chosen=f.answer,
                          rejected=random.Random(f.question).choice(wrong))]


class _Lowerer:
    """Lower-case a subject's first word unless it is a proper noun. A word is taken as
    common when it is a function word or appears in lower case elsewhere in its sentence."""

    COMMON = {"the", "our", "its", "his", "her", "a", "an", "it", "this", "these", "they",
              "there", "we", "you", "some", "many", "most", "all", "each", "every"}

    def __init__(self, sentence: str) -> None:
        self.words = set(sentence.split()[1:])

    def __call__(self, subject: str) -> str:
        first, _, rest = subject.partition(" ")
        low = first.lower()
        if low in self.COMMON or (low in self.words and not first.isupper()):
            return f"{low} {rest}".strip()
        return subject
