import pytest

from loop.config import resolve
from loop.errors import ConfigError
from loop.ingest.config import IngestConfig
from loop.stages import read_config_file


def test_flags_override_file_and_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[ingest]\nchunk_tokens = 100\noverlap_tokens = 10\n")
    cfg = resolve(IngestConfig, read_config_file(f)["ingest"], overlap_tokens=5, chunk_tokens=None)
    assert (cfg.chunk_tokens, cfg.overlap_tokens, cfg.min_chunk_tokens) == (100, 5, 24)


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ("[ingest]\nchunk_size = 3\n", ["unknown key 'chunk_size'", "chunk_tokens"]),
        ("[ingest]\nchunk_tokens = 'big'\n", ["chunk_tokens", "big"]),
        ("[ingest]\nchunk_tokens = 1\n", ["chunk_tokens", "greater than or equal"]),
        ("[injest]\nchunk_tokens = 100\n", ["unknown section [injest]"]),
        ("[ingest\n", ["not valid TOML"]),
    ],
)
def test_bad_config_names_the_key(tmp_path, toml, words):
    f = tmp_path / "c.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as err:
        resolve(IngestConfig, read_config_file(f).get("ingest"))
    for w in words:
        assert w in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_config_file(tmp_path / "nope.toml")


def test_digest_changes_with_config():
    assert IngestConfig().digest() == IngestConfig().digest() != IngestConfig(chunk_tokens=100).digest()


def test_one_file_for_every_stage_is_read_and_checked_whole(tmp_path):
    """A verb imports only its own stage; the file's other sections still load and are
    checked, so a typo under [eval] is caught by `synthloop ingest` too."""
    import subprocess
    import sys

    good = tmp_path / "all.toml"
    good.write_text("[ingest]\nchunk_tokens = 200\n[generate]\nper_chunk = 2\n[index]\nk = 4\n"
                    "[train]\nepochs = 2\n[eval]\nk = 3\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[ingest]\nchunk_tokens = 200\n[eval]\nkk = 3\n")
    code = ("import sys; from loop.stages import read_config_file; from loop.errors import "
            "ConfigError\nprint(sorted(read_config_file(sys.argv[1])))\n"
            "try:\n    read_config_file(sys.argv[2])\nexcept ConfigError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(good), str(bad)], capture_output=True,
                         text=True, check=True).stdout  # a fresh process: nothing pre-imported
    assert "['eval', 'generate', 'index', 'ingest', 'train']" in out
    assert "[eval] unknown key 'kk'" in out


def test_combined_section_sets_the_combined_adapter_apart(tmp_path):
    """`run`'s [combined] table holds [train] keys for the context-trained adapter only; its
    keys are checked as [train] keys (over the file's [train] table), typos named."""
    from loop.stages import RunConfig

    f = tmp_path / "c.toml"
    f.write_text('[train]\nlr = 1e-3\n[combined]\nmax_steps = 12\ninit_from = "tuned"\n')
    cfgs = RunConfig.from_tables(read_config_file(f))
    assert cfgs.train.lr == 1e-3 and cfgs.train.max_steps == -1
    assert cfgs.combined == {"max_steps": 12, "init_from": "tuned"}
    f.write_text("[combined]\nmax_stpes = 12\n")
    with pytest.raises(ConfigError, match="unknown key 'max_stpes'"):
        read_config_file(f)


def test_pretrain_then_sft_trains_combined_on_the_pretrained_model(monkeypatch):
    """With `method = "pretrain"` and `then_sft`, the tuned adapter sits on the pretrained
    model; the combined adapter is SFT on that same model (which continuing the tuned adapter
    requires), not a second pretraining of the student."""
    from types import SimpleNamespace

    from loop import pipeline as P
    from loop.handoff import Inputs
    from loop.pipeline import _train_both
    from loop.stages import RunConfig
    from loop.train.config import TrainConfig

    seen = []

    def train(ws, cfg, emit, *, inputs):
        name = "combined" if cfg.with_context else "tuned"
        seen.append((name, cfg))
        return SimpleNamespace(model_id=f"id-train-{name}")

    monkeypatch.setattr(P, "train", train)
    ws = SimpleNamespace(ledger=SimpleNamespace(
        model=lambda mid: {"id": mid, "student": "model:pretrained-1"}))
    cfgs = RunConfig(train=TrainConfig(method="pretrain", then_sft=True),
                     combined={"init_from": "tuned", "max_steps": 12})
    out = _train_both(ws, cfgs, P._Clock(lambda e: None), lambda e: None, Inputs(dataset_id="d"))
    assert out == {"tuned": "id-train-tuned", "combined": "id-train-combined"}
    (_, tuned), (_, combined) = seen
    assert (tuned.method, tuned.then_sft, tuned.with_context) == ("pretrain", True, False)
    assert (combined.method, combined.then_sft, combined.student) == ("lora", False, "model:pretrained-1")
    assert combined.with_context and combined.init_from == "tuned" and combined.max_steps == 12
