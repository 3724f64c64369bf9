"""The one model loader. Every stage (chat, fine-tuning, RAG, comparison) loads models through here.

The file has four parts:

1. transformers loading: HF folder or hub id, optional GGUF inside it, LoRA adapter, 4/8-bit (bitsandbytes);
   used directly by fine-tuning (``load_hf_model``);
2. ``Generator``: one small generation interface (``generate``, ``stream``, ``chat_stream``) with its
   measurements (``Generation``), the Alpaca/chat prompt assembly within the context window and stop strings;
3. the two backends behind it: llama.cpp (``load_llamacpp``, LoRA adapters converted by lora_gguf.py) and
   transformers (``load_transformers``);
4. model specs, the mappings that configs and command-line flags describe a model with: ``resolve_spec`` fills
   the defaults (backend, the embedded model) once for every caller, ``load_generator`` loads one.
"""

from __future__ import annotations

import codecs
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import prompt as _prompt
from .checks import check_hf_adapter, check_model_folder
from .fileio import GGUF_MAGIC, UserError, looks_local
from .lora_gguf import check_gguf_file, ensure_lora_gguf
from .options import DEFAULT_MAX_NEW_TOKENS, DEFAULT_N_CTX

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"

# The embedded default model (a BASE model, no chat template; Gemma Terms of Use). `make models` fetches both.
EMBEDDED_GGUF = MODELS_DIR / "gemma-3-270m-q4_k_m.gguf"
EMBEDDED_GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
EMBEDDED_HF = MODELS_DIR / "gemma-3-270m-hf"


# ---------------------------------------------------------------------------------------------------------------
# 1. transformers loading
# ---------------------------------------------------------------------------------------------------------------


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def quantization_config(quantization: str | None, compute_dtype: Any = None):
    """bitsandbytes config for ``"4bit"`` (QLoRA: nf4 + double quant) or ``"8bit"``; None for full precision."""
    if quantization in (None, "", "none"):
        return None
    try:
        import bitsandbytes  # noqa: F401
        import torch
        from transformers import BitsAndBytesConfig
    except ImportError:
        raise UserError(f"quantization {quantization!r} needs bitsandbytes, which is not installed") from None
    if quantization == "4bit":
        if compute_dtype is None:
            compute_dtype = torch.bfloat16 if cuda_available() and torch.cuda.is_bf16_supported() else torch.float32
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise UserError(f"unknown quantization {quantization!r} (use 4bit, 8bit or none)")


def _check_model_path(model: str | os.PathLike[str], gguf_file: str | None) -> str:
    model = str(model)
    local = Path(model).expanduser()
    if looks_local(model):
        if not local.exists():
            raise UserError(f"{model}: model not found (see models/README.md for how to get it)")
        if gguf_file is None and local.is_dir() and not (local / "config.json").exists():
            raise UserError(f"{model}: not a transformers model folder (no config.json)")
        if gguf_file is not None and not (local / gguf_file).exists():
            raise UserError(f"{local / gguf_file}: GGUF file not found")
    return model


def _offline_hint(model: str) -> str:
    if looks_local(model) or os.environ.get("HF_HUB_OFFLINE") != "1":
        return ""
    return f" (hub downloads are off: `hf download {model}` first, or set HF_HUB_OFFLINE=0)"


def load_tokenizer(model: str | os.PathLike[str], gguf_file: str | None = None):
    """The tokenizer of ``model``, with a pad token distinct from eos where the vocabulary allows."""
    from transformers import AutoTokenizer

    model = _check_model_path(model, gguf_file)
    try:
        tok = (
            AutoTokenizer.from_pretrained(model, gguf_file=gguf_file)
            if gguf_file
            else AutoTokenizer.from_pretrained(model)
        )
    except (OSError, ValueError) as e:
        raise UserError(f"{model}: cannot load tokenizer: {str(e).splitlines()[0]}{_offline_hint(model)}") from None
    if tok.pad_token is None:
        # Llama 2 has no pad token; using eos as pad teaches the model never to stop (the study's rambling).
        if tok.unk_token is not None and tok.unk_token != tok.eos_token:
            tok.pad_token = tok.unk_token
        else:
            tok.pad_token = tok.eos_token
    return tok


def load_hf_model(
    model: str | os.PathLike[str],
    *,
    gguf_file: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    quantization: str | None = None,
    dtype: Any = "auto",
    device_map: Any = None,
    trainable: bool = False,
):
    """Load a causal LM (and its tokenizer) with transformers.

    model: HF folder or hub id; gguf_file: a GGUF inside that folder (de-quantized by transformers);
    adapter: a LoRA adapter folder (peft) applied on top; quantization: None | "4bit" | "8bit" (bitsandbytes);
    device_map: None -> "auto" on CUDA, CPU otherwise; trainable: keep the adapter trainable.
    Returns (model, tokenizer).
    """
    import torch
    from transformers import AutoModelForCausalLM

    model = _check_model_path(model, gguf_file)
    check_model_files(model, gguf_file, adapter)
    tokenizer = load_tokenizer(model, gguf_file)
    if device_map is None:
        device_map = "auto" if cuda_available() else None
    if dtype == "auto" and not cuda_available():
        dtype = torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if device_map is not None:
        kwargs["device_map"] = device_map
    qconf = quantization_config(quantization)
    if qconf is not None:
        kwargs["quantization_config"] = qconf
    if gguf_file:
        kwargs["gguf_file"] = gguf_file
    try:
        lm = AutoModelForCausalLM.from_pretrained(model, **kwargs)
    except (OSError, ValueError) as e:
        raise UserError(f"{model}: cannot load model: {str(e).splitlines()[0]}{_offline_hint(model)}") from None
    if lm.generation_config.pad_token_id is None:
        lm.generation_config.pad_token_id = tokenizer.pad_token_id
    if adapter is not None:
        lm = apply_adapter(lm, adapter, trainable=trainable)
    return lm, tokenizer


def check_model_files(
    model: str | os.PathLike[str], gguf_file: str | None = None, adapter: str | os.PathLike[str] | None = None
) -> None:
    """Before transformers or peft read anything (headers only, see llamawiki.checks): the adapter first (a LoRA
    for another model is refused without loading the base), then the model folder's safetensors whole."""
    local = looks_local(str(model)) and Path(str(model)).expanduser().is_dir() and gguf_file is None
    if adapter is not None:
        check_hf_adapter(adapter, Path(str(model)).expanduser() if local else None)
    if local:
        check_model_folder(Path(str(model)).expanduser())


def apply_adapter(lm, adapter: str | os.PathLike[str], trainable: bool = False):
    """Put a saved LoRA adapter on ``lm``; a mismatched adapter is a UserError, not a traceback."""
    from peft import PeftModel

    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").exists():
        raise UserError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json); run finetune.py first")
    try:
        return PeftModel.from_pretrained(lm, str(adapter), is_trainable=trainable)
    except (RuntimeError, ValueError, KeyError) as e:
        raise UserError(f"{adapter}: adapter does not match the base model: {str(e).splitlines()[0][:200]}") from None


# ---------------------------------------------------------------------------------------------------------------
# 2. Generation: one small interface over llama.cpp and transformers
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Generation:
    """One answer and how it was produced.

    finish_reason: "stop" (eos or a stop string: the answer ended by itself), "length" (hit max_new_tokens),
    "loop" (the answer started repeating itself: see LOOP_GUARD; the text ends before the repetition) or
    "interrupted" (the consumer stopped reading a stream). prompt_truncated: the prompt (or the chat history) was
    cut to fit the context window. first_token_s: time to the first generated token (prompt processing).
    """

    text: str
    n_tokens: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    finish_reason: str = "length"
    prompt_truncated: bool = False
    first_token_s: float | None = None

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the whole call (prompt processing included)."""
        return self.n_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        """Generation speed after the first token (what a reader sees while the answer streams)."""
        if self.first_token_s is None or self.n_tokens < 2 or self.seconds <= self.first_token_s:
            return self.tokens_per_s
        return (self.n_tokens - 1) / (self.seconds - self.first_token_s)


@dataclass
class ChatPrompt:
    """A conversation rendered into one prompt string for a model."""

    text: str
    stop: list[str]  # default stop strings for this kind of prompt
    templated: bool  # built by the model's chat template (special tokens inside) vs. the Alpaca prompt
    dropped_turns: int = 0  # older messages left out to fit the context window


class StopFilter:
    """Streams text while holding back anything that could be the start of a stop string.

    ``push(piece)`` returns the text that is safe to show; once a stop string appears, ``hit`` is True and the
    text from the stop string on is dropped. ``flush()`` returns what was held back (at the end of generation).
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.buf = ""
        self.hit = False

    def push(self, piece: str) -> str:
        if self.hit:
            return ""
        self.buf += piece
        if not self.stops:
            out, self.buf = self.buf, ""
            return out
        cut = min((i for i in (self.buf.find(s) for s in self.stops) if i != -1), default=-1)
        if cut != -1:
            out, self.buf, self.hit = self.buf[:cut], "", True
            return out
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(self.buf)), hold, -1):
                if self.buf.endswith(s[:k]):
                    hold = k
                    break
        out = self.buf[: len(self.buf) - hold]
        self.buf = self.buf[len(self.buf) - hold :]
        return out

    def flush(self) -> str:
        out, self.buf = ("" if self.hit else self.buf), ""
        return out


def _resolve_stop(stop: Sequence[str] | str | None, default: Sequence[str]) -> list[str]:
    if stop is None:
        return list(default)
    if isinstance(stop, str):
        return [stop]
    return list(stop)


# The loop guard: a generation that repeats the same block of tokens LOOP_GUARD times in a row (the block at most
# LOOP_MAX_PERIOD tokens, the repeated part at least LOOP_MIN_TOKENS) ends there, finish_reason "loop", its text
# cut where the repetition starts (the first copy kept). A base model that falls back to "Question: …\nAnswer:"
# pairs otherwise fills max_new_tokens with them. ``loop_guard=0`` turns it off.
LOOP_GUARD = 3
LOOP_MAX_PERIOD = 128
LOOP_MIN_TOKENS = 16


def loop_copies(loop_guard: int | None) -> int:
    """The number of copies that ends a generation (0: never); None -> LOOP_GUARD."""
    if loop_guard is None:
        return LOOP_GUARD
    if isinstance(loop_guard, bool) or int(loop_guard) != loop_guard or loop_guard < 0 or loop_guard == 1:
        raise UserError(f"loop_guard: {loop_guard!r}: must be 0 (off) or a whole number >= 2")
    return int(loop_guard)


class LoopGuard:
    """Watches generated token ids for a block repeated ``copies`` times in a row (see LOOP_GUARD).

    ``runs[p]``: how many trailing tokens equal the token ``p`` places before them; a block of ``p`` tokens seen
    ``copies`` times gives ``runs[p] >= (copies - 1) * p``. ``push(token)`` returns the cut (the index where the
    repetition starts) once the loop is there, else None; ``hold`` is how many trailing tokens a future cut may
    still remove (what a stream keeps back). The same ids give the same cut in both backends."""

    def __init__(self, copies: int = LOOP_GUARD, max_period: int = LOOP_MAX_PERIOD, min_tokens: int = LOOP_MIN_TOKENS):
        self.copies = copies
        self.max_period = max_period
        self.need = [0] + [max((copies - 1) * p, min_tokens) for p in range(1, max_period + 1)]
        self.runs = [0] * (max_period + 1)
        self.ids: list[int] = []
        self.hold = 0
        self.cut: int | None = None

    def push(self, token: int) -> int | None:
        ids = self.ids
        ids.append(token)
        t = len(ids)
        if self.copies < 2 or self.cut is not None:
            return self.cut
        runs, need, best = self.runs, self.need, 0
        for p in range(1, min(self.max_period, t - 1) + 1):
            if ids[t - 1 - p] == token:
                runs[p] += 1
                if runs[p] >= need[p] and (self.cut is None or t - runs[p] < self.cut):
                    self.cut = t - runs[p]
                best = max(best, runs[p])
            else:
                runs[p] = 0
        self.hold = best
        return self.cut


def find_loop(ids: Sequence[int], copies: int) -> tuple[int, int] | None:
    """(tokens generated when the loop was seen, the cut) for the first loop in ``ids``, or None."""
    if copies < 2:
        return None
    guard = LoopGuard(copies)
    for t, tok in enumerate(ids, 1):
        if guard.push(tok) is not None:
            return t, guard.cut
    return None


def format_history(turns: list[dict]) -> str:
    """Earlier turns of a conversation as plain text (the Input of the Alpaca prompt in chat mode)."""
    names = {"user": "Usuário", "assistant": "Assistente"}
    return "\n".join(f"{names.get(m['role'], m['role'])}: {str(m['content']).strip()}" for m in turns)


def alpaca_chat_prompt(messages: list[dict], fits: Callable[[str], bool]) -> tuple[str, int]:
    """The study's Alpaca prompt for a conversation, for base models without a chat template.

    The system message (if any) becomes the instruction, the last user message the question, and the earlier
    turns are folded into the Input as context; the oldest turns are dropped until ``fits(prompt)``.
    Returns (prompt, number of messages dropped).
    """
    system = next((str(m["content"]) for m in messages if m["role"] == "system"), None)
    turns = [m for m in messages if m["role"] in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("a conversation must end with a user message")
    question = str(turns[-1]["content"])
    history = turns[:-1]
    instruction = system.strip() if system and system.strip() else _prompt.INSTRUCTION_QA
    dropped = 0
    while True:
        text = _prompt.build_prompt(question, instruction, context=format_history(history) if history else None)
        if not history or fits(text):
            return text, dropped
        n = 2 if len(history) >= 2 and history[0]["role"] == "user" else 1
        history = history[n:]
        dropped += n


class Generator:
    """A loaded model that completes prompts. Both backends implement ``_stream_text``.

    generate / stream take a raw prompt (usually ``prompt.build_prompt(...)``); default stop strings are the
    Alpaca ones (``prompt.STOP_STRINGS``); pass ``stop=[]`` for none. chat_stream / chat take messages and use the
    model's chat template when it has one, else the Alpaca prompt built from the conversation. After a stream is
    exhausted (or closed), ``last`` holds its Generation (token counts, timings, finish reason).
    temperature 0 means greedy decoding.
    """

    name: str = "model"
    backend: str = ""
    n_ctx: int = DEFAULT_N_CTX
    last: Generation | None = None

    # -- backend hooks -------------------------------------------------------------------------------------
    def count_tokens(self, text: str, special: bool = False) -> int:
        raise NotImplementedError

    @property
    def has_chat_template(self) -> bool:
        return False

    def _render_chat_template(self, messages: list[dict]) -> tuple[str, list[str]]:
        raise NotImplementedError

    def _stream_text(
        self,
        text: str,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: list[str],
        special: bool,
        ignore_eos: bool,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int = LOOP_GUARD,
    ) -> Iterator[str]:
        raise NotImplementedError

    # -- the interface -------------------------------------------------------------------------------------
    def stream(
        self,
        prompt: str,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int | None = None,
    ) -> Iterator[str]:
        """Yield the completion of ``prompt`` piece by piece (whole UTF-8 characters); stop strings left out.
        ``top_k`` (None/0 = off) and ``repeat_penalty`` (None/1 = off) are the study's extra sampling settings;
        ``loop_guard``: copies of a repeated block that end the answer (None: LOOP_GUARD, 0: off)."""
        return self._stream_text(
            prompt,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=_resolve_stop(stop, _prompt.STOP_STRINGS),
            special=False,
            ignore_eos=ignore_eos,
            loop_guard=loop_copies(loop_guard),
            **_extra(top_k, repeat_penalty),
        )

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int | None = None,
    ) -> Generation:
        """The completion of ``prompt`` (cut before the first stop string) with token counts and timings."""
        return self._collect(
            self.stream(
                prompt,
                max_new_tokens,
                temperature,
                top_p,
                stop,
                ignore_eos,
                loop_guard=loop_guard,
                **_extra(top_k, repeat_penalty),
            )
        )

    def generate_batch(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int | None = None,
    ) -> list[Generation]:
        """``generate`` for several prompts. This default runs them one at a time; the transformers backend runs
        them as one left-padded batch (greedy outputs equal to one at a time)."""
        return [
            self.generate(
                p,
                max_new_tokens,
                temperature,
                top_p,
                stop,
                ignore_eos,
                loop_guard=loop_guard,
                **_extra(top_k, repeat_penalty),
            )
            for p in prompts
        ]

    def chat_prompt(
        self, messages: list[dict], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, template: bool | None = None
    ) -> ChatPrompt:
        """Render a conversation: the chat template (template=None: when the model has one) or the Alpaca prompt.

        The oldest turns are dropped so that the prompt plus ``max_new_tokens`` fits the context window.
        """
        _check_messages(messages)
        if template is None:
            template = self.has_chat_template
        budget = self._prompt_budget(max_new_tokens)
        if not template:
            text, dropped = alpaca_chat_prompt(messages, lambda p: self.count_tokens(p) <= budget)
            return ChatPrompt(text, list(_prompt.STOP_STRINGS), False, dropped)
        if not self.has_chat_template:
            raise UserError(
                f"{self.name}: the model has no chat template (use the completion mode, or give a chat format)"
            )
        system = [m for m in messages if m["role"] == "system"][:1]
        turns = [m for m in messages if m["role"] != "system"]
        dropped = 0
        while True:
            text, stops = self._render_chat_template(system + turns)
            if len(turns) <= 1 or self.count_tokens(text, special=True) <= budget:
                return ChatPrompt(text, stops, True, dropped)
            n = 2 if len(turns) >= 3 and turns[0]["role"] == "user" else 1
            turns = turns[n:]
            dropped += n

    def chat_stream(
        self,
        messages: list[dict],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        template: bool | None = None,
        *,
        loop_guard: int | None = None,
    ) -> Iterator[str]:
        """Stream the assistant's answer to ``messages`` ([{"role": "system"|"user"|"assistant", "content"}])."""
        cp = self.chat_prompt(messages, max_new_tokens, template)
        inner = self._stream_text(
            cp.text,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=_resolve_stop(stop, cp.stop),
            special=cp.templated,
            ignore_eos=ignore_eos,
            loop_guard=loop_copies(loop_guard),
        )
        try:
            yield from inner
        finally:
            inner.close()
            if self.last is not None and cp.dropped_turns:
                self.last.prompt_truncated = True

    def chat(
        self,
        messages: list[dict],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        template: bool | None = None,
        *,
        loop_guard: int | None = None,
    ) -> Generation:
        return self._collect(
            self.chat_stream(
                messages, max_new_tokens, temperature, top_p, stop, ignore_eos, template, loop_guard=loop_guard
            )
        )

    # -- helpers -------------------------------------------------------------------------------------------
    def _collect(self, pieces: Iterator[str]) -> Generation:
        text = "".join(pieces)
        gen = self.last
        assert gen is not None
        gen.text = text
        return gen

    def _prompt_budget(self, max_new_tokens: int) -> int:
        """How many prompt tokens fit: the context minus room for the answer (at least half the context)."""
        return max(self.n_ctx - max_new_tokens, self.n_ctx // 2)

    def _fit(self, ids: list[int], max_new_tokens: int, bos_id: int | None) -> tuple[list[int], int, bool]:
        """Cut a prompt that does not fit (keeping BOS and the end, where the question and ``### Response:`` are)."""
        budget = self._prompt_budget(max_new_tokens)
        truncated = False
        if len(ids) > budget:
            keep_bos = bos_id is not None and ids and ids[0] == bos_id
            ids = ([ids[0]] if keep_bos else []) + ids[len(ids) - (budget - (1 if keep_bos else 0)) :]
            truncated = True
            log.warning(
                "%s: prompt cut to its last %d tokens to fit the context window (%d)", self.name, budget, self.n_ctx
            )
        return ids, max(1, min(max_new_tokens, self.n_ctx - len(ids))), truncated


def _extra(top_k: int | None, repeat_penalty: float | None) -> dict:
    """The optional sampling settings, passed on only when set (so backends without them keep working)."""
    return {k: v for k, v in (("top_k", top_k), ("repeat_penalty", repeat_penalty)) if v is not None}


def _check_messages(messages: list[dict]) -> None:
    if not messages:
        raise ValueError("empty conversation")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or "content" not in m:
            raise ValueError(f"bad chat message {m!r}: expected {{'role': system|user|assistant, 'content': ...}}")


# ---------------------------------------------------------------------------------------------------------------
# 3a. The llama.cpp backend
# ---------------------------------------------------------------------------------------------------------------


def _display_name(model: str | os.PathLike[str], adapter: str | os.PathLike[str] | None) -> str:
    """``model`` or ``model+adapter`` (last path parts), as chat banners and compare tables show it."""
    return Path(str(model)).name + (f"+{Path(str(adapter)).name}" if adapter else "")


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """A readable GGUF file, or a UserError naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        hint = " (run `make models`)" if path.resolve() == EMBEDDED_GGUF.resolve() else ""
        raise UserError(f"{path}: model file not found{hint}")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a .gguf file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror}") from None
    if magic != GGUF_MAGIC:
        raise UserError(f"{path}: not a GGUF file (bad magic {magic!r})")
    meta = check_gguf_file(path)  # version, tensors inside the file: llama.cpp may crash otherwise
    if meta.get("general.type") == "adapter":
        raise UserError(f"{path}: a LoRA adapter, not a model (give it with --adapter)")
    return path


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def _llama_chat_formatter(llm, chat_format: str | None):
    """The llama-cpp-python chat formatter for ``chat_format`` or for the GGUF's own template; None if neither."""
    from llama_cpp import llama_chat_format as lcf

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
    meta = llm.metadata or {}
    if chat_format is None or chat_format.startswith("chat_template."):
        key = (
            "tokenizer.chat_template" if chat_format in (None, "chat_template.default") else f"tokenizer.{chat_format}"
        )
        if key not in meta:
            if chat_format is None:
                return None
            raise UserError(f"{llm.model_path}: no {chat_format!r} in the GGUF metadata")
        return lcf.Jinja2ChatFormatter(template=meta[key], eos_token=eos, bos_token=bos, stop_token_ids=[eos_id])
    for attr in (f"format_{chat_format.replace('-', '')}", f"format_{chat_format.replace('-', '_')}"):
        f = getattr(lcf, attr, None)
        if callable(f):
            return f
    try:  # any other registered format: the formatter is the closure of its completion handler
        handler = lcf.get_chat_completion_handler(chat_format)
    except Exception:
        raise UserError(f"unknown chat format {chat_format!r} (e.g. gemma, llama-2, llama-3, chatml)") from None
    for cell in getattr(handler, "__closure__", None) or ():
        f = cell.cell_contents
        if callable(f) and getattr(f, "__name__", "").startswith("format"):
            return f
    raise UserError(f"chat format {chat_format!r} needs its own llama-cpp-python handler; not supported here")


class LlamaCppGenerator(Generator):
    """A GGUF model run by llama.cpp (llama-cpp-python). Loads with ``load_llamacpp``."""

    backend = "llamacpp"

    def __init__(self, llm, name: str, chat_format: str | None = None, reuse_prompt_cache: bool = False):
        import llama_cpp

        self.llm = llm
        # Reusing the KV cache of a shared prompt prefix (a growing chat history) saves prompt processing, but
        # llama.cpp's logits then differ in the last bits from a fresh evaluation, so greedy answers to the same
        # prompt could differ between calls. Off by default (reproducible answers); the interactive chat turns it on.
        self.reuse_prompt_cache = reuse_prompt_cache
        self.name = name
        # llama.cpp may round the context up (to a multiple of 256); the Python side only holds what was asked for
        self.n_ctx = min(llm.n_ctx(), len(llm.input_ids))
        self.chat_format = chat_format
        self._formatter = _llama_chat_formatter(llm, chat_format)
        self._vocab = llm._model.vocab
        self._is_eog = llama_cpp.llama_vocab_is_eog
        self._eog_ids: list[int] | None = None
        self._added_special = False  # the last rendered chat template already starts with BOS
        self.last = None

    @property
    def has_chat_template(self) -> bool:
        return self._formatter is not None

    def count_tokens(self, text: str, special: bool = False) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=special))

    def eog_ids(self) -> list[int]:
        """End-of-generation tokens of the vocabulary (eos, <end_of_turn>, ...)."""
        if self._eog_ids is None:
            self._eog_ids = [i for i in range(self.llm.n_vocab()) if self._is_eog(self._vocab, i)]
        return self._eog_ids

    def _render_chat_template(self, messages: list[dict]) -> tuple[str, list[str]]:
        try:
            res = self._formatter(messages=messages)
        except Exception as e:  # a template that rejects a system role, etc.
            if any(m["role"] == "system" for m in messages):
                return self._render_chat_template(_fold_system(messages))
            raise UserError(f"{self.name}: chat template failed: {str(e).splitlines()[0]}") from None
        stops = [] if res.stop is None else [res.stop] if isinstance(res.stop, str) else list(res.stop)
        self._added_special = bool(res.added_special)
        return res.prompt, [s for s in stops if s]

    def _stream_text(
        self,
        text,
        *,
        max_new_tokens,
        temperature,
        top_p,
        stop,
        special,
        ignore_eos,
        top_k=None,
        repeat_penalty=None,
        loop_guard=LOOP_GUARD,
    ):
        from llama_cpp import LogitsProcessorList

        llm = self.llm
        add_bos = not (special and self._added_special)
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        ids, max_new, truncated = self._fit(ids, max_new_tokens, llm.token_bos())
        processor = None
        if ignore_eos:
            eog = self.eog_ids()

            def no_eog(_input_ids, scores):
                scores[eog] = -float("inf")
                return scores

            processor = LogitsProcessorList([no_eog])
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        filt = StopFilter(stop)
        guard = LoopGuard(loop_guard)
        held: list[tuple[int, str]] = []  # (token index, text) the loop guard may still cut
        piece_bytes: list[bytes] = []
        emitted: list[str] = []
        gen = Generation(text="", prompt_tokens=len(ids), prompt_truncated=truncated, finish_reason="interrupted")
        self.last = gen
        if not self.reuse_prompt_cache:
            llm.reset()
        t0 = time.perf_counter()
        tokens = llm.generate(
            ids,
            top_k=int(top_k or 0),
            top_p=top_p,
            min_p=0.0,
            typical_p=1.0,
            temp=max(0.0, temperature),
            repeat_penalty=float(repeat_penalty or 1.0),
            logits_processor=processor,
        )
        n = 0
        try:
            for tok in tokens:
                if gen.first_token_s is None:
                    gen.first_token_s = time.perf_counter() - t0
                if not ignore_eos and self._is_eog(self._vocab, tok):
                    gen.finish_reason = "stop"
                    break
                n += 1
                piece_bytes.append(llm.detokenize([tok]))
                out = filt.push(decoder.decode(piece_bytes[-1]))
                cut = guard.push(tok)
                if cut is not None:  # the answer repeats itself: it ends where the repetition starts
                    gen.finish_reason = "loop"
                    final = _loop_text(b"".join(piece_bytes[:cut]).decode("utf-8", "replace"), stop)
                    so_far = "".join(emitted)
                    if final.startswith(so_far) and len(final) > len(so_far):
                        yield final[len(so_far) :]
                    return
                if out:
                    held.append((n - 1, out))
                while held and held[0][0] < n - guard.hold:
                    piece = held.pop(0)[1]
                    emitted.append(piece)
                    yield piece
                if filt.hit:
                    gen.finish_reason = "stop"
                    break
                if n >= max_new:
                    gen.finish_reason = "length"
                    break
            out = "".join(piece for _, piece in held) + filt.push(decoder.decode(b"", final=True)) + filt.flush()
            if out:
                yield out
        finally:
            tokens.close()
            gen.n_tokens = n
            gen.seconds = time.perf_counter() - t0


def _fold_system(messages: list[dict]) -> list[dict]:
    """Put the system prompt at the start of the first user message (for templates without a system role)."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
    out = [dict(m) for m in messages if m["role"] != "system"]
    for m in out:
        if m["role"] == "user":
            m["content"] = f"{system}\n\n{m['content']}" if system else m["content"]
            break
    return out


def load_llamacpp(
    path: str | os.PathLike[str] = EMBEDDED_GGUF,
    n_ctx: int = DEFAULT_N_CTX,
    n_threads: int | None = None,
    n_gpu_layers: int = 0,
    chat_format: str | None = None,
    verbose: bool = False,
    seed: int = 0,
    reuse_prompt_cache: bool = False,
    adapter: str | os.PathLike[str] | None = None,
) -> LlamaCppGenerator:
    """Load any GGUF with llama.cpp. n_gpu_layers: layers offloaded to the GPU (-1 = all; needs a CUDA build).

    adapter: a LoRA adapter applied on top of the GGUF: finetune.py's output folder (converted once to
    ``<adapter>/adapter_model.gguf``, see lora_gguf.py) or a GGUF adapter file.

    chat_format: a llama-cpp-python chat format name ("gemma", "llama-2", ...) for chat mode; None uses the
    GGUF's own chat template if it has one (the embedded Gemma has none: chat falls back to the Alpaca prompt).
    reuse_prompt_cache: keep the KV cache of a shared prompt prefix between calls (faster multi-turn chat, but
    greedy answers are then not bit-for-bit reproducible); seed: sampling seed when temperature > 0.
    """
    path = check_gguf(path)
    try:
        from llama_cpp import Llama
    except ImportError:
        raise UserError("llama-cpp-python is not installed (pip install -r requirements.txt)") from None
    from llama_cpp._utils import suppress_stdout_stderr

    lora_path = None
    if adapter is not None:
        lora_path = ensure_lora_gguf(adapter, path)
    threads = n_threads or default_threads()
    try:
        # verbose=False does not cover context creation (llama.cpp still prints a KV-cache note): silence it here
        with suppress_stdout_stderr(disable=verbose):
            llm = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=n_gpu_layers,
                chat_format=chat_format,
                verbose=verbose,
                seed=seed,
                lora_path=str(lora_path) if lora_path else None,
            )
    except (ValueError, RuntimeError, OSError) as e:
        what = f"{path} + {lora_path}" if lora_path else str(path)
        raise UserError(
            f"{what}: llama.cpp cannot load this GGUF (corrupt, truncated or unsupported): "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
        ) from None
    return LlamaCppGenerator(
        llm, name=_display_name(path, adapter), chat_format=chat_format, reuse_prompt_cache=reuse_prompt_cache
    )


# ---------------------------------------------------------------------------------------------------------------
# 3b. The transformers backend
# ---------------------------------------------------------------------------------------------------------------
#
# generate / generate_batch call ``model.generate`` directly, in the caller's thread, and read everything from the
# output ids afterwards: the answer's end (eos, or the step at which a stop string was completed), one decode, the
# cut at the first stop string, the token count. Per decoding step only ``_Watch`` runs: transformers'
# ``StopStringCriteria`` (tensor operations on the ids, no decoding) and a few tensor operations. ``stream`` keeps
# its own thread (generate() blocks) with a streamer that only queues token ids; the consumer decodes them and
# finishes the answer with the same ``_finish`` as generate, so its pieces join to generate()'s text.


class _TokenStops:
    """Stop strings matched on the token ids by transformers' ``StopStringCriteria``, in the answer only.

    ``StopStringCriteria`` looks at the end of the whole sequence; the prompt's tokens are hidden from it (mapped to
    its dummy id) so that a stop string that the first answer tokens complete with the prompt's last characters
    (``"\\n### "`` right after ``### Response:\\n``) does not end the answer: stop strings count in the answer only,
    as in the cut of the decoded text."""

    def __init__(self, criteria):
        self.criteria = criteria
        self.span = int(criteria.maximum_token_len)
        self.dummy = int(criteria.embedding_vec.shape[0]) - 1  # ids >= this match nothing

    def __call__(self, input_ids, n_new: int):
        if n_new < self.span:
            ids = input_ids[:, -self.span :].clone()
            ids[:, : ids.shape[1] - n_new] = self.dummy
            input_ids = ids
        return self.criteria(input_ids, None)


class _TextStops:
    """Fallback for stop strings that ``StopStringCriteria`` cannot map onto the vocabulary: decode each row's last
    tokens every step (a stop string of L characters spans at most 4L byte-level tokens, plus a partial one)."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tok = tokenizer
        self.stops = stops
        self.window = 4 * max(len(s) for s in stops) + 4

    def __call__(self, input_ids, n_new: int):
        import torch

        texts = self.tok.batch_decode(
            input_ids[:, input_ids.shape[1] - min(n_new, self.window) :], skip_special_tokens=True
        )
        return torch.tensor([any(s in t for s in self.stops) for t in texts], dtype=torch.bool, device=input_ids.device)


class _Watch:
    """The transformers StoppingCriteria of every generation, called once per decoding step: the stop strings
    (``_TokenStops``/``_TextStops``, or None), the step at which each row first completed one (``hit_at``: answer
    tokens up to and including the completing one; -1 never), the time to the first token, and ``cancel`` (the
    consumer of a stream went away). Nothing here waits for the device except the first-token clock on CUDA."""

    def __init__(
        self,
        stops,
        prompt_len: int,
        batch: int,
        device,
        t0: float,
        cancel: threading.Event | None = None,
        loop_guard: int = 0,
    ):
        import torch

        self.loop = None
        if loop_guard >= 2:  # LoopGuard's runs, for every row at once (the cut itself: find_loop, afterwards)
            periods = torch.arange(1, LOOP_MAX_PERIOD + 1, device=device)
            need = torch.clamp((loop_guard - 1) * periods, min=LOOP_MIN_TOKENS)
            self.loop = (periods, need, torch.zeros((batch, LOOP_MAX_PERIOD), dtype=torch.long, device=device))
        self.stops = stops
        self.prompt_len = prompt_len
        self.t0 = t0
        self.cancel = cancel
        self.first_token_s: float | None = None
        self.cuda = torch.device(device).type == "cuda"
        self.none = torch.zeros((batch,), dtype=torch.bool, device=device)
        self.hit_at = torch.full((batch,), -1, dtype=torch.long, device=device)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.first_token_s is None:
            if self.cuda:
                torch.cuda.synchronize()
            self.first_token_s = time.perf_counter() - self.t0
        done = self.none
        if self.stops is not None:
            n_new = input_ids.shape[1] - self.prompt_len
            done = self.stops(input_ids, n_new)
            self.hit_at = torch.where((self.hit_at < 0) & done, n_new, self.hit_at)
        if self.loop is not None:
            periods, need, runs = self.loop
            n_new = input_ids.shape[1] - self.prompt_len
            width = input_ids.shape[1]
            prev = input_ids[:, torch.clamp(width - 1 - periods, min=0)]
            same = (prev == input_ids[:, -1:]) & (periods <= n_new - 1)
            runs = (runs + 1) * same
            self.loop = (periods, need, runs)
            done = done | (runs >= need).any(dim=1)
        if self.cancel is not None and self.cancel.is_set():
            done = ~self.none
        return done


class _TokenQueue:
    """A ``generate()`` streamer that only queues the new token ids (the prompt's put is skipped); None ends."""

    def __init__(self):
        import queue

        self.q: Any = queue.SimpleQueue()
        self.prompt = True

    def put(self, value):
        if self.prompt:
            self.prompt = False
            return
        self.q.put(value.reshape(-1).tolist())

    def end(self):
        self.q.put(None)


def _first_stop(text: str, stops: Sequence[str]) -> int:
    """Where the first stop string starts in ``text`` (-1: none)."""
    return min((i for i in (text.find(s) for s in stops if s) if i != -1), default=-1)


def _loop_text(text: str, stop: Sequence[str]) -> str:
    """The answer of a generation ended by the loop guard: the text of the tokens before the repetition, without an
    incomplete last character, cut at the first stop string."""
    text = text.rstrip("\ufffd")
    cut = _first_stop(text, stop)
    return text if cut == -1 else text[:cut]


def _stable(text: str) -> str:
    """``text`` without what the next tokens may still change: an incomplete UTF-8 character (U+FFFD) and trailing
    whitespace (a tokenizer's clean-up may drop a space before the next token's punctuation)."""
    return text.rstrip().rstrip("\ufffd").rstrip()


class TransformersGenerator(Generator):
    """A transformers causal LM (optionally with a LoRA adapter / 4-bit). Loads with ``load_transformers``."""

    backend = "transformers"

    def __init__(self, model, tokenizer, name: str, n_ctx: int | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        limit = getattr(model.config, "max_position_embeddings", None) or DEFAULT_N_CTX
        tok_max = getattr(tokenizer, "model_max_length", None)
        if tok_max and tok_max < 1_000_000:
            limit = min(limit, tok_max)
        self.n_ctx = min(int(n_ctx), limit) if n_ctx else min(limit, 4096)
        self.last = None
        self._stop_cache: dict[tuple[str, ...], Any] = {}

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def device(self):
        return self.model.device

    def count_tokens(self, text: str, special: bool = False) -> int:
        return len(self.tokenizer(text, add_special_tokens=not special)["input_ids"])

    def generate(
        self,
        prompt: str,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int | None = None,
    ) -> Generation:
        """One ``model.generate`` in this thread (no streamer); the answer read from its output ids."""
        import torch

        stop = _resolve_stop(stop, _prompt.STOP_STRINGS)
        copies = loop_copies(loop_guard)
        ids, max_new, truncated = self._encode(prompt, max_new_tokens, special=False)
        input_ids = torch.tensor([ids], device=self.device)
        t0 = time.perf_counter()
        watch = _Watch(self._stop_matcher(stop), len(ids), 1, input_ids.device, t0, loop_guard=copies)
        out = self._run(
            input_ids,
            torch.ones_like(input_ids),
            max_new,
            ignore_eos,
            watch,
            _hf_sampling(temperature, top_p, top_k, repeat_penalty),
        )
        seconds = time.perf_counter() - t0
        text, n, finish = self._finish(
            out[0, len(ids) :].tolist(), stop, ignore_eos, max_new, int(watch.hit_at[0]), "stop", copies
        )
        self.last = Generation(
            text=text,
            n_tokens=n,
            seconds=seconds,
            prompt_tokens=len(ids),
            finish_reason=finish,
            prompt_truncated=truncated,
            first_token_s=watch.first_token_s,
        )
        return self.last

    def generate_batch(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stop: Sequence[str] | str | None = None,
        ignore_eos: bool = False,
        *,
        top_k: int | None = None,
        repeat_penalty: float | None = None,
        loop_guard: int | None = None,
    ) -> list[Generation]:
        """One left-padded ``model.generate`` for all ``prompts``; each row stops at eos, a stop string or a loop.
        A Generation's ``seconds`` is the batch's wall time (the latency each answer had)."""
        if len(prompts) <= 1:
            return super().generate_batch(
                prompts,
                max_new_tokens,
                temperature,
                top_p,
                stop,
                ignore_eos,
                top_k=top_k,
                repeat_penalty=repeat_penalty,
                loop_guard=loop_guard,
            )
        import torch

        stop = _resolve_stop(stop, _prompt.STOP_STRINGS)
        copies = loop_copies(loop_guard)
        fitted = [self._encode(p, max_new_tokens, special=False) for p in prompts]
        max_new = min(f[1] for f in fitted)
        width = max(len(f[0]) for f in fitted)
        pad = self._pad_id()
        # left padding: every prompt ends where generation starts
        input_ids = torch.tensor([[pad] * (width - len(f[0])) + f[0] for f in fitted], device=self.device)
        attention = torch.tensor([[0] * (width - len(f[0])) + [1] * len(f[0]) for f in fitted], device=self.device)
        t0 = time.perf_counter()
        watch = _Watch(self._stop_matcher(stop), width, len(prompts), input_ids.device, t0, loop_guard=copies)
        out = self._run(
            input_ids, attention, max_new, ignore_eos, watch, _hf_sampling(temperature, top_p, top_k, repeat_penalty)
        )
        seconds = time.perf_counter() - t0
        hits = watch.hit_at.tolist()
        results = []
        for i, (ids, _, truncated) in enumerate(fitted):
            text, n, finish = self._finish(out[i, width:].tolist(), stop, ignore_eos, max_new, hits[i], "stop", copies)
            results.append(
                Generation(
                    text=text,
                    n_tokens=n,
                    seconds=seconds,
                    prompt_tokens=len(ids),
                    finish_reason=finish,
                    prompt_truncated=truncated,
                )
            )
        return results

    def _render_chat_template(self, messages: list[dict]) -> tuple[str, list[str]]:
        try:
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # e.g. "System role not supported"
            if any(m["role"] == "system" for m in messages):
                return self._render_chat_template(_fold_system(messages))
            raise UserError(f"{self.name}: chat template failed: {str(e).splitlines()[0]}") from None
        return text, []

    def _stream_text(
        self,
        text,
        *,
        max_new_tokens,
        temperature,
        top_p,
        stop,
        special,
        ignore_eos,
        top_k=None,
        repeat_penalty=None,
        loop_guard=LOOP_GUARD,
    ):
        import torch

        tok = self.tokenizer
        ids, max_new, truncated = self._encode(text, max_new_tokens, special=special)
        input_ids = torch.tensor([ids], device=self.device)
        gen = Generation(text="", prompt_tokens=len(ids), prompt_truncated=truncated, finish_reason="interrupted")
        self.last = gen
        cancel = threading.Event()
        streamer = _TokenQueue()
        t0 = time.perf_counter()
        watch = _Watch(self._stop_matcher(stop), len(ids), 1, input_ids.device, t0, cancel, loop_guard)
        sampling = _hf_sampling(temperature, top_p, top_k, repeat_penalty)
        result: dict[str, Any] = {}

        def run():
            try:
                result["out"] = self._run(
                    input_ids, torch.ones_like(input_ids), max_new, ignore_eos, watch, sampling, streamer
                )
            except BaseException as e:  # re-raised in the consumer's thread
                result["error"] = e
            finally:
                streamer.end()

        def finish():
            """Wait for generate() and fill ``gen`` from its output ids; the final text (None on an error)."""
            cancel.set()
            thread.join()
            gen.seconds = time.perf_counter() - t0
            gen.first_token_s = watch.first_token_s
            if "out" not in result:
                return None
            gen.text, gen.n_tokens, gen.finish_reason = self._finish(
                result["out"][0, len(ids) :].tolist(),
                stop,
                ignore_eos,
                max_new,
                int(watch.hit_at[0]),
                "interrupted",
                loop_guard,
            )
            return gen.text

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        filt = StopFilter(stop)
        guard = LoopGuard(loop_guard)
        new: list[int] = []
        shown = ""  # the stable decoded text handed to ``filt`` so far
        emitted = []  # what was yielded
        done = False
        try:
            while not filt.hit:
                item = streamer.q.get()
                while item is not None and not streamer.q.empty():  # catch up: one decode for all queued tokens
                    new.extend(item)
                    item = streamer.q.get()
                if item is None:
                    break
                new.extend(item)
                for t in new[len(guard.ids) :]:
                    guard.push(t)
                if guard.cut is not None:  # a loop: generate() stops at this step; finish() cuts the text
                    continue
                # the last ``hold`` tokens may still turn out to be a repetition: shown once the loop guard lets go
                stable = _stable(tok.decode(new[: len(new) - guard.hold], skip_special_tokens=True))
                if len(stable) > len(shown) and stable.startswith(shown):
                    out = filt.push(stable[len(shown) :])
                    shown = stable
                    if out:
                        emitted.append(out)
                        yield out
            done = True
            final = finish()
            if final is not None:
                so_far = "".join(emitted)
                if final.startswith(so_far):
                    if len(final) > len(so_far):
                        yield final[len(so_far) :]
                else:  # a decode that rewrote text already shown (not seen with the study's tokenizers)
                    log.warning("%s: streamed text differs from the decoded answer", self.name)
        finally:
            if not done:  # the consumer stopped reading: generate() is cancelled at its next step
                finish()
        if "error" in result:
            e = result["error"]
            if isinstance(e, UserError):
                raise e
            raise UserError(
                f"{self.name}: generation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            )

    # -- helpers -------------------------------------------------------------------------------------------
    def _pad_id(self) -> int:
        tok = self.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        return set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])

    def _encode(self, text: str, max_new_tokens: int, special: bool) -> tuple[list[int], int, bool]:
        tok = self.tokenizer
        return self._fit(list(tok(text, add_special_tokens=not special)["input_ids"]), max_new_tokens, tok.bos_token_id)

    def _stop_matcher(self, stops: Sequence[str]):
        """The per-step stop-string check for ``stops`` (None for none), built once per set of stop strings
        (``StopStringCriteria`` precomputes a table over the whole vocabulary)."""
        key = tuple(dict.fromkeys(s for s in stops if s))
        if not key:
            return None
        if key not in self._stop_cache:
            from transformers import StopStringCriteria

            try:
                self._stop_cache[key] = _TokenStops(StopStringCriteria(self.tokenizer, list(key)))
            except Exception as e:  # a stop string with characters the vocabulary cannot spell
                log.debug("%s: StopStringCriteria failed (%s); decoding the answer's tail each step", self.name, e)
                self._stop_cache[key] = _TextStops(self.tokenizer, list(key))
        return self._stop_cache[key]

    def _run(
        self,
        input_ids,
        attention_mask,
        max_new: int,
        ignore_eos: bool,
        watch: _Watch,
        sampling: dict,
        streamer: Any = None,
    ):
        """``model.generate`` with our one stopping criterion; the output ids (prompt included)."""
        import torch
        from transformers import StoppingCriteriaList

        kwargs: dict[str, Any] = dict(
            input_ids=input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new,
            stopping_criteria=StoppingCriteriaList([watch]),
            pad_token_id=self._pad_id(),
        )
        if streamer is not None:
            kwargs["streamer"] = streamer
        kwargs.update(sampling)
        if ignore_eos:
            kwargs["min_new_tokens"] = max_new
        try:
            with torch.no_grad():
                return self.model.generate(**kwargs)
        except Exception as e:
            raise UserError(
                f"{self.name}: generation failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None

    def _finish(
        self,
        new: list[int],
        stop: Sequence[str],
        ignore_eos: bool,
        max_new: int,
        hit_at: int,
        otherwise: str,
        loop_guard: int = 0,
    ) -> tuple[str, int, str]:
        """One row of generate()'s output (answer ids, prompt excluded) as (text, n_tokens, finish_reason).

        The answer ends at its first eos (counted, as llama.cpp's stop does not) unless ``ignore_eos``, or at the
        token that completed a stop string (``hit_at``), whichever comes first: in a batch, a row that ended early
        is followed by padding. The text is decoded once and cut before the first stop string. ``otherwise``: the
        finish reason of an answer that ended early for none of these reasons (an interrupted stream). A loop
        (``loop_guard`` copies of a block, see LoopGuard) before that end ends the answer where it repeats."""
        end, stopped = len(new), False
        if not ignore_eos:
            eos = self._eos_ids()
            j = next((j for j, t in enumerate(new) if t in eos), None)
            if j is not None:
                end, stopped = j + 1, True
        if 0 < hit_at <= end:
            end, stopped = hit_at, True
        loop = find_loop(new[:end], loop_guard)
        if loop is not None:
            return _loop_text(self.tokenizer.decode(new[: loop[1]], skip_special_tokens=True), stop), loop[0], "loop"
        text = self.tokenizer.decode(new[:end], skip_special_tokens=True)
        cut = _first_stop(text, stop)
        if cut != -1:
            text, stopped = text[:cut], True
        finish = "stop" if stopped else "length" if end >= max_new else otherwise
        return text, end, finish


def _hf_sampling(temperature: float, top_p: float, top_k: int | None, repeat_penalty: float | None) -> dict:
    """transformers generate() sampling arguments: greedy at temperature 0; top_k 0/None = off; repeat_penalty
    (llama.cpp's name) is transformers' repetition_penalty."""
    out: dict[str, Any] = {"repetition_penalty": float(repeat_penalty)} if repeat_penalty not in (None, 1, 1.0) else {}
    if temperature and temperature > 0:
        out.update(do_sample=True, temperature=float(temperature), top_p=float(top_p), top_k=int(top_k or 0))
    else:
        out.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return out


def load_transformers(
    model: str | os.PathLike[str] = EMBEDDED_HF,
    gguf_file: str | None = None,
    adapter: str | os.PathLike[str] | None = None,
    quantization: str | None = None,
    device_map: Any = None,
    dtype: Any = "auto",
    n_ctx: int | None = None,
) -> TransformersGenerator:
    """A Generator over ``load_hf_model`` (HF folder or hub id, optional GGUF, LoRA adapter, 4/8-bit)."""
    if Path(str(model)).resolve() == EMBEDDED_HF.resolve() and not EMBEDDED_HF.exists():
        raise UserError(f"{model}: model not found (run `make models`)")
    lm, tok = load_hf_model(
        model, gguf_file=gguf_file, adapter=adapter, quantization=quantization, dtype=dtype, device_map=device_map
    )
    lm.eval()
    return TransformersGenerator(lm, tok, name=_display_name(model, adapter), n_ctx=n_ctx)


# ---------------------------------------------------------------------------------------------------------------
# 4. Model specs
# ---------------------------------------------------------------------------------------------------------------

_LLAMACPP_KEYS = {
    "n_ctx",
    "n_threads",
    "n_gpu_layers",
    "chat_format",
    "verbose",
    "seed",
    "reuse_prompt_cache",
    "adapter",
}
_TRANSFORMERS_KEYS = {"gguf_file", "adapter", "quantization", "device_map", "dtype", "n_ctx"}
# keys a config may carry beside the loading ones (used by the caller, ignored by the loader)
SPEC_META_KEYS = {"name", "label", "description", "max_new_tokens", "temperature", "top_p", "stop", "mode", "system"}
_BACKEND_NAMES = {
    "llamacpp": "llamacpp",
    "llama.cpp": "llamacpp",
    "llama_cpp": "llamacpp",
    "transformers": "transformers",
    "hf": "transformers",
}


def _show_path(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (as configs and tables write it)."""
    return os.path.relpath(path) if Path.cwd() in path.parents else str(path)


def is_embedded(model: str | os.PathLike[str]) -> bool:
    """True for the embedded Gemma 3 270M (either form): a base model with no chat template of its own."""
    path = os.path.abspath(os.path.expanduser(str(model)))  # by name: a copy or link elsewhere is another model
    return path in (os.path.abspath(EMBEDDED_GGUF), os.path.abspath(EMBEDDED_HF))


def resolve_spec(spec: dict) -> dict:
    """A model spec with every default filled in, checked: the one place that knows them.

    - ``backend``: llamacpp for a ``.gguf`` model or the embedded one, transformers otherwise; aliases
      (``llama.cpp``, ``hf``) become the canonical name;
    - ``model: embedded`` (or no model): the embedded Gemma 3 270M of that backend;
    - llamacpp with ``gguf_file``: the file inside ``model``'s folder; transformers with a ``.gguf`` model: its
      folder plus ``gguf_file`` (transformers de-quantizes it);
    - unknown keys for the backend are an error (typos should not pass silently); None values are dropped.

    Returns a new dict (meta keys such as ``name`` kept); ``load_generator`` accepts it as is.
    """
    if not isinstance(spec, dict):
        raise UserError(f"model spec: expected a mapping, got {type(spec).__name__}")
    out = {k: v for k, v in spec.items() if v is not None}
    model = out.get("model")
    embedded = model in (None, "embedded")
    backend = out.get("backend")
    if backend is None:
        backend = "llamacpp" if embedded or str(model).endswith(".gguf") else "transformers"
    if backend not in _BACKEND_NAMES:
        raise UserError(f"model spec: unknown backend {backend!r} (use llamacpp or transformers)")
    backend = _BACKEND_NAMES[backend]
    out["backend"] = backend
    allowed = _LLAMACPP_KEYS if backend == "llamacpp" else _TRANSFORMERS_KEYS
    unknown = sorted(set(out) - allowed - SPEC_META_KEYS - {"model", "backend", "gguf_file"})
    if unknown:
        raise UserError(
            f"model spec: unknown key(s) for backend {backend}: {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed | {'model', 'backend'}))})"
        )
    if embedded:
        out["model"] = _show_path(EMBEDDED_GGUF if backend == "llamacpp" else EMBEDDED_HF)
    else:
        out["model"] = str(model)
    if backend == "llamacpp" and out.get("gguf_file"):
        out["model"] = str(Path(out["model"]) / str(out.pop("gguf_file")))
    elif backend == "transformers" and out["model"].endswith(".gguf") and not out.get("gguf_file"):
        gguf = Path(out["model"])
        out.update(model=str(gguf.parent), gguf_file=gguf.name)
    return out


def model_label(spec: dict) -> str:
    """How tables and records name a model spec: its ``name``, else the model (folder name when local), its GGUF
    file, quantization and adapter."""
    if spec.get("name"):
        return str(spec["name"])
    label = (
        Path(str(spec.get("model", "?"))).name if looks_local(str(spec.get("model", ""))) else str(spec.get("model"))
    )
    if spec.get("gguf_file"):
        label += f"/{spec['gguf_file']}"
    if spec.get("quantization") not in (None, "", "none"):
        label += f" ({spec['quantization']})"
    if spec.get("adapter"):
        label += f" + {Path(str(spec['adapter'])).name}"
    return label


def load_generator(spec: dict) -> Generator:
    """Load a model from a config mapping, e.g. ``{backend: llamacpp, model: models/x.gguf, n_ctx: 2048}`` or
    ``{backend: transformers, model: models/gemma-3-270m-hf, adapter: models/lora-demo, quantization: 4bit}``.

    The spec goes through ``resolve_spec`` (defaults, checks); meta keys such as ``name`` are ignored here.
    """
    spec = resolve_spec(spec)
    backend, model = spec.pop("backend"), spec.pop("model")
    kwargs = {k: v for k, v in spec.items() if k not in SPEC_META_KEYS}
    if backend == "llamacpp":
        return load_llamacpp(model, **kwargs)
    return load_transformers(model, **kwargs)
