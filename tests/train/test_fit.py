"""RAFT rows that fit: a context row longer than max_length sheds distractor passages, then
context text, never its question, its answer or (when known) its oracle passage."""

from __future__ import annotations

import random

import pytest

from generators.teachers import Chunk
from loop.generate.jobs import rag_context
from loop.samples import make_sample
from loop.train.fit import oracle_index, parse_block
from loop.train.sft import IGNORE, cut_note, prepare, tokenize_chat

WORDS = ["harbour", "ferry", "quay", "island", "tide", "council", "market", "bridge", "lantern",
         "river", "tower", "garden", "school", "museum", "station", "library", "orchard", "beacon",
         "chapel", "mill"]


def passage(rng: random.Random, n: int, fact: str = "", at: float = 0.5) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    if fact:
        words.insert(int(n * at), fact)
    return " ".join(words).capitalize() + "."


def raft_rows(n: int = 12, *, distractors: int = 3, words: int = 120, seed: int = 0):
    """Rows laid out as generate writes raft rows: the RAG block (build_context) with the
    oracle shuffled among distractors, then the question; the answer ends "Answer: X"."""
    rng = random.Random(seed)
    rows, chunks = [], {}
    for i in range(n):
        fact = f"The ferry number {i} leaves Old Quay at {i + 6}:15 sharp."
        oracle = Chunk(f"o{i}", passage(rng, words, fact, at=rng.choice((0.1, 0.5, 0.9))),
                       f"Oracle {i}", f"docs/oracle{i}.md")
        shown = [oracle] + [Chunk(f"d{i}-{j}", passage(rng, words), f"Other {j}", f"docs/other{j}.md")
                            for j in range(distractors)]
        chunks.update({c.chunk_id: c.text for c in shown})
        order = list(shown)
        rng.shuffle(order)
        question = f"When does ferry number {i} leave Old Quay?"
        user = f"{rag_context(order, max_tokens=5000)}\n\nQuestion: {question}"
        answer = f"The passage says when it leaves.\nAnswer: at {i + 6}:15 sharp"
        rows.append(make_sample("raft", [{"role": "user", "content": user},
                                         {"role": "assistant", "content": answer}],
                                [c.chunk_id for c in shown]))
    return rows, chunks


@pytest.fixture(scope="module")
def tok():
    """The scratch:tiny tokenizer (a byte-level BPE with the default chat template)."""
    from loop.models.scratch import train_tokenizer

    rows, _ = raft_rows(4)
    return train_tokenizer([m["content"] for r in rows for m in r["messages"]], 400)


def answer_labels(tok, messages):
    from loop.train.sft import chat_template_for_training

    out = tokenize_chat(tok, messages, chat_template_for_training(tok))
    return [t for t in out["labels"] if t != IGNORE], len(out["input_ids"])


def prepared(tok, rows, max_length, oracle_texts=None):
    from datasets import Dataset

    stats: dict[str, int] = {}
    ds = prepare(Dataset.from_list(rows), tok, max_length=max_length, packing=False, seed=0,
                 stats=stats, oracle_texts=oracle_texts)
    return ds, stats


@pytest.mark.parametrize("with_corpus", [True, False])
def test_long_raft_rows_keep_answer_question_and_oracle(tok, with_corpus):
    rows, chunks = raft_rows()
    full = [answer_labels(tok, r["messages"]) for r in rows]
    max_length = 300
    assert all(n > max_length for _, n in full)  # every row is too long before fitting
    _, old = prepared(tok, [dict(r, task="qa") for r in rows], max_length)  # cut at the end
    assert old == {"rows": 12, "cut": 12, "dropped": 12, "trimmed": 0}  # every answer lost
    ds, stats = prepared(tok, rows, max_length, chunks if with_corpus else None)
    assert stats == {"rows": 12, "cut": 0, "dropped": 0, "trimmed": 12}
    assert len(ds) == 12
    by_answer = {tuple(labels): r for (labels, _), r in zip(full, rows, strict=True)}
    for ids, labels in zip(ds["input_ids"], ds["labels"], strict=True):
        assert len(ids) <= max_length
        kept = tuple(t for t in labels if t != IGNORE)
        row = by_answer[kept]  # the whole answer, token for token
        text = tok.decode(ids)
        i = int(row["chunk_ids"][0][1:])
        assert f"Question: When does ferry number {i} leave Old Quay?" in text
        assert f'title="Oracle {i}"' in text and f"at {i + 6}:15 sharp." in text  # the fact's passage


def test_distractors_go_first_then_the_oracle_is_windowed_around_the_answer(tok):
    rows, chunks = raft_rows(6, words=60)
    from loop.train.sft import chat_template_for_training

    template = chat_template_for_training(tok)
    from loop.train.fit import fit_row

    count = lambda t: len(tok(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    encode = lambda m: tokenize_chat(tok, m, template)  # noqa: E731
    for r in rows:
        block = parse_block(r["messages"][0]["content"])
        assert len(block.docs) == 4 and oracle_index(block, r["messages"][1]["content"],
                                                     chunks[r["chunk_ids"][0]]) is not None
        full = len(encode(r["messages"])["input_ids"])
        # room for about two passages: the oracle stays whole, with one distractor at most
        out, trimmed = fit_row(r["messages"], full - 2 * count(block.docs[0][1]), encode, count,
                               chunks[r["chunk_ids"][0]])
        text = tok.decode(out["input_ids"])
        assert trimmed and text.count("<document index=") in (1, 2) and "Oracle" in text
        assert '<document index="1"' in text  # renumbered from 1
        # room for a fraction of one passage: the window holds the answer
        oracle = block.docs[oracle_index(block, "", chunks[r["chunk_ids"][0]])]
        alone = [{"role": "user", "content": block.render([oracle])}, r["messages"][1]]
        room = len(encode(alone)["input_ids"]) - count(oracle[1]) // 2  # half the oracle's text
        out, _ = fit_row(r["messages"], room, encode, count, chunks[r["chunk_ids"][0]])
        assert len(out["input_ids"]) <= room
        text = tok.decode(out["input_ids"])
        assert text.count("<document index=") == 1 and "..." in text
        i = int(r["chunk_ids"][0][1:])
        assert f"{i + 6}:15 sharp." in text.split("</document>")[0]


def test_the_old_cut_still_applies_past_what_fitting_can_do(tok):
    rows, chunks = raft_rows(3)
    # a question that alone runs past max_length: fitted as far as it goes, then cut
    long_q = rows[0]["messages"][0]["content"] + " and also" * 400
    rows[0] = make_sample("raft", [{"role": "user", "content": long_q}, rows[0]["messages"][1]],
                          rows[0]["chunk_ids"])
    # a context row not laid out as the RAG block: the plain cut, as before
    rows.append(make_sample("raft", [{"role": "user", "content": "Context:\n[1] x " * 300 + "\n\nQ?"},
                                     {"role": "assistant", "content": "A."}], ["c"]))
    ds, stats = prepared(tok, rows, 300, chunks)
    assert stats["trimmed"] == 3 and stats["cut"] == 2 and stats["dropped"] == 2
    assert len(ds) == 2
    note = cut_note("training", stats, 300)
    assert note == ("max_length=300: 3 of 4 training rows had their context trimmed to fit "
                    "(distractor passages first; question and answer kept); 2 of 4 training rows "
                    "were cut, 2 dropped (no answer token left)")
    assert cut_note("validation", {"rows": 5, "cut": 0, "dropped": 0, "trimmed": 2}, 64) == (
        "max_length=64: 2 of 5 validation rows had their context trimmed to fit (distractor "
        "passages first; question and answer kept)")


def test_rows_that_fit_and_rows_without_context_are_untouched(tok):
    rows, chunks = raft_rows(2)
    qa = make_sample("qa", [{"role": "user", "content": rows[0]["messages"][0]["content"]},
                            {"role": "assistant", "content": "x"}], ["c"])
    ds, stats = prepared(tok, [*rows, qa], 4096, chunks)
    assert stats == {"rows": 3, "cut": 0, "dropped": 0, "trimmed": 0}
    assert cut_note("training", stats, 4096) is None
    ds, stats = prepared(tok, [qa], 300)
    assert stats["trimmed"] == 0 and stats["cut"] == 1  # a qa row is never fitted


def test_train_with_context_reports_the_trimmed_rows(ws, tiny_student, kit):
    from loop.train import train

    rows, _ = raft_rows(8, words=40)
    for j, r in enumerate(rows):
        r["split"] = "val" if j % 4 == 3 else "train"
    kit.write_dataset(ws, kit.fact_rows(12) + rows)
    r = train(ws, kit.fast_config(tiny_student, max_steps=2, max_length=200, with_context=True))
    assert any("had their context trimmed" in n and "training rows" in n for n in r.notes), r.notes
