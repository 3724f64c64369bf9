#!/usr/bin/env python3
"""Validate a questions file (data/perguntas.csv, data/perguntas-amostra.csv): columns, ids, accepted answers.

Accepted answers (column ``respostas_aceitas``): ``;`` separates facts, ``|`` separates aliases of one fact.
A question needs all its facts, or at least ``minimo_fatos`` of them when that column is filled in. Every fact
must occur, through at least one of its aliases, in the question's own ``resposta_referencia``: compared as whole
words after :func:`llamawiki.metrics.match_normalize` (casefold, no accents, no punctuation, no articles, one
spelling for numbers and dates), the form ``acerto`` compares answers in.

    python data/check_questions.py data/perguntas.csv data/perguntas-amostra.csv

Bad input: one line ``error: <file>: row <n>: <problem>`` and exit 2. Otherwise a summary per file.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.fileio import UserError, cli, read_csv  # noqa: E402
from llamawiki.metrics import AcceptedAnswers, reference_supports  # noqa: E402

REQUIRED_COLUMNS = ("id", "pergunta", "resposta_referencia", "respostas_aceitas")
TIPOS = ("infobox", "lead", "section")


def check_row(row: dict[str, str]) -> str | None:
    """The problem with one row's id, question and accepted answers, or None."""
    if not row.get("id", "").strip():
        return "empty id"
    if not row.get("pergunta", "").strip():
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
    tipo = row.get("tipo")
    if tipo is not None and tipo.strip() not in TIPOS:
        return f"tipo: must be one of {', '.join(TIPOS)}, got {tipo.strip()!r}"
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
        counts[row.get("tipo", "").strip()] += 1
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
        total = sum(counts.values())
        per_tipo = ", ".join(f"{t} {counts[t]}" for t in TIPOS if counts[t])
        print(f"{path}: {total} questions ok" + (f" ({per_tipo})" if per_tipo else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
