"""The Portuguese of the template questions: contracted place articles, lower-cased common nouns, section questions,
and data/check_dataset.py counting those defects (a fixture with known defects, and the sample dump: none)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from llamawiki.dataset import Subject, count_template_defects, infobox_qa, section_question, template_defects
from llamawiki.text import contract_preposition, is_common_phrase, lower_common, place_article, with_article
from llamawiki.wikitext import Article

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"


# ------------------------------------------------------------------------------------------------------------------
# The rules
# ------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prep, place, expected",
    [
        ("em", "Rio de Janeiro", "no Rio de Janeiro"),
        ("em", "Bahia", "na Bahia"),
        ("em", "Estados Unidos", "nos Estados Unidos"),
        ("de", "Rio de Janeiro", "do Rio de Janeiro"),
        ("de", "Bahia", "da Bahia"),
        ("a", "França", "à França"),
        ("por", "Brasil", "pelo Brasil"),
        ("em", "São Paulo", "em São Paulo"),  # cities take no article
        ("em", "Lisboa", "em Lisboa"),
        ("em", "Portugal", "em Portugal"),  # nor do some countries and states
        ("em", "Minas Gerais", "em Minas Gerais"),
        ("em", "Rio Branco", "em Rio Branco"),  # only the listed "Rio ..." names
        ("em", "Rio de Janeiro, Brasil", "no Rio de Janeiro, Brasil"),  # the start of the value decides
        ("em", "Palácio do Catete, Rio de Janeiro", "no Palácio do Catete, Rio de Janeiro"),  # a head noun
        ("em", "Fazenda do Pombal", "na Fazenda do Pombal"),
        ("em", "Vila Rica, Capitania de Minas Gerais", "em Vila Rica, Capitania de Minas Gerais"),
        ("em", "o Brasil", "no Brasil"),  # an article already there contracts
        ("em", "1822", "em 1822"),
    ],
)
def test_contract_preposition(prep, place, expected):
    assert contract_preposition(prep, place) == expected


def test_place_article_and_with_article():
    assert place_article("Rio de Janeiro") == "o"
    assert place_article("Bahia") == "a"
    assert place_article("São Paulo") is None
    assert place_article("Brasília") is None
    assert place_article("Brasilândia") is None  # "Brasil" only as a whole word
    assert with_article("Rio de Janeiro") == "o Rio de Janeiro"
    assert with_article("Brasília") == "Brasília"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("Militar", "militar"),
        ("Advogado e escritor", "advogado e escritor"),
        ("Alferes, dentista prático, tropeiro e minerador", "alferes, dentista prático, tropeiro e minerador"),
        ("Real (R$)", "real (R$)"),
        ("PT", "PT"),  # acronyms stay
        ("PSD, PMDB", "PSD, PMDB"),
        ("Presidente do Brasil", "Presidente do Brasil"),  # more than one capital: a name
        ("Brasil", "Brasil"),  # a listed place
        ("Brasil colonial", "Brasil colonial"),  # a listed place with lowercase words: still a name
        ("República federal presidencialista", "república federal presidencialista"),  # a head noun is common
        ("militar", "militar"),
    ],
)
def test_lower_common(value, expected):
    assert lower_common(value) == expected
    assert is_common_phrase(value) == (value != expected)


def _person(**infobox: str) -> Article:
    return Article(
        title="Deodoro da Fonseca",
        page_id=1,
        infobox_type="Info/Político",
        infobox=infobox,
        lead="Manuel Deodoro da Fonseca (Alagoas, 5 de agosto de 1827 — Rio de Janeiro, 23 de agosto "
        "de 1892) foi um militar e político brasileiro.",
    )


def test_infobox_answers_use_contractions_and_lowercase():
    pairs = dict(
        infobox_qa(
            _person(
                local_morte="Rio de Janeiro",
                local_nascimento="Alagoas",
                profissao="Militar",
                patente="Marechal",
                religiao="Católica",
                partido="PRF",
            )
        )
    )
    assert pairs["Onde morreu Deodoro da Fonseca?"] == "Deodoro da Fonseca morreu no Rio de Janeiro."
    assert pairs["Onde nasceu Deodoro da Fonseca?"] == "Deodoro da Fonseca nasceu em Alagoas."
    assert pairs["Qual foi a profissão de Deodoro da Fonseca?"] == "A profissão de Deodoro da Fonseca foi militar."
    assert pairs["Qual foi a patente de Deodoro da Fonseca?"] == "A patente de Deodoro da Fonseca foi marechal."
    assert pairs["Qual foi a religião de Deodoro da Fonseca?"] == "A religião de Deodoro da Fonseca foi católica."
    assert (
        pairs["Qual foi o partido político de Deodoro da Fonseca?"]
        == "O partido político de Deodoro da Fonseca foi PRF."
    )  # not a common-noun field: kept


def test_capital_takes_the_article_of_the_place():
    imperio = Article(
        title="Império do Brasil",
        page_id=2,
        infobox_type="Info/País extinto",
        infobox={"capital": "Rio de Janeiro", "moeda": "Real"},
        lead="O Império do Brasil foi um Estado monárquico.",
    )
    pairs = dict(infobox_qa(imperio))
    assert pairs["Qual foi a capital do Império do Brasil?"] == "A capital do Império do Brasil foi o Rio de Janeiro."
    assert pairs["Qual foi a moeda do Império do Brasil?"] == "A moeda do Império do Brasil foi o real."
    assert with_article("República Federativa do Brasil") == "a República Federativa do Brasil"


PEDRO = Subject(title="Pedro I do Brasil", art=None, is_person=True, past=True)
BRASIL = Subject(title="Brasil", art="o", is_person=False, past=False)


@pytest.mark.parametrize(
    "subject, title, words, expected",
    [
        # the measured defect: a title with a name in it is quoted as a topic
        (
            PEDRO,
            "Primeiro imperador do Brasil",
            set(),
            'O que se sabe sobre Pedro I do Brasil no que diz respeito a "Primeiro imperador do Brasil"?',
        ),
        (PEDRO, "Abdicação", set(), "O que se sabe sobre a abdicação de Pedro I do Brasil?"),
        (PEDRO, "Últimos anos", set(), "O que se sabe sobre os últimos anos de Pedro I do Brasil?"),
        (
            PEDRO,
            "Depois da abdicação",
            set(),
            'O que se sabe sobre Pedro I do Brasil no que diz respeito a "Depois da abdicação"?',
        ),
        (BRASIL, "Vida cultural", set(), "O que se sabe sobre a vida cultural do Brasil?"),
        (BRASIL, "O Dia do Fico", set(), "O que se sabe sobre o Dia do Fico do Brasil?"),
        (BRASIL, "Matrizes", set(), "O que se sabe sobre as matrizes do Brasil?"),
        (BRASIL, "Brasília", {"Brasília"}, 'O que se sabe sobre o Brasil no que diz respeito a "Brasília"?'),
        (BRASIL, "História", set(), "Qual é a história do Brasil?"),  # its own template
    ],
)
def test_section_question(subject, title, words, expected):
    assert section_question(subject, title, words) == expected


def test_generic_participle_agrees_with_the_subject():
    lei = Article(
        title="Lei Áurea",
        page_id=3,
        infobox_type="Info/Legislação",
        infobox={"criado_por": "Conselho de Estado"},
        lead="A Lei Áurea foi a lei que extinguiu a escravidão.",
    )
    pairs = dict(infobox_qa(lei))
    assert pairs["Por quem ou pelo que a Lei Áurea foi criada?"] == "A Lei Áurea foi criada por Conselho de Estado."


# ------------------------------------------------------------------------------------------------------------------
# The checker
# ------------------------------------------------------------------------------------------------------------------


def _rec(question: str, answer: str, article: str, source: str) -> dict:
    return {
        "text": f"{question}\n{answer}",
        "instruction": "i",
        "input": question,
        "output": answer,
        "article": article,
        "source": source,
    }


FIXTURE = [
    _rec("Onde morreu Tiradentes?", "Tiradentes morreu em Rio de Janeiro.", "Tiradentes", "infobox"),  # 1 prep
    _rec("Onde ocorreu a Revolta?", "A Revolta ocorreu em Bahia e em Estados Unidos.", "Revolta", "infobox"),  # 2
    _rec("Onde nasceu X?", "X nasceu em São Paulo.", "X", "infobox"),  # ok: no article
    _rec("Onde nasceu Y?", "Y nasceu no Rio de Janeiro.", "Y", "infobox"),  # ok
    _rec(
        "Qual foi a profissão de Deodoro da Fonseca?",
        "A profissão de Deodoro da Fonseca foi Militar.",
        "Deodoro da Fonseca",
        "infobox",
    ),  # 1 noun
    _rec(
        "Qual é a língua oficial do Brasil?", "A língua oficial do Brasil é Português.", "Brasil", "infobox"
    ),  # 1 noun
    _rec("Qual foi o partido político de Z?", "O partido político de Z foi PT.", "Z", "infobox"),  # ok: not a field
    _rec("Qual é a profissão de W?", "A profissão de W é PM.", "W", "infobox"),  # ok: acronym
    _rec(
        "O que se sabe sobre Primeiro imperador do Brasil de Pedro I do Brasil?",
        "Texto da seção.",
        "Pedro I do Brasil",
        "section",
    ),  # 1 section
    _rec("O que se sabe sobre vida cultural do Brasil?", "Texto.", "Brasil", "section"),  # 1 section
    _rec("O que se sabe sobre a abdicação de Pedro I do Brasil?", "Texto.", "Pedro I do Brasil", "section"),  # ok
    _rec(
        'O que se sabe sobre Pedro I do Brasil no que diz respeito a "Primeiro imperador"?',
        "Texto.",
        "Pedro I do Brasil",
        "section",
    ),  # ok
    _rec("Onde fica?", "Ele morreu em Rio de Janeiro.", "Q", "section"),  # section answers are Wikipedia's: ok
    _rec("Pergunta importada?", "Morreu em Rio de Janeiro, foi Militar.", "", "csv"),  # not a template
]
FIXTURE_COUNTS = {"preposicao_sem_artigo": 3, "substantivo_maiusculo": 2, "secao_malformada": 2}


def test_template_defects_per_record():
    assert template_defects(FIXTURE[0]) == {"preposicao_sem_artigo": 1}
    assert sum(template_defects(FIXTURE[2]).values()) == 0


def test_count_template_defects_on_fixture():
    counts, n = count_template_defects(FIXTURE)
    assert n == len(FIXTURE)
    assert dict(counts) == FIXTURE_COUNTS


def _script(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "data" / "check_dataset.py"), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_dataset_script_table_and_exit_codes(tmp_path):
    path = tmp_path / "defeitos.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in FIXTURE), encoding="utf-8")
    r = _script(path)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: int(line.split()[1]) for line in r.stdout.splitlines()[1:]}
    assert rows == FIXTURE_COUNTS
    assert f"{len(FIXTURE)} records" in r.stdout.splitlines()[0]
    assert _script(path, "--fail-on-defects").returncode == 1
    clean = tmp_path / "limpo.jsonl"
    clean.write_text(json.dumps(FIXTURE[2], ensure_ascii=False) + "\n", encoding="utf-8")
    assert _script(clean, "--fail-on-defects").returncode == 0


def test_check_dataset_bad_input_is_one_line(tmp_path):
    r = _script(tmp_path / "nao-existe.jsonl")
    assert r.returncode != 0
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1


def test_sample_build_has_no_defects(tmp_path):
    out = tmp_path / "amostra.jsonl"
    r = subprocess.run(
        [sys.executable, str(ROOT / "build_dataset.py"), str(SAMPLE), "--output", str(out), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) > 300 and {r["source"] for r in records} == {"infobox", "lead", "section"}
    counts, _ = count_template_defects(records)
    assert dict(counts) == {kind: 0 for kind in FIXTURE_COUNTS}
    assert _script(out, "--fail-on-defects").returncode == 0
    answers = {r["input"]: r["output"] for r in records}
    assert answers["Onde morreu Tiradentes?"] == "Tiradentes morreu no Rio de Janeiro."
    assert answers["Qual foi a profissão de Deodoro da Fonseca?"] == "A profissão de Deodoro da Fonseca foi militar."
    assert 'O que se sabe sobre Pedro I do Brasil no que diz respeito a "Primeiro imperador do Brasil"?' in answers


def test_subject_article_from_the_first_word_of_the_title():
    from llamawiki.dataset import describe_subject

    futebol = Article(title="Futebol no Brasil", page_id=5, lead="O futebol é o esporte mais popular do Brasil.")
    assert describe_subject(futebol).de == "do Futebol no Brasil"
    sp = Article(title="São Paulo", page_id=6, lead="São Paulo é um município brasileiro.")
    assert describe_subject(sp).de == "de São Paulo"
