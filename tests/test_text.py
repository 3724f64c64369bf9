"""llamawiki.text: the Portuguese text helpers every stage shares."""

from __future__ import annotations

from llamawiki.text import first_sentences, normalize, split_sentences, strip_accents


def test_split_sentences_keeps_abbreviations_numbers_and_units_together():
    text = (
        "D. Pedro I proclamou a independência. Em 1824, o Sr. Silva chegou com 1.500 homens. "
        "A área é de 8 515 km². A Lei n.º 3.353 foi assinada pela princesa Isabel. Fim em 500 a.C. e depois!"
    )
    assert split_sentences(text) == [
        "D. Pedro I proclamou a independência.",
        "Em 1824, o Sr. Silva chegou com 1.500 homens.",
        "A área é de 8 515 km².",
        "A Lei n.º 3.353 foi assinada pela princesa Isabel.",
        "Fim em 500 a.C. e depois!",
    ]


def test_split_sentences_breaks_at_paragraphs_and_question_marks():
    assert split_sentences("Primeira linha\nSegunda? Sim. (Terceira.) Quarta") == [
        "Primeira linha",
        "Segunda?",
        "Sim.",
        "(Terceira.)",
        "Quarta",
    ]


def test_first_sentences_respects_count_and_length():
    text = "Uma frase curta. Outra frase. Terceira."
    assert first_sentences(text, 2, 100) == "Uma frase curta. Outra frase."
    assert first_sentences(text, 2, 20) == "Uma frase curta."
    assert first_sentences(text, 1, 5) == ""


# ---------------------------------------------------------------------------------------------- infobox


def test_one_normalization_in_two_settings():
    # Questions/records: punctuation and "_" become spaces, articles stay.
    assert normalize("  A Capital do BRASIL é Brasília!  ") == "a capital do brasil e brasilia"
    assert normalize("snake_case, 3.353") == "snake case 3 353"
    # Answers (metrics): articles dropped, thousands separators kept inside the number.
    assert normalize("  A Capital do BRASIL é Brasília!  ", drop_articles=True) == "capital do brasil e brasilia"
    assert normalize("Lei nº 3.353, de 1888", drop_articles=True) == "lei no 3353 de 1888"
    assert strip_accents("Getúlio, ação") == "Getulio, acao"
