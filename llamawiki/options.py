"""The command-line flags every model-using script shares, named like the YAML keys of a model spec.

chat_cpu.py, chat_gpu.py, ``rag.py ask|chat`` and compare.py all take
``--model --backend --adapter --gguf-file --n-ctx --max-new-tokens --temperature --top-p``; a flag maps to the
spec key of the same name (``--n-ctx`` -> ``n_ctx``), and ``model_spec`` turns the parsed flags into the mapping
``models.resolve_spec``/``models.load_generator`` take. The default temperature is greedy (0) everywhere: the
study's comparison setting, and reproducible.

The names used before (``--ctx``, ``--max-tokens``) still work as hidden aliases for one release.
"""

from __future__ import annotations

import argparse

from .fileio import UserError

GREEDY = 0.0
DEFAULT_N_CTX = 2048
DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_TOP_P = 0.9
# build_dataset.py --modes llm: room for a few "Pergunta: … Resposta: …" pairs per excerpt
LLM_QUESTIONS_MAX_NEW_TOKENS = 320

# old flag -> new flag (kept hidden for one release)
ALIASES = {"--ctx": "--n-ctx", "--max-tokens": "--max-new-tokens"}

MODEL_FLAGS = ("model", "backend", "adapter", "gguf_file", "n_ctx")
GENERATION_FLAGS = ("max_new_tokens", "temperature", "top_p")


def _alias(group, old: str, dest: str, type_) -> None:
    group.add_argument(old, dest=dest, type=type_, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_model_arguments(
    parser: argparse.ArgumentParser,
    *,
    backends: tuple[str, ...] = ("llamacpp", "transformers"),
    backend: str | None = "llamacpp",
    model_help: str = "GGUF file (llamacpp) or HF folder/hub id (transformers); default: the embedded Gemma 3 270M",
    n_ctx: int | None = DEFAULT_N_CTX,
    defaults: bool = True,
    adapter_help: str = "LoRA adapter: finetune.py's output folder (llama.cpp converts it once to "
    "adapter_model.gguf) or a GGUF adapter file",
) -> None:
    """``--model --backend --adapter --gguf-file --n-ctx``. With ``defaults=False`` every flag defaults to None
    (an override of a config, as in compare.py)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", default=None, help=model_help)
    g.add_argument(
        "--backend",
        choices=backends,
        default=backend if defaults else None,
        help="loader (default: %(default)s)"
        if defaults
        else "loader (default: the config's, or inferred from --model)",
    )
    g.add_argument("--adapter", default=None, help=adapter_help)
    g.add_argument(
        "--gguf-file",
        default=None,
        help="a GGUF inside --model's folder (llamacpp loads it; transformers de-quantizes it)",
    )
    g.add_argument(
        "--n-ctx",
        type=int,
        default=n_ctx if defaults else None,
        help="context window in tokens: prompt + history + answer"
        + (" (default: %(default)s)" if defaults else " (default: the config's)"),
    )
    _alias(g, "--ctx", "n_ctx", int)


def add_generation_arguments(
    parser: argparse.ArgumentParser, *, defaults: bool = True, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
) -> None:
    """``--max-new-tokens --temperature --top-p``; greedy by default. ``defaults=False``: None (config wins)."""
    g = parser.add_argument_group("generation")
    config = " (default: the config's generation:)"
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens if defaults else None,
        help="most tokens per answer" + (" (default: %(default)s)" if defaults else config),
    )
    g.add_argument(
        "--temperature",
        type=float,
        default=GREEDY if defaults else None,
        help="0 = greedy, the study's comparison setting" + (" (default)" if defaults else config),
    )
    g.add_argument(
        "--top-p",
        type=float,
        default=DEFAULT_TOP_P if defaults else None,
        help="nucleus sampling when --temperature > 0" + (" (default: %(default)s)" if defaults else config),
    )
    _alias(g, "--max-tokens", "max_new_tokens", int)


# argparse attributes that hold text a user typed for a model (a question, a system prompt)
TEXT_ARGUMENTS = {"prompt": "--prompt", "system": "--system", "question": "question"}


def user_text(value: str, where: str) -> str:
    """Text a user typed (argv, stdin) as real characters. Bytes that are not UTF-8 reach Python as lone
    surrogates (surrogateescape), which no tokenizer takes: read as UTF-8 when they are (a C locale), else as
    Latin-1 (the encoding of the study's own files) with a warning."""
    if not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    raw = value.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        import sys

        print(f"warning: {where}: not UTF-8; read as Latin-1: {text!r}", file=sys.stderr)
        return text


def check_text_arguments(args: argparse.Namespace) -> None:
    """The text arguments (``TEXT_ARGUMENTS``) through ``user_text``, in place."""
    for attr, flag in TEXT_ARGUMENTS.items():
        value = getattr(args, attr, None)
        if isinstance(value, str):
            setattr(args, attr, user_text(value, flag))


def check_generation_arguments(args: argparse.Namespace) -> None:
    """One line per impossible value, before any model is loaded (and the text arguments made real text)."""
    check_text_arguments(args)
    if getattr(args, "temperature", None) is not None and args.temperature < 0:
        raise UserError(f"--temperature {args.temperature}: must be >= 0")
    if getattr(args, "top_p", None) is not None and not 0 < args.top_p <= 1:
        raise UserError(f"--top-p {args.top_p}: must be in (0, 1]")
    if getattr(args, "max_new_tokens", None) is not None and args.max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {args.max_new_tokens}: must be >= 1")
    if getattr(args, "n_ctx", None) is not None and args.n_ctx < 64:
        raise UserError(f"--n-ctx {args.n_ctx}: too small (at least 64)")
    # rag.py ask/chat: 0 or less would leave no room for any retrieved text (an answer without context)
    if getattr(args, "max_context_chars", None) is not None and args.max_context_chars < 1:
        raise UserError(f"--max-context-chars {args.max_context_chars}: must be >= 1 (characters of context)")


# A config's generation keys: type and the range a value must be in (one line per bad value, before loading).
_GENERATION_RULES = {
    "max_new_tokens": (int, lambda v: v >= 1, "a whole number >= 1"),
    "temperature": (float, lambda v: v >= 0, "a number >= 0"),
    "top_p": (float, lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "top_k": (int, lambda v: v >= 0, "a whole number >= 0"),
    "repeat_penalty": (float, lambda v: v > 0, "a number > 0"),
    "batch_size": (int, lambda v: v >= 1, "a whole number >= 1"),
    "loop_guard": (int, lambda v: v == 0 or v >= 2, "0 (off) or a whole number >= 2"),
}


def generation_value(key: str, value, where: str = "generation"):
    """``value`` as the type ``key`` needs, or UserError ``<where>.<key>: <value>: must be …``."""
    kind, ok, must = _GENERATION_RULES[key]
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        out = kind(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}.{key}: {value!r}: must be {must}") from None
    if not ok(out):
        raise UserError(f"{where}.{key}: {value!r}: must be {must}")
    return out


def model_spec(args: argparse.Namespace, **extra) -> dict:
    """The model spec the flags describe (None values left out, so ``resolve_spec`` fills the defaults)."""
    spec = {k: getattr(args, k, None) for k in MODEL_FLAGS}
    spec.update(extra)
    return {k: v for k, v in spec.items() if v is not None}


def generation_params(args: argparse.Namespace) -> dict:
    """``max_new_tokens``/``temperature``/``top_p`` given on the command line (None values left out; checked)."""
    check_generation_arguments(args)
    return {k: getattr(args, k) for k in GENERATION_FLAGS if getattr(args, k, None) is not None}
