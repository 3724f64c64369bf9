"""The one model loader. Every stage (chat, fine-tuning, RAG, comparison) loads models through here.

This first part is the transformers side (HF folder or hub id, optional GGUF, LoRA adapter, 4/8-bit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fileio import UserError

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def quantization_config(quantization: str | None, compute_dtype: Any = None):
    """bitsandbytes config for ``"4bit"`` (QLoRA: nf4 + double quant) or ``"8bit"``; None for full precision."""
    if quantization in (None, "", "none"):
        return None
    try:
        import bitsandbytes  # noqa: F401
        import torch
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise UserError(f"quantization {quantization!r} needs bitsandbytes, which is not installed") from None
    if quantization == "4bit":
        if compute_dtype is None:
            compute_dtype = torch.bfloat16 if cuda_available() and torch.cuda.is_bf16_supported() else torch.float32
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise UserError(f"unknown quantization {quantization!r} (use 4bit, 8bit or none)")


def _check_model_path(model: str | os.PathLike[str], gguf_file: str | None) -> str:
    model = str(model)
    local = Path(model)
    looks_local = local.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1
    if looks_local:
        if not local.exists():
            raise UserError(f"{model}: model not found (see models/README.md for how to get it)")
        if gguf_file is None and local.is_dir() and not (local / "config.json").exists():
            raise UserError(f"{model}: not a transformers model folder (no config.json)")
        if gguf_file is not None and not (local / gguf_file).exists():
            raise UserError(f"{local / gguf_file}: GGUF file not found")
    return model


def load_tokenizer(model: str | os.PathLike[str], gguf_file: str | None = None):
    """The tokenizer of ``model``, with a pad token distinct from eos where the vocabulary allows."""
    from transformers import AutoTokenizer

    model = _check_model_path(model, gguf_file)
    try:
        tok = AutoTokenizer.from_pretrained(model, gguf_file=gguf_file) if gguf_file else AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise UserError(f"{model}: cannot load tokenizer: {str(e).splitlines()[0]}") from None
    if tok.pad_token is None:
        # Llama 2 has no pad token; using eos as pad teaches the model never to stop (the study's rambling).
        if tok.unk_token is not None and tok.unk_token != tok.eos_token:
            tok.pad_token = tok.unk_token
        else:
            tok.pad_token = tok.eos_token
    return tok


def load_hf_model(
    model: str | os.PathLike[str],
    *,
    gguf_file: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    quantization: str | None = None,
    dtype: Any = "auto",
    device_map: Any = None,
    trainable: bool = False,
):
    """Load a causal LM (and its tokenizer) with transformers.

    model: HF folder or hub id; gguf_file: a GGUF inside that folder (de-quantized by transformers);
    adapter: a LoRA adapter folder (peft) applied on top; quantization: None | "4bit" | "8bit" (bitsandbytes);
    device_map: None -> "auto" on CUDA, CPU otherwise; trainable: keep the adapter trainable.
    Returns (model, tokenizer).
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = _check_model_path(model, gguf_file)
    tokenizer = load_tokenizer(model, gguf_file)
    if device_map is None:
        device_map = "auto" if cuda_available() else None
    if dtype == "auto" and not cuda_available():
        dtype = torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    qconf = quantization_config(quantization)
    if qconf is not None:
        kwargs["quantization_config"] = qconf
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        lm = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"{model}: cannot load model: {str(e).splitlines()[0]}") from None
    if lm.generation_config.pad_token_id is None:
        lm.generation_config.pad_token_id = tokenizer.pad_token_id
    if adapter is not None:
        lm = apply_adapter(lm, adapter, trainable=trainable)
    return lm, tokenizer


def apply_adapter(lm, adapter: str | os.PathLike[str], trainable: bool = False):
    """Put a saved LoRA adapter on ``lm``; a mismatched adapter is a UserError, not a traceback."""
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").exists():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json); run finetune.py first")
    try:
        return PeftModel.from_pretrained(lm, str(adapter), is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{adapter}: adapter does not match the base model: {str(e).splitlines()[0][:200]}") from None
