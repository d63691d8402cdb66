"""The report: a plain-language verdict that follows from the intervals, then the tables
and figures (markdown, JSON and PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loop.eval.metrics import METRICS, legend, ordered_metrics
from loop.eval.setups import SETUPS, adapter_kinds, ordered
from loop.handoff import given
from loop.workspace import Workspace, write_json


def _diff(diffs: list[dict], a: str, b: str, metric: str = "f1") -> dict[str, Any] | None:
    """The paired difference a - b, whichever order it was stored in."""
    for d in diffs:
        if d["metric"] != metric:
            continue
        if (d["a"], d["b"]) == (a, b):
            return d
        if (d["a"], d["b"]) == (b, a):
            return {**d, "a": a, "b": b, "mean": -d["mean"], "ci_low": -d["ci_high"],
                    "ci_high": -d["ci_low"]}
    return None


SHORT = {"f1": "F1", "answer_f1": "answer-F1", "em": "EM"}


def _fmt(d: dict[str, Any]) -> str:
    """A positive difference (winner - loser) and its interval."""
    return f"{d['mean']:.2f} {SHORT.get(d['metric'], d['metric'])} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"


def _raw(d: dict[str, Any]) -> str:
    return (f"{d['mean']:+.2f} {SHORT.get(d['metric'], d['metric'])} "
            f"[{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]")


def verdict(table: dict[str, Any], diffs: list[dict], lead: str = "f1") -> str:
    """One paragraph a person can act on; every claim backed by a paired 95% interval on the
    ``lead`` metric (``answer_f1`` when the setups' answers differ in length)."""
    have = _candidates(table)  # cheapest first
    if not any(lead in table[s] for s in have) and lead != "f1":
        lead = "f1"  # an evaluation made before answer_f1 existed
    parts = []
    if not any(lead in table[s] for s in have):
        return ("No question-answer items in this set, so no F1 verdict: compare the setups on "
                "the task scores (" + ", ".join(sorted({m for s in have for m in table[s]})) + ")."
                + _task_sentence(table, have))
    if lead != "f1":
        parts.append(f"Lead metric: {SHORT[lead]} (the setups' answers differ in length, so "
                     "words repeated from the question earn nothing).")
    if "rag" in have and "tuned" in have and _diff(diffs, "rag", "tuned", lead):
        d = _diff(diffs, "rag", "tuned", lead)
        if d["significant"]:
            if d["mean"] > 0:
                parts.append(f"RAG beats fine-tuning by {_fmt(d)}.")
            else:
                parts.append(f"Fine-tuning beats RAG by {_fmt(_diff(diffs, 'tuned', 'rag', lead))}.")
        else:
            parts.append(f"RAG and fine-tuning are not measurably different (rag - tuned: {_raw(d)}).")
    if "base" in have and "tuned" in have and _diff(diffs, "tuned", "base", lead):
        d = _diff(diffs, "tuned", "base", lead)
        if d["significant"]:
            word = "above" if d["mean"] > 0 else "below"
            parts.append(f"Fine-tuning scores {word} the base model ({_raw(d)}).")
    if "combined" in have:
        ref = max((s for s in ("rag", "tuned") if s in have),
                  key=lambda s: table[s][lead]["mean"], default=None)
        d = _diff(diffs, "combined", ref, lead) if ref else None
        if d:
            if d["significant"] and d["mean"] > 0:
                parts.append(f"Combining adds {_fmt(d)} over {SETUPS[ref].label}.")
            elif d["significant"]:
                parts.append(f"Combining scores below {SETUPS[ref].label} by "
                             f"{_fmt(_diff(diffs, ref, 'combined', lead))}.")
            else:
                parts.append(f"Combining adds nothing measurable over {SETUPS[ref].label} ({_raw(d)}).")
    rec = recommend(table, diffs, lead)
    parts.append(f"Recommendation: {rec} (the cheapest setup that no other beats measurably).")
    parts += _exported_sentences(table, diffs, lead)
    return " ".join(parts) + _task_sentence(table, have)


def _candidates(table: dict[str, Any]) -> list[str]:
    """The setups the verdict chooses between, cheapest first (not a derived copy)."""
    return [s for s in ordered(table) if s in SETUPS and not SETUPS[s].derived]


def _exported_sentences(table: dict[str, Any], diffs: list[dict], lead: str) -> list[str]:
    """What the export cost: each derived setup against the setup it copies, paired."""
    out = []
    for s in ordered(table):
        src = SETUPS[s].derived if s in SETUPS else None
        d = _diff(diffs, s, src, lead) if src and src in table else None
        if d is None or lead not in table[s]:
            continue
        cost = "measurably" if d["significant"] else "not measurably"
        out.append(f"The exported file scores {table[s][lead]['mean']:.3f} against {src}'s "
                   f"{table[src][lead]['mean']:.3f}: the export changed the score {cost} "
                   f"({s} - {src}: {_raw(d)}).")
    return out


def _task_sentence(table: dict[str, Any], have: list[str]) -> str:
    """The best setup on each task score present (format, style, accuracy, macro-F1, field
    F1), with its interval: not a paired test, a pointer to the table."""
    from loop.eval.metrics import METRICS

    out = []
    for name, m in METRICS.items():
        rows = [s for s in have if name in table[s]]
        if m.headline and rows:
            best = max(rows, key=lambda s: table[s][name]["mean"])
            c = table[best][name]
            out.append(f"{m.label}: best {best} {c['mean']:.2f} [{c['ci_low']:.2f}, "
                       f"{c['ci_high']:.2f}]")
    return (" Task scores, " + "; ".join(out) + ".") if out else ""


def recommend(table: dict[str, Any], diffs: list[dict], lead: str = "f1") -> str:
    have = _candidates(table)  # cheapest first
    best = have[0]
    for s in have[1:]:
        d = _diff(diffs, s, best, lead)
        if d and d["significant"] and d["mean"] > 0:
            best = s
    return best


def report_evaluation(ws: Workspace, eval_id: str | None = None, out: Path | None = None,
                      force: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """``synthloop report``: the scores of an evaluation (default: the latest) and the paths
    of the report written for it. A folder ``out`` of the user's that already holds a report
    is replaced only with ``force`` (the default folder, inside the workspace, always is)."""
    from loop.errors import InputError

    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {out}: not a folder")
        there = [n for n in ("report.md", "report.json") if (out / n).exists()]
        if there and not force:
            raise InputError(f"--out {out} already holds a report ({', '.join(there)})",
                             hint="pass --force to replace it, or another folder")

    eval_id = eval_id or given(ws, None).eval_id
    if not eval_id:
        raise InputError("no evaluation yet", hint="run `synthloop eval` first")
    path = ws.eval_dir(eval_id)
    if not (path / "scores.json").exists():
        raise InputError(f"no evaluation {eval_id} in {ws.root}")
    return json.loads((path / "scores.json").read_text()), write_report(ws, path, out)


def write_report(ws: Workspace, eval_dir: Path, out: Path | None = None,
                 iterations: list[dict[str, Any]] | None = None,
                 split: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write report.md, report.json and PNG figures for one evaluation; return their paths.
    ``iterations`` (from ``run --iterations``) adds the rounds side by side, ``split`` the
    dev/test split that kept the scored questions out of the targeting."""
    from datasets import load_from_disk

    out = out or eval_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    scores = json.loads((eval_dir / "scores.json").read_text())
    if split:
        scores["split"] = split
    if iterations:
        scores["iterations"] = [{"iteration": it["iteration"], "setups": it["setups"]}
                                for it in iterations]
    preds = load_from_disk(str(eval_dir / "predictions")).to_list()
    sweeps = sweeps_of(ws, scores.get("models"))
    if sweeps:
        scores["sweeps"] = sweeps
    plots = [p for p in (
        _save(bars_figure(scores), out / "metrics.png"),
        _save(heatmap_figure(preds), out / "per-document.png"),
        _losses(ws, out / "loss.png", scores.get("models")),
        sweep_plot(sweeps, out / "sweep.png"),
        _save(recall_figure(preds), out / "retrieval-recall.png"),
    ) if p]
    write_json(out / "report.json", {**scores, "plots": [str(p) for p in plots]})
    md = out / "report.md"
    md.write_text(_markdown(scores, plots), encoding="utf-8")
    return {"markdown": str(md), "json": str(out / "report.json"), "plots": [str(p) for p in plots]}


def _ceiling_lines(s: dict[str, Any]) -> list[str]:
    """The lead metric, the answers' lengths and the coverage ceiling, in words."""
    out = []
    lead, words = s.get("lead_metric"), s.get("answer_words") or {}
    if lead:
        out.append(f"Lead metric: `{lead}` ({METRICS[lead].label if lead in METRICS else lead}). "
                   "Every setup was asked for a short answer by the same system message."
                   + (" Mean words per answer: " + ", ".join(f"{k} {v:g}" for k, v in words.items())
                      + "." if words else ""))
        out.append("")
    cov = s.get("coverage")
    if cov and cov.get("share") is not None:
        out += [f"Coverage ceiling: {cov['covered']} of {cov['questions']} gold answers "
                f"({cov['share']:.0%}) were trained as answers in dataset `{cov['dataset_id']}` "
                f"({cov['rule']}): the most that closed-book recall (`{cov['model']}`) could "
                "reach on this set.", ""]
    return out


def _markdown(s: dict[str, Any], plots: list[Path]) -> str:
    lines = ["# synthloop report", "", f"**Verdict.** {s['verdict']}", "",
             f"Questions: {s['questions']} from the {s['origin']}. Eval questions that are "
             f"near-duplicates of training questions: {s['contamination']}.", ""]
    lineage = s.get("lineage") or {}
    served = lineage.get("served") or {}
    if s.get("models"):
        scored = ", ".join(f"`{setup}` = model `{mid}`" for setup, mid in s["models"].items() if mid)
        local = [x for x in s["models"] if x not in served]
        lines += [f"Scored: {scored or ('the base student only' if local else 'served setups only')}"
                  + (f"; index `{lineage['index']}`" if lineage.get("index") else "")
                  + (f"; eval set `{lineage['eval_set']}`" if lineage.get("eval_set") else "")
                  + ".", ""]
    if served:
        lines += [served_line(served), ""]
    weights = (s.get("lineage") or {}).get("source_weights")
    if weights:
        lines += [_preferred_sources(weights), ""]
    split = s.get("split")
    if split:
        lines += [f"Questions split by {split['by']} (seed {split.get('seed', 0)}): {split['dev']} "
                  f"dev questions picked each round's targets, {split['test']} test questions "
                  "(from other documents) are the ones scored here, in every round.", ""]
    lines += _ceiling_lines(s)
    for note in s.get("notes") or []:
        lines.append(f"> Note: {note}")
    metrics = ordered_metrics({m for v in s["setups"].values() for m in v})
    lines += ["", "## Scores (mean and 95% bootstrap interval)", "",
              "| setup | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for setup, row in s["setups"].items():
        cells = [f"{row[m]['mean']:.3f} [{row[m]['ci_low']:.3f}, {row[m]['ci_high']:.3f}]"
                 if m in row else "—" for m in metrics]
        lines.append(f"| {setup} | " + " | ".join(cells) + " |")
    lines += ["", "Columns (— where a metric does not apply to a setup):", ""]
    lines += [f"- `{name}`: {meaning}" for name, meaning in legend(metrics)]
    correction = s.get("correction")
    lines += ["", "## Paired differences (a - b)", "",
              (f"Decisions (\"real?\") use {correction}; p is the paired bootstrap p-value, "
               "p (Holm) the adjusted one." if correction else
               "Decisions (\"real?\"): the paired 95% interval excludes 0, each test on its own "
               "(an evaluation from before the multiple-comparison correction)."), "",
              "| a | b | metric | difference [95% CI] | p | p (Holm) | real? | McNemar p |",
              "|---|---|---|---|---|---|---|---|"]
    for d in s["differences"]:
        p = f"{d['mcnemar_p']:.3g}" if "mcnemar_p" in d else ""
        lines.append(f"| {d['a']} | {d['b']} | {d['metric']} | {d['mean']:+.3f} "
                     f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] | {_p(d.get('p'))} | "
                     f"{_p(d.get('p_holm'))} | {'yes' if d['significant'] else 'no'} | {p} |")
    forgetting = (s.get("probes") or {}).get("forgetting") or {}
    if forgetting:
        lines += ["", "## Forgetting probe (general text and questions, shipped with synthloop)", "",
                  "| setup | perplexity on general text | F1 on general questions | answer F1 | "
                  "contains | answer F1 - base [95% CI] |", "|---|---|---|---|---|---|"]
        for setup, row in forgetting.items():
            vs = (row.get("vs_base") or {}).get("answer_f1")
            diff = f"{vs['mean']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}]" if vs else ""
            extra = (f"{row['general_answer_f1']:.3f} | {row['general_contains']:.3f}"
                     if "general_answer_f1" in row else " | ")
            lines.append(f"| {setup} | {row['perplexity']:.2f} | {row['general_f1']:.3f} | "
                         f"{extra} | {diff} |")
        n = next((row.get("questions") for row in forgetting.values() if row.get("questions")), None)
        lines.append("")
        lines.append("Higher perplexity or lower scores after tuning than for `base` means the "
                     "tuning cost general ability (catastrophic forgetting)"
                     + (f"; the difference is paired over the same {n} general questions." if n
                        else "."))
    fresh = (s.get("probes") or {}).get("freshness") or {}
    if fresh:
        lines += ["", "## Freshness probe: documents added after training", "",
                  f"{fresh['questions']} questions have their evidence only in the "
                  f"{len(fresh['documents'])} documents indexed after the models were trained.", "",
                  "| setup | F1 on those questions |", "|---|---|"]
        for setup, ci in fresh["setups"].items():
            lines.append(f"| {setup} | {ci['mean']:.3f} [{ci['ci_low']:.3f}, {ci['ci_high']:.3f}] |")
        if "rag_minus_tuned" in fresh:
            d = fresh["rag_minus_tuned"]
            lines += ["", f"rag - tuned on fresh documents: {d['mean']:+.3f} F1 "
                          f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]: what the training cutoff "
                          "costs a tuned model that retrieval does not."]
    iterations = s.get("iterations") or []
    if len(iterations) > 1:
        setups = list(iterations[-1]["setups"])
        lines += ["", "## Iterations (targeted generation for the dev questions the tuned setups "
                      "missed, then retraining; every round scored on the test questions)", "",
                  "| iteration | " + " | ".join(f"{x} F1" for x in setups) + " |",
                  "|---" * (len(setups) + 1) + "|"]
        for it in iterations:
            cells = [f"{it['setups'][x]['f1']['mean']:.3f}" if x in it["setups"] else "—" for x in setups]
            lines.append(f"| {it['iteration']} | " + " | ".join(cells) + " |")
    lines += sweep_lines(s.get("sweeps") or [])
    lines += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def served_line(served: dict[str, dict[str, str]]) -> str:
    """Which setups an endpoint answered (``[eval] serve``), by model name and URL."""
    each = ", ".join(f"`{setup}` by `{x['model']}` at {x['url']}" for setup, x in served.items())
    return (f"Served: {each} (an OpenAI-compatible endpoint answered these setups with the same "
            "prompts, greedy, the same answer length; the others were answered in-process).")


def _preferred_sources(weights: dict[str, float]) -> str:
    """The index's source weights: what the RAG setups' retrieval preferred."""
    listed = ", ".join(f"`{glob}` x{w:g}" for glob, w in weights.items())
    return (f"Retrieval preferred sources (source weights, multiplying the fused scores of "
            f"matching chunks): {listed}.")


def _p(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path | None:
    """Write a figure (None: nothing to draw) and free it."""
    if fig is None:
        return None
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _plt().close(fig)
    return path


def bars_figure(s: dict[str, Any]) -> Any:
    """Every metric any setup has, a bar per setup; a zero is a line and a "0" at the
    baseline (a bar of height 0 is invisible), a metric a setup lacks says "n/a"."""
    plt = _plt()
    setups = list(s["setups"])
    metrics = ordered_metrics({m for row in s["setups"].values() for m in row})
    fig, ax = plt.subplots(figsize=(2.4 + 0.9 * len(metrics), 3.8))
    width = 0.8 / max(1, len(setups))
    lowest = 0.0
    for i, setup in enumerate(setups):
        row = s["setups"][setup]
        xs = [j + i * width for j in range(len(metrics))]
        have = [(x, row[m]) for x, m in zip(xs, metrics, strict=True)
                if m in row and row[m]["mean"] == row[m]["mean"]]  # NaN: nothing to draw
        bars = ax.bar([x for x, _ in have], [c["mean"] for _, c in have], width, capsize=3,
                      yerr=[[c["mean"] - c["ci_low"] for _, c in have],
                            [c["ci_high"] - c["mean"] for _, c in have]], label=setup)
        color = bars.patches[0].get_facecolor() if bars.patches else "grey"
        for x, c in have:
            lowest = min(lowest, c["ci_low"])
            if c["mean"] == 0:
                ax.hlines(0, x - width / 2, x + width / 2, colors=[color], linewidth=3,
                          zorder=3, clip_on=False)
                ax.text(x, c["ci_high"] + 0.01, "0", ha="center", va="bottom", fontsize=7)
        for x in sorted(set(xs) - {x for x, _ in have}):
            ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=6, rotation=90,
                    color="grey")
    ax.set_xticks([j + width * (len(setups) - 1) / 2 for j in range(len(metrics))], metrics,
                  rotation=30 if len(metrics) > 6 else 0)
    ax.set_ylim(lowest, 1)  # an embedding similarity can be below 0
    ax.set_title("Scores per setup (95% bootstrap intervals)")
    ax.legend(fontsize=8)
    return fig


def heatmap_figure(preds: list[dict]) -> Any:
    """Mean F1 per document and setup; a ★ on the best setup of each document, on every one
    of a tie (none where all score 0)."""
    docs = sorted({p.get("doc") or "" for p in preds} - {""})
    setups = list(dict.fromkeys(p["setup"] for p in preds))
    if not docs:
        return None
    plt = _plt()
    import numpy as np

    grid = np.zeros((len(docs), len(setups)))
    for i, d in enumerate(docs):
        for j, s in enumerate(setups):
            vals = [p["f1"] for p in preds if p.get("doc") == d and p["setup"] == s
                    and p["f1"] is not None]
            grid[i, j] = sum(vals) / len(vals) if vals else np.nan
    fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(setups), 1.2 + 0.28 * len(docs)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(setups)), setups)
    ax.set_yticks(range(len(docs)), [d[-40:] for d in docs], fontsize=7)
    for i in range(len(docs)):
        top = np.nanmax(grid[i]) if not np.all(np.isnan(grid[i])) else 0.0
        for j in np.flatnonzero(np.isclose(grid[i], top)) if top > 0 else []:
            # viridis is yellow near 1: a white star there would not show
            ax.text(j, i, "★", ha="center", va="center", fontsize=8,
                    color="black" if top > 0.6 else "white")
    fig.colorbar(im, ax=ax, label="mean F1")
    ax.set_title("Mean F1 per document\n★ = best setup (each of a tie)", fontsize=9)
    return fig


def _losses(ws: Workspace, path: Path, models: dict[str, str | None] | None) -> Path | None:
    """The loss curves of the models this evaluation scored (an evaluation from before
    lineage was recorded: the current model of each kind)."""
    if models is None:
        latest = given(ws, None).models
        ids = {kind: latest.get(kind) for kind in adapter_kinds()}
    else:
        ids = {SETUPS[s].adapter: mid for s, mid in models.items()
               if mid and s in SETUPS and SETUPS[s].adapter}
    curves = {}
    for kind, mid in ids.items():
        f = ws.artefact("models", mid) / "curves.json" if mid else None
        if f and f.exists():
            curves[f"{kind} {mid[:8]}"] = json.loads(f.read_text())
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for kind, c in curves.items():
        for key, style in (("train", "-"), ("val", "--")):
            pts = c.get(key) or []
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=f"{kind} {key}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training and validation loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# -- training settings chosen on validation (train --sweep) ----------------------------------


def sweeps_of(ws: Workspace, models: dict[str, str | None] | None) -> list[dict[str, Any]]:
    """The latest sweep that chose each scored model (an evaluation from before lineage was
    recorded: the current model of each kind), with its settings and validation curves."""
    if models is None:
        latest = given(ws, None).models
        ids = [latest.get(kind) for kind in adapter_kinds()]
    else:
        ids = [mid for s, mid in models.items() if s in SETUPS and SETUPS[s].adapter]
    out = []
    for mid in dict.fromkeys(i for i in ids if i):
        found = ws.ledger.sweeps(best_model_id=mid)
        if found:
            sweep = found[0]
            out.append({"id": sweep["id"], "kind": sweep["kind"], "best_model_id": mid,
                        "settings": [{k: row[k] for k in ("settings", "model_id", "val_loss", "curve")}
                                     for row in ws.ledger.sweep_settings(sweep["id"])]})
    return out


def sweep_lines(sweeps: list[dict[str, Any]]) -> list[str]:
    """A markdown table per sweep: every setting's validation loss, the chosen one marked."""
    lines: list[str] = []
    for sw in sweeps:
        keys = list(sw["settings"][0]["settings"]) if sw["settings"] else []
        lines += ["", f"## Training settings chosen on validation ({sw['kind']}, "
                      f"{len(sw['settings'])} settings)", "",
                  "| " + " | ".join(keys) + " | validation loss | model |",
                  "|---" * (len(keys) + 2) + "|"]
        for row in sw["settings"]:
            chosen = " (chosen)" if row["model_id"] == sw["best_model_id"] else ""
            lines.append("| " + " | ".join(str(row["settings"][k]) for k in keys)
                         + (f" | {row['val_loss']:.4f}" if row["val_loss"] is not None else " | diverged")
                         + f"{chosen} | `{row['model_id']}` |")
    return lines


def sweep_plot(sweeps: list[dict[str, Any]], path: Path) -> Path | None:
    """Validation loss against step for every setting of each sweep (the chosen one bold)."""
    if not sweeps:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 3.6), squeeze=False)
    for ax, sw in zip(axes[0], sweeps, strict=True):
        for row in sw["settings"]:
            pts = row["curve"] or []
            label = " ".join(f"{k}={v}" for k, v in row["settings"].items())
            best = row["model_id"] == sw["best_model_id"]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".",
                        linewidth=2.5 if best else 1, label=label + (" (chosen)" if best else ""))
        ax.set_xlabel("step")
        ax.set_ylabel("validation loss")
        ax.set_title(f"Validation loss per setting ({sw['kind']})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def recall_figure(preds: list[dict]) -> Any:
    """Recall@k of the rag setup's retrieval for k = 1 .. the k it used (whole k only)."""
    rag = [p for p in preds if p["setup"] == "rag" and p.get("gold_chunk_ids")]
    if not rag:
        return None
    k_max = max(len(p["retrieved_chunk_ids"]) for p in rag)
    if k_max == 0:
        return None
    ks = list(range(1, k_max + 1))
    recall = [sum(bool(set(p["retrieved_chunk_ids"][:k]) & set(p["gold_chunk_ids"])) for p in rag) / len(rag)
              for k in ks]
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(ks, recall, marker="o", label=f"rag: {len(rag)} questions with a gold chunk")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, k_max + 0.5)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("k (chunks retrieved)")
    ax.set_ylabel("recall@k")
    ax.set_title("Retrieval: gold chunk in the top k")
    ax.legend(fontsize=8, loc="lower right")
    return fig
