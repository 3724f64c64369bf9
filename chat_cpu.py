#!/usr/bin/env python3
"""Chat in the terminal with a GGUF model on the CPU (llama.cpp), like the study's chat_cpu.py.

    python chat_cpu.py                                   # the embedded Gemma 3 270M (run `make models` first)
    python chat_cpu.py --model models/llama-2-13b-chat.Q4_K_M.gguf --mode chat --threads 8
    python chat_cpu.py --prompt "Qual é a capital do Brasil?" --temperature 0
    python chat_cpu.py --adapter models/lora-demo        # the fine-tuned model: base GGUF + finetune.py's LoRA

Answers stream as they are generated. /reset clears the conversation, /exit (or Ctrl-D) quits.
"""

import argparse

from llamawiki.chat import add_chat_arguments, check_chat_arguments, run_chat
from llamawiki.fileio import cli
from llamawiki.models import EMBEDDED_GGUF, load_llamacpp


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(EMBEDDED_GGUF), help="GGUF file (default: the embedded Gemma 3 270M)")
    p.add_argument("--adapter", default=None,
                   help="LoRA adapter: finetune.py's output folder (converted once to adapter_model.gguf) or a GGUF adapter")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available cores)")
    p.add_argument("--chat-format", default=None,
                   help="llama-cpp-python chat format for --mode chat when the GGUF has no template (e.g. gemma, llama-2)")
    add_chat_arguments(p)
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_chat_arguments(args)
    chat_format = args.chat_format
    if args.mode == "chat" and chat_format is None and args.model == str(EMBEDDED_GGUF):
        chat_format = "gemma"  # the embedded base model has no template of its own
    # interactive: keep the history's KV cache between turns
    gen = load_llamacpp(args.model, n_ctx=args.ctx, n_threads=args.threads, chat_format=chat_format,
                        adapter=args.adapter, reuse_prompt_cache=args.prompt is None)
    return run_chat(gen, args)


if __name__ == "__main__":
    raise SystemExit(main())
