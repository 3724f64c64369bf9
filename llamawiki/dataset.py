"""Stage 1: instruction examples from Wikipedia articles (and QA files imported through ``llamawiki.records``).

Every example is one record of ``llamawiki.records`` (the study's ``text`` plus structured fields); in ``raw``
mode (continued pre-training) a record holds the article's plain text.

Questions come from three places of an article (selectable with ``modes``):

- ``infobox``: each known field of the infobox becomes a natural Portuguese question with a full-sentence answer
  ("Qual é a capital do Brasil?" -> "A capital do Brasil é Brasília."); fields without a template get a generic
  "Qual é o/a <campo> de <título>?".
- ``lead``: "Quem foi X?" (people) or "O que é X?" -> the first sentences of the lead.
- ``section``: a question per section ("História" -> "Qual é a história do Brasil?") -> its first sentences.
- ``llm``: pairs a model writes from excerpts of the article (the lead, then sections), as the study made its
  questions with ChatGPT; see ``llamawiki.llm_questions``.

Imported QA files (the study's ``dados.csv`` / ``saida.json``) carry no article: their ``article`` is ``""`` and
the grouped split (``llamawiki.split``) groups them by their normalized question instead.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import llm_questions, prompt
from .fileio import UserError, atomic_open, check_distinct_paths
from .llm_questions import LLMOptions, LLMQuestionWriter, LLMStats
from .records import make_record, read_bytes, read_qa_csv, read_qa_json
from .text import (
    MONTHS_PT,
    contract_preposition,
    end_with_period,
    first_sentences,
    is_common_phrase,
    lower_common,
    normalize,
    place_article,
    split_sentences,
    strip_accents,
    with_article,
)
from .wikitext import BOILERPLATE_SECTIONS, INFOBOX_DROP_RE

_SPACES = re.compile(r"\s+")

QA_MODES = ("infobox", "lead", "section")
LLM_MODE = "llm"  # questions written by a model from excerpts (llamawiki.llm_questions; dumps only)
ALL_MODES = QA_MODES + (LLM_MODE, "raw")


# --------------------------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------------------------


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str) -> str:
    """Lowercase the first letter of a common noun phrase ("Língua oficial" -> "língua oficial")."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


# --------------------------------------------------------------------------------------------------------------
# How to name the article's subject in a question ("do Brasil", "de Portugal", "a Revolução de 1930")
# --------------------------------------------------------------------------------------------------------------

_CONTRACT_DE = {"o": "do", "a": "da", "os": "dos", "as": "das"}
_CONTRACT_EM = {"o": "no", "a": "na", "os": "nos", "as": "nas"}
_ARTICLE_OF = {
    "o": "o",
    "a": "a",
    "os": "os",
    "as": "as",
    "do": "o",
    "da": "a",
    "dos": "os",
    "das": "as",
    "no": "o",
    "na": "a",
    "nos": "os",
    "nas": "as",
    "ao": "o",
    "à": "a",
    "aos": "os",
    "às": "as",
    "pelo": "o",
    "pela": "a",
    "pelos": "os",
    "pelas": "as",
}
_ARTICLE_FORMS = "|".join(sorted(_ARTICLE_OF, key=len, reverse=True))

PERSON_INFOBOXES = frozenset(
    """
politico monarca pessoa biografia presidente militar escritor artista cientista nobre santo religioso papa
futebolista atleta ator atriz cantor musico filosofo revolucionario imperador rei rainha primeiro_ministro
governador bandeirante explorador jornalista medico juiz
""".split()
)
EVENT_INFOBOXES = frozenset(
    """
evento_historico evento conflito_militar conflito guerra batalha revolucao revolta tratado eleicao
""".split()
)
PERSON_FIELDS = frozenset(
    "nascimento data_nascimento data_de_nascimento local_nascimento local_de_nascimento morte falecimento "
    "data_morte data_falecimento data_de_morte data_de_falecimento".split()
)
DEATH_FIELDS = frozenset(
    "morte falecimento data_morte data_falecimento data_de_morte data_de_falecimento local_morte "
    "local_falecimento local_de_morte".split()
)
PROFESSIONS = (
    "político|política|militar|advogad[oa]|dentista|imperador|imperatriz|rei|rainha|príncipe|princesa|presidente|"
    "escritor[a]?|poeta|poetisa|economista|jornalista|médic[oa]|engenheir[oa]|bandeirante|explorador[a]?|"
    "navegador|revolucionári[oa]|ativista|compositor[a]?|cantor[a]?|pintor[a]?|escultor[a]?|arquitet[oa]|"
    "filósof[oa]|cientista|historiador[a]?|ator|atriz|músico|musicista|sacerdote|padre|religios[oa]|"
    "professor[a]?|estadista|diplomata|empresári[oa]|nobre|fazendeiro|inventor[a]?|sociólog[oa]|"
    "aviador|piloto|futebolista|atleta|jurista|magistrad[oa]|líder|alferes|tenente|coronel|general|marechal|"
    "almirante|sertanista|missionári[oa]|jesuíta|santo|santa|papa|regente|governador[a]?|senador[a]?|deputad[oa]"
)
_PERSON_LEAD = re.compile(rf"\b(?:foi|é|era)\s+(?:um|uma|o|a)\s+(?:\w+\s+)?(?:{PROFESSIONS})\b", re.IGNORECASE)
_MONTHS = "|".join(MONTHS_PT)
_LIFE_DATES = re.compile(rf"\([^()]*\b\d{{1,2}}\s+de\s+(?:{_MONTHS})\s+de\s+\d{{3,4}}[^()]*\)", re.IGNORECASE)
_PAST_VERB = re.compile(r"\b(?:foi|foram|era|eram|ocorreu|aconteceu)\b")
_PRESENT_VERB = re.compile(r"\b(?:é|são)\b")


def norm_key(name: str) -> str:
    """Comparison form of an infobox type or field name: "Info/Cidade do Brasil" -> "cidade_do_brasil"."""
    name = strip_accents(name.strip().casefold())
    name = re.sub(r"^(?:info|infobox|predefinicao:info|template:infobox)\s*[/:]?\s*", "", name)
    name = re.sub(r"[\s\-/]+", "_", name)
    return re.sub(r"[^\w]", "", name).strip("_")


@dataclass
class Subject:
    """How to refer to an article's subject inside Portuguese sentences."""

    title: str  # display title (without a disambiguating parenthesis)
    art: str | None  # definite article used in the lead ("o", "a", "os", "as") or None
    is_person: bool
    past: bool  # a dead person or a past event: "foi"; otherwise "é"

    @property
    def the(self) -> str:  # "o Brasil" / "Getúlio Vargas"
        return f"{self.art} {self.title}" if self.art else self.title

    @property
    def de(self) -> str:  # "do Brasil" / "de Getúlio Vargas"
        return f"{_CONTRACT_DE[self.art]} {self.title}" if self.art else f"de {self.title}"

    @property
    def em(self) -> str:  # "no Brasil" / "em Portugal"
        return f"{_CONTRACT_EM[self.art]} {self.title}" if self.art else f"em {self.title}"

    @property
    def plural(self) -> bool:
        return self.art in ("os", "as")

    @property
    def ser(self) -> str:
        if self.plural:
            return "foram" if self.past else "são"
        return "foi" if self.past else "é"

    def fmt(self, template: str, **extra: str) -> str:
        values = {
            "T": self.title,
            "oT": self.the,
            "OT": _upper_first(self.the),
            "deT": self.de,
            "emT": self.em,
            "ser": self.ser,
            "Ser": _upper_first(self.ser),
        }
        values.update(extra)
        return _SPACES.sub(" ", template.format(**values)).strip()


def display_title(title: str) -> str:
    return re.sub(r"\s*\([^()]*\)\s*$", "", title).strip() or title.strip()


def describe_subject(article: Any) -> Subject:
    """Article-of-speech, person-ness and tense of an article's subject, from its infobox and lead."""
    title = display_title(article.title)
    lead = (article.lead or "").strip()
    itype = norm_key(article.infobox_type or "")
    keys = {norm_key(k) for k in (article.infobox or {})}
    first = split_sentences(lead)[0] if lead else ""
    is_event = itype in EVENT_INFOBOXES or any(itype.startswith(t) for t in ("conflito", "evento", "guerra"))
    is_person = not is_event and (
        itype in PERSON_INFOBOXES
        or bool(keys & PERSON_FIELDS)
        or bool(_LIFE_DATES.search(first[:400]))
        or bool(_PERSON_LEAD.search(first))
    )
    art = None
    if not is_person:  # "O Brasil, oficialmente República Federativa do Brasil, é ..." -> "o"
        m = re.search(rf"(?<!\w)({_ARTICLE_FORMS})\s+{re.escape(title)}(?!\w)", first, re.IGNORECASE)
        if m is None and " " in title:  # "Futebol no Brasil": "O futebol é o esporte..." -> "o"
            m = re.match(rf"({_ARTICLE_FORMS})\s+{re.escape(title.split()[0])}(?!\w)", first, re.IGNORECASE)
        art = _ARTICLE_OF[m.group(1).lower()] if m else None
    past_verb = _PAST_VERB.search(first)
    present_verb = _PRESENT_VERB.search(first)
    lead_is_past = bool(past_verb) and (not present_verb or past_verb.start() < present_verb.start())
    if is_person:
        past = bool(keys & DEATH_FIELDS) or lead_is_past
    else:
        past = is_event or lead_is_past
    return Subject(title=title, art=art, is_person=is_person, past=past)


# --------------------------------------------------------------------------------------------------------------
# Infobox facts -> questions
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRule:
    """Question/answer templates for one infobox field (names compared in ``norm_key`` form, "x*" = prefix).

    Placeholders: {T} title, {oT}/{OT} title with its article, {deT} "do Brasil", {emT} "no Brasil",
    {ser}/{Ser} "é"/"foi", {v} the value, {como} " como <cargo>" when the infobox names the office, {cargo}.
    """

    names: tuple[str, ...]
    question: str
    answer: str
    types: frozenset[str] | None = None  # only for these infobox types (None: any)
    merge: bool = False  # numbered fields (combatente1, combatente2) join into one answer
    when: str | None = None  # conditions: "date"/"nodate" (value has a year or not), "person"/"thing" (subject)

    def matches(self, base: str) -> bool:
        for n in self.names:
            if n.endswith("*"):
                # "populacao*" matches populacao_estimada, not populacao_ano / area_agua_percentual.
                if base.startswith(n[:-1]) and not base.endswith(_NOT_THE_FACT):
                    return True
            elif base == n:
                return True
        return False


_NOT_THE_FACT = (
    "_ano",
    "_data",
    "_ref",
    "_posicao",
    "_pos",
    "_classificacao",
    "_rank",
    "_nota",
    "_fonte",
    "_percentual",
    "_pct",
    "_agua",
    "_notas",
    "_servida",
    "_censo",
)
# Values that say there is no such thing ("vice = nenhum", "antecessor = Título criado").
_NON_VALUE = re.compile(
    r"^(?:nenhum|nenhuma|não há|não tomou posse|n/?a|vago|vaga|inexistente|desconhecid[oa]|"
    r"(?:cargo|título|posto|monarquia|república|regime)\s+(?:criad|abolid|extint))",
    re.IGNORECASE,
)
_ORDINALS = {"2": "segundo ", "3": "terceiro ", "4": "quarto ", "5": "quinto ", "6": "sexto "}
_DATE_VALUE = re.compile(  # "1822", "c. 1467", "7 de setembro de 1822", "1.º de dezembro", "maio de 1888"
    rf"^(?:c\.\s*)?(?:\d{{3,4}}\b|\d{{1,2}}\.?º?\s+de\s+(?:{_MONTHS})|(?:{_MONTHS})\s+de\s+\d{{3,4}})", re.IGNORECASE
)


def _rule(
    names: str, question: str, answer: str, types: str | None = None, merge: bool = False, when: str | None = None
) -> FieldRule:
    return FieldRule(tuple(names.split()), question, answer, frozenset(types.split()) if types else None, merge, when)


_YEAR = re.compile(r"\b\d{3,4}\b")


def _rule_applies(rule: FieldRule, itype: str, base: str, value: str, subject: Subject) -> bool:
    if rule.types is not None and itype not in rule.types:
        return False
    for cond in (rule.when or "").split():
        if (
            (cond == "date" and not _YEAR.search(value))
            or (cond == "nodate" and _YEAR.search(value))
            or (cond == "person" and not subject.is_person)
            or (cond == "thing" and subject.is_person)
        ):
            return False
    return rule.matches(base)


_COUNTRY = "pais pais_extinto pais_antigo estado_extinto territorio"
_CITY = "cidade_do_brasil cidade municipio_do_brasil municipio capital localidade"
_PLACE = _CITY + " estado_do_brasil estado unidade_federativa regiao"
_MONARCH = "monarca nobre imperador rei rainha realeza"
_EVENT = "evento_historico evento conflito_militar conflito guerra batalha revolucao revolta"
_PERSON = " ".join(sorted(PERSON_INFOBOXES))
_AREA_IN_KM2 = frozenset((_COUNTRY + " " + _CITY + " estado_do_brasil regiao").split())

# Type-specific rules come first: the first matching rule of a field wins.
FIELD_RULES: tuple[FieldRule, ...] = (
    # Info/País
    _rule("capital", "Qual {ser} a capital {deT}?", "A capital {deT} {ser} {v_art}."),
    _rule(
        "nome_oficial nome_completo_oficial",
        "Qual {ser} o nome oficial {deT}?",
        "O nome oficial {deT} {ser} {v_art}.",
        _COUNTRY,
    ),
    _rule(
        "cidade_mais_populosa maior_cidade", "Qual {ser} a maior cidade {deT}?", "A maior cidade {deT} {ser} {v_art}."
    ),
    _rule(
        "lingua_oficial linguas_oficiais idioma_oficial idiomas_oficiais lingua idioma",
        "Qual {ser} a língua oficial {deT}?",
        "A língua oficial {deT} {ser} {o_v}.",
        when="thing",
    ),
    _rule("moeda", "Qual {ser} a moeda {deT}?", "A moeda {deT} {ser} {o_v}."),
    _rule(
        "governo tipo_governo forma_de_governo sistema_de_governo",
        "Qual {ser} a forma de governo {deT}?",
        "A forma de governo {deT} {ser} {v}.",
        when="thing",
    ),
    _rule(
        "data_independencia independencia",
        "Quando foi a independência {deT}?",
        "A independência {deT} foi em {v}.",
        when="date",
    ),
    _rule(
        "independencia",
        "De quem {oT} se tornou independente?",
        "{OT} se tornou independente {v_de}.",
        _COUNTRY,
        when="nodate",
    ),
    _rule("gentilico", "Qual é o gentílico de quem nasce {emT}?", "O gentílico de quem nasce {emT} é {v}."),
    _rule("hino hino_nacional", "Qual {ser} o hino {deT}?", "O hino {deT} {ser} {v_art}."),
    _rule("lema", "Qual {ser} o lema {deT}?", "O lema {deT} {ser} {v}."),
    _rule("continente", "Em que continente fica {oT}?", "{OT} fica {v_em}."),
    _rule("fuso_horario", "Qual é o fuso horário {deT}?", "O fuso horário {deT} é {v}."),
    _rule(
        "dominio cctld tld dominio_de_topo", "Qual é o domínio de internet {deT}?", "O domínio de internet {deT} é {v}."
    ),
    _rule(
        "codigo_telefonico codigo_telefone codigo_de_discagem ddi",
        "Qual é o código telefônico {deT}?",
        "O código telefônico {deT} é {v}.",
    ),
    _rule("idh", "Qual é o IDH {deT}?", "O IDH {deT} é {v}."),
    _rule("pib pib_ppc pib_nominal", "Qual é o PIB {deT}?", "O PIB {deT} é de {v}."),
    _rule("ano_inicio inicio data_inicio", "Quando começou {oT}?", "{OT} começou em {v}.", when="thing"),
    _rule("ano_fim fim data_fim termino", "Quando terminou {oT}?", "{OT} terminou em {v}.", when="thing"),
    _rule("evento_inicio", "Que evento marcou o início {deT}?", "O início {deT} foi marcado por: {v}."),
    _rule("evento_fim", "Que evento marcou o fim {deT}?", "O fim {deT} foi marcado por: {v}."),
    _rule("periodo", "Quando foi {oT}?", "{OT} {ser} {v_periodo}.", when="thing"),
    # Info/Cidade do Brasil, Info/Estado do Brasil (and other places)
    _rule("estado uf unidade_federativa", "Em que estado fica {oT}?", "{OT} fica {v_estado}.", _CITY),
    _rule(
        "fundacao data_fundacao data_de_fundacao",
        "Quando foi fundada a cidade {deT}?",
        "A cidade {deT} foi fundada em {v}.",
        _CITY,
    ),
    _rule("fundador fundadores", "Quem fundou a cidade {deT}?", "A cidade {deT} foi fundada por {v}.", _CITY),
    _rule("fundador fundadores", "Quem foi o fundador {deT}?", "O fundador {deT} foi {v}."),
    _rule("prefeito prefeita", "Quem é o prefeito {deT}?", "O prefeito {deT} é {v}.", _CITY),
    _rule("governador governadora", "Quem é o governador {deT}?", "O governador {deT} é {v}.", _PLACE),
    _rule("regiao regiao_geografica", "Em que região fica {oT}?", "{OT} fica na região {v}.", _PLACE),
    _rule("mesorregiao", "Em que mesorregião fica {oT}?", "{OT} fica na mesorregião {v}.", _CITY),
    _rule("microrregiao", "Em que microrregião fica {oT}?", "{OT} fica na microrregião {v}.", _CITY),
    _rule("sigla", "Qual é a sigla {deT}?", "A sigla {deT} é {v}.", _PLACE),
    _rule("altitude", "Qual é a altitude {deT}?", "A altitude {deT} é de {v}."),
    _rule("aniversario", "Quando é o aniversário da cidade {deT}?", "O aniversário da cidade {deT} é em {v}.", _CITY),
    _rule("apelido alcunha cognome", "Qual é o apelido {deT}?", "O apelido {deT} é {v}.", _PLACE),
    _rule(
        "densidade* populacao_densidade densidade_demografica",
        "Qual {ser} a densidade demográfica {deT}?",
        "A densidade demográfica {deT} {ser} de {v}.",
    ),
    _rule("populacao* habitantes", "Qual {ser} a população {deT}?", "A população {deT} {ser} de {v}."),
    _rule("area* superficie", "Qual {ser} a área {deT}?", "A área {deT} {ser} de {v}."),
    _rule("sede", "Onde fica a sede {deT}?", "A sede {deT} fica {v_em}."),
    # Info/Político, Info/Monarca, Info/Biografia and other people
    _rule(
        "nome_completo nome_de_nascimento nome_nascimento",
        "Qual {ser} o nome completo de {T}?",
        "O nome completo de {T} {ser} {v}.",
        when="person",
    ),
    _rule(
        "nascimento data_nascimento data_de_nascimento nascimento_data",
        "Quando nasceu {T}?",
        "{T} nasceu em {v}.",
        when="person",
    ),
    _rule(
        "local_nascimento local_de_nascimento nascimento_local naturalidade",
        "Onde nasceu {T}?",
        "{T} nasceu {v_em}.",
        when="person",
    ),
    _rule(
        "morte falecimento data_morte data_falecimento data_de_morte data_de_falecimento morte_data falecimento_data",
        "Quando morreu {T}?",
        "{T} morreu em {v}.",
        when="person",
    ),
    _rule(
        "local_morte local_falecimento local_de_morte morte_local falecimento_local",
        "Onde morreu {T}?",
        "{T} morreu {v_em}.",
        when="person",
    ),
    _rule("causa_morte causa_da_morte", "Qual foi a causa da morte de {T}?", "A causa da morte de {T} foi {v}."),
    _rule("reinado", "Quando foi o reinado de {T}{como}?", "O reinado de {T}{como} foi {v_periodo}."),
    _rule("coroacao aclamacao", "Quando foi a coroação de {T}{como}?", "A coroação de {T}{como} foi em {v}."),
    _rule("casa dinastia casa_real", "A qual casa real pertenceu {T}?", "{T} pertenceu à {v_casa}.", _MONARCH),
    _rule("cargo titulo", "Qual título teve {T}?", "{T} teve o título de {v}.", _MONARCH),
    _rule("cargo titulo", "Qual cargo ocupou {T}?", "{T} ocupou o cargo de {v}.", _PERSON),
    _rule(
        "mandato periodo",
        "Quando foi o {ord}mandato de {T}{como}?",
        "O {ord}mandato de {T}{como} foi {v_periodo}.",
        when="person",
    ),
    _rule(
        "inicio_mandato inicio",
        "Quando {T} assumiu o cargo{de_cargo}?",
        "{T} assumiu o cargo{de_cargo} em {v}.",
        when="person",
    ),
    _rule(
        "fim_mandato fim termino",
        "Quando terminou o {ord}mandato de {T}{como}?",
        "O {ord}mandato de {T}{como} terminou em {v}.",
        when="person",
    ),
    _rule(
        "antecessor predecessor antes",
        "Quem foi o antecessor de {T}{como}{no_mandato}?",
        "O antecessor de {T}{como}{no_mandato} foi {v}.",
        when="person",
    ),
    _rule(
        "sucessor depois",
        "Quem foi o sucessor de {T}{como}{no_mandato}?",
        "O sucessor de {T}{como}{no_mandato} foi {v}.",
        when="person",
    ),
    _rule("antecessor predecessor antes precedido_por", "O que veio antes {deT}?", "Antes {deT} veio {v_art}."),
    _rule("sucessor depois sucedido_por", "O que veio depois {deT}?", "Depois {deT} veio {v_art}."),
    _rule(
        "vice vice_presidente vicepresidente",
        "Quem foi o vice de {T}{como}{no_mandato}?",
        "O vice de {T}{como}{no_mandato} foi {v}.",
    ),
    _rule(
        "primeiro_ministro", "Quem foi o primeiro-ministro de {T}{como}?", "O primeiro-ministro de {T}{como} foi {v}."
    ),
    _rule(
        "partido partido_politico",
        "Qual {ser} o partido político de {T}?",
        "O partido político de {T} {ser} {v}.",
        when="person",
    ),
    _rule("conjuge esposa marido consorte", "Quem {ser} o cônjuge de {T}?", "O cônjuge de {T} {ser} {v}."),
    _rule("pai", "Quem {ser} o pai de {T}?", "O pai de {T} {ser} {v}."),
    _rule("mae", "Quem {ser} a mãe de {T}?", "A mãe de {T} {ser} {v}."),
    _rule("filhos descendencia", "Quem foram os filhos de {T}?", "Os filhos de {T} foram {v}.", merge=True),
    _rule("profissao ocupacao", "Qual {ser} a profissão de {T}?", "A profissão de {T} {ser} {v}.", when="person"),
    _rule("nacionalidade", "Qual {ser} a nacionalidade de {T}?", "A nacionalidade de {T} {ser} {v}.", when="person"),
    _rule("religiao", "Qual {ser} a religião de {T}?", "A religião de {T} {ser} {v}.", when="person"),
    _rule("alma_mater formacao", "Onde {T} estudou?", "{T} estudou {v_em}.", when="person"),
    _rule(
        "conhecido_por conhecida_por", "Pelo que {T} {ser} conhecido?", "{T} {ser} conhecido por: {v}.", when="person"
    ),
    _rule("premios premiacoes", "Que prêmios {T} recebeu?", "{T} recebeu: {v}.", when="person"),
    # Info/Evento histórico, Info/Conflito militar
    _rule("data data_evento", "Quando ocorreu {oT}?", "{OT} ocorreu em {v}.", _EVENT),
    _rule("local lugar localizacao", "Onde ocorreu {oT}?", "{OT} ocorreu {v_em}.", _EVENT),
    _rule("resultado desfecho", "Qual foi o resultado {deT}?", "O resultado {deT} foi {v}."),
    _rule("causa causas motivo motivos", "Quais foram as causas {deT}?", "As causas {deT} foram: {v}.", _EVENT),
    _rule(
        "consequencias consequencia",
        "Quais foram as consequências {deT}?",
        "As consequências {deT} foram: {v}.",
        _EVENT,
    ),
    _rule("objetivo objetivos", "Qual foi o objetivo {deT}?", "O objetivo {deT} foi {v}.", _EVENT),
    _rule(
        "participantes combatentes beligerantes combatente lado partes",
        "Quem participou {deT}?",
        "Participaram {deT}: {v}.",
        _EVENT,
        merge=True,
    ),
    _rule(
        "comandantes comandante lideres lider",
        "Quem foram os líderes {deT}?",
        "Os líderes {deT} foram: {v}.",
        _EVENT,
        merge=True,
    ),
    _rule("baixas mortos vitimas", "Quantas foram as baixas {deT}?", "As baixas {deT} foram: {v}.", _EVENT, merge=True),
    # Other kinds of article
    _rule("paises", "Por quais países passa {oT}?", "{OT} passa por: {v}.", "rio"),
    _rule("nascente", "Onde fica a nascente {deT}?", "A nascente {deT} fica {v_em}."),
    _rule("foz", "Onde fica a foz {deT}?", "A foz {deT} fica {v_em}."),
    _rule("comprimento extensao", "Qual {ser} o comprimento {deT}?", "O comprimento {deT} {ser} de {v}."),
    _rule("falantes numero_de_falantes", "Quantos falantes tem {oT}?", "O número de falantes {deT} é {v}."),
)

# Fields that are not facts a reader asks about (images, maps, layout, links) or that only repeat the title.
# Infobox fields that are not facts worth a question, besides the pictures, maps and layout fields of
# wikitext.INFOBOX_DROP_RE (which parse_infobox drops already; checked again for hand-built articles).
SKIP_FIELDS = re.compile(
    r"^(?:coord|coordenadas|lat|latitude|long|longitude|site|website|sitio|url|pagina|nota|notas|ref|rodape|"
    r"escala|nome|nome_pt|nome_comum|nome_nativo|nome_curto|titulo_pagina|padrao|tipo|formato|simbolo|ficheiro|"
    r"nomenativo|arquivo|icone|wikidata|codigo_ibge|ibge|cep|abreviacao|ordem|data_acesso|acessodata|commons|iso|censo)"
    r"(?:_|$)"
)
_FEMININE_ENDINGS = ("a", "cao", "sao", "iao", "dade", "gem", "ncia", "ise", "ie", "tude")
_SINGULAR_IN_S = frozenset(
    "mes pais portugues ingles frances onibus lapis virus atlas gas deus status campus bonus "
    "tenis cais oasis chassis".split()
)
_FEMININE_WORDS = frozenset(
    "sede patente nascente foz data fonte origem cor ponte morte sorte arte parte classe "
    "chave base fase frase lei mae rede tarde torre capital imagem ordem paz voz luz vez "
    "raiz matriz cidade".split()
)
_MASCULINE_IN_A = frozenset(
    "clima sistema idioma tema problema mapa dia programa planeta lema poema cinema drama esquema regime".split()
)
_NUMBERED = re.compile(r"^(.*?)(\d+)$")

# Fields whose values are common nouns ("Militar", "Advogado e escritor", "Português", "Monarquia constitucional"):
# inside the answer they are lower-cased by text.lower_common ("A profissão de X foi militar."), unless they read
# as a name (acronyms, more than one capital: "Presidente do Brasil", "PT"). Values of fields without a template
# are lower-cased only when they have more than one word ("Extinção da escravidão" -> "extinção da escravidão").
COMMON_NOUN_FIELDS = frozenset(
    """
profissao ocupacao cargo religiao nacionalidade lingua_oficial linguas_oficiais idioma_oficial idiomas_oficiais
lingua idioma moeda governo tipo_governo forma_de_governo sistema_de_governo patente industria genero
""".split()
)
# How the answers of those fields start (the checker finds them by it): "A profissão de X foi ...".
COMMON_NOUN_ANSWERS = (
    "A profissão",
    "A ocupação",
    "A religião",
    "A nacionalidade",
    "A língua oficial",
    "A moeda",
    "A forma de governo",
    "A patente",
    "A indústria",
    "O gênero",
)


def _split_suffix(key: str) -> tuple[str, str]:
    """ "cargo2" -> ("cargo", "2"); "mandato" -> ("mandato", "")."""
    m = _NUMBERED.match(key)
    if m and m.group(1):
        return m.group(1).rstrip("_"), m.group(2)
    return key, ""


def clean_value(value: str, max_chars: int = 200) -> str | None:
    """A usable infobox value (one line, no markup leftovers, not empty or absurdly long) or None."""
    lines = [ln.strip(" \t*•;,") for ln in str(value).splitlines()]
    value = _SPACES.sub(" ", ", ".join(ln for ln in lines if ln)).strip()
    value = value.rstrip(" .;,:")
    if not value or not any(c.isalnum() for c in value):
        return None
    if any(mark in value for mark in ("{{", "}}", "[[", "]]", "|", "<ref", "=")):
        return None
    if len(value) > max_chars:
        return None
    return value


def _field_label(key: str) -> str:
    base, _ = _split_suffix(key.strip())
    return _lower_first(re.sub(r"[_\s]+", " ", base).strip())


def _guess_article(label: str) -> tuple[str, bool]:
    """Definite article of a field label ("a", "os"...) and whether it is plural, guessed from its first word."""
    word = label.split()[0].lower()
    first = strip_accents(word)
    plural = first.endswith("s") and not word.endswith(("ês", "ás", "ís", "ús")) and first not in _SINGULAR_IN_S
    singular = first
    if plural:
        if first.endswith(("oes", "aes")):
            singular = first[:-3] + "ao"
        elif first.endswith("ns"):
            singular = first[:-2] + "m"
        elif first.endswith(("res", "zes", "les", "ses")):
            singular = first[:-2]
        else:
            singular = first[:-1]
    feminine = singular in _FEMININE_WORDS or (
        singular.endswith(_FEMININE_ENDINGS) and singular not in _MASCULINE_IN_A and not singular.endswith("ista")
    )
    return ("a" if feminine else "o") + ("s" if plural else ""), plural


def _generic_qa(subject: Subject, key: str, value: str) -> tuple[str, str] | None:
    """A question for a field without a template: "Qual é o/a <campo> de <título>?" (gender guessed).

    Dates get "Quando foi a <campo> ...?"; "<particípio>_por" fields ("criado_por") get "Por quem ...?".
    """
    label = _field_label(key)
    if not label or len(label) > 40:
        return None
    words = label.split()
    if len(words) >= 2 and words[-1] == "por":  # criado_por, substituída_por, sancionada_por
        participle = " ".join(words[:-1])
        if subject.art in ("a", "os", "as") and participle.endswith("o"):  # a Constituição foi criada
            participle = participle[:-1] + {"a": "a", "os": "os", "as": "as"}[subject.art]
        return (
            f"Por quem ou pelo que {subject.the} foi {participle}?",
            f"{_upper_first(subject.the)} foi {participle} por {value}.",
        )
    if " " in re.sub(r"\([^()]*\)", "", value).strip() and not re.search(r"\d", value):
        value = lower_common(value)  # "Extinção da escravidão"; not "União (controladora)", "Lei de 1891"
    art, plural = _guess_article(label)
    if plural:
        verb = "foram" if subject.past else "são"
        return (
            f"Quais {verb} {art} {label} {subject.de}?",
            f"{_upper_first(art)} {label} {subject.de} {verb} {value}.",
        )
    if _DATE_VALUE.match(value) and label != "data":
        return (f"Quando foi {art} {label} {subject.de}?", f"{_upper_first(art)} {label} {subject.de} foi em {value}.")
    return (
        f"Qual {subject.ser} {art} {label} {subject.de}?",
        f"{_upper_first(art)} {label} {subject.de} {subject.ser} {value}.",
    )


def infobox_qa(article: Any, subject: Subject | None = None, max_value_chars: int = 200) -> list[tuple[str, str]]:
    """(question, answer) pairs from the article's infobox fields, in field order."""
    infobox = article.infobox or {}
    if not infobox:
        return []
    subject = subject or describe_subject(article)
    itype = norm_key(article.infobox_type or "")
    normalized: dict[str, tuple[str, str]] = {}
    for k, v in infobox.items():  # the first of two spellings of a field wins ("capital" / "Capital")
        normalized.setdefault(norm_key(k), (k, v))
    title_norm = normalize(subject.title)
    pairs: list[tuple[str, str]] = []
    merged: dict[str, tuple[FieldRule, list[str]]] = {}

    def office(suffix: str) -> str | None:
        for name in ("cargo", "titulo", "cargo_titulo"):
            found = normalized.get(name + suffix) or (normalized.get(name) if suffix in ("", "1") else None)
            if found:
                cargo = clean_value(found[1], 120)
                if cargo:
                    return cargo
        return None

    for nkey, (key, raw) in normalized.items():
        value = clean_value(raw, max_value_chars)
        if value is None or normalize(value) == title_norm or _NON_VALUE.match(value):
            continue
        base, suffix = _split_suffix(nkey)
        if base in COMMON_NOUN_FIELDS:
            value = lower_common(value)
        # Leaders of a country: título_líder1 = Presidente, nome_líder1 = Lula.
        if base in ("nome_lider", "lider_nome", "nome_do_lider"):
            title_key = next(
                (
                    normalized[k]
                    for k in (f"titulo_lider{suffix}", f"lider_titulo{suffix}", f"titulo_do_lider{suffix}")
                    if k in normalized
                ),
                None,
            )
            cargo = clean_value(title_key[1], 80) if title_key else None
            if cargo:
                cargo = _lower_first(cargo)
                pairs.append(
                    (
                        subject.fmt("Quem {ser} o {cargo} {deT}?", cargo=cargo),
                        subject.fmt("O {cargo} {deT} {ser} {v}.", cargo=cargo, v=value),
                    )
                )
            continue
        if base in ("titulo_lider", "lider_titulo", "titulo_do_lider"):
            continue
        rule = next((r for r in FIELD_RULES if _rule_applies(r, itype, base, value, subject)), None)
        if rule is None:
            if (
                INFOBOX_DROP_RE.search(nkey)
                or SKIP_FIELDS.match(nkey)
                or SKIP_FIELDS.match(base)
                or base.endswith(_NOT_THE_FACT)
                or (itype in PERSON_INFOBOXES | set(_MONARCH.split()) and base in ("cargo", "titulo"))
            ):
                continue
            qa = _generic_qa(subject, key, value)
            if qa:
                pairs.append(qa)
            continue
        cargo = office(suffix) if base not in ("cargo", "titulo") else None
        ordinal = _ORDINALS.get(suffix, "") if not cargo else ""  # mandato2 without its own título2
        extra = {
            "ord": ordinal,
            "v_periodo": value if value.casefold().startswith(("desde", "de ", "entre")) else f"de {value}",
            "v": value,
            "cargo": cargo or "",
            "como": f" como {cargo}" if cargo else "",
            "no_mandato": f" no {ordinal}mandato" if ordinal else "",
            "de_cargo": f" de {cargo}" if cargo else "",
            "v_em": contract_preposition("em", value),  # "no Rio de Janeiro", "na América do Sul", "em Lisboa"
            "v_art": with_article(value),  # "o Rio de Janeiro", "Brasília"
            # a lower-cased common noun with its article ("o real", "o português"); a name as it is ("Real (R$)")
            "o_v": f"{_guess_article(value)[0]} {value}" if value[:1].islower() else value,
            "v_estado": f"no {value}" if value.casefold().startswith("distrito federal") else f"no estado de {value}",
            "v_de": value if value.startswith(("de ", "do ", "da ", "dos ", "das ")) else f"de {value}",
            "v_casa": value if value.casefold().startswith(("casa", "dinastia")) else f"Casa de {value}",
        }
        if base.startswith("area") and re.fullmatch(r"[\d\s.,]+", value) and itype in _AREA_IN_KM2:
            extra["v"] = value + " km²"  # Info/País and Info/Cidade give areas in km² without the unit
        if base == "altitude" and re.fullmatch(r"[\d\s.,]+", value):
            extra["v"] = value + " m"
        if base.startswith(("populacao", "habitantes")) and not base.endswith(_NOT_THE_FACT):
            year_keys = ("censo", "populacao_ano", "ano_populacao", "populacao_censo", "ano_censo")
            year = next((clean_value(normalized[k][1]) for k in year_keys if k in normalized), None)
            if year and _YEAR.fullmatch(year) and year not in value:
                extra["v"] = f"{value} (censo de {year})"
        question = subject.fmt(rule.question, **extra)
        if rule.merge:
            if question in merged:
                merged[question][1].append(value)
                continue
            merged[question] = (rule, [value])
            pairs.append((question, ""))  # answer filled in below, once every numbered value is known
            continue
        pairs.append((question, subject.fmt(rule.answer, **extra)))
    out = []
    for question, answer in pairs:
        if question in merged:
            rule, values = merged[question]
            joined = values[0] if len(values) == 1 else ", ".join(values[:-1]) + " e " + values[-1]
            answer = subject.fmt(rule.answer, v=joined, cargo="", como="", de_cargo="", no_mandato="", ord="")
        out.append((question, answer))
    return out


# --------------------------------------------------------------------------------------------------------------
# Lead and section questions
# --------------------------------------------------------------------------------------------------------------


def lead_question(subject: Subject) -> str:
    if subject.is_person:
        return f"Quem {subject.ser} {subject.title}?"
    return f"O que {subject.ser} {subject.the}?"


# Section title (norm_key form) -> question template.
SECTION_TEMPLATES: dict[str, str] = {
    "historia": "Qual é a história {deT}?",
    "historico": "Qual é a história {deT}?",
    "geografia": "Como é a geografia {deT}?",
    "clima": "Como é o clima {deT}?",
    "relevo": "Como é o relevo {deT}?",
    "hidrografia": "Como é a hidrografia {deT}?",
    "economia": "Como é a economia {deT}?",
    "demografia": "Como é a demografia {deT}?",
    "populacao": "Como é a população {deT}?",
    "cultura": "Como é a cultura {deT}?",
    "culinaria": "Como é a culinária {deT}?",
    "gastronomia": "Como é a culinária {deT}?",
    "politica": "Como é a política {deT}?",
    "governo_e_politica": "Como é a política {deT}?",
    "politica_e_governo": "Como é a política {deT}?",
    "religiao": "Como é a religião {deT}?",
    "educacao": "Como é a educação {deT}?",
    "transporte": "Como são os transportes {deT}?",
    "transportes": "Como são os transportes {deT}?",
    "esporte": "Como é o esporte {deT}?",
    "esportes": "Como é o esporte {deT}?",
    "desporto": "Como é o esporte {deT}?",
    "turismo": "Como é o turismo {deT}?",
    "etimologia": "Qual é a origem do nome {deT}?",
    "toponimia": "Qual é a origem do nome {deT}?",
    "origem_do_nome": "Qual é a origem do nome {deT}?",
    "fundacao": "Como foi a fundação {deT}?",
    "antecedentes": "Quais foram os antecedentes {deT}?",
    "contexto": "Qual foi o contexto {deT}?",
    "contexto_historico": "Qual foi o contexto histórico {deT}?",
    "causas": "Quais foram as causas {deT}?",
    "consequencias": "Quais foram as consequências {deT}?",
    "resultado": "Qual foi o resultado {deT}?",
    "desfecho": "Como terminou {oT}?",
    "legado": "Qual é o legado {deT}?",
    "biografia": "Qual é a biografia de {T}?",
    "primeiros_anos": "Como foram os primeiros anos de {T}?",
    "infancia_e_juventude": "Como foram a infância e a juventude de {T}?",
    "juventude": "Como foi a juventude de {T}?",
    "vida_pessoal": "Como foi a vida pessoal de {T}?",
    "carreira": "Como foi a carreira de {T}?",
    "carreira_politica": "Como foi a carreira política de {T}?",
    "governo": "Como foi o governo {deT}?",
    "presidencia": "Como foi a presidência de {T}?",
    "reinado": "Como foi o reinado de {T}?",
    "morte": "Como morreu {T}?",
    "morte_e_legado": "Como morreu {T}?",
    "obras": "Quais são as obras de {T}?",
    "caracteristicas": "Quais são as características {deT}?",
    "descricao": "Como é {oT}?",
}
# wikitext drops these sections from parsed articles; checked again here for hand-built articles.
_BOILERPLATE_KEYS = frozenset(norm_key(title) for title in BOILERPLATE_SECTIONS)


# First words of section titles that are not nouns ("Depois da presidência", "Após o exílio").
_NOT_A_NOUN = frozenset("depois antes após apos durante entre sobre como por para em até desde sob contra".split())
SECTION_TOPIC = ' no que diz respeito a "'  # the quoted form of a section question (see section_question)
_COMMON_SUFFIXES = (
    "ção",
    "são",
    "ções",
    "sões",
    "dade",
    "ência",
    "ância",
    "mento",
    "ória",
    "ório",
    "ismo",
    "eza",
    "ura",
    "gem",
    "ado",
    "ada",
    "ivo",
    "iva",
    "ências",
    "âncias",
)


def _common_word(word: str, article_words: set[str] | frozenset[str]) -> bool:
    """Whether a one-word section title is a common noun ("Abdicação", "Vida") rather than a name ("Brasília").

    Common: written in lowercase somewhere in the article, or never seen there at all, or ending like a common
    noun (-ção, -dade, -ência, -mento...); never a place name of text.PLACE_ARTICLES.
    """
    if word.islower() or word.lower() in article_words:
        return True
    if place_article(word):
        return False
    singular = strip_accents(word.lower())
    singular = singular[:-1] if singular.endswith("s") else singular
    return word not in article_words or singular.endswith(tuple(strip_accents(x) for x in _COMMON_SUFFIXES))


def section_question(
    subject: Subject, section_title: str, article_words: set[str] | frozenset[str] = frozenset()
) -> str | None:
    """The question a section answers ("História" -> "Qual é a história do Brasil?"), None for boilerplate.

    ``article_words``: words of the article's text; a one-word title seen there in lowercase is a common noun
    ("Construção" -> "construção"), otherwise it keeps its capital (a proper name).
    """
    key = norm_key(section_title)
    if not key or key in _BOILERPLATE_KEYS:
        return None
    template = SECTION_TEMPLATES.get(key)
    if template:
        return subject.fmt(template)
    title = section_title.strip()
    words = title.split()
    if words[0] in ("O", "A", "Os", "As") and len(words) > 1:  # "O Dia do Fico": has its article already
        return f"O que se sabe sobre {words[0].lower()} {' '.join(words[1:])} {subject.de}?"
    common = (
        words[0].casefold() not in _NOT_A_NOUN
        and words[0][:1].isalpha()
        and (
            (len(words) > 1 and all(w[:1].islower() or not w[:1].isalpha() for w in words[1:]))  # "Vida política"
            or (len(words) == 1 and _common_word(title, article_words))
        )
    )  # "Construção"
    if common:  # a common noun phrase takes its article: "a abdicação de Pedro I", "os últimos anos de X"
        phrase = _lower_first(title) if len(words) > 1 else title.lower()
        art, _ = _guess_article(phrase)
        return f"O que se sabe sobre {art} {phrase} {subject.de}?"
    # A name, or a phrase that takes no article ("Primeiro imperador do Brasil", "Depois da presidência"): the
    # title is quoted as a topic instead of being glued to the subject.
    return f'O que se sabe sobre {subject.the}{SECTION_TOPIC}{title}"?'


# --------------------------------------------------------------------------------------------------------------
# Defects of the template Portuguese (data/check_dataset.py counts them over a dataset)
# --------------------------------------------------------------------------------------------------------------

DEFECT_KINDS = {
    "preposicao_sem_artigo": '"em" before a place that takes an article ("em Rio de Janeiro" for "no Rio de Janeiro")',
    "substantivo_maiusculo": 'a capitalized common noun from an infobox after the verb ("foi Militar")',
    "secao_malformada": 'a section title glued to the subject ("sobre Primeiro imperador do Brasil de Pedro I")',
}
_EM_PLACE = re.compile(r"\bem (?=([A-ZÀ-Ý][^,.;:?!()\"]*))")  # a lookahead: "em Bahia e em Goiás" is two
_TEMPLATE_SOURCES = ("infobox", "lead", "section")


def template_defects(record: dict) -> Counter:
    """The defects of :data:`DEFECT_KINDS` in one record's generated text (the question of every template record,
    the answer of infobox records; lead and section answers are Wikipedia's own sentences and are not checked)."""
    found: Counter = Counter()
    source = record.get("source", "")
    if source not in _TEMPLATE_SOURCES:
        return found
    question, answer = record.get("input", ""), record.get("output", "")
    texts = [question, answer] if source == "infobox" else [question]
    for text in texts:
        found["preposicao_sem_artigo"] += sum(1 for m in _EM_PLACE.finditer(text) if place_article(m.group(1)))
    if source == "infobox":
        title = re.escape(display_title(record.get("article", "")))
        labels = "|".join(re.escape(label) for label in COMMON_NOUN_ANSWERS)
        m = re.match(
            rf"(?:(?:{labels}) (?:de|do|da|dos|das) {title} (?:é|foi|era|são|foram)"
            rf"|{title} ocupou o cargo de) (.+?)\.?$",
            answer,
        )
        if m and is_common_phrase(m.group(1)):
            found["substantivo_maiusculo"] += 1
    if source == "section" and question.startswith("O que se sabe sobre ") and SECTION_TOPIC not in question:
        first = question[len("O que se sabe sobre ") :].split(maxsplit=1)[0]
        if first not in ("o", "a", "os", "as"):
            found["secao_malformada"] += 1
    return found


def count_template_defects(records: Iterable[dict]) -> tuple[Counter, int]:
    """Total defects per kind over ``records`` (every kind present, 0 when none) and the number of records."""
    total: Counter = Counter({kind: 0 for kind in DEFECT_KINDS})
    n = 0
    for rec in records:
        n += 1
        total.update(template_defects(rec))
    return total, n


def _prose(text: str) -> str:
    """The section's text from its first paragraph of prose (skips list items and table remnants)."""
    paras = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    for i, para in enumerate(paras):
        if not para.startswith(("*", "#", "-", "•", "|", ":", ";", "!")):
            return "\n\n".join(paras[i:])
    return ""


# --------------------------------------------------------------------------------------------------------------
# Article -> records
# --------------------------------------------------------------------------------------------------------------


@dataclass
class GenerationOptions:
    modes: tuple[str, ...] = QA_MODES
    instruction: str = prompt.INSTRUCTION_QA
    min_answer_chars: int = 12  # shorter answers (and lead/section answers) are skipped
    max_answer_chars: int = 600  # longer answers are cut to fewer sentences, else skipped
    lead_sentences: int = 2
    section_sentences: int = 2
    max_value_chars: int = 200  # infobox values longer than this are not facts but prose: skipped
    min_raw_chars: int = 200  # raw mode: shorter articles are skipped

    def __post_init__(self):
        for flag, value in (
            ("--min-answer-chars", self.min_answer_chars),
            ("--max-answer-chars", self.max_answer_chars),
            ("--sentences", self.lead_sentences),
            ("--sentences", self.section_sentences),
        ):
            if value < 1:
                raise UserError(f"{flag} {value}: must be >= 1")
        if self.min_answer_chars > self.max_answer_chars:
            raise UserError(
                f"--min-answer-chars {self.min_answer_chars} is above --max-answer-chars "
                f"{self.max_answer_chars}: every answer would be skipped"
            )


def parse_modes(spec: str | Iterable[str]) -> tuple[str, ...]:
    """ "infobox,lead" -> ("infobox", "lead"); unknown names raise UserError."""
    names = [m.strip().lower() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    unknown = [m for m in names if m not in ALL_MODES]
    if unknown or not names:
        raise UserError(
            f"--modes: unknown mode(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(ALL_MODES)}"
        )
    return tuple(dict.fromkeys(names))


def article_examples(article: Any, options: GenerationOptions | None = None) -> list[dict]:
    """All records of one article for the selected modes (questions unique within the article)."""
    opts = options or GenerationOptions()
    records: list[dict] = []
    if "raw" in opts.modes:
        text = article.plain_text().strip()
        if len(text) >= opts.min_raw_chars:
            records.append({"text": text, "article": article.title, "source": "raw"})
    subject = describe_subject(article)
    seen: set[str] = set()

    def add(question: str | None, answer: str, source: str) -> None:
        if not question or not answer:
            return
        answer = end_with_period(answer)
        if not (opts.min_answer_chars <= len(answer) <= opts.max_answer_chars):
            return
        key = normalize(question)
        if key in seen:
            return
        seen.add(key)
        records.append(make_record(question, answer, article.title, source, opts.instruction))

    if "infobox" in opts.modes:
        for q, a in infobox_qa(article, subject, opts.max_value_chars):
            add(q, a, "infobox")
    if "lead" in opts.modes and article.lead:
        add(
            lead_question(subject),
            first_sentences(_prose(article.lead), opts.lead_sentences, opts.max_answer_chars),
            "lead",
        )
    if "section" in opts.modes:
        words = set(re.findall(r"\w+", article.plain_text()))
        for section in article.sections:
            answer = first_sentences(_prose(section.text), opts.section_sentences, opts.max_answer_chars)
            if answer:
                add(section_question(subject, section.title, words), answer, "section")
    return records


def article_texts(article: Any) -> list[str]:
    """The prose an LLM writes questions from: the lead, then each section that is not boilerplate."""
    texts = [_prose(article.lead)] if article.lead else []
    for section in article.sections:
        key = norm_key(section.title)
        if key and key not in _BOILERPLATE_KEYS:
            texts.append(_prose(section.text))
    return [t for t in texts if t.strip()]


# --------------------------------------------------------------------------------------------------------------
# Stage 1 driver: inputs (dumps and QA files) -> one JSONL
# --------------------------------------------------------------------------------------------------------------

DUMP_SUFFIXES = (".xml", ".xml.bz2", ".bz2", ".xml.gz")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def detect_input_kind(path: str | Path) -> str:
    """ "dump", "csv" or "json", from the extension, else from the first bytes."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(DUMP_SUFFIXES):
        return "dump"
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    head = read_bytes(path)[:512] if path.exists() else b""
    if head.startswith(b"BZh") or head.lstrip().startswith(b"<"):
        return "dump"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"[", b"{")):
        return "json"
    return "csv"


@dataclass
class BuildResult:
    written: int = 0
    by_source: Counter = field(default_factory=Counter)
    pages: int = 0  # articles read from dumps
    per_input: dict[str, int] = field(default_factory=dict)
    truncated: list[str] = field(default_factory=list)  # one message per truncated dump
    llm: LLMStats | None = None  # --modes llm: what the generator wrote and what was kept


class PageExamples:
    """Picklable ``page -> (title, records, texts)`` (clean the page with the dump's siteinfo, then generate):
    runs in workers. ``texts`` (for the LLM, which runs in the main process) is empty unless ``llm`` is a mode."""

    def __init__(self, siteinfo: Any, options: GenerationOptions):
        self.siteinfo = siteinfo
        self.options = options

    def __call__(self, page: Any) -> tuple[str, list[dict], list[str]]:
        from .wikitext import parse_article

        article = parse_article(page, base_url=self.siteinfo.base_url, siteinfo=self.siteinfo)
        texts = article_texts(article) if LLM_MODE in self.options.modes else []
        return article.title, article_examples(article, self.options), texts


def _dump_examples(
    path: Path,
    options: GenerationOptions,
    namespaces: tuple[int, ...],
    workers: int,
    limit: int | None,
    progress: bool,
    result: BuildResult,
    category: str | None = None,
    category_depth: int = 0,
    llm: LLMQuestionWriter | None = None,
) -> Iterator[dict]:
    """Records of every article in a dump (only those under ``category``, if given: llamawiki.categories);
    stops after ``limit`` articles in total. ``llm`` writes the ``llm`` mode's pairs, in this process, one
    article at a time (so ``limit`` bounds the model's work too). Raises DumpTruncated."""
    from tqdm import tqdm

    from . import categories, dump

    remaining = None if limit is None else max(limit - result.pages, 0)
    if remaining == 0:
        return
    work = PageExamples(dump.read_siteinfo(path), options)
    keep = categories.category_filter(path, category, category_depth, namespaces, workers, progress)
    batches = dump.map_pages(
        path, work, workers=workers, namespaces=namespaces, allow_truncated=False, limit=remaining, keep=keep
    )
    bar = tqdm(desc=path.name, unit=" pages", disable=not progress, dynamic_ncols=True, mininterval=0.5)
    start = time.perf_counter()
    try:
        for title, records, texts in batches:
            result.pages += 1
            yield from records
            if llm is not None:
                yield from llm.article_records(title, texts)
                rate = llm.stats.kept / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix_str(f"{llm.stats.kept} pairs, {rate:.2f} pairs/s", refresh=False)
            bar.update(1)
    finally:
        bar.close()
        batches.close()


def build_dataset(
    inputs: Iterable[str | Path],
    output: str | Path,
    options: GenerationOptions | None = None,
    namespaces: Iterable[int] = (0,),
    workers: int = 1,
    allow_truncated: bool = False,
    limit: int | None = None,
    progress: bool = True,
    category: str | None = None,
    category_depth: int = 0,
    generator: str | dict | None = None,
    llm_options: LLMOptions | None = None,
    load_generator: Callable[[dict], Any] | None = None,
) -> BuildResult:
    """Write the records of every input (dumps and QA files) to ``output`` atomically.

    ``category``: keep only the dump articles in that category or its subcategories down to
    ``category_depth`` (the tree read from each dump: :func:`llamawiki.categories.category_filter`).

    ``output`` is replaced only by a run that succeeded and wrote at least one example: a truncated dump raises
    ``DumpTruncated`` and leaves ``output`` as it was (with ``allow_truncated`` the complete pages before the
    damage are kept and the cut is recorded in ``result.truncated``); a run that yields no example raises
    UserError, the previous file kept.

    ``llm`` in ``options.modes`` needs ``generator`` (a model spec, see
    :func:`llamawiki.llm_questions.generator_spec`), loaded once with ``load_generator`` (default
    ``models.load_generator``) after the inputs are checked; its completions are cached in
    :func:`llamawiki.llm_questions.cache_path` of ``output``, so an interrupted run resumes.
    """
    from . import dump
    from .categories import check_category_arguments

    check_category_arguments(category, category_depth)
    options = options or GenerationOptions()
    if limit is not None and limit < 1:
        raise UserError(f"--limit {limit}: must be >= 1")
    if workers < 1:
        raise UserError(f"--workers {workers}: must be >= 1")
    paths = [Path(p) for p in inputs]
    if not paths:
        raise UserError("no input given")
    check_distinct_paths({"--output": output}, paths)
    kinds = []
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: file not found")
        if p.is_dir():
            raise UserError(f"{p}: is a directory, not a file")
        kinds.append(detect_input_kind(p))
    qa_modes = any(m in options.modes for m in QA_MODES)
    result = BuildResult()
    llm = None
    if LLM_MODE in options.modes:
        llm = _llm_writer(output, options, generator, llm_options, load_generator, "dump" in kinds)
        result.llm = llm.stats
    elif generator is not None:
        raise UserError("--generator is for --modes llm (add llm to --modes)")
    with atomic_open(output) as out:

        def write(rec: dict) -> None:
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
            result.written += 1
            result.by_source[rec["source"]] += 1

        for path, kind in zip(paths, kinds, strict=True):
            before = result.written
            if kind == "dump":
                try:
                    for rec in _dump_examples(
                        path,
                        options,
                        tuple(namespaces),
                        workers,
                        limit,
                        progress,
                        result,
                        category,
                        category_depth,
                        llm,
                    ):
                        write(rec)
                except dump.DumpTruncated as e:
                    result.per_input[str(path)] = result.written - before
                    if not allow_truncated:
                        kept = (
                            f"; {result.written} example(s) from the complete pages before it are written "
                            "with --allow-truncated"
                            if result.written
                            else ""
                        )
                        raise dump.DumpTruncated(f"{e}; {output} left unchanged{kept}") from None
                    result.truncated.append(str(e))
            else:
                if not qa_modes:
                    only = "/".join(m for m in options.modes if m not in QA_MODES)
                    print(f"warning: {path}: QA file skipped in {only}-only mode", file=sys.stderr)
                    continue
                records = (
                    read_qa_csv(path, options.instruction) if kind == "csv" else read_qa_json(path, options.instruction)
                )
                for rec in records:
                    write(rec)
            result.per_input[str(path)] = result.written - before
        if result.written == 0:  # raised inside the block: the previous output stays
            why = f" ({result.llm.summary()})" if result.llm is not None else ""
            raise UserError(
                f"{output}: no examples were produced ({', '.join(map(str, paths))}){why}; "
                "the previous file, if any, is left unchanged"
            )
    return result


def _llm_writer(
    output: str | Path,
    options: GenerationOptions,
    generator: str | dict | None,
    llm_options: LLMOptions | None,
    load_generator: Callable[[dict], Any] | None,
    has_dump: bool,
) -> LLMQuestionWriter:
    """The ``llm`` mode's writer: spec checked, then (only then) the model loaded."""
    if generator is None:
        raise UserError("--modes llm needs --generator (a model spec, FILE.yaml:NAME, or a model path / hub id)")
    if not has_dump:
        raise UserError("--modes llm writes questions from dump articles: give a dump (.xml/.xml.bz2)")
    spec = llm_questions.generator_spec(generator)
    llm_options = llm_options or LLMOptions()
    load_generator = load_generator or llm_questions.load_llm
    return LLMQuestionWriter(
        load_generator(spec),
        spec,
        llm_options,
        llm_questions.cache_path(output),
        options.instruction,
        options.min_answer_chars,
        options.max_answer_chars,
    )
