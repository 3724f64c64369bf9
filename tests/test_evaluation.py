"""Metrics, question loading and the study's answer files (llamawiki.evaluation), on hand-made cases."""

from __future__ import annotations

import json
import math

import pytest

from llamawiki import evaluation as ev
from llamawiki.fileio import UserError


# ---- normalization and exact match ----------------------------------------------------------------------------

def test_normalization_accents_case_punctuation_articles():
    assert ev.normalize_text("  A Capital do BRASIL é Brasília!  ") == "capital do brasil e brasilia"
    assert ev.normalize_text("Os bandeirantes, uma história; uns e umas.") == "bandeirantes historia e"
    assert ev.normalize_text("Lei nº 3.353, de 1888") == "lei no 3353 de 1888"


def test_exact_match_ignores_accents_case_and_articles():
    assert ev.exact_match("Brasília", "brasilia") == 1.0
    assert ev.exact_match("A capital é Brasília.", "capital é brasilia") == 1.0
    assert ev.exact_match("Brasília", "São Paulo") == 0.0
    assert ev.exact_match("Em 1822", "1822") == 0.0   # "em" is not an article


# ---- token F1 and ROUGE-L -------------------------------------------------------------------------------------

def test_token_f1_partial_overlap_by_hand():
    # pred tokens: capital do brasil e brasilia (5), ref: brasilia (1), 1 shared -> P=1/5, R=1 -> F1=1/3
    assert ev.token_f1("A capital do Brasil é Brasília", "Brasília") == pytest.approx(1 / 3)
    # pred: dom pedro i foi imperador (5); ref: primeiro imperador foi dom pedro i (6); 5 shared
    # P = 1, R = 5/6 -> F1 = 10/11
    assert ev.token_f1("Dom Pedro I foi o imperador", "O primeiro imperador foi Dom Pedro I") == pytest.approx(10 / 11)
    assert ev.token_f1("São Paulo", "Brasília") == 0.0
    assert ev.token_f1("", "Brasília") == 0.0
    assert ev.token_f1("Brasília", "brasilia") == 1.0


def test_token_f1_counts_repeated_tokens_once_each():
    # pred: brasil brasil brasil (3); ref: brasil (1): shared = min(3, 1) = 1 -> P=1/3, R=1 -> F1 = 0.5
    assert ev.token_f1("Brasil Brasil Brasil", "Brasil") == pytest.approx(0.5)


def test_rouge_l_known_values():
    # LCS(paris londres roma berlim, paris roma berlim madri) = 3 -> P = R = 3/4
    assert ev.rouge_l("Paris Londres Roma Berlim", "Paris Roma Berlim Madri") == pytest.approx(0.75)
    # order matters for ROUGE-L but not for token F1
    assert ev.rouge_l("x y z", "z y x") == pytest.approx(1 / 3)
    assert ev.token_f1("x y z", "z y x") == pytest.approx(1.0)
    assert ev.rouge_l("Brasília.", "brasilia") == 1.0
    assert ev.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


# ---- the Portuguese check -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "The capital of Brazil is Brasília.",
    "The first emperor of Brazil was Pedro I (1822-1831).",
    "I don't know.",
    'The campaign "O Petróleo é Nosso" was a nationalist movement that aimed to promote the control of oil.',
    "",
])
def test_english_and_empty_answers_are_not_portuguese(text):
    check = ev.language_check(text)
    assert not check.is_portuguese
    assert check.score < 0.5


@pytest.mark.parametrize("text", [
    "A capital do Brasil é Brasília.",
    "Em 1822.",
    "Brasília.",          # no function word: language-neutral, counts as Portuguese (documented rule)
    "Dilma Rousseff.",
    "Não é possível responder à pergunta com base nas informações fornecidas.",
])
def test_portuguese_and_short_neutral_answers(text):
    assert ev.language_check(text).is_portuguese


def test_language_check_scores_ties_at_half():
    assert ev.language_check("Dilma Rousseff").score == pytest.approx(0.5)
    assert ev.language_check("Em 1822.").score > 0.5


# ---- bootstrap ------------------------------------------------------------------------------------------------

def test_bootstrap_ci_contains_mean_and_is_deterministic():
    values = [0, 1, 1, 0, 1, 1, 0.5, 0.25, 1, 0]
    mean, lo, hi = ev.bootstrap_ci(values, seed=7)
    assert mean == pytest.approx(sum(values) / len(values))
    assert lo < mean < hi
    assert 0.0 <= lo and hi <= 1.0
    assert ev.bootstrap_ci(values, seed=7) == (mean, lo, hi)
    assert ev.bootstrap_ci(values, seed=8) != (mean, lo, hi)   # another seed, other resamples


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(x) for x in ev.bootstrap_ci([]))
    assert ev.bootstrap_ci([0.4]) == (0.4, 0.4, 0.4)
    assert ev.bootstrap_ci([1, 1, 1]) == (1.0, 1.0, 1.0)


def test_score_answer_without_reference_keeps_only_language():
    s = ev.score_answer("The capital is Brasília.", "")
    assert s["token_f1"] is None and s["exact_match"] is None and s["rouge_l"] is None
    assert s["portugues"] == 0.0


# ---- questions ------------------------------------------------------------------------------------------------

def test_load_questions_csv(tmp_path):
    p = tmp_path / "perguntas.csv"
    p.write_text('id,pergunta,resposta_referencia,artigo\n1,Qual a capital do Brasil?,"Brasília, no DF.",Brasil\n'
                 "2,Quem foi Tiradentes?,Um inconfidente.,Tiradentes\n", encoding="utf-8")
    qs = ev.load_questions(p)
    assert [q.id for q in qs] == ["1", "2"]
    assert qs[0].resposta_referencia == "Brasília, no DF." and qs[0].artigo == "Brasil"


def test_load_questions_missing_columns_names_file_and_columns(tmp_path):
    p = tmp_path / "ruim.csv"
    p.write_text("id,question\n1,Qual a capital?\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        ev.load_questions(p)
    assert str(p) in str(e.value)
    assert "pergunta" in str(e.value) and "resposta_referencia" in str(e.value)


def test_load_questions_jsonl_and_missing_key(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text(json.dumps({"id": "a", "pergunta": "Quando?", "resposta_referencia": "Em 1822."}) + "\n",
                 encoding="utf-8")
    assert ev.load_questions(p)[0].resposta_referencia == "Em 1822."
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "pergunta": "Quando?"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="resposta_referencia"):
        ev.load_questions(bad)


def test_load_questions_duplicate_ids(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("id,pergunta,resposta_referencia\n1,A?,a\n1,B?,b\n", encoding="utf-8")
    with pytest.raises(UserError, match="duplicate id"):
        ev.load_questions(p)


# ---- the study's answer files ---------------------------------------------------------------------------------

def test_parse_study_rag_answers(shared_study):
    answers = ev.parse_study_answers(shared_study / "resposta_rga.txt")
    assert len(answers) == 19
    assert answers[0].pergunta == "Qual a capital do Brasil?"
    assert answers[0].resposta == "The capital of Brazil is Brasília."   # Latin-1 decoded
    # answers span lines: the "==== Context ====" tail stays with question 4
    assert "==== Context ====" in answers[3].resposta
    assert not any(a.resposta.startswith("Resposta:") for a in answers)
    english = [a for a in answers if not ev.is_portuguese(a.resposta)]
    assert 4 <= len(english) <= 10   # the study's RAG answered several questions in English


def test_parse_study_files_share_questions(shared_study):
    sets = [[a.pergunta for a in ev.parse_study_answers(shared_study / f)] for f in ev.STUDY_FILES.values()]
    assert sets[0] == sets[1] == sets[2]
    qs = ev.load_questions(shared_study / "resposta_rga.txt")   # --questions can take the study's file
    assert len(qs) == 19 and qs[0].resposta_referencia == ""


def test_parse_study_answers_multiline(tmp_path):
    p = tmp_path / "resposta_x.txt"
    p.write_bytes("Pergunta: Quem?\nResposta: Linha um.\n\nLinha dois.\n\nPergunta: Onde?\nResposta:  Aqui.\n"
                  .encode("latin-1"))
    a = ev.parse_study_answers(p)
    assert [x.pergunta for x in a] == ["Quem?", "Onde?"]
    assert a[0].resposta == "Linha um.\n\nLinha dois." and a[1].resposta == "Aqui."


def test_match_question_tolerates_small_rewording():
    study = ["Qual a capital do Brasil?", "Quem foi o primeiro presidente do período republicano?"]
    assert ev.match_question("Qual é a capital do Brasil?", study) == 0
    assert ev.match_question("qual a capital do brasil", study) == 0
    assert ev.match_question("Qual foi o primeiro presidente eleito após a ditadura militar?", study) is None
