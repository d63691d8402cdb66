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
