#!/usr/bin/env python3
"""Batched vs one-at-a-time generation on the transformers backend, and our Generator vs bare model.generate.

    python bench/bench_generation.py [--model models/gemma-3-270m-hf] [--batch-size 8] [--max-new-tokens 64]
    python bench/bench_generation.py --model models/random-llama-13b --load-in-4bit --batch-size 8   # on a GPU

Same loaded model, same prompts, paths alternating over --repeats rounds (best time kept) (the fixed questions of data/perguntas.csv in the study's prompt), greedy, eos
suppressed and no stop strings, so every path generates exactly --max-new-tokens tokens per prompt. Prints
tokens/s of: "bare" (``model.generate`` one prompt at a time), "ours" (``Generator.generate``, the path
chat_gpu.py and compare.py take), "batch" (``Generator.generate_batch``, what compare.py does with
``generation.batch_size``), and the ratios ours/bare (goal >= 0.95) and batch/ours.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki import prompt as P  # noqa: E402
from llamawiki.evaluation import load_questions  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402
from llamawiki.models import EMBEDDED_HF, load_transformers  # noqa: E402


@cli
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(EMBEDDED_HF))
    ap.add_argument("--adapter", default=None)
    ap.add_argument("--load-in-4bit", action="store_true")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--prompts", type=int, default=8, help="how many questions (default 8)")
    ap.add_argument("--repeats", type=int, default=2, help="rounds, paths alternating; the best time counts")
    args = ap.parse_args(argv)
    import torch

    gen = load_transformers(args.model, adapter=args.adapter, quantization="4bit" if args.load_in_4bit else None)
    questions = load_questions(ROOT / "data" / "perguntas.csv")[: args.prompts]
    prompts = [P.build_prompt(q.pergunta) for q in questions]
    n = args.max_new_tokens
    tok, model = gen.tokenizer, gen.model
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"model {gen.name} on {device}, {len(prompts)} prompts x {n} new tokens, batch size {args.batch_size}")
    gen.generate(prompts[0], max_new_tokens=4, stop=[])      # warm-up

    def timed(fn):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def bare():
        for p in prompts:
            ids = tok(p, return_tensors="pt").to(model.device)
            with torch.no_grad():
                model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, temperature=None,
                               top_p=None, top_k=None, pad_token_id=tok.pad_token_id or tok.eos_token_id)

    def ours():
        for p in prompts:
            gen.generate(p, max_new_tokens=n, stop=[], ignore_eos=True)

    def batch():
        for i in range(0, len(prompts), args.batch_size):
            gen.generate_batch(prompts[i:i + args.batch_size], max_new_tokens=n, stop=[], ignore_eos=True)

    total = len(prompts) * n
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in (("bare", bare), ("ours", ours), ("batch", batch)):
            seconds = timed(fn)
            best[name] = min(best.get(name, seconds), seconds)
    rates = {}
    for name, seconds in best.items():
        rates[name] = total / seconds
        print(f"  {name:<6} {seconds:7.2f} s  {rates[name]:8.1f} tok/s  (best of {args.repeats})")
    print(f"ratio ours/bare {rates['ours'] / rates['bare']:.2f}   batch/ours {rates['batch'] / rates['ours']:.2f}")
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
