"""Metrics on Portuguese answers: acerto (key-fact accuracy), exact match, SQuAD-style token F1, ROUGE-L, an
"answered in Portuguese" check; Wilson and bootstrap intervals, the paired bootstrap and the exact McNemar test.

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


# --------------------------------------------------------------------------------------------------------------
# acerto: key-fact accuracy
# --------------------------------------------------------------------------------------------------------------
# Token F1 rewards an answer for echoing the question ("A capital do Brasil é Rio de Janeiro." scores 0.67 against
# "A capital do Brasil é Brasília."). acerto asks the only thing that matters for a factual question: does the
# answer state the key fact? Each question lists its accepted answers (column ``respostas_aceitas``):
# ``|`` separates aliases of one fact, ``;`` separates facts that are all required, or at least ``minimo_fatos``.

MONTHS = (
    "janeiro",
    "fevereiro",
    "marco",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)
_UNITS = {
    "zero": 0,
    "um": 1,
    "uma": 1,
    "dois": 2,
    "duas": 2,
    "tres": 3,
    "quatro": 4,
    "cinco": 5,
    "seis": 6,
    "sete": 7,
    "oito": 8,
    "nove": 9,
}
_TEENS = {
    "dez": 10,
    "onze": 11,
    "doze": 12,
    "treze": 13,
    "catorze": 14,
    "quatorze": 14,
    "quinze": 15,
    "dezesseis": 16,
    "dezasseis": 16,
    "dezessete": 17,
    "dezassete": 17,
    "dezoito": 18,
    "dezenove": 19,
    "dezanove": 19,
}
_TENS = {
    "vinte": 20,
    "trinta": 30,
    "quarenta": 40,
    "cinquenta": 50,
    "sessenta": 60,
    "setenta": 70,
    "oitenta": 80,
    "noventa": 90,
}
_HUNDREDS = {
    "cem": 100,
    "cento": 100,
    "duzentos": 200,
    "duzentas": 200,
    "trezentos": 300,
    "trezentas": 300,
    "quatrocentos": 400,
    "quatrocentas": 400,
    "quinhentos": 500,
    "quinhentas": 500,
    "seiscentos": 600,
    "seiscentas": 600,
    "setecentos": 700,
    "setecentas": 700,
    "oitocentos": 800,
    "oitocentas": 800,
    "novecentos": 900,
    "novecentas": 900,
}
_ORDINAL_DAY = {"primeiro": 1, "1o": 1, "1a": 1}
_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_DATE_DOTTED = re.compile(r"\b(\d{1,2})([.-])(\d{1,2})\2(\d{4})\b")  # 07.09.1822, 07-09-1822 (a year is needed)
# An upper-case Roman numeral after a capitalized name: "Pedro I" = "Pedro 1º" = "Pedro 1", "João VI" = "João 6º".
_ROMAN_AFTER_NAME = re.compile(r"\b([A-ZÀ-Ý][a-zà-ÿ]+\.?\s+)([IVX]{1,6})\b(?![\wº°ª])")
_ROMAN = re.compile(r"^(X{0,3})(IX|IV|V?I{0,3})$")
_E_UM = re.compile(r"(?i)\b(e\s+)(um|uma)\b")  # "vinte e um": "um" is a number there, not an article
_UM_NUMBER = "um1"
_ORDINAL = re.compile(r"\b(\d+)\s*[ºª°]|\b(\d+)\.[ºª°]")


def _number_part(t: str) -> tuple[str, int] | None:
    """(kind, value) of one Portuguese number word, or None."""
    if t == _UM_NUMBER:
        return ("units", 1)
    if t == "mil":
        return ("mil", 1000)
    for kind, table in (("hundreds", _HUNDREDS), ("tens", _TENS), ("teens", _TEENS), ("units", _UNITS)):
        if t in table:
            return (kind, table[t])
    return None


def _number_fits(kind: str, total: int, current: int) -> bool:
    """Whether a part of ``kind`` can follow what was read so far (``total`` thousands, ``current`` below them):
    "vinte e seis" yes, "dez e dezesseis" no (two numbers: "entre dez e dezesseis" is not 26)."""
    if kind == "mil":
        return total == 0 and current < 1000
    if kind == "hundreds":
        return current == 0
    if kind in ("tens", "teens"):
        return current % 100 == 0
    return current % 10 == 0 and not 10 <= current % 100 < 20  # units after tens or hundreds, not after teens


def _number_words(tokens: list[str]) -> list[str]:
    """Portuguese number words -> digits: "vinte e sete" -> "27", "mil oitocentos e oitenta e oito" -> "1888".

    "um"/"uma" alone stay words (they are mostly articles); they become 1 only inside a compound ("vinte e um").
    A word that cannot continue the number starts another one: "entre dez e dezesseis" -> "entre 10 e 16".
    """
    out: list[str] = []
    i = 0
    while i < len(tokens):
        j, total, current, parts = i, 0, 0, 0
        while j < len(tokens):
            t = tokens[j]
            if t == "e" and parts and j + 1 < len(tokens):
                nxt = _number_part(tokens[j + 1])
                if nxt is not None and nxt[0] != "mil" and _number_fits(nxt[0], total, current):
                    j += 1
                    continue
                break
            part = _number_part(t)
            if (
                part is None
                or (t in ("um", "uma", _UM_NUMBER) and not parts)
                or not _number_fits(part[0], total, current)
            ):
                break
            if part[0] == "mil":
                total, current = (current or 1) * 1000, 0
            else:
                current += part[1]
            parts += 1
            j += 1
        if parts:
            out.append(str(total + current))
            i = j
        else:
            if tokens[i] != _UM_NUMBER:  # "e um" outside a number: the article, dropped as the others are
                out.append(tokens[i])
            i += 1
    return out


_MARKER = re.compile(r"(?<!\S)(\d{1,2})[.)](?=\s)")


def strip_enumeration(text: str) -> str:
    """Drop the markers of a numbered list ("1. …\n2. …" or "1) … 2) …"), so that an answer listing five items
    does not "contain" the number 5. Only markers that count up from 1 are dropped (at least two of them): a
    sentence ending in a number ("Foram 5. Depois…") keeps it."""
    expected, marked = 1, []
    for m in _MARKER.finditer(text):
        if int(m.group(1)) == expected:
            marked.append(m.span())
            expected += 1
    if len(marked) < 2:
        return text
    out, last = [], 0
    for start, end in marked:
        out.append(text[last:start])
        last = end
    return "".join(out) + text[last:]


def match_normalize(text: str) -> str:
    """The form acerto compares in: :func:`llamawiki.text.normalize` (the one F1 uses: casefold, no accents, no
    punctuation, no articles), with numbers and dates in one spelling.

    - ordinals after digits are dropped: "1º", "1.º", "1ª" -> "1"; "primeiro de janeiro" -> "1 de janeiro";
    - dates: "01/01" -> "1 de janeiro", "13/05/1888" = "13.05.1888" = "13-05-1888" -> "13 de maio de 1888";
    - an upper-case Roman numeral after a capitalized name is a number: "Pedro I" = "Pedro 1º" -> "pedro 1";
    - number words 0–9999: "vinte e sete" -> "27", "dezasseis" -> "16", "cem" -> "100"; two numbers stay two
      ("entre dez e dezesseis" -> "entre 10 e 16");
    - numbered-list markers ("1.", "2.", … counting up) are dropped (:func:`strip_enumeration`).
    """

    def date(m: re.Match) -> str:
        day, month, year = int(m.group(1)), int(m.group(2)), m.group(3)
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return m.group(0)
        return f"{day} de {MONTHS[month - 1]}" + (f" de {year}" if year else "")

    def roman(m: re.Match) -> str:
        r = _ROMAN.match(m.group(2))
        if not r or not m.group(2):
            return m.group(0)
        tens, units = r.group(1), r.group(2)
        value = 10 * len(tens) + {"IX": 9, "IV": 4}.get(units, (5 if units.startswith("V") else 0) + units.count("I"))
        return f"{m.group(1)}{value}"

    text = strip_enumeration(text)
    text = _ORDINAL.sub(lambda m: m.group(1) or m.group(2), text)
    text = _DATE_DOTTED.sub(lambda m: f"{m.group(1)}/{m.group(3)}/{m.group(4)}", text)
    text = _DATE.sub(date, text)
    text = _ROMAN_AFTER_NAME.sub(roman, text)
    text = _E_UM.sub(lambda m: m.group(1) + _UM_NUMBER, text)
    tokens = normalize(text, drop_articles=True).split()
    tokens = [str(int(t)) if t.isdigit() else t for t in tokens]  # "01" -> "1"
    for n, t in enumerate(tokens):
        if t in _ORDINAL_DAY and n + 2 < len(tokens) and tokens[n + 1] == "de" and tokens[n + 2] in MONTHS:
            tokens[n] = str(_ORDINAL_DAY[t])
    return " ".join(_number_words(tokens))


@dataclass(frozen=True)
class AcceptedAnswers:
    """The key facts of a question: ``facts[i]`` is the aliases of fact i; ``minimum`` None = all facts."""

    facts: tuple[tuple[str, ...], ...]
    minimum: int | None = None

    @classmethod
    def parse(cls, text: str, minimum: str | int | None = None) -> AcceptedAnswers:
        """``"Castelo Branco;Médici|Emílio Médici"`` (+ ``minimo_fatos``). ValueError on an empty alias or fact,
        or a minimum outside 1..number of facts."""
        text = (text or "").strip()
        if not text:
            raise ValueError("respostas_aceitas is empty")
        facts = []
        for n, fact in enumerate(text.split(";"), 1):
            aliases = tuple(a.strip() for a in fact.split("|"))
            if not all(match_normalize(a) for a in aliases):
                raise ValueError(f"respostas_aceitas: fact {n} has an empty alias ({text!r})")
            facts.append(aliases)
        if minimum is not None and str(minimum).strip() != "":
            s = str(minimum).strip()
            if not s.isdigit() or not 1 <= int(s) <= len(facts):
                raise ValueError(
                    f"minimo_fatos: must be a whole number from 1 to {len(facts)} (the facts listed), got {s!r}"
                )
            minimum = int(s)
        else:
            minimum = None
        return cls(tuple(facts), minimum)

    @property
    def required(self) -> int:
        return self.minimum if self.minimum is not None else len(self.facts)

    def __str__(self) -> str:
        text = ";".join("|".join(f) for f in self.facts)
        return text + (f" (mínimo {self.minimum})" if self.minimum is not None else "")


def fact_matches(answer_norm: str, alias: str) -> bool:
    """Whether ``alias`` occurs as whole words in an answer already in :func:`match_normalize` form."""
    needle = match_normalize(alias)
    return bool(needle) and f" {needle} " in f" {answer_norm} "


def facts_found(answer: str, accepted: AcceptedAnswers) -> int:
    """How many of the facts the answer states (through any alias)."""
    norm = match_normalize(answer)
    return sum(any(fact_matches(norm, a) for a in fact) for fact in accepted.facts)


def key_fact_correct(answer: str, accepted: AcceptedAnswers) -> bool:
    """acerto for one answer: at least ``accepted.required`` of its facts are stated."""
    return facts_found(answer, accepted) >= accepted.required


def reference_supports(accepted: AcceptedAnswers, reference: str) -> list[str]:
    """The facts (by their first alias) that appear in no form in ``reference``: a check on the question file."""
    norm = match_normalize(reference)
    return [fact[0] for fact in accepted.facts if not any(fact_matches(norm, a) for a in fact)]


def answer_words(answer: str) -> int:
    return len((answer or "").split())


_LIST_SPLIT = re.compile(r"\s*(?:[,;\n•·]|(?<!\S)[-*–](?=\s)|(?<!\d)\b\d{1,2}[.)](?=\s)|\bou\b|\be\b)\s*")


def is_candidate_list(answer: str, accepted: AcceptedAnswers | None = None) -> bool:
    """Flag an answer that is mostly a list of candidates, which acerto may count as correct by luck
    ("Rio de Janeiro, São Paulo, Brasília, Salvador e Recife." contains "Brasília").

    The rule: split the answer on commas, semicolons, new lines, bullets, numbered-list markers ("1.", "2)"),
    "e" and "ou"; the answer is a list when it has at least 4 *distinct* short items (at most 4 words each) and
    the short items hold at least 60% of its words. A question that asks for several facts allows that many more
    items before the flag (5 military presidents are an answer, not a guess). Repeating one item ("26 estados" ten
    times) is not a list, and neither is a normal sentence with a comma or two.
    """
    text = (answer or "").strip()
    if not text:
        return False
    extra = max(0, len(accepted.facts) - 1) if accepted else 0
    items = [normalize(i) for i in _LIST_SPLIT.split(text)]
    items = [i for i in items if i]
    short = {i for i in items if len(i.split()) <= 4}
    short_words = sum(len(i.split()) for i in items if len(i.split()) <= 4)
    return len(short) >= 4 + extra and short_words >= 0.6 * sum(len(i.split()) for i in items)


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


def score_answer(prediction: str, reference: str, accepted: AcceptedAnswers | None = None) -> dict:
    """Every metric of one answer, plus its length and the candidate-list flag. A metric that cannot be computed
    is None: acerto without accepted answers, EM/F1/ROUGE-L without a reference."""
    has_ref = bool(reference and reference.strip())
    return {
        "acerto": float(key_fact_correct(prediction, accepted)) if accepted is not None else None,
        "exact_match": exact_match(prediction, reference) if has_ref else None,
        "token_f1": token_f1(prediction, reference) if has_ref else None,
        "rouge_l": rouge_l(prediction, reference) if has_ref else None,
        "portugues": float(is_portuguese(prediction)),
        "palavras": answer_words(prediction),
        "lista": is_candidate_list(prediction, accepted),
    }
