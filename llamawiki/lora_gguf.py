"""A PEFT LoRA adapter (finetune.py's output) as a llama.cpp GGUF adapter, so the fine-tuned model runs on CPU.

llama.cpp applies a LoRA adapter on top of a quantized base GGUF at load time (``Llama(lora_path=...)``): the
fine-tuned system then runs at llama.cpp speed without merging or re-quantizing the 13B weights. The
llama-cpp-python wheel ships no converter (its sdist has llama.cpp's ``convert_lora_to_gguf.py``, which also
needs the HF base model); this one needs only the adapter folder and the base GGUF it will be applied to:

* tensor names come from the ``gguf`` package's map for the base GGUF's architecture
  (``model.layers.3.self_attn.q_proj`` -> ``blk.3.attn_q.weight``), checked against the base GGUF's tensors;
* ``lora_A`` (r x in) and ``lora_B`` (out x r) are written as ``<tensor>.lora_a`` / ``.lora_b`` in float32;
  llama.cpp scales by ``alpha / r`` like PEFT (rsLoRA's ``alpha / sqrt(r)`` is folded into alpha);
* for the ``llama`` architecture, llama.cpp's converter permutes the rows of q_proj and k_proj (rotary layout);
  ``W = B @ A``, so the same permutation is applied to the rows of ``lora_B``.

The result is cached as ``<adapter>/adapter_model.gguf``, stamped with the sha256 of the source weights, and
rebuilt when the adapter changes. Only the supported cases convert; anything else is a clear error.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .checks import lora_mismatch, read_safetensors_header
from .fileio import GGUF_MAGIC, UserError, atomic_path, sha256_file

GGUF_ADAPTER_NAME = "adapter_model.gguf"
SOURCE_KEY = "llamawiki.adapter_sha256"
PEFT_PREFIX = "base_model.model."

# Architectures whose llama.cpp conversion keeps HF's q/k row order, and the one that permutes it.
_PLAIN_ARCHS = {"gemma", "gemma2", "gemma3", "qwen2", "qwen3", "phi3"}
_PERMUTE_QK_ARCHS = {"llama"}


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def read_gguf_header(path: str | os.PathLike[str], tensors: list | None = None) -> tuple[dict, set[str]]:
    """(scalar and string metadata, tensor names) of a GGUF, skipping arrays such as the 262k-token vocabulary.

    gguf.GGUFReader decodes every array element (20 s for Gemma's vocabulary); this reads only what is needed.
    ``tensors``: a list that receives ``(name, shape, ggml type, offset)`` per tensor and, last, the header's end
    position (``("", (), -1, end)``), for :func:`check_gguf_file`.
    """
    import struct

    def read(fmt: str):
        size = struct.calcsize(fmt)
        data = f.read(size)
        if len(data) != size:
            raise EOFError
        return struct.unpack(fmt, data)[0]

    def read_str() -> str:
        return f.read(read("<Q")).decode("utf-8", "replace")

    def skip(vtype: int) -> None:
        if vtype == _STRING:
            f.seek(read("<Q"), 1)
        elif vtype == _ARRAY:
            itype, count = read("<I"), read("<Q")
            if itype in _SCALARS:
                f.seek(struct.calcsize(_SCALARS[itype]) * count, 1)
            else:
                for _ in range(count):
                    skip(itype)
        else:
            f.seek(struct.calcsize(_SCALARS[vtype]), 1)

    meta: dict = {}
    names: set[str] = set()
    try:
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise UserError(f"{path}: not a GGUF file")
            read("<I")  # version
            n_tensors, n_kv = read("<Q"), read("<Q")
            for _ in range(n_kv):
                key, vtype = read_str(), read("<I")
                if vtype == _STRING:
                    meta[key] = read_str()
                elif vtype in _SCALARS:
                    meta[key] = read(_SCALARS[vtype])
                elif vtype == _ARRAY:
                    skip(vtype)
                else:
                    raise UserError(f"{path}: unknown GGUF value type {vtype} for {key}")
            for _ in range(n_tensors):
                name = read_str()
                names.add(name)
                if tensors is None:
                    f.seek(8 * read("<I") + 4 + 8, 1)  # dims, type, offset
                else:
                    shape = tuple(read("<Q") for _ in range(read("<I")))
                    tensors.append((name, shape, read("<I"), read("<Q")))
            if tensors is not None:
                tensors.append(("", (), -1, f.tell()))
    except (EOFError, KeyError, struct.error):
        raise UserError(f"{path}: truncated or corrupt GGUF header") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    return meta, names


def check_gguf_file(path: str | os.PathLike[str], kind: str = "model", architecture: str | None = None) -> dict:
    """Validate a GGUF before llama.cpp reads it (a damaged file can crash llama.cpp instead of raising): the
    magic and version, every tensor's data inside the file, and for ``kind="adapter"`` ``general.type =
    adapter``, ``adapter.type = lora`` and the ``architecture`` of the base model. Returns the metadata; any
    problem is a one-line UserError naming the file."""
    import gguf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(8)
    if head[:4] != GGUF_MAGIC:
        raise UserError(f"{path}: not a GGUF file")
    version = int.from_bytes(head[4:8], "little") if len(head) == 8 else 0
    if version not in (2, 3):
        raise UserError(f"{path}: unsupported GGUF version {version}")
    tensors: list = []
    meta, _ = read_gguf_header(path, tensors)
    end = tensors.pop()[3]
    align = int(meta.get("general.alignment", 32) or 32)
    data_start = (end + align - 1) // align * align
    size = path.stat().st_size
    for name, shape, ttype, offset in tensors:
        try:
            block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(ttype)]
        except (ValueError, KeyError):
            raise UserError(f"{path}: tensor {name!r} has an unknown type {ttype}") from None
        n = 1
        for d in shape:
            n *= d
        if data_start + offset + n // block * type_size > size:
            raise UserError(f"{path}: truncated: tensor {name!r} lies past the end of the file ({size} bytes)")
    if kind == "adapter":
        if meta.get("general.type") != "adapter":
            what = (
                "a model, not an adapter"
                if meta.get("general.type") in (None, "model")
                else f"general.type {meta.get('general.type')!r}"
            )
            raise UserError(f"{path}: not a LoRA adapter GGUF ({what})")
        if meta.get("adapter.type") != "lora":
            raise UserError(f"{path}: adapter.type is {meta.get('adapter.type')!r}, expected 'lora'")
        if architecture and meta.get("general.architecture") != architecture:
            raise UserError(
                f"{path}: adapter does not match the base model (the adapter is for architecture "
                f"{meta.get('general.architecture')!r}, the base model is {architecture!r})"
            )
    return meta


def gguf_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of a GGUF in numpy/HF order (GGUF stores the innermost dimension first), read
    from the header only."""
    tensors: list = []
    read_gguf_header(path, tensors)
    return {name: tuple(reversed(shape)) for name, shape, _, _ in tensors[:-1]}


def adapter_mismatch(adapter_gguf: str | os.PathLike[str], base_gguf: str | os.PathLike[str]) -> str | None:
    """Why a GGUF LoRA adapter cannot be applied to ``base_gguf`` (a tensor the base lacks, a shape that does
    not fit), or None. llama.cpp does not check the shapes: a mismatched adapter crashes it."""
    lora: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in gguf_shapes(adapter_gguf).items():
        target, dot, part = name.rpartition(".lora_")
        if not dot or part not in ("a", "b"):
            return f"{name} is not a LoRA tensor"
        lora.setdefault(target, {})[part.upper()] = shape
    if not lora:
        return "the adapter has no LoRA tensors"
    base = {k: v for k, v in gguf_shapes(base_gguf).items() if len(v) == 2}
    return lora_mismatch(lora, base)


def check_adapter_fits(
    adapter_gguf: str | os.PathLike[str], base_gguf: str | os.PathLike[str], name: str | os.PathLike[str] | None = None
) -> None:
    """UserError ``<name>: adapter does not match the base model (...)`` unless every LoRA tensor of
    ``adapter_gguf`` fits ``base_gguf`` (``name``: what the user gave, default the adapter file)."""
    why = adapter_mismatch(adapter_gguf, base_gguf)
    if why:
        raise UserError(
            f"{name or adapter_gguf}: adapter does not match the base model ({Path(base_gguf).name}: {why})"
        )


def gguf_architecture(base_gguf: str | os.PathLike[str]) -> tuple[str, dict]:
    """(architecture, info): the few hyper-parameters the conversion needs, and the base's tensor names."""
    meta, names = read_gguf_header(base_gguf)
    arch = meta.get("general.architecture")
    if not arch:
        raise UserError(f"{base_gguf}: GGUF without general.architecture")
    info = {
        "block_count": meta.get(f"{arch}.block_count"),
        "head_count": meta.get(f"{arch}.attention.head_count"),
        "head_count_kv": meta.get(f"{arch}.attention.head_count_kv"),
        "tensors": names,
    }
    return arch, info


def _permute_rows(w, n_head: int):
    """llama.cpp's LlamaModel.permute on the rows (output dimension) of a matrix."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _read_adapter(adapter_dir: Path) -> tuple[dict, Path]:
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.exists():
        raise UserError(f"{adapter_dir}: not a LoRA adapter folder (no adapter_config.json)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise UserError(f"{config_path}: unreadable adapter config: {e}") from None
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.exists():
        raise UserError(f"{adapter_dir}: no adapter_model.safetensors (save the adapter with safetensors)")
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{config_path}: peft_type {config.get('peft_type')!r} cannot run in llama.cpp (only LORA)")
    for key, what in (("use_dora", "DoRA"), ("modules_to_save", "modules_to_save"), ("alpha_pattern", "alpha_pattern")):
        if config.get(key):
            raise UserError(
                f"{config_path}: {what} is not supported by llama.cpp adapters; "
                f"use the transformers backend for this adapter"
            )
    if config.get("use_rslora") and config.get("rank_pattern"):
        raise UserError(
            f"{config_path}: rsLoRA with rank_pattern cannot be expressed with llama.cpp's single alpha; "
            f"use the transformers backend for this adapter"
        )
    return config, weights


def is_gguf_adapter(adapter: str | os.PathLike[str]) -> bool:
    """An adapter given as a GGUF file (used as is), rather than finetune.py's folder."""
    adapter = Path(adapter)
    return adapter.is_file() and adapter.suffix == ".gguf"


def lora_to_gguf(
    adapter_dir: str | os.PathLike[str],
    base_gguf: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the GGUF adapter for ``base_gguf`` (default ``<adapter_dir>/adapter_model.gguf``); returns its path."""
    adapter_dir = Path(adapter_dir)
    config, weights = _read_adapter(adapter_dir)
    return _convert(
        config,
        weights,
        sha256_file(weights),
        base_gguf,
        Path(out_path) if out_path else adapter_dir / GGUF_ADAPTER_NAME,
    )


def _convert(config: dict, weights: Path, digest: str, base_gguf: str | os.PathLike[str], out_path: Path) -> Path:
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    arch, info = gguf_architecture(base_gguf)
    base_shapes = {k: v for k, v in gguf_shapes(base_gguf).items() if len(v) == 2}
    if arch not in _PLAIN_ARCHS | _PERMUTE_QK_ARCHS:
        raise UserError(
            f"{base_gguf}: LoRA conversion for architecture {arch!r} is not supported "
            f"(supported: {', '.join(sorted(_PLAIN_ARCHS | _PERMUTE_QK_ARCHS))}); "
            f"use the transformers backend"
        )
    arch_id = next((k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch), None)
    if arch_id is None:
        raise UserError(f"{base_gguf}: architecture {arch!r} unknown to the gguf package")
    name_map = gguf.get_tensor_name_map(arch_id, int(info["block_count"]))

    read_safetensors_header(weights)  # a truncated file: one line, not safetensors' own error
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types
        raise UserError(f"{weights}: unreadable safetensors file: {e}") from None
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        if not key.startswith(PEFT_PREFIX) or ".lora_" not in key:
            raise UserError(f"{weights}: unexpected tensor {key!r} (only lora_A/lora_B of linear layers convert)")
        module, part = key[len(PEFT_PREFIX) :].rsplit(".lora_", 1)
        if part not in ("A.weight", "B.weight"):
            raise UserError(f"{weights}: unsupported LoRA tensor {key!r} (embedding or bias LoRA)")
        target = name_map.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None or target not in info["tensors"]:
            raise UserError(
                f"{weights.parent}: adapter does not match the base model ({Path(base_gguf).name} "
                f"has no tensor matching {module}; was the adapter trained on another model?)"
            )
        pairs.setdefault(target, {})[part[0]] = value.astype(np.float32)
    # llama.cpp does not check the shapes: an adapter of another model would crash it (segmentation fault)
    why = lora_mismatch({t: {k: v.shape for k, v in ab.items()} for t, ab in pairs.items()}, base_shapes)
    if why:
        raise UserError(f"{weights.parent}: adapter does not match the base model ({Path(base_gguf).name}: {why})")

    alpha = float(config.get("lora_alpha", config.get("r", 8)))
    if config.get("use_rslora"):
        # PEFT scales by alpha / sqrt(r), llama.cpp by alpha / r: the same scale with alpha * sqrt(r)
        alpha *= math.sqrt(int(config["r"]))
    with atomic_path(out_path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_string(SOURCE_KEY, digest)
        for target in sorted(pairs):
            a, b = pairs[target]["A"], pairs[target]["B"]
            if arch in _PERMUTE_QK_ARCHS and target.endswith((".attn_q.weight", ".attn_k.weight")):
                heads = info["head_count"]
                if target.endswith(".attn_k.weight") and info["head_count_kv"]:
                    heads = info["head_count_kv"]
                b = _permute_rows(b, int(heads))
            writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(a))
            writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(b))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out_path


def ensure_lora_gguf(adapter: str | os.PathLike[str], base_gguf: str | os.PathLike[str]) -> Path:
    """The GGUF adapter to give llama.cpp: a ``.gguf`` file as is, or a PEFT folder converted once (cached)."""
    adapter = Path(adapter)
    arch = read_gguf_header(base_gguf)[0].get("general.architecture")
    if is_gguf_adapter(adapter):
        check_gguf_file(adapter, "adapter", arch)
        check_adapter_fits(adapter, base_gguf)
        return adapter
    if adapter.is_file():
        raise UserError(f"{adapter}: not an adapter (expected a finetune.py output folder or a .gguf LoRA adapter)")
    if not adapter.is_dir():
        raise UserError(f"{adapter}: adapter not found (a finetune.py output folder or a GGUF adapter file)")
    config, weights = _read_adapter(adapter)
    digest = sha256_file(weights)
    cached = adapter / GGUF_ADAPTER_NAME
    if cached.exists():
        try:
            stamp = check_gguf_file(cached, "adapter", arch).get(SOURCE_KEY)
            if adapter_mismatch(cached, base_gguf):
                stamp = None  # converted for another base model (or by a version without the shape check)
        except UserError:
            stamp = None  # a damaged cache (truncated, overwritten) is rebuilt
        if stamp == digest:
            return cached
    try:
        out = _convert(config, weights, digest, base_gguf, cached)  # refuses a mismatch before writing
        check_gguf_file(out, "adapter", arch)
        check_adapter_fits(out, base_gguf, adapter)
        return out
    except PermissionError:
        raise UserError(
            f"{adapter}: cannot write {GGUF_ADAPTER_NAME} here (read-only folder); convert it "
            f"elsewhere with llamawiki.lora_gguf.lora_to_gguf and pass the .gguf file"
        ) from None
