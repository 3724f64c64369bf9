"""The accepted answers of a question and the one spelling answers and forms are compared in (issue 23).

- :class:`AcceptedAnswers`: ``|`` aliases of one fact, ``;`` facts, ``minimo_fatos``;
- :func:`match_normalize`: numbers, dates, Roman numerals, English dates and magnitudes, numbered-list markers;
- :func:`fact_matches` / :func:`facts_found`: does the normalized answer hold a form;
- :func:`reference_supports`: which facts a question's reference answer states (data/check_questions.py);
- :func:`is_candidate_list`: the candidate-list flag of the tables.

acerto's named checks, which read an answer with these, are in :mod:`llamawiki.acerto`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import MONTHS_PT, normalize, strip_accents

# --------------------------------------------------------------------------------------------------------------
# acerto: key-fact accuracy
# --------------------------------------------------------------------------------------------------------------
# Token F1 rewards an answer for echoing the question ("A capital do Brasil é Rio de Janeiro." scores 0.67 against
# "A capital do Brasil é Brasília."). acerto asks the only thing that matters for a factual question: does the
# answer state the key fact? Each question lists its accepted answers (column ``respostas_aceitas``):
# ``|`` separates aliases of one fact, ``;`` separates facts that are all required, or at least ``minimo_fatos``.

MONTHS = tuple(strip_accents(m) for m in MONTHS_PT)  # "marco": the normalized spelling
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
# English, which the study's Llama 2 answers in more often than not (docs/compare.md: "outra língua: o fato conta"):
# dates and magnitudes in the Portuguese spelling, so "September 7, 1822" = "7 de setembro de 1822" and
# "203 million" = "203 milhões". A month name counts only with its capital ("may" is a verb).
_EN_MONTHS = dict(
    zip(
        "January February March April May June July August September October November December".split(),
        MONTHS,
        strict=True,
    )
)
_EN_MONTH = "(" + "|".join(_EN_MONTHS) + ")"
_EN_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_EN_DATE_MDY = re.compile(rf"\b{_EN_MONTH}\s+{_EN_DAY}\b(?:,?\s+(\d{{3,4}})\b)?")  # September 7(th)(, 1822)
_EN_DATE_DMY = re.compile(rf"\b{_EN_DAY}\s+(?:of\s+)?{_EN_MONTH}\b(?:,?\s+(\d{{3,4}})\b)?")  # 7(th) (of) September
_EN_MONTH_ONLY = re.compile(rf"\b{_EN_MONTH}\b(?:,?\s+(\d{{3,4}})\b)?")  # (in) September( 1822)
_EN_MAGNITUDES = {"million": "milhoes", "millions": "milhoes", "billion": "bilhoes", "billions": "bilhoes"}
_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b")
_DATE_DOTTED = re.compile(r"\b(\d{1,2})([.-])(\d{1,2})\2(\d{4})\b")  # 07.09.1822, 07-09-1822 (a year is needed)
# An upper-case Roman numeral after a capitalized name: "Pedro I" = "Pedro 1º" = "Pedro 1", "João VI" = "João 6º".
_ROMAN_AFTER_NAME = re.compile(r"\b([A-ZÀ-Ý][a-zà-ÿ]+\.?\s+)([IVX]{1,6})\b(?![\wº°ª])")
_ROMAN = re.compile(r"^(X{0,3})(IX|IV|V?I{0,3})$")
_E_UM = re.compile(r"(?i)\b(e\s+)(um|uma)\b")  # "vinte e um": "um" is a number there, not an article
_UM_NUMBER = "um1"
_ORDINAL = re.compile(r"\b(\d+)\s*[ºª°]|\b(\d+)\.[ºª°]")
# A count of a million or more in digits, in groups of three ("203 080 756", "203.080.756", "203,080,756") or not
# ("203080756"), is also read as its magnitude, the way the accepted forms write it: "203 milhoes" (millions cut,
# not rounded: "cerca de 203 milhões" for 203 080 756).
_BIG_NUMBER = re.compile(r"(?<![\d.,])(\d{1,3}(?:([ .,\u00a0\u202f])\d{3})(?:\2\d{3})+|\d{7,12})(?![\d]|[.,]\d)")


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


def strip_enumeration(text: str, replacement: str = "") -> str:
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
        out.append(text[last:start] + replacement)
        last = end
    return "".join(out) + text[last:]


_LETTER = re.compile(r"(?<![^\s:])([a-h])[.)](?=\s)")


def split_lettered(text: str) -> list[str]:
    """The options of a lettered list ("a) … b) … c) …" or "a. … b. …"): the text before the first marker, then one
    piece per option. Only markers that run a, b, c, … in order count, and at least three of them (a multiple-choice
    list); anything else is one piece."""
    expected, marked = "a", []
    for m in _LETTER.finditer(text):
        if m.group(1) == expected:
            marked.append(m.span())
            expected = chr(ord(expected) + 1)
    if len(marked) < 3:
        return [text]
    out, last = [], 0
    for start, end in marked:
        out.append(text[last:start])
        last = end
    return [*out, text[last:]]


def _magnitude(m: re.Match) -> str:
    value = int(re.sub(r"\D", "", m.group(1)))
    if value >= 10**9:
        return f"{value} ({value // 10**9} bilhoes)"
    return f"{value} ({value // 10**6} milhoes)"


def match_normalize(text: str) -> str:
    """The form acerto compares in: :func:`llamawiki.text.normalize` (the one F1 uses: casefold, no accents, no
    punctuation, no articles), with numbers and dates in one spelling.

    - ordinals after digits are dropped: "1º", "1.º", "1ª" -> "1"; "primeiro de janeiro" -> "1 de janeiro";
    - dates: "01/01" -> "1 de janeiro", "13/05/1888" = "13.05.1888" = "13-05-1888" -> "13 de maio de 1888";
    - an upper-case Roman numeral after a capitalized name is a number: "Pedro I" = "Pedro 1º" -> "pedro 1";
    - number words 0–9999: "vinte e sete" -> "27", "dezasseis" -> "16", "cem" -> "100"; two numbers stay two
      ("entre dez e dezesseis" -> "entre 10 e 16");
    - numbered-list markers ("1.", "2.", … counting up) are dropped (:func:`strip_enumeration`);
    - English dates and magnitudes: "September 7, 1822" = "7th of September 1822" -> "7 de setembro de 1822",
      "203 million" -> "203 milhoes";
    - a count of a million or more in digits is followed by its magnitude: "203 080 756" -> "203080756 203 milhoes".
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

    def en_date(day: str | None, month: str, year: str | None) -> str:
        if day is not None and not 1 <= int(day) <= 31:
            return f"{day} {_EN_MONTHS[month]}" + (f" {year}" if year else "")
        out = f"{int(day)} de " if day is not None else ""
        return out + _EN_MONTHS[month] + (f" de {year}" if year else "")

    text = strip_enumeration(text)
    text = _EN_DATE_MDY.sub(lambda m: en_date(m.group(2), m.group(1), m.group(3)), text)
    text = _EN_DATE_DMY.sub(lambda m: en_date(m.group(1), m.group(2), m.group(3)), text)
    text = _EN_MONTH_ONLY.sub(lambda m: en_date(None, m.group(1), m.group(2)), text)
    text = _ORDINAL.sub(lambda m: m.group(1) or m.group(2), text)
    text = _DATE_DOTTED.sub(lambda m: f"{m.group(1)}/{m.group(3)}/{m.group(4)}", text)
    text = _DATE.sub(date, text)
    text = _ROMAN_AFTER_NAME.sub(roman, text)
    text = _E_UM.sub(lambda m: m.group(1) + _UM_NUMBER, text)
    text = _BIG_NUMBER.sub(_magnitude, text)
    tokens = normalize(text, drop_articles=True).split()
    tokens = [str(int(t)) if t.isdigit() else _EN_MAGNITUDES.get(t, t) for t in tokens]  # "01" -> "1"
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


def reference_supports(accepted: AcceptedAnswers, reference: str) -> list[str]:
    """The facts (by their first alias) that appear in no form in ``reference``: a check on the question file."""
    norm = match_normalize(reference)
    return [fact[0] for fact in accepted.facts if not any(fact_matches(norm, a) for a in fact)]


_HEDGE_OU = re.compile(r"(?i)\b(?:ou|or)\b(?!\s+(?:seja|melhor|mesmo)\b)")
_LIST_SPLIT = re.compile(r"\s*(?:[,;\n•·]|(?<!\S)[-*–](?=\s)|(?<!\d)\b\d{1,2}[.)](?=\s)|\bou\b|\be\b)\s*")


def is_candidate_list(answer: str, accepted: AcceptedAnswers | None = None) -> bool:
    """Flag an answer that is mostly a list of candidates, which acerto may count as correct by luck
    ("Rio de Janeiro, São Paulo, Brasília, Salvador e Recife." contains "Brasília").

    The rule: split the answer on commas, semicolons, new lines, bullets, numbered-list markers ("1.", "2)"),
    "e" and "ou"; the answer is a list when it has at least 4 *distinct* short items (at most 4 words each) and
    the short items hold at least 60% of its words; 3 items (of up to 5 words) are enough when "ou" joins
    them ("Pode ser Rio de Janeiro, São Paulo ou Brasília": a hedge). A question that asks for several facts
    allows that many more items before the flag (5 military presidents are an answer, not a guess). Repeating
    one item ("26 estados" ten times) is not a list, and neither is a normal sentence with a comma or two.
    """
    text = (answer or "").strip()
    if not text:
        return False
    extra = max(0, len(accepted.facts) - 1) if accepted else 0
    items = [normalize(i) for i in _LIST_SPLIT.split(text)]
    items = [i for i in items if i]
    hedge = bool(_HEDGE_OU.search(text))  # "Pode ser X, Y ou Z": a hedge between three candidates is a list
    size = 5 if hedge else 4
    short = {i for i in items if len(i.split()) <= size}
    short_words = sum(len(i.split()) for i in items if len(i.split()) <= size)
    return len(short) >= (3 if hedge else 4) + extra and short_words >= 0.6 * sum(len(i.split()) for i in items)
