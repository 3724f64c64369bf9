"""Wikitext -> the text a reader sees, with sections kept as structure and the infobox kept as facts.

No full MediaWiki parser: templates are not expanded (a short allow-list of inline templates whose content is
text, such as ``{{lang|en|texto}}`` or ``{{nowrap|texto}}``, keeps that text), and everything that is not prose
is removed — templates, ``<ref>``, tables, files, categories, interlanguage links, HTML comments and tags.
Nested constructs (templates in templates, links in file captions, tables in tables) are matched with linear
scanners over the brace/bracket tokens rather than repeated regex passes.

Pipeline (``_clean``): comments -> ``<nowiki>`` protected -> dropped tags (ref, gallery, math...) -> templates
(infobox captured) -> tables -> links (categories captured) -> external links -> HTML tags -> bold/italic ->
entities -> line markup (lists, rules, stray table rows) -> leftover tokens -> whitespace.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .pages import DEFAULT_BASE_URL, Page, SiteInfo
from .text import MONTHS_PT

__all__ = [
    "Section",
    "Article",
    "parse_article",
    "category_links",
    "clean_wikitext",
    "parse_template",
    "split_params",
    "BOILERPLATE_SECTIONS",
    "INFOBOX_DROP_RE",
    "DEFAULT_BASE_URL",
]


# --------------------------------------------------------------------------------------------- data types
@dataclass
class Section:
    title: str
    level: int
    text: str  # plain text, paragraphs separated by blank lines


@dataclass
class Article:
    title: str
    page_id: int
    lead: str
    sections: list[Section] = field(default_factory=list)
    infobox_type: str | None = None
    infobox: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    url: str = ""

    def plain_text(self) -> str:
        """Lead, then each section as ``== Título ==`` followed by its text."""
        parts = [self.lead] if self.lead else []
        for s in self.sections:
            bar = "=" * max(2, s.level)
            parts.append(f"{bar} {s.title} {bar}\n{s.text}")
        return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------- constants
BOILERPLATE_SECTIONS = frozenset(
    s.casefold()
    for s in (
        "Referências",
        "Referências bibliográficas",
        "Referências e notas",
        "Notas e referências",
        "Notas",
        "Nota",
        "Ligações externas",
        "Ligação externa",
        "Links externos",
        "Ver também",
        "Veja também",
        "Bibliografia",
        "Leitura adicional",
        "Leituras adicionais",
        "Leitura complementar",
        "Fontes",
        "Outras leituras",
        "Galeria",
        "Galeria de imagens",
        "Notas de rodapé",
        "Citações",
        "References",
        "Notes",
        "External links",
        "See also",
        "Further reading",
        "Bibliography",
        "Sources",
    )
)

FILE_PREFIXES = frozenset(("ficheiro", "arquivo", "imagem", "file", "image", "media", "mídia", "midia"))
CATEGORY_PREFIXES = frozenset(("categoria", "category"))
# Interlanguage link prefixes (removed from the text, like MediaWiki does); other-project interwikis
# (wikt:, commons:, s:...) are inline links and keep their label.
LANGUAGE_CODES = frozenset(
    """
aa ab ace af ak als am an ang ar arc arz as ast av ay az azb ba bar bat-smg bcl be be-tarask be-x-old bg bh bi
bjn bm bn bo bpy br bs bug bxr ca cbk-zam cdo ce ceb ch cho chr chy ckb co cr crh cs csb cu cv cy da de diq dsb
dv dz ee el eml en eo es et eu ext fa ff fi fiu-vro fj fo fr frp frr fur fy ga gag gan gd gl glk gn gom got gu gv
ha hak haw he hi hif ho hr hsb ht hu hy hz ia id ie ig ii ik ilo io is it iu ja jam jbo jv ka kaa kab kbd kg ki kj
kk kl km kn ko koi kr krc ks ksh ku kv kw ky la lad lb lbe lez lg li lij lmo ln lo lrc lt ltg lv mai map-bms mdf mg
mh mhr mi min mk ml mn mr mrj ms mt mus mwl my myv mzn na nah nap nds nds-nl ne new ng nl nn no nov nrm nso nv ny oc
olo om or os pa pag pam pap pcd pdc pfl pi pih pl pms pnb pnt ps pt qu rm rmy rn ro roa-rup roa-tara ru rue rw sa
sah sc scn sco sd se sg sh si simple sk sl sm sn so sq sr srn ss st stq su sv sw szl ta tcy te tet tg th ti tk tl
tn to tpi tr ts tt tum tw ty tyv udm ug uk ur uz ve vec vep vi vls vo wa war wo wuu xal xh xmf yi yo za zea zh
zh-classical zh-min-nan zh-yue zu
""".split()
)

# Infobox fields that hold pictures, maps or layout, not facts.
INFOBOX_DROP_RE = re.compile(
    r"imagem|image|img|mapa|(?:^|_)map|legenda|caption|bandeira|brasão|brasao|escudo|selo|assinatura|logo|"
    r"pushpin|largura|tamanho|width|size|upright|(?:^|_|\s)alt(?:$|_|\s)|float|estilo|style|cor(?:$|_)",
    re.IGNORECASE,
)

# Inline templates whose content is text: name -> which positional argument holds it (1-based);
# "last" = the last positional argument. Names are compared lower-cased with "_" -> " ".
_INLINE_TEMPLATES: dict[str, int | str] = {
    "lang": "last",
    "língua": "last",
    "nowrap": 1,
    "nobr": 1,
    "small": 1,
    "smaller": 1,
    "big": 1,
    "larger": 1,
    "texto pequeno": 1,
    "nowrap begin": 0,
    "citação": 1,
    "quote": 1,
    "citacao": 1,
    "abbr": 1,
    "tooltip": 1,
    "sem quebra": 1,
    "nihongo": 1,
    "transl": "last",
    "transliteração": "last",
    "em": 1,
    "versalete": 1,
    "sc": 1,
    "smallcaps": 1,
    "sic": 1,
    "formatnum": 1,
    "fmtn": 1,
    "nts": 1,
    "unidade": "unit",
    "converter": "unit",
    "convert": "unit",
    "dni": "date",
    "dnibr": "date",
    "dtlink": "date",
    "data": "date",
    "date": "date",
    "ill": 1,
    "link": "link",
    "--": "dash",
    "—": "dash",
    "ndash": "ndash",
    "mdash": "mdash",
    "!": 0,
    "=": 0,
}

# ----------------------------------------------------------------------------------------------- regexes
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_NOWIKI_RE = re.compile(
    r"<nowiki\s*/>|<nowiki\s*>(.*?)(?:</nowiki\s*>|\Z)|<pre\b[^>]*>(.*?)</pre\s*>", re.DOTALL | re.IGNORECASE
)
_DROP_TAGS = (
    "ref",
    "references",
    "gallery",
    "math",
    "chem",
    "ce",
    "timeline",
    "imagemap",
    "score",
    "graph",
    "mapframe",
    "maplink",
    "templatedata",
    "includeonly",
    "noinclude",
    "hiero",
    "inputbox",
    "categorytree",
    "syntaxhighlight",
    "source",
    "templatestyles",
    "indicator",
)
_DROP_TAG_RE = re.compile(
    r"<(" + "|".join(_DROP_TAGS) + r")\b(?:[^>]*?/\s*>|[^>]*>.*?(?:</\1\s*>|\Z))",
    re.DOTALL | re.IGNORECASE,
)
_BRACE_TOKEN_RE = re.compile(r"\{\{+|\}\}+")
_TABLE_TOKEN_RE = re.compile(r"^[ \t:]*\{\||^[ \t]*\|\}(?!\})", re.MULTILINE)
_PARAM_TOKEN_RE = re.compile(r"\{\{|\}\}|\[\[|\]\]|\|")
_LINK_TOKEN_RE = re.compile(r"\[\[|\]\]")
_EXTLINK_RE = re.compile(r"\[(?:https?:|ftp:|mailto:|//)[^\s\]\[]*(?:[ \t]+([^\]\n]*))?\]", re.IGNORECASE)
_BR_RE = re.compile(r"<br\s*/?\s*>|</br\s*>", re.IGNORECASE)
_TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")
_MAGIC_RE = re.compile(r"__[A-ZÀ-Ýa-zà-ý]+__")
_HEADING_RE = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$", re.MULTILINE)
_LEFTOVER_RE = re.compile(r"\{\{+|\}\}+|\[\[|\]\]|\{\||\|\}|\|")
_EMPTY_PARENS_RE = re.compile(r"\([\s,;:.\-–—]*\)")
_EMPTY_BRACKETS_RE = re.compile(r"\[\s*\]")
_PAREN_SPACE_RE = re.compile(r"\(\s+")
_MULTISPACE_RE = re.compile(r" [ \t\xa0\u2009\u202f]+|[\t\xa0\u2009\u202f][ \t\xa0\u2009\u202f]*")
_SIMPLE_LABEL_LINK_RE = re.compile(r"\[\[[^\[\]|:{}<]*\|([^\[\]|{}]*[^\[\]|{}\s][^\[\]|{}]*)\]\]")
_SIMPLE_LINK_RE = re.compile(r"\[\[([^\[\]|:#_{}<]+)\]\]")
_SPECIAL_CHARS = frozenset("{}[]<>&'|_\n=*#:;!-")
_MULTINEWLINE_RE = re.compile(r"\n{3,}")
_PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")


def _group1(m: re.Match) -> str:
    return m.group(1)


# ------------------------------------------------------------------------------------------ brace scanner
def _template_spans(text: str) -> list[tuple[int, int, int]]:
    """Top-level ``{{...}}`` / ``{{{...}}}`` spans as (start, end, brace count of the opening).

    Brace runs are matched the way MediaWiki's preprocessor does: a closing run pairs with the innermost
    opening run, taking 3 braces when both sides have 3 or more (a parameter) and 2 otherwise.
    An opening with no closing is left as text (the leftover pass removes its braces).
    """
    spans = []
    stack: list[list[int]] = []  # [pos, remaining braces, first opening count]
    for m in _BRACE_TOKEN_RE.finditer(text):
        tok = m.group()
        if tok[0] == "{":
            stack.append([m.start(), len(tok), len(tok)])
            continue
        n = len(tok)
        end = m.start()
        while n >= 2 and stack:
            top = stack[-1]
            take = 3 if (top[1] >= 3 and n >= 3) else 2
            if top[1] < 2:
                stack.pop()
                continue
            top[1] -= take
            n -= take
            end += take
            if top[1] < 2:
                stack.pop()
                if not stack:
                    # the whole opening run (incl. a lone extra brace) up to here is one top-level span
                    spans.append((top[0], end, top[2]))
        # unmatched closing braces are left as text
    return _merge_spans(spans)


def _merge_spans(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    if len(spans) < 2:
        return spans
    spans.sort()
    out = [spans[0]]
    for s in spans[1:]:
        if s[0] < out[-1][1]:
            if s[1] > out[-1][1]:
                out[-1] = (out[-1][0], s[1], out[-1][2])
        else:
            out.append(s)
    return out


def split_params(inner: str) -> list[str]:
    """Split template content on top-level pipes (not inside nested ``{{ }}`` or ``[[ ]]``)."""
    if "|" not in inner:
        return [inner]
    if "{{" not in inner and "[[" not in inner:
        return inner.split("|")
    parts = []
    depth = 0
    start = 0
    for m in _PARAM_TOKEN_RE.finditer(inner):
        c = m.group()
        if c == "|":
            if not depth:
                parts.append(inner[start : m.start()])
                start = m.end()
        elif c[0] == "{" or c[0] == "[":
            depth += 1
        elif depth:
            depth -= 1
    parts.append(inner[start:])
    return parts


def parse_template(markup: str) -> tuple[str, list[str], dict[str, str]]:
    """``{{Nome|a|chave=valor}}`` -> ("Nome", ["a"], {"chave": "valor"}) — raw (uncleaned) values."""
    inner = markup
    if inner.startswith("{{"):
        inner = inner[2:]
    if inner.endswith("}}"):
        inner = inner[:-2]
    parts = split_params(inner)
    name = _norm_name(parts[0])
    positional: list[str] = []
    named: dict[str, str] = {}
    for p in parts[1:]:
        eq = _top_level_eq(p)
        if eq < 0:
            positional.append(p)
        else:
            named[p[:eq].strip()] = p[eq + 1 :]
    return name, positional, named


def _top_level_eq(part: str) -> int:
    eq = part.find("=")
    if eq < 0:
        return -1
    head = part[:eq]
    if "{{" in head or "[[" in head or "<" in head:
        return -1
    return eq


def _norm_name(raw: str) -> str:
    name = raw.strip().replace("_", " ")
    name = _COMMENT_RE.sub("", name).strip()
    low = name.lower()
    for prefix in ("predefinição:", "template:", "predefinicao:", "msg:", "subst:", "safesubst:"):
        if low.startswith(prefix):
            name = name[len(prefix) :].strip()
            low = low[len(prefix) :].strip()
    return re.sub(r"\s+", " ", name)


def _is_infobox_name(name: str) -> bool:
    low = name.lower()
    return low.startswith("info/") or low.startswith("infobox") or low.startswith("info ")


def _inline_template_text(body: str, depth: int) -> str:
    """Visible text of an allow-listed inline template (``body`` without the outer braces), else ""."""
    first = body.split("|", 1)[0]
    if ":" in first:  # parser functions and magic words: {{formatnum:1234}}, {{#if:...}}
        fname, _, arg = first.partition(":")
        if fname.strip().lower() == "formatnum":
            return _clean_inline(arg, depth)
        return ""
    name = _norm_name(first).lower()
    rule = _INLINE_TEMPLATES.get(name)
    if rule is None:
        if name.startswith("lang-") and "|" in body:
            rule = 1
        else:
            return ""
    if rule == 0:
        return ""
    if rule == "dash":
        return " – "
    if rule == "ndash":
        return "–"
    if rule == "mdash":
        return "—"
    _, pos, named = parse_template(body)
    pos = [p for p in pos]
    if rule == "last":
        val = pos[-1] if pos else ""
    elif rule == "unit":
        val = " ".join(p.strip() for p in pos[:2] if p.strip())
    elif rule == "date":
        val = _date_text([p.strip() for p in pos[:3]])
    elif rule == "link":  # {{link|en|Título original|Título local}} -> local title
        val = pos[2] if len(pos) > 2 else pos[1] if len(pos) > 1 else ""
    else:
        idx = int(rule) - 1
        val = pos[idx] if idx < len(pos) else named.get(str(rule), "")
    return _clean_inline(val, depth)


def _date_text(parts: list[str]) -> str:
    d, m, y = (parts + ["", "", ""])[:3]
    if d.isdigit() and m.isdigit() and 1 <= int(m) <= 12 and y.lstrip("-").isdigit():
        return f"{int(d)} de {MONTHS_PT[int(m) - 1]} de {y}"
    if len(d) == 4 and d.isdigit() and m.isdigit() and y.isdigit() and 1 <= int(m) <= 12:  # y|m|d
        return f"{int(y)} de {MONTHS_PT[int(m) - 1]} de {d}"
    return " ".join(p for p in parts if p)


def _clean_inline(val: str, depth: int) -> str:
    """Templates inside an inline template's argument (recursion is bounded by nesting depth)."""
    if "{{" in val and depth < 20:
        val = _replace_templates(val, depth + 1)[0]
    return val


def _replace_templates(text: str, depth: int = 0, want_infobox: bool = False) -> tuple[str, str | None]:
    """Remove templates (keeping allow-listed inline text); return the text and the first infobox markup."""
    if "{{" not in text:
        return text, None
    spans = _template_spans(text)
    if not spans:
        return text, None
    out = []
    pos = 0
    infobox = None
    for start, end, nopen in spans:
        out.append(text[pos:start])
        pos = end
        if (
            nopen >= 3
            and text.startswith("{{{", start)
            and text.endswith("}}}", start, end)
            and not text.startswith("{{{{", start)
        ):
            # {{{param|default}}}: MediaWiki shows the default
            body = text[start + 3 : end - 3]
            if "|" in body:
                default = split_params(body)[1:]
                out.append(_replace_templates("|".join(default), depth + 1)[0])
            continue
        body = text[start + 2 : end - 2]
        if want_infobox and infobox is None:
            head = body[:40].lstrip()
            if head[:4].lower() == "info" and _is_infobox_name(
                _norm_name(split_params(body)[0] if "|" in body else body)
            ):
                infobox = text[start:end]
                out.append("\n")
                continue
        rep = _inline_template_text(body, depth)
        if rep:
            out.append(rep)
    out.append(text[pos:])
    return "".join(out), infobox


# ------------------------------------------------------------------------------------------------ tables
def _remove_tables(text: str) -> str:
    """Remove ``{| ... |}`` tables (nested ones too); an unclosed table runs to the next heading."""
    if "{|" not in text:
        return text
    out = []
    pos = 0
    depth = 0
    start = 0
    for m in _TABLE_TOKEN_RE.finditer(text):
        if m.group().rstrip().endswith("{|"):
            if depth == 0:
                start = m.start()
            depth += 1
        elif depth:
            depth -= 1
            if depth == 0:
                out.append(text[pos:start])
                eol = text.find("\n", m.end())
                pos = len(text) if eol < 0 else eol + 1
    if depth:
        out.append(text[pos:start])
        h = re.compile(r"^=", re.MULTILINE).search(text, start)
        pos = h.start() if h else len(text)
    out.append(text[pos:])
    return "".join(out)


# ------------------------------------------------------------------------------------------------- links
class _LinkContext:
    """File/category namespace names (from siteinfo when known) used when rewriting ``[[...]]``."""

    def __init__(self, file_prefixes: Iterable[str] = (), category_prefixes: Iterable[str] = ()):
        self.file = FILE_PREFIXES | {p.lower() for p in file_prefixes if p}
        self.category = CATEGORY_PREFIXES | {p.lower() for p in category_prefixes if p}


_DEFAULT_CTX = _LinkContext()
_CTX_CACHE: dict[int, _LinkContext] = {}


def _context_for(siteinfo: SiteInfo | None) -> _LinkContext:
    if siteinfo is None:
        return _DEFAULT_CTX
    key = id(siteinfo)
    ctx = _CTX_CACHE.get(key)
    if ctx is None:
        ctx = _LinkContext(siteinfo.names(6) | siteinfo.names(-2), siteinfo.names(14))
        if len(_CTX_CACHE) > 64:
            _CTX_CACHE.clear()
        _CTX_CACHE[key] = ctx
    return ctx


def _replace_links(text: str, ctx: _LinkContext, categories: list[str] | None, depth: int = 0) -> str:
    """``[[alvo|rótulo]]`` -> rótulo; files and interlanguage links dropped; categories collected."""
    if "[[" not in text:
        return text
    out = []
    pos = 0
    stack: list[int] = []
    for m in _LINK_TOKEN_RE.finditer(text):
        if m.group() == "[[":
            stack.append(m.start())
            continue
        if not stack:
            continue
        start = stack.pop()
        if stack:
            continue
        if start < pos:
            continue
        out.append(text[pos:start])
        out.append(_link_text(text[start + 2 : m.start()], ctx, categories, depth))
        pos = m.end()
    if stack and stack[0] >= pos:
        # an unclosed [[: a file or category link is dropped to the end of its line, a plain one kept as text
        start = stack[0]
        prefix = (
            text[start + 2 : start + 40].split(":", 1)[0].strip().lower() if ":" in text[start + 2 : start + 40] else ""
        )
        if prefix in ctx.file or prefix in ctx.category:
            out.append(text[pos:start])
            eol = text.find("\n", start)
            pos = len(text) if eol < 0 else eol
    out.append(text[pos:])
    return "".join(out)


def _link_text(inner: str, ctx: _LinkContext, categories: list[str] | None, depth: int) -> str:
    target, bar, label = inner.partition("|")
    t = target.strip()
    leading_colon = t.startswith(":")
    if leading_colon:
        t = t[1:].lstrip()
    if ":" in t:
        prefix = t.split(":", 1)[0].strip().lower()
        if not leading_colon:
            if prefix in ctx.file:
                return ""
            if prefix in ctx.category:
                if categories is not None:
                    name = t.split(":", 1)[1].strip().replace("_", " ")
                    if name and name not in categories:
                        categories.append(name)
                return ""
            if prefix in LANGUAGE_CODES and "[[" not in inner:
                return ""
        elif prefix in ctx.file or prefix in ctx.category:
            t = t.split(":", 1)[1].strip()
    if bar:
        if "[[" in label and depth < 10:
            label = _replace_links(label, ctx, categories, depth + 1)
        if label.strip():
            return label
        # pipe trick: [[Título (desambiguação)|]] -> Título
        t = re.sub(r"\s*\([^)]*\)\s*$", "", t.split(":", 1)[-1] if ":" in t else t)
        return t
    return t.replace("_", " ") if "#" not in t else (t.split("#", 1)[0] or t.split("#", 1)[1])


# -------------------------------------------------------------------------------------- the whole pipeline
def _protect_nowiki(text: str, saved: list[str]) -> str:
    def keep(m: re.Match) -> str:
        content = m.group(1) if m.group(1) is not None else (m.group(2) or "")
        if not content:
            return ""
        saved.append(html.unescape(content))
        return f"\ue000{len(saved) - 1}\ue001"

    return _NOWIKI_RE.sub(keep, text)


def _clean_lines(text: str) -> str:
    """Line-level markup: list markers, rules, stray table rows, magic words, spacing."""
    lines = []
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            lines.append("")
            continue
        c = s[0]
        if c in "*#:;":
            s = s.lstrip("*#:;").strip()
            if not s:
                continue
        elif c == "|" or c == "!":
            continue  # a table row outside a table (broken markup)
        elif c == "-" and s.startswith("----"):
            s = s.lstrip("-").strip()
            if not s:
                lines.append("")
                continue
        lines.append(s)
    return "\n".join(lines)


def _before_links(text: str, saved: list[str], want_infobox: bool = False) -> tuple[str, str | None]:
    """The steps of ``_clean`` before links: comments, ``<nowiki>`` (into ``saved``), dropped tags, templates,
    tables. Shared with :func:`category_links`, so both see the same ``[[Categoria:...]]`` links."""
    if "<!--" in text:
        text = _COMMENT_RE.sub("", text)
    if "<" in text:
        lower = text.lower()
        if "<nowiki" in lower or "<pre" in lower:
            text = _protect_nowiki(text, saved)
        text = _DROP_TAG_RE.sub("", text)
    infobox = None
    if "{{" in text:
        text, infobox = _replace_templates(text, want_infobox=want_infobox)
    if "{|" in text:
        text = _remove_tables(text)
    return text, infobox


def category_links(markup: str, siteinfo: SiteInfo | None = None) -> list[str]:
    """The categories a page's wikitext puts it in (``[[Categoria:Império do Brasil|sort key]]`` ->
    ``"Império do Brasil"``), in order, as written (``_`` -> space); the same list :func:`parse_article` puts in
    ``Article.categories``, without cleaning the rest of the text. Links inside templates, tables, comments,
    ``<nowiki>`` and ``[[:Categoria:X]]`` (a link to the category page) do not count."""
    if "[[" not in markup:
        return []
    ctx = _context_for(siteinfo)
    text, _ = _before_links(markup, [])
    categories: list[str] = []
    if "[[" in text:
        _replace_links(text, ctx, categories)
    return categories


def _clean(
    text: str, ctx: _LinkContext = _DEFAULT_CTX, categories: list[str] | None = None, want_infobox: bool = False
) -> tuple[str, str | None]:
    """Markup -> plain text, keeping ``== heading ==`` lines. Returns (text, infobox markup or None)."""
    saved: list[str] = []
    text, infobox = _before_links(text, saved, want_infobox)
    if "[[" in text:
        # plain article links first, with C-level substitutions; the scanner handles the rest
        text = _SIMPLE_LABEL_LINK_RE.sub(_group1, text)
        text = _SIMPLE_LINK_RE.sub(_group1, text)
        if "[[" in text:
            text = _replace_links(text, ctx, categories)
    if "[" in text:
        text = _EXTLINK_RE.sub(lambda m: m.group(1) or "", text)
    if "<" in text:
        text = _BR_RE.sub("\n", text)
        text = _TAG_RE.sub("", text)
    if "''" in text:
        text = text.replace("'''''", "").replace("'''", "").replace("''", "")
    if "&" in text:
        text = html.unescape(text)
    if "__" in text:
        text = _MAGIC_RE.sub("", text)
    if saved:
        text = _PLACEHOLDER_RE.sub(lambda m: saved[int(m.group(1))], text)
    text = _clean_lines(text)
    if "|" in text or "{{" in text or "}}" in text or "[[" in text or "]]" in text:
        text = _LEFTOVER_RE.sub("", text)
    if "(" in text:
        text = _EMPTY_PARENS_RE.sub("", text)
        text = _PAREN_SPACE_RE.sub("(", text)
    if "[" in text:
        text = _EMPTY_BRACKETS_RE.sub("", text)
    text = _MULTISPACE_RE.sub(" ", text)
    for p in " ,", " .", " ;", " :", " !", " ?", " )", " ]":
        if p in text:
            text = text.replace(p, p[1])
    if "\n " in text or " \n" in text:
        text = "\n".join(line.strip() for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _MULTINEWLINE_RE.sub("\n\n", text)
    return text.strip(), infobox


def clean_wikitext(markup: str) -> str:
    """Wikitext -> plain text (headings become plain title lines)."""
    text, _ = _clean(markup)
    if "=" in text:
        text = _HEADING_RE.sub(lambda m: m.group(2).strip(), text)
    return text


def _clean_value(markup: str, ctx: _LinkContext) -> str:
    """An infobox value: cleaned, line breaks (``<br>``, list items) joined with "; "."""
    if _SPECIAL_CHARS.isdisjoint(markup):
        return " ".join(markup.split()).strip(" ;,")
    text, _ = _clean(markup, ctx)
    if "\n" in text:
        text = "; ".join(s for s in (line.strip() for line in text.split("\n")) if s)
    return text.strip(" ;,")


def parse_infobox(markup: str, ctx: _LinkContext = _DEFAULT_CTX) -> tuple[str, dict[str, str]]:
    """``{{Info/País|capital=[[Brasília]]|...}}`` -> ("País", {"capital": "Brasília", ...})."""
    name, _, named = parse_template(markup)
    low = name.lower()
    if low.startswith("info/"):
        kind = name[5:].strip()
    elif low.startswith("infobox"):
        kind = name[7:].strip(" /_") or name
    else:
        kind = name[4:].strip() if low.startswith("info ") else name
    fields: dict[str, str] = {}
    todo: list[tuple[str, str]] = []
    for key, raw in named.items():
        key = key.strip()
        if not key or INFOBOX_DROP_RE.search(key):
            continue
        if _SPECIAL_CHARS.isdisjoint(raw):  # plain text: no cleaning needed
            value = " ".join(raw.split()).strip(" ;,")
            if value and not _looks_like_file(value):
                fields[key] = value
            continue
        fields[key] = ""  # keeps the template's field order
        todo.append((key, raw))
    if todo:
        # clean every marked-up value in one pass (far fewer calls), then split them apart again
        joined, _ = _clean(_VALUE_SEP.join(raw for _, raw in todo), ctx)
        values = joined.split("\ue002")
        if len(values) != len(todo):  # markup crossed a separator: clean one by one
            values = [_clean(raw, ctx)[0] for _, raw in todo]
        for (key, _), value in zip(todo, values, strict=False):
            value = "; ".join(s for s in (line.strip() for line in value.split("\n")) if s).strip(" ;,")
            fields[key] = value
    return kind, {k: v for k, v in fields.items() if v and not _looks_like_file(v)}


_VALUE_SEP = "\n\ue002\n"
_FILE_VALUE_RE = re.compile(r"^[^\n]{1,200}\.(?:svg|png|jpe?g|gif|tiff?|webp|ogg|ogv|webm|pdf)$", re.IGNORECASE)


def _looks_like_file(value: str) -> bool:
    return bool(_FILE_VALUE_RE.match(value))


def _split_sections(text: str) -> tuple[str, list[Section]]:
    matches = list(_HEADING_RE.finditer(text))
    if not matches:
        return text.strip(), []
    lead = text[: matches[0].start()].strip()
    sections: list[Section] = []
    drop_level = 0  # > 0 while inside a dropped boilerplate section
    for i, m in enumerate(matches):
        level = len(m.group(1))
        title = m.group(2).strip().strip("=").strip()
        body_end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : body_end].strip()
        if drop_level and level > drop_level:
            continue
        drop_level = 0
        if title.casefold() in BOILERPLATE_SECTIONS:
            drop_level = level
            continue
        if not body or not title:
            continue
        sections.append(Section(title=title, level=level, text=body))
    return lead, sections


def article_url(title: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """``https://pt.wikipedia.org/wiki/Revolução_de_1930`` (readable IRI; only URL-breaking chars escaped)."""
    path = title.strip().replace(" ", "_")
    for ch, esc in (("%", "%25"), ("?", "%3F"), ("#", "%23"), ('"', "%22"), ("&", "%26")):
        if ch in path:
            path = path.replace(ch, esc)
    return base_url + path


def parse_article(page: Page, base_url: str = DEFAULT_BASE_URL, siteinfo: SiteInfo | None = None) -> Article:
    """A dump page -> Article (lead, sections without boilerplate, infobox facts, categories, URL)."""
    ctx = _context_for(siteinfo)
    categories: list[str] = []
    text, infobox_markup = _clean(page.text, ctx, categories, want_infobox=True)
    lead, sections = _split_sections(text)
    infobox_type = None
    infobox: dict[str, str] = {}
    if infobox_markup:
        infobox_type, infobox = parse_infobox(infobox_markup, ctx)
    return Article(
        title=page.title,
        page_id=page.id,
        lead=lead,
        sections=sections,
        infobox_type=infobox_type,
        infobox=infobox,
        categories=categories,
        url=article_url(page.title, base_url),
    )
