"""An answer as acerto reads it (issue 23): normalized tokens, each with its clause, its sentence, its list entry
and where it comes from — the answer proper, an echoed prompt section, a pasted passage, a passage's header line,
a sentence that asks, or the answer to a question the answer made up. :func:`parse` does the reading;
:mod:`llamawiki.acerto` judges what the answer asserts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .matching import match_normalize, split_lettered, strip_enumeration
from .pasted import DASH, copied, header_like
from .text import STOPWORDS_PT, strip_accents

# Section headers of an echoed prompt: the text under them is not the answer.
_SECTION = re.compile(
    r"(?im)(?:###\s*|^[ \t]*)(instruction|instru[cç][aã]o|input|entrada|contexto|context|pergunta|question|"
    r"response|resposta|answer)\s*:"
)
_ANSWER_SECTIONS = frozenset({"response", "resposta", "answer"})
_QUESTION_SECTIONS = frozenset({"pergunta", "question", "input", "entrada"})
_CONTEXT_SECTIONS = frozenset({"contexto", "context"})
_BULLET = re.compile(r"(?m)^[ \t]*[-*•·][ \t]+")
_SENTENCE_END = re.compile(r"[.!?…]+(?=\s|$)|\n[ \t]*\n")
_ABBREVIATIONS = frozenset("dr dra sr sra srs prof profa sto sta gen cel cap av pe fr dom dna mons".split())
_CLAUSE_SPLIT = re.compile(r"(?<!\d),|,(?!\d)|[;:()\[\]{}\n—–]|\s-\s|\bmas\b|\bbut\b", re.IGNORECASE)

IS = "eh"  # "é" in the answer: the copula, kept apart from the conjunction "e" (accents are stripped)
_IS_RE = re.compile(r"(?<!\w)[éÉ](?!\w)")
_EN_ASKING = frozenset("what who whom whose when where which how why does did".split())  # a question in English
_ASKING = frozenset(  # the words a question opens with (articles are gone: "O que foi" -> "que foi")
    "qual quais quem quando onde como quanto quantos quantas quanta que cite diga explique fale descreva"
    " what who whom whose when where which how why".split()
)


@dataclass
class Parsed:
    """An answer as normalized tokens, each with its clause, its sentence and where it comes from: "resposta"
    (the answer proper), "eco" (an echoed prompt section), "contexto" (a pasted passage), "cabecalho" (a passage's
    header line), "pergunta" (a sentence that asks, or echoes the question), "inventada" (what answers a question
    the answer made up)."""

    tokens: list[str] = field(default_factory=list)
    clause: list[int] = field(default_factory=list)
    sentence: list[int] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    entry: list[int] = field(default_factory=list)  # the numbered or bulleted list entry it is in, -1 outside
    options: set[int] = field(default_factory=set)  # the entries that are options of a lettered list (a, b, c …)
    clause_tokens: list[list[int]] = field(default_factory=list)  # clause -> its token positions
    clause_sentence: list[int] = field(default_factory=list)
    clause_caps: list[set[str]] = field(default_factory=list)  # clause -> its words written with a capital


def _split_sentences(text: str) -> list[tuple[str, bool]]:
    """(sentence, asks): a period after one letter or a title ("D. Pedro", "Dr.") ends no sentence; a Roman
    numeral does ("Pedro I. Depois")."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        if m.group(0).startswith("."):
            before = text[start : m.start()].split()
            word = before[-1].strip("([\"'") if before else ""
            if word.isalpha() and ((len(word) == 1 and word not in "IVX") or word.casefold() in _ABBREVIATIONS):
                continue
        out.append((text[start : m.end()], "?" in m.group(0)))
        start = m.end()
    if text[start:].strip():
        out.append((text[start:], False))
    return out


def similar(a: Iterable[str], b: Iterable[str], least: float = 0.8) -> bool:
    sa, sb = set(a), set(b)
    return bool(sa) and len(sa & sb) / len(sa | sb) >= least


def weighty(word: str) -> bool:
    """A word of weight: 4+ letters, no digit, not a stopword ("imperador", "Leopoldina"; not "foi", "pela")."""
    return len(word) >= 4 and word.isalpha() and word not in STOPWORDS_PT


def _repeats_question(sentence: Sequence[str], question: Sequence[str]) -> bool:
    """The question again without its "?": nearly the same words, worded as a question (it opens with an asking
    word, or with the question's own first word), and no word of weight that the question does not have. "A
    empresa criada em 1956 para … foi a Novacap." restates the question as a statement with the answer in it, and
    so does "Com quem D. Pedro I se casou pela primeira vez foi Leopoldina.": those are answers."""
    opener = sentence[0] in _ASKING or (sentence[0] == "por" and sentence[1:2] == ["que"])
    if not (opener or bool(question) and sentence[0] == question[0]) or not similar(sentence, question):
        return False
    asked = set(question)
    return not any(weighty(w) and w not in asked for w in sentence)


def _name_lines(body: str) -> list[str]:
    """The lines of a list written one name per line, with no number or bullet (the lines "Pedro I (1798 – 1834)",
    "João VI de Portugal", "Carlota Joaquina"): 3+ lines, each opening with a capital and holding at most 5 words
    outside its parentheses, none ending a sentence. They are the entries of a list, as numbered ones are. [] for
    anything else (a paragraph, a line of prose among names)."""
    lines = [line.strip() for line in body.split("\n") if line.strip()]
    if len(lines) < 3:
        return []
    for line in lines:
        words = re.findall(r"[^\W\d_]+", re.sub(r"\([^)]*\)?", " ", line))
        if not words or not line[0].isupper() or len(words) > 5 or re.search(r"[.!?:;]$", line):
            return []
    return lines


def _headers(origin: str, body: str) -> list[tuple[str, str]]:
    """The answer proper cut at its header lines ("Pedro II do Brasil — Castelo d'Eu", the "Título — Seção" line
    that starts every retrieved passage): a header names a passage, it states nothing, so its words are a
    "cabecalho", whether pasted or made up."""
    if origin != "resposta":
        return [(origin, body)]
    lines = body.splitlines(keepends=True)
    like = [header_like(line) for line in lines]
    out: list[tuple[str, str]] = []
    for n, line in enumerate(lines):
        # one line between lines that are not headers, heading some text, one dash, no number: not a list of
        # "Nome — 1907 — 104 anos", nor a terse answer "Pedro I — o primeiro imperador" with nothing under it
        alone = not (n and like[n - 1]) and not (n + 1 < len(lines) and like[n + 1])
        heads = any(later.strip() for later in lines[n + 1 :])
        header = like[n] and alone and heads and len(DASH.findall(line)) == 1 and not re.search(r"\d", line)
        where = "cabecalho" if header else origin
        if out and out[-1][0] == where:
            out[-1] = (where, out[-1][1] + line)
        else:
            out.append((where, line))
    return out or [(origin, body)]


def parse(
    answer: str,
    question_tokens: Sequence[str],
    pasted: Sequence[tuple[int, int]] = (),
    context: str | Sequence[str] | None = None,
) -> Parsed:
    p = Parsed()
    text = answer or ""
    cuts = list(_SECTION.finditer(text))
    spans = [("resposta", 0, cuts[0].start() if cuts else len(text))]
    for n, m in enumerate(cuts):
        end = cuts[n + 1].start() if n + 1 < len(cuts) else len(text)
        name = strip_accents(m.group(1).casefold())
        if name in _QUESTION_SECTIONS and "?" in text[m.end() : end].rstrip()[:-1]:
            # "Question: What manifesto …? In the Manifesto Antropófago …": the echoed question ends at its "?"
            ask = text.index("?", m.end()) + 1
            spans += [("eco", m.end(), ask), ("resposta", ask, end)]
            continue
        if name in _CONTEXT_SECTIONS and context:
            # under a "Contexto:" label the answer may write its own words: with the context known, a sentence
            # that is not the context (lightly edited) is the answer's
            start = m.end()
            sentences = [sentence for sentence, _ in _split_sentences(text[start:end])]
            for sentence, is_copy in zip(sentences, copied(sentences, context), strict=True):
                spans.append(("eco" if is_copy else "resposta", start, start + len(sentence)))
                start += len(sentence)
            continue
        spans.append(("resposta" if name in _ANSWER_SECTIONS else "eco", m.end(), end))
    sections = []
    for origin, start, end in spans:  # a pasted passage inside the answer proper is an echo of the context
        for s, e in pasted if origin == "resposta" else ():
            if s < end and start < e:
                sections.append((origin, text[start : max(start, s)]))
                sections.append(("contexto", text[max(start, s) : min(end, e)]))
                start = min(end, e)
        sections.append((origin, text[start:end]))
    sections = [piece for origin, body in sections for piece in _headers(origin, body)]
    n_sentence, n_entry = 0, 0
    # after the answer has asked the question itself and answered it, a question of its own in Portuguese
    # ("Pergunta (3): Qual partido …?") opens a made-up exchange: what follows answers that question, not ours,
    # until ours is asked again. Not a question right after ours (a rewording), nor one in English (a translation)
    asked_ours, answered, made_up = False, False, False
    pieces = []  # (origin, list entry, text)
    for origin, body in sections:
        lines = _name_lines(body) if origin == "resposta" else []
        parts = ["", *lines] if lines else _BULLET.sub("\0", strip_enumeration(body, "\0")).split("\0")
        for n, part in enumerate(parts):
            head, *options = split_lettered(part)
            pieces.append((origin, n_entry if n else -1, head))
            n_entry += 1 if n else 0
            for option in options:
                # an option is its first sentence: what follows ("… c) Brasília. A capital é Brasília.") is the
                # answer speaking again, outside the list
                end = _SENTENCE_END.search(option.strip())
                cut = option.index(option.strip()) + end.end() if end else len(option)
                p.options.add(n_entry)
                pieces.append((origin, n_entry, option[:cut]))
                if option[cut:].strip():
                    pieces.append((origin, -1, option[cut:]))
                n_entry += 1
    for origin, entry, body in pieces:
        for sentence, asks in _split_sentences(body):
            raw = _CLAUSE_SPLIT.split(sentence)
            clauses = [match_normalize(_IS_RE.sub(IS, c)).split() for c in raw]
            words = [re.findall(r"[^\W\d_]+", c) for c in raw]
            words[0] = words[0][1:]  # the sentence's first word has a capital anyway
            caps = [{strip_accents(w.casefold()) for w in ws if w[0].isupper()} for ws in words]
            flat = [t for c in clauses for t in c]
            if not flat:
                continue
            where = origin
            if origin == "resposta" and (asks or (len(flat) >= 3 and _repeats_question(flat, question_tokens))):
                where = "pergunta"
                ours = similar(flat, question_tokens, 0.6)
                other = not similar(flat, question_tokens, 0.5) and not any(w in _EN_ASKING for w in flat)
                made_up = answered and not ours and other
                asked_ours, answered = asked_ours or ours, answered and not ours
            elif origin == "resposta" and made_up:
                where = "inventada"
            elif origin == "resposta":
                answered = asked_ours
            for c, cap in zip(clauses, caps, strict=True):
                if not c:
                    continue
                positions = []
                for t in c:
                    positions.append(len(p.tokens))
                    p.tokens.append(t)
                    p.clause.append(len(p.clause_tokens))
                    p.sentence.append(n_sentence)
                    p.origin.append(where)
                    p.entry.append(entry)
                p.clause_tokens.append(positions)
                p.clause_sentence.append(n_sentence)
                p.clause_caps.append(cap)
            n_sentence += 1
    return p
