"""Model and adapter files checked before any library reads them (safetensors headers, LoRA shapes vs the base).

Libraries fail badly on a damaged or mismatched file: safetensors raises its own tracebacks on a truncated file,
peft only notices a LoRA trained on another model after the whole base model is loaded, and llama.cpp crashes
(segmentation fault) on a LoRA whose tensor shapes do not fit the base. Everything here reads file headers only
(a few kilobytes): cheap enough to run before every load, and the problem comes out as one UserError naming the
file.

* ``read_safetensors_header(path)``: the 8-byte length + JSON header, every tensor's bytes inside the file and the
  data size equal to what the header describes -> ``{name: shape}``;
* ``check_model_folder(folder)``: the same for every ``*.safetensors`` of a transformers model folder;
* ``lora_mismatch(lora, base)``: the first LoRA pair whose shapes do not fit its base weight (the wording of every
  "adapter does not match the base model" message);
* ``check_hf_adapter(adapter, base)``: a peft adapter folder checked against a transformers base folder.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from .fileio import UserError

# bytes per element of each safetensors dtype
_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
PEFT_PREFIX = "base_model.model."


def read_safetensors_header(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of a safetensors file whose header and data are whole; a UserError otherwise."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise UserError(f"{path}: truncated safetensors file ({size} bytes, no header)")
            n = struct.unpack("<Q", head)[0]
            if n > _MAX_HEADER or 8 + n > size:
                raise UserError(
                    f"{path}: truncated or not a safetensors file (header of {n} bytes, file of {size} bytes)"
                )
            raw = f.read(n)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, expected a .safetensors file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise UserError(f"{path}: not a safetensors file (unreadable header)") from None
    data = size - 8 - n
    shapes: dict[str, tuple[int, ...]] = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, stop = (int(x) for x in info["data_offsets"])
            shape = tuple(int(d) for d in info["shape"])
            item = _DTYPE_SIZES.get(str(info["dtype"]))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}: not a safetensors file (bad header entry {name!r})") from None
        count = 1
        for d in shape:
            count *= d
        if item is not None and stop - begin != count * item:
            raise UserError(
                f"{path}: corrupt safetensors header (tensor {name!r}: {stop - begin} bytes for shape {list(shape)})"
            )
        if stop > data:
            raise UserError(f"{path}: truncated: tensor {name!r} lies past the end of the file ({size} bytes)")
        end = max(end, stop)
        shapes[name] = shape
    if end != data:
        raise UserError(f"{path}: truncated or corrupt: the header describes {end} bytes of data, the file has {data}")
    return shapes


def check_model_folder(folder: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Every ``*.safetensors`` of a transformers model folder whole (see read_safetensors_header); the shapes of
    all their tensors. A folder with no safetensors (``.bin`` weights, a hub id) is left to transformers."""
    folder = Path(folder)
    shapes: dict[str, tuple[int, ...]] = {}
    if folder.is_dir():
        for file in sorted(folder.glob("*.safetensors")):
            shapes.update(read_safetensors_header(file))
    return shapes


def lora_mismatch(lora: dict[str, dict[str, tuple[int, ...]]], base: dict[str, tuple[int, int]]) -> str | None:
    """Why a LoRA does not fit its base, or None. ``lora``: base weight name -> ``{"A": (r, in), "B": (out, r)}``
    (HF orientation); ``base``: weight name -> (out, in). A weight missing from ``base`` is a mismatch."""
    for name in sorted(lora):
        ab = lora[name]
        if set(ab) != {"A", "B"}:
            return f"{name} has lora_{''.join(sorted(ab))} without its pair"
        a, b = ab["A"], ab["B"]
        if name not in base:
            return f"{name} is not in the base model"
        if len(a) != 2 or len(b) != 2 or a[0] != b[1]:
            return f"{name}: lora_A {list(a)} and lora_B {list(b)} do not pair"
        out_dim, in_dim = base[name]
        if (b[0], a[1]) != (out_dim, in_dim):
            return f"{name}: the adapter's is {b[0]}x{a[1]}, the base model's {out_dim}x{in_dim}"
    return None


def peft_lora_shapes(shapes: dict[str, tuple[int, ...]]) -> dict[str, dict[str, tuple[int, ...]]]:
    """A peft adapter's ``{name: shape}`` as ``{base weight name: {"A": shape, "B": shape}}`` (linear LoRA only;
    other tensors are left out)."""
    out: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        if not key.startswith(PEFT_PREFIX) or ".lora_" not in key:
            continue
        module, part = key[len(PEFT_PREFIX) :].rsplit(".lora_", 1)
        if part in ("A.weight", "B.weight"):
            out.setdefault(module + ".weight", {})[part[0]] = shape
    return out


def check_hf_adapter(adapter: str | os.PathLike[str], base: str | os.PathLike[str] | None = None) -> None:
    """A peft LoRA folder, before transformers loads anything: adapter_config.json readable, the weights whole,
    and, when ``base`` is a local folder with safetensors weights, every LoRA pair shaped like its base weight."""
    adapter = Path(adapter)
    if adapter.is_file():
        raise UserError(
            f"{adapter}: not a LoRA adapter folder (a file; the transformers backend takes finetune.py's output folder)"
        )
    if not adapter.is_dir():
        raise UserError(f"{adapter}: adapter not found (a finetune.py output folder)")
    config = adapter / "adapter_config.json"
    if not config.exists():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json); run finetune.py first")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise UserError(f"{config}: unreadable adapter config: {str(e).splitlines()[0]}") from None
    weights = adapter / "adapter_model.safetensors"
    if not weights.exists():
        if (adapter / "adapter_model.bin").exists():
            return
        raise UserError(f"{adapter}: no adapter_model.safetensors (the adapter's weights)")
    lora = peft_lora_shapes(read_safetensors_header(weights))
    if base is None or not Path(base).is_dir():
        return
    base_shapes = {k: v for k, v in check_model_folder(base).items() if len(v) == 2}
    known = {k: v for k, v in lora.items() if k in base_shapes}
    if not base_shapes or not known:
        return  # names the check cannot map (another checkpoint layout): peft decides
    why = lora_mismatch(known, base_shapes)
    if why:
        raise UserError(f"{adapter}: adapter does not match the base model ({Path(base).name}: {why})")
