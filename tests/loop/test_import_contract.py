"""The core must import and run without Textual (harlequin's import contract)."""

import subprocess
import sys


def test_core_imports_without_textual():
    code = (
        "import sys\n"
        "import loop, loop.cli, loop.ingest, loop.corpus, generators, retrieval\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_core_modules_never_import_textual_in_source():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(p.relative_to(root))
        for pkg in ("loop", "generators", "retrieval")
        for p in (root / pkg).rglob("*.py")
        if any(line.lstrip().startswith(("import textual", "from textual"))
               for line in p.read_text().splitlines())
    ]
    assert offenders == []


def test_textcore_is_a_leaf_both_libraries_can_import():
    """generators and retrieval never import each other or loop; what all three must agree on
    (the answer normaliser, the prompt layout) lives in textcore, which imports none of them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    project = ("loop", "generators", "retrieval", "tui")
    offenders = [str(p.relative_to(root)) for p in (root / "textcore").rglob("*.py")
                 if any(line.lstrip().startswith(tuple(f"{w} {pkg}" for w in ("import", "from")
                                                       for pkg in project))
                        for line in p.read_text().splitlines())]
    assert offenders == []


STAGES = ("ingest", "generate", "index", "train", "eval")


def _imports(path):
    """Every module a file imports, at the top or inside a function (``from a import b``
    gives ``a`` and ``a.b``: b may be a submodule)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_a_stage_package_never_imports_another_stages_internals():
    """A stage imports core modules (loop.models, loop.kinds, loop.probes, the ledger ...),
    libraries, and of another stage only its public face: ``loop.<stage>`` itself (its
    ``__init__``) or its ``config``. Models load through ``loop.models``, which imports no
    stage at all."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bad = []
    for stage in STAGES:
        for p in (root / "loop" / stage).rglob("*.py"):
            for mod in _imports(p):
                parts = mod.split(".")
                if len(parts) < 3 or parts[0] != "loop" or parts[1] not in STAGES:
                    continue
                other, sub = parts[1], parts[2]
                if other == stage or sub == "config":
                    continue
                if (root / "loop" / other / f"{sub}.py").exists() or (root / "loop" / other / sub).is_dir():
                    bad.append(f"{p.relative_to(root)} imports {mod}")
    for p in (root / "loop" / "models").rglob("*.py"):
        bad += [f"{p.relative_to(root)} imports {m}" for m in _imports(p)
                if m.split(".")[:2] in (["loop", s] for s in STAGES)]
    assert bad == []


def test_no_stage_reads_the_current_pointers():
    """Stages hand over by id (``loop.handoff.Inputs``): no module under a stage package
    reads the ledger's "current" pointer of any kind, directly or through the helpers that
    wrap it; the defaults are resolved at the edges (CLI verbs, dashboard, ``run_pipeline``'s
    start) by ``loop.handoff``."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    wrappers = {"current_corpus_id", "current_dataset_id", "current_model_id", "current_inputs"}
    bad = []
    for stage in STAGES:
        for p in (root / "loop" / stage).rglob("*.py"):
            for node in ast.walk(ast.parse(p.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if name == "current" or name in wrappers:
                    bad.append(f"{p.relative_to(root)}:{node.lineno} calls {name}()")
    assert bad == []
    # and the check sees such a call where there is one
    probe = ast.parse("ws.ledger.current('corpus')").body[0].value
    assert isinstance(probe, ast.Call) and probe.func.attr == "current"
