"""The report's key and figures, drawn from made-up scores (no model): every metric column
explained, every metric plotted, a zero visible, whole-number k with a legend, the ★ on
each of a tie."""

from __future__ import annotations

import warnings

import pytest
from matplotlib.container import BarContainer
from matplotlib.text import Text

from loop.eval.metrics import METRICS
from loop.eval.report import _markdown, _save, bars_figure, heatmap_figure, recall_figure

QA = ("answer_f1", "contains", "em", "f1", "rouge_l", "embed_sim")
RETRIEVAL = ("faithfulness", "hit", "rr")


def ci(mean: float) -> dict[str, float]:
    return {"mean": mean, "ci_low": max(0.0, mean - 0.1), "ci_high": min(1.0, mean + 0.1)}


@pytest.fixture
def scores():
    base = {m: ci(0.3) for m in QA} | {"em": ci(0.0)}  # no exact match at all
    rag = {m: ci(0.6) for m in QA + RETRIEVAL} | {"rr": ci(0.0)}
    return {"verdict": "v", "questions": 4, "origin": "gold set", "contamination": 0,
            "setups": {"base": base, "rag": rag}, "differences": []}


def _texts(ax, s: str) -> list[Text]:
    return [t for t in ax.texts if t.get_text() == s]


def test_the_bar_chart_draws_every_metric_and_every_zero(scores):
    import matplotlib.pyplot as plt

    fig = bars_figure(scores)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "answer_f1", "contains", "em", "f1", "rouge_l", "embed_sim", "faithfulness", "hit", "rr"]
    bars = [b for c in ax.containers if isinstance(c, BarContainer) for b in c.patches]
    assert len(bars) == len(QA) + len(QA + RETRIEVAL)  # one per value a setup has
    zeros = [c for c in ax.collections if c.get_linewidth()[0] == 3]  # base em, rag rr
    assert len(zeros) == 2 and len(_texts(ax, "0")) == 2
    assert all(y == 0 for c in zeros for seg in c.get_segments() for _, y in seg)
    assert len(_texts(ax, "n/a")) == len(RETRIEVAL)  # base retrieves nothing
    assert ax.get_legend() is not None
    plt.close(fig)


def test_recall_has_whole_k_ticks_and_a_legend():
    import matplotlib.pyplot as plt

    preds = [{"setup": "rag", "gold_chunk_ids": [g], "retrieved_chunk_ids": ["a", "b", "c"]}
             for g in ("a", "c", "z")]
    fig = recall_figure(preds)
    ax = fig.axes[0]
    fig.canvas.draw()
    low, high = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if low <= t <= high]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_legend() is not None and "3 questions" in ax.get_legend().texts[0].get_text()
    assert list(ax.lines[0].get_ydata()) == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    plt.close(fig)


def test_every_tied_best_gets_its_star(tmp_path):
    preds = [{"setup": s, "doc": d, "f1": f} for d, fs in
             (("a.md", {"base": 0.5, "rag": 0.5, "tuned": 0.2}),  # a tie
              ("b.md", {"base": 0.1, "rag": 0.9, "tuned": 0.9}),
              ("c.md", {"base": 0.0, "rag": 0.0, "tuned": 0.0}))  # nothing is best at 0
             for s, f in fs.items()]
    fig = heatmap_figure(preds)
    ax = fig.axes[0]
    stars = sorted((round(t.get_position()[1]), round(t.get_position()[0]))
                   for t in _texts(ax, "★"))
    assert stars == [(0, 0), (0, 1), (1, 1), (1, 2)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*[Gg]lyph.*")  # the ★ is in the font
        assert _save(fig, tmp_path / "per-document.png").read_bytes()[:4] == b"\x89PNG"


def test_the_report_explains_every_metric_column(scores):
    md = _markdown(scores, [])
    for name in QA + RETRIEVAL:
        line = next((ln for ln in md.splitlines() if ln.startswith(f"- `{name}`: ")), None)
        assert line and METRICS[name].meaning in line, name
    old = _markdown({**scores, "setups": {"base": {"semantic": ci(0.5)}}}, [])
    assert "- `semantic`: a metric this version of synthloop does not know" in old


def test_the_console_explains_the_scores_it_prints(scores, capsys):
    from loop.cli.eval import show_scores

    show_scores({**scores, "setups": {s: {**r, "format": ci(1.0)} for s, r in scores["setups"].items()}})
    err = capsys.readouterr().err
    assert f"F1: {METRICS['f1'].meaning}" in err and f"EM: {METRICS['em'].meaning}" in err
    assert f"format: {METRICS['format'].meaning}" in err
    assert "rouge_l:" not in err  # not printed there, so not explained there
