"""A served setup against the real ``transformers serve`` on SmolLM2-135M-Instruct, started
by ``eval --engine transformers``: served ``base`` and ``rag`` give the same answers, and so
the same scores, as the in-process ones on the same three questions (greedy, the same
prompts), and the engine is stopped when the eval ends.

Both sides run fp32: ``transformers serve`` is started with ``--dtype float32`` and the eval
with ``dtype = "fp32"``. With ``dtype = "auto"`` the eval runs bf16 on a CPU with AVX512-BF16
or AMX, and greedy decoding in bf16 and fp32 can part after a few tokens; that is a real
difference between two numeric formats, not between served and in-process answering.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.serving import needs_serve

pytestmark = [needs_serve, pytest.mark.slow,
              # dequantizing (~25 s), the server's start and 12 short CPU generations
              pytest.mark.timeout(600)]

GOLD = [
    {"question": "From which pier does the ferry to Kell Island leave?", "answers": ["Pier 7"]},
    {"question": "How much does a return ferry ticket to Kell Island cost?", "answers": ["14 euros"]},
    {"question": "At what time does Tarn Park open?", "answers": ["8 in the morning", "8"]},
]


def test_served_base_and_rag_answer_as_the_in_process_ones(tmp_path):
    from datasets import load_from_disk

    from loop.eval.stage import EvalConfig, evaluate
    from loop.index import IndexConfig, build_index
    from loop.ingest import ingest
    from loop.workspace import Workspace

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferries.md").write_text(
        "# Ferries\n\nThe Marrowick ferry to Kell Island leaves from Pier 7 at 06:40 every "
        "weekday. A return ticket costs 14 euros.\n")
    (docs / "parks.md").write_text(
        "# Parks\n\nTarn Park opens at 8 in the morning and closes at dusk. Dogs must be kept "
        "on a lead near the pond.\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in GOLD) + "\n")
    common = {"setups": ["base", "rag"], "max_new_tokens": 16, "k": 1, "n_boot": 200,
              "dtype": "fp32"}
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [docs])
        build_index(ws, IndexConfig())
        t0 = time.monotonic()
        local = evaluate(ws, EvalConfig(student="smollm2", **common), eval_set=gold)
        t1 = time.monotonic()
        served = evaluate(ws, EvalConfig(student="smollm2", engine="transformers",
                                         serve_concurrency=1, **common), eval_set=gold)
        from loop.models.students import materialize_gguf, smollm2_path

        folder = str(materialize_gguf(smollm2_path(), ws))
        t2 = time.monotonic()

    def answers(result):
        rows = load_from_disk(str(result.path / "predictions")).to_list()
        return {(p["setup"], p["eval_id"]): (p["raw"], p["f1"], p["em"]) for p in rows}

    a, b = answers(local), answers(served)
    print(f"\nin-process {t1 - t0:.1f}s, served {t2 - t1:.1f}s")
    for key in sorted(a):
        print(key, repr(a[key][0]), "|", repr(b[key][0]))
    assert len(a) == 6 and a == b  # every raw reply, F1 and EM
    for setup in ("base", "rag"):
        assert served.setups[setup]["f1"] == local.setups[setup]["f1"]
    assert served.lineage["served"]["rag"]["model"] == folder
    assert served.lineage["served"]["base"] == served.lineage["served"]["rag"]
    url = served.lineage["served"]["rag"]["url"]
    with pytest.raises(OSError):  # the engine was stopped when the eval ended
        urllib.request.urlopen(f"{url}/models", timeout=5)
    assert local.setups["rag"]["hit"]["mean"] == 1.0  # the chunk was in the prompt
