"""``--help`` piped at 80 columns: every option name whole, the text as written (a
``[generate]`` is not markup), placeholders that read as words, no empty default; and the
size flags of a first ``run`` reach the stage configs."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from loop.cli import app

runner = CliRunner()
COMMANDS = sorted(typer.main.get_command(app).commands.items())
TYPE_HINT = re.compile(r"<(str|int|float|bool|path|file|directory|list\[[^>]*\]|[\w+]+\|[^>]*)>")


def _help(*argv: str) -> str:
    r = runner.invoke(app, [*argv, "--help"], env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("name,command", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_help_at_80_columns_keeps_every_option_name_whole(name, command):
    out = _help(name)
    assert "…" not in out
    words = set(re.split(r"[\s,/]+", out))
    for param in command.params:
        for flag in (*param.opts, *param.secondary_opts):
            if flag.startswith("-"):
                assert flag in words, (name, flag)
    assert not TYPE_HINT.search(out), (name, TYPE_HINT.search(out)[0])
    assert "[default: ]" not in out and "\\[" not in out
    assert max(map(len, out.splitlines())) <= 80, name
    # lines break at spaces: a default (synthloop-work) or a model name stays copyable
    assert not re.search(r"[A-Za-z]-\n", out), (name, re.search(r".*[A-Za-z]-\n", out)[0])


def test_root_help_has_no_cut_text():
    out = _help()
    assert "…" not in out and "run" in out


def test_section_names_and_placeholders_read_as_written():
    run = _help("run")
    assert "override the [generate], [train] and [eval] keys" in run
    assert "docs... PATH" in run and "--fresh PATH" in run and "--max-steps INT" in run
    assert "--json " in run and "BOOL" not in run  # a flag takes no value
    gen = _help("generate")
    assert "--tasks TEXT,..." in gen and "--val-share FLOAT" in gen
    assert "what this run reads and writes (not [generate] keys):" in gen  # its panel
    assert "--method [bm25|dense|hybrid" in _help("search")
    assert "st:all-MiniLM-L6-v2]" in _help("ingest") and "synthloop-work]" in run
    assert "--reranker TEXT" in _help("search")


def test_run_size_flags_reach_the_stage_configs(monkeypatch, tmp_path):
    import loop.cli.run as run_cli

    seen = {}
    monkeypatch.setattr(run_cli, "_go", lambda ws, docs, cfgs, *a, **kw: seen.update(cfgs=cfgs))
    r = runner.invoke(app, ["run", str(tmp_path), "-w", str(tmp_path / "ws"), "--limit", "12",
                            "--max-questions", "30", "--max-new-tokens", "24",
                            "--max-steps", "5"])
    assert r.exit_code == 0, r.output
    cfgs = seen["cfgs"]
    assert cfgs.generate.limit == 12 and cfgs.train.max_steps == 5
    assert cfgs.eval.max_questions == 30 and cfgs.eval.max_new_tokens == 24
    # left out, the config file's value (or the default) stands
    r = runner.invoke(app, ["run", str(tmp_path), "-w", str(tmp_path / "ws")])
    assert r.exit_code == 0, r.output
    assert seen["cfgs"].generate.limit is None and seen["cfgs"].eval.max_new_tokens == 48
