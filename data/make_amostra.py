#!/usr/bin/env python3
"""Build the embedded sample dump data/ptwiki-amostra-pages-articles.xml.bz2 from data/amostra/*.wiki.

Each page of the sample is one file under data/amostra/: a small header of ``key: value`` lines, a line
``---``, then the page's wikitext exactly as an editor would type it::

    title: Brasil
    id: 1001
    timestamp: 2024-03-18T14:02:11Z
    contributor: Mapinguari
    contributor_id: 41877
    comment: revisão do texto
    ---
    {{Info/País
    ...

Optional header keys: ``minor: yes``, ``ip: 200.147.0.1`` (anonymous edit, instead of contributor/id).
The namespace is taken from the title's prefix (``Categoria:``, ``Predefinição:``...), as MediaWiki does;
a page whose text starts with ``#REDIRECIONAMENTO [[X]]`` (or ``#REDIRECT``) gets ``<redirect title="X" />``.

The output is a MediaWiki export (schema 0.11) like the ones at dumps.wikimedia.org/ptwiki: same siteinfo,
same per-revision fields, text XML-escaped, ``bytes`` and base-36 ``sha1`` computed as MediaWiki does.
Everything is deterministic (ids, timestamps and revision ids come from the headers), so running this
script twice gives byte-identical files.

    python data/make_amostra.py            # rewrite the .bz2
    python data/make_amostra.py --check    # exit 1 if the shipped .bz2 is out of date
"""

from __future__ import annotations

import argparse
import bz2
import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.fileio import UserError, atomic_open, cli  # noqa: E402

SOURCE_DIR = ROOT / "data" / "amostra"
OUTPUT = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"

# <siteinfo> of pt.wikipedia.org (namespace names as the real ptwiki dump lists them).
SITEINFO = {
    "sitename": "Wikipédia",
    "dbname": "ptwiki",
    "base": "https://pt.wikipedia.org/wiki/Wikip%C3%A9dia:P%C3%A1gina_principal",
    "generator": "MediaWiki 1.43.0-wmf.28",
    "case": "first-letter",
}
NAMESPACES: list[tuple[int, str, str]] = [
    (-2, "first-letter", "Média"),
    (-1, "first-letter", "Especial"),
    (0, "first-letter", ""),
    (1, "first-letter", "Discussão"),
    (2, "first-letter", "Usuário(a)"),
    (3, "first-letter", "Usuário(a) Discussão"),
    (4, "first-letter", "Wikipédia"),
    (5, "first-letter", "Wikipédia Discussão"),
    (6, "first-letter", "Ficheiro"),
    (7, "first-letter", "Ficheiro Discussão"),
    (8, "first-letter", "MediaWiki"),
    (9, "first-letter", "MediaWiki Discussão"),
    (10, "first-letter", "Predefinição"),
    (11, "first-letter", "Predefinição Discussão"),
    (12, "first-letter", "Ajuda"),
    (13, "first-letter", "Ajuda Discussão"),
    (14, "first-letter", "Categoria"),
    (15, "first-letter", "Categoria Discussão"),
    (100, "first-letter", "Portal"),
    (101, "first-letter", "Portal Discussão"),
    (102, "first-letter", "Livro"),
    (103, "first-letter", "Livro Discussão"),
    (104, "first-letter", "Anexo"),
    (105, "first-letter", "Anexo Discussão"),
    (710, "first-letter", "TimedText"),
    (711, "first-letter", "TimedText talk"),
    (828, "first-letter", "Módulo"),
    (829, "first-letter", "Módulo Discussão"),
    (1728, "first-letter", "Evento"),
    (1729, "first-letter", "Evento Discussão"),
    (2600, "case-sensitive", "Tópico"),
]
NS_BY_PREFIX = {name: key for key, _, name in NAMESPACES if key > 0}

REDIRECT_RE = re.compile(r"^\s*#(?:REDIRECIONAMENTO|REDIRECT)\s*\[\[([^\]|#]+)", re.IGNORECASE)
REQUIRED = ("title", "id", "timestamp", "comment")


@dataclass
class Page:
    title: str
    ns: int
    id: int
    timestamp: str
    comment: str
    text: str
    contributor: str | None = None
    contributor_id: int | None = None
    ip: str | None = None
    minor: bool = False

    @property
    def redirect(self) -> str | None:
        m = REDIRECT_RE.match(self.text)
        return m.group(1).strip() if m else None

    @property
    def revision_id(self) -> int:
        # Deterministic, increasing with the page id, in the range of ptwiki's current revision ids.
        return 67_000_000 + self.id * 97

    @property
    def parent_id(self) -> int:
        return self.revision_id - 41


def namespace_of(title: str) -> int:
    prefix, sep, _ = title.partition(":")
    return NS_BY_PREFIX.get(prefix, 0) if sep else 0


def sha1_base36(text: str) -> str:
    """MediaWiki's rev_sha1: the SHA-1 of the UTF-8 text in base 36, zero-padded to 31 digits."""
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


def read_page(path: Path) -> Page:
    raw = path.read_text(encoding="utf-8")
    head, sep, body = raw.partition("\n---\n")
    if not sep:
        raise UserError(f"{path}: missing the '---' line that ends the header")
    meta: dict[str, str] = {}
    for lineno, line in enumerate(head.splitlines(), 1):
        key, colon, value = line.partition(":")
        if not colon:
            raise UserError(f"{path}: header line {lineno} is not 'key: value'")
        meta[key.strip()] = value.strip()
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise UserError(f"{path}: header lacks {', '.join(missing)}")
    if "ip" not in meta and not ("contributor" in meta and "contributor_id" in meta):
        raise UserError(f"{path}: header needs contributor + contributor_id, or ip")
    return Page(
        title=meta["title"],
        ns=namespace_of(meta["title"]),
        id=int(meta["id"]),
        timestamp=meta["timestamp"],
        comment=meta["comment"],
        text=body.rstrip("\n"),
        contributor=meta.get("contributor"),
        contributor_id=int(meta["contributor_id"]) if "contributor_id" in meta else None,
        ip=meta.get("ip"),
        minor=meta.get("minor", "").lower() in ("yes", "sim", "true"),
    )


def load_pages(source_dir: Path = SOURCE_DIR) -> list[Page]:
    files = sorted(source_dir.glob("*.wiki"))
    if not files:
        raise UserError(f"{source_dir}: no .wiki files")
    pages = sorted((read_page(f) for f in files), key=lambda p: p.id)
    for attr in ("id", "title"):
        seen: set = set()
        for p in pages:
            if getattr(p, attr) in seen:
                raise UserError(f"{source_dir}: duplicate page {attr} {getattr(p, attr)!r}")
            seen.add(getattr(p, attr))
    return pages


def _text(s: str) -> str:
    # MediaWiki's exporter escapes like htmlspecialchars: & < > and double quotes.
    return escape(s, {'"': "&quot;"})


def page_xml(p: Page) -> str:
    lines = [
        "  <page>",
        f"    <title>{_text(p.title)}</title>",
        f"    <ns>{p.ns}</ns>",
        f"    <id>{p.id}</id>",
    ]
    if p.redirect:
        lines.append(f"    <redirect title={quoteattr(p.redirect)} />")
    lines += [
        "    <revision>",
        f"      <id>{p.revision_id}</id>",
        f"      <parentid>{p.parent_id}</parentid>",
        f"      <timestamp>{p.timestamp}</timestamp>",
        "      <contributor>",
    ]
    if p.ip:
        lines.append(f"        <ip>{_text(p.ip)}</ip>")
    else:
        lines.append(f"        <username>{_text(p.contributor or '')}</username>")
        lines.append(f"        <id>{p.contributor_id}</id>")
    lines.append("      </contributor>")
    if p.minor:
        lines.append("      <minor />")
    sha1 = sha1_base36(p.text)
    nbytes = len(p.text.encode("utf-8"))
    lines += [
        f"      <comment>{_text(p.comment)}</comment>",
        "      <model>wikitext</model>",
        "      <format>text/x-wiki</format>",
        f'      <text bytes="{nbytes}" sha1="{sha1}" xml:space="preserve">{_text(p.text)}</text>',
        f"      <sha1>{sha1}</sha1>",
        "    </revision>",
        "  </page>",
    ]
    return "\n".join(lines) + "\n"


def build_xml(pages: list[Page]) -> str:
    ns_lines = []
    for key, case, name in NAMESPACES:
        if name:
            ns_lines.append(f'      <namespace key="{key}" case="{case}">{_text(name)}</namespace>')
        else:
            ns_lines.append(f'      <namespace key="{key}" case="{case}" />')
    head = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.mediawiki.org/xml/export-0.11/ '
        'http://www.mediawiki.org/xml/export-0.11.xsd" version="0.11" xml:lang="pt">\n'
        "  <siteinfo>\n"
        + "".join(f"    <{k}>{_text(v)}</{k}>\n" for k, v in SITEINFO.items())
        + "    <namespaces>\n"
        + "\n".join(ns_lines)
        + "\n    </namespaces>\n"
        "  </siteinfo>\n"
    )
    return head + "".join(page_xml(p) for p in pages) + "</mediawiki>\n"


def build_bz2(source_dir: Path = SOURCE_DIR) -> bytes:
    """The compressed dump for the pages under ``source_dir`` (deterministic)."""
    return bz2.compress(build_xml(load_pages(source_dir)).encode("utf-8"), compresslevel=9)


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SOURCE_DIR, help="folder of .wiki pages")
    ap.add_argument("--output", type=Path, default=OUTPUT, help="the .xml.bz2 to write")
    ap.add_argument("--check", action="store_true", help="only compare with --output; exit 1 if different")
    args = ap.parse_args(argv)

    pages = load_pages(args.source)
    data = bz2.compress(build_xml(pages).encode("utf-8"), compresslevel=9)
    if args.check:
        if not args.output.exists() or args.output.read_bytes() != data:
            print(f"{args.output}: out of date; run python data/make_amostra.py", file=sys.stderr)
            return 1
        print(f"{args.output}: up to date ({len(pages)} pages)")
        return 0
    with atomic_open(args.output, "wb") as f:
        f.write(data)
    args.output.chmod(0o644)  # mkstemp creates 0600 files
    n_articles = sum(1 for p in pages if p.ns == 0 and not p.redirect)
    print(f"{args.output}: {len(pages)} pages ({n_articles} articles), {len(data):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
