"""A fake, deterministic embedder (hashed bag of stems) so most tests need no model."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from retrieval import embedders

DIM = 64


class HashEmbedder:
    """Each word adds a fixed pseudo-random vector; texts sharing words point alike."""

    max_tokens = 64

    def __init__(self, name: str) -> None:
        self.uri = f"fake:{name}"
        self.dim = DIM
        self.calls: list[int] = []

    def embed(self, texts, *, progress=None):
        self.calls.append(len(texts))
        out = np.zeros((len(texts), DIM), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                seed = int.from_bytes(hashlib.sha1(w[:5].encode()).digest()[:4], "little")
                out[i] += np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
        if progress:
            progress(len(texts), len(texts))
        return out

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]


@pytest.fixture(autouse=True)
def fake_embedder():
    made: list[HashEmbedder] = []

    def factory(name: str) -> HashEmbedder:
        made.append(HashEmbedder(name))
        return made[-1]

    embedders.register_embedder("fake", factory)
    yield made
    embedders._REGISTRY.pop("fake", None)


def chunk(doc: str, start: int, text: str, source: str = "", title: str = "") -> dict:
    cid = hashlib.sha256(f"{doc}:{start}:{text}".encode()).hexdigest()[:16]
    return {"chunk_id": cid, "doc_id": doc, "source": source or f"{doc}.md",
            "title": title or doc, "text": text, "start": start, "end": start + len(text)}


TOPICS = {
    "ferry": "The island ferry leaves the north pier every hour. Tickets cost four crowns "
             "for adults. Bicycles travel free on the ferry deck.",
    "library": "The public library opens at nine on weekdays. Members may borrow twelve "
               "books at once. Late returns cost ten pence a day.",
    "bins": "Green bins are emptied every second Tuesday. Glass goes in the blue box. "
            "Garden waste needs a permit sticker from the council.",
    "harbour": "The harbour master allocates moorings each spring. Visiting yachts pay "
               "a nightly fee at the harbour office beside the lighthouse.",
    "parks": "Dogs must be kept on a lead in the rose garden. The park gates close at "
             "dusk in winter and at ten in summer.",
}


@pytest.fixture
def chunks() -> list[dict]:
    return [chunk(name, 0, text) for name, text in TOPICS.items()]


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """A 1-layer BERT cross-encoder with a WordPiece vocab trained here, saved as
    safetensors: loaded through the same ``ce:`` path a user's model takes."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("cross-encoder")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(list(TOPICS.values()),
                            trainers.WordPieceTrainer(vocab_size=300, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                            model_max_length=128).save_pretrained(path)
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128, num_labels=1,
    )).save_pretrained(path)
    return path
