"""CLI options come from the stage config models: one help text, the default shown, the
choices listed, and every config field a flag."""

from __future__ import annotations

import re

import typer
from typer.testing import CliRunner

from loop.cli import app
from loop.cli.flags import config_flags
from loop.eval.stage import EvalConfig
from loop.generate import GenerateConfig
from loop.index import IndexConfig
from loop.train.config import TrainConfig

runner = CliRunner()


def _help(*verb: str) -> str:
    out = runner.invoke(app, [*verb, "--help"], env={"COLUMNS": "250"}).output
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", out))


def test_every_config_field_is_a_flag_with_its_help_and_default():
    for verb, model in (("ingest", None), ("index", IndexConfig), ("generate", GenerateConfig),
                        ("train", TrainConfig), ("eval", EvalConfig)):
        text = _help(verb)
        if model is None:
            from loop.ingest.config import IngestConfig as model
        for name, f in model.model_fields.items():
            if name in ("focus", "weights"):  # internal, and a table: config file only
                continue
            flag = {"init_from": "--from", "source_weights": "--prefer"}.get(
                name, "--" + name.replace("_", "-"))
            assert flag in text, (verb, name)
            assert (f.description or "")[:30] in text, (verb, name)
    train = _help("train")
    assert "LoRA rank. [default: 16]" in train and "[default: smollm2]" in train
    assert "lora|full|qlora|dpo|pretrain" in train and "--then-sft" in train
    assert "--no-context" in train and "--no-packing" in train
    assert "--no-trust-remote-code" in train  # a config file's `true` can be turned off


def test_registry_choices_are_listed():
    assert re.search(r"choices: qa, knowledge, instruct, .*raft, preference", _help("generate"))
    assert "choices: base, rag, tuned, dpo, tuned+rag, combined" in _help("eval")
    assert "bm25|dense|hybrid" in _help("search")


def test_overrides_are_typed_and_unset_flags_are_none():
    demo = typer.Typer()
    seen = {}

    @demo.command()
    @config_flags(GenerateConfig, only=("tasks", "limit", "teacher", "trust_remote_code"))
    def gen(overrides: dict, extra: int = 1) -> None:
        seen.update(overrides, extra=extra)

    r = runner.invoke(demo, ["--tasks", "qa, raft", "--limit", "3", "--trust-remote-code",
                             "--extra", "2"])
    assert r.exit_code == 0, r.output
    assert seen == {"tasks": ["qa", "raft"], "limit": 3, "teacher": None,
                    "trust_remote_code": True, "extra": 2}
    r = runner.invoke(demo, ["--limit", "many"], env={"COLUMNS": "250"})
    assert r.exit_code == 2 and "Invalid value for '--limit'" in r.output
