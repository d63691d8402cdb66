"""``synthloop run`` end to end on a tiny corpus with a tiny student, then unchanged again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# each test runs whole pipelines (two trainings, five setups scored) in subprocesses: on a busy
# machine the first alone took more than the 300 s default; every wait below fits in this
pytestmark = pytest.mark.timeout(900)

SCRIPT = Path(sys.executable).parent / "synthloop"


def _corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = [
        "# Ferry\n\nThe island ferry leaves Pier 3 at 7:15 every morning. The harbour master is Ilse Brannock.",
        "# Market\n\nThe fish market on the quay opens at 9:30 on weekdays. A stall licence costs 40 crowns.",
        "# Lighthouse\n\nThe lighthouse at Kestrel Point was built in 1842. Tours start at 11:45 in summer.",
        "# Library\n\nThe Saltgate library lends up to 12 books per card. Late fees rise to 3 crowns a week.",
    ]
    for i, text in enumerate(texts):
        (docs / f"d{i}.md").write_text(text + "\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps({"question": q, "answers": [a], "doc": f"d{i}.md"})
                              for i, (q, a) in enumerate([
                                  ("When does the boat to the island go?", "7:15"),
                                  ("What time do fish sellers open?", "9:30"),
                                  ("When can I tour the lighthouse?", "11:45"),
                                  ("How many books can I borrow?", "12 books")])))
    return docs, gold


def _cmd(tmp_path, docs, gold, student, *extra):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[generate]\ncontext_tokens = 120\n[train]\nmax_steps = 4\nbatch_size = 4\nmax_length = 1024\n"
                   "[eval]\nmax_new_tokens = 6\nn_boot = 200\ncontext_tokens = 120\n")
    return [str(SCRIPT), "run", str(docs), "--eval-set", str(gold), "--student",
            f"hf:{student}", "-w", str(tmp_path / "ws"), "--config", str(cfg), "--json", *extra]


def test_run_end_to_end_then_every_cache_hits(tmp_path, tiny_student):
    cmd = _cmd(tmp_path, *_corpus(tmp_path), tiny_student)
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=480)
    assert first.returncode == 0, first.stderr[-3000:]
    out = json.loads(first.stdout)
    assert set(out["setups"]) == {"base", "rag", "tuned", "tuned+rag", "combined"}
    assert out["setups"]["rag"]["f1"]["ci_low"] <= out["setups"]["rag"]["f1"]["mean"]
    assert out["verdict"] and Path(out["report"]["markdown"]).exists()
    assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in out["report"]["plots"])
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)  # all cached
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads(again.stdout)
    assert all(second["cached"].values()) and len(second["cached"]) >= 6, second["cached"]
    assert second["setups"] == out["setups"]
    merged = tmp_path / "merged"
    ambiguous = subprocess.run([str(SCRIPT), "export", "--merge", "-o", str(merged), "-w",
                                str(tmp_path / "ws")], capture_output=True, text=True, timeout=90)
    assert ambiguous.returncode == 2 and "tuned (" in ambiguous.stderr  # tuned or combined?
    assert "combined (" in ambiguous.stderr and not merged.exists()
    exported = subprocess.run([str(SCRIPT), "export", "--merge", "--model", "tuned", "-o",
                               str(merged), "-w", str(tmp_path / "ws"), "--json"],
                              capture_output=True, text=True, timeout=90)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert json.loads(exported.stdout)["model_id"] == out["models"]["tuned"]
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(merged, use_safetensors=True) is not None
    card = (merged / "README.md").read_text()
    f1 = out["setups"]["tuned"]["f1"]  # the card's scores are this evaluation's tuned F1
    assert f"tuned: F1 {f1['mean']:.3f} [{f1['ci_low']:.3f}, {f1['ci_high']:.3f}]" in card
    assert "human gold set (gold.jsonl)" in card and "combined:" not in card


def test_iterations_add_targeted_data_and_report_each_round(tmp_path, tiny_student):
    from loop.samples import load_samples
    from loop.workspace import Workspace

    out = subprocess.run(_cmd(tmp_path, *_corpus(tmp_path), tiny_student, "--iterations", "2"),
                         capture_output=True, text=True, timeout=840)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    rounds = summary["iterations"]
    assert [r["iteration"] for r in rounds] == [1, 2]
    assert rounds[0]["models"]["tuned"] != rounds[1]["models"]["tuned"]  # retrained
    split = summary["split"]
    assert (split["dev"], split["test"], split["by"]) == (2, 2, "document")
    report = json.loads(Path(summary["report"]["json"]).read_text())
    assert report["split"] == split and report["questions"] == 2  # the test part only
    with Workspace(tmp_path / "ws") as ws:
        merged = [d for d in ws.ledger.conn.execute("SELECT config FROM datasets "
                                                    "WHERE teacher = 'merge'")]
        assert merged and "merged_from" in merged[0]["config"]
        assert len(load_samples(ws)) > 0
        targeted = load_samples(ws, json.loads(merged[0]["config"])["merged_from"][1])
        from loop.corpus import load_corpus

        source = {c["chunk_id"]: c["source"] for c in load_corpus(ws)}
        test_file = next((ws.root / "splits").glob("*/gold.test.jsonl"))
        test_docs = {json.loads(line)["doc"] for line in test_file.read_text().splitlines()}
        for rnd in rounds:  # every round scored on the test questions only
            scored = json.loads((ws.eval_dir(rnd["eval_id"]) / "scores.json").read_text())
            assert scored["questions"] == 2 and "test part" in scored["origin"]
    assert len(targeted) > 0
    # no targeted sample comes from a test question's document
    assert not {source[c].rsplit("/", 1)[-1] for s in targeted for c in s["chunk_ids"]} & test_docs


def test_fresh_documents_are_indexed_but_never_trained_on(tmp_path, tiny_student):
    from loop.corpus import load_corpus
    from loop.samples import load_samples
    from loop.workspace import Workspace

    docs, gold = _corpus(tmp_path)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "new.md").write_text("# Bridge\n\nThe new Tidewater bridge opened on 3 May 2031. "
                                  "Its toll is 2 crowns for cars.\n")
    with open(gold, "a") as f:
        f.write("\n" + json.dumps({"question": "When did the Tidewater bridge open?",
                                   "answers": ["3 May 2031"], "doc": "new.md"}))
    out = subprocess.run(_cmd(tmp_path, docs, gold, tiny_student, "--fresh", str(fresh)),
                         capture_output=True, text=True, timeout=840)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    report = Path(summary["report"]["json"])
    probe = json.loads(report.read_text())["probes"]["freshness"]
    assert probe["questions"] == 1 and probe["documents"] == ["fresh/new.md"]
    assert "rag_minus_tuned" in probe
    assert "Freshness probe" in Path(summary["report"]["markdown"]).read_text()
    with Workspace(tmp_path / "ws") as ws:
        sources = dict(zip(*load_corpus(ws).select_columns(["chunk_id", "source"]).to_dict().values(),
                           strict=True))
        fresh_chunks = {c for c, s in sources.items() if s.startswith("fresh/")}
        assert fresh_chunks  # indexed and in the corpus for retrieval
        trained = {c for ids in load_samples(ws)["chunk_ids"] for c in ids}
        assert not trained & fresh_chunks  # never trained on
