"""The dump reader: formats, filters, namespaces from <siteinfo>, and every kind of damaged input."""

from __future__ import annotations

import bz2
import gzip
import re
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from llamawiki import dump
from llamawiki.dump import DumpError, DumpStats, DumpTruncated, iter_articles, iter_pages, read_siteinfo
from llamawiki.fileio import UserError

PT_NAMESPACES = {
    -2: "Multimédia", -1: "Especial", 0: "", 1: "Discussão", 2: "Usuário(a)", 4: "Wikipédia", 6: "Ficheiro",
    8: "MediaWiki", 10: "Predefinição", 12: "Ajuda", 14: "Categoria", 100: "Portal", 104: "Livro",
}


PT_BASE = "https://pt.wikipedia.org/wiki/Wikip%C3%A9dia:P%C3%A1gina_principal"


def make_dump(pages, namespaces=PT_NAMESPACES, dbname="ptwiki", base=PT_BASE, with_ns=True, schema="0.10") -> str:
    """A MediaWiki export as a string. pages: (title, ns, text, redirect_target_or_None) tuples."""
    ns_xml = "\n".join(
        f'      <namespace key="{k}" case="first-letter"' + (f">{escape(v)}</namespace>" if v else " />")
        for k, v in namespaces.items()
    )
    out = [
        f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-{schema}/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'version="{schema}" xml:lang="pt">',
        "  <siteinfo>", "    <sitename>Wikipédia</sitename>", f"    <dbname>{dbname}</dbname>",
        f"    <base>{escape(base)}</base>", "    <generator>MediaWiki 1.42.0-wmf.20</generator>",
        "    <case>first-letter</case>", "    <namespaces>", ns_xml, "    </namespaces>", "  </siteinfo>",
    ]
    for i, (title, ns, text, redirect) in enumerate(pages, 1):
        out += ["  <page>", f"    <title>{escape(title)}</title>"]
        if with_ns:
            out.append(f"    <ns>{ns}</ns>")
        out.append(f"    <id>{i}</id>")
        if redirect:
            out.append(f"    <redirect title={quoteattr(redirect)} />")
        out += [
            "    <revision>", f"      <id>{1000 + i}</id>", f"      <parentid>{900 + i}</parentid>",
            "      <timestamp>2024-03-01T12:00:00Z</timestamp>",
            "      <contributor><username>Editor</username><id>5</id></contributor>",
            "      <model>wikitext</model>", "      <format>text/x-wiki</format>",
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>',
            "      <sha1>abc</sha1>", "    </revision>", "  </page>",
        ]
    out.append("</mediawiki>\n")
    return "\n".join(out)


PAGES = [
    ("Brasil", 0, "{{Info/País|capital=[[Brasília]]}}\nO '''Brasil''' é um país da [[América do Sul]].", None),
    ("Brazil", 0, "#REDIRECIONAMENTO [[Brasil]]", "Brasil"),
    ("Pindorama", 0, "#redirecionamento [[Brasil#Etimologia]]", None),  # magic word only, no tag
    ("Terra Brasilis", 0, "#REDIRECT [[Brasil]]", None),
    ("Vargas", 0, "'''Vargas''' pode referir-se a:\n* [[Getúlio Vargas]]\n{{Desambiguação}}", None),
    ("Mercúrio (desambiguação)", 0, "Mercúrio pode ser:\n* [[Mercúrio (planeta)]]", None),
    ("Dab", 0, "Lista.\n{{dab}}", None),
    ("Categoria:Brasil", 14, "Categoria sobre o Brasil.", None),
    ("Portal:Brasil", 100, "Portal do Brasil.", None),
    ("Tiradentes", 0, "'''Tiradentes''' foi um dentista.\n== Vida ==\nNasceu em 1746.", None),
    ("Lei Áurea", 0, "A '''Lei Áurea''' aboliu a escravidão em 1888.", None),
]


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


@pytest.fixture
def xml_dump(tmp_path) -> Path:
    return write(tmp_path, "ptwiki-test.xml", make_dump(PAGES))


def titles(path, **kw) -> list[str]:
    return [p.title for p in iter_pages(path, **kw)]


# -------------------------------------------------------------------------------------------- formats
def test_reads_plain_xml(xml_dump):
    assert titles(xml_dump) == ["Brasil", "Tiradentes", "Lei Áurea"]
    first = next(iter_pages(xml_dump))
    assert (first.id, first.ns, first.revision_id, first.redirect) == (1, 0, 1001, None)
    assert first.text.startswith("{{Info/País|capital=[[Brasília]]}}")


def test_reads_bz2(tmp_path):
    p = write(tmp_path, "d.xml.bz2", bz2.compress(make_dump(PAGES).encode()))
    assert titles(p) == ["Brasil", "Tiradentes", "Lei Áurea"]


def test_reads_multistream_bz2(tmp_path):
    # a multistream dump is several bzip2 streams back to back (header, 100 pages each, footer)
    xml = make_dump(PAGES).encode()
    cuts = [0, xml.index(b"  <page>"), xml.index(b"  <page>", xml.index(b"<title>Vargas")), len(xml) - 14, len(xml)]
    data = b"".join(bz2.compress(xml[a:b]) for a, b in zip(cuts, cuts[1:]))
    assert data.count(b"BZh9") == 4
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    assert titles(p) == ["Brasil", "Tiradentes", "Lei Áurea"]


def test_reads_gzip_and_compression_detected_by_content(tmp_path):
    p = write(tmp_path, "d.xml.gz", gzip.compress(make_dump(PAGES).encode()))
    assert titles(p) == ["Brasil", "Tiradentes", "Lei Áurea"]
    p = write(tmp_path, "d.xml", bz2.compress(make_dump(PAGES).encode()))  # bz2 without the extension
    assert titles(p) == ["Brasil", "Tiradentes", "Lei Áurea"]


def test_memory_is_bounded_elements_freed(tmp_path):
    """Pages are freed as they are read: the parser's tree does not grow with the dump."""
    many = [(f"Artigo {i}", 0, "Texto " * 100, None) for i in range(1500)]
    p = write(tmp_path, "big.xml", make_dump(many))
    import tracemalloc

    tracemalloc.start()
    n = 0
    for _ in iter_pages(p):
        n += 1
        if n == 100:
            early = tracemalloc.get_traced_memory()[0]
    late = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert n == 1500
    assert late - early < 1_000_000, (early, late)


# ------------------------------------------------------------------------------------------ filtering
def test_redirects_tag_and_magic_word_in_both_languages(xml_dump):
    got = titles(xml_dump, skip_disambiguation=False)
    for t in ("Brazil", "Pindorama", "Terra Brasilis"):
        assert t not in got
    everything = {p.title: p for p in iter_pages(xml_dump, skip_redirects=False, skip_disambiguation=False)}
    assert everything["Brazil"].redirect == "Brasil"
    assert everything["Pindorama"].redirect is None  # no tag: only the text says it
    assert dump.is_redirect_text(everything["Pindorama"].text) == "Brasil"
    assert dump.is_redirect_text("  #Redirect: [[Foo|bar]]") == "Foo"
    assert dump.is_redirect_text("O #REDIRECT no meio não conta") is None


def test_disambiguation_pages_skipped(xml_dump):
    got = titles(xml_dump, skip_redirects=False)
    assert "Vargas" not in got and "Mercúrio (desambiguação)" not in got and "Dab" not in got
    got = titles(xml_dump, skip_disambiguation=False)
    assert {"Vargas", "Mercúrio (desambiguação)", "Dab"} <= set(got)
    assert dump.is_disambiguation("X", "{{disambiguation|geo}}")
    assert not dump.is_disambiguation("X", "{{Desambiguação-nota|Y}} texto")  # a hatnote, not a dab page


def test_namespaces_filter_by_number_name_or_all(xml_dump):
    assert titles(xml_dump, namespaces=(14,)) == ["Categoria:Brasil"]
    assert titles(xml_dump, namespaces=["Portal", "Categoria"]) == ["Categoria:Brasil", "Portal:Brasil"]
    assert len(titles(xml_dump, namespaces=None, skip_redirects=False, skip_disambiguation=False)) == len(PAGES)
    with pytest.raises(DumpError, match="unknown namespace"):
        titles(xml_dump, namespaces=["Nenhum"])


def test_namespaces_come_from_siteinfo_not_hard_coded(tmp_path):
    # an old export without <ns>: the namespace must come from the title prefix and <siteinfo>'s table,
    # here a made-up wiki whose namespace 100 is "Anexo" and 14 is "Kategorie"
    custom = {0: "", 14: "Kategorie", 100: "Anexo", 104: "Receita"}
    pages = [("Anexo:Lista", 0, "lista", None), ("Kategorie:X", 0, "cat", None), ("Receita:Bolo", 0, "bolo", None),
             ("Categoria:Y", 0, "não é namespace aqui", None), ("Artigo", 0, "texto", None)]
    p = write(tmp_path, "custom.xml", make_dump(pages, namespaces=custom, dbname="xxwiki", with_ns=False))
    info = read_siteinfo(p)
    assert info.namespaces == custom
    assert info.dbname == "xxwiki" and info.lang == "xx"
    got = {pg.title: pg.ns for pg in iter_pages(p, namespaces=None)}
    assert got == {"Anexo:Lista": 100, "Kategorie:X": 14, "Receita:Bolo": 104, "Categoria:Y": 0, "Artigo": 0}
    assert titles(p) == ["Categoria:Y", "Artigo"]
    assert titles(p, namespaces=["Receita"]) == ["Receita:Bolo"]


def test_read_siteinfo(xml_dump):
    info = read_siteinfo(xml_dump)
    assert info.sitename == "Wikipédia" and info.dbname == "ptwiki"
    assert info.base_url == "https://pt.wikipedia.org/wiki/"
    assert info.namespaces[10] == "Predefinição" and info.namespaces[100] == "Portal"
    assert info.namespace_of("Predefinição:Info/País") == 10
    assert info.namespace_of("Revolução de 1930: o início") == 0


def test_stats_and_progress(xml_dump):
    stats = DumpStats()
    seen = []
    list(iter_pages(xml_dump, stats=stats, progress=lambda s: seen.append(s.pages)))
    assert stats.pages == len(PAGES) and stats.yielded == 3
    assert stats.redirects == 3 and stats.disambiguations == 3 and stats.other_namespaces == 2
    assert stats.bytes_read == stats.total_bytes == xml_dump.stat().st_size
    assert seen and seen[-1] == len(PAGES)
    assert not stats.truncated
    assert titles(xml_dump, limit=2) == ["Brasil", "Tiradentes"]


def test_iter_articles_cleans(xml_dump):
    arts = list(iter_articles(xml_dump))
    assert [a.title for a in arts] == ["Brasil", "Tiradentes", "Lei Áurea"]
    assert arts[0].lead == "O Brasil é um país da América do Sul."
    assert arts[0].infobox == {"capital": "Brasília"}
    assert arts[0].url == "https://pt.wikipedia.org/wiki/Brasil"
    assert arts[1].sections[0].title == "Vida"


def test_iter_articles_url_base_from_siteinfo(tmp_path):
    p = write(tmp_path, "es.xml", make_dump([("España", 0, "Texto.", None)], dbname="eswiki",
                                            base="https://es.wikipedia.org/wiki/Wikipedia:Portada"))
    assert next(iter_articles(p)).url == "https://es.wikipedia.org/wiki/España"


def _upper(page):
    return page.title.upper()


@pytest.mark.parametrize("workers", [1, 2])
def test_parallel_matches_sequential_and_keeps_order(tmp_path, workers):
    many = [(f"Artigo {i}", 0, f"'''Artigo {i}''' é o número [[{i}]].", None) for i in range(120)]
    p = write(tmp_path, "many.xml.bz2", bz2.compress(make_dump(many).encode()))
    seq = [a.plain_text() for a in iter_articles(p)]
    par = [a.plain_text() for a in iter_articles(p, workers=workers)]
    assert par == seq and len(seq) == 120 and seq[5] == "Artigo 5 é o número 5."
    assert list(dump.map_pages(p, _upper, workers=workers))[:2] == ["ARTIGO 0", "ARTIGO 1"]
    # stopping early (limit) shuts the pool down without hanging on the bounded feeding thread
    assert list(dump.map_pages(p, _upper, workers=workers, limit=3, batch_bytes=300)) == [
        "ARTIGO 0", "ARTIGO 1", "ARTIGO 2"]


def test_parallel_feeding_is_bounded(tmp_path, monkeypatch):
    """Pool.imap would read the whole dump ahead of the workers: at most a few batches are in flight."""
    many = [(f"Artigo {i}", 0, "Texto. " * 20, None) for i in range(400)]
    p = write(tmp_path, "many.xml", make_dump(many))
    fed = []
    real = dump._Reader.batches

    def counting(self):
        for b in real(self):
            fed.append(b.index)
            yield b

    monkeypatch.setattr(dump._Reader, "batches", counting)
    it = dump.map_pages(p, _upper, workers=2, batch_bytes=200)  # one page per batch
    assert next(it) == "ARTIGO 0"
    import time

    time.sleep(0.5)  # give the feeding thread every chance to run ahead
    assert len(fed) <= 3 * 2 + 2, len(fed)
    assert len(list(it)) == 399


def test_parallel_raises_after_pages_before_damage(tmp_path):
    many = [(f"Artigo {i}", 0, "Texto.", None) for i in range(50)]
    xml = make_dump(many).encode()
    cut = xml.index(b"<title>Artigo 40<")
    p = write(tmp_path, "cut.xml", xml[:cut])
    got = []
    with pytest.raises(DumpTruncated):
        for a in iter_articles(p, workers=2):
            got.append(a.title)
    assert got == [f"Artigo {i}" for i in range(40)]


# ---------------------------------------------------------------------------------------- bad input
def consume(path, **kw):
    got = []
    with pytest.raises(DumpError) as info:
        for page in iter_pages(path, **kw):
            got.append(page.title)
    return got, info.value


def test_missing_file(tmp_path):
    got, err = consume(tmp_path / "nao-existe.xml.bz2")
    assert isinstance(err, UserError) and str(err) == f"{tmp_path / 'nao-existe.xml.bz2'}: file not found"


def test_empty_file(tmp_path):
    _, err = consume(write(tmp_path, "vazio.xml", b""))
    assert "vazio.xml: file is empty" in str(err)
    _, err = consume(write(tmp_path, "vazio.xml.bz2", bz2.compress(b"")))
    assert "vazio.xml.bz2: file is empty" in str(err)


def test_not_bz2_though_named_bz2(tmp_path):
    _, err = consume(write(tmp_path, "falso.xml.bz2", make_dump(PAGES)))
    assert "falso.xml.bz2" in str(err) and "not bzip2" in str(err)


def test_corrupt_bz2_data(tmp_path):
    data = bytearray(bz2.compress(make_dump(PAGES).encode()))
    data[100:140] = b"\x00" * 40
    _, err = consume(write(tmp_path, "corrompido.xml.bz2", bytes(data)))
    assert "corrompido.xml.bz2" in str(err) and "Invalid data stream" in str(err)


def test_non_dump_xml(tmp_path):
    _, err = consume(write(tmp_path, "feed.xml", '<?xml version="1.0"?>\n<rss><channel/></rss>'))
    assert "feed.xml: not a MediaWiki dump (root element <rss>" in str(err)
    _, err = consume(write(tmp_path, "pagina.xml", "<!DOCTYPE html><html><head><meta charset=utf-8></head>"))
    assert "root element <html>" in str(err)
    _, err = consume(write(tmp_path, "notas.xml", "apenas texto, nada de XML"))
    assert "notas.xml: not an XML file" in str(err)


def test_xml_cut_mid_page(tmp_path):
    xml = make_dump(PAGES)
    cut = xml.index("Nasceu em 1746")  # inside Tiradentes' text
    p = write(tmp_path, "cortado.xml", xml[:cut])
    got, err = consume(p)
    assert got == ["Brasil"]  # every complete page before the damage was yielded
    assert isinstance(err, DumpTruncated)
    assert err.pages_read == 9
    msg = str(err)
    assert msg.startswith(f"{p}: XML ends in the middle")
    assert "after 9 complete page(s)" in msg and "'Portal:Brasil'" in msg and "line" in msg
    assert "\n" not in msg


def test_truncated_bz2(tmp_path):
    # many pages over several bzip2 blocks; the cut removes the last block's end
    many = [(f"Artigo {i}", 0, f"Texto {i} " + "x" * 600 + f" {i * 7919 % 1000}", None) for i in range(1500)]
    data = bz2.compress(make_dump(many).encode(), compresslevel=1)
    p = write(tmp_path, "cortado.xml.bz2", data[: len(data) * 2 // 3])
    got, err = consume(p)
    assert isinstance(err, DumpTruncated)
    assert "Compressed file ended before the end-of-stream marker" in str(err)
    assert "cortado.xml.bz2" in str(err) and "compressed bytes" in str(err)
    assert len(got) > 300 and got == [f"Artigo {i}" for i in range(len(got))]
    assert err.pages_read == len(got)
    assert f"last complete page 'Artigo {len(got) - 1}'" in str(err)


def test_allow_truncated_ends_quietly_and_records_it(tmp_path, caplog):
    xml = make_dump(PAGES)
    p = write(tmp_path, "cortado.xml.bz2", bz2.compress(xml[: xml.index("Nasceu em 1746")].encode()))
    stats = DumpStats()
    assert titles(p, allow_truncated=True, stats=stats) == ["Brasil"]
    assert stats.truncated and isinstance(stats.error, DumpTruncated)
    assert "cortado.xml.bz2" in caplog.text


def test_allow_truncated_does_not_hide_other_errors(tmp_path):
    with pytest.raises(DumpError):
        titles(write(tmp_path, "x.xml", "<rss/>"), allow_truncated=True)


def test_bad_bytes(tmp_path):
    xml = make_dump(PAGES).encode()
    pos = xml.index("<title>Lei Áurea".encode()) + len("<title>")
    bad = xml[:pos] + b"Lei \xc1urea" + xml[pos + len("Lei Áurea".encode()):]  # Latin-1 byte in UTF-8
    got, err = consume(write(tmp_path, "mistura.xml", bad))
    assert "mistura.xml: invalid UTF-8 byte 0xc1" in str(err)
    line = bad[:pos].count(b"\n") + 1
    assert f"XML line {line}" in str(err) and f"XML byte {pos + 4:,}" in str(err)


def test_latin1_declared_encoding_is_read(tmp_path):
    xml = make_dump([("São Paulo", 0, "Cidade de São Paulo.", None)])
    xml = xml.replace("<mediawiki", '<?xml version="1.0" encoding="ISO-8859-1"?>\n<mediawiki', 1)
    p = write(tmp_path, "latin1.xml", xml.encode("latin-1"))
    assert [a.lead for a in iter_articles(p)] == ["Cidade de São Paulo."]


def test_errors_are_one_line_and_picklable(tmp_path):
    import pickle

    xml = make_dump(PAGES)
    _, err = consume(write(tmp_path, "c.xml", xml[: xml.index("<title>Lei")]))
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is DumpTruncated and str(again) == str(err) and again.pages_read == err.pages_read
    assert re.fullmatch(r"[^\n]+", str(err))


# -------------------------------------------------------------------------------------- shipped sample
def test_shipped_sample_reads_entirely_without_markup_leftovers(sample_dump):
    stats = DumpStats()
    arts = list(iter_articles(sample_dump, stats=stats))
    assert not stats.truncated and stats.bytes_read == stats.total_bytes
    assert len(arts) >= 20
    assert stats.redirects >= 1 and stats.other_namespaces >= 1 and stats.disambiguations >= 1
    for a in arts:
        text = a.plain_text()
        assert len(text) > 200, a.title
        for token in ("{{", "}}", "[[", "]]", "<ref", "{|", "|}", "thumb|", "<!--", "&nbsp;"):
            assert token not in text, (a.title, token)
        assert not re.search(r"^\s*[|!]", text, re.MULTILINE), a.title
        for value in a.infobox.values():
            assert value and "[[" not in value and "{{" not in value, (a.title, value)
    by_title = {a.title: a for a in arts}
    assert by_title["Brasil"].infobox.get("capital") == "Brasília"


def test_fast_and_careful_page_parsers_agree(tmp_path):
    """The expat fast path and the ElementTree path (used on damage) build identical pages."""
    xml = make_dump(PAGES + [("A & B <c>", 0, "x &amp; y", None)], with_ns=False)
    # a full-history page: the last revision wins
    xml = xml.replace("<sha1>abc</sha1>\n    </revision>\n  </page>\n</mediawiki>",
                      "<sha1>abc</sha1>\n    </revision>\n    <revision><id>7</id><text>nova</text></revision>\n"
                      "  </page>\n</mediawiki>")
    p = write(tmp_path, "d.xml", xml)
    reader = dump._Reader(p)
    batch = next(reader.batches())
    info = reader.siteinfo
    fast = dump._parse_fast(reader.prefix, batch.data, info)
    careful = [dump._make_page(el, info) for el in dump._parse_xml(reader.prefix, batch.data)]
    assert fast == careful and len(fast) == len(PAGES) + 1
    assert fast[-1].title == "A & B <c>" and fast[-1].text == "nova" and fast[-1].revision_id == 7
    assert fast[1].redirect == "Brasil" and fast[7].ns == 14


def test_unknown_declared_encoding(tmp_path):
    xml = make_dump(PAGES).replace("<mediawiki", '<?xml version="1.0" encoding="x-klingon"?>\n<mediawiki', 1)
    _, err = consume(write(tmp_path, "klingon.xml", xml))
    assert "klingon.xml: unknown character encoding" in str(err)
