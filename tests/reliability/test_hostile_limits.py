"""Smaller limits: `ask` takes the safety flags `eval` has (a pickle-only student is refused
unless --allow-pickle), and an artefact whose Arrow file was cut short since it was written
is one line naming the folder and the command that makes it again (it was pyarrow's
"Expected to read N bytes", naming no file)."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from loop.cli import app
from loop.workspace import Workspace

runner = CliRunner()


def _pickled(src, dst):
    import torch
    from safetensors.torch import load_file

    shutil.copytree(src, dst)
    torch.save(load_file(str(dst / "model.safetensors")), dst / "pytorch_model.bin")
    (dst / "model.safetensors").unlink()
    return dst


def test_ask_takes_allow_pickle_like_eval(tmp_path, tiny_student):
    pickled = _pickled(tiny_student, tmp_path / "pickled")
    Workspace(tmp_path / "ws").close()
    argv = ["ask", "When does the ferry leave?", "-w", str(tmp_path / "ws"), "--student",
            f"hf:{pickled}", "--setups", "base", "--max-new-tokens", "2", "--device", "cpu", "--json"]
    r = runner.invoke(app, argv)
    assert r.exit_code == 1 and "only pickle weights" in json.loads(r.stdout)["error"], r.output
    r = runner.invoke(app, [*argv, "--allow-pickle"])
    assert r.exit_code == 0, r.output
    assert [a["setup"] for a in json.loads(r.stdout)["answers"]] == ["base"]
    assert "--trust-remote-code" in runner.invoke(app, ["ask", "--help"]).stdout


def _cut_arrow(folder):
    (arrow,) = folder.glob("data/*.arrow")
    size = arrow.stat().st_size
    with open(arrow, "r+b") as f:
        f.truncate(size // 2)


def test_a_cut_short_corpus_or_dataset_names_its_folder_and_the_rebuild(tmp_path, rel):
    from loop.corpus import corpus_path
    from loop.ingest import ingest
    from loop.samples import dataset_path

    with Workspace(tmp_path / "ws") as ws:
        ingest(ws, [rel.write_docs(tmp_path / "docs")])
        dataset_id = rel.train_kit.write_dataset(ws, rel.train_kit.fact_rows())
        corpus, dataset = corpus_path(ws), dataset_path(ws, dataset_id)
    _cut_arrow(corpus)
    r = runner.invoke(app, ["index", "-w", str(tmp_path / "ws"), "--json"])
    error = json.loads(r.stdout)["error"]
    assert r.exit_code == 1 and str(corpus / "data") in error and "synthloop ingest" in error, r.output
    _cut_arrow(dataset)
    r = runner.invoke(app, ["export", "-o", str(tmp_path / "out.jsonl"), "-w", str(tmp_path / "ws"),
                            "--json"])
    error = json.loads(r.stdout)["error"]
    assert r.exit_code == 1 and str(dataset / "data") in error and "synthloop generate" in error, r.output
