"""The retrieved context pasted into a RAG answer (issue 23, the labelling rule's "contexto colado").

A RAG answer that pastes a retrieved passage from its header line ("Brasil — Geografia", the line every chunk
starts with: indexing.chunk_header) and goes on copying it echoes the prompt's context: the labelling rule
(docs/compare.md, "contexto colado") counts what was copied as an echo, like "### Input:". What the answer writes
itself, also after a copied header, counts. Known only when the context is known. :func:`pasted_context` finds the
spans; acerto scores them as the check ``eco``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\S+")
DASH = re.compile(r"\s[—–]\s")
_PASTED_BODY = 5  # words of the passage copied after its exact header line
_PASTED_AFTER_HEADER = 8  # words copied from a passage's first text line, after a header line of the answer's own
_CONTEXT_HEADER_WORDS = 12  # a line of the context that can be a chunk header: a title, or "Título — Seção"
_HEADER_WORDS = 15  # a header-like line of the answer's own


def _short_line(line: str, most: int) -> bool:
    """A line of at most ``most`` words with no sentence end: what a header looks like."""
    line = line.strip()
    return bool(line) and len(line.split()) <= most and line[-1] not in ".!?…:"


def _joined(context: str | Sequence[str]) -> str:
    """The context as the prompt shows it: the chunk texts joined by blank lines (or already joined)."""
    return context if isinstance(context, str) else "\n\n".join(str(c) for c in context)


def header_like(line: str) -> bool:
    """A chunk header as a model writes it: "Título — Seção", short, no sentence end."""
    return bool(DASH.search(line)) and _short_line(line, _HEADER_WORDS)


def pasted_context(answer: str, context: str | Sequence[str] | None) -> list[tuple[int, int]]:
    """Character spans of ``answer`` that paste the retrieved ``context`` (the chunk texts, or them joined) from a
    passage's header line on:

    - an answer line that is a header line of the context ("Pedro I do Brasil — Abdicação");
    - from the start of an answer line, the context's words from one of its header lines (a title, or "Título —
      Seção": a line of at most 12 words with no sentence end) on, for the header and at least 5 words more;
    - header-like lines of the answer's own ("Portugal — History") followed, from the next line, by at least 8
      words copied from the first text line after a header of the context; or a title and a dash with those words
      on the same line ("Tiradentes — Tiradentes foi o mais ativo propagandista …").

    A span runs as long as the words are the context's, in order; what follows is the answer's own."""
    if not context or not answer:
        return []
    text = _joined(context)
    ctx = [(m.group().casefold(), m.start()) for m in _WORD.finditer(text)]
    ctx_words = [w for w, _ in ctx]
    line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
    headers, after_headers, header_lines = [], [], set()
    first_word = {}  # line start offset -> index of its first word
    for k, (_, off) in enumerate(ctx):
        first_word.setdefault(text.rfind("\n", 0, off) + 1, k)
    for n, start in enumerate(line_starts):
        end = line_starts[n + 1] - 1 if n + 1 < len(line_starts) else len(text)
        line = text[start:end].strip()
        if start not in first_word or not _short_line(line, _CONTEXT_HEADER_WORDS):
            continue
        headers.append((first_word[start], len(line.split())))
        if DASH.search(line):
            header_lines.add(" ".join(line.casefold().split()))
        nxt = first_word[start] + len(line.split())
        if nxt < len(ctx_words):
            after_headers.append(nxt)

    words = [(m.start(), m.end(), m.group().casefold()) for m in _WORD.finditer(answer)]
    keys = [w for _, _, w in words]
    lines = []  # per word: (start, end) of its line in the answer
    for start, _, _ in words:
        end = answer.find("\n", start)
        lines.append((answer.rfind("\n", 0, start) + 1, len(answer) if end < 0 else end))

    def run(i: int, k: int) -> int:
        n = 0
        while i + n < len(keys) and k + n < len(ctx_words) and keys[i + n] == ctx_words[k + n]:
            n += 1
        return n

    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        lo, hi = lines[i]
        best = 0
        if not answer[lo : words[i][0]].strip():  # the word opens its line
            if " ".join(answer[lo:hi].casefold().split()) in header_lines:
                best = len(answer[lo:hi].split())
            for k, size in headers:
                n = run(i, k)
                if n >= size + _PASTED_BODY:
                    best = max(best, n)
            if best:
                spans.append((words[i][0], words[i + best - 1][1]))
                i += best
                continue
            # the answer's own header-like lines, then a passage's first text line copied from the next line on
            first = i
            while first < len(words) and header_like(answer[lines[first][0] : lines[first][1]]):
                nxt = first
                while nxt < len(words) and lines[nxt] == lines[first]:
                    nxt += 1
                first = nxt
            if first == i:  # "Tiradentes — Tiradentes foi o mais ativo …": the header and the passage on one line
                dash = DASH.search(answer, words[i][0], hi)
                before = len(answer[words[i][0] : dash.start()].split()) if dash else 0
                if dash and 0 < before <= _CONTEXT_HEADER_WORDS:
                    first = next((k for k in range(i, len(words)) if words[k][0] >= dash.end()), len(words))
                    first = first if first < len(words) and lines[first] == lines[i] else i
            if first > i and first < len(words):
                n = max((run(first, k) for k in after_headers), default=0)
                if n >= _PASTED_AFTER_HEADER:
                    spans.append((lo, words[first + n - 1][1]))
                    i = first + n
                    continue
        i += 1
    known = set(_trigrams(text)) if spans else set()
    return [_copied_on(answer, span, known) for span in spans]


_TRIGRAM_WORD = re.compile(r"\w+")
_NEAR_COPY = 0.8  # of a line's word trigrams found in the context: the line is the passage, lightly edited
_NEAR_COPY_TRIGRAMS = 5  # a line shorter than that (in trigrams) is not judged a copy


def _trigrams(text: str) -> list[tuple[str, ...]]:
    w = [x.casefold() for x in _TRIGRAM_WORD.findall(text)]
    return [tuple(w[k : k + 3]) for k in range(len(w) - 2)]


def _copied_on(answer: str, span: tuple[int, int], known: set[tuple[str, ...]]) -> tuple[int, int]:
    """A pasted span goes on over the lines that follow it (the rest of its own line first) while each is the
    passage lightly edited: 80% of its word trigrams are the context's ("O galego-português é o idioma dos
    trovadores. Com a independência de Portugal …" pasted under "Língua portuguesa — História"). A line of the
    answer's own ("O primeiro imperador do Brasil foi Pedro I": half of its trigrams) ends it. ``known``: the
    context's word trigrams."""
    start, end = span
    while end < len(answer):
        stop = answer.find("\n", end + 1) if answer[end] == "\n" else answer.find("\n", end)
        stop = len(answer) if stop < 0 else stop
        grams = _trigrams(answer[end:stop])
        if not answer[end:stop].strip():
            end = stop
            continue
        if len(grams) < _NEAR_COPY_TRIGRAMS or not _mostly_known(grams, known):
            break
        end = stop
    return start, end


def _mostly_known(grams: Sequence[tuple[str, ...]], known: set[tuple[str, ...]]) -> bool:
    """80% of the word trigrams ``grams`` are among the context's ``known`` ones: the passage, lightly edited."""
    return sum(g in known for g in grams) >= _NEAR_COPY * len(grams)


def copied(texts: Sequence[str], context: str | Sequence[str] | None) -> list[bool]:
    """Per text of ``texts`` (sentences): is it the retrieved ``context``, lightly edited — 80% of its word
    trigrams are the context's? A sentence too short to judge (under 5 trigrams) counts as copied; with no
    context, everything does. "Contexto: O 9 de janeiro de 1822 foi o dia do Fico" under a label that echoes the
    prompt, but in words of the answer's own, is not copied. The context's trigrams are taken once for all."""
    if not context:
        return [True] * len(texts)
    known = set(_trigrams(_joined(context)))
    grams = [_trigrams(text) for text in texts]
    return [len(g) < _NEAR_COPY_TRIGRAMS or _mostly_known(g, known) for g in grams]
