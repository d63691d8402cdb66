"""Facts for closed-book tuning, found by patterns: the ``rules`` teacher's ``knowledge`` and
``rewrite`` tasks.

A model learns a new fact from text only when it sees the fact several times and in several
phrasings (Allen-Zhu & Li, Physics of LMs 3.1: one phrasing per fact gives ~10 % QA accuracy,
five varied phrasings ~97 %). So every answerable span of a sentence (an amount, a count
with its unit, a date, a time, a share, a name) becomes one :class:`KnowledgeFact` whose
question is asked several ways: with the wh-phrase where the span stood ("The community
hospital has how many beds?"), fronted when the clause is simple ("How many beds does the
community hospital have?"), with the section it comes from, as a keyword question, and as a
fill-in-the-blank (the last, least-preferred style). Answers keep their units ("42 beds").

Written by hand: no library turns sentences into questions offline (question generation is a
model's job, which a model teacher does with ``prompts/knowledge.v1.md``); these patterns are
English-only and aimed at reference prose (handbooks, manuals, papers).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|"
          r"December)")
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 18,430 | 42.6 | 1388 (never a trailing comma)
_SCALE = r"(?: (?:million|billion|thousand))?"
_CURRENCY = r"(?:euros?|crowns|dollars|pounds|marks|cents)"
_UNIT_WORDS = (r"(?:percent|per cent|%|°C|°F|degrees|kilometres|kilometers|km|metres|meters|m|"
               r"millimetres|mm|centimetres|cm|tonnes|tons|kilograms|kg|grams|litres|hectares|"
               r"square kilometres|minutes|hours|days|weeks|months|years|seconds|km/h|mph|knots)")

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("money", re.compile(rf"(?:[€$£¥]\s?(?:{_NUM}){_SCALE}|(?<![\w.,])(?:{_NUM}){_SCALE} {_CURRENCY}\b)")),
    ("time", re.compile(r"(?<![\w.,:])\d{1,2}[:.]\d{2}(?:\s?(?:a\.m\.|p\.m\.|am|pm|noon|midnight))?"
                        r"|(?<![\w.,])\d{1,2}\s?(?:a\.m\.|p\.m\.)|\bnoon\b|\bmidnight\b")),
    ("date", re.compile(rf"(?:{_WEEKDAY},? )?\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}(?: \d{{4}})?\b"
                        rf"|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?(?:, \d{{4}})?(?!\d)"
                        rf"|{_MONTH} \d{{4}}\b|(?<![\w.,€$£])1[2-9]\d\d\b(?![.,]\d)|(?<![\w.,€$£])20\d\d\b(?![.,]\d)")),
    ("share", re.compile(rf"(?<![\w.,])(?:{_NUM})\s?(?:%|percent\b|per cent\b)")),
    ("measure", re.compile(rf"(?<![\w.,])(?:{_NUM}){_SCALE}\s?{_UNIT_WORDS}(?![\w])")),
    # a count with the noun it counts: "42 beds", "62 listed buildings", "1,240 rented homes"
    ("count", re.compile(rf"(?<![\w.,€$£:])(?:{_NUM}){_SCALE}(?: [a-z][a-z-]+){{0,2}} [a-z][a-z-]*s\b")),
    ("number", re.compile(rf"(?<![\w.,€$£:/-])(?:{_NUM}){_SCALE}(?![\w%°/:-]|[.,]\d)")),
]
_NAME = re.compile(r"(?<![\w'])(?:[A-Z][a-z'’]+|[A-Z]{2,}|St) (?:(?:of|the|de|van|and|on|upon|&) )?"
                   r"(?:[A-Z][\w'’.-]+ ?){1,4}")
_PERSON_ROLE = re.compile(
    r"\b(?:councillor|mayor|registrar|manager|master|officer|director|chair|chairs|head|leader|"
    r"leads|clerk|executive|superintendent|secretary|warden|librarian|captain|coxswain|"
    r"skipper|founder|president|minister|inspector|keeper|organiser|organizer|coordinator|"
    r"engineer|architect|author|editor|chief|deputy|treasurer|principal|headteacher|"
    r"led by|run by|elected|appointed|born|died|named after|who)\b", re.I)
_ORG_WORD = re.compile(r"\b(?:Ltd|Limited|Street|Road|Lane|Square|Quay|Centre|Center|Park|Hall|"
                       r"Bay|Council|Library|Office|Board|Club|Society|School|Academy|Hospital|"
                       r"Station|Island|River|Hill|House|Court|Farm|Trust|Company|Gold|Market|"
                       r"Festival|Day|Tide|Point|Harbour|Bridge|Way|Close|Mole|Pier|Service|"
                       r"Services|Team|Department|Unit|Authority|Group|Fund|Act|Plan)\b")
_TITLE_WORDS = re.compile(r"^(?:Councillor|Mayor|Mr|Mrs|Ms|Dr|Professor|Captain|Sir|Dame)\.? ")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d{1,2}[.)])\s+(?P<text>\S.*)$")
_PRONOUN_START = re.compile(r"^(?:He|She|It|They|His|Her|Its|Their|This|That|These|Those)\b")
_WH = {"money": "how much", "time": "what time", "date": "when", "share": "what share",
       "count": "how many", "measure": "how much", "number": "what number"}
_AUX = {"is", "are", "was", "were", "has", "have", "had", "will", "can", "must", "may", "does",
        "do", "did", "should", "would", "could"}
# present-tense verbs a reference text states facts with ("-s" alone would take "injuries")
_VERBS = {
    "costs", "takes", "runs", "opens", "closes", "holds", "serves", "employs", "covers",
    "lies", "sits", "stands", "seats", "carries", "receives", "lasts", "starts", "begins",
    "ends", "pays", "charges", "lands", "makes", "leads", "chairs", "meets", "offers",
    "provides", "includes", "contains", "measures", "weighs", "reaches", "connects", "departs",
    "leaves", "arrives", "operates", "manages", "owns", "produces", "sells", "needs",
    "requires", "gets", "gives", "houses", "hosts", "attracts", "handles", "collects", "sees",
    "uses",
}
_TO_BASE = {"has": "have", "is": "be", "are": "be", "does": "do", "goes": "go"}


@dataclass(frozen=True)
class KnowledgeFact:
    """One fact: its answer, the sentence that states it, and its questions (several phrasings,
    the preferred ones first; a fill-in-the-blank is last)."""

    answer: str
    kind: str  # money | time | date | share | measure | count | number | name | item
    sentence: str
    questions: tuple[str, ...] = field(default_factory=tuple)


def knowledge_facts(text: str, title: str = "", paraphrases: int = 4) -> list[KnowledgeFact]:
    """Every fact the patterns find in a chunk, each with up to ``paraphrases`` questions."""
    facts: list[KnowledgeFact] = []
    seen: set[tuple[str, str]] = set()
    for sentence, where in statements(text, title):
        for fact in _facts_of(sentence, where, title, paraphrases):
            key = (fact.answer.lower(), fact.sentence)
            if key not in seen:
                seen.add(key)
                facts.append(fact)
    return facts


NOTES_CHARS = 1800  # a notes rewrite stays under generate's max_answer_chars (2000)


def rewrites(text: str, title: str = "") -> list[str]:
    """Three rewrites of a chunk for continued pretraining, every fact kept: its statements
    in reverse order, a list of its fact-bearing statements, and Q&A notes (each fact's
    first question). Empty when the chunk states fewer than two things."""
    said = list(statements(text, title))
    if len(said) < 2:
        return []
    head = title or said[0][1]
    facts = knowledge_facts(text, title, paraphrases=1)
    carriers = list(dict.fromkeys(f.sentence for f in facts))
    out = [f"{head}.\n" + " ".join(s for s, _ in reversed(said))]
    if carriers:
        out.append(f"Facts from {head}:\n" + "\n".join(f"- {s}" for s in carriers))
    notes, size = [], 0
    for f in facts:
        line = f"Q: {f.questions[0]}\nA: {f.answer}"
        if size + len(line) > NOTES_CHARS:
            break
        notes.append(line)
        size += len(line) + 1
    if notes:
        out.append(f"Notes on {head}\n" + "\n".join(notes))
    return out


def statements(text: str, title: str = "") -> Iterator[tuple[str, str]]:
    """(sentence, section) pairs of a chunk: prose sentences, and list items and table rows
    read as sentences ("Households: 7,915" stays whole; its section names what it is about)."""
    where = title
    for block in re.split(r"\n\s*\n", text):
        lines = [ln for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if m := _HEADING.match(lines[0]):
            where = _plain(m.group(1))
            lines = lines[1:]
        prose: list[str] = []
        for line in lines:
            if m := _HEADING.match(line):
                where = _plain(m.group(1))
            elif m := _BULLET.match(line):
                yield from _sentences(" ".join(prose), where)
                prose = []
                yield from _sentences(_plain(m["text"]), where)
            elif " | " in line:
                yield from _sentences(" ".join(prose), where)
                prose = []
                cells = [c.strip() for c in line.split("|") if c.strip()]
                if len(cells) >= 2:
                    yield f"{cells[0]}: {', '.join(cells[1:])}", where
            else:
                prose.append(_plain(line))
        yield from _sentences(" ".join(prose), where)


def _plain(s: str) -> str:
    """Markdown emphasis and links out: **Charter Day** -> Charter Day, [a](b) -> a."""
    s = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", s)
    return re.sub(r"(\*\*|__|\*|`)", "", s).strip()


def _sentences(flat: str, where: str) -> Iterator[tuple[str, str]]:
    flat = " ".join(flat.split())
    for s in _SENT.split(flat):
        s = s.strip()
        if 12 <= len(s) <= 500 and len(s.split()) >= 2:
            yield s, where


def _spans(s: str) -> list[tuple[str, int, int]]:
    """Non-overlapping answer spans of a sentence, the more specific kinds first."""
    taken: list[tuple[int, int]] = []
    out: list[tuple[str, int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for kind, pat in _PATTERNS:
        for m in pat.finditer(s):
            a, b = m.start(), m.end()
            text = s[a:b].rstrip(" ,;:")
            if not re.search(r"\b[ap]\.m\.$", text):  # "8:00 a.m." keeps its last stop
                text = text.rstrip(".").rstrip(" ,;:")
            b = a + len(text)
            if len(text) < 1 or not free(a, b):
                continue
            if kind == "count" and _bad_count(text):
                text = re.match(rf"(?:{_NUM}){_SCALE}", text).group()
                b = a + len(text)
                kind_here = "number"
            else:
                kind_here = kind
            taken.append((a, b))
            out.append((kind_here, a, b))
    for m in _NAME.finditer(s):
        a, b = m.start(), m.end()
        text = s[a:b].rstrip(" ,.;:'’")
        b = a + len(text)
        if a == 0 and len(text.split()) < 2:
            continue
        if free(a, b) and len(text) >= 4 and not _is_month_name(text):
            taken.append((a, b))
            out.append(("name", a, b))
    return sorted(out, key=lambda x: x[1])


def _bad_count(text: str) -> bool:
    # "18,430 residents living" is fine; "2021 census" or "3 and ..." are not counts
    words = text.split()[1:]
    return not words or words[-1] in {"is", "was", "has", "this", "its", "as", "us", "plus", "thus"}


def _is_month_name(text: str) -> bool:
    return bool(re.fullmatch(rf"(?:{_WEEKDAY}|{_MONTH})(?: \w+)?", text))


def _clause(s: str, a: int, b: int) -> tuple[str, int, int]:
    """The clause around a span (split at ';', ' - ', ', and ', ', but ', ', which '), so a
    question stays short; returns it and the span's offsets in it."""
    cuts = [0]
    for m in re.finditer(r";\s+| [-–—] |, (?:and|but|while|whereas|so|which|where|who) ", s):
        cuts.append(m.end())
    start = max(c for c in cuts if c <= a)
    ends = [m.start() for m in re.finditer(r";\s+| [-–—] |, (?:and|but|while|whereas|so|which|where|who) ", s)
            if m.start() >= b]
    end = min(ends) if ends else len(s)
    clause = s[start:end].strip().rstrip(".!?:")
    off = s.index(clause, start) if clause in s[start:] else start
    return clause, a - off, b - off


def _facts_of(s: str, where: str, title: str, paraphrases: int) -> list[KnowledgeFact]:
    out = []
    spans = [x for x in _spans(s) if not _in_phone_number(s, x[1], x[2])]
    numeric = any(k != "name" for k, _, _ in spans)
    for kind, a, b in spans:
        answer = s[a:b]
        clause, ca, cb = _window(*_clause(s, a, b))
        if kind == "name" and numeric and _wh(kind, answer, clause[:ca], clause) != "who":
            continue  # a sentence's amounts and dates are its facts; its other names are context
        if len(clause.split()) < 2 or ca < 0:
            continue
        wh = _wh(kind, answer, clause[:ca], clause)
        if wh is None:
            continue
        qs = _phrasings(clause, ca, cb, wh, kind, answer, where, title, paraphrases)
        if qs:
            out.append(KnowledgeFact(answer, kind, s, tuple(qs)))
    return out


def _in_phone_number(s: str, a: int, b: int) -> bool:
    """A span inside a phone number or an extension ("01 4470 2000", "extension 4650")."""
    around = s[max(0, a - 12):b + 8]
    return bool(re.search(r"\d{2,} \d{3,} \d{3,}|\+\d", around)) or bool(
        re.search(r"(?:extension|ext\.?|tel\.?|phone|call)\s*(?:on\s*)?$", s[max(0, a - 20):a], re.I))


def _window(clause: str, a: int, b: int, before: int = 14, after: int = 10) -> tuple[str, int, int]:
    """At most ``before`` words before the span and ``after`` after it: a question stays a
    question, not the whole sentence (cut at a comma inside the window when there is one)."""
    head, span, tail = clause[:a], clause[a:b], clause[b:]
    hw = head.split(" ")
    if len(hw) > before:
        head = " ".join(hw[-before:])
        if "," in head:
            head = head.split(",", 1)[1].lstrip()
    tw = tail.split(" ")
    if len(tw) > after:
        tail = " ".join(tw[:after])
        if "," in tail:
            tail = tail.rsplit(",", 1)[0]
    return head + span + tail, len(head), len(head) + len(span)


def _wh(kind: str, answer: str, before: str, clause: str) -> str | None:
    if kind == "name":
        if _TITLE_WORDS.match(answer) or _PERSON_ROLE.search(before[-40:] + " " + clause):
            return "who" if not _ORG_WORD.search(answer) else "what"
        return "what"
    if kind == "count":
        noun = " ".join(answer.split()[1:])
        noun = re.sub(r"^(?:million|billion|thousand) ", "", noun)
        return f"how many {noun}"
    if kind == "date":
        if re.fullmatch(r"\d{4}", answer):
            return "what year" if re.search(r"\b(?:in|since|until|by|from|of)\s*$", before) else "when"
        return "what date" if re.search(r"\b(?:on|from|until|by)\s*$", before) else "when"
    return _WH[kind]


def _in_situ(clause: str, a: int, b: int, wh: str, kind: str) -> str:
    before, after = clause[:a].rstrip(), clause[b:].lstrip()
    if kind == "date" and wh == "when":
        before = re.sub(r"\b(?:in|on|at)$", "", before).rstrip()
    q = f"{before} {wh} {after}".strip()
    q = re.sub(r"\s+([,.;:])", r"\1", q).strip(" ,;:")
    q = q[0].upper() + q[1:] if q else q
    return q + "?"


def _fronted(clause: str, a: int, b: int, wh: str, kind: str) -> str | None:
    """"The hospital has 42 beds" -> "How many beds does the hospital have?" for a clause
    whose subject comes first and whose verb is simple; None when the shape is not clear."""
    before, after = clause[:a].strip(), clause[b:].strip().rstrip(".")
    after = re.split(r",| and | but | while ", f" {after}", maxsplit=1)[0].strip()
    words = before.split()
    if len(words) < 2 or len(words) > 14:
        return None
    verb_at = next((i for i, w in enumerate(words) if i > 0 and (
        w in _AUX or w in _VERBS or re.fullmatch(r"[a-z]{3,}ed", w))), None)
    if verb_at is None:
        return None
    subj = " ".join(words[:verb_at])
    verb = words[verb_at]
    rest = " ".join(words[verb_at + 1:])
    if _PRONOUN_START.match(subj) or subj.endswith(","):
        return None
    subj = subj[0].lower() + subj[1:] if not _proper(subj) else subj
    if rest.endswith((" in", " on", " at")) and wh in ("what year", "what date", "what time"):
        rest = rest.rsplit(" ", 1)[0]  # "closed in what year" -> "what year did X close"
    body = " ".join(x for x in (rest, after) if x)
    if verb in ("has", "have", "had"):  # a main verb here: "How many beds does X have?"
        q = f"{wh} {'did' if verb == 'had' else 'does' if verb == 'has' else 'do'} {subj} have {body}"
    elif verb in _AUX:
        q = f"{wh} {verb} {subj} {body}"
    elif verb.endswith("ed"):
        q = f"{wh} did {subj} {_base_past(verb)} {body}"
    else:  # present -s
        base = _TO_BASE.get(verb, verb[:-3] + "y" if verb.endswith("ies") else
                            verb[:-2] if verb.endswith(("ches", "shes", "sses", "xes")) else verb[:-1])
        q = f"{wh} does {subj} {base} {body}"
    q = " ".join(q.split()).strip(" ,")
    return q[0].upper() + q[1:] + "?"


def _base_past(verb: str) -> str:
    if verb.endswith("ied"):
        return verb[:-3] + "y"
    if re.search(r"([bdgmnpt])\1ed$", verb):
        return verb[:-3]
    if re.search(r"(?:at|iv|ov|ur|as|os|ys|ag|ad|ud|uc|ib|ir|am|im|op|ap|ot|it|ut|et)ed$", verb) or verb.endswith(("ssed",)):
        return verb[:-1] if not verb.endswith("ssed") else verb[:-2]
    return verb[:-2]


def _proper(subj: str) -> bool:
    first = subj.split()[0]
    return first not in {"The", "A", "An", "Our", "Every", "Each", "All", "Some", "Most"} and first[:1].isupper()


def _phrasings(clause: str, a: int, b: int, wh: str, kind: str, answer: str, where: str,
               title: str, n: int) -> list[str]:
    situ = _in_situ(clause, a, b, wh, kind)
    front = _fronted(clause, a, b, wh, kind)
    topic = where or title
    low = situ[0].lower() + situ[1:] if not _proper(situ) else situ
    cands = [front, situ]
    if topic:
        cands.append(f"In {topic}: {low}" if not low.lower().startswith(("in ", "on ")) else f"{topic}: {low}")
    keywords = _keywords(clause[:a] + " " + clause[b:])
    if keywords:
        cands.append(f"{keywords}: {wh}?")
    if title and title != topic:
        cands.append(f"According to {title}, {low}")
    cloze = (clause[:a] + "____" + clause[b:]).strip()
    cands.append(f'Fill in the blank: "{cloze}."')
    out: list[str] = []
    for q in cands:
        if q and q not in out and len(q.split()) <= 40:
            out.append(q)
    # the blank is the least natural phrasing: kept only when too few others exist
    natural = [q for q in out if not q.startswith("Fill in the blank")]
    return (natural[:n] if len(natural) >= n else out[:n])


_STOP = set(["a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "but", "is", "are", "was", "were", "be", "been", "has", "have", "had", "do", "does", "did", "this", "that", "these", "those", "it", "its", "there", "their", "they", "them", "he", "she", "his", "her", "as", "into", "than", "then", "also", "each", "every", "any", "all", "some", "most", "more", "many", "much", "very", "about", "after", "before", "over", "under", "between", "during", "which", "who", "whom", "whose", "what", "when", "where", "why", "how", "will", "would", "can", "could", "should", "may", "might", "must", "not", "no", "per", "up", "out", "our", "your", "you", "we", "i"])


def _keywords(text: str) -> str:
    words = [w.strip(",.;:()\"'") for w in text.split()]
    keep = [w for w in words if w and w.lower() not in _STOP and not re.fullmatch(r"[\d,.]+", w)]
    return " ".join(keep[:6]) if len(keep) >= 2 else ""
