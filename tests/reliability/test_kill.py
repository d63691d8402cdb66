"""kill -9 at random moments in ``generate``, ``index``, ``train``, ``eval`` and ``run``: the same
command re-run completes, its result equals an uninterrupted run's, and the ledger passes
``PRAGMA integrity_check`` after the kill and after the re-run.

The default run does one trial of generate, index, train and eval; ``SYNTHLOOP_TRIALS=N``
(``bench/reliability.py``) does N of each and of ``run`` (~80 s a trial). Kill moments are
drawn from a seeded generator, so a trial is reproducible: within a fixed window from the
start for generate, index and train (start-up included: a kill while Python imports is a
moment too), within the measured length of an uninterrupted run for ``run``, and for odd
train trials within 0.6 s after the first checkpoint is complete (so resuming is exercised).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from loop.workspace import ARTEFACT_KINDS, Workspace

# Seconds after start within which the kill lands: wide enough to reach the stage's real
# work on 2 busy cores, short enough that the stage has rarely finished.
WINDOWS = {"generate": (0.5, 3.0), "index": (1.0, 7.0), "train": (2.0, 6.0), "eval": (3.0, 8.0),
           "run": (0, 0)}
QUERIES = ["When does the ferry leave?", "stall licence", "lighthouse tours", "late fees",
           "dogs on a lead", "glass recycling"]
_REFERENCE: dict[str, object] = {}  # one uninterrupted result per stage, shared by its trials
_DURATION: dict[str, float] = {}


def trials(default: int) -> int:
    """A stage's kill trials: ``default``, or ``$SYNTHLOOP_TRIALS`` for every stage."""
    return int(os.environ.get("SYNTHLOOP_TRIALS", default))


def _cases():
    for stage, n in (("generate", trials(1)), ("index", trials(1)), ("train", trials(1)),
                     ("eval", trials(1)), ("run", trials(0))):  # ~80 s a trial: bench/reliability.py runs them
        for t in range(n):
            yield pytest.param(stage, t, id=f"{stage}-{t}")


def _artefacts(root: Path) -> set[Path]:
    return {f for kind in ARTEFACT_KINDS for f in (root / kind).glob("*") if f.is_dir()}


def _half_written(root: Path, before: set[Path]) -> list[str]:
    """New artefact folders without their manifest: half-written ones taken as complete."""
    return [str(f.relative_to(root)) for f in sorted(_artefacts(root) - before)
            if not (f / "synthloop.json").exists()]


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "trial"), list(_cases()))
def test_kill_9_then_rerun_equals_an_uninterrupted_run(stage, trial, tmp_path, request, rel):
    setup = {"generate": _generate, "index": _index, "train": _train, "eval": _eval,
             "run": _run}[stage]
    args, env, result_of = setup(tmp_path, request, rel)
    if stage not in _REFERENCE:
        t = time.perf_counter()
        _REFERENCE[stage] = result_of(None)
        _DURATION[stage] = time.perf_counter() - t
    lo, hi = WINDOWS[stage]
    if stage == "run":  # a whole run's length varies with the machine: kill within it
        lo, hi = 0.05 * _DURATION[stage], 0.95 * _DURATION[stage]
    root = Path(args[args.index("-w") + 1])
    once = None
    if stage == "train" and trial % 2:  # odd trials: a random moment after a checkpoint
        lo, hi = 0.0, 0.6  # ~40 steps a second here: the 60 steps end ~1.4 s after it
        once = lambda: any(root.glob("checkpoints/*/checkpoint-*/trainer_state.json"))  # noqa: E731
    moment = round(random.Random(f"{stage}-{trial}").uniform(lo, hi), 2)
    before = _artefacts(root)
    killed = rel.kill_after(args, moment, env, once=once)
    after_kill = rel.integrity(root)
    half = _half_written(root, before)
    again = rel.cli(*args, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    after_rerun = rel.integrity(root)
    equal = result_of(root) == _REFERENCE[stage] if stage != "train" else _close(
        result_of(root), _REFERENCE[stage])
    rel.record(f"kill -9 during {stage}", trial=trial, moment_s=moment, killed=killed,
               counted_from="first checkpoint" if once else "start",
               kept=_kept(stage, again.stdout),
           integrity_after_kill=after_kill, integrity_after_rerun=after_rerun,
           half_written_taken_as_complete=len(half), rerun_ok=again.returncode == 0, equal=equal)
    assert after_kill == "ok" and after_rerun == "ok"
    assert half == []
    assert equal, f"{stage}: re-run after kill at {moment}s differs from an uninterrupted run"


def _kept(stage: str, stdout: str) -> str:
    """What the re-run found of the killed run's work (how far into the stage the kill was)."""
    out = json.loads(stdout[stdout.index("{"):])
    if stage != "run" and out.get("cached"):
        return "the killed run had finished its artefact (cache hit)"
    if stage == "generate":
        return f"{out['usage']['cached_calls']} teacher calls cached"
    if stage == "train":
        return f"resumed from {out['resumed_from']}" if out["resumed_from"] else "no checkpoint yet"
    if stage == "eval":
        return "evaluation rebuilt"
    if stage == "run":
        done = [k for k, v in out["cached"].items() if v]
        return f"stages already done: {', '.join(done) or 'none'}"
    return "index rebuilt" if not out["cached"] else "index was complete"


def _close(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


# -- generate: the openai: teacher against the scripted server (its calls are cached) -------


def _generate(tmp_path, request, rel):
    from loop.generate import GenerateConfig, generate
    from loop.ingest import ingest
    from loop.samples import load_samples

    server = request.getfixturevalue("server")
    server.delay = 0.03
    example = request.getfixturevalue("example_dir")
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [example])
    args = ["generate", "-w", tmp_path / "ws", "--teacher", "openai:m", "--teacher-url", server.url,
            "--concurrency", "2", "--tasks", "qa,raft", "--limit", "24", "--json"]
    cfg = GenerateConfig(teacher="openai:m", teacher_url=server.url, concurrency=2,
                         tasks=["qa", "raft"], limit=24)

    def result_of(root):
        if root is None:  # the uninterrupted run, in this process
            shutil.copytree(tmp_path / "ws", tmp_path / "clean", ignore=shutil.ignore_patterns("tmp"))
            with Workspace(tmp_path / "clean") as ws:
                generate(ws, cfg, api_key=rel.FAKE_KEY)
                return load_samples(ws).to_list()
        with Workspace(root) as ws:
            return load_samples(ws).to_list()

    return args, {"OPENAI_API_KEY": rel.FAKE_KEY}, result_of


# -- index: the default MiniLM embedder over a few dozen documents -------------------------


def _index(tmp_path, request, rel):
    from loop.index import build_index, load_retriever
    from loop.ingest import ingest

    docs = {**rel.DOCS, **rel.varied_docs(25)}  # ~120 sentences: embedding takes seconds
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [rel.write_docs(tmp_path / "docs", docs)])

    def result_of(root):
        if root is None:
            shutil.copytree(tmp_path / "ws", tmp_path / "clean", ignore=shutil.ignore_patterns(
                "tmp", "index"))
            root = tmp_path / "clean"
            with Workspace(root) as ws:
                build_index(ws)
        with Workspace(root) as ws:
            r = load_retriever(ws)
            return [[(h.chunk_id, h.text, round(h.score, 4)) for h in r.search(q, k=5)]
                    for q in QUERIES]

    return ["index", "-w", tmp_path / "ws", "--json"], {}, result_of


# -- train: the tiny student, LoRA, checkpoints every 4 steps ------------------------------


def _train(tmp_path, request, rel):
    from safetensors.torch import load_file

    from loop.config import resolve
    from loop.stages import read_config_file
    from loop.train import TrainConfig, train

    student = request.getfixturevalue("tiny_student")
    cfg_file = tmp_path / "train.toml"
    cfg_file.write_text(
        f'[train]\nstudent = "hf:{student}"\nmax_steps = 60\nsave_steps = 4\neval_steps = 4\n'
        'patience = 0\nbatch_size = 4\nmax_length = 128\nlr = 0.005\nlora_r = 8\n'
        'lora_dropout = 0.0\nwarmup_ratio = 0.0\ndevice = "cpu"\ndtype = "fp32"\nseed = 7\n')
    with Workspace(tmp_path / "ws") as ws:
        rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows())

    def result_of(root):
        if root is None:
            shutil.copytree(tmp_path / "ws", tmp_path / "clean", ignore=shutil.ignore_patterns("tmp"))
            with Workspace(tmp_path / "clean") as ws:
                cfg = resolve(TrainConfig, read_config_file(cfg_file)["train"])
                path = train(ws, cfg).path
        else:
            with Workspace(root) as ws:
                from loop.models.merge import current_model_id

                path = ws.artefact("models", current_model_id(ws))
        return load_file(str(path / "adapter" / "adapter_model.safetensors"))

    return ["train", "-w", tmp_path / "ws", "--config", cfg_file, "--json"], {}, result_of


# -- eval: the tiny student, base and rag, on a gold set -----------------------------------


def _eval(tmp_path, request, rel):
    from loop.index import build_index
    from loop.ingest import ingest

    student = request.getfixturevalue("tiny_student")
    docs = {**rel.DOCS, **rel.varied_docs(12)}
    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [rel.write_docs(tmp_path / "docs", docs)])
        build_index(ws)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps({"question": f"What is the fee for berth {i}?",
                                          "answers": [f"{i + 3} crowns"]}) for i in range(12))
                    + "\n" + "\n".join(json.dumps({"question": q, "answers": ["7:15"]})
                                        for q in QUERIES))
    cfg = tmp_path / "eval.toml"
    cfg.write_text(f'[eval]\nstudent = "hf:{student}"\nsetups = ["base", "rag"]\n'
                   'max_new_tokens = 12\nn_boot = 200\ndevice = "cpu"\n')
    args = ["eval", "-w", tmp_path / "ws", "--eval-set", gold, "--config", cfg, "--json"]

    def result_of(root):
        if root is None:
            shutil.copytree(tmp_path / "ws", tmp_path / "clean", ignore=shutil.ignore_patterns("tmp"))
            done = rel.cli(*[tmp_path / "clean" if a == tmp_path / "ws" else a for a in args])
            assert done.returncode == 0, done.stderr[-3000:]
            root = tmp_path / "clean"
        from datasets import load_from_disk

        with Workspace(root) as ws:
            eid = ws.ledger.current("eval")
            scores = json.loads((ws.eval_dir(eid) / "scores.json").read_text())
            preds = load_from_disk(str(ws.eval_dir(eid) / "predictions"))
            answers = sorted((p["eval_id"], p["setup"], p["answer"]) for p in preds)
        return {"setups": scores["setups"], "answers": answers}

    return args, {}, result_of


# -- run: the whole loop, tiny student, human gold set ------------------------------------


def _run(tmp_path, request, rel):
    student = request.getfixturevalue("tiny_student")
    docs = rel.write_docs(tmp_path / "docs")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps({"question": q, "answers": [a]}) for q, a in [
        ("When does the island ferry leave?", "7:15"), ("When does the fish market open?", "9:30"),
        ("When was the lighthouse built?", "1842"), ("How many books per card?", "12 books")]))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[generate]\ncontext_tokens = 120\n[train]\nmax_steps = 4\nbatch_size = 4\n"
                   "max_length = 512\nsave_steps = 2\ndevice = \"cpu\"\ndtype = \"fp32\"\n"
                   "[eval]\nmax_new_tokens = 6\nn_boot = 100\ncontext_tokens = 120\n")

    def args_for(root):
        return ["run", docs, "--eval-set", gold, "--student", f"hf:{student}", "-w", root,
                "--config", cfg, "--json"]

    def result_of(root):
        if root is None:
            done = rel.cli(*args_for(tmp_path / "clean"))
            assert done.returncode == 0, done.stderr[-3000:]
            root = tmp_path / "clean"
        return _run_result(root)

    return args_for(tmp_path / "ws"), {}, result_of


def _run_result(root: Path) -> dict:
    """What a finished run is: the dataset rows, the scores, the adapters' weights (rounded:
    equal within float tolerance), the index's answers to the gold questions."""
    from safetensors.torch import load_file

    from loop.samples import load_samples

    with Workspace(root) as ws:
        rows = load_samples(ws).to_list()
        eid = ws.ledger.current("eval")
        scores = json.loads((ws.eval_dir(eid) / "scores.json").read_text())
        weights = {}
        for folder in sorted((root / "models").glob("*/adapter")):
            for k, v in load_file(str(folder / "adapter_model.safetensors")).items():
                weights[f"{folder.parent.name}/{k}"] = [round(x, 4) for x in v.flatten().tolist()[:64]]
    return {"rows": rows, "setups": scores["setups"], "weights": weights}
