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
