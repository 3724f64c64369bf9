"""Seen in training (issue 23, part 5): the near-identical wording check shared with particiona.py, and whether a
training answer states the fact a question asks for."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from test_acerto import with_training, write_csv
from test_compare import make_env, run

from llamawiki import evaluation as ev
from llamawiki import matching as mt
from llamawiki import metrics as m
from llamawiki import split
from llamawiki.exposure import fact_exposure, training_exposure
from llamawiki.report import Question


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


# ---- the fact seen in training ---------------------------------------------------------------------------------


def Q(qid, pergunta, artigo="", aceitas=None, minimo=None):
    accepted = mt.AcceptedAnswers.parse(aceitas, minimo) if aceitas else None
    return Question(qid, pergunta, "", artigo, accepted)


TRAIN = [
    # the fact of the independence question, written as a date (acerto's normalization reads it as the alias)
    {
        "input": "Quando o Brasil se tornou independente?",
        "output": "Em 07/09/1822.",
        "article": "Independência do Brasil",
    },
    {"input": "Quem foi Tiradentes?", "output": "Um mártir da Inconfidência Mineira.", "article": "Tiradentes"},
    {"input": "Quem governou primeiro?", "output": "Castelo Branco governou primeiro.", "article": "Ditadura"},
    {"input": "Quem governou depois?", "output": "Depois governou Médici.", "article": "Ditadura"},
    {"input": "Que ano?", "output": "No ano de mil oitocentos e oitenta e oito.", "article": "Lei Áurea"},
    {"input": "Qual o número?", "output": "18881.", "article": "Outro"},
    {"text": "um registro cru, sem pergunta nem resposta: Brasília"},
]


def test_fact_exposure_flags_with_the_acerto_matcher():
    questions = [
        Q("1", "Quando foi proclamada a independência?", "Independência do Brasil", "7 de setembro de 1822"),
        Q("2", "Onde lutou Tiradentes?", "Inconfidência Mineira", "Inconfidência Mineira"),  # another article's answer
        Q("3", "Quais presidentes a ditadura teve?", "Ditadura", "Castelo Branco;Médici"),  # two answers, one each
        Q("4", "Quais presidentes a ditadura teve?", "Ditadura", "Castelo Branco;Médici", 1),  # minimo_fatos 1
        Q("5", "Em que ano foi assinada a Lei Áurea?", "", "1888"),  # number words; no artigo to compare
        Q("6", "Qual a capital do Brasil?", "Brasília", "Brasília"),  # only in a raw record: not an answer
        Q("7", "Quem foi Tiradentes?", "Tiradentes"),  # no respostas_aceitas
    ]
    flags, sources = fact_exposure(questions, TRAIN)
    assert flags == ["same_article", "other_article", "unseen", "same_article", "seen", "unseen", "nd"]
    assert sources[0] == "Quando o Brasil se tornou independente?" and sources[1] == "Quem foi Tiradentes?"
    assert sources[3] == "Quem governou primeiro?" and sources[4] == "Que ano?" and sources[5] == ""


def test_fact_seen_in_a_run_table_manifest_and_csv(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = write_csv(
        tmp_path / "perguntas.csv",
        ["id", "pergunta", "resposta_referencia", "artigo", "respostas_aceitas"],
        [
            ["q1", "Qual a capital do Brasil?", "Brasília.", "Brasil", "Brasília"],
            ["q2", "Quando foi proclamada a independência do Brasil?", "Em 1822.", "Independência do Brasil", "1822"],
            ["q3", "Quem foi Tiradentes?", "Um líder da Inconfidência Mineira.", "Tiradentes", "Inconfidência Mineira"],
        ],
    )
    with_training(
        cfg,
        tmp_path,
        [
            {
                "input": "Quando foi a independência do Brasil?",
                "output": "Em 1822.",
                "article": "Independência do Brasil",
            },
            {"input": "Onde fica o governo?", "output": "Em Brasília, a capital.", "article": "Brasília"},
        ],
    )
    run_dir = tmp_path / "run"
    result = run(cfg, questions, run_dir, {"answers": []}, systems=["finetuned"])
    exp = result.exposure["finetuned"]
    assert exp.flags == ["unseen", "near", "unseen"]  # q2 is the Q3-like near-identical wording
    assert exp.facts == ["other_article", "same_article", "unseen"]
    # the fake fine-tuned model answers "Brasília." (right) and "Em 7 de setembro de 1822." (right for q2, wrong q3)
    (row,) = result.fact_breakdown
    assert (row["fato_visto"]["questions"], row["fato_visto"]["k"], row["fato_visto"]["n"]) == (2, 2, 2)
    assert (row["fato_nao_visto"]["k"], row["fato_nao_visto"]["n"]) == (0, 1)
    assert (row["fato_visto"]["low"], row["fato_visto"]["high"]) == pytest.approx(m.wilson_interval(2, 2))
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "## Acerto por fato visto / não visto no treino" in table
    assert "quase idêntica no treino · fato visto no treino (mesmo artigo)" in table
    assert "inédita · fato não visto no treino" in table
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seen_in_training"]["finetuned"]["fact_counts"] == {
        "same_article": 1,
        "other_article": 1,
        "unseen": 1,
    }
    assert manifest["seen_in_training_acerto"]["fato"][0]["fato_visto"]["k"] == 2
    with open(run_dir / "exposicao.csv", encoding="utf-8") as f:
        rows = {(r["nivel"], r["grupo"]): r for r in csv.DictReader(f)}
    assert rows[("fato", "fato_visto")]["k"] == "2" and rows[("pergunta", "vista")]["questions"] == "1"
    assert "diagnostico_rag.csv" not in result.outputs  # no RAG system in this run


def test_no_training_file_leaves_the_fact_unknown(tmp_path):
    cfg, _ = make_env(tmp_path)
    exp = training_exposure(cfg["models"]["tiny+lora"]["adapter"], [Q("1", "Qual a capital?", "", "Brasília")])
    assert exp.flags == ["unknown"] and exp.facts == ["unknown"] and exp.fact_sources == [""]


# ---- where the RAG answers went wrong ----------------------------------------------------------------------------

RAG_ROWS = [  # id, question, artigo, aceitas, (answer, sources, contexts) of the fake RAG chain
    ("r1", "Qual a capital do Brasil?", "Brasília", "Brasília", "Brasília.", ["Brasília"], ["Brasília é a capital."]),
    (
        "r2",
        "Quando foi proclamada a independência do Brasil?",
        "Independência do Brasil",
        "7 de setembro de 1822",
        "Em 1500.",
        ["Independência do Brasil"],
        ["A independência foi proclamada em 07/09/1822."],
    ),
    (
        "r3",
        "Quem foi Tiradentes?",
        "Tiradentes",
        "Inconfidência Mineira",
        "Não sei.",
        ["Brasil"],
        ["O Brasil é um país."],
    ),
    (
        "r4",
        "Quem assinou a Lei Áurea?",
        "Lei Áurea",
        "Princesa Isabel|Isabel",
        "Dom Pedro II.",
        ["Lei Áurea", "Brasil"],
        ["A Lei Áurea aboliu a escravidão em 1888.", "O Brasil é um país."],
    ),
]


def rag_run(cfg, questions, run_dir, **kw):
    by_question = {r[1]: r[4:] for r in RAG_ROWS}

    @dataclass
    class Gen:
        text: str
        n_tokens: int = 3
        seconds: float = 0.1
        prompt_tokens: int = 50

    def rag_answer(question, retriever, generator, k, **gen):
        answer, sources, contexts = by_question[question]
        return SimpleNamespace(text=answer, sources=sources, contexts=contexts, generation=Gen(answer))

    return ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=run_dir,
        progress=False,
        load_generator=lambda spec: object(),
        load_retriever=lambda index_dir, kind, k: object(),
        rag_answer=rag_answer,
        **kw,
    )


def rag_questions(tmp_path):
    """The questions of RAG_ROWS as a questions file (reference: the first accepted form)."""
    return write_csv(
        tmp_path / "perguntas.csv",
        ["id", "pergunta", "resposta_referencia", "artigo", "respostas_aceitas"],
        [[r[0], r[1], f"Resposta: {r[3].split('|')[0]}.", r[2], r[3]] for r in RAG_ROWS],
    )


def diagnosis_line(table: str) -> str:
    section = table.split("## Onde o RAG errou", 1)[1]
    return next(x for x in section.splitlines() if x.startswith("| rag |"))


def test_rag_diagnosis_separates_retrieval_from_generation(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = rag_questions(tmp_path)
    run_dir = tmp_path / "run"
    result = rag_run(cfg, questions, run_dir, systems=["rag"])
    diags = [result.diagnoses[("rag", r[0])] for r in RAG_ROWS]
    assert [(d.article, d.fact, d.stage) for d in diags] == [
        (True, True, "certa"),
        (True, True, "geracao"),  # the date was in the context: a generation failure
        (False, False, "artigo_ausente"),
        (True, False, "trecho_ausente"),  # the article came, but not the chunk with the fact
    ]
    (row,) = result.diagnosis
    assert (row["n"], row["certa"], row["geracao"], row["artigo_ausente"], row["trecho_ausente"], row["nd"]) == (
        4,
        1,
        1,
        1,
        1,
        0,
    )
    assert (row["com_fato"]["k"], row["com_fato"]["n"], row["sem_fato"]["n"], row["sem_artigo"]["n"]) == (1, 2, 2, 1)
    records = [json.loads(line) for line in (run_dir / "respostas.jsonl").read_text().splitlines()]
    assert records[0]["contexts"] == ["Brasília é a capital."]  # stored with the answer, outside the cache key
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "## Onde o RAG errou" in table and "_erro (" in table
    assert "artigo recuperado · fato no contexto" in table and "artigo não recuperado · fato fora do contexto" in table
    assert diagnosis_line(table).split("|")[2:8] == [" 4 ", " 1 ", " 1 ", " 1 ", " 1 ", " 0 "]
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rag_diagnosis"]["systems"][0]["geracao"] == 1
    assert {a["question_id"]: a["stage"] for a in manifest["rag_diagnosis"]["answers"]}["r3"] == "artigo_ausente"
    with open(run_dir / "diagnostico_rag.csv", encoding="utf-8") as f:
        (csv_row,) = list(csv.DictReader(f))
    assert csv_row["trecho_ausente"] == "1" and csv_row["com_fato_k"] == "1" and csv_row["com_fato_n"] == "2"


def test_cached_answers_without_context_keep_their_key_and_say_nd(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = rag_questions(tmp_path)
    run_dir = tmp_path / "run"
    rag_run(cfg, questions, run_dir, systems=["rag"])
    cache = run_dir / "respostas.jsonl"
    old = [json.loads(line) for line in cache.read_text().splitlines()]
    for rec in old:  # an answer cached before the contexts were stored
        del rec["contexts"]
    cache.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in old))
    result = rag_run(cfg, questions, run_dir, systems=["rag"])
    assert result.generated == 0 and result.cached == 4  # the same keys: nothing regenerated
    diags = [result.diagnoses[("rag", r[0])] for r in RAG_ROWS]
    assert [(d.article, d.fact, d.stage) for d in diags] == [
        (True, None, "certa"),
        (True, None, "nd"),
        (False, None, "nd"),
        (True, None, "nd"),
    ]
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "artigo recuperado · fato no contexto: n/d" in table
    (row,) = result.diagnosis
    assert row["contexto_nd"] == 4 and row["nd"] == 3 and row["com_fato"]["n"] == 0
    assert diagnosis_line(table).split("|")[-3].strip() == "n/d"  # acerto with the fact in the context
