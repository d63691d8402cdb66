"""Source weights in generation: a preferred source is asked more items per chunk, so it
gets more samples; without weights nothing changes (ids, jobs, rows)."""

from __future__ import annotations

from collections import Counter

import pytest

from loop.config import resolve
from loop.corpus import load_corpus
from loop.errors import ConfigError
from loop.generate import GenerateConfig, generate
from loop.generate.jobs import items_per_chunk
from loop.ingest import ingest
from loop.samples import load_samples
from loop.workspace import Workspace

# seven facts each that the rules teacher finds (who, costs, dates, a time)
FERRY = ("The island ferry leaves the north pier at 7.15 every morning. An adult ticket costs "
         "4 crowns. A child ticket costs 2 crowns. The ferry captain is Ilsa Brand. The north "
         "pier was rebuilt in 1998 after the storm. The night boat was added in 2004 for shift "
         "workers. A season pass costs 90 crowns.")
LIBRARY = ("The head librarian is Tomas Reed. A library card costs 3 crowns. The reading room "
           "was opened in 1911 by the harbour trust. The children's club was founded in 2011 by "
           "local parents. A printed page costs 5 crowns. The new wing was built in 1987 with a "
           "council grant. A replacement card costs 6 crowns.")


@pytest.fixture
def ws(tmp_path):
    docs = tmp_path / "docs"
    for folder, name, text in (("transit", "ferry", FERRY), ("services", "library", LIBRARY)):
        (docs / folder).mkdir(parents=True)
        (docs / folder / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n")
    with Workspace(tmp_path / "ws") as workspace:
        ingest(workspace, [docs])
        yield workspace


def by_source(ws) -> Counter:
    source = dict(zip(*load_corpus(ws).select_columns(["chunk_id", "source"]).to_dict().values(),
                      strict=True))
    return Counter(source[r["chunk_ids"][0]].split("/")[-2] for r in load_samples(ws))


def test_a_preferred_source_gets_more_samples(ws):
    base = dict(tasks=["qa"], per_chunk=2, val_share=0.0)
    generate(ws, GenerateConfig(**base))
    plain = by_source(ws)
    assert plain["transit"] == plain["services"] == 2
    generate(ws, GenerateConfig(**base, source_weights={"services/*": 3}))
    assert by_source(ws) == {"services": 6, "transit": 2}  # 2 x 3 items asked
    generate(ws, GenerateConfig(**base, source_weights={"Ferry": 2.5}))  # a title; flipped
    assert by_source(ws) == {"services": 2, "transit": 5}  # 2 x 2.5


def test_without_weights_ids_and_rows_are_unchanged(ws):
    cfg = GenerateConfig(tasks=["qa", "raft"], per_chunk=2)
    assert "source_weights" not in cfg.resolved()  # existing dataset ids stay what they were
    assert GenerateConfig(tasks=["qa", "raft"], per_chunk=2, source_weights={}).digest() == cfg.digest()
    plain = generate(ws, cfg)
    rows = load_samples(ws).to_list()
    nowhere = generate(ws, GenerateConfig(tasks=["qa", "raft"], per_chunk=2,
                                          source_weights={"nowhere/*": 4}))
    assert nowhere.dataset_id != plain.dataset_id  # weights enter the id once given
    assert load_samples(ws).to_list() == rows  # but weights matching nothing change no row


def test_items_per_chunk_rounds_and_caps():
    from generators.teachers import Chunk

    chunk = Chunk("c", "text", "Title", "docs/notices/a.txt")
    for weights, n in (({}, 3), ({"notices/*": 1.5}, 5), ({"notices/*": 0.1}, 1),
                       ({"notices/*": 40}, 50), ({"*/other/*": 9}, 3)):
        assert items_per_chunk(chunk, GenerateConfig(per_chunk=3, source_weights=weights)) == n


def test_a_weight_of_zero_is_refused():
    with pytest.raises(ConfigError, match="source_weights.*> 0"):
        resolve(GenerateConfig, {"source_weights": {"notices/*": 0}})
