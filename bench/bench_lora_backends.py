#!/usr/bin/env python3
"""The fine-tuned model on CPU: llama.cpp (Q4_K_M GGUF + the LoRA converted by lora_gguf) against transformers +
peft (fp32 HF folder + the same LoRA), same questions, same prompt, greedy, same run.

    python bench/bench_lora_backends.py [--adapter models/lora-demo] [--questions 8] [--max-tokens 96]

The anchor is transformers + peft (what compare.py used before the demo moved to llama.cpp). Prints the time per
answer of each backend, the speed ratio, and how many answers are identical (Q4_K_M vs fp32 weights may change
a word here and there). Needs `make models` and `make finetune` first.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llamawiki.fileio import UserError, cli  # noqa: E402
from llamawiki.models import EMBEDDED_GGUF, EMBEDDED_HF, load_llamacpp, load_transformers  # noqa: E402
from llamawiki.prompt import build_prompt  # noqa: E402


def answer_all(gen, prompts, max_tokens):
    t0 = time.perf_counter()
    out = [gen.generate(p, max_new_tokens=max_tokens).text for p in prompts]
    return out, time.perf_counter() - t0


@cli
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", default="models/lora-demo")
    ap.add_argument("--gguf", default=str(EMBEDDED_GGUF))
    ap.add_argument("--hf", default=str(EMBEDDED_HF))
    ap.add_argument("--questions-file", default="data/perguntas.csv")
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=96)
    args = ap.parse_args(argv)
    if not Path(args.adapter, "adapter_config.json").exists():
        raise UserError(f"{args.adapter}: adapter not found (run `make finetune`)")
    with open(args.questions_file, encoding="utf-8") as f:
        prompts = [build_prompt(r["pergunta"]) for r in csv.DictReader(f)][: args.questions]

    t0 = time.perf_counter()
    cpp = load_llamacpp(args.gguf, adapter=args.adapter)
    cpp_load = time.perf_counter() - t0
    cpp_out, cpp_s = answer_all(cpp, prompts, args.max_tokens)
    del cpp

    t0 = time.perf_counter()
    hf = load_transformers(args.hf, adapter=args.adapter)
    hf_load = time.perf_counter() - t0
    hf_out, hf_s = answer_all(hf, prompts, args.max_tokens)

    n = len(prompts)
    same = sum(a.strip() == b.strip() for a, b in zip(cpp_out, hf_out, strict=True))
    print(f"questions: {n}, max_new_tokens: {args.max_tokens}")
    print(f"transformers+peft (anchor): load {hf_load:.1f} s, {hf_s / n:.2f} s/answer")
    print(f"llama.cpp + GGUF LoRA:      load {cpp_load:.1f} s, {cpp_s / n:.2f} s/answer")
    print(f"speed ratio llama.cpp / transformers: {hf_s / cpp_s:.2f}x")
    print(f"identical answers: {same}/{n}")
    for a, b in zip(cpp_out, hf_out, strict=True):
        if a.strip() != b.strip():
            print(f"  llama.cpp:    {a.strip()[:100]!r}\n  transformers: {b.strip()[:100]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
