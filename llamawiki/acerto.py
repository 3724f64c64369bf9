"""acerto, the key-fact accuracy of an answer (issue 23): does the answer *assert* the fact the question asks?

:func:`judge_acerto`: plain rules on the normalized answer (:mod:`llamawiki.matching`), each one named
(:data:`CHECKS`), the first that applies decides, with a one-line reason (:class:`Verdict`). The answer is read
into tokens, clauses, sentences and where each comes from by :func:`llamawiki.answer_parse.parse`; a RAG answer's
retrieved context, when known, tells a passage pasted from its header (:func:`llamawiki.pasted.pasted_context`).

Its agreement with hand labels is measured by bench/bench_acerto.py (docs/compare.md, "Rótulos à mão").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from .answer_parse import IS, parse, similar, weighty
from .matching import MONTHS, AcceptedAnswers, match_normalize
from .pasted import pasted_context
from .text import STOPWORDS_PT

# --------------------------------------------------------------------------------------------------------------
# acerto's checks (issue 23): plain rules on the normalized answer, each one named, the first that applies decides
# --------------------------------------------------------------------------------------------------------------
# "Contains the fact" was easy to fool: "A capital não é Brasília", "Pode ser Rio, São Paulo ou Brasília", the
# fact only inside an echoed "### Input:", "Pedro II, filho de Pedro I". judge_acerto reads the answer in
# sentences and clauses and asks, with one small named rule each, whether the fact is *asserted* as the answer.

CHECKS = {  # name -> what it means (the Portuguese shown in tables and docs/compare.md)
    "fato": "afirma o fato pedido (ou o mínimo de fatos)",
    "sem-fato": "nenhuma forma aceita na resposta",
    "fatos-insuficientes": "menos fatos que o mínimo pedido",
    "negacao": 'nega o fato ("não é X"), ou o afirma e também o nega',
    "de-passagem": 'o fato só aparece citado de passagem ("filho de X", "sucessor de X")',
    "eco": "o fato só aparece no eco do prompt (### Input:, Contexto:, …), no trecho do contexto colado ou num"
    " cabeçalho de trecho (Título — Seção)",
    "pergunta": "o fato só aparece numa pergunta, no eco da pergunta, na resposta a uma pergunta que a própria resposta"
    " inventou, ou numa forma que a própria pergunta contém",
    "data-errada": "ano certo com dia ou mês errado, quando a pergunta aceita a data",
    "hesitacao": 'hesita entre o fato e outro candidato ("X ou Y")',
    "lista": "lista candidatos sem escolher um, ou mistura fatos certos e outros itens na lista",
    "candidato-errado": "também afirma um candidato errado conhecido (coluna respostas_erradas), outro ano, outra"
    ' duração, ou outro nome depois de "é/foi" numa frase sobre o que se pergunta',
    "muitos-anos": "o ano certo está entre muitos anos, numa oração que não fala do que se pergunta",
}


@dataclass(frozen=True)
class Verdict:
    """acerto of one answer: correct or not, the named check that decided (a key of :data:`CHECKS`) and one
    short Portuguese line saying why ("nega 'Brasília'", "também afirma 'Pedro II'")."""

    correct: bool
    check: str
    detail: str = ""


# The words of the checks are Portuguese with the few English ones that answers in English need (acerto reads an
# answer in English too: "outra língua: o fato conta"): "not", "is", "or", "but", "son of" …
# ("isn't" is "isn t" once punctuation is gone: the contraction's first half negates)
_NEGATORS = frozenset(
    {"nao", "nem", "nunca", "jamais", "not", "never", "nor", "isn", "wasn", "aren", "weren", "didn", "doesn"}
)
_EN_COPULAS = frozenset({"is", "was", "are", "were"})  # also the English order "X is not": see negated()
_COPULAS = frozenset({IS, "e", "foi", "era", "sao", "foram", "eram", "seria", "sera", "esta", "estava"}) | _EN_COPULAS
_EXCEPT = frozenset({"exceto", "excepto", "salvo", "except", "excluindo"})
_NONE = frozenset({"nenhum", "nenhuma", "ninguem", "nada", "none", "nobody", "nothing"})  # "nenhum …, exceto X"
_NOT_A_NEGATION = frozenset(  # "não só X", "não há dúvida de que X", "not only X", "not until 1822"
    {"so", "apenas", "somente", "que", "only", "just", "until", "till"}
)
_NEGATION_STOP = frozenset(  # "não X, e sim Y", "not X but Y": Y is asserted
    {"mas", "sim", "porem", "contudo", "entretanto", "but", "rather"}
)
_AND, _OR = frozenset({"e", "and"}), frozenset({"ou", "or"})
_RELATION_FAMILIES = (  # a relation and its converse: a question about one makes the other an answer
    "pai mae pais filho filha filhos filhas father mother parents son daughter sons daughters",
    "avo avos neto neta netos grandfather grandmother grandson granddaughter",
    "irmao irma irmaos brother sister",
    "esposa esposo marido mulher viuva viuvo wife husband widow",
    "sucessor sucessora antecessor antecessora sucedeu sucedido sucedida herdeiro herdeira substituiu successor"
    " predecessor succeeded heir",
    "tio tia sobrinho sobrinha",
    "primo prima",
    "genro nora sogro sogra",
    "vizinho vizinha vizinhos",
)
_RELATIONS = {w: n for n, family in enumerate(_RELATION_FAMILIES) for w in family.split()}
_RELATION_OF = frozenset({"de", "do", "da", "dos", "das", "por", "of", "by"})
_TIME_SHIFT = frozenset({"antes", "antiga", "antigo", "antigamente", "anterior", "anteriormente", "ex", "ate"})
_QUESTION_WORDS = frozenset(
    "qual quais quem quando onde como quanto quantos quantas ano anos data nome cite diga explique fale".split()
)
_LIST_STOP = frozenset(
    """de do da dos das em no na nos nas por pelo pela para com sem sob sobre entre ate apos desde que qual onde
    quando como pois porque mas se foi e era sao foram ser seu sua seus suas este esta esse essa isso isto todos
    todas cada outro outros outra outras ele ela eles elas ou nao""".split()
)
_CONNECTIVES = frozenset({"que", "qual", "onde", "quando", "cujo", "cuja", "como", "pois", "porque", "mas"})
_LIST_VERBS = frozenset({"incluem", "inclui", "incluiam", "como"})  # besides the copulas: what opens a list
_NAME_PARTICLES = frozenset({"de", "da", "do", "dos", "das", "e"})
_OF_THE = frozenset({"do", "da", "dos", "das"})
_HEDGE_STOP = frozenset({"seja", "melhor", "mesmo"})  # "ou seja", "ou melhor", "ou mesmo" join no candidates
_YEAR = re.compile(r"^\d{3,4}$")
_FULL_DATE = re.compile(r"^\d{1,2} de [a-z]+ de \d{3,4}$")  # "10 de novembro de 1937", normalized
_DURATION = re.compile(r"^(\d+) (?:anos|years)$")
_RANGE_WORDS = frozenset({"ate", "e", "to", "until", "and"})  # "a" (de 1930 a 1945) is dropped as an article
_ASKS_START = frozenset("comecou comeco comecaram inicio iniciou iniciada iniciado began begin start started".split())
_ASKS_END = frozenset("terminou termino fim acabou encerrou encerrada encerrado ended end".split())
_TIME_UNITS = {  # a unit of time, singular or plural, Portuguese or English -> one name
    **dict.fromkeys("ano anos year years".split(), "ano"),
    **dict.fromkeys("mes meses month months".split(), "mes"),
    **dict.fromkeys("semana semanas week weeks".split(), "semana"),
    **dict.fromkeys("dia dias day days".split(), "dia"),
}
_FRAME = 3  # the words that open a sentence: 3+ sentences opening alike are one frame (see _parallel)


def _variants(word: str) -> set[str]:
    """Gender and number forms of a lower-case accepted word (an adjective or a demonym): "mineiro" -> mineira,
    mineiros, mineiras; "portugues" -> portuguesa, portugueses; "federal" -> federais."""
    out = {word}
    if len(word) < 4 or not word.isalpha():
        return out
    for sing, forms in (("os", ("o", "a", "as")), ("as", ("a", "o", "os")), ("o", ("a", "os", "as"))):
        if word.endswith(sing):
            stem = word[: -len(sing)]
            out |= {stem + f for f in forms}
            return out
    if word.endswith("a"):
        out |= {word[:-1] + f for f in ("o", "os", "as")}
    elif word.endswith("es"):
        out |= {word + "a", word + "es", word + "as"}
    elif word.endswith("e"):
        out.add(word + "s")
    elif word.endswith("l"):
        out.add(word[:-1] + "is")
    elif word.endswith(("r", "z")):
        out.add(word + "es")
    elif word.endswith("m"):
        out.add(word[:-1] + "ns")
    return out


def _pattern(alias: str) -> tuple[frozenset[str], ...]:
    """The token pattern of an accepted form or a wrong candidate. A form written in lower case (an adjective, a
    demonym: "mineiro") also matches its gender and number forms; a name keeps its exact spelling."""
    tokens = match_normalize(alias).split()
    inflect = alias == alias.lower() and any(ch.isalpha() for ch in alias)
    return tuple(frozenset(_variants(t) if inflect else {t}) for t in tokens)


def _find(tokens: Sequence[str], pattern: tuple[frozenset[str], ...]) -> list[tuple[int, int]]:
    n = len(pattern)
    if not n:
        return []
    return [(i, i + n) for i in range(len(tokens) - n + 1) if all(tokens[i + k] in pattern[k] for k in range(n))]


@dataclass
class _Occurrence:
    start: int
    end: int
    form: str  # the accepted form or wrong candidate as written in the question file


class _Judge:
    """The state of one judgement: the parsed answer, the question's words, the spans of every candidate."""

    def __init__(self, answer: str, question: str, context: str | Sequence[str] | None = None):
        self.question_norm = match_normalize(question or "")
        self.question_tokens = self.question_norm.split()
        self.p = parse(answer, self.question_tokens, pasted_context(answer, context), context)
        self.stems = {w[:5] for w in self.question_tokens if weighty(w) and w not in _QUESTION_WORDS}
        self.relations_asked = {_RELATIONS[w] for w in self.question_tokens if w in _RELATIONS}
        self.question_negative = any(w in _NEGATORS for w in self.question_tokens)
        # a question about when something began ("Em que ano começou a Nova República?") or ended
        self.asks_start = any(w in _ASKS_START for w in self.question_tokens)
        self.asks_end = any(w in _ASKS_END for w in self.question_tokens)
        self.spans: list[tuple[int, int]] = []  # every candidate span (accepted or wrong): lists and negation
        self.fact_positions: set[int] = set()  # the token positions of every accepted form found

    def in_question(self, form: str) -> bool:
        needle = match_normalize(form)
        return bool(needle) and f" {needle} " in f" {self.question_norm} "

    def occurrences(self, forms: Sequence[str]) -> list[_Occurrence]:
        out = []
        for form in forms:
            out += [_Occurrence(s, e, form) for s, e in _find(self.p.tokens, _pattern(form))]
            out += [_Occurrence(s, e, form) for s, e in self._year_ranges(form)]
        return out

    @cached_property
    def ranges(self) -> dict[int, int]:
        """Ranges of years, first year -> last year (token positions): two years side by side ("1930–1945") or
        with a range word between ("de 1930 a 1945", "entre 1930 e 1945", "from 1930 to 1945")."""
        t, out = self.p.tokens, {}
        for i in range(len(t) - 1):
            j = i + 2 if t[i + 1] in _RANGE_WORDS else i + 1
            if j < len(t) and _YEAR.match(t[i]) and _YEAR.match(t[j]):
                out[i] = j
        return out

    def _year_ranges(self, form: str) -> list[tuple[int, int]]:
        """A duration ("15 anos") is also stated by a range of years that long (:attr:`ranges`)."""
        m = _DURATION.match(match_normalize(form))
        if not m:
            return []
        t, years = self.p.tokens, int(m.group(1))
        return [(i, j + 1) for i, j in self.ranges.items() if int(t[j]) - int(t[i]) == years]

    def range_near(self, o: _Occurrence, asked: set[tuple[int, str]]) -> bool:
        """Is ``o`` a range of years a year off at most a length ``asked`` (:func:`_asked_lengths`)? Such a range
        states no other length (:func:`_near`)."""
        t = self.p.tokens
        return self.ranges.get(o.start) == o.end - 1 and _near(int(t[o.end - 1]) - int(t[o.start]), asked)

    # ---- one occurrence ----------------------------------------------------------------------------------------

    def _clause_start(self, i: int) -> int:
        return self.p.clause_tokens[self.p.clause[i]][0]

    def _clause_end(self, i: int) -> int:
        return self.p.clause_tokens[self.p.clause[i]][-1] + 1

    def negated(self, o: _Occurrence) -> bool:
        """ "não é X", "nem X", "em vez de X" (a negator up to 4 words before, in the same clause, with no copula
        in between except right after it: "o estado que não faz fronteira é o Acre" does not negate Acre), or
        "X não é/foi"; an exception takes the other side of its sentence ("todos, exceto X": :meth:`excepted`)."""
        excepted = self.excepted(o)
        if excepted is not None:
            return excepted != self.question_negative
        t = self.p.tokens
        lo = self._clause_start(o.start)
        for k in range(o.start - 1, max(lo, o.start - 5) - 1, -1):
            if t[k] in _NEGATION_STOP or any(s < k + 1 <= e - 1 or (s <= k < e) for s, e in self.spans if e <= o.start):
                break
            negator = t[k] in _NEGATORS or (
                t[k] in ("de", "do", "da", "of") and k > lo and t[k - 1] in ("vez", "inves", "instead")
            )
            if negator:
                between = t[k + 1 : o.start]
                if any(w in _NOT_A_NEGATION for w in between):
                    return False
                return not any(w in _COPULAS for w in between[1:])
        end = self._clause_end(o.start)
        # "X não é/foi …", and the English order "X is/was not …"
        first, second = (t[o.end], t[o.end + 1]) if o.end + 1 < end else ("", "")
        return (
            (first in _NEGATORS and second in _COPULAS)
            or (first in _EN_COPULAS and second in _NEGATORS)
            or (first in _NEGATORS and second == "t")
        ) and (o.end + 2 >= end or t[o.end + 2] not in _NOT_A_NEGATION)

    def excepted(self, o: _Occurrence) -> bool | None:
        """After "exceto/salvo/except" in its sentence, X has the other polarity of the sentence: "faz fronteira com
        todos, exceto X" says no border with X (True: X negated); "não tem fronteira com nenhum, exceto X" says a
        border with X (False). None when no exception comes before X. A question that itself negates ("Com quais
        países o Brasil não tem fronteira?") asks for the negated side."""
        t, sentence = self.p.tokens, self.p.sentence
        same = [k for k in range(o.start) if sentence[k] == sentence[o.start]]
        cut = next((k for k in reversed(same) if t[k] in _EXCEPT), None)
        if cut is None:
            return None
        return not any(t[k] in _NEGATORS or t[k] in _NONE for k in same if k < cut)

    def in_passing(self, o: _Occurrence) -> bool:
        """ "filho de X", "sucessor de X", "sucedido por X": X is named as someone else's relative or
        predecessor. Not when the question asks about that relation or its converse ("Quem foi o pai de
        Pedro I?" makes "Pedro I era filho de João VI" an answer)."""
        if self.other_end(o):
            return True
        t, lo = self.p.tokens, self._clause_start(o.start)
        k = o.start - 1
        if k - 1 >= lo and t[k] in _RELATION_OF:
            k -= 1
        return k >= lo and t[k] in _RELATIONS and _RELATIONS[t[k]] not in self.relations_asked

    def other_end(self, o: _Occurrence) -> bool:
        """A year asked as a beginning that is named only as the end of a period ("Em que ano começou a Nova
        República?": "a ditadura militar (1964–1985)"), or asked as an end and named as a beginning: the year of
        another period's bound, a mention in passing."""
        t, sentence = self.p.tokens, self.p.sentence
        if o.end - o.start != 1 or not _YEAR.match(t[o.start]) or self.asks_start == self.asks_end:
            return False
        before = any(j == o.start and sentence[i] == sentence[j] for i, j in self.ranges.items())
        after = o.start in self.ranges and sentence[self.ranges[o.start]] == sentence[o.start]
        return (before and not after) if self.asks_start else (after and not before)

    def dated_otherwise(self, o: _Occurrence, facts: Sequence[_Occurrence]) -> bool:
        """The question fixes a year ("Que lei de 1850 proibiu o tráfico de escravizados?"), a sentence states the
        fact (``facts``) with that year, and the sentence that names ``o`` gives other years only and fewer of the
        question's words: "A lei Eusébio de Queirós (1850) proibiu o tráfico. A lei do Ventre Livre (1871) libertou
        os escravizados …" sets the other law apart, in time and in what it did, as another thing, not a second
        answer. "Cabral chegou em 1500. Vasco da Gama comandou a frota que chegou ao Brasil em 1498." says more of
        the question of Vasco da Gama: a second answer, with a wrong year."""
        asked = {w for w in self.question_tokens if _YEAR.match(w)}
        if not asked:
            return False
        t, sentence = self.p.tokens, self.p.sentence

        def years(s: int, skip: _Occurrence) -> set[str]:
            return {
                t[k] for k, x in enumerate(sentence) if x == s and not skip.start <= k < skip.end and _YEAR.match(t[k])
            }

        def said(s: int) -> int:  # the question's words in a sentence, by their first 5 letters
            return len({t[k][:5] for k, x in enumerate(sentence) if x == s} & self.stems)

        s = sentence[o.start]
        other = years(s, o)
        if not other or other & asked:
            return False
        return any(
            sentence[f.start] != s and years(sentence[f.start], f) & asked and said(sentence[f.start]) > said(s)
            for f in facts
        )

    def _content(self, positions: Sequence[int]) -> list[int]:
        """The content words among ``positions`` that lie outside every candidate span."""
        t = self.p.tokens
        return [i for i in positions if weighty(t[i]) and not any(s <= i < e for s, e in self.spans)]

    def relevant(self, clause: int) -> bool:
        """Does the clause talk about what the question asks (a word of the question, by its first 5 letters)? A
        clause with no word of its own besides candidates ("…, Pedro II"), or one more short item of a list ("o
        samba, o choro, a bossa nova, o forró": an article and a word or two), continues the clause before it."""
        if not self.stems:
            return True
        while True:
            positions = self.p.clause_tokens[clause]
            content = self._content(positions)
            if any(self.p.tokens[i][:5] in self.stems for i in content):
                return True
            first = clause == 0 or self.p.clause_sentence[clause - 1] != self.p.clause_sentence[clause]
            if content and (first or not self.list_item(positions)):
                return False
            if first:
                return True
            clause -= 1

    def says_of_question(self, i: int) -> bool:
        """Is the word at ``i`` said of what the question asks: a word of the question in its part of the clause,
        between the "e"/"and" around it ("em 1815 veio o Reino Unido e a independência veio em 1822": 1815 is
        not)? A clause of bare numbers (numbers, units of time, range words) right after a candidate that ends its
        clause qualifies that candidate: "durou 58 anos (1822 a 1889; 34 anos)" gives two more lengths of the
        reign; "Pedro II (1825 – 1891) foi imperador" gives a life, not a reign."""
        t, c = self.p.tokens, self.p.clause[i]
        clause = self.p.clause_tokens[c]
        while c > 0 and self.p.clause_sentence[c - 1] == self.p.clause_sentence[c]:
            if not all(t[k].isdigit() or t[k] in _TIME_UNITS or t[k] in _RANGE_WORDS for k in self.p.clause_tokens[c]):
                break
            c -= 1
            last = self.p.clause_tokens[c][-1]
            if any(s <= last < e for s, e in self.spans):
                return self.says_of_question(last)
        lo = max((k + 1 for k in clause if k < i and t[k] in _AND), default=clause[0])
        hi = min((k for k in clause if k > i and t[k] in _AND), default=clause[-1] + 1)
        return any(t[k][:5] in self.stems for k in range(lo, hi))

    def list_item(self, positions: Sequence[int]) -> bool:
        """A clause that is one short item of a list: 1 to 3 words (a candidate span counting as one; articles are
        gone with the normalization), no verb-like function word ("o choro", "a bossa nova", "Pedro II")."""
        t = self.p.tokens
        words = [i for i in positions if not any(s < i < e for s, e in self.spans)]
        return 1 <= len(words) <= 3 and not any(t[i] in _LIST_STOP for i in words)

    # ---- items of a sentence (lists and hedges) ---------------------------------------------------------------

    def items(self, sentence: int) -> list[tuple[str, list[int]]]:
        """(connector before it, positions) of each item of a sentence: clauses, cut again at "e" and "ou"
        outside candidate spans ("Costa e Silva" is one item). Connector: "," (a clause break), "e" or "ou"."""
        out: list[tuple[str, list[int]]] = []
        t = self.p.tokens
        for c, positions in enumerate(self.p.clause_tokens):
            if self.p.clause_sentence[c] != sentence:
                continue
            connector, current = ",", []
            for i in positions:
                inside = any(s <= i < e for s, e in self.spans)
                nxt = t[i + 1] if i + 1 < len(t) and self.p.clause[i + 1] == c else ""
                if not inside and (t[i] in _AND or (t[i] in _OR and nxt not in _HEDGE_STOP)):
                    if current:
                        out.append((connector, current))
                    connector, current = ("e" if t[i] in _AND else "ou"), []
                else:
                    current.append(i)
            if current:
                out.append((connector, current))
        return out

    def item_size(self, positions: Sequence[int]) -> int:
        """Words of an item, a candidate span counting as one."""
        return len([i for i in positions if not any(s < i < e for s, e in self.spans)])

    def fact_item(self, item: Sequence[int]) -> bool:
        """An item that is one entry of a list of facts: after the list's frame (up to its last verb: "Os pais de
        D. Pedro I eram …"), a fact with at most 2 words around it ("José de Alvarenga Peixoto",
        "João VI de Portugal")."""
        t = self.p.tokens
        cut = max((k for k, i in enumerate(item) if t[i] in _COPULAS or t[i] in _LIST_VERBS), default=-1)
        rest = list(item[cut + 1 :])
        if not rest or not any(s in rest for s, _ in self.spans):
            return False
        return self.item_size(rest) <= 3

    def candidate_item(self, item: Sequence[int]) -> bool:
        """An item that looks like one more candidate of a list: 1 to 4 words; a name or a number (its first word
        written with a capital, or digits), or a single word; not starting with a preposition, conjunction or
        verb of the list's frame; and not the frame itself (no word of the question: "Participaram da
        Inconfidência Mineira, …"). "no Planalto Central", "inaugurada em 1960" are details, not candidates."""
        t = self.p.tokens
        if len(item) > 1 and t[item[0]] in _OF_THE and t[item[1]] in self.p.clause_caps[self.p.clause[item[1]]]:
            item = item[1:]  # "dos Açores, da Madeira, do Cabo Verde": "de" + article before a name, as an article
        first = t[item[0]]
        size, capital = self.item_size(item), first in self.p.clause_caps[self.p.clause[item[0]]]
        if not 1 <= size <= 4 or (first in _LIST_STOP and not capital):  # "Pará" is a name, "para" is not
            return False
        if not (first.isdigit() or capital or size == 1):
            return False
        content = self._content(item)
        if any(t[i][:5] in self.stems for i in content):
            return False
        return bool(content) or any(s in item for s, _ in self.spans)


def _has(item: Sequence[int], occs: Sequence[_Occurrence]) -> bool:
    return any(o.start in item for o in occs)


def key_fact_correct(answer: str, accepted: AcceptedAnswers) -> bool:
    """acerto for one answer, without a question or wrong candidates: :func:`judge_acerto`'s verdict."""
    return judge_acerto(answer, accepted).correct


def judge_acerto(
    answer: str,
    accepted: AcceptedAnswers,
    wrong: Sequence[str] = (),
    question: str = "",
    tipo: str = "",
    context: str | Sequence[str] | None = None,
) -> Verdict:
    """acerto of one answer, and the named check that decided (:data:`CHECKS`). Deterministic plain rules on the
    normalized text; the first that applies decides:

    1. an accepted form that the question itself contains proves nothing ("Constituição de 1824" for a question
       about the Constitution of 1824), unless every form of that fact is in the question;
    2. only the answer proper counts: not an echoed prompt section (``### Input:``, ``Contexto:``: **eco**), not
       a retrieved passage pasted from its header on, when the ``context`` the model saw is given
       (:func:`pasted_context`: **eco**), not a passage's header line ("Título — Seção") heading some text
       (**eco**), not a sentence that asks (``?``) or repeats the question, nor what answers a question the answer
       made up (**pergunta**);
    3. an occurrence of the fact counts when it is not negated ("não é X": **negacao**) and not a mention in
       passing ("filho de X": **de-passagem**); a bare year with a wrong day or month in a question that accepts
       the date is not the fact (**data-errada**); fewer facts than required: **sem-fato** /
       **fatos-insuficientes**;
    4. with the facts asserted, the answer is still not correct when it also negates one (**negacao**), hedges
       ("X ou Y": **hesitacao**), lists candidates without choosing or mixes facts with other items (**lista**),
       asserts a known wrong candidate ``wrong`` outside an accepted form, another year, length or date said of
       what is asked, or another name after "é/foi" in a clause that says what is asked (**candidato-errado**), or
       drops a year among many years in a clause unrelated to the question (**muitos-anos**); otherwise **fato**.

    ``tipo == "aberta"`` (an open question) skips the list and many-years checks: long answers are expected.
    """
    j = _Judge(answer, question, context)
    t, p = j.p.tokens, j.p
    facts = []  # per fact: (usable forms, forms the question contains)
    for fact in accepted.facts:
        own = [a for a in fact if not j.in_question(a)]
        facts.append((own or list(fact), [a for a in fact if a not in own] if own else []))
    wrong_forms = [w for w in (w.strip() for w in wrong) if w and match_normalize(w) and not j.in_question(w)]
    all_wrong = j.occurrences(wrong_forms)
    # the longer of two overlapping candidates is the one named: "Porto" inside "Porto Alegre" (a wrong candidate)
    # is not the fact, and "Pedro I" (wrong) is not inside "Pedro I de Portugal" (accepted)
    fact_occ = [
        [
            o
            for o in j.occurrences(usable)
            if not any(w.start <= o.start and o.end <= w.end and w.end - w.start > o.end - o.start for w in all_wrong)
        ]
        for usable, _ in facts
    ]
    lengths = _asked_lengths(accepted)
    wrong_occ = [
        o
        for o in all_wrong
        if not any(a.start < o.end and o.start < a.end for occ in fact_occ for a in occ)
        and not j.range_near(o, lengths)
    ]
    j.spans = sorted({(o.start, o.end) for occ in fact_occ for o in occ} | {(o.start, o.end) for o in wrong_occ})
    j.fact_positions = {i for occ in fact_occ for o in occ for i in range(o.start, o.end)}

    asserted: list[list[_Occurrence]] = []
    reasons: list[Verdict | None] = []
    for (usable, in_q), occ in zip(facts, fact_occ, strict=True):
        mine = [o for o in occ if p.origin[o.start] == "resposta"]
        negated = [o for o in mine if j.negated(o)]
        passing = [o for o in mine if o not in negated and j.in_passing(o)]
        good = [o for o in mine if o not in negated and o not in passing]
        reason = None
        bad_date = _wrong_date(j, good, usable)
        if bad_date:
            reason, good = Verdict(False, "data-errada", f"ano certo, data '{bad_date}'"), []
        elif negated:
            reason = Verdict(False, "negacao", f"nega '{negated[0].form}'")
        elif passing and j.other_end(passing[0]):
            bound = "o fim" if j.asks_start else "o início"
            reason = Verdict(False, "de-passagem", f"'{passing[0].form}' só como {bound} de outro período")
        elif passing:
            reason = Verdict(False, "de-passagem", f"'{passing[0].form}' só de passagem")
        else:
            echoed = [o for o in occ if p.origin[o.start] != "resposta"]
            if echoed and p.origin[echoed[0].start] == "eco":
                reason = Verdict(False, "eco", f"'{echoed[0].form}' só no eco do prompt")
            elif echoed and p.origin[echoed[0].start] == "contexto":
                reason = Verdict(False, "eco", f"'{echoed[0].form}' só no trecho do contexto colado")
            elif echoed and p.origin[echoed[0].start] == "cabecalho":
                reason = Verdict(False, "eco", f"'{echoed[0].form}' só num cabeçalho de trecho")
            elif echoed and p.origin[echoed[0].start] == "inventada":
                reason = Verdict(False, "pergunta", f"'{echoed[0].form}' só na resposta a uma pergunta inventada")
            elif echoed:
                reason = Verdict(False, "pergunta", f"'{echoed[0].form}' só numa pergunta")
            elif in_q and any(p.origin[o.start] == "resposta" for o in j.occurrences(in_q)):
                reason = Verdict(False, "pergunta", f"'{in_q[0]}' está na própria pergunta")
        asserted.append(good)
        reasons.append(reason)

    found = sum(bool(g) for g in asserted)
    if found < accepted.required:
        for good, reason in zip(asserted, reasons, strict=True):
            if not good and reason is not None:
                return reason
        if found == 0:
            return Verdict(False, "sem-fato", "nenhuma forma aceita")
        return Verdict(False, "fatos-insuficientes", f"{found} de {accepted.required} fatos")

    for good, reason in zip(asserted, reasons, strict=True):
        if good and reason is not None and reason.check == "negacao":
            return Verdict(False, "negacao", f"afirma e {reason.detail}")
    verdict = _hedge(j, fact_occ, asserted)
    if verdict is None and tipo != "aberta":
        verdict = _list(j, accepted, fact_occ, asserted) or _parallel(j, accepted, fact_occ, asserted)
    if verdict is None:
        stated = [f for good in asserted for f in good]
        dated = [o for o in wrong_occ if j.dated_otherwise(o, stated)]
        others = _other_years(j, accepted) + _other_durations(j, accepted, lengths)
        for o in wrong_occ + others + _named_otherwise(j, accepted):
            if (
                p.origin[o.start] == "resposta"
                and o not in dated
                and not j.negated(o)
                and not j.in_passing(o)
                and not any(t[i] in _TIME_SHIFT for i, s in enumerate(p.sentence) if s == p.sentence[o.start])
                and j.relevant(p.clause[o.start])
            ):
                verdict = Verdict(False, "candidato-errado", f"também afirma '{o.form}'")
                break
    if verdict is None and tipo != "aberta":
        verdict = _many_years(j, fact_occ, asserted)
    if verdict is not None:
        return verdict
    forms = [g[0].form for g in asserted if g]
    if len(accepted.facts) == 1:
        return Verdict(True, "fato", f"afirma '{forms[0]}'")
    return Verdict(True, "fato", f"{len(forms)} de {len(accepted.facts)} fatos")


def _wrong_date(j: _Judge, good: Sequence[_Occurrence], usable: Sequence[str]) -> str:
    """The answer's date when the fact was found only as a bare year ("1888") but the question accepts a full
    date ("13 de maio de 1888") and the answer gives another day or month in that sentence; else ""."""
    if not good or not all(_YEAR.match(match_normalize(o.form)) for o in good):
        return ""
    wanted = set()
    for form in usable:
        tk = match_normalize(form).split()
        wanted |= {(tk[i], tk[i + 2]) for i in range(len(tk) - 2) if tk[i + 1] == "de" and tk[i + 2] in MONTHS}
    if not wanted:
        return ""
    t, sentences = j.p.tokens, {j.p.sentence[o.start] for o in good}
    given = [
        (t[i], t[i + 2])
        for i in range(len(t) - 2)
        if j.p.sentence[i] in sentences and t[i].isdigit() and t[i + 1] == "de" and t[i + 2] in MONTHS
    ]
    if given and not any(d in wanted for d in given):
        return f"{given[0][0]} de {given[0][1]}"
    return ""


def _hedge(j: _Judge, fact_occ, asserted) -> Verdict | None:
    """ "Pode ser Rio de Janeiro, São Paulo ou Brasília": an "ou" joins an item holding the fact and an item
    with other content and none of the fact's forms. The disjunction runs left through short items ("X, Y ou
    Z"); "ou seja", "ou melhor" join nothing."""
    for f, good in enumerate(asserted):
        for sentence in sorted({j.p.sentence[o.start] for o in good}):
            items = j.items(sentence)
            for b, (connector, _) in enumerate(items):
                if connector != "ou" or b == 0:
                    continue
                lo = b - 1
                while lo > 0 and j.item_size(items[lo - 1][1]) <= 5 and items[lo][0] in (",", "ou"):
                    if j.p.tokens[items[lo][1][0]] in _CONNECTIVES:
                        break
                    lo -= 1
                group = [pos for _, pos in items[lo : b + 1]]
                if not any(_has(g, good) for g in group):
                    continue
                for g in group:
                    if not _has(g, fact_occ[f]) and (j._content(g) or any(s in g for s, _ in j.spans)):
                        shown = " ".join(j.p.tokens[i] for i in g)
                        return Verdict(False, "hesitacao", f"hesita: '{shown}' ou '{good[0].form}'")
    return None


def _list(j: _Judge, accepted: AcceptedAnswers, fact_occ, asserted) -> Verdict | None:
    """A list of candidates: a run of consecutive items of a sentence, each a bare fact (nothing but an accepted
    form) or a candidate item (:meth:`_Judge.candidate_item`). One fact asked: a bare fact among 2+ other
    candidates ("Rio de Janeiro, São Paulo, Brasília, Salvador e Recife"). Several facts asked: 2+ bare facts
    and another candidate in the same run (facts mixed with others), or a numbered or bulleted list of 3+
    entries where 2+ entries hold facts and another holds none ("1. Castelo Branco 2. Rademaker 3. Médici")."""
    every = [o for occ in fact_occ for o in occ]
    p = j.p
    entries = {e for e, origin in zip(p.entry, p.origin, strict=True) if e >= 0 and origin == "resposta"}
    where = {p.entry[o.start] for good in asserted for o in good}  # the entries that state the fact (-1: no list)
    options = entries & p.options
    if len(options) >= 3:
        # a multiple-choice list ("a) … b) … c) …"): the fact in some options and not in others is no choice
        holding = where & options
        if holding and len(options - holding) >= 2 and where <= options:  # no statement outside the options
            return Verdict(False, "lista", f"{len(options)} alternativas (a, b, c …) sem escolher")
    if len(entries) >= 3 and -1 not in where and (len(where) == 1 or len(accepted.facts) == 1):
        # the fact (or every fact asked) stated in one entry of a numbered or bulleted list (and nowhere else)
        # whose other entries each open with another candidate ("1. Juscelino Kubitschek 2. João Goulart 3. Nereu
        # Ramos"; "1. Castelo Branco, Costa e Silva … 2. Tancredo Neves, José Sarney …"): alternatives, not a
        # choice; one fact asked, also when it comes back in more entries ("1. José Sarney 2. Tancredo Neves 3. João
        # Figueiredo 4. Tancredo Neves 5. João Figueiredo")
        first_item: dict[int, list[int]] = {}
        for sentence in sorted(set(p.sentence)):
            for _, item in j.items(sentence):
                if item:
                    first_item.setdefault(p.entry[item[0]], item)
        heads = {
            " ".join(p.tokens[i] for i in item)
            for e, item in first_item.items()
            if e in entries - where and not any(o.start in item for o in every) and _name_head(j, item)
        }
        if len(heads) >= 2:
            return Verdict(False, "lista", f"lista {len(heads) + 1} entradas sem escolher")
        # a count asked ("260 milhões") and other entries giving other counts of it ("200 million", "100
        # million"): alternatives too
        counts = _other_counts(j, accepted, entries - where)
        if len(counts) >= 2:
            return Verdict(False, "lista", f"lista {len(counts) + 1} valores sem escolher")
    if len(accepted.facts) > 1 and len(entries) >= 3:
        with_fact = {p.entry[o.start] for o in every if p.entry[o.start] >= 0}
        without = [
            e for e in entries if e not in with_fact and j._content([i for i, x in enumerate(p.entry) if x == e])
        ]
        if len(with_fact) >= 2 and without:
            return Verdict(False, "lista", f"mistura {len(with_fact)} fatos com {len(without)} outros itens")
    for sentence in sorted({j.p.sentence[o.start] for good in asserted for o in good}):
        runs, bare, others = [], 0, 0
        for _, item in [*j.items(sentence), ("", [])]:
            covered = {i for o in every if o.start in item for i in range(o.start, o.end)}
            if item and covered and (set(item) <= covered or (len(accepted.facts) > 1 and j.fact_item(item))):
                bare += 1
            elif item and not covered and j.candidate_item(item):
                others += 1
            else:
                runs.append((bare, others))
                bare, others = 0, 0
        for bare, others in runs:
            if len(accepted.facts) == 1 and bare and others >= 2:
                return Verdict(False, "lista", f"lista {others + bare} candidatos sem escolher")
            if len(accepted.facts) > 1 and bare and others and bare + others >= 2:
                return Verdict(False, "lista", f"mistura {bare} fatos com {others} outros itens")
    return None


def _other_counts(j: _Judge, accepted: AcceptedAnswers, entries: set[int]) -> set[int]:
    """The list entries that give a count in the unit of an accepted count: a number, then the words that follow
    the number in a form ("200 million" = "200 milhoes" for `260 milhões`; "30 anos" for `58 anos`)."""
    units = set()
    for fact in accepted.facts:
        for form in fact:
            words = match_normalize(form).split()
            if len(words) >= 2 and words[0].isdigit():
                units.add(tuple(words[1:]))
    t, found = j.p.tokens, set()
    for i, e in enumerate(j.p.entry):
        if e in entries and t[i].isdigit() and any(tuple(t[i + 1 : i + 1 + len(u)]) == u for u in units):
            found.add(e)
    return found


def _parallel(j: _Judge, accepted: AcceptedAnswers, fact_occ, asserted) -> Verdict | None:
    """One fact asked, and every sentence that states it is one of 3+ sentences that open with the same 3 words (a
    frame) and share most other words (60%), of which 2+ others name something else, with a capital, in the place
    of the fact: "The state of Guanabara was founded in 1975. The state of Rio de Janeiro was founded in 1960. The
    state of Amazonas was founded in 1977.": a list of alternatives spread over sentences, no choice. One other
    name said twice counts too ("… foi a Lei Imperial n.º 3.353. … foi a Lei dos Sexagenários. … foi a Lei dos
    Sexagenários."). The same sentence repeated with the fact, or sentences of the frame that say other things
    ("O maior estado tem 1,5 milhão de km²"), are no alternatives."""
    if len(accepted.facts) != 1:
        return None
    p, t = j.p, j.p.tokens
    every = [o for occ in fact_occ for o in occ]
    holding = {p.sentence[o.start] for o in every}
    words: dict[int, list[int]] = {}
    for i, (s, origin) in enumerate(zip(p.sentence, p.origin, strict=True)):
        if origin == "resposta":
            words.setdefault(s, []).append(i)
    frames = {s: tuple(t[i] for i in pos[:_FRAME]) for s, pos in words.items() if len(pos) > _FRAME}
    stating = sorted({p.sentence[o.start] for good in asserted for o in good})  # the sentences that state it
    if not stating:
        return None
    for s in stating:
        if s not in frames or any(o.start in words[s][:_FRAME] for o in every):
            return None
        fact_words = {t[i] for o in every if p.sentence[o.start] == s for i in range(o.start, o.end)}
        frame_words = {t[i] for i in words[s]} - fact_words
        named = []  # per other sentence of the frame, what it names in the fact's place
        for r, frame in frames.items():
            if frame != frames[s] or r in holding:
                continue
            rest = words[r][_FRAME:]
            caps = set().union(*(p.clause_caps[c] for c in {p.clause[i] for i in rest}))
            name = tuple(t[i] for i in rest if t[i] in caps and t[i] not in frame_words | set(j.question_tokens))
            if name and similar(frame_words, {t[i] for i in words[r]} - set(name), 0.6):
                named.append(name)
        if len(named) < 2:
            return None
    return Verdict(False, "lista", f"{len(named) + 1} frases iguais com outros nomes, sem escolher")


def _asked_lengths(accepted: AcceptedAnswers) -> set[tuple[int, str]]:
    """The lengths of time among the accepted forms, as (number, unit): "58 anos" -> (58, "ano")."""
    asked = set()
    for fact in accepted.facts:
        for form in fact:
            words = match_normalize(form).split()
            if len(words) == 2 and words[0].isdigit() and words[1] in _TIME_UNITS:
                asked.add((int(words[0]), _TIME_UNITS[words[1]]))
    return asked


def _near(years: int, asked: set[tuple[int, str]]) -> bool:
    """A range of ``years`` years gives a length only to within a year, births and deaths falling anywhere in
    them: one a year off a length asked agrees with it ("Oscar Niemeyer (1907 – 2012) faleceu com 104 anos", a
    range of 105, states no other age)."""
    return any(unit == "ano" and abs(years - n) <= 1 for n, unit in asked)


def _other_durations(j: _Judge, accepted: AcceptedAnswers, asked: set[tuple[int, str]]) -> list[_Occurrence]:
    """A length of time asked ("dois meses", "58 anos"): another length said of what is asked is a second answer
    ("A junta militar governou o país de 1964 a 1985": 21 years, for `dois meses`), as another year is
    (:func:`_other_years`). A length is a number and a unit ("34 anos") or a range of years ("1964–1985") that is
    not a year off the length asked (:func:`_near`). ``asked``: the lengths among the accepted forms
    (:func:`_asked_lengths`)."""
    if len(accepted.facts) != 1 or not asked:
        return []
    t, taken = j.p.tokens, j.fact_positions
    out = []
    for i in range(len(t) - 1):
        if i in taken or not t[i].isdigit() or t[i] in j.question_tokens:
            continue
        length, shown = None, ""
        if t[i + 1] in _TIME_UNITS:
            length, shown = (int(t[i]), _TIME_UNITS[t[i + 1]]), f"{t[i]} {t[i + 1]}"
        elif i in j.ranges:
            k = j.ranges[i]
            years = int(t[k]) - int(t[i])
            if k not in taken and j.p.sentence[k] == j.p.sentence[i] and years > 0 and not _near(years, asked):
                length, shown = (years, "ano"), f"{t[i]}–{t[k]}"
        if length and length not in asked and j.says_of_question(i):
            out.append(_Occurrence(i, i + 1, shown))
    return out


_NAME_LINKS = frozenset({"de", "da", "do", "dos", "das", "d"})
_TITLES = frozenset(
    """rei rainha imperador imperatriz principe princesa regente marechal general almirante presidente
    governador conde condessa duque duquesa barao baronesa visconde viscondessa marques marquesa dom dona papa
    padre frei santo santa senhor senhora sr sra""".split()
)
_SINGLE_COPULAS = frozenset({IS, "foi", "era"})  # Portuguese only: English writes capitals on adjectives ("Latin")


def _regnal(word: str) -> bool:  # "Pedro II" is normalized to "pedro 2"
    return word.isdigit() and len(word) <= 2


def _named_otherwise(j: _Judge, accepted: AcceptedAnswers) -> list[_Occurrence]:
    """A name or a thing asked by its name ("Quem foi o marido da princesa Isabel?", "Que documento os paulistas
    exigiam?": no number among the accepted forms): a clause that says what is asked and gives, after its
    copula, another name written with capitals ("O marido da princesa Isabel é o D. Pedro II, o Conde d'Eu"; "a
    instituição que ela preside é a Caixa Econômica Federal") gives another answer, as a listed wrong candidate
    would. Not a name the question has, nor one that holds the fact."""
    if len(accepted.facts) != 1 or not all(f[:1].isalpha() for f in accepted.facts[0]):
        return []
    t, p, facts = j.p.tokens, j.p, j.fact_positions
    out = []
    for k, w in enumerate(t):
        if w not in _SINGLE_COPULAS or p.origin[k] != "resposta" or not j.says_of_question(k):
            continue
        c, caps = p.clause[k], p.clause_caps[p.clause[k]]
        run, i = [], k + 1
        while i < len(t) and p.clause[i] == c:
            regnal = run and t[run[-1]] in caps and _regnal(t[i])  # "Pedro II", not "Decreto de 4"
            if not (t[i] in caps or regnal or (run and t[i] in _NAME_LINKS)):
                break
            run.append(i)
            i += 1
        while run and t[run[-1]] in _NAME_LINKS:
            run.pop()
        named = {t[r][:5] for r in run if weighty(t[r])}
        if not run or t[run[0]] in STOPWORDS_PT or facts & set(run) or named & j.stems:
            continue
        if all(t[r] in _TITLES or t[r] in _NAME_LINKS for r in run):  # "o Príncipe Regente": a role, not a name
            continue
        out.append(_Occurrence(run[0], run[-1] + 1, " ".join(t[r] for r in run)))
    return out


def _name_head(j: _Judge, item: Sequence[int]) -> bool:
    """The first item of a list entry is a name: 2 to 4 words, each after the first written with a capital or a
    number ("Nereu Ramos", "Isabel (1846 – 1921)"), no function word, no word of the question. (An entry's first
    word is always capitalized, so it proves nothing; "Fica no Distrito Federal" is a sentence, not a name.)"""
    t = j.p.tokens
    caps = j.p.clause_caps[j.p.clause[item[0]]]
    inner = [i for i in item[1:-1] if t[i] in _NAME_PARTICLES]  # "Fernando Collor de Mello", "Costa e Silva"
    words = [i for i in item if i not in inner]
    if not 2 <= len(words) <= 4 or any(t[i] in STOPWORDS_PT or t[i][:5] in j.stems for i in words):
        return False
    return all(t[i] in caps or t[i].isdigit() for i in words[1:])


def _other_years(j: _Judge, accepted: AcceptedAnswers) -> list[_Occurrence]:
    """A year asked: another year said of what is asked is a second answer, a candidate as a listed wrong one is
    ("sediou os Jogos em 1950 … e os Jogos de 2016"); one said of something else is a detail ("em 1815 veio o Reino
    Unido e a independência veio em 1822"). A date asked: another whole date said of what is asked ("O golpe de 10
    de novembro de 1937 foi o golpe militar de 15 de novembro de 1889"), or a year after "em" ("A Lei n.º 2.004, de
    3 de outubro de 1953, foi sancionada em 1954"); a bare year after "de" is often a name's ("a Constituição de
    1824 foi promulgada em 24 de fevereiro de 1891")."""
    forms = [match_normalize(f) for f in accepted.facts[0]] if len(accepted.facts) == 1 else []
    if not forms or not all(_YEAR.match(f) or _FULL_DATE.match(f) for f in forms):
        return []
    dates = not all(_YEAR.match(f) for f in forms)
    t, taken = j.p.tokens, j.fact_positions
    out = []
    for i, w in enumerate(t):
        if not _YEAR.match(w) or i in taken or w in j.question_tokens or not j.says_of_question(i):
            continue
        whole = i >= 4 and _FULL_DATE.match(" ".join(t[i - 4 : i + 1]))
        if whole and dates:
            out.append(_Occurrence(i - 4, i + 1, " ".join(t[i - 4 : i + 1])))
        elif not dates or (i and t[i - 1] in ("em", "in")):
            out.append(_Occurrence(i, i + 1, w))
    return out


def _many_years(j: _Judge, fact_occ, asserted) -> Verdict | None:
    """A year asked, and the answer names 3+ other years: the year counts only in a clause that speaks of what
    the question asks ("a independência veio em 1822"), not as one more date in a chronology."""
    t = j.p.tokens
    accepted_years = {t[i] for occ in fact_occ for o in occ for i in range(o.start, o.end)}
    years = {w for w, origin in zip(t, j.p.origin, strict=True) if origin == "resposta" and _YEAR.match(w)}
    others = years - accepted_years
    if len(others) < 3:
        return None
    for good in asserted:
        if good and all(_YEAR.match(match_normalize(o.form)) for o in good):
            if not any(j.relevant(j.p.clause[o.start]) for o in good):
                return Verdict(False, "muitos-anos", f"'{good[0].form}' entre {len(years)} anos")
    return None
