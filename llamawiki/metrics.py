"""Metrics on Portuguese answers: exact match, SQuAD-style token F1, ROUGE-L, an "answered in Portuguese" check;
Wilson and bootstrap intervals, the paired bootstrap and the exact McNemar test; and :func:`score_answer`, every
score of one answer, acerto (key-fact accuracy, :mod:`llamawiki.acerto`) included.

Every metric compares texts in the one normalization of :mod:`llamawiki.text` (casefold, no accents, no
punctuation, no articles), so a metric never disagrees with the split or BM25 on what a word is.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .acerto import judge_acerto
from .matching import AcceptedAnswers, is_candidate_list
from .text import normalize


def normalized_tokens(text: str) -> list[str]:
    """Answer tokens: :func:`llamawiki.text.normalize` with the articles dropped (the SQuAD recipe)."""
    return normalize(text, drop_articles=True).split()


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalized texts are identical, else 0.0."""
    return float(normalize(prediction, drop_articles=True) == normalize(reference, drop_articles=True))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1: harmonic mean of precision and recall of the shared (multiset) normalized tokens."""
    pred, ref = normalized_tokens(prediction), normalized_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (dynamic programming, O(len(a)*len(b)) time, O(len(b)) memory)."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (beta = 1) on normalized tokens: LCS / len as precision and recall."""
    pred, ref = normalized_tokens(prediction), normalized_tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


# Function words that mark a language. Words shared by both languages ("a", "as", "no", "do", "me", "i", "for")
# are in neither list: they prove nothing.
PT_WORDS = frozenset(
    """
de da das dos em na nas nos num numa o os um uma uns umas e é que não com por para pelo pela pelos pelas ao aos à às
foi foram era eram ser são está estão estava tem têm teve há mas ou se seu sua seus suas ele ela eles elas isso isto
este esta esse essa aquele aquela como quando onde qual quais quem também muito muita mais menos entre sobre até após
depois antes desde durante sem sim ainda já pois porque então cujo cuja nem lhe eu você nós
""".split()
)
EN_WORDS = frozenset(
    """
the of and is are was were be been being to in on at by with from that this these those it its it's which who whom
what when where why how an or not but their they them he she his her him there has have had would could should can
will shall into than then also after before during about because while such other some any only first i'm don't
doesn't didn't can't isn't wasn't know based provided following answer question context
""".split()
)
PT_DIACRITICS = frozenset("áàâãéêíóôõúç")
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@dataclass
class LanguageCheck:
    is_portuguese: bool
    score: float  # (pt + 0.5) / (pt + en + 1): 0.5 means no evidence either way
    pt_evidence: float  # Portuguese function words + 0.5 per word with a Portuguese diacritic
    en_evidence: float  # English function words


def language_check(text: str) -> LanguageCheck:
    """Did the answer come in Portuguese? A small, explainable rule (the study's RAG often answered in English).

    Evidence for Portuguese = Portuguese function words (``de, que, não, foi, em, ...``) + 0.5 for each word
    carrying a Portuguese diacritic (``ã õ ç á é ...``). Evidence for English = English function words (``the,
    of, is, was, ...``). Words common to both languages (``a, as, no, do``) count for neither.

    The answer is Portuguese when the Portuguese evidence is at least the English evidence. Short answers: an
    answer with no function word at all (a name, a number, a date: "Brasília.", "Dilma Rousseff.", "1822") is
    language-neutral and counts as Portuguese (it shows nothing of another language); an answer with no letters
    and no digits (empty) does not. ``score`` = (pt + 0.5) / (pt + en + 1), so a tie scores 0.5.
    """
    words = [w.casefold() for w in _WORD_RE.findall(text)]
    if not words and not any(ch.isdigit() for ch in text):
        return LanguageCheck(False, 0.0, 0.0, 0.0)
    pt = sum(w in PT_WORDS for w in words) + 0.5 * sum(any(ch in PT_DIACRITICS for ch in w) for w in words)
    en = float(sum(w in EN_WORDS for w in words))
    return LanguageCheck(pt >= en, (pt + 0.5) / (pt + en + 1.0), pt, en)


def is_portuguese(text: str) -> bool:
    return language_check(text).is_portuguese


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap confidence interval of the mean, deterministic for a seed.

    Empty input gives NaNs; one value gives a zero-width interval.
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = sum(values) / n
    if n == 1:
        return (mean, mean, mean)
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(n_resamples))
    alpha = (1.0 - confidence) / 2.0
    lo = means[max(0, min(n_resamples - 1, int(math.floor(alpha * n_resamples))))]
    hi = means[max(0, min(n_resamples - 1, int(math.ceil((1.0 - alpha) * n_resamples)) - 1))]
    return (mean, min(lo, mean), max(hi, mean))


def answer_words(answer: str) -> int:
    return len((answer or "").split())


# --------------------------------------------------------------------------------------------------------------
# Intervals and paired tests
# --------------------------------------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n: never collapses at 0 or n (19/19 -> [0.83, 1.00])."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _z(confidence)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: b, c = the discordant pairs (right only in A, right only in B);
    min(1, 2·P[X ≤ min(b, c)]) with X ~ Binomial(b + c, 1/2). No discordant pair -> 1.0."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2.0 * tail)


def paired_bootstrap_diff(
    x: Sequence[float], y: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(mean(x - y), low, high): percentile bootstrap of the mean difference, resampling questions jointly (x[i]
    and y[i] are two systems' scores on the same question)."""
    if len(x) != len(y):
        raise ValueError("paired samples must have the same length")
    return bootstrap_ci(
        [a - b for a, b in zip(x, y, strict=True)], n_resamples=n_resamples, confidence=confidence, seed=seed
    )


# --------------------------------------------------------------------------------------------------------------
# All the scores of one answer
# --------------------------------------------------------------------------------------------------------------

METRICS = {  # name -> (label in tables, kind): "proportion" gets a Wilson interval, "mean" a bootstrap one
    "acerto": ("acerto", "proportion"),
    "exact_match": ("EM", "proportion"),
    "token_f1": ("F1", "mean"),
    "rouge_l": ("ROUGE-L", "mean"),
    "portugues": ("em português", "proportion"),
    "juiz": ("juiz", "proportion"),  # the optional judge model's verdicts (evaluation.judge_answers)
}


def score_answer(
    prediction: str,
    reference: str,
    accepted: AcceptedAnswers | None = None,
    *,
    wrong: Sequence[str] = (),
    question: str = "",
    tipo: str = "",
    context: Sequence[str] | None = None,
) -> dict:
    """Every metric of one answer, plus its length, the candidate-list flag and the check that decided acerto
    (``acerto_regra``, ``acerto_detalhe``: :func:`judge_acerto`; ``context``, the chunk texts a RAG answer was
    given, tells a pasted passage). A metric that cannot be computed is None: acerto (and its check) without
    accepted answers, EM/F1/ROUGE-L without a reference."""
    has_ref = bool(reference and reference.strip())
    verdict = judge_acerto(prediction, accepted, wrong, question, tipo, context) if accepted is not None else None
    return {
        "acerto": float(verdict.correct) if verdict is not None else None,
        "acerto_regra": verdict.check if verdict is not None else None,
        "acerto_detalhe": verdict.detail if verdict is not None else None,
        "exact_match": exact_match(prediction, reference) if has_ref else None,
        "token_f1": token_f1(prediction, reference) if has_ref else None,
        "rouge_l": rouge_l(prediction, reference) if has_ref else None,
        "portugues": float(is_portuguese(prediction)),
        "palavras": answer_words(prediction),
        "lista": is_candidate_list(prediction, accepted),
    }
