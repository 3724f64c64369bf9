"""The topic filter (llamawiki.categories): --category / --category-depth in build_dataset.py and rag.py index.

The sample dump's category tree (data/amostra/Categoria_*.wiki):

    História do Brasil ── Brasil Colônia ── Revoltas no Brasil Colônia ── Inconfidência Mineira
                       ├─ Império do Brasil ─┬ Imperadores do Brasil   (linked as [[Categoria:Império_do_Brasil]])
                       │                     ├ Abolicionismo no Brasil
                       │                     └ Independência do Brasil (linked as [[Category:Império do Brasil]])
                       ├─ Era Vargas ⇄ Estado Novo (Brasil)             (a cycle)
                       ├─ Nova República
                       └─ República Velha                               (linked as [[categoria:história_do_Brasil]])
"""

from __future__ import annotations

import bz2
import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from llamawiki import categories, dataset, dump, retrieval, wikitext
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent
ROOT_CATEGORY = "História do Brasil"

DEPTH_0 = {"Ditadura militar no Brasil", "Nova República"}
DEPTH_1 = DEPTH_0 | {
    "Bandeirantes",  # Brasil Colônia
    "Constituição brasileira de 1824",
    "Império do Brasil",  # Império do Brasil
    "Getúlio Vargas",
    "Revolução de 1930",
    "Revolução Constitucionalista de 1932",
    "O petróleo é nosso",
    "Estado Novo (Brasil)",  # Era Vargas
    "Constituição brasileira de 1988",  # Nova República
    "Proclamação da República do Brasil",  # República Velha
}
DEPTH_2 = DEPTH_1 | {
    "Pedro I do Brasil",
    "Pedro II do Brasil",  # Imperadores do Brasil
    "Isabel, Princesa Imperial do Brasil",
    "Lei Áurea",  # Abolicionismo no Brasil
    "Independência do Brasil",  # Independência do Brasil
    "Inconfidência Mineira",  # Revoltas no Brasil Colônia
}
DEPTH_3 = DEPTH_2 | {"Tiradentes"}  # Inconfidência Mineira
EXPECTED = {0: DEPTH_0, 1: DEPTH_1, 2: DEPTH_2, 3: DEPTH_3}
N_ARTICLES = 43


def run(script: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(ROOT / script), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in proc.stderr, proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def write_dump(path: Path, pages: list[tuple[str, int, str]]) -> Path:
    body = "".join(
        f"  <page>\n    <title>{escape(t)}</title>\n    <ns>{ns}</ns>\n    <id>{i}</id>\n    <revision>\n"
        f'      <id>{100 + i}</id>\n      <text xml:space="preserve">{escape(text)}</text>\n    </revision>\n'
        f"  </page>\n"
        for i, (t, ns, text) in enumerate(pages, 1)
    )
    xml = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="pt">\n'
        "  <siteinfo>\n    <sitename>Wikipédia</sitename>\n    <dbname>ptwiki</dbname>\n"
        '    <case>first-letter</case>\n    <namespaces>\n      <namespace key="0" case="first-letter" />\n'
        '      <namespace key="14" case="first-letter">Categoria</namespace>\n    </namespaces>\n'
        "  </siteinfo>\n" + body + "</mediawiki>\n"
    )
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    return path


def kept_titles(path: Path, category: str, depth: int, **kw) -> list[str]:
    keep = categories.category_filter(path, category, depth, quiet=True, **kw)
    return [a.title for a in dump.iter_articles(path, keep=keep)]


# ------------------------------------------------------------------------------------------------ names
@pytest.mark.parametrize(
    "raw",
    [
        "História do Brasil",
        "história do Brasil",
        "Categoria:História do Brasil",
        "categoria:história_do_Brasil",
        "Category:História do Brasil",
        ":Categoria: História  do_Brasil ",
    ],
)
def test_category_key_normalizes_like_mediawiki(raw):
    info = dump.read_siteinfo(ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2")
    assert categories.category_key(raw, info) == "História do Brasil"


def test_category_key_keeps_case_beyond_the_first_letter_and_on_case_sensitive_wikis():
    assert categories.category_key("história do brasil") == "História do brasil"
    assert categories.category_key("iPhone", dump.SiteInfo(case="case-sensitive")) == "iPhone"


def test_category_links_are_what_parse_article_collects(sample_dump):
    """One parser for [[Categoria:...]]: category_links(text) == parse_article(page).categories on every page."""
    info = dump.read_siteinfo(sample_dump)
    pages = list(dump.iter_pages(sample_dump, namespaces=None, skip_redirects=False, skip_disambiguation=False))
    assert sum(p.ns == 14 for p in pages) >= 10
    for page in pages:
        assert wikitext.category_links(page.text, info) == wikitext.parse_article(page, siteinfo=info).categories
    text = "[[:Categoria:A]] <!-- [[Categoria:B]] --> <nowiki>[[Categoria:C]]</nowiki> [[Categoria:D|chave]]"
    assert wikitext.category_links(text) == ["D"]


# ------------------------------------------------------------------------------------- the sample's tree
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_depths_keep_exactly_the_right_articles(sample_dump, depth):
    titles = kept_titles(sample_dump, ROOT_CATEGORY, depth)
    assert len(titles) == len(set(titles))
    assert set(titles) == EXPECTED[depth]
    assert not any(t.startswith("Categoria:") for t in titles)


def test_filter_reports_counts_and_what_it_selected(sample_dump, capsys):
    keep = categories.category_filter(sample_dump, "Categoria:história_do_Brasil", 2)
    assert (keep.category, keep.depth, keep.articles, keep.total) == (ROOT_CATEGORY, 2, len(DEPTH_2), N_ARTICLES)
    assert keep.categories["História do Brasil"] == 0 and keep.categories["República Velha"] == 1
    assert keep.categories["Imperadores do Brasil"] == 2 and "Inconfidência Mineira" not in keep.categories
    # Era Vargas ⇄ Estado Novo: reached once, at its shortest depth
    assert keep.categories["Era Vargas"] == 1 and keep.categories["Estado Novo (Brasil)"] == 2
    # a link inside a comment is not an edge: Independência is under Império only
    assert keep.categories["Independência do Brasil"] == 2
    d = keep.describe()
    assert d["name"] == ROOT_CATEGORY and d["depth"] == 2 and d["articles"] == len(DEPTH_2)
    assert d["categories_per_depth"] == [1, 5, 5] and len(d["categories"]) == 11
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"{sample_dump}: category 'História do Brasil' (depth 2, 11 categories): "
        f"kept {len(DEPTH_2)} of {N_ARTICLES} articles"
    ]
    again = pickle.loads(pickle.dumps(keep))  # runs in the dump reader's workers
    page = dump.Page(id=1, title="X", ns=0, text="Texto.\n[[Categoria:Imperadores_do_Brasil]]")
    assert again(page) and not again(dump.Page(id=2, title="Y", ns=0, text="[[Categoria:Samba]]"))


def test_a_category_without_a_page_is_found_from_its_articles(sample_dump):
    """Categoria:Revoluções no Brasil has no page in the sample, but two articles are in it."""
    assert set(kept_titles(sample_dump, "Revoluções no Brasil", 0)) == {
        "Revolução de 1930",
        "Revolução Constitucionalista de 1932",
    }
    assert set(kept_titles(sample_dump, "Revoluções no Brasil", 5)) == {
        "Revolução de 1930",
        "Revolução Constitucionalista de 1932",
    }


def test_unknown_category_names_the_closest(sample_dump):
    with pytest.raises(UserError) as e:
        categories.category_filter(sample_dump, "Historia do Brazil", 1)
    msg = str(e.value)
    assert msg.startswith(f"{sample_dump}: category 'Historia do Brazil' not found; closest: História do Brasil, ")
    assert len(msg.split("closest: ")[1].split(", ")) == 3 and "\n" not in msg
    # nothing alike: still the three nearest names, never an empty list
    with pytest.raises(UserError, match=r"category 'Zzz' not found; closest: [^,]+, [^,]+, [^,]+$"):
        categories.category_filter(sample_dump, "Zzz", 0)


@pytest.mark.parametrize(
    "category, depth, needle",
    [
        ("História do Brasil", -1, "--category-depth -1: must be an integer >= 0"),
        (None, 2, "--category-depth needs --category"),
        ("Categoria:", 0, "--category: empty category name"),
    ],
)
def test_bad_arguments(sample_dump, category, depth, needle):
    with pytest.raises(UserError, match=needle):
        categories.category_filter(sample_dump, category, depth)


def test_no_category_means_no_filter(sample_dump):
    assert categories.category_filter(sample_dump, None, 0) is None


# ----------------------------------------------------------------------------------------------- cycles
def test_cycles_do_not_hang(tmp_path):
    """A ⇄ B, B -> C -> A, a self-loop and the root inside the cycle: every category is visited once."""
    pages = [
        ("Categoria:Raiz", 14, "[[Categoria:C]]"),  # the root is itself under C (C is under the root)
        ("Categoria:A", 14, "[[Categoria:Raiz]] [[Categoria:B]] [[Categoria:A]]"),
        ("Categoria:B", 14, "[[Categoria:A]]"),
        ("Categoria:C", 14, "[[Categoria:B]]"),
        ("Um", 0, "Texto um. [[Categoria:Raiz]]"),
        ("Dois", 0, "Texto dois. [[Categoria:A]]"),
        ("Três", 0, "Texto três. [[Categoria:C]]"),
        ("Fora", 0, "Texto fora. [[Categoria:Outra]]"),
    ]
    path = write_dump(tmp_path / "ciclo.xml.bz2", pages)
    result: dict = {}

    def work() -> None:
        result["tree"] = categories.read_category_graph(path).subtree("Raiz", 10_000)
        result["titles"] = {d: set(kept_titles(path, "Raiz", d)) for d in (0, 1, 2, 50)}

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the category walk did not end"
    assert result["tree"] == {"Raiz": 0, "A": 1, "B": 2, "C": 3}
    assert result["titles"] == {0: {"Um"}, 1: {"Um", "Dois"}, 2: {"Um", "Dois"}, 50: {"Um", "Dois", "Três"}}


def test_truncated_dump_category_pass_uses_the_complete_pages(tmp_path):
    path = write_dump(
        tmp_path / "x.xml.bz2",
        [("Categoria:Raiz", 14, "x"), ("Um", 0, "Texto. [[Categoria:Raiz]]"), ("Dois", 0, "Texto. [[Categoria:Raiz]]")],
    )
    xml = bz2.decompress(path.read_bytes())
    cut = tmp_path / "cortado.xml"
    cut.write_bytes(xml[: xml.index(b"<title>Dois")])
    graph = categories.read_category_graph(cut)
    assert graph.truncated and graph.articles == 1 and graph.count_articles(["Raiz"]) == 1


# ---------------------------------------------------------------------------------- build_dataset.py
@pytest.fixture(scope="module")
def full_dataset(tmp_path_factory, sample_dump) -> list[dict]:
    out = tmp_path_factory.mktemp("full") / "dataset.jsonl"
    proc = run("build_dataset.py", sample_dump, "-o", out, "--no-progress", cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return read_lines(out)


def test_sample_without_category_has_every_article_and_no_category_page(full_dataset):
    arts = {r["article"] for r in full_dataset}
    assert len(arts) == N_ARTICLES and DEPTH_3 < arts
    assert not any(a.startswith("Categoria:") for a in arts)


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_build_dataset_script_keeps_the_category_tree(tmp_path, sample_dump, full_dataset, depth):
    out = tmp_path / "hist.jsonl"
    proc = run(
        "build_dataset.py",
        sample_dump,
        "-o",
        out,
        "--no-progress",
        "--category",
        ROOT_CATEGORY,
        "--category-depth",
        depth,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    records = read_lines(out)
    assert {r["article"] for r in records} == EXPECTED[depth]
    # the same records as without the filter, for those articles, in the same order
    assert records == [r for r in full_dataset if r["article"] in EXPECTED[depth]]
    n_cat = {0: 1, 1: 6, 2: 11}[depth]
    assert (
        f"category 'História do Brasil' (depth {depth}, {n_cat} categor{'y' if n_cat == 1 else 'ies'}): "
        f"kept {len(EXPECTED[depth])} of {N_ARTICLES} articles"
    ) in proc.stderr
    assert f"from {len(EXPECTED[depth])} articles" in proc.stdout


def test_build_dataset_workers_and_limit(tmp_path, sample_dump, full_dataset):
    out = tmp_path / "w.jsonl"
    dataset.build_dataset([sample_dump], out, workers=2, progress=False, category=ROOT_CATEGORY, category_depth=2)
    assert read_lines(out) == [r for r in full_dataset if r["article"] in DEPTH_2]
    result = dataset.build_dataset(
        [sample_dump], out, progress=False, category=ROOT_CATEGORY, category_depth=2, limit=3
    )
    arts = {r["article"] for r in read_lines(out)}
    assert result.pages == 3 and len(arts) == 3 and arts <= DEPTH_2


def test_build_dataset_unknown_category_is_one_line(tmp_path, sample_dump):
    out = tmp_path / "x.jsonl"
    out.write_text("antigo\n", encoding="utf-8")
    proc = run(
        "build_dataset.py", sample_dump, "-o", out, "--no-progress", "--category", "Império do Brazil", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert error_lines(proc) == [
        f"error: {sample_dump}: category 'Império do Brazil' not found; "
        "closest: Império do Brasil, " + proc.stderr.split("closest: Império do Brasil, ")[1].splitlines()[0]
    ]
    assert out.read_text(encoding="utf-8") == "antigo\n"
    proc = run(
        "build_dataset.py", sample_dump, "-o", out, "--category", ROOT_CATEGORY, "--category-depth", "-2", cwd=tmp_path
    )
    assert proc.returncode == 2 and error_lines(proc) == ["error: --category-depth -2: must be an integer >= 0"]


# -------------------------------------------------------------------------------------------- rag index
def test_build_index_uses_the_same_filter_and_records_it(tmp_path, sample_dump):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    out = tmp_path / "hist"
    m = retrieval.build_index(
        sample_dump,
        out,
        embeddings=DeterministicFakeEmbedding(size=16),
        progress=False,
        category="categoria:história_do_Brasil",
        category_depth=2,
    )
    titles = {d.metadata["title"] for d in retrieval.read_chunks(out)}
    assert titles == DEPTH_2 and m["counts"]["articles"] == len(DEPTH_2)
    cat = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["dump"]["category"]
    assert (cat["name"], cat["depth"], cat["articles"]) == (ROOT_CATEGORY, 2, len(DEPTH_2))
    assert "Imperadores do Brasil" in cat["categories"] and "Inconfidência Mineira" not in cat["categories"]


def test_rag_index_script_category(tmp_path, sample_dump):
    bad = run(
        "rag.py", "index", sample_dump, "--index-dir", tmp_path / "bad", "--category", "Era Vargass", cwd=tmp_path
    )
    assert bad.returncode == 2
    errors = error_lines(bad)
    assert errors == [f"error: {sample_dump}: category 'Era Vargass' not found; closest: Era Vargas"]
    assert not (tmp_path / "bad").exists()
    proc = run(
        "rag.py",
        "index",
        sample_dump,
        "--index-dir",
        tmp_path / "idx",
        "--category",
        ROOT_CATEGORY,
        "--category-depth",
        "0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"kept {len(DEPTH_0)} of {N_ARTICLES} articles" in proc.stderr
    assert f"{len(DEPTH_0)} articles" in proc.stdout
    assert {d.metadata["title"] for d in retrieval.read_chunks(tmp_path / "idx")} == DEPTH_0
    manifest_text = (tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(manifest_text)
    assert manifest["dump"]["category"]["depth"] == 0
    # the same command again: the index is up to date (same dump, settings, code), nothing is built or written
    args = ["rag.py", "index", sample_dump, "--index-dir", tmp_path / "idx", "--category", ROOT_CATEGORY]
    again = run(*args, "--category-depth", "0", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    chunks = manifest["counts"]["chunks"]
    assert again.stdout.startswith(f"{tmp_path / 'idx'}: up to date ({chunks} chunks"), again.stdout
    assert "kept" not in again.stderr  # not even the category filter ran
    assert (tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8") == manifest_text
    # another setting (or --rebuild) builds it again
    deeper = run(*args, "--category-depth", "1", cwd=tmp_path)
    assert deeper.returncode == 0, deeper.stderr
    assert "up to date" not in deeper.stdout and "articles" in deeper.stdout
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))["recipe"]["category_depth"] == 1
    forced = run(*args, "--category-depth", "1", "--rebuild", cwd=tmp_path)
    assert forced.returncode == 0 and "up to date" not in forced.stdout, forced.stdout
