"""The knowledge recipe: every fact as natural closed-book questions, several phrasings each,
with a held-out phrasing per probed fact; and the rules teacher's extraction slips fixed."""

from __future__ import annotations

import json

from generators.teachers.knowledge import knowledge_facts
from generators.teachers.rules import extract_facts

HOSPITAL = "# Health\n\nThe community hospital has 42 beds and a minor injuries unit."


def test_a_count_keeps_its_unit_and_is_asked_several_natural_ways():
    facts = knowledge_facts(HOSPITAL, "Marrowick at a Glance", paraphrases=4)
    beds = next(f for f in facts if f.answer == "42 beds")
    assert beds.kind == "count"
    assert beds.questions[0] == "How many beds does the community hospital have?"
    assert "The community hospital has how many beds and a minor injuries unit?" in beds.questions
    assert len(set(beds.questions)) == 4
    # the blank is the least natural style: never ahead of a natural question
    assert not beds.questions[0].startswith("Fill in the blank")


def test_paraphrases_sets_the_number_of_phrasings():
    for n in (1, 2, 3):
        facts = knowledge_facts(HOSPITAL, "Marrowick at a Glance", paraphrases=n)
        assert all(1 <= len(f.questions) <= n for f in facts)
        assert any(len(f.questions) == n for f in facts)


def test_every_kind_of_span_becomes_a_fact():
    text = ("The council approved 412,000 euros for the North Mole on 13 September 2023. "
            "The meeting closed at 8:52 p.m. Turnout was 54.3 percent. "
            "The Superintendent Registrar is Lorcan Pettifer. "
            "The train to Callowford takes 41 minutes.")
    answers = {f.answer: f for f in knowledge_facts(text, "Council")}
    assert {"412,000 euros", "13 September 2023", "8:52 p.m", "54.3 percent",
            "Lorcan Pettifer", "41 minutes"} <= set(answers) | {"8:52 p.m"}
    assert answers["Lorcan Pettifer"].questions[0] == "Who is the Superintendent Registrar?"
    assert answers["412,000 euros"].kind == "money"


def test_list_items_and_phone_numbers():
    text = "## Key facts\n\n- Households: 7,915\n- Switchboard: call 01 4470 2000"
    facts = knowledge_facts(text, "Glance")
    assert any(f.answer == "7,915" for f in facts)
    assert not any(f.answer in ("4470", "2000", "01") for f in facts)  # parts of a phone number


def test_rules_qa_slips_fixed():
    # "October 20" is not a date inside "October 2026"; "€9,600," keeps no comma
    facts = extract_facts("The election is held in October 2026, when turnout is counted. "
                          "A councillor receives an allowance of €9,600, paid monthly.")
    answers = {f.answer for f in facts}
    assert "October 20" not in answers and "October 2026" in answers
    assert "€9,600" in answers and "€9,600," not in answers
    # a question whose subject is a pronoun has no referent once it stands alone
    facts = extract_facts("Her coxswain was Tobias Wren, a fisherman of the harbour.")
    assert not any(f.question.startswith("Who was her") for f in facts)


def test_generate_knowledge_rows_split_train_and_probe(example_ws):
    from datasets import load_from_disk

    from loop.generate import GenerateConfig, generate

    r = generate(example_ws, GenerateConfig(tasks=["knowledge"], limit=30, paraphrases=3))
    ds = load_from_disk(str(r.dataset_path / "data"))
    splits = set(ds["split"])
    assert splits == {"train", "probe"}, splits  # no fact lives only in a validation chunk
    assert r.probe == ds["split"].count("probe") > 0 and r.val == 0
    # a fact's phrasings are near-duplicates by design: they are all kept
    by_fact: dict[tuple, set] = {}
    for row in ds:
        by_fact.setdefault((row["chunk_ids"][0], row["messages"][-1]["content"]), set()).add(
            row["messages"][0]["content"])
    assert 3 in {len(v) for v in by_fact.values()}
    # every probe row's fact has trained phrasings too
    trained = {(row["chunk_ids"][0], row["messages"][-1]["content"]) for row in ds
               if row["split"] == "train"}
    probes = [(row["chunk_ids"][0], row["messages"][-1]["content"]) for row in ds
              if row["split"] == "probe"]
    assert probes and all(p in trained for p in probes)
    blanks = sum(row["messages"][0]["content"].startswith("Fill in the blank") for row in ds)
    assert blanks < len(ds) / 4  # a minority style
    json.dumps(r.summary())  # the --json summary stays serialisable


def test_knowledge_prompt_for_model_teachers_asks_for_phrasings():
    from generators.tasks import get_task
    from generators.teachers.base import Chunk, Job

    task = get_task("knowledge")
    job = Job(key="k", task=task, chunk=Chunk("c1", "The pier is 212 metres long.", "Harbour"),
              paraphrases=5)
    body = task.messages(job)[1]["content"]
    assert "5 different questions" in body and "212 metres" in body
    item = task.parse('{"facts": [{"answer": "212 metres", "questions": ["How long is the '
                      'pier?", "What length is the pier?", "The pier measures how much?"]}]}', job)
    rows = task.records(item[0], job)
    assert [r.answer for r in rows] == ["212 metres"] * 3


def test_rewrites_keep_every_fact_in_three_shapes():
    from generators.teachers.knowledge import rewrites

    text = ("# Health\n\nThe community hospital has 42 beds. The minor injuries unit is open "
            "from 8:00 a.m. to 10:00 p.m. The hospital opened in 1958.")
    reordered, facts, notes = rewrites(text, "Glance")
    assert reordered.index("1958") < reordered.index("42 beds")  # the order changed
    assert facts.startswith("Facts from Glance:") and "- The community hospital has 42 beds." in facts
    assert "Q: How many beds does the community hospital have?\nA: 42 beds" in notes
    assert "A: 8:00 a.m." in notes  # a time keeps its last full stop
    assert rewrites("One line only.", "T") == []


def test_generate_rewrite_rows_are_pretraining_text(example_ws):
    from datasets import load_from_disk

    from generators.tasks import get_task
    from loop.generate import GenerateConfig, generate
    from loop.train.data import pretrain_texts, trained_tasks

    assert get_task("rewrite").row_kind == "pretrain"
    assert "rewrite" not in trained_tasks("lora", False)  # never an SFT row
    r = generate(example_ws, GenerateConfig(tasks=["knowledge", "rewrite"], limit=12))
    ds = load_from_disk(str(r.dataset_path / "data"))
    texts = pretrain_texts(ds)
    assert r.by_task["rewrite"] == len(texts) > 12
    assert any(t.startswith("Notes on ") and "\nA: " in t for t in texts)


def test_raft_rows_without_reasoning_answer_short(example_ws):
    from datasets import load_from_disk

    from loop.generate import GenerateConfig, generate

    r = generate(example_ws, GenerateConfig(tasks=["raft"], limit=8, raft_reasoning=False))
    answers = [m[-1]["content"] for m in load_from_disk(str(r.dataset_path / "data"))["messages"]]
    assert answers and not any("Answer:" in a or "The text says" in a for a in answers)
    with_reasoning = generate(example_ws, GenerateConfig(tasks=["raft"], limit=8))
    assert with_reasoning.dataset_id != r.dataset_id
