"""Per-question metrics. EM and F1 follow the official SQuAD v1.1 evaluation script exactly
(normalisation: lower-case, drop punctuation, drop the articles a/an/the, collapse
whitespace; the best score over the gold answers)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from textcore import normalize_answer


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    return max((_f1(prediction, g) for g in golds), default=0.0)


def answer_f1(prediction: str, golds: Sequence[str], question: str) -> float:
    """Token F1 on the answer words that are not in the question: an answer that repeats the
    question earns nothing for it ("The community hospital has 12 beds." against "42 beds"
    scores 0.29 in F1, 0 here). A gold answer made only of question words is scored whole."""
    asked = set(normalize_answer(question).split())
    p = [w for w in normalize_answer(prediction).split() if w not in asked]
    best = 0.0
    for gold in golds:
        g_all = normalize_answer(gold).split()
        g = [w for w in g_all if w not in asked]
        pp = p
        if not g:  # nothing new to say: plain F1 on the whole answers
            g, pp = g_all, normalize_answer(prediction).split()
        same = sum((Counter(pp) & Counter(g)).values())
        if same:
            precision, recall = same / len(pp), same / len(g)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_gold(prediction: str, golds: Sequence[str]) -> float:
    """1 when a gold answer appears whole (normalised, on word boundaries) in the reply."""
    p = f" {normalize_answer(prediction)} "
    return float(any(n and f" {n} " in p for n in map(normalize_answer, golds)))


def _lcs(a: list[str], b: list[str]) -> int:
    # Two-row dynamic programme; the rouge-score package would add nltk for these 10 lines.
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, golds: Sequence[str]) -> float:
    """ROUGE-L F-measure on SQuAD-normalised tokens, best over the gold answers."""
    p = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        g = normalize_answer(gold).split()
        lcs = _lcs(p, g) if p and g else 0
        if lcs:
            prec, rec = lcs / len(p), lcs / len(g)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def hit_and_rr(retrieved: Sequence[str], gold: Sequence[str], k: int) -> tuple[float, float]:
    """Hit@k and reciprocal rank of the first gold chunk among the retrieved ids."""
    gold_set = set(gold)
    for rank, cid in enumerate(retrieved, 1):
        if cid in gold_set:
            return float(rank <= k), 1.0 / rank
    return 0.0, 0.0


def faithfulness(answer: str, context: str) -> float | None:
    """Share of the answer's content words that appear in the retrieved context; None for
    an answer with no content words (nothing to be faithful about)."""
    words = [w for w in normalize_answer(answer).split() if len(w) > 2]
    if not words:
        return None
    ctx = set(normalize_answer(context).split())
    return sum(w in ctx for w in words) / len(words)


# -- the metric registry ------------------------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """What a retrieval setup put in the prompt: the context block and the chunk ids."""

    context: str
    chunk_ids: list[str]
    k: int


@dataclass(frozen=True)
class Metric:
    """A per-answer score in [0, 1] (None: not applicable), aggregated with a 95% interval.

    ``per_answer(answer, question, shown)`` scores one answer (``shown`` is None for
    closed-book setups); a metric that needs a model (an embedder, a judge) sets
    ``per_batch(stage, questions, predictions)`` instead, which fills ``p[name]`` for all.
    A metric of the whole set that is no mean of per-answer scores (macro-F1) sets
    ``statistic(rows)`` over the prediction rows that ``applies`` to, bootstrapped by rows.
    ``headline`` metrics are printed beside F1 and EM on the console when present;
    ``meaning`` is the legend's sentence under the report's tables (the label when empty)."""

    name: str
    label: str
    order: int  # column order in the scoreboard, the report and the dashboard
    per_answer: Callable[[str, Any, Shown | None], float | None] | None = None
    per_batch: Callable[[Any, list, list[dict]], None] | None = None
    statistic: Callable[[list[dict]], float] | None = None
    applies: Callable[[dict], bool] = lambda p: True  # which rows ``statistic`` reads
    headline: bool = False
    meaning: str = ""


METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    METRICS[metric.name] = metric
    return metric


def metric_names() -> list[str]:
    """Every registered metric, in display order."""
    return [m.name for m in sorted(METRICS.values(), key=lambda m: m.order)]


def legend(names: set[str] | list[str]) -> list[tuple[str, str]]:
    """``(name, what it measures)`` for each of ``names``, in display order: the report's and
    the console's key to their columns. A name no registry knows (an old evaluation's) says so."""
    return [(n, (METRICS[n].meaning or METRICS[n].label) if n in METRICS
             else "a metric this version of synthloop does not know") for n in ordered_metrics(names)]


def ordered_metrics(names: set[str] | list[str]) -> list[str]:
    """``names`` in display order; names no registry knows (an old evaluation's) go last."""
    known = [n for n in metric_names() if n in names]
    return known + sorted(set(names) - set(known))


def _hit(answer: str, q: Any, shown: Shown | None) -> float | None:
    return hit_and_rr(shown.chunk_ids, q.gold_chunks, shown.k)[0] if shown and q.gold_chunks else None


def _rr(answer: str, q: Any, shown: Shown | None) -> float | None:
    return hit_and_rr(shown.chunk_ids, q.gold_chunks, shown.k)[1] if shown and q.gold_chunks else None


def qa_only(score: Callable[[str, Sequence[str]], float]) -> Callable[[str, Any, Shown | None], float | None]:
    """A reference-answer metric, for QA items only (a label or a JSON object has its own)."""
    return lambda a, q, s: score(a, q.answers) if getattr(q, "task", "qa") == "qa" else None


# -- classification and extraction ------------------------------------------------------------


def predicted_label(answer: str, labels: Sequence[str]) -> str:
    """The label an answer gives: the whole (normalised) answer when it is one, else the label
    named first in it (whole words), else the answer itself (a label the set does not know)."""
    norm = normalize_answer(answer)
    by_norm = {normalize_answer(lab): lab for lab in labels}
    if norm in by_norm:
        return by_norm[norm]
    padded, best = f" {norm} ", None
    for n, lab in by_norm.items():
        at = padded.find(f" {n} ") if n else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, lab)
    return best[1] if best else norm


def _accuracy(answer: str, q: Any, shown: Shown | None) -> float | None:
    if getattr(q, "task", "qa") != "classify":
        return None
    labels = list(q.labels) or list(q.answers)
    return float(normalize_answer(predicted_label(answer, labels)) == normalize_answer(q.answers[0]))


def macro_f1(rows: list[dict]) -> float:
    """Macro-averaged F1 over the gold labels of ``rows`` (``label``, ``gold_label``). A
    prediction that is no gold label costs recall and is a false positive of no class;
    written out (not sklearn's ``f1_score``) because the bootstrap calls it 2,000 times."""
    gold = Counter(r["gold_label"] for r in rows)
    pred = Counter(r["label"] for r in rows)
    hit = Counter(r["gold_label"] for r in rows if r["label"] == r["gold_label"])
    f1s = [2 * hit[c] / (gold[c] + pred[c]) for c in gold]
    return sum(f1s) / len(f1s) if f1s else float("nan")


def _key(k: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(k).lower()).strip("_")


def _flat(value: Any) -> str:
    if isinstance(value, list | tuple):
        return normalize_answer(" ".join(str(v) for v in value))
    return normalize_answer(str(value))


def field_f1(answer: str, fields: dict[str, Any]) -> float:
    """F1 over the (key, value) pairs of a JSON answer against the gold fields: keys compared
    in snake case, values after SQuAD normalisation; an answer with no JSON object scores 0."""
    from generators.formats import answer_json

    try:
        got = answer_json(answer)
    except ValueError:
        return 0.0
    if not isinstance(got, dict) or not got or not fields:
        return 0.0
    want = {(_key(k), _flat(v)) for k, v in fields.items()}
    have = {(_key(k), _flat(v)) for k, v in got.items()}
    same = len(want & have)
    return 2 * same / (len(want) + len(have)) if same else 0.0


def _field_f1(answer: str, q: Any, shown: Shown | None) -> float | None:
    return field_f1(answer, q.fields or {}) if getattr(q, "task", "qa") == "extract" else None


def _format(answer: str, q: Any, shown: Shown | None) -> float | None:
    from generators.formats import complies

    if not getattr(q, "format", None):
        return None
    return float(bool(answer.strip()) and complies(answer, q.format))  # nothing follows no format


def _answer_f1(answer: str, q: Any, shown: Shown | None) -> float | None:
    return answer_f1(answer, q.answers, q.question) if getattr(q, "task", "qa") == "qa" else None


# The verdict's lead metric when the setups' answers differ in length (the longest setup's
# mean words over this many times the shortest's): then F1 pays the verbose one for the
# question words it repeats, and answer_f1 does not.
LENGTH_RATIO = 1.5


def lead_metric(words: dict[str, float]) -> str:
    """``answer_f1`` when the setups' mean answer lengths (``words``) differ by more than
    :data:`LENGTH_RATIO`, else ``f1``."""
    lengths = [w for w in words.values() if w > 0]
    if len(lengths) >= 2 and max(lengths) > LENGTH_RATIO * min(lengths):
        return "answer_f1"
    return "f1"


for _m in (
    Metric("answer_f1", "token F1 on answer words not in the question (lead metric when "
           "answer lengths differ)", -2, _answer_f1,
           meaning="token F1 on the reply's words that are not in the question: repeating "
                   "the question earns nothing"),
    Metric("contains", "gold answer found whole in the reply", -1, qa_only(contains_gold),
           meaning="1 when a gold answer appears whole (normalised, on word boundaries) in the "
                   "reply, else 0"),
    Metric("em", "exact match", 0, qa_only(exact_match),
           meaning="exact match: 1 when the reply equals a gold answer after SQuAD "
                   "normalisation (lower case, no punctuation or articles), else 0"),
    Metric("f1", "token F1", 1, qa_only(f1_score),
           meaning="token F1 (SQuAD v1.1): word overlap of the reply with the best-matching "
                   "gold answer, precision and recall combined"),
    Metric("rouge_l", "ROUGE-L", 2, qa_only(rouge_l),
           meaning="ROUGE-L F-measure: the longest common word sequence of the reply and the "
                   "best-matching gold answer"),
    Metric("format", "answers that follow the item's format spec", 8, _format, headline=True,
           meaning="share of replies that follow their item's answer format"),
    Metric("accuracy", "classification accuracy", 10, _accuracy, headline=True,
           meaning="classification: the label the reply names is the gold label"),
    Metric("macro_f1", "classification macro-F1", 11, statistic=macro_f1,
           applies=lambda p: bool(p.get("gold_label")), headline=True,
           meaning="classification: F1 per gold label, averaged over the labels (a rare label "
                   "counts as much as a common one)"),
    Metric("field_f1", "extraction field-level F1", 12, _field_f1, headline=True,
           meaning="extraction: F1 over the (key, value) pairs of the reply's JSON object "
                   "against the gold fields"),
    Metric("faithfulness", "answer words found in the context", 5,
           lambda a, q, s: faithfulness(a, s.context) if s else None,
           meaning="share of the reply's content words found in the retrieved context "
                   "(retrieval setups only)"),
    Metric("hit", "gold chunk retrieved", 6, _hit,
           meaning="hit@k: 1 when a gold chunk is among the k chunks retrieved, else 0 "
                   "(retrieval setups, questions with gold chunks)"),
    Metric("rr", "reciprocal rank of the gold chunk", 7, _rr,
           meaning="reciprocal rank: 1/rank of the first gold chunk retrieved (1, 1/2, 1/3 "
                   "...; 0 when none is; retrieval setups, questions with gold chunks)"),
):
    register_metric(_m)
