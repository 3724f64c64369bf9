"""acerto (key-fact accuracy), its intervals, the paired comparison and the seen-in-training flags (issue 10)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare import make_env, run

from llamawiki import acerto as a
from llamawiki import evaluation as ev
from llamawiki import matching as mt
from llamawiki import metrics as m
from llamawiki import split
from llamawiki.fileio import UserError, sha256_file

ROOT = Path(__file__).resolve().parent.parent


def A(text, minimum=None):
    return mt.AcceptedAnswers.parse(text, minimum)


# ---- matching -------------------------------------------------------------------------------------------------


def test_a_fluent_wrong_answer_is_wrong_although_f1_rewards_it():
    reference = "A capital do Brasil é Brasília."
    wrong, right = "A capital do Brasil é Rio de Janeiro.", "Brasília."
    assert m.token_f1(wrong, reference) > 0.6  # the complaint
    assert not a.key_fact_correct(wrong, A("Brasília"))
    assert a.key_fact_correct(right, A("Brasília"))
    assert not a.key_fact_correct("O primeiro imperador do Brasil foi Pedro II.", A("Pedro I|Pedro Primeiro"))
    assert a.key_fact_correct("Foi Dom Pedro I.", A("Pedro I|Pedro Primeiro"))


def test_accents_case_and_aliases():
    acc = A("Vera Cruz|Santa Cruz|Pindorama")
    assert a.key_fact_correct("TERRA DE SANTA CRUZ", acc)
    assert a.key_fact_correct("pindorama, em tupi", acc)
    assert a.key_fact_correct("brasilia", A("Brasília")) and a.key_fact_correct("BRASÍLIA!", A("Brasilia"))
    assert not a.key_fact_correct("Porto Seguro", acc)


def test_whole_words_only():
    assert a.key_fact_correct("Dilma Rousseff foi eleita em 2010.", A("Dilma"))
    assert not a.key_fact_correct("O ano 18888.", A("1888"))
    assert not a.key_fact_correct("Dilmar", A("Dilma"))
    assert a.key_fact_correct("Lei nº 3.353, de 1888", A("3353"))  # thousands separator


@pytest.mark.parametrize(
    "form", ["1º de janeiro", "1.º de janeiro", "primeiro de janeiro", "1 de janeiro", "01/01", "em 1/1"]
)
def test_dates_in_every_spelling_agree(form):
    assert mt.match_normalize(form).endswith("1 de janeiro")
    assert a.key_fact_correct(f"Foi em {form}.", A("1º de janeiro"))


def test_full_dates_and_number_words():
    assert mt.match_normalize("13/05/1888") == "13 de maio de 1888"
    assert a.key_fact_correct("Foi em 13/05/1888.", A("13 de maio de 1888"))
    assert mt.match_normalize("vinte e sete") == "27"
    assert a.key_fact_correct("O Brasil tem vinte e seis estados.", A("26"))
    assert a.key_fact_correct("São 26 estados.", A("vinte e seis"))
    for words, n in [
        ("zero", 0),
        ("dez", 10),
        ("catorze", 14),
        ("quatorze", 14),
        ("dezesseis", 16),
        ("dezasseis", 16),
        ("noventa e nove", 99),
        ("cem", 100),
        ("mil oitocentos e oitenta e oito", 1888),
    ]:
        assert mt.match_normalize(words) == str(n), words
    assert mt.match_normalize("Um dos presidentes") == "dos presidentes"  # "um" alone is an article


def test_several_facts_all_or_a_minimum():
    presidents = A("Castelo Branco;Costa e Silva;Médici;Geisel;Figueiredo", 3)
    assert presidents.required == 3
    assert a.key_fact_correct("Castelo Branco, Costa e Silva e Médici.", presidents)
    assert not a.key_fact_correct("Castelo Branco e Geisel.", presidents)
    vargas = A("1930;1945;1951;1954")
    assert a.key_fact_correct("De 1930 a 1945 e de 1951 a 1954.", vargas)
    assert not a.key_fact_correct("De 1930 a 1945.", vargas)
    assert mt.facts_found("De 1930 a 1945.", vargas) == 2


@pytest.mark.parametrize(
    "text,minimum,problem",
    [
        ("", None, "empty"),
        ("Brasília|", None, "empty alias"),
        ("a;;b", None, "empty alias"),
        ("Rio;Recife", "3", "minimo_fatos"),
        ("Rio;Recife", "0", "minimo_fatos"),
        ("Rio;Recife", "x", "minimo_fatos"),
        ("a", None, "empty alias"),  # an article alone normalizes to nothing
    ],
)
def test_bad_accepted_answers(text, minimum, problem):
    with pytest.raises(ValueError, match=problem):
        A(text, minimum)


def test_reference_supports():
    assert mt.reference_supports(A("Brasília;1960"), "Brasília foi inaugurada em 21/04/1960.") == []
    assert mt.reference_supports(A("Brasília;Goiânia"), "Brasília.") == ["Goiânia"]


@pytest.mark.parametrize(
    "answer,flag",
    [
        ("Rio de Janeiro, São Paulo, Brasília, Salvador e Recife.", True),
        ("1500, 1822, 1888, 1889", True),
        ("- Acre\n- Alagoas\n- Amapá\n- Bahia", True),
        ("A capital do Brasil é Brasília, no Planalto Central.", False),
        ("1. 26 estados 2. 26 estados 3. 26 estados 4. 26 estados", False),  # a repetition, not candidates
        (
            "O papel dos bandeirantes foi duplo: ampliaram o território além de Tordesilhas e descobriram ouro e "
            "pedras preciosas, mas também capturaram e escravizaram indígenas e destruíram aldeias, missões e "
            "quilombos.",
            False,
        ),
        ("", False),
    ],
)
def test_candidate_list_flag(answer, flag):
    assert mt.is_candidate_list(answer) is flag


def test_a_question_with_several_facts_allows_a_longer_list():
    presidents = A("Castelo Branco;Costa e Silva;Médici;Geisel;Figueiredo", 3)
    answer = "Castelo Branco, Costa e Silva, Médici, Geisel e Figueiredo."
    assert mt.is_candidate_list(answer) and not mt.is_candidate_list(answer, presidents)


def test_score_answer_marks_acerto_unavailable_without_accepted_answers():
    s = m.score_answer("Brasília.", "A capital é Brasília.")
    assert s["acerto"] is None and s["token_f1"] is not None and s["palavras"] == 1
    assert m.score_answer("Brasília.", "", A("Brasília"))["acerto"] == 1.0


# ---- intervals and tests --------------------------------------------------------------------------------------


def test_wilson_at_zero_n_and_between():
    low, high = m.wilson_interval(0, 19)
    assert low == 0.0 and high == pytest.approx(0.1682, abs=1e-4)
    low, high = m.wilson_interval(19, 19)
    assert high == 1.0 and low == pytest.approx(0.8318, abs=1e-4) and low < 1
    # 7/19 by hand: p=.3684, z=1.95996; centre=(p+z²/38)/(1+z²/19)=.4087, half=.1990
    low, high = m.wilson_interval(7, 19)
    assert (low, high) == pytest.approx((0.1915, 0.5896), abs=1e-4)
    assert all(math.isnan(x) for x in m.wilson_interval(0, 0))


def test_mcnemar_exact_by_hand():
    assert m.mcnemar_exact(1, 6) == pytest.approx(2 * (1 + 7) / 128)  # 0.125
    assert m.mcnemar_exact(6, 1) == m.mcnemar_exact(1, 6)
    assert m.mcnemar_exact(0, 0) == 1.0 and m.mcnemar_exact(3, 3) == 1.0
    assert m.mcnemar_exact(0, 10) == pytest.approx(2 / 1024)


def test_paired_bootstrap_diff():
    x, y = [1, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 0]
    diff, low, high = m.paired_bootstrap_diff(x, y, seed=3)
    assert diff == pytest.approx(0.5) and 0 <= low <= diff <= high <= 1
    assert m.paired_bootstrap_diff([1, 0], [1, 0]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        m.paired_bootstrap_diff([1], [1, 0])


# ---- questions files ------------------------------------------------------------------------------------------


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


HEADER = ["id", "pergunta", "resposta_referencia", "artigo", "respostas_aceitas", "minimo_fatos"]


def test_questions_with_accepted_answers(tmp_path):
    qs = ev.load_questions(
        write_csv(
            tmp_path / "q.csv",
            HEADER,
            [
                ["1", "Qual a capital do Brasil?", "Brasília.", "Brasil", "Brasília", ""],
                ["2", "Quem governou?", "Castelo Branco, Médici e Geisel.", "", "Castelo Branco;Médici;Geisel", "2"],
            ],
        )
    )
    assert qs[0].accepted == A("Brasília") and qs[1].accepted.required == 2


@pytest.mark.parametrize(
    "accepted,minimum,problem",
    [
        ("Brasília|", "", "row 1: respostas_aceitas: fact 1 has an empty alias"),
        ("", "", "row 1: respostas_aceitas is empty"),
        ("Goiânia", "", "row 1: respostas_aceitas: 'Goiânia' appears in no form in resposta_referencia"),
        ("Brasília", "2", "row 1: minimo_fatos"),
    ],
)
def test_bad_accepted_answers_in_a_file_name_file_and_row(tmp_path, accepted, minimum, problem):
    path = write_csv(tmp_path / "q.csv", HEADER, [["1", "Qual a capital?", "Brasília.", "", accepted, minimum]])
    with pytest.raises(UserError) as e:
        ev.load_questions(path)
    assert str(e.value).startswith(f"{path}: {problem}")


def test_check_questions_script_agrees_with_the_loader(tmp_path):
    path = write_csv(tmp_path / "q.csv", HEADER[:5], [["1", "Qual a capital?", "Brasília.", "", "Goiânia"]])
    r = subprocess.run([sys.executable, "data/check_questions.py", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {path}: row 1:") and "Traceback" not in r.stderr


# ---- the comparison -------------------------------------------------------------------------------------------

ROWS = [
    ["q1", "Qual a capital do Brasil?", "Brasília.", "Brasil", "Brasília", ""],
    [
        "q2",
        "Quando foi proclamada a independência do Brasil?",
        "Em 7 de setembro de 1822.",
        "Independência do Brasil",
        "1822",
        "",
    ],
    ["q3", "Quem foi Tiradentes?", "Um líder da Inconfidência Mineira.", "Tiradentes", "Inconfidência Mineira", ""],
]


def with_training(cfg, tmp_path, records):
    """Give the config's adapter a run_config.json pointing at a training file with ``records``."""
    adapter = Path(cfg["models"]["tiny+lora"]["adapter"])
    train = tmp_path / "treino.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    (adapter / "run_config.json").write_text(
        json.dumps({"data": {"train": {"path": str(train), "sha256": sha256_file(train), "n": len(records)}}})
    )
    return train


TRAIN = [
    {"instruction": "i", "input": "qual a capital do BRASIL", "output": "Brasília.", "article": "Brasil"},
    {
        "instruction": "i",
        "input": "Em que ano o Brasil proclamou a independência?",
        "output": "1822.",
        "article": "Independência do Brasil",
    },
]


def test_table_leads_with_acerto_and_wilson_intervals(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = write_csv(tmp_path / "perguntas.csv", HEADER, ROWS)
    with_training(cfg, tmp_path, TRAIN)
    run_dir = tmp_path / "run"
    result = run(cfg, questions, run_dir, {"answers": []}, systems=["base", "finetuned"])
    with open(run_dir / "metricas.csv", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[3:7] == ["acerto", "acerto_low", "acerto_high", "acerto_n"]
        rows = {r["system"]: r for r in reader}
    # base: "A capital do Brasil é Brasília." (right), "The answer is 1822." (right), Tiradentes: 1822 (wrong)
    assert float(rows["base"]["acerto"]) == pytest.approx(2 / 3, abs=1e-3)
    low, high = m.wilson_interval(2, 3)
    assert float(rows["base"]["acerto_low"]) == pytest.approx(low, abs=1e-3)
    assert float(rows["base"]["acerto_high"]) == pytest.approx(high, abs=1e-3)
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| sistema |"))
    assert header.split("|")[4].strip() == "acerto"
    assert "**Wilson**" in table and "**bootstrap**" in table
    assert "**Aceitas:** Brasília" in table and "_**acerto** (fato) ·" in table and "_erro (sem-fato: " in table

    # the paired comparison: finetuned answers q1, q2 right and q3 ("Em 7 de setembro de 1822.") wrong, like base
    assert "## Comparação pareada (acerto)" in table
    (pair,) = result.paired
    assert (pair["a"], pair["b"], pair["n"], pair["only_a"], pair["only_b"]) == ("base", "finetuned", 3, 0, 0)
    assert pair["p_mcnemar"] == 1.0 and pair["diff"] == 0.0
    with open(run_dir / "pareado.csv", encoding="utf-8") as f:
        assert next(csv.DictReader(f))["p_mcnemar"] == "1.0"


def test_seen_in_training_flags_counts_and_breakdown(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = write_csv(tmp_path / "perguntas.csv", HEADER, ROWS)
    with_training(cfg, tmp_path, TRAIN)
    run_dir = tmp_path / "run"
    result = run(cfg, questions, run_dir, {"answers": []}, systems=["base", "finetuned"])
    exp = result.exposure["finetuned"]
    # q1 is the training question normalized; q2 shares its article (the wording differs too much to be near);
    # q3 is about an article never trained on
    assert exp.flags == ["identical", "article", "unseen"] and exp.status == "ok"
    assert "base" not in result.exposure
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seen_in_training"]["finetuned"]["counts"] == {"identical": 1, "article": 1, "unseen": 1}
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "## Perguntas vistas no treino" in table and "idêntica no treino" in table and "inédita" in table
    assert 'q1. Qual a capital do Brasil? ← treino: "qual a capital do BRASIL"' in table
    (row,) = result.breakdown
    assert row["vista"]["questions"] == 1 and row["vista"]["mean"] == 1.0
    assert row["inedita"]["questions"] == 1 and row["inedita"]["mean"] == 0.0


def test_changed_training_file_is_said_and_missing_run_config_is_unknown(tmp_path, capsys):
    cfg, _ = make_env(tmp_path)
    questions = write_csv(tmp_path / "perguntas.csv", HEADER, ROWS)
    train = with_training(cfg, tmp_path, TRAIN)
    with open(train, "a", encoding="utf-8") as f:
        f.write(json.dumps({"input": "Quem foi Tiradentes?", "output": "x", "article": "Tiradentes"}) + "\n")
    result = run(cfg, questions, tmp_path / "run", {"answers": []}, systems=["finetuned"])
    exp = result.exposure["finetuned"]
    assert exp.status == "changed" and exp.flags[2] == "identical"
    assert "changed since the adapter was trained" in capsys.readouterr().err
    assert "alterado desde o treino" in (tmp_path / "run" / "tabela.md").read_text(encoding="utf-8")

    (Path(cfg["models"]["tiny+lora"]["adapter"]) / "run_config.json").unlink()
    result = run(cfg, questions, tmp_path / "run2", {"answers": []}, systems=["finetuned"])
    assert result.exposure["finetuned"].flags == ["unknown"] * 3  # unknown, never "unseen"
    assert "run_config.json: not found" in capsys.readouterr().err


def test_without_accepted_answers_acerto_is_not_available_not_zero(tmp_path):
    cfg, questions = make_env(tmp_path)  # the old 4-column file
    result = run(cfg, questions, tmp_path / "run", {"answers": []}, systems=["base"])
    assert result.summary[0]["acerto_n"] == 0 and math.isnan(result.summary[0]["acerto"])
    assert result.summary[0]["token_f1_n"] == 3 and result.paired == []
    table = (tmp_path / "run" / "tabela.md").read_text(encoding="utf-8")
    row = next(line for line in table.splitlines() if line.startswith("| base |"))
    assert row.split("|")[4].strip() == "n/d" and "acerto: não disponível" in table


# ---- leakage --------------------------------------------------------------------------------------------------


def test_question_leakage_four_flags():
    train = [
        {"input": "Qual é a capital do Brasil?", "output": "Brasília.", "article": "Brasil"},
        {"input": "Em que ano foi fundada a cidade de Brasília?", "output": "1960.", "article": "Brasília"},
        {"input": "Quem governou São Paulo?", "output": "x", "article": "São Paulo"},
    ]
    leaks = split.question_leakage(
        [
            ("qual e a CAPITAL do brasil", "Brasil"),  # identical once normalized
            ("Em que ano foi fundada a cidade Brasília?", None),  # near: same words but one
            ("Qual é o clima de São Paulo?", "São Paulo"),  # another question on a trained article
            ("Quem foi Tiradentes?", "Tiradentes"),
        ],
        train,
    )
    assert [lk.flag for lk in leaks] == ["identical", "near", "article", "unseen"]
    assert leaks[1].train_question == "Em que ano foi fundada a cidade de Brasília?" and leaks[1].similarity >= 0.8


def test_particiona_exclude_questions(tmp_path):
    records = [
        {"instruction": "i", "input": q, "output": "o", "article": a, "source": "infobox"}
        for q, a in [
            ("Qual é a capital do Brasil?", "Brasil"),
            ("Qual a capital do Brasil", "Brasil"),
            ("Qual é a população do Brasil?", "Brasil"),
            ("Quem foi Tiradentes?", "Tiradentes"),
            ("Onde nasceu Tiradentes?", "Tiradentes"),
            ("Quando nasceu Pelé?", "Pelé"),
            ("Onde nasceu Pelé?", "Pelé"),
            ("Qual é a capital da Bahia?", "Bahia"),
        ]
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    qfile = write_csv(
        tmp_path / "q.csv",
        HEADER[:4],
        [
            ["c1", "Qual a capital do Brasil?", "Brasília.", "Brasil"],
            ["c2", "Quem descobriu o Brasil?", "Cabral.", "Brasil"],
        ],
    )
    args = [sys.executable, "particiona.py", str(data), "--test-size", "0.25", "--seed", "1"]
    plain = subprocess.run(
        args + ["--train", str(tmp_path / "a.jsonl"), "--test", str(tmp_path / "b.jsonl")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    r = subprocess.run(
        args
        + [
            "--train",
            str(tmp_path / "t.jsonl"),
            "--test",
            str(tmp_path / "e.jsonl"),
            "--exclude-questions",
            str(qfile),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 0 and r.returncode == 0, r.stderr
    before = [json.loads(x)["input"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    after = [json.loads(x)["input"] for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    capital = {"Qual é a capital do Brasil?", "Qual a capital do Brasil"}
    dropped = [q for q in before if q in capital]
    assert dropped and not capital & set(after) and len(after) == len(before) - len(dropped)
    assert f"{qfile}: {len(dropped)} training record(s) dropped" in r.stdout and f"c1 ({len(dropped)})" in r.stdout
    assert (tmp_path / "e.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()  # test set unchanged


# ---- the judge ------------------------------------------------------------------------------------------------


def test_judge_verdicts_are_cached_and_shown(tmp_path):
    from llamawiki import prompt

    cfg, _ = make_env(tmp_path)
    questions = write_csv(tmp_path / "perguntas.csv", HEADER, ROWS)
    judge_model = tmp_path / "judge"
    judge_model.mkdir()
    (judge_model / "config.json").write_text("{}")
    cfg["models"]["juiz"] = {"backend": "transformers", "model": str(judge_model)}
    cfg["judge"] = {"model": "juiz"}
    judged = []

    class Judge:
        def generate(self, text, **gen):
            judged.append(text)
            answer = text.split("Resposta do sistema:")[1]
            verdict = "Correta." if ("Brasília" in answer or "1822" in answer) else "incorreta"
            if "Tiradentes" in text and "1822" in answer:
                verdict = "Talvez"  # unparseable: counted as no verdict
            return type("G", (), {"text": verdict})()

    from test_compare import FakeGenerator

    def load_generator(spec):
        return Judge() if spec["model"] == str(judge_model) else FakeGenerator(spec, {"answers": []})

    kw = dict(
        questions_path=questions,
        progress=False,
        load_generator=load_generator,
        load_retriever=lambda *a: None,
        rag_answer=None,
        systems=["base"],
    )
    result = ev.run_comparison(cfg, run_dir=tmp_path / "run", **kw)
    assert len(judged) == 3 and all(prompt.INSTRUCTION_JUDGE in j for j in judged)
    row = result.summary[0]
    assert row["juiz_n"] == 2 and row["juiz"] == 1.0  # q1, q2 "correta"; q3 no verdict
    table = (tmp_path / "run" / "tabela.md").read_text(encoding="utf-8")
    header = next(line for line in table.splitlines() if line.startswith("| sistema |"))
    assert "juiz" in [c.strip() for c in header.split("|")] and "juiz: sem veredito" in table
    assert "juiz: correta" in table
    # a second run asks the judge nothing: the verdicts come from juiz.jsonl
    ev.run_comparison(cfg, run_dir=tmp_path / "run", **kw)
    assert len(judged) == 3
    assert len((tmp_path / "run" / "juiz.jsonl").read_text().splitlines()) == 3


def test_without_a_judge_there_is_no_juiz_column(tmp_path):
    cfg, _ = make_env(tmp_path)
    questions = write_csv(tmp_path / "perguntas.csv", HEADER, ROWS)
    run(cfg, questions, tmp_path / "run", {"answers": []}, systems=["base"])
    table = (tmp_path / "run" / "tabela.md").read_text(encoding="utf-8")
    assert "juiz" not in table and not (tmp_path / "run" / "juiz.jsonl").exists()


@pytest.mark.parametrize(
    "text,verdict",
    [
        ("correta", 1.0),
        ("Correto.", 1.0),
        ("INCORRETA", 0.0),
        ("Não.", 0.0),
        ("errada", 0.0),
        ("talvez", None),
        ("", None),
    ],
)
def test_parse_verdict(text, verdict):
    from llamawiki.prompt import parse_verdict

    assert parse_verdict(text) == verdict


def test_numbered_list_markers_are_not_answers():
    # found by reading the lowest-F1 "correct" answers of make avaliacao: the list's own numbering matched
    five = A("5|cinco")
    assert not a.key_fact_correct("1. 1950\n2. 2014\n3. 2016\n4. 2019\n5. 2022", five)
    assert not a.key_fact_correct("1) 1888 2) 1889", A("2|dois"))
    assert a.key_fact_correct("O Brasil conquistou 5 Copas.", five)
    assert a.key_fact_correct("Foram 5. Depois vieram outras.", five)  # a number ending a sentence stays
    assert a.key_fact_correct("1. Castelo Branco\n2. Costa e Silva", A("Castelo Branco"))


# ---- parsing bugs found by the audit (issue 23) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text,norm",
    [
        ("entre dez e dezesseis estados", "entre 10 e 16 estados"),  # two numbers, not 26
        ("sete e oito", "7 e 8"),
        ("vinte e um", "21"),
        ("mil e quinhentos", "1500"),
        ("cento e vinte e três", "123"),
        ("Ele é um homem", "ele e homem"),
        ("07.09.1822", "7 de setembro de 1822"),  # not 7091822
        ("07-09-1822", "7 de setembro de 1822"),
        ("D. Pedro 1º", "d pedro 1"),
        ("Pedro I", "pedro 1"),
        ("João VI.", "joao 6"),
        ("Lei nº 3.353", "lei no 3353"),
    ],
)
def test_match_normalize_parsing(text, norm):
    assert mt.match_normalize(text) == norm


def test_roman_numerals_and_ordinals_agree():
    assert a.key_fact_correct("D. Pedro 1º.", A("Pedro I"))
    assert not a.key_fact_correct("D. Pedro II.", A("Pedro I"))
    assert not a.key_fact_correct("Entre dez e dezesseis estados.", A("26"))
    assert a.key_fact_correct("Em 07.09.1822.", A("7 de setembro de 1822"))


@pytest.mark.parametrize(
    "answer,flag",
    [
        ("Pode ser Rio de Janeiro, São Paulo ou Brasília.", True),  # a hedge between three candidates
        ("Rio de Janeiro, São Paulo ou Brasília", True),
        ("A capital do Brasil é Brasília, ou seja, a sede do governo federal desde 1960.", False),
        ("Brasília ou Rio.", False),  # two: the hedge check of acerto, not the list flag
    ],
)
def test_candidate_list_flag_for_hedges(answer, flag):
    assert mt.is_candidate_list(answer, A("Brasília")) is flag


def test_score_answer_says_which_check_decided():
    s = m.score_answer(
        "Não foi Pedro II, foi Pedro I.", "", A("Pedro I"), wrong=["Pedro II"], question="Quem foi o 1º imperador?"
    )
    assert (s["acerto"], s["acerto_regra"]) == (1.0, "fato")
    s = m.score_answer("A capital não é Brasília.", "", A("Brasília"))
    assert (s["acerto"], s["acerto_regra"], s["acerto_detalhe"]) == (0.0, "negacao", "nega 'Brasília'")
    assert m.score_answer("Brasília.", "Brasília.")["acerto_regra"] is None
    v = a.judge_acerto("Talvez Pedro I ou Pedro II.", A("Pedro I"))
    assert not v.correct and v.check == "hesitacao" and v.check in a.CHECKS


def test_wrong_candidates_and_tipo_reach_the_table(tmp_path):
    from llamawiki import report

    cfg, _ = make_env(tmp_path)
    header = HEADER + ["respostas_erradas", "tipo"]
    rows = [ROWS[0] + ["Rio de Janeiro|Salvador", "fato"], ROWS[1] + ["", "aberta"]]
    questions = write_csv(tmp_path / "perguntas.csv", header, rows)
    qs = ev.load_questions(questions)
    assert (qs[0].wrong, qs[0].tipo, qs[1].wrong, qs[1].tipo) == (("Rio de Janeiro", "Salvador"), "fato", (), "aberta")
    run_dir = tmp_path / "run"
    result = run(cfg, questions, run_dir, {"answers": []}, systems=["base"])
    assert result.scores[("base", "q1")]["acerto_regra"] == "fato"
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "## A regra que decidiu o acerto" in table and "| base | 2 |" in table  # both answers: fato
    note = report.acerto_note(
        {"acerto": 0.0, "acerto_regra": "candidato-errado", "acerto_detalhe": "também afirma 'X'"}
    )
    assert note == "erro (candidato-errado: também afirma 'X')"
    assert (
        report.acerto_note({"acerto": 1.0, "acerto_regra": "fato", "acerto_detalhe": "afirma 'X'"})
        == "**acerto** (fato)"
    )


# ---- a retrieved passage pasted from its header (docs/compare.md, "contexto colado") ----------------------------

GEOGRAFIA = (
    "Brasil — Geografia\n"
    "O Brasil ocupa quase metade da América do Sul e faz fronteira com todos os países sul-americanos, exceto o Chile"
    " e o Equador. Abriga a maior parte da Floresta Amazônica."
)
LEAD = (
    "Pedro I do Brasil\nDom Pedro I (Queluz, 1798 – Queluz, 1834) foi o primeiro imperador do Brasil, de 1822 a 1831."
)
FRONTEIRA = ("Com quais países sul-americanos o Brasil não tem fronteira?", A("Chile;Equador"))


def test_a_passage_pasted_from_its_header_is_an_echo_of_the_context():
    question, accepted = FRONTEIRA
    pasted = GEOGRAFIA.replace(" Abriga a maior parte da Floresta Amazônica.", " Abriga a maior parte")  # truncated
    v = a.judge_acerto(pasted, accepted, question=question, context=[LEAD, GEOGRAFIA])
    assert (v.correct, v.check) == (False, "eco") and "contexto colado" in v.detail, v
    # the same answer, the context unknown (a label file without it, an answer cached before contexts were kept)
    assert a.judge_acerto(pasted, accepted, question=question).correct
    # the context joined as the prompt shows it (a label file's `contexto` column) reads the same
    joined = "\n\n".join([LEAD, GEOGRAFIA])
    assert a.judge_acerto(pasted, accepted, question=question, context=joined).check == "eco"
    # a header changed by the model ("Brazil — Geography") and the passage's first text line copied: a paste too
    altered = "Brazil — Geography\n" + GEOGRAFIA.split("\n", 1)[1]
    assert a.pasted_context(altered, [GEOGRAFIA]) == [(0, len(altered))]
    assert a.judge_acerto(altered, accepted, question=question, context=[GEOGRAFIA]).check == "eco"


def test_what_the_answer_writes_itself_counts_also_after_a_pasted_header():
    question, accepted = FRONTEIRA
    ctx = [LEAD, GEOGRAFIA]
    composed = "Brasil — Geografia\nO Brasil não faz fronteira só com dois países: o Chile e o Equador."
    spans = a.pasted_context(composed, ctx)
    assert [composed[s:e] for s, e in spans] == ["Brasil — Geografia"]  # the header line only
    assert a.judge_acerto(composed, accepted, question=question, context=ctx).correct
    # the paste, then the answer's own conclusion
    concluded = GEOGRAFIA + "\n\nOs dois países são o Chile e o Equador."
    v = a.judge_acerto(concluded, accepted, question=question, context=ctx)
    assert v.correct, v
    # an extractive answer: the passage's words without its header line
    extractive = "O Brasil faz fronteira com todos os países sul-americanos, exceto o Chile e o Equador."
    assert a.pasted_context(extractive, ctx) == []
    assert a.judge_acerto(extractive, accepted, question=question, context=ctx).correct


def test_a_passage_pasted_with_light_edits_after_its_header_is_an_echo_too():
    # found by the fifth label set (data/rotulos-bm25.csv): the header copied, then the passage with a word or two
    # changed ("ocupa quase metade" -> "ocupa metade"): each line that follows is a paste while 80% of its word
    # trigrams are the context's
    question, accepted = FRONTEIRA
    ctx = [LEAD, GEOGRAFIA]
    edited = GEOGRAFIA.replace("ocupa quase metade", "ocupa metade").replace("Abriga", "E abriga")
    assert a.pasted_context(edited, ctx) == [(0, len(edited))]
    assert a.judge_acerto(edited, accepted, question=question, context=ctx).check == "eco"
    # the header, then a sentence of the answer's own that reuses a few of the passage's words: an answer
    own = "Brasil — Geografia\nO Brasil faz fronteira com quase todos, menos com o Chile e o Equador, diz o texto."
    assert [own[s:e] for s, e in a.pasted_context(own, ctx)] == ["Brasil — Geografia"]
    assert a.judge_acerto(own, accepted, question=question, context=ctx).correct
    # the edited paste, then the answer's own line: the own line counts
    concluded = edited + "\nResposta: o Chile e o Equador."
    assert a.judge_acerto(concluded, accepted, question=question, context=ctx).correct


def test_a_header_and_its_passage_pasted_on_one_line_is_an_echo_too():
    # found by the seventh held-out set (data/rotulos-k1.csv a144): "Tiradentes — Tiradentes foi o mais ativo …",
    # the header cut to its title and the passage's first text line joined to it
    question, accepted = FRONTEIRA
    ctx = [LEAD, GEOGRAFIA]
    one_line = "Resposta:\nBrasil — " + GEOGRAFIA.split("\n", 1)[1]
    assert a.judge_acerto(one_line, accepted, question=question, context=ctx).check == "eco"
    # a title, a dash and words of the answer's own: an answer
    own = "Brasil — faz fronteira com quase todos, menos com o Chile e o Equador."
    assert a.pasted_context(own, ctx) == []
    assert a.judge_acerto(own, accepted, question=question, context=ctx).correct


def test_under_a_contexto_label_the_answers_own_sentence_counts_when_the_context_is_known():
    # found by the seventh held-out set (data/rotulos-k1.csv: 3 of 4 right answers lost): the model writes
    # "Contexto:" and then a sentence of its own, not the passage it was given
    question, accepted = FRONTEIRA
    ctx = [LEAD, GEOGRAFIA]
    own = "Contexto:\nO Brasil tem fronteira com quase todos os vizinhos; os que ficam de fora são o Chile e o Equador."
    v = a.judge_acerto(own, accepted, question=question, context=ctx)
    assert (v.correct, v.check) == (True, "fato"), v
    # the passage itself under the label is still an echo, and so is anything under it when the context is unknown
    echoed = "Contexto:\n" + GEOGRAFIA.split("\n", 1)[1]
    assert a.judge_acerto(echoed, accepted, question=question, context=ctx).check == "eco"
    assert a.judge_acerto(own, accepted, question=question).check == "eco"
    # the passage, then the answer's own sentence, both under the label: the own sentence counts
    both = echoed + " Então os dois são o Chile e o Equador, segundo o trecho dado."
    assert a.judge_acerto(both, accepted, question=question, context=ctx).correct


def test_a_title_as_the_whole_answer_is_not_a_paste():
    # a lead chunk's header is the bare title: an answer that is the title, or the title and other words, is the
    # answer's own; a paste needs the title and 5 more words of the passage
    accepted = A("Pedro I")
    question = "Quem foi o primeiro imperador do Brasil?"
    for answer in ("Pedro I do Brasil", "Pedro I do Brasil\nFoi ele, em 1822."):
        assert a.pasted_context(answer, [LEAD]) == []
        assert a.judge_acerto(answer, accepted, question=question, context=[LEAD]).correct
    pasted = LEAD.split(" – ")[0]  # "Pedro I do Brasil\nDom Pedro I (Queluz, 1798"
    assert a.pasted_context(pasted, [LEAD]) == [(0, len(pasted))]
    assert a.judge_acerto(pasted, accepted, question=question, context=[LEAD]).check == "eco"


def test_compare_scores_a_rag_answer_with_the_context_it_was_given(tmp_path):
    from types import SimpleNamespace

    cfg, _ = make_env(tmp_path)
    questions = write_csv(
        tmp_path / "perguntas.csv",
        ["id", "pergunta", "resposta_referencia", "artigo", "respostas_aceitas"],
        [["q1", FRONTEIRA[0], "Chile e Equador.", "Brasil", "Chile;Equador"]],
    )

    def rag_answer(question, retriever, generator, k, **gen):
        g = SimpleNamespace(text=GEOGRAFIA, n_tokens=40, seconds=0.1, prompt_tokens=90)
        return SimpleNamespace(text=GEOGRAFIA, sources=["Brasil"], contexts=[GEOGRAFIA], generation=g)

    result = ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=tmp_path / "run",
        systems=["rag"],
        progress=False,
        load_generator=lambda spec: object(),
        load_retriever=lambda index_dir, kind, k: object(),
        rag_answer=rag_answer,
    )
    score = result.scores[("rag", "q1")]
    assert (score["acerto"], score["acerto_regra"]) == (0.0, "eco")
    assert "contexto colado" in score["acerto_detalhe"]
