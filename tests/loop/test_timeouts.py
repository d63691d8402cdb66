"""No wait inside a test outlasts the test: a subprocess's ``timeout=`` shorter than pytest's
own per-test timeout, so on a busy machine the subprocess times out first and the failure
shows what it was doing, instead of pytest-timeout killing the test at a ``wait()``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]


def _mark_timeout(node: ast.AST) -> float | None:
    """N of a ``pytest.mark.timeout(N)`` anywhere in ``node`` (a decorator, a pytestmark)."""
    for call in ast.walk(node):
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                and call.func.attr == "timeout" and ast.unparse(call.func.value) == "pytest.mark"
                and call.args and isinstance(call.args[0], ast.Constant)):
            return float(call.args[0].value)
    return None


def _literal(node: ast.AST | None) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    return None


def _waits(tree: ast.Module, default: float):
    """(line, seconds, limit) of every numeric ``timeout=`` (a keyword, or a parameter's
    default) with the per-test limit it runs under: its test's mark, the module's
    ``pytestmark``, else the configured one."""
    module = next((_mark_timeout(s) for s in tree.body if isinstance(s, ast.Assign)
                   and any(getattr(t, "id", "") == "pytestmark" for t in s.targets)), None)

    def visit(node: ast.AST, limit: float):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            limit = next(filter(None, map(_mark_timeout, node.decorator_list)), limit)
            args = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults))
            for arg, value in zip(args, defaults + node.args.defaults + node.args.kw_defaults,
                                  strict=True):
                if arg.arg == "timeout" and _literal(value) is not None:
                    yield node.lineno, _literal(value), limit
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "timeout" and _literal(kw.value) is not None:
                    yield node.lineno, _literal(kw.value), limit
        for child in ast.iter_child_nodes(node):
            yield from visit(child, limit)

    yield from visit(tree, module or default)


def test_no_subprocess_timeout_reaches_the_per_test_timeout():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    default = float(config["tool"]["pytest"]["ini_options"]["timeout"])
    too_long = [f"{path.relative_to(REPO)}:{line}: timeout={seconds:g} >= {limit:g}"
                for path in sorted((REPO / "tests").rglob("*.py"))
                for line, seconds, limit in _waits(ast.parse(path.read_text()), default)
                if seconds >= limit]
    assert not too_long, "\n".join(too_long)


def test_the_scan_sees_keywords_defaults_and_marks():
    tree = ast.parse(
        "import pytest\n"
        "def helper(timeout=600): subprocess.run(x, timeout=120)\n"
        "@pytest.mark.timeout(900)\n"
        "def test_slow(): p.communicate(timeout=600)\n")
    assert list(_waits(tree, 300.0)) == [(2, 600.0, 300.0), (2, 120.0, 300.0),
                                         (4, 600.0, 900.0)]
    marked = ast.parse("import pytest\npytestmark = [pytest.mark.timeout(900)]\n"
                       "def f(): run(timeout=600)\n")
    assert list(_waits(marked, 300.0)) == [(3, 600.0, 900.0)]
