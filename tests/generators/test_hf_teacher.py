"""The hf: teacher on a tiny model built in the fixture: its output is garbage, and parsing
must reject it cleanly (one repair, then a kept reject), never crash."""

from __future__ import annotations

import pytest

from generators.tasks import get_task
from generators.teachers import Chunk, Job, get_teacher


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, build_tiny_llama):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"),
                            "The harbour opens at dawn. Ferries leave every hour.",
                            vocab_size=300, max_positions=2048)


def test_garbage_output_is_rejected_cleanly(tiny_model):
    teacher = get_teacher(f"hf:{tiny_model}", batch_size=4, params={"max_tokens": 12})
    jobs = [Job(key=f"j{i}", task=get_task("qa"), chunk=Chunk(f"c{i}", "The harbour opens at dawn."))
            for i in range(5)]
    out = {}
    teacher.run(jobs, lambda j, r: out.__setitem__(j.key, r))
    assert set(out) == {f"j{i}" for i in range(5)}
    for r in out.values():
        assert r.error is None and not r.items
        assert r.rejects[0]["reason"] == "parse_error"
        assert r.usage.calls == 2 and r.usage.completion_tokens > 0  # first try + one repair


def test_batched_equals_one_at_a_time(tiny_model):
    msgs = [[{"role": "user", "content": "harbour " * (i + 1)}] for i in range(4)]
    batched = get_teacher(f"hf:{tiny_model}", batch_size=4, params={"max_tokens": 6})
    single = get_teacher(f"hf:{tiny_model}", batch_size=1, params={"max_tokens": 6})
    a, b = {}, {}
    batched.complete_many(msgs, lambda i, r: a.__setitem__(i, r.text))
    single.complete_many(msgs, lambda i, r: b.__setitem__(i, r.text))
    assert a == b  # left padding and the attention mask keep batched greedy decoding exact


def test_refuses_pickle_only_checkpoints(tmp_path, tiny_model):
    import shutil

    import torch

    from generators.errors import TeacherError

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model, pickled)
    weights = pickled / "model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(weights), pickled / "pytorch_model.bin")
    weights.unlink()
    teacher = get_teacher(f"hf:{pickled}")
    with pytest.raises(TeacherError, match="cannot load") as err:
        teacher.complete_many([[{"role": "user", "content": "hi"}]], lambda i, r: None)
    assert "--allow-pickle" in str(err.value)
    # the explicit opt-in (generate --allow-pickle) loads it, as the same model
    got, want = [], []
    get_teacher(f"hf:{pickled}", allow_pickle=True, params={"max_tokens": 4}).complete_many(
        [[{"role": "user", "content": "hi"}]], lambda i, r: got.append(r.text))
    get_teacher(f"hf:{tiny_model}", params={"max_tokens": 4}).complete_many(
        [[{"role": "user", "content": "hi"}]], lambda i, r: want.append(r.text))
    assert got == want
