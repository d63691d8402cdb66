"""The README opens with exactly two set-up commands, and .ci/run runs the second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands():
    text = (ROOT / "README.md").read_text()
    head = text.split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", head, re.DOTALL)


def test_readme_opens_with_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2 and all("\n" not in c for c in cmds)
    assert "pytest" in cmds[1] and "pytest" not in cmds[0]
    assert "-c constraints.txt" in cmds[0] and "-c constraints.txt" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci


def test_constraints_pin_only_torch():
    lines = [ln for ln in (ROOT / "constraints.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines == ["torch==2.13.0"]
