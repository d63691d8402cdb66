"""A tuned model as one GGUF file for llama.cpp, Ollama and LM Studio, written in pure Python
with the ``gguf`` package's writer: no compiler, no llama.cpp checkout.

The adapter is merged into the base weights (fp32), each tensor is renamed to its GGUF name
(``gguf.get_tensor_name_map``), Llama's q/k projections are permuted into the rotary layout
llama.cpp expects (the inverse of what transformers' GGUF reader undoes on load), and the
tokenizer (a byte-level BPE: tokens, types, merges, special ids) and chat template go in as
metadata. Beside the file: an Ollama ``Modelfile`` and a README with the commands.

Written by hand because no maintained library writes GGUF from a transformers model without
llama.cpp's own conversion script (which needs a llama.cpp checkout).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from loop.errors import InputError

QUANTS = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class Arch:
    gguf: str  # the GGUF architecture name
    permute_qk: bool  # llama.cpp's rotary layout for q/k (its Llama family), undone on load


# transformers class -> how it is written (Mistral is Llama's architecture to llama.cpp)
ARCHITECTURES = {
    "LlamaForCausalLM": Arch("llama", True),
    "MistralForCausalLM": Arch("llama", True),
    "Qwen2ForCausalLM": Arch("qwen2", False),
}


def write_gguf(model: Any, tokenizer: Any, tokenizer_dir: Path, out: Path, quant: str = "f16",
               name: str = "synthloop model", mode: int | None = None) -> dict[str, Any]:
    """Write ``model`` (a merged transformers causal LM) and its tokenizer as one GGUF file;
    ``tokenizer_dir`` holds the saved tokenizer (merges and special tokens are read from it).
    ``mode``: the file mode to keep when it replaces a file (``loop.outputs.claim``).
    Returns what was written: path, bytes, tensors, quantisation."""
    import gguf

    from loop.outputs import fresh_part, place

    if quant not in QUANTS:
        raise InputError(f"unknown --quant {quant!r} (known: {', '.join(QUANTS)})")
    cfg = model.config
    cls = (cfg.architectures or [type(model).__name__])[0]
    arch = ARCHITECTURES.get(cls) or ARCHITECTURES.get(type(model).__name__)
    if arch is None:
        raise InputError(f"cannot write {cls} as GGUF: the writer knows "
                         f"{', '.join(sorted(ARCHITECTURES))}",
                         hint="export --merge writes safetensors for any model")
    _check_tokenizer(tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = fresh_part(out)
    writer = gguf.GGUFWriter(str(tmp), arch.gguf)
    try:
        _metadata(writer, cfg, arch, quant, name)
        _vocab(writer, tokenizer, tokenizer_dir, cfg.vocab_size)
        count = _tensors(writer, model, cfg, arch, quant)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        place(tmp, out, mode)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(out), "bytes": out.stat().st_size, "tensors": count, "quant": quant,
            "architecture": arch.gguf}


def _metadata(w: Any, cfg: Any, arch: Arch, quant: str, name: str) -> None:
    import gguf

    heads = cfg.num_attention_heads
    w.add_name(name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(heads)
    w.add_head_count_kv(getattr(cfg, "num_key_value_heads", None) or heads)
    w.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or _rope_theta(cfg)))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                     "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[quant])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _rope_theta(cfg: Any) -> float:
    params = getattr(cfg, "rope_parameters", None) or {}
    return float(params.get("rope_theta", 10000.0))


def _check_tokenizer(tok: Any) -> None:
    backend = getattr(tok, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise InputError("the GGUF writer handles byte-level BPE tokenizers (Llama 3, SmolLM2, "
                         f"Qwen2); this one is {model.get('type') or type(tok).__name__}",
                         hint="export --merge writes safetensors for any tokenizer")


def _vocab(w: Any, tok: Any, folder: Path, n_vocab: int) -> None:
    import gguf

    by_id = {i: t for t, i in tok.get_vocab().items()}
    added = getattr(tok, "added_tokens_decoder", {}) or {}
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:  # the embedding is padded past the tokenizer: llama.cpp's filler
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[i])
        a = added.get(i)
        types.append(gguf.TokenType.NORMAL if a is None else
                     gguf.TokenType.CONTROL if a.special else gguf.TokenType.USER_DEFINED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_pre_tokenizer(tok, by_id))
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(folder, load_merges=True, n_vocab=n_vocab)
    special.add_to_gguf(w, quiet=True)  # merges, bos/eos/unk/pad ids, add_bos, chat template
    if not special.merges:
        raise InputError("the tokenizer has no BPE merges to write")


def _pre_tokenizer(tok: Any, by_id: dict[int, str]) -> str:
    """llama.cpp's name for the pre-tokenizer (how text is split before BPE): it has no way
    to read the tokenizer's own regex, so a known family is named; else its generic rules."""
    vocab = set(by_id.values())
    if "<|begin_of_text|>" in vocab:
        return "llama-bpe"  # Llama 3
    if "<|endoftext|>" in vocab and "<|im_start|>" in vocab and len(vocab) > 150_000:
        return "qwen2"
    if "<|im_start|>" in vocab and len(by_id) == 49152:
        return "smollm"  # SmolLM / SmolLM2
    return "default"


def _tensors(w: Any, model: Any, cfg: Any, arch: Arch, quant: str) -> int:
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.gguf.upper()], cfg.num_hidden_layers)
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    count = 0
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd for a tied head
        if re.search(r"rotary_emb|\.inv_freq$", hf_name):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InputError(f"no GGUF name for tensor {hf_name} ({arch.gguf})")
        data = tensor.detach().float().cpu().numpy()
        if arch.permute_qk and hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads, heads)
        elif arch.permute_qk and hf_name.endswith("k_proj.weight"):
            data = _permute(data, heads, kv)
        data, kind = _encode(data, quant)
        w.add_tensor(name, data, raw_dtype=kind)
        count += 1
    return count


def _permute(weights: np.ndarray, n_head: int, n_kv: int) -> np.ndarray:
    """Rotary halves -> interleaved pairs per head: the inverse of transformers'
    ``_reverse_permute_weights`` (which reshapes to (heads, dim, 2) and swaps back)."""
    if n_kv != n_head:
        n_head = n_kv
    dim = weights.shape[0] // n_head // 2
    return (weights.reshape(n_head, 2, dim, *weights.shape[1:]).swapaxes(1, 2)
            .reshape(weights.shape))


def _encode(data: np.ndarray, quant: str) -> tuple[np.ndarray, Any]:
    """Norms and biases stay fp32 (as llama.cpp keeps them); matrices take the chosen type,
    q8_0 where the rows divide into its 32-value blocks (else f16)."""
    import gguf

    if data.ndim < 2 or quant == "f32":
        return data.astype(np.float32), gguf.GGMLQuantizationType.F32
    if quant == "q8_0" and data.shape[-1] % 32 == 0:
        q = gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        return q, gguf.GGMLQuantizationType.Q8_0
    return data.astype(np.float16), gguf.GGMLQuantizationType.F16


# -- Ollama --------------------------------------------------------------------------------------
# Ollama renders TEMPLATE with .Messages holding every message, system ones included (.System is
# only their join), after prepending the Modelfile's SYSTEM as a message when the first one is not
# a system message (ollama template/template.go, server/routes.go). So the templates print system
# turns from .Messages alone: printing .System as well printed the system prompt twice.


@dataclass(frozen=True)
class _Family:
    """A chat format: one turn (ROLE, CONTENT and EOS stand for the parts), the assistant turn
    where it differs, the generation prompt, and the stop strings."""

    turn: str
    generation: str
    stops: tuple[str, ...]
    assistant: str | None = None

    def render(self, role: str, content: str, eos: str = "") -> str:
        shape = self.assistant if role == "assistant" and self.assistant else self.turn
        return _fill(shape, {"ROLE": role, "CONTENT": content, "EOS": eos})

    def go(self, eos: str) -> str:
        """One message as Go template text: {{ .Role }}, {{ .Content }}."""
        parts = {"ROLE": "{{ .Role }}", "CONTENT": "{{ .Content }}", "EOS": _go_text(eos)}
        if self.assistant is None:
            return _fill(self.turn, parts)
        return ('{{ if eq .Role "assistant" }}' + _fill(self.assistant, parts) + "{{ else }}"
                + _fill(self.turn, parts) + "{{ end }}")


def _fill(shape: str, parts: dict[str, str]) -> str:
    return re.sub("ROLE|CONTENT|EOS", lambda m: parts[m.group()], shape)


CHATML = _Family("<|im_start|>ROLE\nCONTENT<|im_end|>\n", "<|im_start|>assistant\n",
                 ("<|im_end|>", "<|im_start|>"))
LLAMA3 = _Family("<|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>",
                 "<|start_header_id|>assistant<|end_header_id|>\n\n",
                 ("<|eot_id|>", "<|start_header_id|>"))
# synthloop's own template (students without one): the assistant turn ends with the eos token
PLAIN = _Family("<|ROLE|>\nCONTENT\n", "<|assistant|>\n", ("<|user|>",),
                assistant="<|assistant|>\nCONTENTEOS\n")


def _family(chat_template: str | None) -> _Family | None:
    tpl = chat_template or ""
    if "<|im_start|>" in tpl:
        return CHATML
    if "<|start_header_id|>" in tpl:
        return LLAMA3
    if "'<|' + m['role'] + '|>" in tpl:
        return PLAIN
    return None


def ollama_template(family: _Family, default_system: str | None, eos: str = "") -> str:
    """The family's Go TEMPLATE, in the plainest form (range, if, eq/ne/and, no trim markers):
    with ``default_system``, a system turn of that text is put first when the first message is
    not a system one, as SmolLM2's own template does (``loop.first and messages[0]['role'] !=
    'system'``)."""
    if default_system is None:
        head = "{{ range .Messages }}"
    else:
        head = ('{{ range $i, $_ := .Messages }}{{ if and (eq $i 0) (ne .Role "system") }}'
                + _fill(family.turn, {"ROLE": "system", "CONTENT": _go_text(default_system),
                                      "EOS": ""})
                + "{{ end }}")
    return head + family.go(eos) + "{{ end }}" + family.generation


def _go_text(text: str) -> str:
    """``text`` as a Go template action printing a string literal: printable ASCII as it is,
    every other character escaped, so neither Go nor the Modelfile parser can misread it."""
    if not text:
        return ""
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif " " <= c <= "~":
            out.append(c)
        else:
            out.append(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}")
    return '{{ "' + "".join(out) + '" }}'


def default_system(tok: Any, family: _Family) -> tuple[str | None, bool]:
    """The system prompt the chat template inserts into a conversation without one (SmolLM2's:
    "You are a helpful AI assistant named SmolLM..."), read off its own rendering: a user turn
    alone, less the family's user turn and generation prompt, must be one system turn, and that
    text given as the system message must render the same prompt. Returns (the text or None,
    whether the family's TEMPLATE then renders what the chat template does)."""
    mark = "synthloop-user-turn"
    alone = _render(tok, [{"role": "user", "content": mark}])
    if alone is None:
        return None, False
    bos = getattr(tok, "bos_token", None) or ""
    # a template that writes BOS itself (Llama 3) is read without it: llama.cpp adds BOS
    want = family.render("user", mark) + family.generation
    for body in (alone, alone[len(bos):]) if bos and alone.startswith(bos) else (alone,):
        if body == want:
            return None, True
        found = _system_turn(body, want, family)
        if found is not None:
            again = _render(tok, [{"role": "system", "content": found},
                                  {"role": "user", "content": mark}])
            if again == alone:
                return found, True
    return None, False


def _system_turn(body: str, want: str, family: _Family) -> str | None:
    """The text of the one system turn before ``want`` (a user turn and the generation
    prompt) in ``body``; None when ``body`` is not that."""
    opening, closing = _fill(family.turn, {"ROLE": "system", "CONTENT": "\0", "EOS": ""}).split("\0")
    head = body[: len(body) - len(want)]
    if (body.endswith(want) and head.startswith(opening) and head.endswith(closing)
            and len(head) >= len(opening) + len(closing)):
        return head[len(opening): len(head) - len(closing)]
    return None


def _render(tok: Any, messages: list[dict[str, str]]) -> str | None:
    try:
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # a template may refuse a role (raise_exception): nothing to read off
        return None


def modelfile_string(text: str) -> str | None:
    """``text`` as a Modelfile triple-quoted string, or None where Ollama could not read it
    back exactly. Its parser has no escapes: a value ends at the first line end that follows
    three quotes (spaces between), and unprintable characters are dropped (parser/parser.go);
    anything else, quote runs included, comes back as written."""
    if re.search(r'"""[ \t]*[\r\n]', text) or not all(c.isprintable() or c in "\t\r\n" for c in text):
        return None
    return f'"""{text}"""'


def modelfile(gguf_name: str, tok: Any, system: str | None) -> str:
    """An Ollama Modelfile: FROM the file, the chat template as Ollama's Go TEMPLATE, stop
    tokens, and the system prompt the model was trained with (if any); without one, the
    TEMPLATE keeps the default system prompt of the GGUF's own chat template."""
    eos = getattr(tok, "eos_token", None) or ""
    family = _family(getattr(tok, "chat_template", None))
    notes, quoted = [], None
    if family is None:
        template, stops = "{{ .Prompt }}", []
        if getattr(tok, "chat_template", None):
            notes.append("# TEMPLATE: synthloop writes no Ollama template for this model's chat "
                         "template; prompts reach the model as they are")
    else:
        default, mirrored = default_system(tok, family)
        if system:
            quoted = modelfile_string(system)
            default = system if quoted is None else default
        if system and quoted is None:
            # the TEMPLATE puts it first instead, which Ollama renders the same: SYSTEM too is
            # put first only when the first message is not a system one
            notes.append("# SYSTEM: the trained system prompt is in TEMPLATE (the first turn of "
                         "a conversation without one): a Modelfile string cannot hold it exactly")
        if not mirrored:
            notes.append("# TEMPLATE: this model's chat template adds more than this TEMPLATE "
                         "writes; Ollama's prompts may differ from the scored ones")
        template, stops = ollama_template(family, default, eos), list(family.stops)
    if eos and eos not in stops:
        stops.append(eos)
    lines = [f"FROM ./{gguf_name}", *notes, f'TEMPLATE """{template}"""']
    lines += [f"SYSTEM {quoted}"] if quoted else []
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines += ["PARAMETER temperature 0"]  # the scoreboard's answers were greedy
    return "\n".join(lines) + "\n"


def readme(gguf_name: str, model_name: str, quant: str) -> str:
    stem = Path(gguf_name).stem
    return (f"# {model_name} ({quant} GGUF)\n\n"
            "Written by `synthloop export --gguf`.\n\n"
            "## Ollama\n\n```sh\n"
            f"ollama create {stem} -f {stem}.Modelfile\nollama run {stem}\n```\n\n"
            "## llama.cpp\n\n```sh\n"
            f"llama-server -m {gguf_name} --jinja   # OpenAI-compatible server on :8080\n"
            f'llama-cli -m {gguf_name} -p "Hello" -st   # one prompt, one answer, with the chat template\n```\n\n'
            "LM Studio opens the file as it is.\n")
