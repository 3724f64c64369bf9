"""The embedded sample dump (data/ptwiki-amostra-pages-articles.xml.bz2) and the fixed question set.

These tests read the shipped files with the standard library only, so they check the data itself and not
the project's dump reader (tests/test_dump.py does that).
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
DUMP = DATA / "ptwiki-amostra-pages-articles.xml.bz2"
QUESTIONS = DATA / "perguntas.csv"
NS = "{http://www.mediawiki.org/xml/export-0.11/}"

DISAMBIG_RE = re.compile(r"\{\{\s*(desambiguação|desambig|dab)\s*\}\}", re.IGNORECASE)
REDIRECT_RE = re.compile(r"^\s*#(REDIRECIONAMENTO|REDIRECT)\s*\[\[([^\]|#]+)", re.IGNORECASE)


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_amostra", DATA / "make_amostra.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the class is created
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def generator():
    return _load_generator()


@pytest.fixture(scope="module")
def parsed():
    """(siteinfo element, list of page dicts) parsed from the shipped .bz2."""
    siteinfo = None
    pages = []
    with bz2.open(DUMP) as f:
        for _, el in ET.iterparse(f, events=("end",)):
            if el.tag == NS + "siteinfo":
                siteinfo = el
            elif el.tag == NS + "page":
                rev = el.find(NS + "revision")
                text_el = rev.find(NS + "text")
                redirect = el.find(NS + "redirect")
                pages.append(
                    {
                        "title": el.findtext(NS + "title"),
                        "ns": int(el.findtext(NS + "ns")),
                        "id": int(el.findtext(NS + "id")),
                        "redirect": redirect.get("title") if redirect is not None else None,
                        "rev_id": int(rev.findtext(NS + "id")),
                        "timestamp": rev.findtext(NS + "timestamp"),
                        "contributor": rev.find(NS + "contributor"),
                        "model": rev.findtext(NS + "model"),
                        "format": rev.findtext(NS + "format"),
                        "text": text_el.text or "",
                        "bytes": int(text_el.get("bytes")),
                        "text_sha1": text_el.get("sha1"),
                        "sha1": rev.findtext(NS + "sha1"),
                        "space": text_el.get("{http://www.w3.org/XML/1998/namespace}space"),
                    }
                )
    return siteinfo, pages


def _articles(pages):
    return [p for p in pages if p["ns"] == 0 and p["redirect"] is None and not DISAMBIG_RE.search(p["text"])]


def _questions():
    with open(QUESTIONS, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _prose_words(wikitext: str) -> int:
    """Rough count of the words a reader sees (templates, tables, refs, files, tags dropped)."""
    t = re.sub(r"<!--.*?-->", " ", wikitext, flags=re.S)
    t = re.sub(r"<ref[^>]*/>", " ", t)
    t = re.sub(r"<ref[^>]*>.*?</ref>", " ", t, flags=re.S)
    for _ in range(5):
        t = re.sub(r"\{\{[^{}]*\}\}", " ", t)
    t = re.sub(r"\{\|.*?\|\}", " ", t, flags=re.S)
    t = re.sub(r"\[\[(?:Ficheiro|Categoria):[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]\]", " ", t)
    t = re.sub(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]", r"\1", t)
    t = re.sub(r"<[^>]+>", " ", t)
    t = re.sub(r"^=+.*?=+\s*$", " ", t, flags=re.M)
    return len(re.findall(r"\w+", t))


# ---- the XML export ----


def test_root_is_mediawiki_export_0_11():
    with bz2.open(DUMP) as f:
        _, root = next(ET.iterparse(f, events=("start",)))
    assert root.tag == NS + "mediawiki"
    assert root.get("version") == "0.11"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "pt"


def test_siteinfo_is_ptwiki(parsed):
    siteinfo, _ = parsed
    assert siteinfo is not None
    assert siteinfo.findtext(NS + "sitename") == "Wikipédia"
    assert siteinfo.findtext(NS + "dbname") == "ptwiki"
    assert siteinfo.findtext(NS + "base").startswith("https://pt.wikipedia.org/wiki/")
    assert siteinfo.findtext(NS + "case") == "first-letter"
    assert siteinfo.findtext(NS + "generator").startswith("MediaWiki ")
    namespaces = {int(n.get("key")): (n.text or "") for n in siteinfo.find(NS + "namespaces").findall(NS + "namespace")}
    expected = {
        -2: "Média",
        -1: "Especial",
        0: "",
        1: "Discussão",
        2: "Usuário(a)",
        4: "Wikipédia",
        6: "Ficheiro",
        8: "MediaWiki",
        10: "Predefinição",
        12: "Ajuda",
        14: "Categoria",
        100: "Portal",
        102: "Livro",
        104: "Anexo",
        828: "Módulo",
    }
    for key, name in expected.items():
        assert namespaces.get(key) == name, key
    assert all(n.get("case") for n in siteinfo.find(NS + "namespaces"))


def test_pages_are_complete_revisions(parsed):
    _, pages = parsed
    assert len({p["id"] for p in pages}) == len(pages)
    assert len({p["title"] for p in pages}) == len(pages)
    assert len({p["rev_id"] for p in pages}) == len(pages)
    for p in pages:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["timestamp"]), p["title"]
        contributor = p["contributor"]
        assert contributor.findtext(NS + "ip") or (
            contributor.findtext(NS + "username") and contributor.findtext(NS + "id")
        ), p["title"]
        assert (p["model"], p["format"], p["space"]) == ("wikitext", "text/x-wiki", "preserve")


def test_bytes_and_sha1_match_the_text(parsed, generator):
    _, pages = parsed
    for p in pages:
        assert p["bytes"] == len(p["text"].encode("utf-8")), p["title"]
        assert p["sha1"] == p["text_sha1"] == generator.sha1_base36(p["text"]), p["title"]
        assert re.fullmatch(r"[0-9a-z]{31}", p["sha1"])


def test_sha1_base36_matches_mediawiki():
    # MediaWiki's rev_sha1 for the empty text (SHA-1 da39a3ee... in base 36).
    assert _load_generator().sha1_base36("") == "phoiac9h4m842xq45sp7s6u21eteeq1"


def test_text_is_escaped_and_round_trips(parsed):
    _, pages = parsed
    brasil = next(p for p in pages if p["title"] == "Brasil")
    raw = bz2.decompress(DUMP.read_bytes()).decode("utf-8")
    assert "&lt;ref name=&quot;censo2022&quot; /&gt;" in raw  # escaped as MediaWiki does
    assert '<ref name="censo2022" />' in brasil["text"]  # and parsed back


# ---- what the sample contains ----


def test_has_enough_articles_of_reasonable_length(parsed):
    _, pages = parsed
    articles = _articles(pages)
    assert 30 <= len(articles) <= 50
    for p in articles:
        assert 150 <= _prose_words(p["text"]) <= 600, (p["title"], _prose_words(p["text"]))


def test_redirects(parsed):
    _, pages = parsed
    titles = {p["title"]: p for p in pages}
    redirects = [p for p in pages if p["redirect"]]
    assert len(redirects) >= 5
    kinds = set()
    for p in redirects:
        m = REDIRECT_RE.match(p["text"])
        assert m, p["title"]
        kinds.add(m.group(1).upper())
        assert m.group(2).strip() == p["redirect"]
        target = titles.get(p["redirect"])
        assert target is not None and target["redirect"] is None, p["title"]
    assert kinds == {"REDIRECIONAMENTO", "REDIRECT"}
    assert titles["República Federativa do Brasil"]["redirect"] == "Brasil"
    # Pages that are not redirects carry no <redirect/> tag.
    assert not any(REDIRECT_RE.match(p["text"]) for p in pages if not p["redirect"])


def test_disambiguation_page(parsed):
    _, pages = parsed
    dab = [p for p in pages if p["ns"] == 0 and DISAMBIG_RE.search(p["text"])]
    assert {"Pedro I"} <= {p["title"] for p in dab}
    assert all(p["redirect"] is None for p in dab)


def test_pages_outside_namespace_0(parsed):
    _, pages = parsed
    by_ns = {}
    for p in pages:
        by_ns.setdefault(p["ns"], []).append(p["title"])
    for ns, title in [
        (10, "Predefinição:Info/País"),
        (14, "Categoria:História do Brasil"),
        (4, "Wikipédia:Sobre"),
        (6, "Ficheiro:Bandeira do Brasil.svg"),
        (100, "Portal:Brasil"),
        (12, "Ajuda:Edição"),
        (1, "Discussão:Brasil"),
    ]:
        assert title in by_ns.get(ns, []), title


def test_namespace_numbers_match_title_prefixes(parsed):
    """<ns> agrees with the title's prefix as named in this dump's own <siteinfo>, as MediaWiki assigns it."""
    siteinfo, pages = parsed
    prefixes = {n.text: int(n.get("key")) for n in siteinfo.find(NS + "namespaces") if n.text}
    for p in pages:
        prefix, sep, _ = p["title"].partition(":")
        assert p["ns"] == (prefixes.get(prefix, 0) if sep else 0), p["title"]
    assert len({p["ns"] for p in pages}) >= 8


def test_every_markup_kind_appears(parsed):
    _, pages = parsed
    text = "\n".join(p["text"] for p in _articles(pages))
    for needle in [
        "{{Info/País",
        "{{Info/Cidade do Brasil",
        "{{Info/Político",
        "{{Info/Monarca",
        "{{Info/Conflito militar",
        "{{Info/Evento histórico",
        "{{citar web|",
        "{{citar livro|",
        '<ref name="',
        "<ref name=cnv/>",
        "[[Ficheiro:",
        "|thumb|",
        '{| class="wikitable',
        "[[Categoria:",
        "<!--",
        "{{Referências}}",
        "<references/>",
        "{{Artigo principal|",
        "{{Ver também|",
        "{{nowrap|",
        "{{lang|en|",
        "&nbsp;",
        "<br />",
        "<small>",
        "'''",
        "=== ",
    ]:
        assert needle in text, needle
    # Named refs reused with the self-closing form somewhere.
    assert re.search(r'<ref name="([^"]+)">.*?<ref name="\1" />', text, flags=re.S)
    # A file caption holding a link (nested brackets).
    assert re.search(r"\[\[Ficheiro:[^\]]*\[\[[^\]]+\]\][^\]]*\]\]", text)


# ---- the fixed question set ----


def test_questions_file_format():
    raw = QUESTIONS.read_bytes()
    raw.decode("utf-8")  # UTF-8, no BOM needed
    rows = _questions()
    assert list(rows[0].keys()) == [
        "id",
        "pergunta",
        "resposta_referencia",
        "artigo",
        "respostas_aceitas",
        "minimo_fatos",
        "tipo",
        "respostas_erradas",
    ]
    assert all(r["respostas_aceitas"].strip() for r in rows)
    assert [int(r["id"]) for r in rows] == list(range(1, 20))
    for r in rows:
        assert r["pergunta"].endswith("?") and r["resposta_referencia"].strip() and r["artigo"].strip()
    assert 'Campanha "O Petróleo é Nosso"' in rows[13]["pergunta"]  # quotes survive CSV quoting


def test_questions_are_the_studys(shared_study):
    text = (shared_study / "resposta_rga.txt").read_bytes().decode("latin-1")
    study = [line[len("Pergunta:") :].strip() for line in text.splitlines() if line.startswith("Pergunta:")]
    assert [r["pergunta"] for r in _questions()] == study


def test_every_answer_article_exists(parsed):
    _, pages = parsed
    articles = {p["title"]: p for p in _articles(pages)}
    for r in _questions():
        assert r["artigo"] in articles, r["artigo"]


def test_reference_answers_agree_with_their_article(parsed):
    """Every number and date in a reference answer is written in the article it cites."""
    _, pages = parsed
    articles = {p["title"]: p["text"] for p in _articles(pages)}
    for r in _questions():
        text = articles[r["artigo"]]
        for number in re.findall(r"\d[\d.]*\d|\d", r["resposta_referencia"]):
            assert number in text, (r["id"], number)


@pytest.mark.parametrize(
    "artigo, facts",
    [
        ("Brasil", ["capital é Brasília", "26 estados e o Distrito Federal"]),
        ("Brasília", ["21 de abril de 1960", "Juscelino Kubitschek", "Lúcio Costa", "Oscar Niemeyer"]),
        ("Independência do Brasil", ["7 de setembro de 1822", "Ipiranga"]),
        ("Constituição brasileira de 1824", ["25 de março de 1824", "outorgada"]),
        ("Lei Áurea", ["13 de maio de 1888", "princesa Isabel"]),
        ("Revolução de 1930", ["Washington Luís", "24 de outubro de 1930"]),
        ("Revolução Constitucionalista de 1932", ["9 de julho de 1932", "1934"]),
        ("O petróleo é nosso", ["Lei n.º 2.004", "Petrobras", "1953"]),
        ("Ditadura militar no Brasil", ["Castelo Branco", "Costa e Silva", "Médici", "Geisel", "Figueiredo", "junta"]),
        ("Nova República", ["Tancredo Neves", "indireta", "Fernando Collor de Mello", "voto direto"]),
        ("Dilma Rousseff", ["primeira mulher presidente", "2011 a 2016"]),
        ("Deodoro da Fonseca", ["primeiro presidente"]),
        ("Pedro I do Brasil", ["primeiro imperador do Brasil"]),
    ],
)
def test_answer_facts_are_in_the_lead(parsed, artigo, facts):
    """The facts a question needs sit in the article's lead (before the first section), for retrieval."""
    _, pages = parsed
    text = next(p["text"] for p in pages if p["title"] == artigo)
    lead = text.split("\n==", 1)[0]
    lead = re.sub(r"\[\[(?:[^\]|]*\|)?([^\]]*)\]\]", r"\1", lead).replace("'''", "")
    for fact in facts:
        assert fact in lead, (artigo, fact)


def test_former_names_are_in_the_etymology_section(parsed):
    _, pages = parsed
    text = next(p["text"] for p in pages if p["title"] == "Brasil")
    section = text.split("== Etimologia ==", 1)[1].split("\n== ", 1)[0]
    for name in ["Pindorama", "Ilha de Vera Cruz", "Terra de Santa Cruz", "ser chamado de Brasil"]:
        assert name in section, name


# ---- the generator ----


def test_generator_reproduces_the_shipped_dump(generator):
    shipped = bz2.decompress(DUMP.read_bytes())
    rebuilt = generator.build_xml(generator.load_pages())
    assert rebuilt.encode("utf-8") == shipped, "run: python data/make_amostra.py"
    assert generator.build_bz2() == DUMP.read_bytes()  # the compressed file too (bz2 is deterministic)


def test_generator_check_flag(generator, tmp_path, capsys):
    assert generator.main(["--check"]) == 0
    stale = tmp_path / "old.xml.bz2"
    stale.write_bytes(bz2.compress(b"<mediawiki/>"))
    assert generator.main(["--check", "--output", str(stale)]) == 1


def test_generator_writes_and_rejects_bad_sources(generator, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "A.wiki").write_text(
        "title: Categoria:Teste\nid: 7\ntimestamp: 2024-01-01T00:00:00Z\ncontributor: X\ncontributor_id: 1\n"
        "comment: c\n---\nTexto com <ref>&</ref>\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.xml.bz2"
    assert generator.main(["--source", str(src), "--output", str(out)]) == 0
    xml = bz2.decompress(out.read_bytes()).decode("utf-8")
    assert "<ns>14</ns>" in xml and "Texto com &lt;ref&gt;&amp;&lt;/ref&gt;" in xml

    (src / "B.wiki").write_text("title: B\nid: 8\n---\ntexto\n", encoding="utf-8")
    assert generator.main(["--source", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "B.wiki" in err and "header lacks" in err and "Traceback" not in err
