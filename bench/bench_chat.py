#!/usr/bin/env python3
"""chat_cpu.py's generation speed against bare llama-cpp-python, same GGUF, same prompt, same run.

    python bench/bench_chat.py [--model models/gemma-3-270m-q4_k_m.gguf] [--max-tokens 128] [--repeats 5]

"ours" is the path chat_cpu.py takes (llamawiki.models.LlamaCppGenerator.stream); "bare" is
``Llama.create_completion(stream=True)`` on the same loaded Llama (same weights in memory, context and threads:
with two separate Llama objects the one created first was measurably slower on a busy machine, whichever path
used it, so only the Python path differs here; --separate gives each path its own Llama). Runs alternate,
greedy, eos suppressed in both (so both generate exactly --max-tokens tokens), the KV cache reset before each run
(so the time to first token includes the prompt). Prints medians, the ratio ours/bare of generation tokens/s
(goal >= 0.97) and the time to first token.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llamawiki import prompt as P  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402
from llamawiki.models import EMBEDDED_GGUF, default_threads, load_llamacpp  # noqa: E402

QUESTION = "Quem foi Tiradentes e qual foi o seu papel na Inconfidência Mineira?"


class DecodeTimer:
    """Accumulates the time a Llama spends inside llama_decode (the rest of a run is Python overhead)."""

    def __init__(self, llm):
        self.total = 0.0
        ctx = llm._ctx
        inner = ctx.decode

        def timed(batch):
            t = time.perf_counter()
            try:
                return inner(batch)
            finally:
                self.total += time.perf_counter() - t

        ctx.decode = timed


def run_ours(gen, prompt: str, n: int) -> tuple[float, float, int, str]:
    gen.llm.reset()
    t0 = time.perf_counter()
    first = None
    pieces = []
    for piece in gen.stream(prompt, max_new_tokens=n, temperature=0.0, stop=[], ignore_eos=True):
        if first is None:
            first = time.perf_counter()
        pieces.append(piece)
    t1 = time.perf_counter()
    return first - t0, t1 - first, gen.last.n_tokens, "".join(pieces)


def run_bare(llm, prompt: str, n: int, eog: list[int]) -> tuple[float, float, int, str]:
    llm.reset()
    n_prompt = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    t0 = time.perf_counter()
    first = None
    pieces = []
    for chunk in llm.create_completion(
        prompt, max_tokens=n, temperature=0.0, stream=True, logit_bias={i: -1e9 for i in eog}
    ):
        if first is None:
            first = time.perf_counter()
        pieces.append(chunk["choices"][0]["text"])
    t1 = time.perf_counter()
    n_tokens = llm.n_tokens - n_prompt + 1  # the last sampled token is never evaluated
    return first - t0, t1 - first, n_tokens, "".join(pieces)


@cli
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(EMBEDDED_GGUF))
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--ctx", type=int, default=2048)
    p.add_argument("--separate", action="store_true", help="a second Llama for the bare path")
    args = p.parse_args(argv)

    from llama_cpp import Llama

    threads = args.threads or default_threads()
    ours = load_llamacpp(args.model, n_ctx=args.ctx, n_threads=threads)
    bare = ours.llm
    if args.separate:
        bare = Llama(model_path=args.model, n_ctx=args.ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    eog = ours.eog_ids()
    prompt = P.build_prompt(QUESTION)
    n = args.max_tokens
    runs: dict[str, list[tuple[float, float, int, str]]] = {"ours": [], "bare": []}
    timers = {"ours": DecodeTimer(ours.llm)}
    timers["bare"] = timers["ours"] if bare is ours.llm else DecodeTimer(bare)
    fns = {"ours": lambda: run_ours(ours, prompt, n), "bare": lambda: run_bare(bare, prompt, n, eog)}
    fns["ours"](), fns["bare"]()  # warm-up (page cache, thread pools), not counted
    overhead: dict[str, list[float]] = {"ours": [], "bare": []}  # seconds per token outside llama_decode
    decode: dict[str, list[float]] = {"ours": [], "bare": []}  # seconds per token inside it
    for r in range(args.repeats):
        for name in ("ours", "bare") if r % 2 == 0 else ("bare", "ours"):
            timers[name].total = 0.0
            t = time.perf_counter()
            res = fns[name]()
            wall = time.perf_counter() - t
            runs[name].append(res)
            overhead[name].append((wall - timers[name].total) / res[2])
            decode[name].append(timers[name].total / res[2])

    def summary(name):
        rs = runs[name]
        ttft = statistics.median(r[0] for r in rs)
        tps = statistics.median((r[2] - 1) / r[1] for r in rs)
        return ttft, tps, {r[2] for r in rs}

    print(
        f"model {Path(args.model).name}, threads {threads}, n_ctx {args.ctx}, "
        f"{'separate Llama objects' if args.separate else 'one Llama object'}, prompt "
        f"{ours.count_tokens(prompt)} tokens, {n} new tokens (greedy, eos suppressed), {args.repeats} runs each"
    )
    res = {}
    for name in ("ours", "bare"):
        ttft, tps, counts = summary(name)
        res[name] = (ttft, tps)
        print(
            f"  {name:5s} generation {tps:6.1f} tokens/s   time to first token {ttft * 1000:6.0f} ms   "
            f"tokens generated {sorted(counts)}"
        )
    same = runs["ours"][0][3] == runs["bare"][0][3]
    ratio = res["ours"][1] / res["bare"][1]
    print(
        f"  ratio ours/bare (generation tokens/s): {ratio:.3f}  (goal >= 0.97)   same text: {'yes' if same else 'NO'}"
    )
    # On a busy machine llama.cpp's own time per token varies run to run far more than the two paths differ;
    # the Python time outside llama_decode is what the wrapper adds, and it is measured exactly.
    ovh = {k: statistics.median(v) for k, v in overhead.items()}
    dec = statistics.median(decode["ours"] + decode["bare"])
    print(
        f"  Python overhead per token outside llama_decode: ours {ovh['ours'] * 1000:.2f} ms, "
        f"bare {ovh['bare'] * 1000:.2f} ms; llama_decode {dec * 1000:.1f} ms/token "
        f"(ours {statistics.median(decode['ours']) * 1000:.1f}, bare {statistics.median(decode['bare']) * 1000:.1f})"
    )
    print(f"  ratio at equal llama_decode time: {(dec + ovh['bare']) / (dec + ovh['ours']):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
