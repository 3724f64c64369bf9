"""llamawiki.reference: the committed reference run (save), the README's generated sections (readme, --check) and a
run compared with the reference (diff), on small synthetic runs; plus the real README against the committed
reference: the README can never drift from results/referencia/ again."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llamawiki import readme, reference
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ["base", "rag", "finetuned", "rag+finetuned"]
QIDS = ["1", "2", "3", "4"]
# question id -> systems that answer it right
RIGHT = {"1": {"rag", "finetuned", "rag+finetuned"}, "2": {"rag", "rag+finetuned"}, "3": {"rag+finetuned"}, "4": set()}


def _answer(qid: str, system: str) -> str:
    return f"resposta {system} {qid}" + (" certa" if system in RIGHT[qid] else "")


def _metric_rows(right: dict[str, set[str]]) -> list[dict]:
    rows = []
    n = len(QIDS)
    for s in SYSTEMS:
        k = sum(s in right[q] for q in QIDS)
        rows.append(
            {
                "system": s,
                "model": "m",
                "n_answers": n,
                "acerto": round(k / n, 4),
                "acerto_low": 0.0,
                "acerto_high": 0.9,
                "acerto_n": n,
                "exact_match": 0.0,
                "token_f1": 0.3 if s != "rag" else 0.2,
                "rouge_l": 0.25,
                "portugues": 1.0,
                "palavras_mean": 10.0,
                "listas": 0,
                "latency_s": 1.5,
            }
        )
    return rows


def _paired_rows(right: dict[str, set[str]]) -> list[dict]:
    rows = []
    n = len(QIDS)
    for i, a in enumerate(SYSTEMS):
        for b in SYSTEMS[i + 1 :]:
            ka, kb = sum(a in right[q] for q in QIDS), sum(b in right[q] for q in QIDS)
            only_a = sum(a in right[q] and b not in right[q] for q in QIDS)
            only_b = sum(b in right[q] and a not in right[q] for q in QIDS)
            d = (ka - kb) / n
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "n": n,
                    "a_rate": ka / n,
                    "b_rate": kb / n,
                    "diff": d,
                    "low": d - 0.25,
                    "high": d + 0.25,
                    "only_a": only_a,
                    "only_b": only_b,
                    "p_mcnemar": 0.5 if only_a + only_b else 1.0,
                }
            )
    return rows


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def make_run(folder: Path, right=None, texts=None, **manifest_extra) -> Path:
    """A finished compare.py run as write_outputs leaves it (4 questions x 4 systems), plus what save must skip."""
    right = right or RIGHT
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "created": "2026-12-07T10:00:00+0000",
        "config_path": "configs/compare-demo.yaml",
        "config": {"questions": "data/perguntas.csv"},
        "run": {"systems": None, "limit": None},
        "questions": {"path": "data/perguntas.csv", "sha256": "q" * 64, "n": len(QIDS)},
        "coverage": {"systems": SYSTEMS, "question_ids": QIDS},
        "partial_of": None,
        "models": [
            {
                "system": "finetuned",
                "model": {"adapter": "models/lora-demo"},
                "files": [{"path": "models/lora-demo/adapter_model.safetensors", "sha256": "a" * 64}],
                "retrieval": None,
            }
        ],
        "seen_in_training": {
            "finetuned": {
                "adapter": "models/lora-demo",
                "status": "ok",
                "counts": {"identical": 1, "near": 0, "article": 2, "unseen": 1},
            }
        },
        "answers": {"generated": 16, "cached": 0, "missing": 0},
        "git": {"commit": "0123456789abcdef", "dirty": False},
    }
    manifest.update(manifest_extra)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _write_csv(folder / "metricas.csv", _metric_rows(right))
    _write_csv(folder / "pareado.csv", _paired_rows(right))
    (folder / "tabela.md").write_text("# Perguntas e Respostas\n", encoding="utf-8")
    texts = texts or {}
    lines = [  # a stale answer from an older adapter first: the run's own one comes later in the cache
        {"key": "old", "system": "finetuned", "question_id": "1", "answer": "velha", "latency_s": 9.0}
    ]
    for q in QIDS:
        for s in SYSTEMS:
            text = texts.get((q, s), _answer(q, s))
            lines.append({"key": f"{q}-{s}", "system": s, "question_id": q, "answer": text, "latency_s": 1.0})
    lines.append({"key": "other", "system": "base-hf", "question_id": "1", "answer": "outra config"})
    (folder / "respostas.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines) + '{"cut by an interr', encoding="utf-8"
    )
    (folder / "metricas.png").write_bytes(b"\x89PNG")
    (folder / ".sha256-cache.json").write_text("{}", encoding="utf-8")
    (folder / "parcial").mkdir(exist_ok=True)
    (folder / "parcial" / "tabela.md").write_text("partial", encoding="utf-8")
    return folder


README_TEMPLATE = """# t

Texto digitado.

<!-- gerado: referencia -->
<!-- fim: referencia -->

<!-- gerado: tabela-demo -->
<!-- fim: tabela-demo -->

<!-- gerado: leitura-demo -->
<!-- fim: leitura-demo -->

<!-- gerado: tabela-avaliacao -->
velho
<!-- fim: tabela-avaliacao -->

Fim.
"""


def run_cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "llamawiki.reference", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_error(proc: subprocess.CompletedProcess, *needles: str, code: int | None = None) -> str:
    assert proc.returncode > 0 if code is None else proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def md5_tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


# ---- save ---------------------------------------------------------------------------------------------------------


def test_save_copies_the_small_text_files_and_the_answers_used(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    target = reference.save_run(run, tmp_path / "ref", command="make referencia", root=tmp_path)
    assert target == tmp_path / "ref" / "demo"
    names = sorted(p.name for p in target.iterdir())
    assert names == ["manifest.json", "metricas.csv", "origem.json", "pareado.csv", "respostas.jsonl", "tabela.md"]
    kept = [json.loads(line) for line in (target / "respostas.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(kept) == len(QIDS) * len(SYSTEMS)  # the stale one, the other config's and the cut line are gone
    assert [(r["question_id"], r["system"]) for r in kept[:4]] == [("1", s) for s in SYSTEMS]
    assert "velha" not in {r["answer"] for r in kept}
    o = json.loads((target / "origem.json").read_text(encoding="utf-8"))
    assert o["command"] == "make referencia"
    assert o["compare_command"] == "python compare.py --config configs/compare-demo.yaml --run-dir " + str(run)
    assert o["run_git"]["commit"] == "0123456789abcdef"
    assert {"cpu", "cores", "platform"} <= set(o["machine"])
    assert o["libraries"]["python"] == sys.version.split()[0]
    assert o["answers"] == {"n": 16, "latency_s_sum": 16.0}


def test_save_records_the_inputs_and_an_adapter_only_when_it_is_the_one_used(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    (tmp_path / "json").mkdir()
    recs = [{"input": f"q{i}", "article": "A" if i % 2 else "B"} for i in range(5)]
    (tmp_path / "json" / "treino.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    adapter = tmp_path / "models" / "lora-demo"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"other weights")
    rc = {"started": "2026-12-07T10:00:00+00:00", "finished": "2026-12-07T10:03:30+00:00", "global_step": 50}
    (adapter / "run_config.json").write_text(json.dumps(rc), encoding="utf-8")
    o = json.loads((reference.save_run(run, tmp_path / "ref", root=tmp_path) / "origem.json").read_text())
    assert o["inputs"]["train"]["records"] == 5 and o["inputs"]["train"]["articles"] == 2
    assert o["inputs"]["train"]["path"] == "json/treino.jsonl"
    assert o["inputs"]["dataset"] is None
    assert "changed after the run" in o["inputs"]["adapter"]["note"]  # not the adapter the run used
    assert "seconds" not in o["inputs"]["adapter"]
    weights_sha = hashlib.sha256(b"other weights").hexdigest()
    make_run(run, models=[{"model": {"adapter": "models/lora-demo"}, "files": [
        {"path": "models/lora-demo/adapter_model.safetensors", "sha256": weights_sha}]}])  # fmt: skip
    o = json.loads((reference.save_run(run, tmp_path / "ref", root=tmp_path) / "origem.json").read_text())
    assert o["inputs"]["adapter"]["seconds"] == 210 and o["inputs"]["adapter"]["global_step"] == 50


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"partial_of": "results/demo"}, "partial run"),
        ({"answers": {"missing": 3}}, "3 answer(s) missing"),
        ({"coverage": {"systems": SYSTEMS, "question_ids": ["1"]}}, "cover 1 of 4"),
    ],
)
def test_save_refuses_an_unfinished_run_and_keeps_the_old_reference(tmp_path, change, needle):
    make_run(tmp_path / "results" / "demo")
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    before = md5_tree(tmp_path / "results" / "referencia")
    make_run(tmp_path / "results" / "demo", **change)
    assert_one_error(run_cli("save", "results/demo", cwd=tmp_path), "results/demo", needle)
    assert md5_tree(tmp_path / "results" / "referencia") == before
    assert not [p for p in (tmp_path / "results" / "referencia").iterdir() if p.name.startswith(".")]


def test_save_bad_input_is_one_line(tmp_path):
    assert_one_error(run_cli("save", "results/nada", cwd=tmp_path), "results/nada", "no such run folder")
    (tmp_path / "vazia").mkdir()
    assert_one_error(run_cli("save", "vazia", cwd=tmp_path), "vazia", "no manifest.json")
    run = make_run(tmp_path / "ruim")
    (run / "manifest.json").write_text("{nope", encoding="utf-8")
    assert_one_error(run_cli("save", "ruim", cwd=tmp_path), "ruim/manifest.json", "invalid JSON")
    run = make_run(tmp_path / "colunas")
    (run / "metricas.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    assert_one_error(run_cli("save", "colunas", cwd=tmp_path), "colunas/metricas.csv", "missing column")


def test_save_allow_missing_warns_and_keeps_what_it_had(tmp_path):
    make_run(tmp_path / "results" / "demo")
    make_run(tmp_path / "results" / "avaliacao")
    assert run_cli("save", "results/demo", "results/avaliacao", cwd=tmp_path).returncode == 0
    before = md5_tree(tmp_path / "results" / "referencia" / "avaliacao")
    make_run(tmp_path / "results" / "avaliacao", partial_of="x")
    proc = run_cli("save", "results/demo", "results/avaliacao", "--allow-missing", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("warning: results/avaliacao: a partial run"), proc.stderr
    assert "saved results/demo" in proc.stdout
    assert md5_tree(tmp_path / "results" / "referencia" / "avaliacao") == before


def test_gitignore_commits_the_reference_and_nothing_else_of_results():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    assert ignored("results/demo/tabela.md")
    assert ignored("results/avaliacao/respostas.jsonl")
    assert not ignored("results/referencia/demo/metricas.csv")


# ---- readme -------------------------------------------------------------------------------------------------------


def test_readme_fills_the_sections_and_check_holds_it(tmp_path):
    make_run(tmp_path / "results" / "demo")
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    (tmp_path / "README.md").write_text(README_TEMPLATE, encoding="utf-8")
    proc = run_cli("readme", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# t\n\nTexto digitado.\n") and text.endswith("Fim.\n")
    assert "| rag+finetuned | 3/4 = 0.75 [0.00, 0.90] |" in text
    assert "| rag − base | +0.50 [+0.25, +0.75] | 2 | 0 | 0.500 |" in text  # pareado.csv has base,rag: flipped
    assert "- RAG + ajuste fino: 3 de 4" in text
    assert "põe o RAG sozinho abaixo do base (0,20 contra 0,30)" in text
    avaliacao = re.search(r"<!-- gerado: tabela-avaliacao -->\n(.*?)<!-- fim", text, re.S).group(1)
    assert "ainda não tem a execução `avaliacao`" in avaliacao and not re.search(r"\d", avaliacao)
    assert "velho" not in text
    assert run_cli("readme", "--check", cwd=tmp_path).returncode == 0
    # a hand edit inside a generated section: --check says so on one line, exit 1, and changes nothing
    edited = text.replace("3/4 = 0.75", "4/4 = 1.00")
    (tmp_path / "README.md").write_text(edited, encoding="utf-8")
    line = assert_one_error(run_cli("readme", "--check", cwd=tmp_path), "README.md", "tabela-demo", code=1)
    assert "1 generated section(s) differ" in line
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == edited
    assert run_cli("readme", cwd=tmp_path).returncode == 0
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == text


def test_readme_with_both_runs_and_seeds(tmp_path):
    make_run(tmp_path / "results" / "demo")
    run = make_run(tmp_path / "results" / "avaliacao")
    _write_csv(run / "sementes.csv", [{"system": "finetuned", "seeds": 3, "mean": 0.1, "min": 0.05, "max": 0.2}])
    assert run_cli("save", "results/demo", "results/avaliacao", cwd=tmp_path).returncode == 0
    (tmp_path / "README.md").write_text(README_TEMPLATE, encoding="utf-8")
    assert run_cli("readme", cwd=tmp_path).returncode == 0
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    avaliacao = re.search(r"<!-- gerado: tabela-avaliacao -->\n(.*?)<!-- fim", text, re.S).group(1)
    assert "| finetuned | 1/4 = 0.25 [0.00, 0.90] | 0.30 | 1.00 | 0 |" in avaliacao
    assert "| finetuned | 3 | 0.10 | 0.05 | 0.20 |" in avaliacao
    reading = avaliacao.split("**Leitura das sementes**: ", 1)[1].splitlines()[0]
    assert reading == (
        "o ajuste fino sozinho, acerto de 0,05 a 0,20 entre as 3 sementes (faixa de 0,15), e a diferença para o "
        "modelo base na referência, +0,25, é maior que a faixa: não é só ruído de semente."
    )
    # a wider spread than the difference: the README says it may be seed noise
    from llamawiki import readme
    from llamawiki.runs import load_run

    wide = [{"system": "finetuned", "seeds": "3", "mean": "0.2", "min": "0.0", "max": "0.5"}]
    assert readme._seeds_reading(load_run(run), wide).endswith("está dentro da faixa: pode ser ruído de semente.")
    assert "Das 4 perguntas, 1 está no treino" in avaliacao


def test_readme_bad_input_is_one_line_and_writes_nothing(tmp_path):
    assert_one_error(run_cli("readme", cwd=tmp_path), "README.md", "not found")
    (tmp_path / "README.md").write_text("# sem seções\n", encoding="utf-8")
    assert_one_error(run_cli("readme", cwd=tmp_path), "README.md", "no generated section")
    for bad, needle in [
        ("<!-- gerado: nada -->\n<!-- fim: nada -->\n", "unknown generated section(s) nada"),
        ("<!-- gerado: tabela-demo -->\nsem fim\n", "never closed"),
    ]:
        (tmp_path / "README.md").write_text(bad, encoding="utf-8")
        assert_one_error(run_cli("readme", cwd=tmp_path), "README.md", needle)
        assert (tmp_path / "README.md").read_text(encoding="utf-8") == bad
    make_run(tmp_path / "results" / "referencia" / "demo")
    (tmp_path / "results" / "referencia" / "demo" / "pareado.csv").write_text('a,b\n"x\n', encoding="utf-8")
    (tmp_path / "README.md").write_text(README_TEMPLATE, encoding="utf-8")
    assert_one_error(run_cli("readme", cwd=tmp_path), "pareado.csv")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == README_TEMPLATE


def test_the_readme_is_what_the_committed_reference_generates(monkeypatch):
    """README.md's generated sections = results/referencia/ (make referencia rewrites both; commit them together)."""
    monkeypatch.chdir(ROOT)
    try:
        readme.update_readme(ROOT / "README.md", ROOT / "results" / "referencia", check=True)
    except UserError as e:
        pytest.fail(str(e))


def test_the_readme_types_no_result_numbers_outside_the_generated_sections():
    text = readme.MARKER.sub("", (ROOT / "README.md").read_text(encoding="utf-8"))
    typed = re.findall(r"\b\d+/\d+ = |\bp [=<] 0[,.]\d|\bacerto (?:de )?0[,.]\d\d|F1 0[,.]\d\d", text)
    assert not typed, f"numbers from a run typed into README.md outside <!-- gerado --> sections: {typed}"


# ---- diff ---------------------------------------------------------------------------------------------------------


def test_diff_identical(tmp_path):
    make_run(tmp_path / "results" / "demo")
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    proc = run_cli("diff", "results/demo", "--check", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "identical answers (16/16)" in proc.stdout
    assert "adapter: same sha256" in proc.stdout
    assert "acerto: every row as in the reference" in proc.stdout


def test_diff_lists_the_answers_that_differ_and_how_the_table_moves(tmp_path):
    make_run(tmp_path / "results" / "demo")
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    right = {q: set(s) for q, s in RIGHT.items()}
    right["4"] = {"rag+finetuned"}
    make_run(tmp_path / "results" / "demo", right=right, texts={("4", "rag+finetuned"): "agora certa"})
    proc = run_cli("diff", "results/demo", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1 of 16 answers differ" in out
    assert (
        'question 4, rag+finetuned:\n      reference: "resposta rag+finetuned 4"\n      this run:  "agora certa"' in out
    )
    assert "rag+finetuned    3/4 = 0.75 [0.00, 0.90]  ->  4/4 = 1.00 [0.00, 0.90]" in out
    assert "rag+finetuned − rag: +0.25, p 0.500  ->  +0.50, p 0.500" in out
    assert run_cli("diff", "results/demo", "--check", cwd=tmp_path).returncode == 1


def test_diff_without_a_reference_and_bad_input(tmp_path):
    make_run(tmp_path / "results" / "demo")
    proc = run_cli("diff", "results/demo", cwd=tmp_path)
    assert proc.returncode == 0 and "no reference run" in proc.stdout, proc.stderr
    assert_one_error(run_cli("diff", "results/nada", cwd=tmp_path), "results/nada", "no such run folder")
    (tmp_path / "results" / "vazia").mkdir()
    assert_one_error(run_cli("diff", "results/vazia", cwd=tmp_path), "results/vazia", "no manifest.json")
    # make demo ends with diff: an unfinished run is compared on what it has, never an error
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    make_run(tmp_path / "results" / "demo", answers={"missing": 2})
    proc = run_cli("diff", "results/demo", cwd=tmp_path)
    assert proc.returncode == 0 and "this run is unfinished (2 answer(s) missing" in proc.stdout, proc.stderr


# ---- seeds --------------------------------------------------------------------------------------------------------


def test_seeds_spread_from_synthetic_runs(tmp_path):
    main_run = make_run(tmp_path / "avaliacao")
    manifest = json.loads((main_run / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["models"]:  # the run's own adapter is not one of the seeds'
        for f in entry.get("files") or []:
            f["sha256"] = "b" * 64
    (main_run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    right_b = {q: set(s) for q, s in RIGHT.items()}
    right_b["4"] = {"finetuned", "rag+finetuned"}
    make_run(main_run / "sementes" / "s1")
    make_run(main_run / "sementes" / "s2", right=right_b)
    proc = run_cli("seeds", "avaliacao", "avaliacao/sementes/s1", "avaliacao/sementes/s2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((main_run / "sementes.csv").open(encoding="utf-8")))
    assert [(r["system"], r["seeds"], r["mean"], r["min"], r["max"]) for r in rows] == [
        ("finetuned", "3", "0.3333", "0.25", "0.5"),
        ("rag+finetuned", "3", "0.8333", "0.75", "1.0"),
    ]
    # the run's own adapter is one more seed (its training seed is unknown here: no adapter on disk)
    assert rows[0]["values"] == "referência:0.25;1:0.25;2:0.5"
    table = (main_run / "tabela.md").read_text(encoding="utf-8")
    assert "| finetuned | 3 | 0.33 | 0.25 | 0.50 | referência: 0.25, 1: 0.25, 2: 0.50 |" in table
    # again: the section is replaced, not added twice
    assert run_cli("seeds", "avaliacao", "avaliacao/sementes/s1", cwd=tmp_path).returncode == 0
    table = (main_run / "tabela.md").read_text(encoding="utf-8")
    assert table.count("## Variação entre sementes do treino") == 1 and "| finetuned | 2 | 0.25 |" in table
    before = md5_tree(main_run)
    assert_one_error(run_cli("seeds", "avaliacao", "avaliacao/sementes/s9", cwd=tmp_path), "s9", "no such run folder")
    assert md5_tree(main_run) == before


def test_make_avaliacao_seeds_recipe():
    env = dict(os.environ, MAKEFLAGS="")
    out = subprocess.run(
        ["make", "-n", "-W", "results/avaliacao/tabela.md", "avaliacao", "SEEDS=1 2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "finetune.py --config configs/demo.yaml --set seed=2 --output-dir models/lora-demo-s2" in out
    assert (
        "--systems finetuned,rag+finetuned --adapter models/lora-demo-s1 --run-dir results/avaliacao/sementes/s1" in out
    )
    assert (
        "llamawiki.reference seeds results/avaliacao results/avaliacao/sementes/s1 results/avaliacao/sementes/s2" in out
    )
    assert "llamawiki.reference diff results/avaliacao" in out


def test_seeds_end_to_end_on_the_tiny_llama(tiny_llama, tmp_path, capsys):
    """Two seeds, two questions, the real training and compare.py (transformers backend) on the tiny random Llama."""
    import torch
    import yaml
    from test_training import _records, _write_jsonl, tiny_cfg

    import compare
    from llamawiki.training import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_file = _write_jsonl(tmp_path / "treino.jsonl", _records(1))
        adapters = []
        for seed in (1, 2):
            cfg = tiny_cfg(tiny_llama, train_file, None, tmp_path / f"lora-s{seed}", max_steps=2, save_steps=2)
            cfg["seed"] = seed
            adapters.append(train(cfg))
        questions = tmp_path / "perguntas.csv"
        with open(questions, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "pergunta", "resposta_referencia", "respostas_aceitas"])
            w.writerow(["1", "Qual é a capital do Brasil?", "A capital do Brasil é Brasília.", "Brasília"])
            w.writerow(["2", "Quem foi Tiradentes?", "Um líder da Inconfidência Mineira.", "Inconfidência"])
        models = {"tiny": {"backend": "transformers", "model": str(tiny_llama)}}
        models["tiny+lora"] = dict(models["tiny"], adapter=str(adapters[0]))
        config = {
            "seed": 3,
            "generation": {"max_new_tokens": 4},
            "models": models,
            "systems": {"base": {"model": "tiny"}, "finetuned": {"model": "tiny+lora"}},
        }
        (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        common = ["--config", str(tmp_path / "cfg.yaml"), "--questions", str(questions), "--no-progress"]
        assert compare.main([*common, "--run-dir", str(tmp_path / "avaliacao")]) == 0
        seed_dirs = []
        for seed, adapter in zip((1, 2), adapters, strict=True):
            seed_dirs.append(str(tmp_path / "avaliacao" / "sementes" / f"s{seed}"))
            args = [*common, "--systems", "finetuned", "--adapter", str(adapter), "--run-dir", seed_dirs[-1]]
            assert compare.main(args) == 0
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
    assert reference.main(["seeds", str(tmp_path / "avaliacao"), *seed_dirs]) == 0
    assert "finetuned        acerto over 2 seeds" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "avaliacao" / "sementes.csv").open(encoding="utf-8")))
    assert [r["system"] for r in rows] == ["finetuned"] and rows[0]["seeds"] == "2"
    # the main run's own adapter, labelled by the seed it was trained with (run_config.json)
    # the main run used seed 1's adapter: counted once
    assert rows[0]["values"].startswith("1:"), rows[0]["values"]
    assert float(rows[0]["min"]) <= float(rows[0]["mean"]) <= float(rows[0]["max"])
    assert "## Variação entre sementes do treino" in (tmp_path / "avaliacao" / "tabela.md").read_text(encoding="utf-8")
    target = reference.save_run(tmp_path / "avaliacao", tmp_path / "ref", root=tmp_path)
    assert (target / "sementes.csv").is_file() and not (target / "sementes").exists()
