#!/usr/bin/env python3
"""Our Generator vs bare model.generate on the transformers backend, and batched vs one at a time.

    python bench/bench_generation.py [--model models/gemma-3-270m-hf] [--batch-size 8] [--max-new-tokens 64]
    python bench/bench_generation.py --stops study          # the study's stop strings and eos, as compare.py runs
    python bench/bench_generation.py --model models/random-llama-13b --load-in-4bit --batch-size 8   # on a GPU

Same loaded model, same prompts (the first --prompts questions of data/perguntas.csv in the study's prompt), same
max_new_tokens, greedy, one warm-up of every path; then --repeats rounds, each running every path once, in an
order that rotates from round to round (so no path always runs first or last on a shared machine). Each path's
time is the MEDIAN of its rounds, and "ours/bare" is the median of the per-round time ratios (each ratio taken
within one round, the two paths a few seconds apart). Paths:

- "bare": ``model.generate`` one prompt at a time, the decoded answers cut at the first stop string;
- "ours": ``Generator.generate`` (the path chat_gpu.py and compare.py take);
- "batch": ``Generator.generate_batch`` in --batch-size batches (compare.py with ``generation.batch_size``).

--stops none (default): eos suppressed and no stop strings, every path generates exactly --max-new-tokens per
prompt. --stops study: the study's stop strings (prompt.STOP_STRINGS) and eos, as compare.py generates; bare gets
transformers' StopStringCriteria (what ``stop_strings=`` + ``tokenizer=`` make), built once before timing. The bench
checks that ours gives bare's answers and prints tokens/s (tokens each path generated), time ratios (goal:
ours/bare <= 1.05) and the batch speed-up.
"""

from __future__ import annotations

import argparse
import statistics
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
    ap.add_argument("--repeats", type=int, default=5, help="rounds, path order rotating; medians count (default 5)")
    ap.add_argument(
        "--stops",
        choices=("none", "study"),
        default="none",
        help="none: no stop strings, eos suppressed (fixed length); study: prompt.STOP_STRINGS and eos",
    )
    ap.add_argument("--paths", default="bare,ours,batch", help="comma-separated subset of bare,ours,batch")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (torch.set_num_threads); 1 on a shared CPU, see below",
    )
    args = ap.parse_args(argv)
    import torch

    if args.threads:
        # On a CPU shared with other jobs, torch's default intra-op threads (one per core) run a decoding step
        # several times slower in the main thread than in a secondary thread (seen: 4x on a loaded 2-core machine),
        # which would compare threading, not generation code: give every path the same single thread.
        torch.set_num_threads(args.threads)

    gen = load_transformers(args.model, adapter=args.adapter, quantization="4bit" if args.load_in_4bit else None)
    questions = load_questions(ROOT / "data" / "perguntas.csv")[: args.prompts]
    prompts = [P.build_prompt(q.pergunta) for q in questions]
    n = args.max_new_tokens
    tok, model = gen.tokenizer, gen.model
    device = "cuda" if torch.cuda.is_available() else "cpu"
    stops = list(P.STOP_STRINGS) if args.stops == "study" else []
    fixed = args.stops == "none"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    print(
        f"model {gen.name} on {device}, {len(prompts)} prompts x {n} new tokens, batch size {args.batch_size}, "
        f"stops {args.stops}, {args.repeats} rounds, {torch.get_num_threads()} torch threads"
    )

    def cut(text: str) -> str:
        i = min((j for j in (text.find(s) for s in stops) if j != -1), default=-1)
        return text if i == -1 else text[:i]

    if fixed:
        extra = dict(min_new_tokens=n)
    else:
        # transformers' StopStringCriteria built once, as ``stop_strings=`` + ``tokenizer=`` would build it inside
        # every generate() call (seen: ~10 s a call over the 262k-token Gemma vocabulary on this CPU)
        from transformers import StoppingCriteriaList, StopStringCriteria

        extra = dict(stopping_criteria=StoppingCriteriaList([StopStringCriteria(tok, stops)]))

    def bare():
        texts, tokens = [], 0
        for p in prompts:
            ids = tok(p, return_tensors="pt").to(model.device)
            with torch.no_grad():
                out = model.generate(
                    **ids,
                    max_new_tokens=n,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=pad,
                    **extra,
                )
            new = out[0, ids["input_ids"].shape[1] :]
            tokens += len(new)
            texts.append(cut(tok.decode(new, skip_special_tokens=True)))
        return texts, tokens

    def ours():
        gs = [gen.generate(p, max_new_tokens=n, stop=stops, ignore_eos=fixed) for p in prompts]
        return [g.text for g in gs], sum(g.n_tokens for g in gs)

    def batch():
        gs = []
        for i in range(0, len(prompts), args.batch_size):
            gs += gen.generate_batch(prompts[i : i + args.batch_size], max_new_tokens=n, stop=stops, ignore_eos=fixed)
        return [g.text for g in gs], sum(g.n_tokens for g in gs)

    def timed(fn):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0, result

    paths = {
        name: fn for name, fn in (("bare", bare), ("ours", ours), ("batch", batch)) if name in args.paths.split(",")
    }
    results = {name: fn() for name, fn in paths.items()}  # warm-up, and the answers to compare
    if "bare" in results:
        for name in ("ours", "batch"):
            if name in results:
                same = results[name][0] == results["bare"][0]
                print(f"  {name} answers == bare answers: {same}")
    names = list(paths)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(timed(paths[name])[0])
    for name in names:
        med = statistics.median(times[name])
        tokens = results[name][1]
        print(
            f"  {name:<6} median {med:7.2f} s  {tokens / med:8.1f} tok/s  ({tokens} tokens; rounds: "
            f"{', '.join(f'{t:.2f}' for t in times[name])})"
        )
    for a, b in (("ours", "bare"), ("batch", "ours")):
        if a in times and b in times:
            ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
            print(
                f"time ratio {a}/{b}: median {statistics.median(ratios):.3f} "
                f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)}; ratio of medians "
                f"{statistics.median(times[a]) / statistics.median(times[b]):.3f})"
            )
    if device == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
