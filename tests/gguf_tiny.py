"""Test utility: a tiny HF Llama folder as an f32 GGUF of architecture ``llama``, the way llama.cpp converts it.

Mirrors what llama.cpp's convert_hf_to_gguf.py does for LlamaForCausalLM (TextModel.set_gguf_parameters,
LlamaModel.set_gguf_parameters / permute / modify_tensors, _set_vocab_gpt2):

* hparams: block_count, context_length, embedding_length, feed_forward_length, attention.head_count,
  attention.head_count_kv, rope.freq_base, attention.layer_norm_rms_epsilon, file_type, vocab_size,
  rope.dimension_count (= head_dim);
* tensor names from the gguf package's map (``model.layers.0.self_attn.q_proj.weight`` -> ``blk.0.attn_q.weight``);
* q_proj rows permuted with n_head, k_proj rows with n_head_kv: HF's rotate-half RoPE layout -> llama.cpp's
  interleaved ("normal") RoPE layout;
* a byte-level BPE vocabulary as tokenizer.ggml.model "gpt2" (tokens, token types, merges, pre-tokenizer
  "gpt-2", which is the regex of HF's ByteLevel(use_regex=True) pre-tokenizer), bos/eos/pad ids.

Also ``sharpen_tiny_llama``: the conftest tiny Llama is initialised with std 0.02, so its attention is almost
uniform and a wrong q/k row order would barely move the logits; the re-drawn weights make every part matter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, verbatim."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def sharpen_tiny_llama(src: Path, out: Path, seed: int = 0) -> Path:
    """Copy the HF Llama folder ``src`` to ``out`` with weights re-drawn at scales where attention is sharp.

    Attention scores of order 1 (q/k std 0.15 on unit-RMS inputs), norms around 1, logits of order 1: a wrong
    rotary layout or a misplaced LoRA delta then shows in the logits far above float32 noise.
    """
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(src, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif "embed_tokens" in name:
                p.copy_(noise)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                p.copy_(0.15 * noise)
            else:
                p.copy_(0.1 * noise)
    model.save_pretrained(out)
    for fname in TOKENIZER_FILES:
        if (src / fname).exists():
            shutil.copy2(src / fname, out / fname)
    return out


def _tokenizer(writer, hf_dir: Path, config: dict) -> None:
    import gguf

    tok = json.loads((hf_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok["model"]
    if model.get("type") != "BPE" or (tok.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
        raise ValueError(f"{hf_dir}: only byte-level BPE tokenizers are written here")
    vocab = dict(model["vocab"])
    special = set()
    for added in tok.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
        if added.get("special"):
            special.add(added["id"])
    vocab_size = max(config["vocab_size"], len(vocab))
    reverse = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(vocab_size):  # like get_vocab_base: holes become [PAD{i}] tokens
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    for key, add in (
        ("bos_token_id", writer.add_bos_token_id),
        ("eos_token_id", writer.add_eos_token_id),
        ("pad_token_id", writer.add_pad_token_id),
    ):
        if config.get(key) is not None:
            add(int(config[key]))
    # the HF tokenizer's post-processor adds no BOS/EOS: tell llama.cpp the same
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)


def write_llama_gguf(hf_dir: Path, out_path: Path, *, block_count: int | None = None, permute_qk: bool = True) -> Path:
    """Write the HF LlamaForCausalLM folder ``hf_dir`` as an f32 GGUF (llama.cpp architecture ``llama``).

    block_count: keep only the first N layers (a base that does not fit an adapter of the full model).
    permute_qk=False leaves q/k in HF's row order (a deliberately wrong file, to show the permutation matters).
    """
    import gguf
    from safetensors.numpy import load_file

    hf_dir, out_path = Path(hf_dir), Path(out_path)
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise ValueError(f"{hf_dir}: not a Llama model")
    n_layers = config["num_hidden_layers"] if block_count is None else block_count
    n_head = config["num_attention_heads"]
    n_head_kv = config.get("num_key_value_heads") or n_head
    head_dim = config.get("head_dim") or config["hidden_size"] // n_head
    rope = config.get("rope_parameters") or {}
    rope_theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"{hf_dir}: only default RoPE is written here")

    writer = gguf.GGUFWriter(str(out_path), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    writer.add_name("tiny-llama-test")
    writer.add_block_count(n_layers)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(config["vocab_size"])
    writer.add_rope_dimension_count(head_dim)
    _tokenizer(writer, hf_dir, config)

    tensors = {}
    for shard in sorted(hf_dir.glob("*.safetensors")):
        tensors.update(load_file(str(shard)))
    if config.get("tie_word_embeddings") or "lm_head.weight" not in tensors:
        raise ValueError(f"{hf_dir}: tied embeddings are not written here")
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layers)
    for name in sorted(tensors):
        if name.startswith("model.layers.") and int(name.split(".")[2]) >= n_layers:
            continue
        data = tensors[name].astype(np.float32)
        if permute_qk and name.endswith("q_proj.weight"):
            data = permute(data, n_head, n_head)
        if permute_qk and name.endswith("k_proj.weight"):
            data = permute(data, n_head, n_head_kv)
        target = name_map.get_name(name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ValueError(f"{hf_dir}: cannot map tensor {name!r}")
        writer.add_tensor(target, np.ascontiguousarray(data))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
