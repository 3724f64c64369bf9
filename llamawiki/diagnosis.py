"""Where each RAG answer went wrong: retrieval or generation.

For every answer of a RAG system (``rag``, ``rag+finetuned``): did retrieval bring the question's article
(``artigo``) into the context (the ``sources`` of the answer record: the titles of the chunks the model saw), and
does the context hold the fact (``respostas_aceitas``, at least ``minimo_fatos`` of them, read with acerto's
matcher: :func:`llamawiki.acerto.match_normalize`, :func:`llamawiki.acerto.fact_matches`) — the chunk texts
are the record's ``contexts``, stored when the answer was generated. A wrong answer is then a retrieval failure
(the article was not retrieved, or it was but the chunks given to the model lack the fact) or a generation
failure (the fact was in the context and the answer is still wrong).

An answer cached before ``contexts`` was stored has "n/d" for the fact: the context the model saw (the top ``k``
chunks cut to the character budget and to the generator's window, by its tokenizer) cannot be rebuilt without
loading the retriever and the generator, which rendering the tables never does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .exposure import proportion_stats
from .matching import AcceptedAnswers, fact_matches, match_normalize
from .text import normalize

Question = Any  # report.Question (id, pergunta, artigo, accepted); report imports this module, not the reverse

STAGES = {  # where an answer stands -> how tabela.md says it (a partition of the scored answers)
    "certa": "resposta certa",
    "artigo_ausente": "errada: artigo não recuperado",
    "trecho_ausente": "errada: artigo recuperado, fato fora do contexto",
    "geracao": "errada: fato no contexto",
    "nd": "errada: contexto n/d",
}
CONDITIONS = {  # the acerto splits of the table -> (field, value)
    "com_artigo": ("article", True),
    "sem_artigo": ("article", False),
    "com_fato": ("fact", True),
    "sem_fato": ("fact", False),
}


@dataclass
class RagDiagnosis:
    """One RAG answer: ``article``/``fact`` None when they cannot be told (no ``artigo``; no ``respostas_aceitas``
    or no stored context); ``stage`` None when the answer has no acerto."""

    article: bool | None
    fact: bool | None
    acerto: float | None
    stage: str | None

    def note(self) -> str:
        """The mark next to the answer in tabela.md: "artigo recuperado · fato no contexto"."""
        article = {True: "artigo recuperado", False: "artigo não recuperado", None: "artigo: n/d"}[self.article]
        fact = {True: "fato no contexto", False: "fato fora do contexto", None: "fato no contexto: n/d"}[self.fact]
        return f"{article} · {fact}"

    def as_dict(self) -> dict:
        return {"article": self.article, "fact": self.fact, "acerto": self.acerto, "stage": self.stage}


def context_has_fact(contexts: Sequence[str], accepted: AcceptedAnswers) -> bool:
    """Whether the chunks hold at least ``accepted.required`` of the facts, each in some accepted form (a fact
    counts if any one chunk states it)."""
    norms = [match_normalize(c) for c in contexts]
    found = sum(any(fact_matches(n, alias) for n in norms for alias in fact) for fact in accepted.facts)
    return found >= accepted.required


def diagnose(question: Question, record: dict, acerto: float | None) -> RagDiagnosis:
    """The diagnosis of one RAG answer record (``sources``, ``contexts``) with its acerto."""
    article = None
    if question.artigo:
        target = normalize(question.artigo)
        article = any(normalize(str(s)) == target for s in record.get("sources") or [])
    fact = None
    if question.accepted is not None and record.get("contexts") is not None:
        fact = context_has_fact([str(c) for c in record["contexts"]], question.accepted)
    stage = None
    if acerto is not None:
        if acerto:
            stage = "certa"
        elif fact:
            stage = "geracao"
        elif fact is False and article is False:
            stage = "artigo_ausente"
        elif fact is False and article:
            stage = "trecho_ausente"
        else:
            stage = "nd"
    return RagDiagnosis(article, fact, acerto, stage)


def rag_diagnoses(
    rag_systems: Collection[str], questions: Sequence[Question], answers: dict, scores: dict
) -> dict[tuple[str, str], RagDiagnosis]:
    """(system, question id) -> RagDiagnosis, for every answer of the RAG systems named."""
    out = {}
    for system in rag_systems:
        for q in questions:
            rec = answers.get((system, q.id))
            if rec is not None:
                out[(system, q.id)] = diagnose(q, rec, (scores.get((system, q.id)) or {}).get("acerto"))
    return out


def diagnosis_rows(systems: Sequence[str], diagnoses: dict[tuple[str, str], RagDiagnosis]) -> list[dict]:
    """One row per RAG system: the answers in each stage (counts), acerto overall and split by article retrieved
    or not and fact in the context or not (Wilson intervals), and how many answers have no stored context."""
    rows = []
    for system in systems:
        diags = [d for (s, _), d in diagnoses.items() if s == system]
        if not diags:
            continue
        scored = [d for d in diags if d.acerto is not None]
        row: dict = {"system": system, "n_answers": len(diags), "n": len(scored)}
        for stage in STAGES:
            row[stage] = sum(d.stage == stage for d in scored)
        row["contexto_nd"] = sum(d.fact is None for d in diags)
        row["acerto"] = proportion_stats([d.acerto for d in scored])
        for name, (attr, value) in CONDITIONS.items():
            row[name] = proportion_stats([d.acerto for d in scored if getattr(d, attr) is value])
        rows.append(row)
    return rows


CSV_COLUMNS = ["system", "n_answers", "n", *STAGES, "contexto_nd"] + [
    f"{g}_{k}" for g in ("acerto", *CONDITIONS) for k in ("n", "k", "mean", "low", "high")
]


def flat_row(row: dict) -> dict:
    """A diagnosis row for a CSV: the nested acerto splits as ``<split>_<n|k|mean|low|high>`` columns."""
    out = {k: v for k, v in row.items() if not isinstance(v, dict)}
    for group in ("acerto", *CONDITIONS):
        out.update({f"{group}_{k}": row[group][k] for k in ("n", "k", "mean", "low", "high")})
    return out
