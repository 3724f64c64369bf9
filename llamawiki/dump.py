"""The one streaming reader of MediaWiki XML dumps (``pages-articles`` exports).

Reads ``.xml``, ``.xml.bz2`` (including multistream files, whose bzip2 streams are simply concatenated) and
``.xml.gz`` with bounded memory: the file is fed to expat in 1 MiB chunks and every ``<page>`` element is freed
as soon as it has been turned into a :class:`Page`.

Namespaces come from the dump's ``<siteinfo>`` (never hard-coded); old exports without ``<ns>`` get the
namespace from the title prefix. Redirects (``<redirect/>`` or a ``#REDIRECT``-like magic word in any of the
usual languages) and disambiguation pages are skipped by default, and only namespace 0 is read.

Damaged input raises :class:`DumpError` (or :class:`DumpTruncated` when the file was cut) with one line naming
the file, the problem and where it stopped — but only after every complete page before the damage has been
yielded. With ``allow_truncated=True`` a cut file ends the iteration quietly; the fact is recorded in
:class:`DumpStats` (``stats.truncated``, ``stats.error``) and logged as a warning.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import html
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.parsers import expat

from .pages import CANONICAL_NAMESPACES, DEFAULT_BASE_URL, DumpError, Page, SiteInfo  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes of decompressed XML fed to the parser at a time

__all__ = [
    "Page",
    "SiteInfo",
    "DumpStats",
    "DumpError",
    "DumpTruncated",
    "read_siteinfo",
    "iter_pages",
    "iter_articles",
    "map_pages",
    "is_redirect_text",
    "is_disambiguation",
    "find_index",
]


class DumpTruncated(DumpError):
    """The dump ends in the middle (cut download): ``pages_read`` complete pages came before the damage."""


@dataclass
class DumpStats:
    """Live counters of one pass over a dump (pass one to :func:`iter_pages` to watch progress).

    ``bytes_read`` counts bytes of the file on disk (compressed bytes for ``.bz2``), so it can be compared
    with ``total_bytes`` for a progress bar; ``xml_bytes`` counts decompressed XML.
    """

    path: str = ""
    total_bytes: int = 0
    bytes_read: int = 0
    xml_bytes: int = 0
    pages: int = 0  # complete <page> elements read (all namespaces)
    yielded: int = 0  # pages that passed the filters
    redirects: int = 0
    disambiguations: int = 0
    other_namespaces: int = 0
    filtered: int = 0  # pages the ``keep`` predicate left out (e.g. outside a category tree)
    last_title: str = ""
    truncated: bool = False
    error: DumpError | None = None


# ------------------------------------------------------------------------------ redirects, disambiguation
# Redirect magic words of the larger wikis (MediaWiki's MessagesXx.php); matched case-insensitively.
REDIRECT_WORDS = (
    "REDIRECT",
    "REDIRECIONAMENTO",
    "REDIRECCIONAMENTO",
    "REDIRECCIÓN",
    "REDIRECCION",
    "REDIRECTION",
    "REDIRECTION",
    "WEITERLEITUNG",
    "RINVIA",
    "RINVIO",
    "DOORVERWIJZING",
    "PRZEKIERUJ",
    "PATRZ",
    "ПЕРЕНАПРАВЛЕНИЕ",
    "ПЕРЕНАПР",
    "YÖNLENDİR",
    "YÖNLENDİRME",
    "OMDIRIGERING",
    "UUDELLEENOHJAUS",
    "ÁTIRÁNYÍTÁS",
    "PŘESMĚRUJ",
    "REDIRECIONA",
    "DIRECCIÓN",
    "تحويل",
    "הפניה",
    "転送",
    "重定向",
)
_REDIRECT_RE = re.compile(
    r"^\s*#\s*(?:" + "|".join(re.escape(w) for w in dict.fromkeys(REDIRECT_WORDS)) + r")\s*:?\s*\[\[([^\]|#]*)",
    re.IGNORECASE,
)

DISAMBIGUATION_TEMPLATES = (
    "desambiguação",
    "desambiguacao",
    "desambig",
    "dab",
    "disambig",
    "disambiguation",
    "dis",
    "hndis",
    "geodis",
    "desambiguação de nomes",
    "homonimia",
    "desambiguación",
    "begriffsklärung",
)
_DISAMBIG_RE = re.compile(
    r"\{\{\s*(?:predefinição:|template:)?\s*(?:"
    + "|".join(re.escape(t) for t in DISAMBIGUATION_TEMPLATES)
    + r")\s*(?:\||\}\})",
    re.IGNORECASE,
)
_DISAMBIG_TITLE_RE = re.compile(r"\((?:desambiguação|desambiguacao|disambiguation|desambiguación)\)\s*$", re.I)


def is_redirect_text(text: str) -> str | None:
    """The target if ``text`` starts with a redirect magic word (``#REDIRECIONAMENTO [[X]]``), else None."""
    if not text or "#" not in text[:64]:
        return None
    m = _REDIRECT_RE.match(text)
    return m.group(1).strip() if m else None


def is_disambiguation(title: str, text: str) -> bool:
    """True for disambiguation pages: a ``{{Desambiguação}}``-like template or a ``(desambiguação)`` title."""
    if "(" in title and _DISAMBIG_TITLE_RE.search(title):
        return True
    if "__" in text and ("__DISAMBIG__" in text or "__DESAMBIGUAÇÃO__" in text):
        return True
    return _DISAMBIG_RE.search(text) is not None


# ------------------------------------------------------------------------------------------ opening files
class _Source:
    """An opened dump: a binary stream of XML plus a way to know how far into the file we are."""

    def __init__(self, path: Path):
        self.path = path
        self._pending: BaseException | None = None
        if not path.exists():
            raise DumpError(f"{path}: file not found")
        if path.is_dir():
            raise DumpError(f"{path}: is a directory, not a dump file")
        try:
            self.size = path.stat().st_size
            self.raw = open(path, "rb")
        except OSError as e:
            raise DumpError(f"{path}: cannot open ({e.strerror or e})") from None
        if self.size == 0:
            self.raw.close()
            raise DumpError(f"{path}: file is empty")
        magic = self.raw.read(4)
        self.raw.seek(0)
        name = path.name.lower()
        if magic[:3] == b"BZh":
            self.kind = "bz2"
            self.stream: Any = bz2.BZ2File(self.raw)
        elif magic[:2] == b"\x1f\x8b":
            self.kind = "gzip"
            self.stream = gzip.GzipFile(fileobj=self.raw)
        elif name.endswith(".bz2"):
            self.raw.close()
            raise DumpError(f"{path}: named .bz2 but is not bzip2-compressed (corrupt or wrong file)")
        elif name.endswith((".gz", ".gzip")):
            self.raw.close()
            raise DumpError(f"{path}: named .gz but is not gzip-compressed (corrupt or wrong file)")
        elif name.endswith((".7z", ".zst", ".xz")):
            self.raw.close()
            raise DumpError(f"{path}: {path.suffix} dumps are not supported; use the .xml.bz2 file")
        else:
            self.kind = "xml"
            self.stream = self.raw

    def read(self, n: int) -> bytes:
        """Up to ``n`` decompressed bytes. A decompression error is raised only once every byte decoded
        before it has been returned (``read`` of a buffered stream would drop them with the error)."""
        if self.kind == "xml":
            return self.stream.read(n)
        if self._pending is not None:
            e, self._pending = self._pending, None
            raise e
        parts = []
        got = 0
        while got < n:
            try:
                d = self.stream.read1(n - got)
            except (EOFError, OSError, ValueError) as e:
                if not parts:
                    raise
                self._pending = e
                break
            if not d:
                break
            parts.append(d)
            got += len(d)
        return b"".join(parts)

    @property
    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.raw.close()


# --------------------------------------------------------------------------------------------- the reader
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


class _Batch:
    """Raw XML of consecutive complete ``<page>`` elements, with where it starts in the dump."""

    __slots__ = ("data", "count", "line", "offset", "index")

    def __init__(self, data: bytes, count: int, line: int, offset: int, index: int):
        self.data = data  # b"<page>...</page> ... <page>...</page>"
        self.count = count  # number of </page> in data
        self.line = line  # 1-based XML line where data starts
        self.offset = offset  # XML byte offset where data starts
        self.index = index  # number of pages before this batch


class _Problem:
    """A page of a batch could not be parsed: what, and where (relative to the batch)."""

    def __init__(self, problem: str, pages_ok: int, line: int | None, byte: int | None):
        self.problem, self.pages_ok, self.line, self.byte = problem, pages_ok, line, byte


class _Reader:
    """One streaming pass over a dump.

    The decompressed XML is cut at ``</page>`` boundaries into batches of complete pages (byte search, no
    parsing); ``<siteinfo>`` is parsed from the head. Batches are parsed by :func:`_parse_batch`, here or in a
    worker process, so the reading process only decompresses and cuts. Memory: one chunk plus one batch.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        stats: DumpStats | None = None,
        progress: Callable[[DumpStats], Any] | None = None,
        chunk: int = CHUNK,
        batch_bytes: int = 1 << 19,
    ):
        self.path = Path(path)
        self.stats = stats if stats is not None else DumpStats()
        self.stats.path = str(self.path)
        self.progress = progress
        self.chunk = chunk
        self.batch_bytes = batch_bytes
        self.siteinfo: SiteInfo | None = None
        self.prefix = b""  # "<?xml ...?><mediawiki xmlns=...>" to wrap batches with (no newline)
        self._src = _Source(self.path)
        self.stats.total_bytes = self._src.size

    # ------------------------------------------------------------------------------------ error messages
    def where(self, line: int | None = None, byte: int | None = None) -> str:
        st = self.stats
        parts = [f"after {st.pages} complete page(s)"]
        if st.last_title:
            parts.append(f"last complete page {st.last_title!r}")
        if line is not None:
            parts.append(f"XML line {line:,}")
        if byte is not None:
            parts.append(f"XML byte {byte:,}")
        elif line is None:
            parts.append(f"{st.xml_bytes:,} bytes of XML read")
        if self._src.kind != "xml":
            parts.append(f"{st.bytes_read:,} of {st.total_bytes:,} compressed bytes")
        return ", ".join(parts)

    def error(
        self, problem: str, line: int | None = None, byte: int | None = None, cls: type[DumpError] = DumpError
    ) -> DumpError:
        where = self.where(line, byte)
        err = cls(f"{self.path}: {problem}; stopped {where}", self.stats.pages, where)
        err.parts = (problem, line, byte, cls)  # to re-word it once the consumer has counted every page
        return err

    def batch_error(self, batch: _Batch, p: _Problem) -> DumpError:
        """Turn a worker's _Problem into the DumpError (stats must already count the pages before it)."""
        line = batch.line + p.line - 1 if p.line is not None else None
        byte = batch.offset + p.byte if p.byte is not None else None
        return self.error(p.problem, line, byte)

    # ------------------------------------------------------------------------------------------- reading
    def _read_chunk(self) -> bytes:
        try:
            data = self._src.read(self.chunk)
        except EOFError as e:  # bz2/gzip: "Compressed file ended before the end-of-stream marker was reached"
            self.stats.bytes_read = self._src.position
            raise self.error(f"compressed file is truncated ({e})", cls=DumpTruncated) from None
        except (OSError, ValueError) as e:  # "Invalid data stream", bad CRC, not a gzipped file...
            self.stats.bytes_read = self._src.position
            msg = str(e) or type(e).__name__
            if self.stats.xml_bytes == 0:
                raise DumpError(f"{self.path}: not a readable {self._src.kind} file ({msg})") from None
            raise self.error(f"corrupt {self._src.kind} data ({msg})") from None
        self.stats.bytes_read = self._src.position
        self.stats.xml_bytes += len(data)
        return data

    def _sniff(self, head: bytes) -> None:
        """Reject non-XML and non-dump XML from the first chunk."""
        text = head[:65536].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
        m = _ROOT_RE.match(text)
        if m is None:
            if text.startswith("<"):
                raise DumpError(f"{self.path}: not a MediaWiki XML dump (no root element found)")
            raise DumpError(f"{self.path}: not an XML file (expected a MediaWiki dump, found {text[:20]!r}...)")
        if m.group(1).split(":")[-1] != "mediawiki":
            raise DumpError(f"{self.path}: not a MediaWiki dump (root element <{m.group(1)}>, expected <mediawiki>)")

    def _parse_head(self, head: bytes) -> None:
        """``<?xml?>``, ``<mediawiki ...>`` and ``<siteinfo>`` (everything before the first page)."""
        m = re.search(rb"<mediawiki\b[^>]*>", head)
        if m is None:
            raise DumpError(f"{self.path}: not a MediaWiki dump (no <mediawiki> element)")
        decl = re.match(rb"\s*(?:\xef\xbb\xbf)?(<\?xml[^>]*\?>)", head)
        self.prefix = ((decl.group(1) if decl else b"") + m.group()).replace(b"\n", b" ").replace(b"\r", b" ")
        root_tag = m.group()
        if root_tag.endswith(b"/>"):
            return
        parser = ET.XMLPullParser(events=("end",))
        try:
            parser.feed(head)
            for _, elem in parser.read_events():
                if _local(elem.tag) == "siteinfo":
                    schema = elem.tag[1:].split("}")[0] if elem.tag[:1] == "{" else ""
                    self.siteinfo = _make_siteinfo(elem, schema)
        except ET.ParseError as e:
            line = e.position[0] if getattr(e, "position", None) else None
            bad = _find_bad_utf8(head) if "not well-formed" in str(e) or "invalid token" in str(e) else None
            if bad is not None:
                raise self.error(f"invalid UTF-8 byte 0x{bad[1]:02x} (bad encoding)", line, bad[0]) from None
            if "unknown encoding" in str(e):
                raise self.error(f"unknown character encoding declared in the XML header ({e})", line) from None
            raise self.error(f"malformed XML before the first page ({e})", line) from None
        except LookupError as e:  # pyexpat: an encoding Python does not know
            raise DumpError(f"{self.path}: unknown character encoding declared in the XML header ({e})") from None

    def batches(self) -> Iterator[_Batch]:
        """Batches of complete pages; raises DumpTruncated / DumpError at the end or on damage."""
        st = self.stats
        buf = b""
        line = 1
        offset = 0  # XML offset of buf[0]
        started = False
        index = 0
        try:
            while True:
                data = self._read_chunk()
                if not started:
                    if not data:
                        raise DumpError(
                            f"{self.path}: file is empty"
                            + (" (no XML after decompression)" if self._src.kind != "xml" else "")
                        )
                    if not buf:
                        self._sniff(data)
                    buf += data
                    p = buf.find(b"<page>")
                    if p < 0:
                        p = buf.find(b"<page ")
                    if p < 0:
                        if data and len(buf) < (64 << 20):
                            continue
                        if data:
                            raise self.error("no <page> in the first 64 MB: not a pages dump")
                        p = len(buf)  # a dump with no pages at all
                    head, buf = buf[:p], buf[p:]
                    self._parse_head(head)
                    started = True
                    line += head.count(b"\n")
                    offset += len(head)
                    if not data:
                        break
                elif data:
                    buf += data
                cut = buf.rfind(b"</page>")
                # emit batches of ~batch_bytes ending at a </page>
                start = 0
                while cut >= 0 and cut + 7 - start > 0:
                    end = min(cut + 7, len(buf))
                    if end - start > self.batch_bytes:
                        e2 = buf.find(b"</page>", start + self.batch_bytes)
                        if 0 <= e2 < cut:
                            end = e2 + 7
                    piece = buf[start:end]
                    n = piece.count(b"</page>")
                    if n == 0:
                        break
                    yield _Batch(piece, n, line, offset + start, index)
                    index += n
                    line += piece.count(b"\n")
                    start = end
                    if end >= cut + 7:
                        break
                if start:
                    offset += start
                    buf = buf[start:]
                if self.progress is not None:
                    self.progress(st)
                if not data:
                    break
            # end of input: what is left must be the closing </mediawiki>
            tail = buf.strip()
            if started and not tail.endswith(b"</mediawiki>") and not self.prefix.endswith(b"/>"):
                pos = tail.find(b"<page")
                if pos >= 0:
                    line_cut = line + buf[: buf.find(b"<page")].count(b"\n")
                    raise self.error("XML ends in the middle of a page (file cut?)", line_cut, cls=DumpTruncated)
                raise self.error("XML ends before </mediawiki> (file cut?)", cls=DumpTruncated)
            st.bytes_read = st.total_bytes
        finally:
            self._src.close()


def _int_or(text: str | None, default: int | None) -> int | None:
    try:
        return int(text or 0)
    except ValueError:
        return default


def _local_name(tag: str) -> str:
    """``{http://www.mediawiki.org/xml/export-0.11/}title`` -> ``title``."""
    return tag[tag.rfind("}") + 1 :]


def _child_texts(elem: ET.Element) -> dict[str, str | None]:
    """The text of each direct child, by local tag name (the last one wins)."""
    return {_local_name(child.tag): child.text for child in elem}


def _make_page(elem: ET.Element, siteinfo: SiteInfo | None) -> Page:
    fields: dict[str, str | None] = {}
    rev: dict[str, str | None] = {}
    redirect = None
    for child in elem:  # one pass over the page's children (the hot path of every stage)
        tag = _local_name(child.tag)
        if tag == "revision":  # the last revision wins (full-history dumps)
            rev = _child_texts(child)
        elif tag == "redirect":
            redirect = child.get("title", "") or ""
        else:
            fields[tag] = child.text
    title = fields.get("title") or ""
    ns = _int_or(fields["ns"], None) if "ns" in fields else None
    pid = _int_or(fields.get("id"), 0)
    text = rev.get("text") or ""
    rev_id = _int_or(rev.get("id"), None)
    if ns is None:
        ns = (siteinfo or SiteInfo()).namespace_of(title)
    return Page(id=pid, title=title, ns=ns, text=text, redirect=redirect, revision_id=rev_id)


def _parse_xml(prefix: bytes, data: bytes) -> ET.Element:
    return ET.fromstring(prefix + data + b"</mediawiki>")


def _parse_fast(prefix: bytes, data: bytes, siteinfo: SiteInfo | None) -> list[Page]:
    """The pages of a well-formed batch, straight from expat events (about twice as fast as building an
    ElementTree); any problem raises, and the caller falls back to the careful path."""
    pages: list[Page] = []
    buf: list[str] = []
    cur: dict[str, Any] = {}
    depth = 0
    declared: list[Any] = [None]  # bytes="N" of the <text> being read

    def start(name: str, attrs: dict) -> None:
        nonlocal depth
        depth += 1
        if depth == 2:
            cur.clear()
        elif depth == 3 and name == "redirect":
            cur["redirect"] = attrs.get("title", "")
        elif depth == 4 and name == "text":
            declared[0] = attrs
        buf.clear()

    def end(name: str) -> None:
        nonlocal depth
        d = depth
        depth -= 1
        if d == 3:
            if name == "title" or name == "ns" or name == "id":
                cur[name] = "".join(buf)
        elif d == 4:
            if name == "text":
                text = cur["text"] = "".join(buf)
                if _text_bytes_mismatch(declared[0], text) is not None:
                    raise _Damaged  # the careful path says where
            elif name == "id":
                cur["rev"] = "".join(buf)
        elif d == 2:
            title = cur.get("title", "")
            ns = cur.get("ns")
            rev = cur.get("rev")
            pages.append(
                Page(
                    id=int(cur.get("id") or 0),
                    title=title,
                    ns=int(ns) if ns is not None else (siteinfo or SiteInfo()).namespace_of(title),
                    text=cur.get("text", ""),
                    redirect=cur.get("redirect"),
                    revision_id=int(rev) if rev else None,
                )
            )
        buf.clear()

    p = expat.ParserCreate()
    p.buffer_text = True
    p.buffer_size = 1 << 20
    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = buf.append
    p.Parse(prefix + data + b"</mediawiki>", True)
    return pages


def _parse_batch(batch: _Batch, prefix: bytes, siteinfo: SiteInfo | None) -> tuple[list[Page], _Problem | None]:
    """The pages of a batch; on damage, the pages before it and a _Problem saying what and where."""
    try:
        pages = _parse_fast(prefix, batch.data, siteinfo)
        if len(pages) == batch.count:
            return pages, None
    except Exception:  # noqa: BLE001 - the careful path below says what is wrong
        pass
    try:
        root = _parse_xml(prefix, batch.data)
        pages = [_make_page(el, siteinfo) for el in root]
        if len(pages) == batch.count and not any(_page_bytes_problem(el) for el in root):
            return pages, None
    except ET.ParseError:
        pass
    # slow path: one page at a time, to keep every page before the damage
    pages = []
    data = batch.data
    start = 0
    for _ in range(batch.count):
        end = data.find(b"</page>", start) + 7
        piece = data[start:end]
        try:
            root = _parse_xml(prefix, piece)
            if len(root) != 1:
                raise ET.ParseError("expected one <page> element")
            page = _make_page(root[0], siteinfo)
        except ET.ParseError as e:
            pos = getattr(e, "position", None)
            line = data[:start].count(b"\n") + (pos[0] if pos else 1)
            nested = _nested_page(piece)
            if nested is not None:
                title, at = nested
                line = data[: start + at].count(b"\n") + 1
                return pages, _Problem(
                    f"a <page> opens inside the page {title!r}: the data between is missing "
                    "(a lost multistream stream or a damaged file)",
                    len(pages),
                    line,
                    start + at,
                )
            msg = str(e)
            bad = _find_bad_utf8(piece) if ("not well-formed" in msg or "invalid token" in msg) else None
            if bad is not None:
                off = start + bad[0]
                line = data[:off].count(b"\n") + 1
                return pages, _Problem(f"invalid UTF-8 byte 0x{bad[1]:02x} (bad encoding)", len(pages), line, off)
            return pages, _Problem(f"malformed XML ({msg.split(':')[0]})", len(pages), line, None)
        bad = _page_bytes_problem(root[0])
        if bad is not None:
            at = piece.find(b"<text")
            line = data[: start + max(at, 0)].count(b"\n") + 1
            return pages, _Problem(
                f"the page {page.title!r} (id {page.id}) is damaged: {bad}", len(pages), line, start + max(at, 0)
            )
        pages.append(page)
        start = end
    return pages, None


class _Damaged(Exception):
    """Raised inside the fast parser: a page's text does not have the length its ``bytes`` attribute says."""


def _text_bytes_mismatch(attrs: Any, text: str) -> tuple[int, int] | None:
    """(declared, actual) when ``<text bytes="N">`` is not the UTF-8 length of ``text``, else None.

    Not checked: a text without ``bytes``, and an empty ``<text>`` that says why it is empty (``deleted``: a
    suppressed revision; ``id`` or ``location``: a stub dump, whose texts live elsewhere)."""
    if not attrs:
        return None
    declared = attrs.get("bytes")
    if declared is None or not declared.isdigit():
        return None
    n = int(declared)
    if len(text) == n and text.isascii():
        return None
    actual = len(text.encode("utf-8", "surrogatepass"))
    if actual == n or (not text and ("deleted" in attrs or "id" in attrs or "location" in attrs)):
        return None
    return n, actual


def _page_bytes_problem(page: ET.Element) -> str | None:
    """What is wrong with a parsed ``<page>``'s ``<text bytes="N">`` (every revision), or None."""
    for child in page:
        if _local_name(child.tag) != "revision":
            continue
        for el in child:
            if _local_name(el.tag) == "text":
                bad = _text_bytes_mismatch(el.attrib, el.text or "")
                if bad is not None:
                    return (
                        f'<text bytes="{bad[0]}"> but its text is {bad[1]} bytes long (data spliced from '
                        "another page: a lost multistream stream or a damaged file)"
                    )
    return None


_PAGE_OPEN_RE = re.compile(rb"<page[\s>]")
_TITLE_RE = re.compile(rb"<title>([^<]*)</title>")


def _nested_page(piece: bytes) -> tuple[str, int] | None:
    """(title of the outer page, offset of the inner ``<page>``) when a ``<page>`` opens inside another."""
    first = _PAGE_OPEN_RE.search(piece)
    if first is None:
        return None
    second = _PAGE_OPEN_RE.search(piece, first.end())
    if second is None:
        return None
    m = _TITLE_RE.search(piece, first.end(), second.start())
    title = m.group(1).decode("utf-8", "replace") if m else "?"
    return html.unescape(title), second.start()


_ROOT_RE = re.compile(
    r"(?:<\?.*?\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)\s*)*<([A-Za-z_][\w:.-]*)", re.DOTALL
)


def _find_bad_utf8(data: bytes) -> tuple[int, int] | None:
    """Offset and value of the first byte of ``data`` that is not valid UTF-8 (None if all valid)."""
    dec = codecs.getincrementaldecoder("utf-8")()
    try:
        dec.decode(data, final=False)
    except UnicodeDecodeError as e:
        return e.start, data[e.start]
    return None


def _make_siteinfo(elem: ET.Element, schema: str = "") -> SiteInfo:
    info = SiteInfo(schema=schema)
    for child in elem:
        tag = _local(child.tag)
        if tag in ("sitename", "dbname", "base", "generator", "case"):
            setattr(info, tag, (child.text or "").strip())
        elif tag == "namespaces":
            for ns in child:
                try:
                    key = int(ns.get("key", ""))
                except ValueError:
                    continue
                info.namespaces[key] = (ns.text or "").strip()
    return info


# ------------------------------------------------------------------------------------------------ filters
class _Filter:
    """The page filters of iter_pages; returns why a page is skipped ("ns", "redirect", "disambiguation",
    "keep")."""

    def __init__(
        self,
        wanted: frozenset[int] | None,
        skip_redirects: bool,
        skip_disambiguation: bool,
        keep: Callable[[Page], bool] | None = None,
    ):
        self.wanted, self.skip_redirects, self.skip_disambiguation = wanted, skip_redirects, skip_disambiguation
        self.keep = keep

    def __call__(self, page: Page) -> str | None:
        if self.wanted is not None and page.ns not in self.wanted:
            return "ns"
        if self.skip_redirects:
            if page.redirect is not None:
                return "redirect"
            target = is_redirect_text(page.text)
            if target is not None:
                page.redirect = target
                return "redirect"
        if self.skip_disambiguation and is_disambiguation(page.title, page.text):
            return "disambiguation"
        if self.keep is not None and not self.keep(page):
            return "keep"
        return None


def _count_skip(stats: DumpStats, why: str) -> None:
    if why == "ns":
        stats.other_namespaces += 1
    elif why == "redirect":
        stats.redirects += 1
    elif why == "keep":
        stats.filtered += 1
    else:
        stats.disambiguations += 1


# --------------------------------------------------------------------------------------------- public API
def read_siteinfo(path: str | os.PathLike[str]) -> SiteInfo:
    """The dump's ``<siteinfo>`` (reads only the head of the file).

    A dump without ``<siteinfo>`` (very old exports) gets an empty SiteInfo with the canonical namespaces.
    """
    reader = _Reader(path, chunk=1 << 16)
    it = reader.batches()
    try:
        next(it, None)
    finally:
        it.close()
    return reader.siteinfo or SiteInfo()


# ------------------------------------------------------------------------------------ the multistream index
_DUMP_EXTS = (".xml.bz2", ".xml.gz", ".xml", ".bz2", ".gz")


def find_index(path: str | os.PathLike[str]) -> Path | None:
    """The Wikimedia multistream index beside a dump, or None.

    ``X-multistream.xml.bz2`` -> ``X-multistream-index.txt.bz2`` (or ``.txt``); a dump without ``-multistream``
    in its name (``X.xml.bz2``, or the decompressed ``X.xml``) also takes ``X-multistream-index.txt.bz2``: the
    multistream file and the plain one of the same date hold the same pages in the same order."""
    path = Path(path)
    name = path.name
    for ext in _DUMP_EXTS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    stems = [name] if name.endswith("-multistream") else [name, name + "-multistream"]
    for stem in stems:
        for suffix in ("-index.txt.bz2", "-index.txt"):
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
    return None


class _IndexCheck:
    """Every page the multistream index lists (``offset:page_id:title``, in dump order) must come, in order.

    The index is read line by line alongside the dump (bounded memory); a page missing from the dump (a lost
    stream, or a cut inside a page that spliced two pages together) or one the index does not list raises."""

    def __init__(self, path: Path, reader: _Reader):
        self.path, self.reader = path, reader
        self.line = 0
        try:
            with open(path, "rb") as f:
                magic = f.read(3)
            raw = bz2.open(path, "rb") if magic == b"BZh" else open(path, "rb")
        except OSError as e:
            raise DumpError(f"{path}: cannot open the multistream index ({e.strerror or e})") from None
        self.file = raw
        self.lines = iter(raw)

    def _next(self) -> tuple[int, int, str] | None:
        try:
            while True:
                raw = next(self.lines, None)
                if raw is None:
                    return None
                self.line += 1
                if raw.strip():
                    break
        except (OSError, EOFError, ValueError) as e:
            raise self.reader.error(f"cannot read the multistream index {self.path} ({e})") from None
        head = raw.rstrip(b"\r\n").split(b":", 2)
        if len(head) < 3 or not head[0].isdigit() or not head[1].isdigit():
            raise self.reader.error(
                f"{self.path}: line {self.line}: expected offset:page_id:title in the "
                f"multistream index, got {raw[:60]!r}"
            )
        return int(head[0]), int(head[1]), head[2].decode("utf-8", "replace")

    def expect(self, pid: int, title: str) -> None:
        want = self._next()
        if want is not None and want[1] == pid:
            return
        if want is None:
            raise self.reader.error(
                f"page {title!r} (id {pid}) is not in the multistream index {self.path}, "
                "which ends before it: is the index this dump's?"
            )
        offset, want_id, want_title = want
        if want_id < pid:
            raise self.reader.error(
                f"page {want_title!r} (id {want_id}, bzip2 stream at byte {offset:,}) listed in the multistream "
                f"index is missing: the dump goes on with {title!r} (id {pid}); a stream is lost or the file is "
                "damaged"
            )
        raise self.reader.error(
            f"page {title!r} (id {pid}) is not in the multistream index {self.path} "
            f"(line {self.line} lists id {want_id} {want_title!r}): is the index this dump's?"
        )

    def finish(self) -> None:
        """At the end of the dump: the index must list nothing more."""
        want = self._next()
        if want is not None:
            offset, want_id, want_title = want
            raise self.reader.error(
                f"page {want_title!r} (id {want_id}, bzip2 stream at byte {offset:,}) listed in the multistream "
                f"index {self.path.name} is missing: the dump ends before it (its last streams are lost)"
            )

    def close(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass


_ARTICLES = "article"  # fn sentinel: wikitext.parse_article with the dump's siteinfo
_W: dict[str, Any] = {}  # per-process worker state (set by _init_worker)


def _apply(page: Page, fn: Any, info: SiteInfo) -> Any:
    if fn is None:
        return page
    if fn is _ARTICLES or fn == _ARTICLES:
        from .wikitext import parse_article

        return parse_article(page, base_url=info.base_url, siteinfo=info)
    return fn(page)


def _work(data: bytes, meta: tuple, fn: Any, prefix: bytes, info: SiteInfo, flt: _Filter) -> tuple[list, Any]:
    """Parse, filter and process one batch: ([(skip_reason|None, title, page id, value)], problem|None)."""
    pages, problem = _parse_batch(_Batch(data, *meta), prefix, info)
    items = []
    for page in pages:
        why = flt(page)
        items.append((why, page.title, page.id, None if why else _apply(page, fn, info)))
    return items, problem


def _init_worker(fn: Any, prefix: bytes, info: SiteInfo, flt: _Filter) -> None:
    import signal

    # a worker ends as a pool worker does: the script's SIGTERM handler (fileio.cli) is inherited by the fork,
    # but the pool stops its workers with SIGTERM, which must simply end them
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _W.update(fn=fn, prefix=prefix, info=info, flt=flt)


def _work_in_pool(task: tuple[bytes, tuple]) -> tuple[list, Any]:
    return _work(task[0], task[1], _W["fn"], _W["prefix"], _W["info"], _W["flt"])


def _run(
    path: str | os.PathLike[str],
    namespaces: Iterable[int | str] | None = (0,),
    skip_redirects: bool = True,
    skip_disambiguation: bool = True,
    allow_truncated: bool = False,
    stats: DumpStats | None = None,
    progress: Callable[[DumpStats], Any] | None = None,
    limit: int | None = None,
    on_siteinfo: Callable[[SiteInfo], Any] | None = None,
    workers: int = 1,
    fn: Any = None,
    batch_bytes: int | None = None,
    keep: Callable[[Page], bool] | None = None,
    index: str | os.PathLike[str] | bool | None = None,
) -> Iterator[Any]:
    """The one loop behind iter_pages / iter_articles / map_pages: values in dump order."""
    import collections

    stats = stats if stats is not None else DumpStats()
    if index is None or index is True:
        index = find_index(path)
    elif index is not False:
        index = Path(index)
        if not index.is_file():
            raise DumpError(f"{index}: index file not found")
    parallel = bool(workers and workers > 1)
    reader = _Reader(path, stats, progress, batch_bytes=batch_bytes or ((1 << 18) if parallel else (1 << 19)))
    batches = reader.batches()
    listed = _IndexCheck(index, reader) if index else None
    last_id = 0
    pool = None
    metas: collections.deque = collections.deque()
    failure: list[DumpError] = []
    try:
        try:
            first = next(batches, None)
        except DumpError as e:
            failure.append(e)
            first = None
        info = reader.siteinfo or SiteInfo()
        if not failure:
            flt = _Filter(info.resolve_namespaces(namespaces), skip_redirects, skip_disambiguation, keep)
            if on_siteinfo is not None:
                on_siteinfo(info)

        # Pool.imap reads its input as fast as it can: bound the batches in flight (memory stays flat)
        slots = threading.Semaphore(max(2, 3 * (workers or 1)))
        stop = threading.Event()

        def tasks() -> Iterator[tuple[bytes, tuple]]:
            b = first
            while b is not None:
                if parallel:
                    slots.acquire()
                    if stop.is_set():
                        return
                meta = (b.count, b.line, b.offset, b.index)
                metas.append(meta)
                yield b.data, meta
                try:
                    b = next(batches, None)
                except DumpError as e:  # after every batch before it
                    failure.append(e)
                    return

        if first is not None:
            if parallel:
                import multiprocessing as mp

                ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
                pool = ctx.Pool(workers, initializer=_init_worker, initargs=(fn, reader.prefix, info, flt))
                results: Iterator = pool.imap(_work_in_pool, tasks())
            else:
                results = (_work(data, meta, fn, reader.prefix, info, flt) for data, meta in tasks())
            for items, problem in results:
                slots.release()
                meta = metas.popleft()
                for why, title, pid, value in items:
                    if pid <= last_id and pid:
                        raise reader.error(
                            f"page ids go backwards: page {title!r} has id {pid} after id "
                            f"{last_id} (pages repeated or out of order: a damaged file?)"
                        )
                    if listed is not None:
                        listed.expect(pid, title)
                    last_id = pid or last_id
                    stats.pages += 1
                    stats.last_title = title
                    if why:
                        _count_skip(stats, why)
                        continue
                    stats.yielded += 1
                    yield value
                    if limit is not None and stats.yielded >= limit:
                        return
                if problem is not None:
                    failure.append(reader.batch_error(_Batch(b"", *meta), problem))
                    break
        if failure:
            e = failure[0]
            parts = getattr(e, "parts", None)
            raise (reader.error(*parts) if parts else e)
        if listed is not None:
            listed.finish()
    except DumpTruncated as e:
        stats.truncated = True
        stats.error = e
        if not allow_truncated:
            raise
        log.warning("%s (continuing: allow_truncated)", e)
    except DumpError as e:
        stats.error = e
        raise
    finally:
        if pool is not None:
            stop.set()
            for _ in range(8 * (workers or 1) + 8):  # wake the feeding thread so terminate() can join it
                slots.release()
            pool.terminate()
        batches.close()
        if listed is not None:
            listed.close()


def iter_pages(
    path: str | os.PathLike[str],
    namespaces: Iterable[int | str] | None = (0,),
    skip_redirects: bool = True,
    skip_disambiguation: bool = True,
    allow_truncated: bool = False,
    stats: DumpStats | None = None,
    progress: Callable[[DumpStats], Any] | None = None,
    limit: int | None = None,
    on_siteinfo: Callable[[SiteInfo], Any] | None = None,
    keep: Callable[[Page], bool] | None = None,
    index: str | os.PathLike[str] | bool | None = None,
) -> Iterator[Page]:
    """Stream the pages of a dump that pass the filters.

    namespaces: numbers or names of the namespaces to keep (None = all). ``stats`` (a :class:`DumpStats`) is
    updated in place; ``progress(stats)`` is called after each 1 MiB chunk. ``limit`` stops after that many
    yielded pages. ``on_siteinfo(siteinfo)`` is called once, before the first page. ``keep(page) -> bool`` is a
    last filter after the others (e.g. :class:`llamawiki.categories.CategoryFilter`; it runs in the workers of
    :func:`map_pages`, so it must be picklable there); the pages it drops count in ``stats.filtered``.

    Raises DumpError / DumpTruncated after yielding every complete page that precedes the damage; with
    ``allow_truncated=True`` a cut file just ends the iteration (``stats.truncated`` is set, a warning logged).

    Integrity checks (DumpError, never hidden by ``allow_truncated``): a ``<page>`` opened inside another, a
    ``<text bytes="N">`` that is not the UTF-8 length of the text (two pages spliced where data is missing), page
    ids that do not increase. ``index``: the Wikimedia multistream index (``offset:page_id:title`` lines); by
    default the one beside the dump (:func:`find_index`), ``False`` for none. With it, every page it lists must
    come, in its order, and none it does not list (a stream lost on a page boundary is found only this way).
    """
    return _run(
        path,
        namespaces,
        skip_redirects,
        skip_disambiguation,
        allow_truncated,
        stats,
        progress,
        limit,
        on_siteinfo,
        keep=keep,
        index=index,
    )


def iter_articles(path: str | os.PathLike[str], **kwargs: Any) -> Iterator[Article]:  # noqa: F821
    """``iter_pages`` + :func:`llamawiki.wikitext.parse_article` (same keyword arguments, and ``workers=N`` to
    spread parsing and cleaning over N processes, as in :func:`map_pages`).

    Articles get their URL base and file/category namespace names from the dump's ``<siteinfo>``.
    """
    return _run(path, fn=_ARTICLES, **kwargs)


def map_pages(
    path: str | os.PathLike[str], fn: Callable[[Page], Any], workers: int = 1, **kwargs: Any
) -> Iterator[Any]:
    """``fn(page)`` for every page of ``iter_pages(path, **kwargs)``, in dump order.

    This process only decompresses the dump and cuts it into batches of pages; with ``workers > 1`` the XML
    parsing, filtering and ``fn`` run in a pool of that many processes (``fn`` must be picklable: a top-level
    function or an instance of a top-level class); batches are ~256 KB of XML. Dump errors are raised, as in
    ``iter_pages``, after the results of every complete page before the damage.
    """
    return _run(path, fn=fn, workers=workers, **kwargs)
