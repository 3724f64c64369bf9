"""Wikitext cleaning: one test per markup kind, with snippets written the way ptwiki writes them."""

from __future__ import annotations

import pytest

from llamawiki.dump import Page, SiteInfo
from llamawiki.wikitext import (
    Article,
    Section,
    clean_wikitext,
    parse_article,
    parse_template,
    split_params,
)

LEFTOVERS = ("{{", "}}", "[[", "]]", "<ref", "{|", "|}", "thumb", "|", "<!--", "-->")


def assert_clean(text: str) -> None:
    for token in LEFTOVERS:
        assert token not in text, f"leftover {token!r} in {text!r}"


def page(text: str, title: str = "Teste", pid: int = 7) -> Page:
    return Page(id=pid, title=title, ns=0, text=text)


# ------------------------------------------------------------------------------------------- templates
def test_templates_removed_including_nested_and_multiline():
    src = (
        "{{Ver também|Unidades federativas do Brasil}}\n"
        "A '''Revolução de 1930'''{{carece de fontes|data=maio de 2020}} foi um movimento armado"
        "{{Nota de rodapé|Ver {{citar livro|título=Getúlio|autor={{lang|en|Skidmore}}}}}} liderado por "
        "[[Getúlio Vargas]].\n{{Portal3|Brasil|História\n|Política}}"
    )
    out = clean_wikitext(src)
    assert out == "A Revolução de 1930 foi um movimento armado liderado por Getúlio Vargas."


def test_triple_brace_parameters_show_default():
    out = clean_wikitext("Capital: {{{capital|Brasília}}}. Vazio: {{{x}}}.")
    assert out == "Capital: Brasília. Vazio:."


def test_unbalanced_template_leaves_no_braces():
    out = clean_wikitext("Texto {{quebrado|sem fim e mais texto.")
    assert_clean(out)
    assert "Texto" in out


def test_inline_allow_list_keeps_text():
    src = (
        "Chamado {{lang|en|Brazil}} em inglês, {{lang-en|Federative Republic}}, com "
        "{{nowrap|8,5 milhões de km²}} e {{formatnum:1234567}} habitantes; {{small|nota}}; "
        "nasceu em {{dni|19|4|1882}}; mede {{converter|100|km|mi}}."
    )
    out = clean_wikitext(src)
    assert out == (
        "Chamado Brazil em inglês, Federative Republic, com 8,5 milhões de km² e 1234567 habitantes; "
        "nota; nasceu em 19 de abril de 1882; mede 100 km."
    )


def test_parser_functions_dropped():
    assert clean_wikitext("Ano {{#if:{{{a|}}}|sim|não}}de 1822.") == "Ano de 1822."


# --------------------------------------------------------------------------------------------- refs
def test_refs_removed_all_forms():
    src = (
        'O Brasil tem 26 estados.<ref name="ibge">{{citar web|url=https://ibge.gov.br|título=IBGE}}</ref> '
        'A capital é Brasília.<ref name="ibge" /> Fundada em 1960<ref group="nota">Inaugurada por '
        "[[Juscelino Kubitschek|JK]].</ref>.<ref name=x/>\n\n== Referências ==\n{{Referências}}\n<references/>\n"
        '<references>\n<ref name="a">A</ref>\n</references>'
    )
    out = clean_wikitext(src)
    assert out.startswith("O Brasil tem 26 estados. A capital é Brasília. Fundada em 1960.")
    assert "IBGE" not in out and "JK" not in out and "Inaugurada" not in out
    assert_clean(out)


def test_unclosed_ref_does_not_swallow_the_article():
    out = clean_wikitext("Antes.<ref>nota sem fim\n\nDepois.")
    assert out.startswith("Antes.")
    assert "<ref" not in out


# ------------------------------------------------------------------------------------------- tables
def test_tables_removed_nested():
    src = (
        'Antes da tabela.\n{| class="wikitable"\n|+ Presidentes\n! Nome !! Mandato\n|-\n| [[Castelo Branco]] '
        "|| 1964–1967\n|-\n|\n{| \n| aninhada\n|}\n|}\nDepois da tabela."
    )
    assert clean_wikitext(src) == "Antes da tabela.\nDepois da tabela."


def test_table_inside_template_and_template_inside_table():
    src = "A\n{{Caixa|conteúdo=\n{|\n| x\n|}\n}}\nB\n{|\n| {{bandeira|BRA}} Brasil\n|}\nC"
    assert clean_wikitext(src) == "A\n\nB\nC"


def test_unclosed_table_stops_at_next_heading():
    src = "Intro.\n{| class=wikitable\n| célula\n\n== História ==\nTexto da história."
    art = parse_article(page(src))
    assert art.lead == "Intro."
    assert art.sections == [Section("História", 2, "Texto da história.")]


# -------------------------------------------------------------------------------------- files, links
def test_files_with_nested_links_in_caption_removed():
    src = (
        "[[Ficheiro:Brasilia-Congresso.jpg|thumb|direita|250px|O [[Congresso Nacional do Brasil|Congresso]], "
        "projeto de [[Oscar Niemeyer]]]]Brasília é a capital. [[Imagem:Mapa.png|miniaturadaimagem|Mapa]] "
        "[[File:X.svg|thumb|x]][[Image:Y.png]][[Arquivo:Z.jpg|thumb|[[a|b]] e [[c]]]]Fim."
    )
    out = clean_wikitext(src)
    assert out == "Brasília é a capital. Fim."


def test_links_become_labels():
    src = "[[Pedro I do Brasil|D. Pedro I]] proclamou a [[independência]] e [[casa]]s; [[Rio de Janeiro|]] ok."
    assert clean_wikitext(src) == "D. Pedro I proclamou a independência e casas; Rio de Janeiro ok."


def test_links_to_sections_and_other_namespaces():
    src = (
        "Ver [[Brasil#História|a história]], [[#Geografia]], [[:Categoria:Capitais do Brasil]], "
        "[[wikt:capital|capital]]."
    )
    assert clean_wikitext(src) == "Ver a história, Geografia, Capitais do Brasil, capital."


def test_categories_collected_and_removed():
    src = "Texto.\n[[Categoria:Capitais do Brasil]]\n[[Categoria:Cidades planejadas|Brasilia]]\n[[Category:Cities]]"
    art = parse_article(page(src, title="Brasília"))
    assert art.plain_text() == "Texto."
    assert art.categories == ["Capitais do Brasil", "Cidades planejadas", "Cities"]


def test_interlanguage_links_removed():
    src = "Texto sobre o Brasil.\n[[en:Brazil]]\n[[es:Brasil]]\n[[zh-min-nan:Pa-se]]"
    assert clean_wikitext(src) == "Texto sobre o Brasil."


def test_external_links():
    src = "Veja [https://www.ibge.gov.br o site do IBGE] e [http://exemplo.org] ou https://gov.br."
    assert clean_wikitext(src) == "Veja o site do IBGE e ou https://gov.br."


def test_file_namespace_names_from_siteinfo():
    # a wiki whose file namespace is called "Fichier": only siteinfo can tell us
    info = SiteInfo(dbname="frwiki", namespaces={0: "", 6: "Fichier", 14: "Catégorie"})
    art = parse_article(
        page("[[Fichier:Paris.jpg|vignette|Paris]]Paris est la capitale.[[Catégorie:Ville]]"), siteinfo=info
    )
    assert art.lead == "Paris est la capitale."
    assert art.categories == ["Ville"]


# ---------------------------------------------------------------------------------- html and friends
def test_html_comments_removed_incl_multiline_and_unclosed():
    assert clean_wikitext("A <!-- nota\ninterna --> B<!-- sem fim") == "A B"


def test_html_tags_stripped_keeping_text():
    src = (
        '<div style="float:right">Caixa</div> <span class="x">texto</span> <small>pequeno</small> '
        "<sup>2</sup> <center>c</center> <blockquote>citação</blockquote> <poem>verso</poem>"
    )
    assert clean_wikitext(src) == "Caixa texto pequeno 2 c citação verso"


def test_br_becomes_line_break():
    assert clean_wikitext("Linha um<br />Linha dois<br>três<BR/>quatro") == "Linha um\nLinha dois\ntrês\nquatro"


def test_gallery_math_and_other_dropped_tags():
    src = (
        "Antes <math>E = mc^2</math> depois.\n<gallery>\nFicheiro:A.jpg|Legenda [[x]]\n</gallery>\n"
        "<timeline>ImageSize = width:100</timeline>Fim."
    )
    assert clean_wikitext(src) == "Antes depois.\n\nFim."


def test_nowiki_content_kept_literally():
    out = clean_wikitext("Use <nowiki>'''negrito'''</nowiki> e <nowiki>&lt;br&gt;</nowiki> assim.<nowiki/>")
    assert out == "Use '''negrito''' e <br> assim."


def test_entities_unescaped():
    out = clean_wikitext("8&nbsp;510&nbsp;418 km² &ndash; R&amp;D &quot;x&quot; &#233; &lt;3")
    assert out == '8 510 418 km² – R&D "x" é <3'


def test_bold_and_italic_markers_removed():
    src = "O '''Brasil''' (''Brazil'') é '''''grande''''' e d'água."
    assert clean_wikitext(src) == "O Brasil (Brazil) é grande e d'água."


def test_lists_indents_rules_and_magic_words():
    src = (
        "__NOTOC__\nPresidentes:\n* [[Castelo Branco]]\n** Costa e Silva\n# Médici\n: recuo\n; termo : def\n----\nFim."
    )
    assert clean_wikitext(src) == "Presidentes:\nCastelo Branco\nCosta e Silva\nMédici\nrecuo\ntermo: def\n\nFim."


def test_stray_pipes_and_table_rows_removed():
    out = clean_wikitext("Texto | com pipe\n| linha de tabela solta\n! cabeçalho solto\nfim ]] e [[ e }}")
    assert_clean(out)
    assert out.startswith("Texto com pipe\nfim")


def test_empty_parentheses_left_by_templates_removed():
    assert clean_wikitext("Tiradentes ({{IPA|tʃi}}) foi um dentista.") == "Tiradentes foi um dentista."


# ---------------------------------------------------------------------------------------- sections
def test_sections_lead_and_boilerplate():
    src = (
        "{{Info/Político|nome=Getúlio Vargas}}\n'''Getúlio Vargas''' foi presidente.\n\n"
        "== Biografia ==\nNasceu em [[São Borja]].\n\n=== Juventude ===\nEstudou direito.\n\n"
        "== Governo ==\n\n== [[Estado Novo (Brasil)|Estado Novo]] ==\nGolpe de 1937.\n\n"
        "== Ver também ==\n* [[Era Vargas]]\n=== Subseção de ver também ===\nmais\n"
        "== Referências ==\n{{Referências}}\n== Ligações externas ==\n* [http://x.org Site]\n"
        "== Bibliografia ==\n* Livro.\n== Notas ==\nnota\n== Leitura adicional ==\nlivro"
    )
    art = parse_article(page(src, title="Getúlio Vargas"))
    assert art.lead == "Getúlio Vargas foi presidente."
    assert [(s.title, s.level, s.text) for s in art.sections] == [
        ("Biografia", 2, "Nasceu em São Borja."),
        ("Juventude", 3, "Estudou direito."),
        ("Estado Novo", 2, "Golpe de 1937."),  # "Governo" was empty: dropped
    ]
    assert art.plain_text() == (
        "Getúlio Vargas foi presidente.\n\n== Biografia ==\nNasceu em São Borja.\n\n"
        "=== Juventude ===\nEstudou direito.\n\n== Estado Novo ==\nGolpe de 1937."
    )


def test_real_section_after_boilerplate_at_same_level_is_kept():
    """Only the boilerplate section and its subsections are dropped: the next section at the same (or a
    higher) level is real text again."""
    src = (
        "Lead.\n== Ver também ==\n* [[Era Vargas]]\n=== Listas ===\n* [[X]]\n"
        "== História ==\nColônia e Império.\n=== Império ===\nDe 1822 a 1889.\n"
        "=== Notas ===\nnota\n=== República ===\nDesde 1889.\n"
        "== Referências ==\n{{Referências}}\n= Geografia =\nClima tropical."
    )
    art = parse_article(page(src, title="Brasil"))
    assert [(s.title, s.level, s.text) for s in art.sections] == [
        ("História", 2, "Colônia e Império."),
        ("Império", 3, "De 1822 a 1889."),
        ("República", 3, "Desde 1889."),
        ("Geografia", 1, "Clima tropical."),
    ]


def test_paragraphs_separated_by_one_blank_line():
    art = parse_article(page("Um.\n\n\n\n{{x}}\n\nDois.\n== S ==\nA.\n\n\n\nB."))
    assert art.lead == "Um.\n\nDois."
    assert art.sections[0].text == "A.\n\nB."


# ----------------------------------------------------------------------------------------- infobox
INFOBOX = """{{Info/País
| nome_comum       = Brasil
| imagem_bandeira  = Flag of Brazil.svg
| imagem_brasão    = Coat of arms of Brazil.svg
| mapa             = Brazil (orthographic projection).svg
| legenda_mapa     = Localização do Brasil
| lema             = ''Ordem e Progresso''
| capital          = [[Brasília]]
| presidente       = [[Luiz Inácio Lula da Silva|Lula]]<br />{{small|(desde 2023)}}
| data_independência = {{nowrap|[[7 de setembro]] de [[1822]]}}
| população        = 203&nbsp;080&nbsp;756<ref name="censo">{{citar web|url=https://ibge.gov.br|título=Censo}}</ref>
| moeda            = [[Real (moeda)|Real]] (R$)
| fuso             = {{Lista horizontal|[[UTC−2]]|[[UTC−3]]}}
| vazio            =
| comentário       = <!-- nada -->
| idioma           = [[Língua portuguesa|Português]] {{lang|pt|(oficial)}}
}}
O '''Brasil''' é um país."""


def test_infobox_fields_parsed_and_cleaned():
    art = parse_article(page(INFOBOX, title="Brasil"))
    assert art.infobox_type == "País"
    assert art.infobox == {
        "nome_comum": "Brasil",
        "lema": "Ordem e Progresso",
        "capital": "Brasília",
        "presidente": "Lula; (desde 2023)",
        "data_independência": "7 de setembro de 1822",
        "população": "203 080 756",
        "moeda": "Real (R$)",
        "idioma": "Português (oficial)",
    }
    assert art.lead == "O Brasil é um país."


def test_infobox_only_first_info_template_and_infobox_spelling():
    src = "{{Infobox settlement|name=Brasília|population=2 817 068}}\n{{Info/Cidade|nome=Outra}}\nTexto."
    art = parse_article(page(src))
    assert art.infobox_type == "settlement"
    assert art.infobox == {"name": "Brasília", "population": "2 817 068"}
    assert art.lead == "Texto."


def test_no_infobox():
    art = parse_article(page("{{Ver também|X}}Texto simples."))
    assert art.infobox_type is None and art.infobox == {}


def test_split_params_respects_nesting():
    inner = "Info/X| a = [[b|c]] | d = {{e|f|g}} | h = {{{i|j}}} | k"
    assert split_params(inner) == ["Info/X", " a = [[b|c]] ", " d = {{e|f|g}} ", " h = {{{i|j}}} ", " k"]
    name, pos, named = parse_template("{{Predefinição:Info/X|a=[[b|c]]|{{y|z=1}}|d=e=f}}")
    assert name == "Info/X"
    assert pos == ["{{y|z=1}}"]
    assert named == {"a": "[[b|c]]", "d": "e=f"}


# -------------------------------------------------------------------------------------------- url
def test_article_url_and_base_from_siteinfo():
    art = parse_article(page("x", title="Revolução Constitucionalista de 1932"))
    assert art.url == "https://pt.wikipedia.org/wiki/Revolução_Constitucionalista_de_1932"
    art = parse_article(page("x", title="A?B"), base_url="https://pt.wikipedia.org/wiki/")
    assert art.url == "https://pt.wikipedia.org/wiki/A%3FB"
    info = SiteInfo(base="https://es.wikipedia.org/wiki/Wikipedia:Portada")
    assert info.base_url == "https://es.wikipedia.org/wiki/"


def test_article_is_dataclass_with_contract_fields():
    art = parse_article(page("'''X''' é y.\n[[Categoria:Z]]", title="X", pid=42))
    assert isinstance(art, Article)
    assert (art.title, art.page_id, art.lead, art.categories) == ("X", 42, "X é y.", ["Z"])


@pytest.mark.parametrize(
    "markup",
    [
        "{{",
        "}}",
        "[[",
        "]]",
        "{|",
        "|}",
        "{{a|{{b}}",
        "[[a|[[b]]",
        "<ref>",
        "{{{",
        "}}}}}",
        "[[Ficheiro:x|thumb|",
        "{| \n|}}\n|}",
        "<!--",
        "''''''''",
    ],
)
def test_broken_markup_never_leaks_tokens(markup):
    out = clean_wikitext(f"antes {markup} depois")
    assert_clean(out)
