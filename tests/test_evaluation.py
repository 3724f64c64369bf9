"""Question loading and the study's answer files (llamawiki.evaluation), on hand-made cases."""

from __future__ import annotations

import json

import pytest

from llamawiki import evaluation as ev
from llamawiki.fileio import UserError
from llamawiki.metrics import is_portuguese


def test_load_questions_csv(tmp_path):
    p = tmp_path / "perguntas.csv"
    p.write_text(
        'id,pergunta,resposta_referencia,artigo\n1,Qual a capital do Brasil?,"Brasília, no DF.",Brasil\n'
        "2,Quem foi Tiradentes?,Um inconfidente.,Tiradentes\n",
        encoding="utf-8",
    )
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
    p.write_text(
        json.dumps({"id": "a", "pergunta": "Quando?", "resposta_referencia": "Em 1822."}) + "\n", encoding="utf-8"
    )
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


def test_parse_study_answer_format(study_fixture):
    """Latin-1 `Pergunta:`/`Resposta:` blocks; an answer runs to the next line starting with `Pergunta:`."""
    from conftest import STUDY_QUESTIONS

    raw = (study_fixture / "resposta_rga.txt").read_bytes()
    assert b"Bras\xedlia" in raw  # Latin-1, not UTF-8
    answers = ev.parse_study_answers(study_fixture / "resposta_rga.txt")
    assert [a.pergunta for a in answers] == STUDY_QUESTIONS
    assert answers[0].resposta == "The capital of Brazil is Brasília."  # Latin-1 decoded, spaces stripped
    assert answers[3].resposta.startswith("I cannot answer: the text does not say.\n\n==== Context ====\n\n* A ")
    assert answers[3].resposta.endswith("* Pergunta: não é um bloco, está no meio da linha.")
    assert not any(a.resposta.startswith("Resposta:") for a in answers)
    fine = ev.parse_study_answers(study_fixture / "resposta_fine.txt")
    assert fine[0].resposta == (
        "### Answer: Qual a capital do Brasil?\n\nResposta: A capital do Brasil é Brasília.###"
    )  # only the first Resposta: starts the answer
    assert [is_portuguese(a.resposta) for a in answers[:3]] == [False, True, True]  # the RAG's English


def test_parse_study_rag_answers(real_study):
    answers = ev.parse_study_answers(real_study / "resposta_rga.txt")
    assert len(answers) == 19
    assert answers[0].pergunta == "Qual a capital do Brasil?"
    assert answers[0].resposta == "The capital of Brazil is Brasília."  # Latin-1 decoded
    # answers span lines: the "==== Context ====" tail stays with question 4
    assert "==== Context ====" in answers[3].resposta
    assert not any(a.resposta.startswith("Resposta:") for a in answers)
    english = [a for a in answers if not is_portuguese(a.resposta)]
    assert 4 <= len(english) <= 10  # the study's RAG answered several questions in English


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_parse_study_files_share_questions(which, request):
    folder = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    sets = [[a.pergunta for a in ev.parse_study_answers(folder / f)] for f in ev.STUDY_FILES.values()]
    assert sets[0] == sets[1] == sets[2]
    qs = ev.load_questions(folder / "resposta_rga.txt")  # --questions can take the study's file
    assert len(qs) == (4 if which == "fixture" else 19) and qs[0].resposta_referencia == ""


def test_parse_study_answers_multiline(tmp_path):
    p = tmp_path / "resposta_x.txt"
    p.write_bytes(
        "Pergunta: Quem?\nResposta: Linha um.\n\nLinha dois.\n\nPergunta: Onde?\nResposta:  Aqui.\n".encode("latin-1")
    )
    a = ev.parse_study_answers(p)
    assert [x.pergunta for x in a] == ["Quem?", "Onde?"]
    assert a[0].resposta == "Linha um.\n\nLinha dois." and a[1].resposta == "Aqui."


def test_match_question_tolerates_small_rewording():
    study = ["Qual a capital do Brasil?", "Quem foi o primeiro presidente do período republicano?"]
    assert ev.match_question("Qual é a capital do Brasil?", study) == 0
    assert ev.match_question("qual a capital do brasil", study) == 0
    assert ev.match_question("Qual foi o primeiro presidente eleito após a ditadura militar?", study) is None


def test_paired_comparison_pairs_by_question_id_when_a_system_lacks_answers():
    """System a has no answer to q1 (the first question): the pairs are q2..q4 for both systems. Pairing the
    two systems' answer lists by position (a's q2 with b's q1, ...) gives b 0.67 here instead of 0.33."""
    questions = [ev.Question(f"q{i}", f"pergunta {i}") for i in range(1, 5)]
    a = {"q2": 1.0, "q3": 0.0, "q4": 0.0}
    b = {"q1": 1.0, "q2": 0.0, "q3": 1.0, "q4": 0.0}
    scores = {**{("a", k): {"acerto": v} for k, v in a.items()}, **{("b", k): {"acerto": v} for k, v in b.items()}}
    (row,) = ev.paired_comparison(["a", "b"], questions, scores, n_resamples=200)
    assert (row["n"], row["only_a"], row["only_b"]) == (3, 1, 1)  # q2: only a; q3: only b
    assert row["a_rate"] == pytest.approx(1 / 3) and row["b_rate"] == pytest.approx(1 / 3)
    assert row["diff"] == pytest.approx(0.0)
    # a missing score (None: no accepted answers) in the middle drops that question from both sides too
    scores[("b", "q3")] = {"acerto": None}
    (row,) = ev.paired_comparison(["a", "b"], questions, scores, n_resamples=200)
    assert (row["n"], row["a_rate"], row["b_rate"], row["only_a"], row["only_b"]) == (2, 0.5, 0.0, 1, 0)
