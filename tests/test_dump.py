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
    -2: "Multimédia",
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
    104: "Livro",
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
        "  <siteinfo>",
        "    <sitename>Wikipédia</sitename>",
        f"    <dbname>{dbname}</dbname>",
        f"    <base>{escape(base)}</base>",
        "    <generator>MediaWiki 1.42.0-wmf.20</generator>",
        "    <case>first-letter</case>",
        "    <namespaces>",
        ns_xml,
        "    </namespaces>",
        "  </siteinfo>",
    ]
    for i, (title, ns, text, redirect) in enumerate(pages, 1):
        out += ["  <page>", f"    <title>{escape(title)}</title>"]
        if with_ns:
            out.append(f"    <ns>{ns}</ns>")
        out.append(f"    <id>{i}</id>")
        if redirect:
            out.append(f"    <redirect title={quoteattr(redirect)} />")
        out += [
            "    <revision>",
            f"      <id>{1000 + i}</id>",
            f"      <parentid>{900 + i}</parentid>",
            "      <timestamp>2024-03-01T12:00:00Z</timestamp>",
            "      <contributor><username>Editor</username><id>5</id></contributor>",
            "      <model>wikitext</model>",
            "      <format>text/x-wiki</format>",
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>',
            "      <sha1>abc</sha1>",
            "    </revision>",
            "  </page>",
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
    data = b"".join(bz2.compress(xml[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
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
    pages = [
        ("Anexo:Lista", 0, "lista", None),
        ("Kategorie:X", 0, "cat", None),
        ("Receita:Bolo", 0, "bolo", None),
        ("Categoria:Y", 0, "não é namespace aqui", None),
        ("Artigo", 0, "texto", None),
    ]
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
    p = write(
        tmp_path,
        "es.xml",
        make_dump(
            [("España", 0, "Texto.", None)], dbname="eswiki", base="https://es.wikipedia.org/wiki/Wikipedia:Portada"
        ),
    )
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
        "ARTIGO 0",
        "ARTIGO 1",
        "ARTIGO 2",
    ]


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
    bad = xml[:pos] + b"Lei \xc1urea" + xml[pos + len("Lei Áurea".encode()) :]  # Latin-1 byte in UTF-8
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
    xml = xml.replace(
        "<sha1>abc</sha1>\n    </revision>\n  </page>\n</mediawiki>",
        "<sha1>abc</sha1>\n    </revision>\n    <revision><id>7</id><text>nova</text></revision>\n"
        "  </page>\n</mediawiki>",
    )
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


# --------------------------------------------------------------------------- damaged multistream dumps (issue 25)
# A multistream dump is bzip2 streams back to back; when one is lost (a bad copy, a resumed download that skipped
# bytes), the XML around the hole can still be well-formed. These build such files from the shipped sample.
def sample_xml() -> bytes:
    return bz2.decompress(
        Path(__file__).resolve().parent.parent.joinpath("data", "ptwiki-amostra-pages-articles.xml.bz2").read_bytes()
    )


def page_starts(xml: bytes) -> list[tuple[int, int, str]]:
    """(offset of the line of each <page>, page id, title)."""
    out = []
    for m in re.finditer(rb"  <page>\s*<title>([^<]*)</title>.*?<id>(\d+)</id>", xml, re.S):
        out.append((m.start(), int(m.group(2)), m.group(1).decode()))
    return out


def inside_text(xml: bytes, title: str) -> int:
    """An offset in the middle of the page's text, at a space (never inside a character or an entity)."""
    start = xml.index(f"<title>{title}</title>".encode())
    text = xml.index(b"<text", start)
    end = xml.index(b"</text>", text)
    return xml.index(b" ", (text + end) // 2)


def multistream(xml: bytes, cuts: list[int], drop=(), repeat=()) -> tuple[bytes, str]:
    """(the streams xml[cuts[i]:cuts[i+1]] compressed back to back without those in ``drop`` and with those in
    ``repeat`` twice, the index of the intact file). cuts include 0 and len(xml)."""
    streams = [bz2.compress(xml[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    offsets = [sum(len(s) for s in streams[:i]) for i in range(len(streams))]
    index = []
    for pos, pid, title in page_starts(xml):
        k = max(i for i, c in enumerate(cuts[:-1]) if c <= pos)
        index.append(f"{offsets[k]}:{pid}:{title}\n")
    data = b"".join(s * (2 if i in repeat else 1) for i, s in enumerate(streams) if i not in drop)
    return data, "".join(index)


def aligned_cuts(xml: bytes, per_stream: int = 10) -> list[int]:
    """Header stream, streams of ``per_stream`` whole pages, footer stream: how Wikimedia writes them."""
    starts = [p for p, _, _ in page_starts(xml)]
    return [0] + starts[::per_stream] + [xml.rindex(b"</mediawiki>"), len(xml)]


def all_titles(path, **kw) -> list[str]:
    return titles(path, namespaces=None, skip_redirects=False, skip_disambiguation=False, **kw)


SAMPLE_TITLES = [t for _, _, t in page_starts(sample_xml())]
SAMPLE_IDS = [i for _, i, _ in page_starts(sample_xml())]


def test_multistream_helpers_make_a_readable_dump(tmp_path):
    xml = sample_xml()
    data, index = multistream(xml, aligned_cuts(xml))
    assert len(SAMPLE_TITLES) == 80 and data.count(b"BZh9") == 10 and len(index.splitlines()) == 80
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    write(tmp_path, "ptwiki-multistream-index.txt.bz2", bz2.compress(index.encode()))
    assert dump.find_index(p) == tmp_path / "ptwiki-multistream-index.txt.bz2"
    assert all_titles(p) == SAMPLE_TITLES  # the intact file with its index: no complaint


def test_lost_stream_cut_mid_page_splices_two_pages_and_is_reported(tmp_path):
    """The stream between the middle of one page's text and the middle of another's is lost: the XML is still
    well-formed, and 'Revolução Constitucionalista de 1932' would end with Minas Gerais' text."""
    xml = sample_xml()
    a, b = inside_text(xml, "Revolução Constitucionalista de 1932"), inside_text(xml, "Minas Gerais")
    head, foot = xml.index(b"  <page>"), xml.rindex(b"</mediawiki>")
    data, _ = multistream(xml, [0, head, a, b, foot, len(xml)], drop={2})
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    for kw in ({}, {"allow_truncated": True}):
        got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False, **kw)
        assert got == SAMPLE_TITLES[: SAMPLE_TITLES.index("Revolução Constitucionalista de 1932")]
        assert not isinstance(err, DumpTruncated)  # --allow-truncated does not hide it
        msg = str(err)
        assert msg.startswith(
            f"{p}: the page 'Revolução Constitucionalista de 1932' (id 1014) is damaged: <text bytes=\""
        )
        assert "spliced" in msg and "after 13 complete page(s)" in msg and "XML line" in msg and "\n" not in msg
    # the same with workers, and through iter_articles
    got = []
    with pytest.raises(DumpError, match="'Revolução Constitucionalista de 1932'.*bytes"):
        for art in iter_articles(p, workers=2):
            got.append(art.title)
    assert "Revolução de 1930" in got and "Revolução Constitucionalista de 1932" not in got


def test_lost_stream_cut_mid_page_before_a_page_boundary_nests_pages(tmp_path):
    xml = sample_xml()
    starts = [p for p, _, _ in page_starts(xml)]
    a, b = inside_text(xml, "Revolução Constitucionalista de 1932"), starts[SAMPLE_TITLES.index("Minas Gerais")]
    data, _ = multistream(xml, [0, starts[0], a, b, xml.rindex(b"</mediawiki>"), len(xml)], drop={2})
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[:13]
    line = bz2.decompress(data)[: bz2.decompress(data).index(b"<title>Minas Gerais")].count(b"\n")  # its <page>
    assert str(err).startswith(f"{p}: a <page> opens inside the page 'Revolução Constitucionalista de 1932'")
    assert f"XML line {line}," in str(err)


def test_lost_stream_on_a_page_boundary_needs_the_index(tmp_path):
    """Streams of whole pages: losing one leaves a valid dump whose ids just have a gap, like real gaps. Without
    the index nothing can tell; with it beside the dump, the first missing page is named."""
    xml = sample_xml()
    data, index = multistream(xml, aligned_cuts(xml), drop={3})  # pages 21-30
    p = write(tmp_path, "ptwiki-20240301-pages-articles-multistream.xml.bz2", data)
    assert all_titles(p) == SAMPLE_TITLES[:20] + SAMPLE_TITLES[30:]  # undetectable without the index
    idx = write(tmp_path, "ptwiki-20240301-pages-articles-multistream-index.txt.bz2", bz2.compress(index.encode()))
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[:20]
    offset = index.splitlines()[20].split(":")[0]
    assert str(err).startswith(
        f"{p}: page {SAMPLE_TITLES[20]!r} (id 1021, bzip2 stream at byte {int(offset):,}) "
        "listed in the multistream index is missing: the dump goes on with "
        f"{SAMPLE_TITLES[30]!r} (id 1031)"
    )
    assert all_titles(p, index=False) == SAMPLE_TITLES[:20] + SAMPLE_TITLES[30:]  # index=False: not read
    idx.rename(tmp_path / "elsewhere.txt")
    got, err = consume(
        p, namespaces=None, skip_redirects=False, skip_disambiguation=False, index=tmp_path / "elsewhere.txt"
    )  # an index given explicitly
    assert got == SAMPLE_TITLES[:20] and "(id 1021" in str(err)


def test_lost_last_page_stream_before_the_footer_needs_the_index(tmp_path):
    xml = sample_xml()
    cuts = aligned_cuts(xml)
    data, index = multistream(xml, cuts, drop={len(cuts) - 3})  # the last stream of pages, footer kept
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    assert all_titles(p) == SAMPLE_TITLES[:70]
    write(tmp_path, "ptwiki-multistream-index.txt", index)  # an uncompressed index is found too
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[:70]
    assert f"page {SAMPLE_TITLES[70]!r} (id {SAMPLE_IDS[70]}, bzip2 stream at byte" in str(err)
    assert "the dump ends before it" in str(err)


def test_repeated_stream_makes_ids_go_backwards(tmp_path):
    """A resumed download that wrote a stream twice: ids go backwards (gaps are normal, going back is not)."""
    xml = sample_xml()
    data, _ = multistream(xml, aligned_cuts(xml), repeat={2})  # pages 11-20 twice
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[:20]
    assert str(err).startswith(f"{p}: page ids go backwards: page {SAMPLE_TITLES[10]!r} has id 1011 after id 1020")
    assert "after 20 complete page(s)" in str(err)


def test_index_of_another_dump_is_refused(tmp_path):
    xml = sample_xml()
    data, index = multistream(xml, aligned_cuts(xml))
    p = write(tmp_path, "ptwiki-multistream.xml.bz2", data)
    write(tmp_path, "ptwiki-multistream-index.txt", index.replace(":1005:", ":1500:"))
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[:4]
    assert f"page {SAMPLE_TITLES[4]!r} (id 1005) is not in the multistream index" in str(err)
    assert "lists id 1500" in str(err)
    assert "is the index this dump's?" in str(err)
    write(tmp_path, "ptwiki-multistream-index.txt", "isto não é um índice\n")
    _, err = consume(p)
    assert "line 1: expected offset:page_id:title" in str(err)


def test_text_bytes_checked_but_not_for_deleted_or_stub_texts(tmp_path):
    xml = make_dump(PAGES)
    text = '<text bytes="17" xml:space="preserve">Portal do Brasil.</text>'
    assert text in xml
    ok = xml.replace(text, '<text bytes="17" deleted="deleted" />')
    assert titles(write(tmp_path, "d.xml", ok), namespaces=None)[-3] == "Portal:Brasil"
    ok = xml.replace(text, '<text bytes="17" id="77" />')
    assert titles(write(tmp_path, "d.xml", ok), namespaces=None)[-3] == "Portal:Brasil"
    bad = xml.replace(text, '<text bytes="17" xml:space="preserve">Portal do Brasil, com acentuação.</text>')
    got, err = consume(write(tmp_path, "d.xml", bad), namespaces=None)
    assert got[-1] == "Categoria:Brasil"
    assert "the page 'Portal:Brasil' (id 9) is damaged: <text bytes=\"17\"> but its text is 35 bytes" in str(err)
    bad = xml.replace(text, '<text bytes="17" xml:space="preserve"></text>')  # emptied without a reason
    assert "is damaged" in str(consume(write(tmp_path, "d.xml", bad), namespaces=None)[1])
    no_bytes = xml.replace(text, '<text xml:space="preserve">Portal do Brasil, com acentuação.</text>')
    assert "Portal:Brasil" in titles(write(tmp_path, "d.xml", no_bytes), namespaces=None)


# ------------------------------------------------------------------------ a cut exactly after a </page>
@pytest.mark.parametrize("kind", ["xml", "bz2", "multistream"])
def test_cut_right_after_a_page_is_truncation(tmp_path, kind):
    """Nothing but whitespace after the last </page> (no </mediawiki>): the file was cut on a page boundary."""
    xml = sample_xml()
    end = xml.index(b"</page>", xml.index(b"<title>Minas Gerais")) + len(b"</page>")
    cut = xml[:end] + b"\n  "
    if kind == "xml":
        data = cut
    elif kind == "bz2":
        data = bz2.compress(cut)
    else:  # the streams up to Minas Gerais' page, footer stream lost
        data, _ = multistream(xml, [0, xml.index(b"  <page>"), end, len(xml)], drop={2})
    p = write(tmp_path, f"ptwiki-cut.xml{'' if kind == 'xml' else '.bz2'}", data)
    got, err = consume(p, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    assert got == SAMPLE_TITLES[: SAMPLE_TITLES.index("Minas Gerais") + 1]
    assert isinstance(err, DumpTruncated) and err.pages_read == len(got)
    assert "XML ends before </mediawiki> (file cut?)" in str(err) and "'Minas Gerais'" in str(err)
    stats = DumpStats()
    assert all_titles(p, allow_truncated=True, stats=stats) == got and stats.truncated
