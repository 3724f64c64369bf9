"""Metrics on Portuguese answers: exact match, SQuAD-style token F1, ROUGE-L, an "answered in Portuguese" check
and a seeded bootstrap confidence interval.

Every metric compares texts in the one normalization of :mod:`llamawiki.text` (casefold, no accents, no
punctuation, no articles), so a metric never disagrees with the split or BM25 on what a word is.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

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
PT_WORDS = frozenset("""
de da das dos em na nas nos num numa o os um uma uns umas e é que não com por para pelo pela pelos pelas ao aos à às
foi foram era eram ser são está estão estava tem têm teve há mas ou se seu sua seus suas ele ela eles elas isso isto
este esta esse essa aquele aquela como quando onde qual quais quem também muito muita mais menos entre sobre até após
depois antes desde durante sem sim ainda já pois porque então cujo cuja nem lhe eu você nós
""".split())
EN_WORDS = frozenset("""
the of and is are was were be been being to in on at by with from that this these those it its it's which who whom
what when where why how an or not but their they them he she his her him there has have had would could should can
will shall into than then also after before during about because while such other some any only first i'm don't
doesn't didn't can't isn't wasn't know based provided following answer question context
""".split())
PT_DIACRITICS = frozenset("áàâãéêíóôõúç")
_WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


@dataclass
class LanguageCheck:
    is_portuguese: bool
    score: float          # (pt + 0.5) / (pt + en + 1): 0.5 means no evidence either way
    pt_evidence: float    # Portuguese function words + 0.5 per word with a Portuguese diacritic
    en_evidence: float    # English function words


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


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float, float]:
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


METRICS = {  # name -> (label in tables, function(prediction, reference) -> float)
    "exact_match": ("EM", exact_match),
    "token_f1": ("F1", token_f1),
    "rouge_l": ("ROUGE-L", rouge_l),
    "portugues": ("Em português", lambda prediction, reference: float(is_portuguese(prediction))),
}


def score_answer(prediction: str, reference: str) -> dict[str, float | None]:
    """Every metric for one answer; the reference-based ones are None without a reference."""
    has_ref = bool(reference and reference.strip())
    scores: dict[str, float | None] = {}
    for name, (_, fn) in METRICS.items():
        scores[name] = fn(prediction, reference) if (has_ref or name == "portugues") else None
    return scores
