"""llamawiki.metrics: the scores of one answer and their intervals."""

from __future__ import annotations

import math

import pytest

from llamawiki import metrics as m
from llamawiki.text import normalize


def normalize_answer(text):
    return normalize(text, drop_articles=True)


def test_normalization_accents_case_punctuation_articles():
    assert normalize_answer("  A Capital do BRASIL é Brasília!  ") == "capital do brasil e brasilia"
    assert normalize_answer("Os bandeirantes, uma história; uns e umas.") == "bandeirantes historia e"
    assert normalize_answer("Lei nº 3.353, de 1888") == "lei no 3353 de 1888"


def test_exact_match_ignores_accents_case_and_articles():
    assert m.exact_match("Brasília", "brasilia") == 1.0
    assert m.exact_match("A capital é Brasília.", "capital é brasilia") == 1.0
    assert m.exact_match("Brasília", "São Paulo") == 0.0
    assert m.exact_match("Em 1822", "1822") == 0.0  # "em" is not an article


# ---- token F1 and ROUGE-L -------------------------------------------------------------------------------------


def test_token_f1_partial_overlap_by_hand():
    # pred tokens: capital do brasil e brasilia (5), ref: brasilia (1), 1 shared -> P=1/5, R=1 -> F1=1/3
    assert m.token_f1("A capital do Brasil é Brasília", "Brasília") == pytest.approx(1 / 3)
    # pred: dom pedro i foi imperador (5); ref: primeiro imperador foi dom pedro i (6); 5 shared
    # P = 1, R = 5/6 -> F1 = 10/11
    assert m.token_f1("Dom Pedro I foi o imperador", "O primeiro imperador foi Dom Pedro I") == pytest.approx(10 / 11)
    assert m.token_f1("São Paulo", "Brasília") == 0.0
    assert m.token_f1("", "Brasília") == 0.0
    assert m.token_f1("Brasília", "brasilia") == 1.0


def test_token_f1_counts_repeated_tokens_once_each():
    # pred: brasil brasil brasil (3); ref: brasil (1): shared = min(3, 1) = 1 -> P=1/3, R=1 -> F1 = 0.5
    assert m.token_f1("Brasil Brasil Brasil", "Brasil") == pytest.approx(0.5)


def test_rouge_l_known_values():
    # LCS(paris londres roma berlim, paris roma berlim madri) = 3 -> P = R = 3/4
    assert m.rouge_l("Paris Londres Roma Berlim", "Paris Roma Berlim Madri") == pytest.approx(0.75)
    # order matters for ROUGE-L but not for token F1
    assert m.rouge_l("x y z", "z y x") == pytest.approx(1 / 3)
    assert m.token_f1("x y z", "z y x") == pytest.approx(1.0)
    assert m.rouge_l("Brasília.", "brasilia") == 1.0
    assert m.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


# ---- the Portuguese check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The capital of Brazil is Brasília.",
        "The first emperor of Brazil was Pedro I (1822-1831).",
        "I don't know.",
        'The campaign "O Petróleo é Nosso" was a nationalist movement that aimed to promote the control of oil.',
        "",
    ],
)
def test_english_and_empty_answers_are_not_portuguese(text):
    check = m.language_check(text)
    assert not check.is_portuguese
    assert check.score < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "A capital do Brasil é Brasília.",
        "Em 1822.",
        "Brasília.",  # no function word: language-neutral, counts as Portuguese (documented rule)
        "Dilma Rousseff.",
        "Não é possível responder à pergunta com base nas informações fornecidas.",
    ],
)
def test_portuguese_and_short_neutral_answers(text):
    assert m.language_check(text).is_portuguese


def test_language_check_scores_ties_at_half():
    assert m.language_check("Dilma Rousseff").score == pytest.approx(0.5)
    assert m.language_check("Em 1822.").score > 0.5


# ---- bootstrap ------------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    values = [0, 1, 1, 0, 1, 1, 0.5, 0.25, 1, 0]
    mean, lo, hi = m.bootstrap_ci(values, seed=7)
    assert mean == pytest.approx(sum(values) / len(values))
    assert lo < mean < hi
    assert 0.0 <= lo and hi <= 1.0
    assert m.bootstrap_ci(values, seed=7) == (mean, lo, hi)
    assert m.bootstrap_ci(values, seed=8) != (mean, lo, hi)  # another seed, other resamples


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(x) for x in m.bootstrap_ci([]))
    assert m.bootstrap_ci([0.4]) == (0.4, 0.4, 0.4)
    assert m.bootstrap_ci([1, 1, 1]) == (1.0, 1.0, 1.0)


def test_score_answer_without_reference_keeps_only_language():
    s = m.score_answer("The capital is Brasília.", "")
    assert s["token_f1"] is None and s["exact_match"] is None and s["rouge_l"] is None
    assert s["portugues"] == 0.0


# ---- questions ------------------------------------------------------------------------------------------------
