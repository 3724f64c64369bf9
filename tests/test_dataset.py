"""QA generation from hand-built articles, import of the study's CSV/JSON, and dataset reading."""

from __future__ import annotations

import pytest

from llamawiki import prompt
from llamawiki.dataset import (
    GenerationOptions,
    article_examples,
    describe_subject,
    detect_input_kind,
    infobox_qa,
    parse_modes,
)
from llamawiki.fileio import UserError
from llamawiki.text import normalize
from llamawiki.wikitext import Article, Section


def brasil() -> Article:
    return Article(
        title="Brasil",
        page_id=1,
        lead=(
            "O Brasil, oficialmente República Federativa do Brasil, é o maior país da América do Sul. "
            "D. Pedro I proclamou a independência em 1822, e a área do país é de 8.515.767 km². "
            "Uma terceira frase que não entra."
        ),
        sections=[
            Section(
                "História",
                2,
                "A história do Brasil começa com os povos indígenas. Os portugueses chegaram "
                "em 1500. O resto não entra.",
            ),
            Section("Vida cultural", 2, "* Carnaval\n* Samba\n\nA cultura brasileira é diversa."),
            Section("Referências", 2, "Uma referência qualquer."),
            Section("Economia", 2, "Curta."),
        ],
        infobox_type="País",
        infobox={
            "nome_oficial": "República Federativa do Brasil",
            "capital": "Brasília",
            "língua_oficial": "Português",
            "moeda": "Real",
            "população_estimada": "203 062 512",
            "população_ano": "2022",
            "área_total": "8 515 767 km²",
            "título_líder1": "Presidente",
            "nome_líder1": "Luiz Inácio Lula da Silva",
            "imagem_bandeira": "Bandeira do Brasil",
            "clima": "tropical",
            "hino": "{{quebrado",
            "nome": "Brasil",
        },
        categories=["Brasil"],
        url="https://pt.wikipedia.org/wiki/Brasil",
    )


def vargas() -> Article:
    return Article(
        title="Getúlio Vargas",
        page_id=2,
        lead=(
            "Getúlio Dornelles Vargas (São Borja, 19 de abril de 1882 — Rio de Janeiro, 24 de agosto de 1954) "
            "foi um advogado e político brasileiro. Governou o Brasil por dezoito anos."
        ),
        sections=[Section("Morte", 2, "Vargas suicidou-se no Palácio do Catete em 1954.")],
        infobox_type="Político",
        infobox={
            "nascimento": "19 de abril de 1882",
            "morte": "24 de agosto de 1954",
            "cargo": "Presidente do Brasil",
            "mandato": "3 de novembro de 1930 a 29 de outubro de 1945",
            "antecessor": "Washington Luís",
            "sucessor": "José Linhares",
            "partido": "PTB",
            "cargo2": "Governador do Rio Grande do Sul",
            "antecessor2": "Borges de Medeiros",
        },
    )


def qa(records, source=None):
    return {r["input"]: r["output"] for r in records if source is None or r["source"] == source}


# ---------------------------------------------------------------------------------------------- sentences
def test_infobox_country_questions_are_natural_portuguese():
    pairs = dict(infobox_qa(brasil()))
    assert pairs["Qual é a capital do Brasil?"] == "A capital do Brasil é Brasília."
    assert pairs["Qual é a língua oficial do Brasil?"] == "A língua oficial do Brasil é o português."
    assert pairs["Qual é a moeda do Brasil?"] == "A moeda do Brasil é o real."
    # the census year of população_ano goes with the population, not into a question of its own
    assert pairs["Qual é a população do Brasil?"] == "A população do Brasil é de 203 062 512 (censo de 2022)."
    assert pairs["Qual é a área do Brasil?"] == "A área do Brasil é de 8 515 767 km²."
    assert pairs["Quem é o presidente do Brasil?"] == "O presidente do Brasil é Luiz Inácio Lula da Silva."
    assert pairs["Qual é o nome oficial do Brasil?"] == "O nome oficial do Brasil é a República Federativa do Brasil."
    # unmapped field: generic question with a guessed gender ("clima" is masculine)
    assert pairs["Qual é o clima do Brasil?"] == "O clima do Brasil é tropical."
    answers = " ".join(pairs.values())
    assert not any(a.endswith(" 2022.") for a in pairs.values())
    assert "Bandeira" not in answers  # image fields are not facts
    assert "{{" not in answers  # values with markup leftovers are skipped
    assert all(q.endswith("?") and a.endswith(".") for q, a in pairs.items())


def test_infobox_city_of_brazil():
    city = Article(
        title="Brasília",
        page_id=3,
        lead="Brasília é a capital federal do Brasil.",
        infobox_type="Cidade do Brasil",
        infobox={
            "estado": "Distrito Federal",
            "fundação": "21 de abril de 1960",
            "prefeito": "Fulano de Tal",
            "população": "2 817 068",
            "fundador": "Juscelino Kubitschek",
        },
    )
    pairs = dict(infobox_qa(city))
    assert (
        pairs["Quando foi fundada a cidade de Brasília?"] == "A cidade de Brasília foi fundada em 21 de abril de 1960."
    )
    assert pairs["Em que estado fica Brasília?"] == "Brasília fica no Distrito Federal."
    assert pairs["Quem é o prefeito de Brasília?"] == "O prefeito de Brasília é Fulano de Tal."
    assert pairs["Quem fundou a cidade de Brasília?"] == "A cidade de Brasília foi fundada por Juscelino Kubitschek."
    sp = Article(
        title="Campinas",
        page_id=4,
        lead="Campinas é um município.",
        infobox_type="Info/Cidade do Brasil",
        infobox={"estado": "São Paulo"},
    )
    assert dict(infobox_qa(sp))["Em que estado fica Campinas?"] == "Campinas fica no estado de São Paulo."


def test_infobox_politician_uses_past_tense_and_office():
    pairs = dict(infobox_qa(vargas()))
    assert pairs["Quando nasceu Getúlio Vargas?"] == "Getúlio Vargas nasceu em 19 de abril de 1882."
    assert pairs["Quando morreu Getúlio Vargas?"] == "Getúlio Vargas morreu em 24 de agosto de 1954."
    assert pairs["Qual foi o partido político de Getúlio Vargas?"] == "O partido político de Getúlio Vargas foi PTB."
    assert pairs["Quem foi o antecessor de Getúlio Vargas como Presidente do Brasil?"] == (
        "O antecessor de Getúlio Vargas como Presidente do Brasil foi Washington Luís."
    )
    # the numbered second office keeps its own antecessor
    assert pairs["Quem foi o antecessor de Getúlio Vargas como Governador do Rio Grande do Sul?"] == (
        "O antecessor de Getúlio Vargas como Governador do Rio Grande do Sul foi Borges de Medeiros."
    )
    assert pairs["Quando foi o mandato de Getúlio Vargas como Presidente do Brasil?"].endswith(
        "foi de 3 de novembro de 1930 a 29 de outubro de 1945."
    )


def test_infobox_monarch_and_military_conflict():
    pedro = Article(
        title="Pedro I do Brasil",
        page_id=5,
        lead="D. Pedro I (Queluz, 12 de outubro de 1798 — Queluz, 24 de setembro de 1834) foi o "
        "primeiro imperador do Brasil.",
        infobox_type="Monarca",
        infobox={
            "reinado": "12 de outubro de 1822 a 7 de abril de 1831",
            "sucessor": "Pedro II",
            "casa": "Bragança",
            "titulo": "Imperador do Brasil",
        },
    )
    pairs = dict(infobox_qa(pedro))
    assert pairs["Quando foi o reinado de Pedro I do Brasil como Imperador do Brasil?"] == (
        "O reinado de Pedro I do Brasil como Imperador do Brasil foi de 12 de outubro de 1822 a 7 de abril de 1831."
    )
    assert pairs["A qual casa real pertenceu Pedro I do Brasil?"] == "Pedro I do Brasil pertenceu à Casa de Bragança."
    assert pairs["Qual título teve Pedro I do Brasil?"] == "Pedro I do Brasil teve o título de Imperador do Brasil."

    war = Article(
        title="Revolução Constitucionalista de 1932",
        page_id=6,
        lead="A Revolução Constitucionalista de 1932 foi um movimento armado ocorrido em São Paulo.",
        infobox_type="Conflito militar",
        infobox={
            "data": "9 de julho a 2 de outubro de 1932",
            "local": "São Paulo",
            "resultado": "Vitória do governo federal",
            "combatente1": "São Paulo",
            "combatente2": "Governo Provisório",
            "imagem": "Mapa.png",
        },
    )
    pairs = dict(infobox_qa(war))
    assert pairs["Quando ocorreu a Revolução Constitucionalista de 1932?"] == (
        "A Revolução Constitucionalista de 1932 ocorreu em 9 de julho a 2 de outubro de 1932."
    )
    assert pairs["Onde ocorreu a Revolução Constitucionalista de 1932?"] == (
        "A Revolução Constitucionalista de 1932 ocorreu em São Paulo."
    )
    assert pairs["Qual foi o resultado da Revolução Constitucionalista de 1932?"] == (
        "O resultado da Revolução Constitucionalista de 1932 foi Vitória do governo federal."
    )
    # numbered belligerents merge into one answer
    assert pairs["Quem participou da Revolução Constitucionalista de 1932?"] == (
        "Participaram da Revolução Constitucionalista de 1932: São Paulo e Governo Provisório."
    )


def test_subject_detection():
    assert describe_subject(brasil()).de == "do Brasil"
    assert describe_subject(vargas()).is_person and describe_subject(vargas()).past
    living = Article(
        title="Dilma Rousseff",
        page_id=7,
        lead="Dilma Vana Rousseff (Belo Horizonte, 14 de dezembro de 1947) é uma economista e política brasileira.",
    )
    s = describe_subject(living)
    assert s.is_person and not s.past
    portugal = Article(title="Portugal", page_id=8, lead="Portugal é um país europeu.")
    assert describe_subject(portugal).de == "de Portugal" and not describe_subject(portugal).is_person


# ---------------------------------------------------------------------------------------------- lead / section
def test_lead_questions_for_people_and_things():
    people = qa(article_examples(vargas(), GenerationOptions(modes=("lead",))))
    assert list(people) == ["Quem foi Getúlio Vargas?"]
    assert people["Quem foi Getúlio Vargas?"].startswith("Getúlio Dornelles Vargas (São Borja")
    assert people["Quem foi Getúlio Vargas?"].endswith("Governou o Brasil por dezoito anos.")

    things = qa(article_examples(brasil(), GenerationOptions(modes=("lead",))))
    answer = things["O que é o Brasil?"]
    # two sentences, not broken at "D." nor at "8.515.767"
    assert answer == (
        "O Brasil, oficialmente República Federativa do Brasil, é o maior país da América do Sul. "
        "D. Pedro I proclamou a independência em 1822, e a área do país é de 8.515.767 km²."
    )
    dilma = Article(
        title="Dilma Rousseff",
        page_id=7,
        lead="Dilma Vana Rousseff (Belo Horizonte, 14 de dezembro de 1947) é uma economista e política brasileira.",
    )
    assert "Quem é Dilma Rousseff?" in qa(article_examples(dilma, GenerationOptions(modes=("lead",))))


def test_section_questions():
    pairs = qa(article_examples(brasil(), GenerationOptions(modes=("section",))))
    assert pairs["Qual é a história do Brasil?"] == (
        "A história do Brasil começa com os povos indígenas. Os portugueses chegaram em 1500."
    )
    # generic template; the list before the prose is skipped
    assert pairs["O que se sabe sobre a vida cultural do Brasil?"] == "A cultura brasileira é diversa."
    assert not any("referência" in q.lower() for q in pairs)  # boilerplate section skipped
    assert "Como é a economia do Brasil?" not in pairs  # "Curta." is below min_answer_chars
    assert qa(article_examples(vargas(), GenerationOptions(modes=("section",)))) == {
        "Como morreu Getúlio Vargas?": "Vargas suicidou-se no Palácio do Catete em 1954."
    }


# ---------------------------------------------------------------------------------------------- records
def test_records_use_the_one_template_and_carry_their_article():
    records = article_examples(brasil())
    assert {r["source"] for r in records} == {"infobox", "lead", "section"}
    for r in records:
        assert set(r) == {"text", "instruction", "input", "output", "article", "source"}
        assert r["text"] == prompt.build_example(r["input"], r["output"], prompt.INSTRUCTION_QA)
        assert r["instruction"] == prompt.INSTRUCTION_QA
        assert r["article"] == "Brasil"
    questions = [normalize(r["input"]) for r in records]
    assert len(questions) == len(set(questions))


def test_duplicate_questions_within_an_article_are_dropped():
    art = brasil()
    art.sections.append(Section("História", 3, "Outra seção com o mesmo nome e texto bastante longo."))
    art.infobox["capital_federal"] = "Brasília"  # "capital*" is not a prefix rule: generic question
    art.infobox["Capital"] = "Rio de Janeiro"  # same normalized field name as "capital": one question
    records = article_examples(art)
    assert sum(r["input"] == "Qual é a história do Brasil?" for r in records) == 1
    assert sum(r["input"] == "Qual é a capital do Brasil?" for r in records) == 1


def test_answer_length_limits_are_configurable():
    short = article_examples(brasil(), GenerationOptions(max_answer_chars=40))
    assert short and all(len(r["output"]) <= 40 for r in short)
    long_only = article_examples(brasil(), GenerationOptions(min_answer_chars=80))
    assert long_only and all(len(r["output"]) >= 80 for r in long_only)
    assert "O que é o Brasil?" in qa(long_only)


def test_modes_selection_and_raw_mode():
    assert {r["source"] for r in article_examples(brasil(), GenerationOptions(modes=("infobox",)))} == {"infobox"}
    raw = article_examples(brasil(), GenerationOptions(modes=("raw",), min_raw_chars=10))
    assert raw == [{"text": brasil().plain_text(), "article": "Brasil", "source": "raw"}]
    assert "== História ==" in raw[0]["text"]
    assert parse_modes("lead, infobox,lead") == ("lead", "infobox")
    with pytest.raises(UserError, match="unknown mode"):
        parse_modes("infobox,perguntas")


# ---------------------------------------------------------------------------------------------- imports
def test_detect_input_kind(tmp_path):
    assert detect_input_kind("x.xml.bz2") == "dump" and detect_input_kind("x.xml") == "dump"
    assert detect_input_kind("x.csv") == "csv" and detect_input_kind("x.jsonl") == "json"
    odd = tmp_path / "dados"
    odd.write_text('[{"input": "a", "output": "b"}]', encoding="utf-8")
    assert detect_input_kind(odd) == "json"
    odd.write_text("<mediawiki>", encoding="utf-8")
    assert detect_input_kind(odd) == "dump"
    odd.write_text("pergunta;resposta", encoding="utf-8")
    assert detect_input_kind(odd) == "csv"
