"""The terminal chat shared by chat_cpu.py (llama.cpp) and chat_gpu.py (transformers / GPU).

Streams the answer as it is generated, keeps the conversation within the model's context window, and handles
/reset, /exit, Ctrl-D and Ctrl-C without a traceback. ``--prompt`` answers one question and exits.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterator
from typing import TextIO

from .fileio import UserError
from .models import Generator
from .options import DEFAULT_MAX_NEW_TOKENS, DEFAULT_TOP_P, GREEDY, check_generation_arguments, user_text

HELP = "/reset clears the conversation, /exit quits (or Ctrl-D); Ctrl-C stops an answer"
NO_INPUT = "stdin: no input (stdin is empty): nothing to answer; pipe the questions in, one per line, or give --prompt"


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """The conversation options both chat scripts share (model and generation flags: llamawiki.options)."""
    g = parser.add_argument_group("conversation")
    g.add_argument("--prompt", help="answer this one question, print the answer and exit (no interactive loop)")
    g.add_argument("--system", help="system prompt (in completion mode it replaces the Alpaca instruction)")
    g.add_argument(
        "--mode",
        choices=["completion", "chat"],
        default=None,
        help="completion: the study's Alpaca prompt (default for base models such as the embedded Gemma); "
        "chat: the model's chat template (default when the model has one)",
    )
    g.add_argument("--verbose", action="store_true", help="print tokens/s and time to first token after each answer")


def check_chat_arguments(args: argparse.Namespace) -> None:
    """Before any model loads: impossible generation values, and an interactive chat without a stdin."""
    check_generation_arguments(args)
    if getattr(args, "prompt", None) is None and (sys.stdin is None or sys.stdin.closed):
        raise UserError("stdin: closed; the interactive chat reads questions from it (give --prompt for one answer)")
    if getattr(args, "prompt", None) is None and stdin_is_empty(sys.stdin):
        raise UserError(NO_INPUT)  # before the model loads: nothing could ever be asked


def stdin_is_empty(stdin) -> bool:
    """True when ``stdin`` is known to hold nothing without reading it: /dev/null or an empty (or fully read)
    file. A terminal or a pipe may still bring questions: False."""
    try:
        fd = stdin.fileno()
        st = os.fstat(fd)
        if os.isatty(fd):
            return False
        if stat.S_ISREG(st.st_mode):
            return st.st_size <= os.lseek(fd, 0, os.SEEK_CUR)
        if stat.S_ISCHR(st.st_mode):
            return st.st_rdev == os.stat(os.devnull).st_rdev
    except (OSError, ValueError, AttributeError):
        pass
    return False


def resolve_mode(generator: Generator, mode: str | None) -> bool:
    """True when the chat template is used, False for the Alpaca completion prompt."""
    if mode is None:
        return generator.has_chat_template
    if mode == "chat" and not generator.has_chat_template:
        raise UserError(
            f"{generator.name}: this model has no chat template; use --mode completion"
            + (" or --chat-format" if generator.backend == "llamacpp" else "")
        )
    return mode == "chat"


class Chat:
    """A conversation with one model: the message history and how to print an answer."""

    def __init__(
        self,
        generator: Generator,
        *,
        template: bool,
        system: str | None = None,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = GREEDY,
        top_p: float = DEFAULT_TOP_P,
        verbose: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ):
        self.gen = generator
        self.template = template
        self.system = system
        self.params = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.messages: list[dict] = []
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    @property
    def mode_label(self) -> str:
        return "chat template" if self.template else "completion (Alpaca prompt)"

    def _stream(self) -> Iterator[str]:
        """The answer to the conversation so far, piece by piece."""
        return self.gen.chat_stream(self.messages, template=self.template, **self.params)

    def ask(self, question: str) -> str:
        """Stream the answer to ``question`` to ``out``; keep both in the history. Ctrl-C stops the answer."""
        self.messages.append({"role": "user", "content": question})
        pieces: list[str] = []
        stream = self._stream()
        started = False
        pending = ""  # trailing white space is shown only when more text follows it
        try:
            for piece in stream:
                pieces.append(piece)
                if not started:  # the answer starts after "### Response:\n": drop leading blank space
                    piece = piece.lstrip()
                    if not piece:
                        continue
                    started = True
                text = pending + piece
                shown = text.rstrip()
                pending = text[len(shown) :]
                if shown:
                    self.out.write(shown)
                    self.out.flush()
        except KeyboardInterrupt:
            stream.close()
            self.out.write("\n")
            print("[answer interrupted]", file=self.err)
            self.messages.pop()  # the turn did not complete: forget it
            return "".join(pieces)
        finally:
            stream.close()
        self.out.write("\n")
        self.out.flush()
        answer = "".join(pieces).strip()
        self.messages.append({"role": "assistant", "content": answer})
        g = self.gen.last
        if g is not None and g.prompt_truncated:
            print(f"[older messages left out to fit the context window of {self.gen.n_ctx} tokens]", file=self.err)
        if self.verbose and g is not None:
            ttft = f"{g.first_token_s * 1000:.0f} ms" if g.first_token_s is not None else "n/a"
            print(
                f"[{g.n_tokens} tokens in {g.seconds:.2f} s, {g.decode_tokens_per_s:.1f} tokens/s, "
                f"first token {ttft}, prompt {g.prompt_tokens} tokens, finish: {g.finish_reason}]",
                file=self.err,
            )
        return answer


class RagChat(Chat):
    """A chat whose every question is answered from its own retrieved context (rag.py chat).

    The prompt is the one ``retrieval.answer`` builds (same chunks, same template), streamed; the sources are
    printed after each answer. Earlier turns are not put in the prompt: the context window holds the passages.
    """

    def __init__(self, generator: Generator, retriever, *, k: int, max_context_chars: int | None = None, **kwargs):
        super().__init__(generator, template=False, **kwargs)
        self.retriever = retriever
        self.k = k
        self.max_context_chars = max_context_chars
        self.sources: list[str] = []

    @property
    def mode_label(self) -> str:
        return f"RAG, {self.k} chunks per question"

    def _stream(self) -> Iterator[str]:
        from .retrieval import rag_prompt, sources_of

        prompt, docs = rag_prompt(
            self.messages[-1]["content"],
            self.retriever,
            self.gen,
            k=self.k,
            max_context_chars=self.max_context_chars,
            max_new_tokens=self.params["max_new_tokens"],
        )
        self.sources = sources_of(docs)
        return self.gen.stream(prompt, **self.params)

    def ask(self, question: str) -> str:
        answer = super().ask(question)
        if self.sources:
            self.out.write("Fontes: " + "; ".join(self.sources) + "\n")
        return answer


def run_chat(
    generator: Generator, args: argparse.Namespace, stdin: TextIO | None = None, chat: Chat | None = None
) -> int:
    """``--prompt``: one answer; otherwise the interactive loop on stdin. ``chat``: a ready conversation (RagChat)."""
    if chat is None:
        template = resolve_mode(generator, args.mode)
        chat = Chat(
            generator,
            template=template,
            system=args.system,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            verbose=args.verbose,
        )
    if getattr(args, "prompt", None) is not None:
        if not args.prompt.strip():
            raise UserError("--prompt: empty question")
        chat.ask(user_text(args.prompt, "--prompt"))
        return 0
    stdin = stdin or sys.stdin
    if stdin is sys.stdin and hasattr(stdin, "reconfigure"):
        try:  # bytes that are not UTF-8 (or a C locale): kept as surrogates, then read by user_text
            stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
        except (ValueError, OSError):
            pass
    interactive = _isatty(stdin)
    asked = False
    print(
        f"Chatting with {generator.name} [{generator.backend}, {chat.mode_label}, context {generator.n_ctx} tokens]. "
        f"{HELP}.",
        file=sys.stderr,
    )
    while True:
        try:
            if stdin is sys.stdin:
                line = input(">>> ")
            else:
                sys.stdout.write(">>> ")
                sys.stdout.flush()
                line = stdin.readline()
                if not line:
                    raise EOFError
        except (EOFError, KeyboardInterrupt) as e:
            sys.stdout.write("\n")
            if isinstance(e, EOFError) and not asked and not interactive:
                raise UserError(NO_INPUT) from None  # a pipe that brought nothing: the run answered nothing
            return 0
        except RuntimeError as e:  # input(): lost sys.stdin (closed while chatting)
            raise UserError(f"stdin: {e}") from None
        line = user_text(line, "stdin").strip()
        if not line:
            continue
        asked = True
        if line in ("/exit", "/quit", "/bye", "/sair"):
            return 0
        if line == "/reset":
            chat.reset()
            print("[conversation cleared]", file=sys.stderr)
            continue
        if line.startswith("/") and " " not in line:
            print(f"[unknown command {line}: {HELP}]", file=sys.stderr)
            continue
        chat.ask(line)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (ValueError, AttributeError):
        return False
