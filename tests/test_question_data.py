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
    assert list(table[0])[-2:] == ["respostas_aceitas", "minimo_fatos"]
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
    assert list(table[0]) == HEADER.strip().split(",")
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
