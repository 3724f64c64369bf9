"""Build a random-weight LlamaForCausalLM in a given shape, offline, with a small byte-level BPE tokenizer
trained here (the one of tests/conftest.py), and save it in bf16 to a folder: a stand-in for Llama 2 weights
when measuring speed and memory of the CUDA paths (bench/gpu_check.sh). Its answers are noise.

    python bench/make_random_llama.py --shape 13b --out models/random-llama-13b
    python bench/make_random_llama.py --shape 1b --out models/random-llama-1b
    python bench/make_random_llama.py --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 --out /tmp/t
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.fileio import UserError, cli  # noqa: E402

# hidden, intermediate, layers, attention heads, kv heads (Llama-2-13B; a TinyLlama-1.1B-like 1B)
SHAPES = {
    "13b": (5120, 13824, 40, 40, 40),
    "7b": (4096, 11008, 32, 32, 32),
    "1b": (2048, 5632, 22, 32, 4),
}


def build_tokenizer(out: Path, max_length: int):
    """The byte-level BPE tokenizer of tests/conftest.py (same corpus and specials), saved to ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tests.conftest import TOKENIZER_CORPUS

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=["<s>", "</s>", "<pad>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TOKENIZER_CORPUS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.model_max_length = max_length
    fast.save_pretrained(out)
    return fast


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder to write (replaced atomically)")
    ap.add_argument("--shape", choices=sorted(SHAPES), help="a Llama shape; the flags below override its values")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--intermediate", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--kv-heads", type=int)
    ap.add_argument("--vocab", type=int, default=32000, help="tokenizer vocabulary size (default 32000, Llama 2's)")
    ap.add_argument("--max-positions", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    base = SHAPES.get(args.shape, (None,) * 5)
    hidden, inter, layers, heads, kv = (
        v if v is not None else b
        for v, b in zip((args.hidden, args.intermediate, args.layers, args.heads, args.kv_heads), base, strict=True)
    )
    if None in (hidden, inter, layers, heads, kv):
        raise UserError("shape: give --shape or all of --hidden --intermediate --layers --heads --kv-heads")
    if hidden % heads or heads % kv:
        raise UserError(f"shape: hidden {hidden} must divide by heads {heads}, and heads by kv-heads {kv}")

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tok = build_tokenizer(tmp, args.max_positions)
        torch.manual_seed(args.seed)
        config = LlamaConfig(
            vocab_size=max(args.vocab, len(tok)),  # Llama 2's embedding size; rows past the tokenizer are unused
            hidden_size=hidden,
            intermediate_size=inter,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv,
            max_position_embeddings=args.max_positions,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=False,
            dtype="bfloat16",
        )
        with torch.device("cpu"):
            torch.set_default_dtype(torch.bfloat16)
            try:
                model = LlamaForCausalLM(config)
            finally:
                torch.set_default_dtype(torch.float32)
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(tmp)
        n = sum(p.numel() for p in model.parameters())
        del model
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    print(
        f"{out}: random Llama, {n / 1e9:.2f}B parameters (hidden {hidden}, {layers} layers, {heads}/{kv} heads), bf16"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
