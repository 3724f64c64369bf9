"""build_dataset.py and particiona.py end to end (subprocess): outputs, exit codes, one-line errors."""

from __future__ import annotations

import bz2
import json
import os
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

ROOT = Path(__file__).resolve().parent.parent

SITEINFO = """  <siteinfo>
    <sitename>Wikipédia</sitename>
    <dbname>ptwiki</dbname>
    <base>https://pt.wikipedia.org/wiki/Wikip%C3%A9dia:P%C3%A1gina_principal</base>
    <generator>MediaWiki 1.43.0</generator>
    <case>first-letter</case>
    <namespaces>
      <namespace key="0" case="first-letter" />
      <namespace key="6" case="first-letter">Ficheiro</namespace>
      <namespace key="10" case="first-letter">Predefinição</namespace>
      <namespace key="14" case="first-letter">Categoria</namespace>
    </namespaces>
  </siteinfo>
"""

PAGES = [
    (
        "Brasil",
        0,
        """{{Info/País
| nome_comum = Brasil
| capital = [[Brasília]]
| moeda = [[Real (moeda)|Real]]
| imagem_bandeira = Bandeira do Brasil.svg
}}
O '''Brasil''' é o maior país da [[América do Sul]].<ref>{{citar web|url=http://x|título=X}}</ref> D. Pedro I proclamou sua independência em 1822. Terceira frase.

== História ==
A história do Brasil começa com os povos indígenas. Os portugueses chegaram em 1500.

== Referências ==
{{Referências}}
[[Categoria:Brasil]]""",
    ),
    (
        "Tiradentes",
        0,
        """{{Info/Biografia
| nome = Tiradentes
| nascimento_data = 12 de novembro de 1746
| morte_data = 21 de abril de 1792
}}
'''Joaquim José da Silva Xavier''', o '''Tiradentes''' (1746 – 1792), foi um dentista e militar da [[Inconfidência Mineira]].

== Morte ==
Foi enforcado no Rio de Janeiro em 21 de abril de 1792.""",
    ),
    ("Predefinição:Info/País", 10, "{{{capital}}}"),
    ("Capital do Brasil", 0, "#REDIRECIONAMENTO [[Brasília]]"),
    (
        "Lei Áurea",
        0,
        """A '''Lei Áurea''' foi a lei que aboliu a escravidão no Brasil, em 13 de maio de 1888. Foi assinada pela princesa Isabel.

== Antecedentes ==
A campanha abolicionista cresceu nas cidades na década de 1880.""",
    ),
]


def page_xml(i: int, title: str, ns: int, text: str) -> str:
    redirect = '    <redirect title="Brasília" />\n' if text.startswith("#REDIRECIONAMENTO") else ""
    return (
        f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{i}</id>\n{redirect}"
        f"    <revision>\n      <id>{100 + i}</id>\n      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
        f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
        f"    </revision>\n  </page>\n"
    )


def dump_xml(pages=PAGES) -> str:
    head = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="pt">\n' + SITEINFO
    return head + "".join(page_xml(i, *p) for i, p in enumerate(pages, 1)) + "</mediawiki>\n"


def run(script: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture
def small_dump(tmp_path) -> Path:
    path = tmp_path / "mini-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(dump_xml().encode("utf-8")))
    return path


def test_build_dataset_from_a_dump(tmp_path, small_dump):
    proc = run("build_dataset.py", small_dump, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "json" / "dataset.jsonl"  # the default output, relative to the working directory
    records = read_lines(out)
    assert {r["article"] for r in records} == {"Brasil", "Tiradentes", "Lei Áurea"}  # no redirect, no template
    by_q = {r["input"]: r for r in records}
    assert by_q["Qual é a capital do Brasil?"]["output"] == "A capital do Brasil é Brasília."
    assert by_q["Quem foi Tiradentes?"]["source"] == "lead"
    assert by_q["O que foi a Lei Áurea?"]["output"].startswith("A Lei Áurea foi a lei que aboliu a escravidão")
    assert by_q["Qual é a história do Brasil?"]["source"] == "section"
    assert not any("{{" in r["text"] or "[[" in r["text"] or "<ref" in r["text"] for r in records)
    counts = {s: sum(r["source"] == s for r in records) for s in ("infobox", "lead", "section")}
    assert f"{len(records)} examples from 3 articles" in proc.stdout
    assert all(f"{s} {n}" in proc.stdout for s, n in counts.items())


def test_modes_raw_and_limit(tmp_path, small_dump):
    out = tmp_path / "raw.jsonl"
    proc = run("build_dataset.py", small_dump, "--modes", "raw", "--output", out, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    raw = read_lines(out)
    from llamawiki import dump
    from llamawiki.dataset import GenerationOptions

    articles = {a.title: a.plain_text() for a in dump.iter_articles(small_dump)}
    long_enough = [t for t, text in articles.items() if len(text) >= GenerationOptions.min_raw_chars]
    assert 0 < len(long_enough) < len(articles)
    assert [r["article"] for r in raw] == long_enough
    assert all(set(r) == {"text", "article", "source"} and r["text"] == articles[r["article"]] for r in raw)
    proc = run(
        "build_dataset.py",
        small_dump,
        "--modes",
        "lead",
        "--limit",
        "1",
        "--output",
        out,
        "--no-progress",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert [(r["article"], r["source"]) for r in read_lines(out)] == [("Brasil", "lead")]
    proc = run("build_dataset.py", small_dump, "--modes", "lead,wrong", "--output", out, cwd=tmp_path)
    assert_one_line_error(proc, "--modes", "wrong")


def test_workers_give_the_same_output(tmp_path, small_dump):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run("build_dataset.py", small_dump, "-o", one, "--no-progress", cwd=tmp_path).returncode == 0
    proc = run("build_dataset.py", small_dump, "-o", two, "--workers", "2", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert one.read_text(encoding="utf-8") == two.read_text(encoding="utf-8")


def test_truncated_dump_fails_and_keeps_the_previous_output_unless_allowed(tmp_path):
    full = dump_xml()
    cut = full[: full.index("<title>Lei Áurea")]  # cut inside the last page
    dump = tmp_path / "cortado.xml"
    dump.write_text(cut, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    out.write_text("old\n", encoding="utf-8")
    proc = run("build_dataset.py", dump, "-o", out, "--no-progress", cwd=tmp_path)
    assert_one_line_error(proc, str(dump))
    assert "left unchanged" in proc.stderr and "--allow-truncated" in proc.stderr
    assert out.read_text(encoding="utf-8") == "old\n"  # a failed run replaces nothing

    proc = run("build_dataset.py", dump, "-o", out, "--allow-truncated", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(dump) in warnings[0]
    assert {r["article"] for r in read_lines(out)} == {"Brasil", "Tiradentes"}


def test_truncated_bz2_is_one_line_error(tmp_path):
    data = bz2.compress(dump_xml().encode("utf-8"))
    dump = tmp_path / "cortado.xml.bz2"
    dump.write_bytes(data[: len(data) // 2])
    proc = run("build_dataset.py", dump, "-o", tmp_path / "o.jsonl", "--no-progress", cwd=tmp_path)
    assert_one_line_error(proc, str(dump))


@pytest.mark.parametrize("case", ["missing", "empty", "not-a-dump", "bad-csv", "second-input-bad"])
def test_bad_input_leaves_the_previous_output_untouched(tmp_path, small_dump, case):
    out = tmp_path / "dataset.jsonl"
    out.write_text('{"old": true}\n', encoding="utf-8")
    before = out.read_bytes()
    inputs: list[Path]
    if case == "missing":
        inputs, needle = [tmp_path / "nao-existe.xml.bz2"], "file not found"
    elif case == "empty":
        inputs = [tmp_path / "vazio.xml"]
        inputs[0].write_bytes(b"")
        needle = "empty"
    elif case == "not-a-dump":
        inputs = [tmp_path / "outro.xml"]
        inputs[0].write_text("<html><body>oi</body></html>", encoding="utf-8")
        needle = "not a MediaWiki dump"
    elif case == "bad-csv":
        inputs = [tmp_path / "ruim.csv"]
        inputs[0].write_bytes("Pergunta?;Resposta.\r\nsem separador\r\n".encode("latin-1"))
        needle = "line 2"
    else:  # a good dump first, then a bad CSV: nothing is written
        bad = tmp_path / "ruim.csv"
        bad.write_bytes("Pergunta?;Resposta.\r\nPergunta dois?;\r\n".encode("latin-1"))
        inputs, needle = [small_dump, bad], "line 2"
    proc = run("build_dataset.py", *inputs, "-o", out, "--no-progress", cwd=tmp_path)
    assert_one_line_error(proc, str(inputs[-1]), needle)
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dataset.jsonl.")]  # no temp file left


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_import_the_studys_files_then_split(tmp_path, which, request):
    folder = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    n = 20 if which == "fixture" else 269
    out = tmp_path / "estudo.jsonl"
    proc = run("build_dataset.py", folder / "dados.csv", folder / "saida.json", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{2 * n} examples (csv {n}, json {n})" in proc.stdout
    records = read_lines(out)
    assert records[0]["input"] == (
        "Em que ano os portugueses chegaram ao litoral da Bahia?"
        if which == "fixture"
        else "Quando ocorreu a chegada dos primeiros humanos na América do Sul?"
    )

    train, test = tmp_path / "treino.jsonl", tmp_path / "teste.jsonl"
    proc = run("particiona.py", out, "--train", train, "--test", test, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tr, te = read_lines(train), read_lines(test)
    assert len(tr) + len(te) == 2 * n and 0.08 < len(te) / (2 * n) < 0.12
    # no article: grouped by normalized question, so no question is on both sides
    from llamawiki.text import normalize

    assert {normalize(r["input"]) for r in tr}.isdisjoint({normalize(r["input"]) for r in te})
    assert "test questions identical to a train question (normalized): 0 " in proc.stdout


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_particiona_on_the_studys_json_list_and_determinism(tmp_path, which, request):
    folder = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    args = [folder / "saida.json", "--train", tmp_path / "a.jsonl", "--test", tmp_path / "b.jsonl"]
    first = run("particiona.py", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    test_a = (tmp_path / "b.jsonl").read_text(encoding="utf-8")
    assert len(test_a.splitlines()) == (2 if which == "fixture" else 27)  # 10% of 20 / of 269, like the study
    again = run("particiona.py", *args, cwd=tmp_path)
    assert (tmp_path / "b.jsonl").read_text(encoding="utf-8") == test_a
    assert again.stdout == first.stdout
    other = run("particiona.py", *args, "--seed", "7", cwd=tmp_path)
    assert other.returncode == 0 and (tmp_path / "b.jsonl").read_text(encoding="utf-8") != test_a


def test_particiona_bad_input(tmp_path):
    train = tmp_path / "treino.jsonl"
    train.write_text("keep\n", encoding="utf-8")
    proc = run("particiona.py", tmp_path / "nada.jsonl", "--train", train, "--test", tmp_path / "t.jsonl", cwd=tmp_path)
    assert_one_line_error(proc, "nada.jsonl", "file not found")
    bad = tmp_path / "ruim.jsonl"
    bad.write_text('{"input": "a?", "output": "b."}\n{"input": "c?"\n', encoding="utf-8")
    proc = run("particiona.py", bad, "--train", train, "--test", tmp_path / "t.jsonl", cwd=tmp_path)
    assert_one_line_error(proc, "ruim.jsonl", "line 2")
    assert train.read_text(encoding="utf-8") == "keep\n"


def test_sample_dump_end_to_end(tmp_path, sample_dump):
    out = tmp_path / "dataset.jsonl"
    proc = run("build_dataset.py", sample_dump, "-o", out, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    records = read_lines(out)
    assert {r["source"] for r in records} == {"infobox", "lead", "section"}
    by_q = {r["input"]: r["output"] for r in records}
    assert "Brasília" in by_q["Qual é a capital do Brasil?"]
    assert not any(mark in r["output"] for r in records for mark in ("{{", "}}", "[[", "]]", "<ref", "{|"))
    train, test = tmp_path / "treino.jsonl", tmp_path / "teste.jsonl"
    proc = run("particiona.py", out, "--train", train, "--test", test, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tr, te = read_lines(train), read_lines(test)
    assert {r["article"] for r in tr}.isdisjoint({r["article"] for r in te})
    assert "articles on both sides: 0" in proc.stdout


def test_workers_end_without_a_stack(sample_dump, tmp_path):
    # the pool ends its workers with SIGTERM; they inherit @cli's SIGTERM handler, which must let them go quietly
    # (the rehearsal of README's full-scale path found workers printing a Terminated traceback: a race, seen in
    # about 1 run of 3 with 16 workers on a multistream dump, so the run is repeated)
    from test_ensaio import _multistream

    dump = tmp_path / "ptwiki-x-multistream.xml.bz2"
    _multistream(sample_dump, dump, tmp_path / "ptwiki-x-multistream-index.txt.bz2")
    out = tmp_path / "d.jsonl"
    for _ in range(4):
        r = subprocess.run(
            [sys.executable, str(ROOT / "build_dataset.py"), str(dump), "--workers", "16", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "Terminated" not in r.stderr, r.stderr[-2000:]
