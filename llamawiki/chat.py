"""The terminal chat shared by chat_cpu.py (llama.cpp) and chat_gpu.py (transformers / GPU).

Streams the answer as it is generated, keeps the conversation within the model's context window, and handles
/reset, /exit, Ctrl-D and Ctrl-C without a traceback. ``--prompt`` answers one question and exits.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .fileio import UserError
from .models import Generator

HELP = "/reset clears the conversation, /exit quits (or Ctrl-D); Ctrl-C stops an answer"


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both chat scripts share."""
    g = parser.add_argument_group("conversation")
    g.add_argument("--prompt", help="answer this one question, print the answer and exit (no interactive loop)")
    g.add_argument("--system", help="system prompt (in completion mode it replaces the Alpaca instruction)")
    g.add_argument("--mode", choices=["completion", "chat"], default=None,
                   help="completion: the study's Alpaca prompt (default for base models such as the embedded Gemma); "
                        "chat: the model's chat template (default when the model has one)")
    g.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    g.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling (default 0.9)")
    g.add_argument("--max-tokens", type=int, default=256, help="most tokens per answer (default 256)")
    g.add_argument("--ctx", type=int, default=2048, help="context window in tokens (prompt + history + answer)")
    g.add_argument("--verbose", action="store_true", help="print tokens/s and time to first token after each answer")


def check_chat_arguments(args: argparse.Namespace) -> None:
    if args.temperature < 0:
        raise UserError(f"--temperature {args.temperature}: must be >= 0")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p {args.top_p}: must be in (0, 1]")
    if args.max_tokens < 1:
        raise UserError(f"--max-tokens {args.max_tokens}: must be >= 1")
    if args.ctx < 64:
        raise UserError(f"--ctx {args.ctx}: too small (at least 64)")


def resolve_mode(generator: Generator, mode: str | None) -> bool:
    """True when the chat template is used, False for the Alpaca completion prompt."""
    if mode is None:
        return generator.has_chat_template
    if mode == "chat" and not generator.has_chat_template:
        raise UserError(f"{generator.name}: this model has no chat template; use --mode completion"
                        + (" or --chat-format" if generator.backend == "llamacpp" else ""))
    return mode == "chat"


class Chat:
    """A conversation with one model: the message history and how to print an answer."""

    def __init__(self, generator: Generator, *, template: bool, system: str | None = None, max_new_tokens: int = 256,
                 temperature: float = 0.7, top_p: float = 0.9, verbose: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None):
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

    def ask(self, question: str) -> str:
        """Stream the answer to ``question`` to ``out``; keep both in the history. Ctrl-C stops the answer."""
        self.messages.append({"role": "user", "content": question})
        pieces: list[str] = []
        stream = self.gen.chat_stream(self.messages, template=self.template, **self.params)
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
                pending = text[len(shown):]
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
            print(f"[{g.n_tokens} tokens in {g.seconds:.2f} s, {g.decode_tokens_per_s:.1f} tokens/s, "
                  f"first token {ttft}, prompt {g.prompt_tokens} tokens, finish: {g.finish_reason}]", file=self.err)
        return answer


def run_chat(generator: Generator, args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    """``--prompt``: one answer; otherwise the interactive loop on stdin."""
    template = resolve_mode(generator, args.mode)
    chat = Chat(generator, template=template, system=args.system, max_new_tokens=args.max_tokens,
                temperature=args.temperature, top_p=args.top_p, verbose=args.verbose)
    if args.prompt is not None:
        if not args.prompt.strip():
            raise UserError("--prompt: empty question")
        chat.ask(args.prompt)
        return 0
    stdin = stdin or sys.stdin
    mode = "chat template" if template else "completion (Alpaca prompt)"
    print(f"Chatting with {generator.name} [{generator.backend}, {mode}, context {generator.n_ctx} tokens]. {HELP}.",
          file=sys.stderr)
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
        except (EOFError, KeyboardInterrupt):
            sys.stdout.write("\n")
            return 0
        line = line.strip()
        if not line:
            continue
        if line in ("/exit", "/quit", "/bye"):
            return 0
        if line == "/reset":
            chat.reset()
            print("[conversation cleared]", file=sys.stderr)
            continue
        if line.startswith("/") and " " not in line:
            print(f"[unknown command {line}: {HELP}]", file=sys.stderr)
            continue
        chat.ask(line)
