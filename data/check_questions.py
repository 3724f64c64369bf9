#!/usr/bin/env python3
"""Validate a questions file (data/perguntas.csv, data/perguntas-amostra.csv): columns, ids, accepted answers.

Accepted answers (column ``respostas_aceitas``): ``;`` separates facts, ``|`` separates aliases of one fact.
A question needs all its facts, or at least ``minimo_fatos`` of them when that column is filled in. Every fact
must occur, through at least one of its aliases, in the question's own ``resposta_referencia``: compared as whole
words after :func:`llamawiki.acerto.match_normalize` (casefold, no accents, no punctuation, no articles, one
spelling for numbers and dates), the form ``acerto`` compares answers in.

Any one alias is enough for its fact, so every alias must be specific on its own. An alias is refused when it is:

- a bare number below 100 or a bare ordinal ("3", "nove", "7ª", "sétima"), unless the question asks for a count
  (one of the words in ``COUNT_CUES``: "Quantos …", "Quantas …", "número", "altitude" …);
- a bare year (4 digits; "em 1953" is bare too), unless the question asks for a count or a time ("Em que
  ano …", "Quando …", "período": ``YEAR_CUES``); and even then not when resposta_referencia gives the full date
  of that year ("7 de setembro de 1822") and the question does not ask for the year itself (the word "ano"),
  unless that date is an alias of the same fact: "Quando …" then accepts "7 de setembro de 1822|1822", the year
  alone answers it at the year's precision, and acerto's data-errada check refuses the right year with another
  day or month ("15 de novembro de 1822"); never when the question asks for a day ("que dia");
- one generic word (``GENERIC_WORDS``: "maior", "último", "sim", a bare first name such as "Pedro" …);
- words of the question itself (an answer that repeats the question would state the fact).

``respostas_erradas`` (optional): known wrong candidates, ``|``-separated, that a model might assert instead.
A wrong candidate may not be, or occur inside, an accepted alias, nor occur in resposta_referencia or in the
question (as whole words after match_normalize): a correct answer that repeats either would be scored wrong.

``tipo`` (optional): ``infobox``, ``lead``, ``section`` (where the sample's fact sits in its article), ``fato``
(a study question with one short answer) or ``aberta`` (an open question graded by several specific facts:
it needs at least two).

    python data/check_questions.py data/perguntas.csv data/perguntas-amostra.csv

Bad input: one line ``error: <file>: row <n>: <problem>`` and exit 2. Otherwise a summary per file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.fileio import UserError, cli, read_csv  # noqa: E402
from llamawiki.matching import MONTHS, AcceptedAnswers, match_normalize, reference_supports  # noqa: E402

REQUIRED_COLUMNS = ("id", "pergunta", "resposta_referencia", "respostas_aceitas")
TIPOS = ("infobox", "lead", "section", "fato", "aberta")

# Words of the question (after match_normalize) that make it ask for a number: a bare number is then the answer.
COUNT_CUES = frozenset({"quantos", "quantas", "quanto", "quanta", "numero", "altitude", "populacao", "placar"})
# Words that make it ask for a year or a span of years (a bare year answers it; see also the full-date rule).
YEAR_CUES = frozenset({"ano", "anos", "quando", "periodo"})
# Ordinal words: bare, they are as loose as a small number ("sétima" for "7ª constituição").
ORDINAL_WORDS = frozenset(
    f"{stem}{end}"
    for stem in ("primeir", "segund", "terceir", "quart", "quint", "sext", "setim", "oitav", "non", "decim")
    for end in ("o", "a", "os", "as")
)
# One of these alone says nothing: comparatives and positions, yes/no, and first names shared by many people
# of the period ("Pedro" fits Pedro I, Pedro II and Pedro Álvares Cabral).
GENERIC_WORDS = (
    frozenset(
        {"maior", "menor", "melhor", "pior", "mais", "menos", "ultimo", "ultima", "penultimo", "penultima"}
        | {"sim", "nao", "certo", "errado", "verdadeiro", "falso"}
        | {"pedro", "joao", "jose", "maria", "manuel", "antonio", "francisco", "luis", "luiz", "carlos", "paulo"}
    )
    | ORDINAL_WORDS
)
# Words before a number that do not make it more specific: "em 1953" is as bare as "1953".
FILLER_WORDS = frozenset({"em", "de", "do", "da", "no", "na", "desde", "ate", "ano", "cerca", "aproximadamente"})
_FULL_DATE = re.compile(r"\b\d{1,2} de (?:" + "|".join(MONTHS) + r") de (\d{4})\b")


def _contains(haystack: str, needle: str) -> bool:
    """Whole-word containment of two texts already in match_normalize form."""
    return bool(needle) and f" {needle} " in f" {haystack} "


def alias_problem(alias: str, question: str, reference: str, siblings: tuple[str, ...] = ()) -> str | None:
    """Why one accepted alias is too loose for its question (both texts in match_normalize form), or None.
    ``siblings``: the other aliases of the same fact."""
    norm = match_normalize(alias)
    words = set(question.split())
    tokens = norm.split()
    while len(tokens) > 1 and tokens[0] in FILLER_WORDS:
        tokens = tokens[1:]
    if all(t.isdigit() for t in tokens):
        value = int("".join(tokens))
        year = len(tokens) == 1 and len(tokens[0]) == 4
        if value < 100 and not words & COUNT_CUES:
            return f"bare number {alias!r}, but the question does not ask for a count (give the noun: '3 vezes')"
        if year and not words & (COUNT_CUES | YEAR_CUES):
            return f"bare year {alias!r}, but the question does not ask for a year or a time"
        if year and "dia" in words:
            return f"bare year {alias!r}, but the question asks for a day"
        if year and "ano" not in words and not words & COUNT_CUES:
            full = [m.group(0) for m in _FULL_DATE.finditer(reference) if m.group(1) == tokens[0]]
            dated = any(m.group(1) == tokens[0] for sib in siblings for m in _FULL_DATE.finditer(match_normalize(sib)))
            if full and not dated:
                return (
                    f"bare year {alias!r}, but the question does not ask for the year and resposta_referencia "
                    f"gives the date ({full[0]!r}): accept the date (the year may stay beside it)"
                )
        return None
    if norm in ORDINAL_WORDS:
        if not words & COUNT_CUES:
            return f"bare ordinal {alias!r} (give the noun: 'sétima constituição')"
        return None
    if norm in GENERIC_WORDS:
        return f"generic word {alias!r} alone proves nothing"
    if _contains(question, norm):
        return f"{alias!r} is in the question itself"
    return None


def check_row(row: dict[str, str]) -> str | None:
    """The problem with one row's id, question, accepted answers and wrong candidates, or None."""
    if not row.get("id", "").strip():
        return "empty id"
    question = row.get("pergunta", "").strip()
    if not question:
        return "empty pergunta"
    reference = row.get("resposta_referencia", "").strip()
    if not reference:
        return "empty resposta_referencia"
    accepted = row.get("respostas_aceitas", "").strip()
    if not accepted:
        return "empty respostas_aceitas"
    try:
        parsed = AcceptedAnswers.parse(accepted, row.get("minimo_fatos"))
    except ValueError as e:
        return str(e)
    for n, fact in enumerate(parsed.facts, 1):
        if fact[0] in reference_supports(parsed, reference):
            return f"respostas_aceitas: fact {n} ({'|'.join(fact)!r}) appears in no form in resposta_referencia"
    q_norm, ref_norm = match_normalize(question), match_normalize(reference)
    for n, fact in enumerate(parsed.facts, 1):
        for alias in fact:
            problem = alias_problem(alias, q_norm, ref_norm, tuple(a for a in fact if a != alias))
            if problem:
                return f"respostas_aceitas: fact {n}: {problem}"
    tipo = row.get("tipo")
    if tipo is not None and tipo.strip() not in TIPOS:
        return f"tipo: must be one of {', '.join(TIPOS)}, got {tipo.strip()!r}"
    if tipo is not None and tipo.strip() == "aberta" and len(parsed.facts) < 2:
        return "tipo: an 'aberta' question needs at least two facts in respostas_aceitas"
    return wrong_problem(row.get("respostas_erradas") or "", parsed, q_norm, ref_norm)


def wrong_problem(text: str, accepted: AcceptedAnswers, question: str, reference: str) -> str | None:
    """The problem with a row's ``respostas_erradas`` (texts in match_normalize form), or None."""
    if not text.strip():
        return None
    seen: set[str] = set()
    for candidate in text.split("|"):
        norm = match_normalize(candidate)
        if not norm:
            return f"respostas_erradas: empty candidate ({text.strip()!r})"
        if norm in seen:
            return f"respostas_erradas: {candidate.strip()!r} is listed twice"
        seen.add(norm)
        for fact in accepted.facts:
            for alias in fact:
                if _contains(match_normalize(alias), norm):
                    return f"respostas_erradas: {candidate.strip()!r} matches the accepted form {alias!r}"
        if _contains(reference, norm):
            return f"respostas_erradas: {candidate.strip()!r} occurs in resposta_referencia"
        if _contains(question, norm):
            return f"respostas_erradas: {candidate.strip()!r} occurs in the question"
    return None


def check_file(path: str | Path) -> Counter:
    """Validate one questions CSV; return the count of questions per ``tipo`` (``""`` without that column)."""
    path = Path(path)
    columns, rows = read_csv(path, "questions file")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UserError(f"{path}: missing column(s): {', '.join(missing)}")
    counts: Counter = Counter()
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, 1):
        problem = check_row(row)
        qid = row["id"].strip()
        if problem is None and qid in seen:
            problem = f"duplicate id {qid!r} (first in row {seen[qid]})"
        if problem:
            raise UserError(f"{path}: row {n}: {problem}")
        seen[qid] = n
        counts[(row.get("tipo") or "").strip()] += 1
        if (row.get("respostas_erradas") or "").strip():
            counts["com respostas_erradas"] += 1
    if not seen:
        raise UserError(f"{path}: no questions")
    return counts


@cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="questions CSV file(s)")
    args = parser.parse_args(argv)
    for path in args.files:
        counts = check_file(path)
        wrong = counts.pop("com respostas_erradas", 0)
        total = sum(counts.values())
        per_tipo = ", ".join(f"{t} {counts[t]}" for t in TIPOS if counts[t])
        line = f"{path}: {total} questions ok" + (f" ({per_tipo})" if per_tipo else "")
        if counts["aberta"]:
            line += f"; the {counts['aberta']} 'aberta' are graded by keywords: report them apart"
        if wrong:
            line += f"; {wrong} with respostas_erradas"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
