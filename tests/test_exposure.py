"""Seen in training (issue 23, part 5): the near-identical wording check shared with particiona.py, and whether a
training answer states the fact a question asks for."""

from __future__ import annotations

from llamawiki import split


def test_a_question_with_one_word_added_is_near_identical():
    # Q3 of data/perguntas.csv: 0.67 on content words, 0.86 on all words; only a word added, so the larger counts
    q3, trained = "Quando foi proclamada a independência do Brasil?", "Quando foi a independência do Brasil?"
    assert split.near_duplicates([trained], [q3]) == [(0, 0, 0.857)]
    (leak,) = split.question_leakage([(q3, "Independência do Brasil")], [{"input": trained, "output": "Em 1822."}])
    assert leak.flag == "near" and leak.train_question == trained


def test_a_template_with_one_content_word_swapped_is_not_near_identical():
    # 0.86 on all words, but "antecessor" is not "sucessor": templates share every function word
    a = "Quem foi o antecessor de José Sarney como 31.º Presidente do Brasil?"
    b = "Quem foi o sucessor de José Sarney como 31.º Presidente do Brasil?"
    assert split.near_duplicates([b], [a]) == []
    assert (
        split.near_duplicates(
            ["Quem foi o cônjuge de Pedro II do Brasil?"], ["Quem foi o cônjuge de Pedro I do Brasil?"]
        )
        == []
    )


def test_particiona_and_compare_use_the_same_measure():
    # exclude_questions (particiona.py --exclude-questions) drops the Q3-like training record compare flags as near
    records = [
        {"input": "Quando foi a independência do Brasil?", "output": "Em 1822."},
        {"input": "Quem foi o sucessor de Sarney?", "output": "Collor."},
    ]
    kept, dropped = split.exclude_questions(
        records, [("3", "Quando foi proclamada a independência do Brasil?"), ("9", "Quem foi o antecessor de Sarney?")]
    )
    assert kept == records[1:] and dropped == {"3": 1}


def test_prefix_filter_is_exact_for_the_larger_jaccard():
    train = [
        "Quando foi a independência do Brasil?",
        "Qual é a história do Brasil?",
        "Quem foi o pai de Pedro I?",
        "Em que ano nasceu Tiradentes?",
    ]
    test = ["Quando foi proclamada a independência do Brasil?", "Qual é a história do Carnaval do Brasil?", "Quem foi?"]
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
        brute = []
        for i, t in enumerate(test):
            if not split._tokens(t):
                continue
            sims = [
                split.similarity((split._tokens(t), split._words(t)), (split._tokens(x), split._words(x)))
                for x in train
            ]
            best = max(range(len(train)), key=lambda j: (sims[j], -j))
            if sims[best] >= threshold:
                brute.append((i, best, round(sims[best], 3)))
        assert split.near_duplicates(train, test, threshold) == brute
