"""The shipped question sets: data/check_questions.py accepts them, and the held-out set really is held out."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from llamawiki.dump import iter_articles
from llamawiki.evaluation import load_questions
from llamawiki.split import near_duplicates

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SAMPLE_DUMP = DATA / "ptwiki-amostra-pages-articles.xml.bz2"
STUDY_QUESTIONS = DATA / "perguntas.csv"
SAMPLE_QUESTIONS = DATA / "perguntas-amostra.csv"
HEADER = "id,pergunta,resposta_referencia,artigo,respostas_aceitas,minimo_fatos,tipo\n"


def check(*paths) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, str(DATA / "check_questions.py"), *map(str, paths)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_shipped_question_files_pass_the_checker():
    proc = check(STUDY_QUESTIONS, SAMPLE_QUESTIONS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert f"{STUDY_QUESTIONS}: 19 questions ok" in proc.stdout
    n = len(rows(SAMPLE_QUESTIONS))
    assert f"{SAMPLE_QUESTIONS}: {n} questions ok (infobox " in proc.stdout


def test_study_questions_still_load_with_the_new_columns():
    questions = load_questions(STUDY_QUESTIONS)
    assert len(questions) == 19
    assert questions[0].pergunta == "Qual a capital do Brasil?"
    table = rows(STUDY_QUESTIONS)
    assert list(table[0])[-4:] == ["respostas_aceitas", "minimo_fatos", "tipo", "respostas_erradas"]
    by_id = {r["id"]: r for r in table}
    assert by_id["1"]["respostas_aceitas"] == "Brasília"
    assert by_id["17"]["minimo_fatos"] == "3"
    assert len(by_id["17"]["respostas_aceitas"].split(";")) == 5


@pytest.mark.parametrize(
    "row, needle",
    [
        (
            '1,Q?,A capital é Brasília.,Brasília,"Brasília|",,lead',
            "row 1: respostas_aceitas: fact 1 has an empty alias",
        ),
        ("1,Q?,A capital é Brasília.,Brasília,,,lead", "row 1: empty respostas_aceitas"),
        (
            "1,Q?,A capital é Brasília.,Brasília,Rio de Janeiro,,lead",
            "row 1: respostas_aceitas: fact 1 ('Rio de Janeiro') appears in no form in resposta_referencia",
        ),
        # whole words only: "Brasil" is not found inside "Brasília"
        ("1,Q?,A capital é Brasília.,Brasília,Brasil,,lead", "row 1: respostas_aceitas: fact 1 ('Brasil')"),
        ("1,Q?,A capital é Brasília.,Brasília,Brasília;1960,,lead", "row 1: respostas_aceitas: fact 2 ('1960')"),
        (
            "1,Q?,A capital é Brasília.,Brasília,Brasília,2,lead",
            "row 1: minimo_fatos: must be a whole number from 1 to 1",
        ),
        ("1,Q?,A capital é Brasília.,Brasília,Brasília,,rodapé", "row 1: tipo: must be one of infobox, lead, section"),
        (",Q?,A capital é Brasília.,Brasília,Brasília,,lead", "row 1: empty id"),
    ],
)
def test_a_bad_row_gives_one_line_naming_file_and_row(tmp_path, row, needle):
    bad = tmp_path / "ruim.csv"
    bad.write_text(HEADER + row + "\n", encoding="utf-8")
    proc = check(bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {bad}: ")
    assert needle in lines[0], lines[0]


def test_duplicate_ids_and_missing_column(tmp_path):
    dup = tmp_path / "dup.csv"
    ok = "Q?,A capital é Brasília.,Brasília,BRASILIA,,infobox"  # accents and case do not matter
    dup.write_text(f"{HEADER}7,{ok}\n7,{ok}\n", encoding="utf-8")
    proc = check(dup)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {dup}: row 2: duplicate id '7' (first in row 1)"
    old = tmp_path / "old.csv"
    old.write_text("id,pergunta,resposta_referencia\n1,Q?,R.\n", encoding="utf-8")
    proc = check(old)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {old}: missing column(s): respostas_aceitas"


def test_aliases_and_minimum_facts_are_accepted(tmp_path):
    good = tmp_path / "bom.csv"
    good.write_text(
        HEADER + '1,Q?,"Foram Castelo Branco, Médici e Geisel.",X,"Castelo Branco;Medici|Emílio '
        'Médici;Geisel;Figueiredo",3,section\n',
        encoding="utf-8",
    )
    assert check(good).returncode == 2  # Figueiredo is not in the reference: every fact must be
    good.write_text(
        HEADER + '1,Q?,"Foram Castelo Branco, Médici e Geisel.",X,"Castelo Branco;Medici|Emílio '
        'Médici;Geisel",2,section\n',
        encoding="utf-8",
    )
    proc = check(good)
    assert proc.returncode == 0, proc.stderr
    assert "1 questions ok (section 1)" in proc.stdout


def test_sample_questions_cover_the_sample_dump_in_all_three_places():
    table = rows(SAMPLE_QUESTIONS)
    assert len(table) >= 120
    assert list(table[0]) == HEADER.strip().split(",") + ["respostas_erradas"]
    tipos = Counter(r["tipo"] for r in table)
    assert set(tipos) == {"infobox", "lead", "section"}
    for tipo, n in tipos.items():
        assert n >= 0.25 * len(table), (tipo, n, len(table))
    articles = {a.title for a in iter_articles(SAMPLE_DUMP)}
    used = {r["artigo"] for r in table}
    assert used <= articles, used - articles
    assert len(used) >= 0.9 * len(articles)
    study = {r["id"] for r in rows(STUDY_QUESTIONS)}
    assert not study & {r["id"] for r in table}  # ids never collide with the study's questions


def test_sample_questions_are_not_near_identical_to_generated_training_questions(tmp_path):
    out = tmp_path / "dataset.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "build_dataset.py"), str(SAMPLE_DUMP), "--output", str(out), "--no-progress"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    training = [json.loads(line)["input"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(training) > 100
    questions = [r["pergunta"] for r in rows(SAMPLE_QUESTIONS)]
    found = near_duplicates(training, questions, threshold=0.6)
    assert found == [], [(questions[i], training[j], s) for i, j, s in found]
    # the check itself works: a training question is its own near-duplicate
    assert near_duplicates(training, training[:3], threshold=0.6)


# ---- issue 23: accepted forms that grade what the question asks, and known wrong answers ----------------------

HEADER_W = HEADER.strip() + ",respostas_erradas\n"


def _checker():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_questions", DATA / "check_questions.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _problem(pergunta, referencia, aceitas, minimo="", tipo="lead", erradas=""):
    row = dict(
        id="x1",
        pergunta=pergunta,
        resposta_referencia=referencia,
        artigo="X",
        respostas_aceitas=aceitas,
        minimo_fatos=minimo,
        tipo=tipo,
        respostas_erradas=erradas,
    )
    return _checker().check_row(row)


@pytest.mark.parametrize(
    "pergunta, referencia, aceitas, needle",
    [
        # a bare small number, ordinal or year is refused when the question does not ask for exactly that
        ("Que posição ocupa a carta?", "É a sétima constituição.", "sétima|7ª", "bare ordinal 'sétima'"),
        ("Que posição ocupa a carta?", "É a 7ª constituição.", "7ª constituição|7ª", "bare number '7ª'"),
        ("Que texto a substituiu?", "A Constituição de 1891.", "1891", "bare year '1891', but the question does not"),
        ("Que texto a substituiu?", "A de 1891, aprovada em 1891.", "em 1891", "bare year 'em 1891'"),
        # "Quando" with a full date in the reference: the date, not the year alone
        (
            "Quando foi proclamada a independência?",
            "Em 7 de setembro de 1822.",
            "1822",
            "bare year '1822', but the question does not ask for the year and resposta_referencia gives the date "
            "('7 de setembro de 1822')",
        ),
        (
            "Quando, em que dia, foi proclamada a independência?",
            "Em 7 de setembro de 1822.",
            "7 de setembro de 1822|1822",
            "bare year '1822', but the question asks for a day",
        ),
        ("De que dia a que dia durou?", "De 1 de abril de 1964 a 1985.", "1964;1985", "bare year '1964'"),
        # one generic word, or a word of the question, proves nothing (any one alias is enough for its fact)
        ("Que posição ocupa São Paulo?", "São Paulo é a maior cidade.", "maior cidade|maior", "generic word 'maior'"),
        ("Quem liderou a independência?", "D. Pedro.", "Pedro", "generic word 'Pedro'"),
        (
            "Quem foi Tiradentes, da Inconfidência?",
            "Um líder da Inconfidência Mineira.",
            "Inconfidência Mineira|Inconfidência",
            "fact 1: 'Inconfidência' is in the question itself",
        ),
    ],
)
def test_loose_accepted_forms_are_refused(pergunta, referencia, aceitas, needle):
    problem = _problem(pergunta, referencia, aceitas)
    assert problem is not None and problem.startswith("respostas_aceitas: fact "), problem
    assert needle in problem, problem


@pytest.mark.parametrize(
    "pergunta, referencia, aceitas",
    [
        ("Quantas vezes ela foi regente?", "Foi regente três vezes.", "3|três"),  # a count is asked for
        ("Quantos estados tem o Brasil?", "O Brasil tem 26 estados.", "vinte e seis"),
        ("Em que ano ele nasceu?", "Nasceu em 12 de novembro de 1746.", "12 de novembro de 1746|1746"),
        ("Quando o Brasil virou república?", "Em 1889.", "1889"),  # no full date to ask for
        ("Quando foi a independência?", "Em 7 de setembro de 1822.", "7 de setembro de 1822|1822"),  # beside it
        ("Qual foi o período do governo?", "De 1930 a 1945.", "1930;1945"),
        ("A que altitude, em metros, está Brasília?", "A 1 172 m.", "1 172|1172"),
        ("Que posição ocupa a carta?", "É a sétima constituição.", "sétima constituição|7ª constituição"),
    ],
)
def test_bare_numbers_and_years_pass_when_the_question_asks_for_them(pergunta, referencia, aceitas):
    assert _problem(pergunta, referencia, aceitas) is None


@pytest.mark.parametrize(
    "erradas, needle",
    [
        ("Pedro II|Pedro I", "respostas_erradas: 'Pedro I' matches the accepted form 'Pedro I'"),
        ("Pedro", "respostas_erradas: 'Pedro' matches the accepted form 'Pedro I'"),  # inside an accepted form
        ("João VI", "respostas_erradas: 'João VI' occurs in resposta_referencia"),
        ("Brasil", "respostas_erradas: 'Brasil' occurs in the question"),
        ("Pedro II|Pedro 2º", "respostas_erradas: 'Pedro 2º' is listed twice"),  # one spelling after match_normalize
        ("Pedro II|", "respostas_erradas: empty candidate"),
    ],
)
def test_wrong_candidates_never_match_a_correct_form(erradas, needle):
    problem = _problem(
        "Quem foi o primeiro imperador do Brasil?",
        "Foi D. Pedro I, filho de João VI.",
        "Pedro I|D. Pedro I",
        erradas=erradas,
    )
    assert problem is not None and needle in problem, problem


def test_wrong_candidates_and_open_questions_pass(tmp_path):
    assert (
        _problem("Quem foi o primeiro imperador do Brasil?", "Foi D. Pedro I.", "Pedro I", erradas="Pedro II|João VI")
        is None
    )
    # a longer wrong form may contain an accepted one ("cruzeiro real" is not "real")
    assert _problem("Que moeda circula no país?", "O real.", "real", erradas="cruzeiro real|cruzeiro") is None
    open_row = ("Quem foi Tiradentes?", "Um alferes da Inconfidência Mineira, enforcado.")
    assert _problem(*open_row, "Inconfidência Mineira;alferes;enforcado", "2", tipo="aberta") is None
    assert "an 'aberta' question needs at least two facts" in _problem(
        *open_row, "Inconfidência Mineira", tipo="aberta"
    )
    bad = tmp_path / "ruim.csv"
    bad.write_text(HEADER_W + "1,Quando?,Em 7 de setembro de 1822.,X,1822,,fato,\n", encoding="utf-8")
    proc = check(bad)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith(f"error: {bad}: row 1: respostas_aceitas: fact 1: bare year '1822'")


def test_study_questions_grade_what_they_ask():
    from llamawiki.acerto import key_fact_correct
    from llamawiki.matching import AcceptedAnswers

    table = {r["id"]: r for r in rows(STUDY_QUESTIONS)}
    assert {i for i, r in table.items() if r["tipo"] == "aberta"} == {"13", "14", "15", "16", "19"}
    assert {r["tipo"] for r in table.values()} == {"fato", "aberta"}
    for r in table.values():
        if r["tipo"] == "aberta":
            assert len(r["respostas_aceitas"].split(";")) >= 4 and r["minimo_fatos"], r["id"]
    # every study question lists known wrong answers, except the period and the date of Brasília (every
    # plausible wrong year of Vargas's governments, 1934, 1937, 1950, is also in a correct answer)
    assert {i for i, r in table.items() if not r["respostas_erradas"]} == {"7", "10"}

    def correct(qid, answer):
        r = table[qid]
        return key_fact_correct(answer, AcceptedAnswers.parse(r["respostas_aceitas"], r["minimo_fatos"]))

    assert not correct("13", "Tiradentes foi um herói da Inconfidência Baiana.")  # the audit's case
    assert correct("13", "O alferes Tiradentes, da Inconfidência Mineira, foi enforcado em 1792 e é um mártir.")
    # "Quando": the year answers it at the year's precision (the hand labels count it right), and the right year
    # with another day is wrong (acerto's data-errada check, which needs the date beside the year)
    assert correct("3", "A independência foi proclamada em 1822.")
    assert correct("3", "Em 7 de setembro de 1822, às margens do Ipiranga.")
    assert not correct("3", "Foi proclamada em 15 de novembro de 1822.")
    assert not correct("8", "A escravidão foi abolida em 28 de setembro de 1888.")
    assert not correct("18", "São 26 unidades federativas.") and correct("18", "O Brasil tem 26 estados e o DF.")
