"""``hf:PATH_OR_ID`` — a local transformers model as teacher.

Batched greedy (or sampled) generation with the KV cache and left padding, the model's chat
template, device and dtype chosen for the hardware, weights from safetensors only.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from generators.errors import TeacherError
from generators.teachers.chat import ChatTeacher, Completion, Messages, OnDone

# Used when a tokenizer has no chat template of its own (base models, tiny test models).
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def pick_device(device: str | None = None) -> str:
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, dtype: str | None = None):  # noqa: ANN201 - a torch.dtype
    import torch

    if dtype:
        return {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


class HFTeacher(ChatTeacher):
    def __init__(self, model: str, *, batch_size: int = 8, device: str | None = None,
                 dtype: str | None = None, trust_remote_code: bool = False,
                 allow_pickle: bool = False, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.uri = f"hf:{model}"
        self.batch_size = max(1, batch_size)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle  # pickle weights can run code when unpickled
        self._model = None
        self._tok = None

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(self.model, trust_remote_code=self.trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                self.model, dtype=self.dtype, use_safetensors=None if self.allow_pickle else True,
                trust_remote_code=self.trust_remote_code,
            )
        except (OSError, ValueError, pickle.UnpicklingError) as e:
            hint = ("" if self.allow_pickle else
                    " (only safetensors weights load by default; --allow-pickle loads pickle "
                    "weights from a source you trust)")
            raise TeacherError(f"cannot load teacher model {self.model!r}: {e}{hint}") from e
        tok.padding_side = "left"  # generation appends on the right: pads must sit left
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        if not tok.chat_template:
            tok.chat_template = DEFAULT_CHAT_TEMPLATE
        self._tok, self._model = tok, model.to(self.device).eval()

    def complete_many(self, requests: Sequence[Messages], on_done: OnDone) -> None:
        self._load()
        # Longest prompts first: batches of similar length waste less padding.
        order = sorted(range(len(requests)), key=lambda i: -len(str(requests[i])))
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            try:
                outs = self.generate_batch([requests[i] for i in idx])
            except Exception as e:  # noqa: BLE001 - one failed batch must not end the run
                outs = [TeacherError(f"generation failed: {type(e).__name__}: {e}")] * len(idx)
            for i, out in zip(idx, outs, strict=True):
                on_done(i, out)

    def generate_batch(self, batch: Sequence[Messages]) -> list[Completion]:
        return generate_texts(self._model, self._tok, batch,
                              max_new_tokens=int(self.params.get("max_tokens", 256)),
                              temperature=float(self.params.get("temperature") or 0.0),
                              seed=int(self.params.get("seed", 0)))


def generate_texts(model, tok, batch: Sequence[Messages], *, max_new_tokens: int,  # noqa: ANN001
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
