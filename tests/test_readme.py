"""llamawiki.readme: the README's generated sections for the analyses compare.py writes beside its tables —
acerto by fact seen in training (exposicao.csv) and where the RAG answers went wrong (diagnostico_rag.csv) — on
small synthetic runs: with the files, with contexts n/d, and without the files (an older reference)."""

from __future__ import annotations

import re
from pathlib import Path

from test_reference import README_TEMPLATE, _write_csv, assert_one_error, make_run, run_cli

from llamawiki import readme, reference

ROOT = Path(__file__).resolve().parent.parent
EXPOSURE_COLUMNS = ["system", "status", "nivel", "grupo", "questions", "n", "k", "mean", "low", "high"]


def _share(n: int, k: int, low: float, high: float) -> dict:
    return {"questions": n, "n": n, "k": k, "mean": round(k / n, 4) if n else "", "low": low, "high": high}


def write_exposure(run: Path, seen=(15, 1, 0.0119, 0.2982), unseen=(4, 0, 0.0, 0.4899), status="ok") -> None:
    """exposicao.csv as report.write_analysis_csvs writes it: wording rows, then fact rows, per adapter system."""
    rows = []
    for system in ("finetuned", "rag+finetuned"):
        rows.append({"system": system, "status": status, "nivel": "pergunta", "grupo": "vista", **_share(3, 1, 0, 1)})
        facts = {
            "fato_mesmo_artigo": _share(*seen),
            "fato_outro_artigo": _share(0, 0, "", ""),
            "fato_visto": _share(*seen),
            "fato_nao_visto": _share(*unseen),
            "fato_nd": _share(0, 0, "", ""),
        }
        for group, share in facts.items():
            rows.append({"system": system, "status": status, "nivel": "fato", "grupo": group, **share})
    _write_csv(run / "exposicao.csv", [{c: r.get(c, "") for c in EXPOSURE_COLUMNS} for r in rows])


def _diagnosis_row(system: str, n: int, stages: dict, contexto_nd: int, with_article=(0, 0), without=(0, 0)) -> dict:
    row = {"system": system, "n_answers": n, "n": n}
    row.update({s: stages.get(s, 0) for s in ("certa", "artigo_ausente", "trecho_ausente", "geracao", "nd")})
    row["contexto_nd"] = contexto_nd
    for group, (gn, gk) in (
        ("acerto", (n, stages.get("certa", 0))),
        ("com_artigo", with_article),
        ("sem_artigo", without),
    ):
        row.update({f"{group}_n": gn, f"{group}_k": gk, f"{group}_mean": "", f"{group}_low": "", f"{group}_high": ""})
    for group in ("com_fato", "sem_fato"):
        row.update({f"{group}_n": 0, f"{group}_k": 0, f"{group}_mean": "", f"{group}_low": "", f"{group}_high": ""})
    return row


def write_diagnosis(run: Path, rows: list[dict]) -> None:
    _write_csv(run / "diagnostico_rag.csv", rows)


def reference_of(tmp_path: Path, demo: Path | None = None, avaliacao: Path | None = None) -> dict:
    """Save the runs given into tmp_path/ref (as make referencia does) and read that reference back."""
    for run in (demo, avaliacao):
        if run is not None:
            reference.save_run(run, tmp_path / "ref", root=tmp_path)
    return readme.load_reference(tmp_path / "ref")


def section(runs: dict, name: str) -> str:
    return readme.SECTIONS[name](runs)


# ---- acerto by fact seen in training ------------------------------------------------------------------------------


def test_save_keeps_the_analysis_csvs(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    write_exposure(run)
    write_diagnosis(run, [_diagnosis_row("rag", 4, {"certa": 2, "geracao": 2}, 0)])
    target = reference.save_run(run, tmp_path / "ref", root=tmp_path)
    assert (target / "exposicao.csv").read_bytes() == (run / "exposicao.csv").read_bytes()
    assert (target / "diagnostico_rag.csv").read_bytes() == (run / "diagnostico_rag.csv").read_bytes()


def test_fact_seen_table_and_reading_small_n(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    write_exposure(run)
    runs = reference_of(tmp_path, demo=run)
    table = section(runs, "fato-visto-demo")
    assert "| sistema | fato visto no treino | fato não visto no treino | fato n/d |" in table
    assert "| finetuned | 1/15 = 0.07 [0.01, 0.30] | 0/4 = 0.00 [0.00, 0.49] | 0 |" in table
    assert "| rag+finetuned | 1/15 = 0.07 [0.01, 0.30] |" in table
    reading = section(runs, "leitura-demo")
    line = next(x for x in reading.splitlines() if "aprendeu os fatos do treino" in x)
    assert (
        "O ajuste fino sozinho acertou 1 de 15 perguntas cujo fato está numa resposta do treino (0,07 [0,01, 0,30]) "
        "e 0 de 4 das outras (0,00 [0,00, 0,49])." in line
    )
    assert "a maioria dos fatos que viu no treino ele não reproduz" in line
    assert "dentro do acaso (os ICs se sobrepõem)" in line
    assert "só 4 perguntas têm o fato fora do treino: intervalo largo" in line  # the small-n caveat


def test_fact_seen_reading_large_n_separates_without_caveat(tmp_path):
    run = make_run(tmp_path / "results" / "avaliacao")
    write_exposure(run, seen=(120, 90, 0.67, 0.82), unseen=(92, 10, 0.06, 0.19))
    runs = reference_of(tmp_path, avaliacao=run)
    avaliacao = section(runs, "tabela-avaliacao")  # the avaliação reading is part of its table section
    line = next(x for x in avaliacao.splitlines() if "aprendeu os fatos do treino" in x)
    assert "acertou 90 de 120 perguntas" in line and "10 de 92 das outras" in line
    assert "reproduz a maioria dos fatos que viu no treino (o IC 95% fica acima de 0,5)" in line
    assert "acerta mais quando o fato estava no treino (os ICs não se sobrepõem)" in line
    assert "intervalo largo" not in line
    assert "| finetuned | 90/120 = 0.75 [0.67, 0.82] | 10/92 = 0.11 [0.06, 0.19] | 0 |" in section(
        runs, "fato-visto-avaliacao"
    )


def test_fact_seen_unknown_training_file(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    write_exposure(run, seen=(0, 0, "", ""), unseen=(0, 0, "", ""), status="unknown")
    runs = reference_of(tmp_path, demo=run)
    assert "| finetuned | – | – | 0 |" in section(runs, "fato-visto-demo")
    assert "não foi achado" in section(runs, "fato-visto-demo")
    assert "Desconhecido: a execução não achou o arquivo de treino" in section(runs, "leitura-demo")


# ---- where the RAG answers went wrong -----------------------------------------------------------------------------


def test_rag_errors_with_stored_contexts(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    write_diagnosis(
        run,
        [
            _diagnosis_row("rag", 19, {"certa": 5, "artigo_ausente": 6, "trecho_ausente": 5, "geracao": 3}, 0),
            _diagnosis_row("rag+finetuned", 19, {"certa": 13, "geracao": 4, "nd": 2}, 2),
        ],
    )
    text = section(reference_of(tmp_path, demo=run), "erros-rag-demo")
    assert "| rag | 19 | 5 | 6 | 5 | 3 | 0 |" in text
    assert "| rag+finetuned | 19 | 13 | 0 | 0 | 4 | 2 |" in text
    assert (
        "Dos 14 erros do `rag` (em 19 respostas): 6 de recuperação (o artigo não veio), 5 de trecho (o artigo veio, "
        "mas os trechos dados ao modelo não têm o fato) e 3 de geração (o fato estava no contexto)." in text
    )
    assert "Dos 6 erros do `rag+finetuned` (em 19 respostas): 0 de recuperação" in text
    assert "e 2 sem contexto guardado (n/d)." in text
    assert "não guardaram o contexto" not in text


def test_rag_errors_when_every_context_is_nd(tmp_path):
    """Answers cached before compare.py stored the chunks: no stage numbers invented, only what is known."""
    run = make_run(tmp_path / "results" / "demo")
    write_diagnosis(
        run,
        [
            _diagnosis_row("rag", 19, {"certa": 5, "nd": 14}, 19, with_article=(16, 5), without=(3, 0)),
            _diagnosis_row("rag+finetuned", 19, {"certa": 19}, 19, with_article=(19, 19)),
        ],
    )
    text = section(reference_of(tmp_path, demo=run), "erros-rag-demo")
    assert "| rag | 19 | 5 | n/d | n/d | n/d | 14 |" in text
    assert "| rag+finetuned | 19 | 19 | n/d | n/d | n/d | 0 |" in text
    assert "As respostas de `rag` e `rag+finetuned` nesta referência não guardaram o contexto" in text
    assert "`rag`: 14 erros em 19 respostas; em 11 o artigo da pergunta veio nas fontes, em 3 não veio." in text
    assert "`rag+finetuned` acertou as 19 respostas" in text
    assert "de recuperação" not in text and "de geração (" not in text


# ---- without the files: an older reference ------------------------------------------------------------------------


def test_a_reference_without_the_analysis_csvs_says_so(tmp_path):
    runs = reference_of(tmp_path, demo=make_run(tmp_path / "results" / "demo"))
    for name, csv in (("fato-visto-demo", "exposicao.csv"), ("erros-rag-demo", "diagnostico_rag.csv")):
        text = section(runs, name)
        assert text.startswith("*Não disponível nesta referência") and f"`{csv}`" in text, text
        assert not re.search(r"\d", text.replace("exposicao", "").replace("results/referencia/demo", ""))
    assert "aprendeu os fatos do treino? Não disponível nesta referência (sem `exposicao.csv`)." in section(
        runs, "leitura-demo"
    )
    for name in ("fato-visto-avaliacao", "erros-rag-avaliacao"):  # no avaliacao run at all
        assert section(runs, name) == "*A referência ainda não tem a execução `avaliacao` (ver acima).*\n"


def test_runs_without_adapter_or_rag_systems(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    (run / "metricas.csv").write_text(
        (run / "metricas.csv").read_text(encoding="utf-8").split("\n")[0] + "\n", encoding="utf-8"
    )
    runs = reference_of(tmp_path, demo=run)
    assert section(runs, "fato-visto-demo") == "*(esta execução não tem sistema com adaptador)*\n"
    assert section(runs, "erros-rag-demo") == "*(esta execução não tem sistema com RAG)*\n"
    assert "aprendeu os fatos" not in section(runs, "leitura-demo")


def test_a_bad_analysis_csv_is_one_line_and_writes_nothing(tmp_path):
    run = make_run(tmp_path / "results" / "referencia" / "demo")
    (run / "exposicao.csv").write_text("system,grupo\nfinetuned,fato_visto\n", encoding="utf-8")
    template = README_TEMPLATE.replace("Fim.", "<!-- gerado: fato-visto-demo -->\n<!-- fim: fato-visto-demo -->\nFim.")
    (tmp_path / "README.md").write_text(template, encoding="utf-8")
    assert_one_error(run_cli("readme", cwd=tmp_path), "exposicao.csv", "missing column")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == template


def test_cli_fills_the_new_sections_and_check_holds(tmp_path):
    run = make_run(tmp_path / "results" / "demo")
    write_exposure(run)
    write_diagnosis(run, [_diagnosis_row("rag", 4, {"certa": 2, "geracao": 2}, 0)])
    assert run_cli("save", "results/demo", cwd=tmp_path).returncode == 0
    extra = "".join(f"<!-- gerado: {n} -->\n<!-- fim: {n} -->\n\n" for n in ("fato-visto-demo", "erros-rag-demo"))
    (tmp_path / "README.md").write_text(README_TEMPLATE.replace("Fim.", extra + "Fim."), encoding="utf-8")
    proc = run_cli("readme", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fato-visto-demo" in proc.stdout and "erros-rag-demo" in proc.stdout
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "Dos 2 erros do `rag` (em 4 respostas)" in text
    assert run_cli("readme", "--check", cwd=tmp_path).returncode == 0


# ---- the real README ----------------------------------------------------------------------------------------------


def test_the_real_readme_has_every_section():
    names = set(re.findall(r"<!-- gerado: ([\w-]+) -->", (ROOT / "README.md").read_text(encoding="utf-8")))
    assert names == set(readme.SECTIONS)


def test_reference_still_exports_the_readme_names():
    """python -m llamawiki.reference readme and older imports: the names moved to readme.py are re-exported."""
    assert reference.update_readme is readme.update_readme and reference.SECTIONS is readme.SECTIONS
    assert reference.MARKER is readme.MARKER and reference.load_run is readme.load_run
