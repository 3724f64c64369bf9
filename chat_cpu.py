#!/usr/bin/env python3
"""Chat in the terminal with a GGUF model on the CPU (llama.cpp), like the study's chat_cpu.py.

    python chat_cpu.py                                   # the embedded Gemma 3 270M (run `make models` first)
    python chat_cpu.py --model models/llama-2-13b-chat.Q4_K_M.gguf --mode chat --threads 8
    python chat_cpu.py --prompt "Qual é a capital do Brasil?"
    python chat_cpu.py --adapter models/lora-demo        # the fine-tuned model: base GGUF + finetune.py's LoRA
    python chat_cpu.py --temperature 0.7 --top-p 0.9     # sample instead of the greedy default

Answers stream as they are generated. /reset clears the conversation, /exit (or Ctrl-D) quits.
"""

import argparse

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import options  # noqa: E402
from llamawiki.chat import add_chat_arguments, check_chat_arguments, run_chat  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402
from llamawiki.models import is_embedded, load_generator, resolve_spec  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_model_arguments(p, backends=("llamacpp",), model_help="GGUF file (default: the embedded Gemma 3 270M)")
    options.add_generation_arguments(p)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available cores)")
    p.add_argument(
        "--chat-format",
        default=None,
        help="llama-cpp-python chat format for --mode chat when the GGUF has no template (e.g. gemma, llama-2)",
    )
    add_chat_arguments(p)
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_chat_arguments(args)
    # interactive: keep the history's KV cache between turns
    spec = resolve_spec(
        options.model_spec(
            args, n_threads=args.threads, chat_format=args.chat_format, reuse_prompt_cache=args.prompt is None
        )
    )
    if args.mode == "chat" and args.chat_format is None and is_embedded(spec["model"]):
        spec["chat_format"] = "gemma"  # the embedded base model has no template of its own
    return run_chat(load_generator(spec), args)


if __name__ == "__main__":
    raise SystemExit(main())
