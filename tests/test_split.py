"""Grouped train/test split and the leakage report."""

from __future__ import annotations

import random

import pytest

from llamawiki.fileio import UserError
from llamawiki.records import make_record, read_dataset
from llamawiki.split import (
    _jaccard,
    _tokens,
    group_of,
    grouped_split,
    leakage_report,
    near_duplicates,
    study_split_report,
)
from llamawiki.text import normalize


def corpus(n_articles: int = 60, seed: int = 0) -> list[dict]:
    """Articles with 1-12 questions each (uneven, like real infobox/lead/section output)."""
    rng = random.Random(seed)
    records = []
    for a in range(n_articles):
        for q in range(rng.randint(1, 12)):
            records.append(
                make_record(
                    f"Pergunta {q} sobre o artigo {a}?",
                    f"Resposta {q} do artigo {a}.",
                    f"Artigo {a}",
                    rng.choice(["infobox", "lead", "section"]),
                )
            )
    return records


def test_grouped_split_keeps_every_article_on_one_side():
    records = corpus()
    train, test = grouped_split(records, test_size=0.1, seed=42)
    assert len(train) + len(test) == len(records)
    assert {r["article"] for r in train}.isdisjoint({r["article"] for r in test})
    assert abs(len(test) / len(records) - 0.1) < 0.02
    # records keep their input order on each side
    assert train == [r for r in records if r["article"] not in {t["article"] for t in test}]


def test_grouped_split_is_deterministic_for_a_seed_and_varies_with_it():
    records = corpus()
    a = grouped_split(records, seed=42)
    assert a == grouped_split(list(records), seed=42)
    other = grouped_split(records, seed=7)
    assert {r["article"] for r in other[1]} != {r["article"] for r in a[1]}
    # the result does not depend on the order the records come in
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert {r["input"] for r in grouped_split(shuffled, seed=42)[1]} == {r["input"] for r in a[1]}


@pytest.mark.parametrize("size", [0.05, 0.2, 0.5])
def test_grouped_split_approximates_the_test_size(size):
    records = corpus(200, seed=3)
    _, test = grouped_split(records, test_size=size, seed=1)
    assert abs(len(test) / len(records) - size) < 0.02


def test_records_without_article_group_by_normalized_question():
    recs = []
    for i in range(40):
        recs.append(make_record(f"Quem foi a pessoa número {i}?", "Alguém.", "", "csv"))
        recs.append(make_record(f"quem FOI a pessoa numero {i}", "Alguém, de novo.", "", "json"))
    assert group_of(recs[0]) == group_of(recs[1]) == "q:" + normalize(recs[0]["input"])
    train, test = grouped_split(recs, test_size=0.25, seed=5)
    assert len(test) == 20
    assert {normalize(r["input"]) for r in train}.isdisjoint({normalize(r["input"]) for r in test})
    # the study's plain random split (every record alone) separates some of those pairs
    train_n, test_n = grouped_split(recs, test_size=0.25, seed=5, group_key="none")
    assert leakage_report(train_n, test_n).identical_questions


def test_grouped_split_rejects_bad_sizes():
    with pytest.raises(UserError):
        grouped_split(corpus(5), test_size=1.5)
    with pytest.raises(UserError):
        grouped_split(corpus(5), test_size=0)


def test_leakage_report_finds_planted_duplicates():
    train = [
        make_record("Qual é a capital do Brasil?", "A capital do Brasil é Brasília.", "Brasil", "infobox"),
        make_record(
            "Quem proclamou a independência do Brasil em 7 de setembro de 1822?", "Dom Pedro I.", "Pedro I", "lead"
        ),
        make_record("O que foi a Lei Áurea?", "A lei que aboliu a escravidão em 1888.", "Lei Áurea", "lead"),
        make_record("Quem foi Tiradentes?", "Um dentista e inconfidente mineiro.", "Tiradentes", "lead"),
    ]
    test = [
        make_record("qual e a CAPITAL do brasil", "Brasília.", "Brasília", "csv"),  # identical q
        make_record(
            "Quem proclamou a independência do Brasil no dia 7 de setembro de 1822?", "Pedro I.", "", "json"
        ),  # near q
        make_record(
            "Qual foi a importância da Lei Áurea para os escravizados?",
            "A lei que aboliu a escravidão em 1888.",
            "X",
            "csv",
        ),  # same answer
        make_record("Quem foi Tiradentes?", "Outro.", "Tiradentes", "section"),  # shared article
        make_record("Qual é o maior rio do mundo?", "O Amazonas.", "Rio Amazonas", "lead"),
    ]  # clean
    r = leakage_report(train, test)
    assert r.shared_articles == ["Tiradentes"]
    assert r.identical_questions == ["qual e a CAPITAL do brasil", "Quem foi Tiradentes?"]
    assert [q for q, _, _ in r.near_questions] == [
        "Quem proclamou a independência do Brasil no dia 7 de setembro de 1822?"
    ]
    assert r.near_questions[0][1:] == ("Quem proclamou a independência do Brasil em 7 de setembro de 1822?", 0.857)
    assert r.identical_answers == ["A lei que aboliu a escravidão em 1888."]
    assert r.leaked_test_records == 4
    assert r.test_sources == {"csv": 2, "json": 1, "section": 1, "lead": 1}
    text = r.format()
    assert "articles on both sides: 1" in text and "test records leaked (any of the above): 4 (80.0% of test)" in text


def test_near_duplicates_matches_brute_force():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(25)]
    train = [" ".join(rng.sample(vocab, rng.randint(2, 8))) for _ in range(150)]
    test = [" ".join(rng.sample(vocab, rng.randint(2, 8))) for _ in range(80)]
    for threshold in (0.5, 0.8):
        fast = {(i, s) for i, _, s in near_duplicates(train, test, threshold)}
        slow = set()
        for i, t in enumerate(test):
            best = max(_jaccard(_tokens(t), _tokens(x)) for x in train)
            if best >= threshold:
                slow.add((i, round(best, 3)))
        assert fast == slow
        assert fast or threshold > 0.5


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_study_split_leakage(which, request):
    """The study's own random split (treino.json / teste.json): measured, compared with a brute-force count."""
    shared_study = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    report = study_split_report(shared_study)
    train = read_dataset(shared_study / "treino.json")
    test = read_dataset(shared_study / "teste.json")
    assert (report.n_train, report.n_test) == (len(train), len(test)) == ((18, 2) if which == "fixture" else (242, 27))
    if which == "fixture":  # one test question repeats a train one, the other rewords one (Jaccard 0.667)
        assert report.identical_questions == ["Quem foi o primeiro governador-geral do Brasil?"]
        assert [n[2] for n in study_split_report(shared_study, threshold=0.5).near_questions] == [0.667]
    train_q = {normalize(r["input"]) for r in train}
    assert len(report.identical_questions) == sum(normalize(r["input"]) in train_q for r in test)
    brute_near = sum(
        1
        for t in test
        if normalize(t["input"]) not in train_q
        and max(_jaccard(_tokens(t["input"]), _tokens(x["input"])) for x in train) >= 0.5
    )
    assert len(study_split_report(shared_study, threshold=0.5).near_questions) == brute_near
