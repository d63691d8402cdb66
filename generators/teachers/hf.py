"""``hf:PATH_OR_ID`` — a local transformers model as teacher.

Batched greedy (or sampled) generation with the KV cache and left padding and the model's
chat template. Loading is not done here: the teacher is handed a loader (see ``Loader``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from generators.errors import TeacherError
from generators.teachers.chat import ChatTeacher, Completion, Messages, OnDone

Loader = Callable[[], tuple[Any, Any]]
"""Loads ``(model, tokenizer)``: the model on its device in eval mode, the tokenizer with a
chat template and a pad token. synthloop's one model loader supplies it (``loop`` registers
the ``hf:`` and ``smollm2`` teachers), so device, dtype, the safetensors-only rule and GGUF
files are decided where students are loaded too."""


class HFTeacher(ChatTeacher):
    """A local transformers model as teacher: batched generation with the KV cache."""

    def __init__(self, model: str, *, loader: Loader, batch_size: int = 8, uri: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.uri = uri or f"hf:{model}"
        self.batch_size = max(1, batch_size)
        self._loader = loader
        self._model = None
        self._tok = None

    def _load(self) -> None:
        if self._model is not None:
            return
        try:
            model, tok = self._loader()
        except Exception as e:  # the loader's own errors say what went wrong
            raise TeacherError(f"cannot load teacher model {self.model!r}: {e}") from e
        tok.padding_side = "left"  # generation appends on the right: pads must sit left
        self._tok, self._model = tok, model

    def complete_many(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        self._load()
        # Longest prompts first: batches of similar length waste less padding.
        order = sorted(range(len(requests)), key=lambda i: -len(str(requests[i])))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            try:
                outs = self.generate_batch([requests[i] for i in idx])
            except Exception as e:  # one failed batch must not end the run
                outs = [TeacherError(f"generation failed: {type(e).__name__}: {e}")] * len(idx)
            for i, out in zip(idx, outs, strict=True):
                on_done(i, out)

    def generate_batch(self, batch: Sequence[Messages]) -> list[Completion]:
        return generate_texts(self._model, self._tok, batch,
                              max_new_tokens=int(self.params.get("max_tokens", 256)),
                              temperature=float(self.params.get("temperature") or 0.0),
                              seed=int(self.params.get("seed", 0)))


def generate_texts(model, tok, batch: Sequence[Messages], *, max_new_tokens: int,
                   temperature: float = 0.0, seed: int = 0) -> list[Completion]:
    """One batched ``generate`` over chat prompts: left padding, the chat template, the KV
    cache; the texts after the prompt, cut at EOS. Shared by teachers and the scoring stage."""
    import torch

    if tok.padding_side != "left":
        tok.padding_side = "left"  # generation appends on the right: pads must sit left
    prompts = [tok.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True)
               for m in batch]
    device = next(model.parameters()).device
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    gen_kwargs = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0,
                  "pad_token_id": tok.pad_token_id}
    if temperature > 0:
        gen_kwargs["temperature"] = temperature
        torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(**enc, **gen_kwargs)
    width = enc["input_ids"].shape[1]
    # One device-to-host copy for the batch: per-row GPU ops each forced a sync.
    new_tokens = out[:, width:].cpu()
    prompt_lens = enc["attention_mask"].sum(dim=1).cpu().tolist()
    eos = tok.eos_token_id
    rows = []
    for row in new_tokens.tolist():
        if eos is not None and eos in row:
            row = row[: row.index(eos)]
        rows.append(row)
    texts = tok.batch_decode(rows, skip_special_tokens=True)
    return [Completion(t, int(p), len(r)) for t, p, r in zip(texts, prompt_lens, rows, strict=True)]
