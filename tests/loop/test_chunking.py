from loop.ingest.chunking import Chunker, chunk_id_for, doc_id_for, is_heading
from loop.ingest.config import IngestConfig


def _chunks(text, **cfg):
    return [text[s.start:s.end] for s in Chunker(IngestConfig(**cfg)).spans(text)]


def test_spans_are_exact_slices_and_cover_every_word():
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 40 for i in range(30))
    spans = Chunker(IngestConfig(chunk_tokens=100, overlap_tokens=0)).spans(text)
    words = set()
    for s in spans:
        piece = text[s.start:s.end]
        assert piece == piece.strip()
        words.update(range(s.start, s.end))
    assert all(i in words for i, ch in enumerate(text) if not ch.isspace())


def test_budget_is_respected():
    text = "\n\n".join(f"Sentence number {i} is here. " * 12 for i in range(20))
    ch = Chunker(IngestConfig(chunk_tokens=64, overlap_tokens=16))
    for s in ch.spans(text):
        assert ch.tokens(text[s.start:s.end]) <= 64


def test_headings_start_new_chunks():
    text = "# Intro\n\n" + "alpha " * 30 + "\n\n## Fees\n\n" + "beta " * 30
    chunks = _chunks(text, chunk_tokens=200, min_chunk_tokens=10)
    assert len(chunks) == 2
    assert chunks[1].startswith("## Fees")


def test_rst_and_markdown_headings():
    assert is_heading("# Title")
    assert is_heading("Bus fares\n=========")
    assert not is_heading("A sentence with #hash in it.")


def test_paragraphs_stay_whole_when_they_fit():
    paras = ["First paragraph " + "x " * 50, "Second paragraph " + "y " * 50]
    chunks = _chunks("\n\n".join(paras), chunk_tokens=100, overlap_tokens=0, min_chunk_tokens=10)
    assert [c.split()[0:2] for c in chunks] == [["First", "paragraph"], ["Second", "paragraph"]]


def test_long_sentence_is_cut_by_words_and_overlap_repeats_text():
    one_line = " ".join(f"w{i}" for i in range(5000))  # one huge line, no punctuation
    chunks = _chunks(one_line, chunk_tokens=130, overlap_tokens=0)
    assert len(chunks) >= 40
    assert " ".join(chunks).split() == one_line.split()
    prose = " ".join(f"Sentence {i} says something short." for i in range(200))
    overl = _chunks(prose, chunk_tokens=60, overlap_tokens=20)
    assert any(a.split(".")[-2] in b for a, b in zip(overl, overl[1:], strict=False))


def test_ids_are_stable_hashes():
    d = doc_id_for("hello")
    assert d == doc_id_for("hello") and len(d) == 16
    assert chunk_id_for(d, 0, 5) == chunk_id_for(d, 0, 5) != chunk_id_for(d, 0, 6)


def test_empty_text_has_no_chunks():
    assert _chunks("   \n\n  ") == []
