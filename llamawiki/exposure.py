"""Seen in training: what a fine-tuned system's training file held of the evaluation questions.

Two levels, each question against the adapter's training file (found from its ``run_config.json``):

- the **wording** (:func:`llamawiki.split.question_leakage`, the check ``particiona.py`` reports): the question is
  a training ``input`` (identical, normalized), near-identical to one (:func:`llamawiki.split.similarity`), another
  question about its article, or unseen;
- the **fact** (:func:`fact_exposure`): some training answer (``output``) states the fact the question asks for,
  in an accepted form (``respostas_aceitas``, at least ``minimo_fatos`` of them in one answer), read with the
  matcher acerto uses (:func:`llamawiki.acerto.match_normalize`, :func:`llamawiki.acerto.fact_matches`), and
  whether that answer is about the question's article.

The acerto of each fine-tuned system is then split by these flags (:func:`exposure_breakdown`,
:func:`fact_breakdown`): does it answer right the questions whose fact it trained on, and the others?
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import split as split_mod
from .fileio import sha256_file
from .matching import fact_matches, match_normalize
from .metrics import wilson_interval
from .records import read_dataset
from .text import normalize

Question = Any  # report.Question (id, pergunta, artigo, accepted); report imports this module, not the reverse

EXPOSURE_LABELS = {  # wording flag -> how tabela.md says it
    "identical": "idêntica no treino",
    "near": "quase idêntica no treino",
    "article": "mesmo artigo no treino",
    "unseen": "inédita",
    "unknown": "desconhecido",
}
SEEN_FLAGS = ("identical", "near")

FACT_LABELS = {  # fact flag -> how tabela.md says it
    "same_article": "fato visto no treino (mesmo artigo)",
    "other_article": "fato visto no treino (outro artigo)",
    "seen": "fato visto no treino",  # the training record (or the question) names no article
    "unseen": "fato não visto no treino",
    "unknown": "fato: desconhecido",  # no training file
    "nd": "fato: n/d",  # the question has no respostas_aceitas
}
FACT_SEEN_FLAGS = ("same_article", "other_article", "seen")


@dataclass
class Exposure:
    """What one adapter's training file held of the questions (``flags[i]``, ``facts[i]`` for ``questions[i]``)."""

    adapter: str
    flags: list[str]
    train_file: str | None = None
    status: str = "ok"  # ok | changed (the file's sha256 differs from training) | unknown
    note: str = ""
    closest: list[str] = field(default_factory=list)  # the training question behind an identical/near flag
    facts: list[str] = field(default_factory=list)  # FACT_LABELS keys
    fact_sources: list[str] = field(default_factory=list)  # the training question whose answer states the fact

    def counts(self) -> dict[str, int]:
        return {flag: self.flags.count(flag) for flag in EXPOSURE_LABELS if flag in self.flags}

    def fact_counts(self) -> dict[str, int]:
        return {flag: self.facts.count(flag) for flag in FACT_LABELS if flag in self.facts}

    def as_dict(self) -> dict:
        return {
            "adapter": self.adapter,
            "train_file": self.train_file,
            "status": self.status,
            "note": self.note,
            "counts": self.counts(),
            "fact_counts": self.fact_counts(),
        }


def _article(record: dict) -> str:
    return str(record.get("article") or record.get("title") or "").strip()


def fact_exposure(questions: Sequence[Question], records: Sequence[dict]) -> tuple[list[str], list[str]]:
    """(flag, training question) per question: does one training answer state the question's fact(s)?

    ``same_article`` when such an answer belongs to the question's article (``artigo``), ``other_article`` when
    only answers of other articles do, ``seen`` when the article cannot be told (no ``artigo``, or a training
    record without ``article``), ``unseen``; ``nd`` for a question without ``respostas_aceitas``. The training
    question is that of the first answer found (of the same article, if any), else "".

    Each training answer is put in :func:`match_normalize` form once; an accepted form is looked for only in the
    answers holding all of its words (an index of the words), then confirmed by :func:`fact_matches`.
    """
    answers = [r for r in records if str(r.get("output") or "").strip()]
    norms = [match_normalize(str(r["output"])) for r in answers]
    postings: dict[str, set[int]] = defaultdict(set)
    for j, norm in enumerate(norms):
        for word in norm.split():
            postings[word].add(j)
    found: dict[str, set[int]] = {}

    def holding(alias: str) -> set[int]:
        if alias not in found:
            lists = sorted((postings.get(w, set()) for w in set(match_normalize(alias).split())), key=len)
            candidates = set.intersection(*lists) if lists else set()
            found[alias] = {j for j in candidates if fact_matches(norms[j], alias)}
        return found[alias]

    flags, sources = [], []
    for q in questions:
        if q.accepted is None:
            flags.append("nd")
            sources.append("")
            continue
        per_answer: Counter = Counter()
        for fact in q.accepted.facts:
            per_answer.update(set().union(*(holding(a) for a in fact)))
        hits = sorted(j for j, n in per_answer.items() if n >= q.accepted.required)
        article = normalize(q.artigo or "")
        same = [j for j in hits if article and normalize(_article(answers[j])) == article]
        if not hits:
            flag = "unseen"
        elif same:
            flag = "same_article"
        elif article and all(_article(answers[j]) for j in hits):
            flag = "other_article"
        else:
            flag = "seen"
        flags.append(flag)
        sources.append(str(answers[(same or hits)[0]].get("input") or "") if hits else "")
    return flags, sources


def training_exposure(
    adapter: str, questions: Sequence[Question], threshold: float = split_mod.DEFAULT_THRESHOLD
) -> Exposure:
    """Find the adapter's training file from its ``run_config.json``, check its sha256, flag each question (its
    wording and its fact).

    Without a ``run_config.json`` (a GGUF adapter, an adapter from elsewhere) or without the training file every
    question is ``unknown`` — never ``unseen``. A training file changed since training is still read, and the
    status says so.
    """
    unknown = Exposure(adapter, ["unknown"] * len(questions), status="unknown", facts=["unknown"] * len(questions))
    unknown.fact_sources = [""] * len(questions)
    run_config = Path(adapter) / "run_config.json"
    if not run_config.is_file():
        unknown.note = f"{run_config}: not found (the training data is unknown)"
        return unknown
    try:
        train = json.loads(run_config.read_text(encoding="utf-8"))["data"]["train"]
        path, sha = Path(train["path"]), train.get("sha256")
    except (ValueError, KeyError, TypeError):
        unknown.note = f"{run_config}: no data.train.path (the training data is unknown)"
        return unknown
    if not path.is_file():
        unknown.train_file, unknown.note = str(path), f"{path}: training file not found"
        return unknown
    status, note = "ok", ""
    if sha and sha256_file(path) != sha:
        status, note = "changed", f"{path}: changed since the adapter was trained (sha256 differs)"
    records = read_dataset(path)
    leaks = split_mod.question_leakage([(q.pergunta, q.artigo) for q in questions], records, threshold)
    facts, fact_sources = fact_exposure(questions, records)
    return Exposure(
        adapter,
        [lk.flag for lk in leaks],
        str(path),
        status,
        note,
        [lk.train_question for lk in leaks],
        facts,
        fact_sources,
    )


def exposures_of(systems: Sequence[Any], questions: Sequence[Question]) -> dict[str, Exposure]:
    """system name -> Exposure, for the systems (``evaluation.System``) with an adapter (each adapter is read
    once)."""
    by_adapter: dict[str, Exposure] = {}
    out = {}
    for s in systems:
        adapter = s.model.get("adapter")
        if not adapter:
            continue
        if str(adapter) not in by_adapter:
            by_adapter[str(adapter)] = training_exposure(str(adapter), questions)
            if by_adapter[str(adapter)].note:
                print(f"warning: {by_adapter[str(adapter)].note}", file=sys.stderr)
        out[s.name] = by_adapter[str(adapter)]
    return out


def proportion_stats(values: Sequence[float]) -> dict:
    """mean, low, high (Wilson 95%), n, k of 0/1 values; NaNs when there are none."""
    n = len(values)
    k = int(round(sum(values)))
    low, high = wilson_interval(k, n)
    return {"mean": k / n if n else math.nan, "low": low, "high": high, "n": n, "k": k}


def _split_acerto(
    system: str, questions: Sequence[Question], flags: Sequence[str], groups: dict, scores: dict
) -> dict[str, dict]:
    out = {}
    for group, wanted in groups.items():
        values = [
            scores[(system, q.id)]["acerto"]
            for q, f in zip(questions, flags, strict=True)
            if f in wanted and (system, q.id) in scores and scores[(system, q.id)].get("acerto") is not None
        ]
        out[group] = {"questions": sum(f in wanted for f in flags), **proportion_stats(values)}
    return out


WORDING_GROUPS = {  # exposure_breakdown's groups -> the wording flags in each
    "vista": SEEN_FLAGS,
    "artigo": ("article",),
    "inedita": ("unseen",),
    "desconhecida": ("unknown",),
}
FACT_GROUPS = {  # fact_breakdown's groups -> the fact flags in each ("fato_visto" sums the first three)
    "fato_mesmo_artigo": ("same_article",),
    "fato_outro_artigo": ("other_article", "seen"),
    "fato_visto": FACT_SEEN_FLAGS,
    "fato_nao_visto": ("unseen",),
    "fato_nd": ("unknown", "nd"),
}


def exposure_breakdown(exposures: dict[str, Exposure], questions: Sequence[Question], scores: dict) -> list[dict]:
    """acerto of each fine-tuned system on the questions its training held (identical/near), on those about an
    article it trained on, and on the unseen ones (Wilson intervals)."""
    return [
        {"system": system, "status": exp.status, **_split_acerto(system, questions, exp.flags, WORDING_GROUPS, scores)}
        for system, exp in exposures.items()
    ]


def fact_breakdown(exposures: dict[str, Exposure], questions: Sequence[Question], scores: dict) -> list[dict]:
    """acerto of each fine-tuned system on the questions whose fact a training answer states (of the same article,
    of another), on those whose fact no training answer states, and on the rest (n/d: no training file or no
    ``respostas_aceitas``), with Wilson intervals."""
    return [
        {"system": system, "status": exp.status, **_split_acerto(system, questions, exp.facts, FACT_GROUPS, scores)}
        for system, exp in exposures.items()
    ]
