"""A plugin from outside the repository: a throw-away distribution (a ``*.dist-info`` with
``entry_points.txt`` on ``sys.path``) adds a teacher, a metric and a setup; the CLI lists
them and uses them, and a name taken twice is one clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''
from generators.teachers.rules import RulesTeacher
from loop.eval.metrics import Metric
from loop.eval.setups import Setup


class ShoutyTeacher(RulesTeacher):
    """The rules teacher's rows, answers in capitals: its rows are told apart."""

    uri = "shouty"

    def run(self, jobs, on_result):
        def loud(job, result):
            for item in result.items:
                for pair in getattr(item, "pairs", []):
                    pair.answer = pair.answer.upper()
            on_result(job, result)

        super().run(jobs, loud)


def factory(model, **options):
    return ShoutyTeacher()


factory.needs_model = False

SHORT = Metric("short", "answer under 5 words", 2.5,
               per_answer=lambda answer, q, shown: float(len(answer.split()) < 5))
TWIN = Setup("base-twin", None, False, 0.5, "the base model again")
'''


def _distribution(root: Path, name: str, module: str, entry_points: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{name.replace('-', '_')}.py").write_text(module)
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return root


def _cli(args: list[str], plugin_path: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), str(ROOT)]),
           "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "loop", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=280)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    return _distribution(tmp_path_factory.mktemp("site"), "synthloop-demo-plugin", PLUGIN, """
        [synthloop.teachers]
        shouty = synthloop_demo_plugin:factory

        [synthloop.metrics]
        short = synthloop_demo_plugin:SHORT

        [synthloop.setups]
        base-twin = synthloop_demo_plugin:TWIN
        """)


def test_a_plugin_teacher_metric_and_setup_are_listed_and_used(plugin, tmp_path, tiny_student):
    listed = _cli(["plugins", "--json"], plugin, tmp_path)
    assert listed.returncode == 0, listed.stderr
    kinds = json.loads(listed.stdout)["kinds"]
    owner = "synthloop-demo-plugin 0.1"
    for kind, name in (("teacher", "shouty"), ("metric", "short"), ("setup", "base-twin")):
        assert {"name": name, "owner": owner} in kinds[kind]["registered"], kind
    assert {"name": "rules", "owner": "built-in"} in kinds["teacher"]["registered"]

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves Pier 3 at 7:15 every morning. "
                                   "The harbour master is Ada Quill.\n")
    (docs / "fees.md").write_text("# Fees\n\nHarbour mooring fees are 12 crowns a night.\n")
    ws = tmp_path / "ws"
    assert _cli(["ingest", str(docs), "-w", str(ws)], plugin, tmp_path).returncode == 0
    gen = _cli(["generate", "--teacher", "shouty", "--tasks", "qa", "-w", str(ws), "--json"],
               plugin, tmp_path)
    assert gen.returncode == 0, gen.stderr
    made = json.loads(gen.stdout)
    assert made["samples"] > 0
    from datasets import load_from_disk

    rows = load_from_disk(str(Path(made["dataset_path"]) / "data")).to_list()
    answers = [m["content"] for r in rows for m in r["messages"] if m["role"] == "assistant"]
    assert answers and all(a == a.upper() for a in answers)  # the plugin's teacher wrote them
    assert {r["teacher"] for r in rows} == {"shouty"}

    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"question": "When does the ferry leave?", "answers": ["7:15"], "doc": "ferry.md"},
        {"question": "What do mooring fees cost?", "answers": ["12 crowns"], "doc": "fees.md"},
    ]))
    scored = _cli(["eval", "-w", str(ws), "--eval-set", str(gold), "--student", f"hf:{tiny_student}",
                   "--setups", "base,base-twin", "--max-new-tokens", "4", "--json"], plugin, tmp_path)
    assert scored.returncode == 0, scored.stderr
    setups = json.loads(scored.stdout)["setups"]
    assert set(setups) == {"base", "base-twin"}
    assert "short" in setups["base-twin"] and "short" in setups["base"]
    # the same student, the same prompt: the twin answers as base does
    assert setups["base-twin"]["f1"]["mean"] == setups["base"]["f1"]["mean"]


def test_a_name_taken_twice_and_a_plugin_that_cannot_load_are_one_clear_line(plugin, tmp_path):
    dup = _distribution(tmp_path / "dup", "synthloop-dup-plugin", PLUGIN, """
        [synthloop.teachers]
        rules = synthloop_dup_plugin:factory
        """)
    r = _cli(["plugins"], dup, tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "teacher 'rules' from synthloop-dup-plugin 0.1 is already registered (by built-in)" in r.stderr

    broken = _distribution(tmp_path / "broken", "synthloop-broken-plugin", "import nothing_here\n", """
        [synthloop.metrics]
        broken = synthloop_broken_plugin:METRIC
        """)
    r = _cli(["plugins"], broken, tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "metric 'broken' from synthloop-broken-plugin 0.1 cannot load" in r.stderr
    assert "ModuleNotFoundError" in r.stderr
