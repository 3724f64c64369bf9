#!/usr/bin/env python3
"""Chat in the terminal with a transformers model on the GPU (or llama.cpp with GPU offload).

    python chat_gpu.py                                        # the embedded Gemma (HF folder from `make models`)
    python chat_gpu.py --model models/llama-2-13b-chat-hf --load-in-4bit --adapter models/lora-llama2-13b
    python chat_gpu.py --backend llamacpp --model models/llama-2-13b-chat.Q4_K_M.gguf --n-gpu-layers 40

Same interface as chat_cpu.py: streaming answers, /reset, /exit. Without CUDA it runs on the CPU.
"""

import argparse
import sys

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import options  # noqa: E402
from llamawiki.chat import add_chat_arguments, check_chat_arguments, run_chat  # noqa: E402
from llamawiki.fileio import UserError, cli  # noqa: E402
from llamawiki.models import cuda_available, load_generator  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_model_arguments(
        p,
        backend="transformers",
        model_help="HF folder or hub id (transformers), or a .gguf file (llamacpp); default: the embedded Gemma",
    )
    options.add_generation_arguments(p)
    q = p.add_mutually_exclusive_group()
    q.add_argument("--load-in-4bit", action="store_true", help="bitsandbytes nf4 + double quant (QLoRA-style)")
    q.add_argument("--load-in-8bit", action="store_true", help="bitsandbytes 8-bit")
    p.add_argument(
        "--allow-cpu-quantization",
        action="store_true",
        help="allow --load-in-4bit/8bit without CUDA (works, but very slow)",
    )
    p.add_argument("--n-gpu-layers", type=int, default=-1, help="llamacpp: layers offloaded to the GPU (-1 = all)")
    p.add_argument("--threads", type=int, default=None, help="llamacpp: CPU threads")
    p.add_argument("--chat-format", default=None, help="llamacpp: chat format when the GGUF has no template")
    add_chat_arguments(p)
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    check_chat_arguments(args)
    quantization = "4bit" if args.load_in_4bit else "8bit" if args.load_in_8bit else None
    if args.backend == "llamacpp":
        if quantization:
            raise UserError(
                "--load-in-4bit/--load-in-8bit need --backend transformers "
                "(for llama.cpp, use a quantized GGUF such as Q4_K_M)"
            )
        import llama_cpp

        if args.n_gpu_layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            print(
                "warning: CUDA not available: running on CPU (this llama-cpp-python build has no GPU offload)",
                file=sys.stderr,
            )
        spec = options.model_spec(
            args,
            n_threads=args.threads,
            n_gpu_layers=args.n_gpu_layers,
            chat_format=args.chat_format,
            reuse_prompt_cache=args.prompt is None,
        )
        return run_chat(load_generator(spec), args)
    if not cuda_available():
        if quantization and not args.allow_cpu_quantization:
            flag = "--load-in-4bit" if args.load_in_4bit else "--load-in-8bit"
            raise UserError(
                f"{flag} needs CUDA: bitsandbytes quantized inference on the CPU is very slow "
                "(drop the flag, or pass --allow-cpu-quantization to force it)"
            )
        print("warning: CUDA not available: running on CPU", file=sys.stderr)
    return run_chat(load_generator(options.model_spec(args, quantization=quantization)), args)


if __name__ == "__main__":
    raise SystemExit(main())
