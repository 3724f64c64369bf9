"""Portuguese text: accents, the one normalization, stopwords, legacy decoding, sentence splitting.

A contract module: it imports nothing from the package but ``fileio`` (for ``UserError``), so every stage may use
it. Whatever compares two texts (the split's leakage check, the metrics, BM25) goes through these functions, so the
stages can never disagree on what "the same words" means.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from .fileio import UserError

# --------------------------------------------------------------------------------------------------------------
# Accents and the normalization
# --------------------------------------------------------------------------------------------------------------

ARTICLES = frozenset({"o", "a", "os", "as", "um", "uma", "uns", "umas"})
# The months, as written (the dump's dates, the dataset's answers; acerto compares them without accents)
MONTHS_PT = (
    "janeiro",
    "fevereiro",
    "março",
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

_NON_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
_DIGIT_SEPARATOR = re.compile(r"(?<=\d)[.,](?=\d)")


def strip_accents(text: str) -> str:
    """``"Brasília, Getúlio, ação"`` -> ``"Brasilia, Getulio, acao"`` (NFKD, combining marks dropped)."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize(text: str, drop_articles: bool = False) -> str:
    """The comparison form of a text: casefolded, without accents, punctuation or extra spaces.

    ``drop_articles=False`` (questions and records: the split's duplicate checks): every run of non-word
    characters and ``_`` becomes one space.

    ``drop_articles=True`` (answers: the SQuAD recipe adapted to Portuguese, used by the metrics): punctuation and
    symbols become spaces, except a ``.`` or ``,`` between two digits, which is dropped (``3.353`` -> ``3353``, so
    thousands separators do not split numbers); then the articles o/a/os/as/um/uma/uns/umas are dropped.
    """
    text = strip_accents(text.casefold())
    if not drop_articles:
        text = _NON_WORD.sub(" ", text).replace("_", " ")
        return _SPACES.sub(" ", text).strip()
    text = _DIGIT_SEPARATOR.sub("", text)
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(tok for tok in text.split() if tok not in ARTICLES)


# --------------------------------------------------------------------------------------------------------------
# Stopwords
# --------------------------------------------------------------------------------------------------------------

# Portuguese function words, written without accents (texts are accent-stripped before the lookup). BM25 drops
# them from queries and chunks; the split's Jaccard drops them from questions, so that two questions about
# different subjects ("Qual é a capital do X?") are not near-duplicates only through their function words.
STOPWORDS_PT = frozenset(
    """
a ao aos aquela aquelas aquele aqueles aquilo as ate com como da das de dela delas dele deles depois do dos
e ela elas ele eles em entre era eram essa essas esse esses esta estas este estes eu foi foram ha isso isto
ja la lhe lhes mais mas me mesmo meu minha muito na nas nao nem no nos nossa nosso num numa o os ou para
pela pelas pelo pelos por qual quais quando que quem se sem ser seu seus sua suas so tambem te tem ter teve
tinha um uma umas uns voce sao sobre sido seja foi fosse qual quanto quantos quanta quantas onde cujo cuja
pois porque porem entao ainda apos antes desde durante
""".split()
)

# The smaller set the split's near-duplicate check has always used (its Jaccard threshold was tuned with it, so
# it stays separate from the BM25 list): normalized like the texts it filters.
SIMILARITY_STOPWORDS = frozenset(
    normalize(w)
    for w in """
a o as os um uma uns umas de do da dos das em no na nos nas por pelo pela pelos pelas para com sem sob sobre
e ou que se ao aos à às foi era é são qual quais quem como quando onde porque isso este esta esse essa
seu sua seus suas ele ela eles elas lhe mais muito também já não sim
""".split()
)


# --------------------------------------------------------------------------------------------------------------
# Decoding the text files people bring (the study's answers and CSVs are cp1252/Latin-1)
# --------------------------------------------------------------------------------------------------------------


def decode_text(data: bytes, path: str | Path) -> tuple[str, str]:
    """Decode a text file: UTF-8 (strict, BOM ok), UTF-16 with BOM, then cp1252, then Latin-1.

    Returns ``(text, encoding)``. Binary data (NUL bytes) or broken UTF-16 -> ``UserError`` naming ``path``.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise UserError(f"{path}: unreadable UTF-16 text") from None
    if b"\x00" in data:
        raise UserError(f"{path}: binary data (NUL bytes), not a text file")
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def read_legacy_text(path: str | Path) -> str:
    """A text file in whatever encoding :func:`decode_text` recognizes, with ``\\n`` line ends."""
    text, _ = decode_text(Path(path).read_bytes(), path)
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --------------------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------------------

# Words that end with a period without ending the sentence (compared lowercased, without the period).
ABBREVIATIONS = frozenset(
    """
sr sra srs sras srta dr dra drs dras prof profa profs gen cel maj cap ten sgt alm brig mal cmte cmdt pe fr frei
sto sta s ss av r jr st mt pres gov dep sen min emb exmo exma revmo ilmo
p pp pág págs pag pags vol vols fl fls n nº núm num nos art arts inc al par cit op ibid id cf ex aprox séc sec
ed eds org orgs coord trad comp ltda cia fig figs tab obs ca c
""".split()
)
_SENTENCE_END = re.compile(r"([.!?…]+)([\"'”’»)\]]*)\s+(?=[\"'“‘«(\[—–-]?[A-ZÀ-ÖØ-Þ0-9])")
_ROMAN_LETTERS = set("IVX")


def _is_abbreviation(before: str) -> bool:
    """Whether the text before a period ends with an abbreviation (so the period does not end a sentence)."""
    tokens = before.split()
    if not tokens:
        return False
    token = tokens[-1].lstrip("([\"'“«")
    bare = token.rstrip(".").lower()
    if not bare:
        return False
    if "." in bare:  # a.C., d.C., S.A., E.U.A., n.º
        return True
    if len(bare) == 1 and bare.isalpha():
        # An initial ("D. Pedro", "J. K.") unless it is a Roman numeral after a name ("Pedro I. Em 1824").
        prev = tokens[-2] if len(tokens) > 1 else ""
        is_roman_after_name = (
            token[0] in _ROMAN_LETTERS and len(prev) > 2 and prev[0].isupper() and not prev.endswith(".")
        )
        return not is_roman_after_name
    return bare in ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """Split Portuguese prose into sentences.

    Does not break on abbreviations ("D. Pedro", "Sr.", "n.º", "a.C."), initials, numbers ("1.500", "1.º") or
    units ("km²"); line breaks (paragraphs, list items) always end a sentence.
    """
    sentences: list[str] = []
    for para in re.split(r"\n+", text):
        para = _SPACES.sub(" ", para).strip()
        if not para:
            continue
        start = 0
        for m in _SENTENCE_END.finditer(para):
            if m.group(1) == "." and _is_abbreviation(para[start : m.start()]):
                continue
            sentence = para[start : m.end()].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        rest = para[start:].strip()
        if rest:
            sentences.append(rest)
    return sentences


def end_with_period(text: str) -> str:
    """``text`` stripped, with a final period unless it already ends a sentence ("." "!" "?" "…")."""
    text = text.strip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def first_sentences(text: str, n: int, max_chars: int) -> str:
    """The first ``n`` sentences of ``text`` that fit in ``max_chars`` (fewer if they do not fit; "" if none)."""
    out = ""
    for sentence in split_sentences(text)[: max(n, 1)]:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > max_chars:
            break
        out = candidate
    return out


# --------------------------------------------------------------------------------------------------------------
# Place names and the contracted article ("em" + "o Rio de Janeiro" -> "no Rio de Janeiro")
# --------------------------------------------------------------------------------------------------------------

# Place names that take a definite article in Portuguese ("o Brasil", "a Bahia", "os Estados Unidos"). A name not
# listed takes none ("São Paulo", "Lisboa", "Portugal", "Minas Gerais", "Pernambuco"): the default. Cities that
# are named after a river or a state ("Rio de Janeiro") follow the article of the name.
PLACE_ARTICLES: dict[str, str] = {
    name: art
    for art, names in {
        "o": "Brasil|Rio de Janeiro|Rio Grande do Sul|Rio Grande do Norte|Paraná|Maranhão|Pará|Amazonas|Acre|Amapá|"
        "Piauí|Ceará|Espírito Santo|Tocantins|Mato Grosso|Mato Grosso do Sul|Distrito Federal|Recôncavo|"
        "Nordeste|Sudeste|Centro-Oeste|Norte|Sul|Peru|Chile|Uruguai|Paraguai|Equador|Japão|Canadá|México|"
        "Reino Unido|Egito|Vaticano|Oriente Médio|Prata|Atlântico|Pacífico",
        "a": "Bahia|Paraíba|Argentina|Bolívia|Colômbia|Venezuela|Guiana|França|Alemanha|Inglaterra|Espanha|Itália|"
        "Áustria|Bélgica|Holanda|Suíça|Rússia|China|Índia|Europa|América|América do Sul|América do Norte|"
        "América Latina|África|Ásia|Oceania|Amazônia|Guanabara",
        "os": "Estados Unidos|Países Baixos|Andes",
    }.items()
    for name in names.split("|")
}

# Common nouns that head a place name and bring their article with them ("o Palácio do Catete",
# "a Capitania de Minas Gerais", "as Margens do Ipiranga"): the first word of the name is looked up.
PLACE_HEADS: dict[str, str] = {
    word: art
    for art, words in {
        "o": "Palácio Castelo Oceano Reino Império Estado Hino Mar Lago Monte Morro Convento Mosteiro Colégio "
        "Hospital Teatro Museu Porto Vale Planalto Arquipélago Golfo Pantanal Engenho Forte Paço Solar Largo",
        "a": "Fazenda Cordilheira Capitania Província Serra Ilha Praça Igreja Catedral Baía Região Cidade "
        "Floresta Chapada Colônia Universidade Casa República",
        "as": "Margens Ilhas",
    }.items()
    for word in words.split()
}

CONTRACTIONS: dict[str, dict[str, str]] = {
    "em": {"o": "no", "a": "na", "os": "nos", "as": "nas"},
    "de": {"o": "do", "a": "da", "os": "dos", "as": "das"},
    "a": {"o": "ao", "a": "à", "os": "aos", "as": "às"},
    "por": {"o": "pelo", "a": "pela", "os": "pelos", "as": "pelas"},
}
_PLACES_LONGEST_FIRST = sorted(PLACE_ARTICLES, key=len, reverse=True)
_ARTICLE_START = re.compile(r"^(?:o|a|os|as|um|uma|uns|umas)\s", re.IGNORECASE)


def _listed_place(phrase: str) -> str | None:
    """The article of the longest name of PLACE_ARTICLES that starts ``phrase`` and ends at a word boundary."""
    for name in _PLACES_LONGEST_FIRST:
        if phrase.startswith(name) and (len(phrase) == len(name) or not phrase[len(name)].isalnum()):
            return PLACE_ARTICLES[name]
    return None


def place_article(phrase: str) -> str | None:
    """The definite article a place name takes ("Rio de Janeiro" -> "o", "Bahia" -> "a", "São Paulo" -> None).

    Looks at the start of ``phrase`` (a value may go on: "Rio de Janeiro, Brasil"): the longest listed name in
    :data:`PLACE_ARTICLES` that ends at a word boundary, else the first word in :data:`PLACE_HEADS`.
    """
    phrase = phrase.strip()
    listed = _listed_place(phrase)
    if listed:
        return listed
    head = phrase.split(maxsplit=1)[0] if phrase else ""
    if head in PLACE_HEADS and " " in phrase:  # "Vila Rica", "Rio Branco", "Minas Gerais": no head, no article
        return PLACE_HEADS[head]
    return None


def contract_preposition(prep: str, phrase: str) -> str:
    """``prep`` before ``phrase``, contracted with the place's article: ("em", "Rio de Janeiro") ->
    "no Rio de Janeiro", ("de", "Bahia") -> "da Bahia", ("em", "São Paulo") -> "em São Paulo".

    A phrase that starts with a definite article contracts with it (("em", "o Brasil") -> "no Brasil"); a phrase
    that is not a listed place keeps the bare preposition.
    """
    phrase = phrase.strip()
    m = re.match(r"(o|a|os|as)\s+(?=\S)", phrase, re.IGNORECASE)
    if m:
        return f"{CONTRACTIONS[prep][m.group(1).lower()]} {phrase[m.end() :]}"
    art = None if _ARTICLE_START.match(phrase) else place_article(phrase)
    if art is None:
        return f"{prep} {phrase}"
    return f"{CONTRACTIONS[prep][art]} {phrase}"


def with_article(phrase: str) -> str:
    """A place name as a subject or predicate: "Rio de Janeiro" -> "o Rio de Janeiro"; others unchanged."""
    phrase = phrase.strip()
    art = None if _ARTICLE_START.match(phrase) else place_article(phrase)
    return f"{art} {phrase}" if art else phrase


def is_common_phrase(value: str) -> bool:
    """Whether a capitalized value reads as a common noun phrase that should be lower-cased inside a sentence.

    True for one capitalized word followed by lowercase words only ("Militar", "Advogado e escritor",
    "Alferes, dentista prático, tropeiro e minerador", "Real (R$)": parentheses are ignored); False for
    acronyms ("PT"), names with more than one capital ("Presidente do Brasil") and listed place names.
    """
    text = re.sub(r"\([^()]*\)", " ", value).strip()
    words = re.findall(r"[^\W\d_][\w\-’']*", text)
    if not words or not (len(words[0]) > 1 and words[0][0].isupper() and words[0][1:2].islower()):
        return False
    # A listed place is a name ("Brasil colonial"); a head noun with lowercase words is not ("República federal").
    return not any(w[0].isupper() for w in words[1:]) and _listed_place(text) is None


def lower_common(value: str) -> str:
    """``value`` with its first letter lower-cased when :func:`is_common_phrase` ("Militar" -> "militar")."""
    return value[0].lower() + value[1:] if is_common_phrase(value) else value
