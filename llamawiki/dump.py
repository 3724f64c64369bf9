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
import logging
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .fileio import UserError

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # bytes of decompressed XML fed to the parser at a time

__all__ = [
    "Page", "SiteInfo", "DumpStats", "DumpError", "DumpTruncated", "read_siteinfo", "iter_pages",
    "iter_articles", "iter_articles_parallel", "map_pages", "is_redirect_text", "is_disambiguation",
]


# --------------------------------------------------------------------------------------------- data types
@dataclass
class Page:
    """One ``<page>`` of a MediaWiki export (its latest revision)."""

    id: int
    title: str
    ns: int
    text: str
    redirect: str | None = None
    revision_id: int | None = None


DEFAULT_BASE_URL = "https://pt.wikipedia.org/wiki/"

# Canonical (English) names, valid on every wiki; used only when a dump has no <siteinfo>.
CANONICAL_NAMESPACES = {
    -2: "Media", -1: "Special", 1: "Talk", 2: "User", 3: "User talk", 4: "Project", 5: "Project talk",
    6: "File", 7: "File talk", 8: "MediaWiki", 9: "MediaWiki talk", 10: "Template", 11: "Template talk",
    12: "Help", 13: "Help talk", 14: "Category", 15: "Category talk",
}


@dataclass
class SiteInfo:
    """What ``<siteinfo>`` says about the wiki: names, base URL and the namespace table."""

    sitename: str = ""
    dbname: str = ""
    base: str = ""
    generator: str = ""
    case: str = "first-letter"
    namespaces: dict[int, str] = field(default_factory=dict)
    schema: str = ""

    @property
    def base_url(self) -> str:
        """Prefix of article URLs, e.g. ``https://pt.wikipedia.org/wiki/`` (derived from ``<base>``)."""
        if not self.base:
            return DEFAULT_BASE_URL
        i = self.base.find("/wiki/")
        if i >= 0:
            return self.base[: i + len("/wiki/")]
        return self.base.rsplit("/", 1)[0] + "/"

    @property
    def lang(self) -> str:
        """Language code from the database name (``ptwiki`` -> ``pt``), or ``""``."""
        m = re.match(r"([a-z_]+?)wik", self.dbname or "")
        return m.group(1).replace("_", "-") if m else ""

    def names(self, key: int) -> set[str]:
        """Local and canonical names of namespace ``key`` (lower-cased)."""
        out = set()
        if self.namespaces.get(key):
            out.add(self.namespaces[key].lower())
        if key in CANONICAL_NAMESPACES:
            out.add(CANONICAL_NAMESPACES[key].lower())
        return out

    def namespace_of(self, title: str) -> int:
        """Namespace number from a title prefix (``Categoria:Brasil`` -> 14); 0 when none matches."""
        if ":" not in title:
            return 0
        prefix = title.split(":", 1)[0].strip().replace("_", " ").lower()
        table = self._prefix_table()
        return table.get(prefix, 0)

    def _prefix_table(self) -> dict[str, int]:
        table = getattr(self, "_prefixes", None)
        if table is None:
            table = {name.lower(): k for k, name in CANONICAL_NAMESPACES.items()}
            table.update({name.lower(): k for k, name in self.namespaces.items() if name})
            object.__setattr__(self, "_prefixes", table)
        return table

    def resolve_namespaces(self, namespaces: Iterable[int | str] | None) -> frozenset[int] | None:
        """Namespace numbers from numbers or names (``"Portal"`` -> 100 on ptwiki); None = all."""
        if namespaces is None:
            return None
        out = set()
        for ns in namespaces:
            if isinstance(ns, int) or (isinstance(ns, str) and ns.lstrip("-").isdigit()):
                out.add(int(ns))
                continue
            key = self._prefix_table().get(str(ns).strip().lower())
            if key is None:
                raise DumpError(f"unknown namespace {ns!r} (known: {sorted(self.namespaces.values())})")
            out.add(key)
        return frozenset(out)


class DumpError(UserError):
    """The file is missing, empty, not a MediaWiki dump, unreadable or badly encoded."""

    def __init__(self, message: str, pages_read: int = 0, where: str = "", exit_code: int = 2):
        super().__init__(message, exit_code)
        self.pages_read = pages_read
        self.where = where

    def __reduce__(self):  # picklable across processes
        return (type(self), (str(self), self.pages_read, self.where, self.exit_code))


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
    pages: int = 0          # complete <page> elements read (all namespaces)
    yielded: int = 0        # pages that passed the filters
    redirects: int = 0
    disambiguations: int = 0
    other_namespaces: int = 0
    last_title: str = ""
    truncated: bool = False
    error: DumpError | None = None


# ------------------------------------------------------------------------------ redirects, disambiguation
# Redirect magic words of the larger wikis (MediaWiki's MessagesXx.php); matched case-insensitively.
REDIRECT_WORDS = (
    "REDIRECT", "REDIRECIONAMENTO", "REDIRECCIONAMENTO", "REDIRECCIÓN", "REDIRECCION", "REDIRECTION",
    "REDIRECTION", "WEITERLEITUNG", "RINVIA", "RINVIO", "DOORVERWIJZING", "PRZEKIERUJ", "PATRZ",
    "ПЕРЕНАПРАВЛЕНИЕ", "ПЕРЕНАПР", "YÖNLENDİR", "YÖNLENDİRME", "OMDIRIGERING", "UUDELLEENOHJAUS",
    "ÁTIRÁNYÍTÁS", "PŘESMĚRUJ", "REDIRECIONA", "DIRECCIÓN", "تحويل", "הפניה", "転送", "重定向",
)
_REDIRECT_RE = re.compile(
    r"^\s*#\s*(?:" + "|".join(re.escape(w) for w in dict.fromkeys(REDIRECT_WORDS)) + r")\s*:?\s*\[\[([^\]|#]*)",
    re.IGNORECASE,
)

DISAMBIGUATION_TEMPLATES = (
    "desambiguação", "desambiguacao", "desambig", "dab", "disambig", "disambiguation", "dis",
    "hndis", "geodis", "desambiguação de nomes", "homonimia", "desambiguación", "begriffsklärung",
)
_DISAMBIG_RE = re.compile(
    r"\{\{\s*(?:predefinição:|template:)?\s*(?:"
    + "|".join(re.escape(t) for t in DISAMBIGUATION_TEMPLATES)
    + r")\s*(?:\||\}\})|__DISAMBIG__|__DESAMBIGUAÇÃO__",
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
    return bool(_DISAMBIG_TITLE_RE.search(title) or _DISAMBIG_RE.search(text))


# ------------------------------------------------------------------------------------------ opening files
class _Source:
    """An opened dump: a binary stream of XML plus a way to know how far into the file we are."""

    def __init__(self, path: Path):
        self.path = path
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
        """Read decompressed bytes; compression damage becomes DumpTruncated / DumpError (caller adds context)."""
        return self.stream.read(n)

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


class _Reader:
    """One streaming pass: yields raw ``Page`` objects (no filtering) and fills ``siteinfo`` on the way."""

    def __init__(self, path: str | os.PathLike[str], stats: DumpStats | None = None,
                 progress: Callable[[DumpStats], Any] | None = None, chunk: int = CHUNK):
        self.path = Path(path)
        self.stats = stats if stats is not None else DumpStats()
        self.stats.path = str(self.path)
        self.progress = progress
        self.chunk = chunk
        self.siteinfo: SiteInfo | None = None
        self._src = _Source(self.path)
        self.stats.total_bytes = self._src.size

    # where we are, for error messages
    def _where(self, line: int | None = None, byte: int | None = None) -> str:
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

    def _truncated(self, problem: str, line: int | None = None, byte: int | None = None) -> DumpTruncated:
        where = self._where(line, byte)
        return DumpTruncated(f"{self.path}: {problem}; stopped {where}", self.stats.pages, where)

    def _error(self, problem: str, line: int | None = None, byte: int | None = None) -> DumpError:
        where = self._where(line, byte)
        return DumpError(f"{self.path}: {problem}; stopped {where}", self.stats.pages, where)

    def _read_chunk(self) -> bytes:
        try:
            self.stats.bytes_read = self._src.position
            data = self._src.read(self.chunk)
        except EOFError as e:  # bz2/gzip: "Compressed file ended before the end-of-stream marker was reached"
            raise self._truncated(f"compressed file is truncated ({e})") from None
        except (OSError, ValueError) as e:  # "Invalid data stream", bad CRC, not a gzipped file...
            msg = str(e) or type(e).__name__
            if self.stats.xml_bytes == 0:
                raise DumpError(f"{self.path}: not a readable {self._src.kind} file ({msg})") from None
            raise self._error(f"corrupt {self._src.kind} data ({msg})") from None
        self.stats.bytes_read = self._src.position
        return data

    def _sniff(self, head: bytes) -> None:
        """Reject non-XML and non-dump XML from the first chunk, before the parser trips over it."""
        text = head[:65536].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
        m = _ROOT_RE.match(text)
        if m is None:
            if text.startswith("<"):
                return  # let the parser say what is wrong
            raise DumpError(f"{self.path}: not an XML file (expected a MediaWiki dump, found {text[:20]!r}...)")
        if m.group(1).split(":")[-1] != "mediawiki":
            raise DumpError(f"{self.path}: not a MediaWiki dump (root element <{m.group(1)}>, expected <mediawiki>)")

    def _parse_error(self, e: ET.ParseError, data: bytes) -> DumpError:
        line = e.position[0] if getattr(e, "position", None) else None
        msg = str(e)
        if self.stats.xml_bytes - len(data) <= 0 and self.stats.pages == 0 and self.siteinfo is None \
                and line is not None and line <= 1 and not data.lstrip().startswith(b"<"):
            return DumpError(f"{self.path}: not an XML file (expected a MediaWiki dump; parser said: {msg})")
        if "unknown encoding" in msg:
            return self._error(f"unknown character encoding declared in the XML header ({msg})", line)
        if "not well-formed" in msg or "invalid token" in msg:
            bad = _find_bad_utf8(data)
            if bad is not None:
                off, byte = bad
                start = self.stats.xml_bytes - len(data) + off
                return self._error(f"invalid UTF-8 byte 0x{byte:02x} (bad encoding)", line, start)
        return self._error(f"malformed XML ({msg})", line)

    def __iter__(self) -> Iterator[Page]:
        parser = ET.XMLPullParser(events=("start", "end"))
        root: ET.Element | None = None
        depth_page = False
        st = self.stats
        src = self._src
        try:
            while True:
                data = self._read_chunk()
                if not data:
                    break
                if st.xml_bytes == 0:
                    self._sniff(data)
                st.xml_bytes += len(data)
                try:
                    parser.feed(data)
                    events = parser.read_events()
                    for event, elem in events:
                        if event == "start":
                            if root is None:
                                root = elem
                                if _local(elem.tag) != "mediawiki":
                                    raise DumpError(
                                        f"{self.path}: not a MediaWiki dump (root element <{_local(elem.tag)}>, "
                                        f"expected <mediawiki>)")
                                st_schema = elem.tag[1:].split("}")[0] if elem.tag[:1] == "{" else ""
                                self._schema = st_schema
                            elif not depth_page and elem.tag.endswith("page"):
                                depth_page = True
                            continue
                        tag = elem.tag
                        if tag.endswith("page") and _local(tag) == "page":
                            depth_page = False
                            page = self._make_page(elem)
                            elem.clear()
                            root.clear()  # type: ignore[union-attr]
                            st.pages += 1
                            st.last_title = page.title
                            yield page
                        elif not depth_page and tag.endswith("siteinfo") and _local(tag) == "siteinfo":
                            self.siteinfo = _make_siteinfo(elem, getattr(self, "_schema", ""))
                            root.clear()  # type: ignore[union-attr]
                except ET.ParseError as e:
                    raise self._parse_error(e, data) from None
                if self.progress is not None:
                    self.progress(st)
            if st.xml_bytes == 0:
                raise DumpError(f"{self.path}: file is empty (no XML after decompression)")
            try:
                parser.close()
            except ET.ParseError as e:
                line = e.position[0] if getattr(e, "position", None) else None
                if root is None:
                    raise DumpError(f"{self.path}: not a MediaWiki XML dump (no root element found)") from None
                raise self._truncated("XML ends in the middle of the dump (file cut?)", line) from None
            if root is None:
                raise DumpError(f"{self.path}: not a MediaWiki XML dump")
            st.bytes_read = st.total_bytes
        finally:
            src.close()

    def _make_page(self, elem: ET.Element) -> Page:
        title = ""
        ns: int | None = None
        pid = 0
        redirect = None
        rev_id = None
        text = ""
        for child in elem:
            tag = _local(child.tag)
            if tag == "title":
                title = child.text or ""
            elif tag == "ns":
                try:
                    ns = int(child.text or 0)
                except ValueError:
                    ns = None
            elif tag == "id":
                try:
                    pid = int(child.text or 0)
                except ValueError:
                    pid = 0
            elif tag == "redirect":
                redirect = child.get("title", "") or ""
            elif tag == "revision":  # the last revision wins (full-history dumps)
                for rc in child:
                    rtag = _local(rc.tag)
                    if rtag == "text":
                        text = rc.text or ""
                    elif rtag == "id":
                        try:
                            rev_id = int(rc.text or 0)
                        except ValueError:
                            rev_id = None
        if ns is None:
            ns = (self.siteinfo or SiteInfo()).namespace_of(title)
        return Page(id=pid, title=title, ns=ns, text=text, redirect=redirect, revision_id=rev_id)


_ROOT_RE = re.compile(r"(?:<\?.*?\?>\s*)?(?:(?:<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)\s*)*<([A-Za-z_][\w:.-]*)",
                      re.DOTALL)


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


# --------------------------------------------------------------------------------------------- public API
def read_siteinfo(path: str | os.PathLike[str]) -> SiteInfo:
    """The dump's ``<siteinfo>`` (reads only the head of the file).

    A dump without ``<siteinfo>`` (very old exports) gets an empty SiteInfo with the canonical namespaces.
    """
    reader = _Reader(path, chunk=1 << 16)
    it = iter(reader)
    try:
        for _ in it:
            break  # the first page comes after <siteinfo>
    finally:
        it.close()
    return reader.siteinfo or SiteInfo()


def iter_pages(path: str | os.PathLike[str], namespaces: Iterable[int | str] | None = (0,),
               skip_redirects: bool = True, skip_disambiguation: bool = True, allow_truncated: bool = False,
               stats: DumpStats | None = None, progress: Callable[[DumpStats], Any] | None = None,
               limit: int | None = None, on_siteinfo: Callable[[SiteInfo], Any] | None = None,
               ) -> Iterator[Page]:
    """Stream the pages of a dump that pass the filters.

    namespaces: numbers or names of the namespaces to keep (None = all). ``stats`` (a :class:`DumpStats`) is
    updated in place; ``progress(stats)`` is called after each 1 MiB chunk. ``limit`` stops after that many
    yielded pages. ``on_siteinfo(siteinfo)`` is called once, before the first page.

    Raises DumpError / DumpTruncated after yielding every complete page that precedes the damage; with
    ``allow_truncated=True`` a cut file just ends the iteration (``stats.truncated`` is set, a warning logged).
    """
    stats = stats if stats is not None else DumpStats()
    reader = _Reader(path, stats, progress)
    wanted: frozenset[int] | None = None
    resolved = False
    pages = iter(reader)
    try:
        for page in pages:
            if not resolved:
                resolved = True
                info = reader.siteinfo or SiteInfo()
                wanted = info.resolve_namespaces(namespaces)
                if on_siteinfo is not None:
                    on_siteinfo(info)
            if wanted is not None and page.ns not in wanted:
                stats.other_namespaces += 1
                continue
            if skip_redirects:
                if page.redirect is not None:
                    stats.redirects += 1
                    continue
                target = is_redirect_text(page.text)
                if target is not None:
                    page.redirect = target
                    stats.redirects += 1
                    continue
            if skip_disambiguation and is_disambiguation(page.title, page.text):
                stats.disambiguations += 1
                continue
            stats.yielded += 1
            yield page
            if limit is not None and stats.yielded >= limit:
                return
        if not resolved and on_siteinfo is not None:
            on_siteinfo(reader.siteinfo or SiteInfo())
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
        pages.close()


def iter_articles(path: str | os.PathLike[str], **kwargs: Any) -> Iterator["Article"]:  # noqa: F821
    """``iter_pages`` + :func:`llamawiki.wikitext.parse_article` (same keyword arguments).

    Articles get their URL base and file/category namespace names from the dump's ``<siteinfo>``.
    """
    from .wikitext import parse_article

    holder: dict[str, SiteInfo] = {}
    user_cb = kwargs.pop("on_siteinfo", None)

    def remember(info: SiteInfo) -> None:
        holder["info"] = info
        if user_cb is not None:
            user_cb(info)

    for page in iter_pages(path, on_siteinfo=remember, **kwargs):
        info = holder.get("info")
        yield parse_article(page, base_url=info.base_url if info else DEFAULT_BASE_URL, siteinfo=info)


# --------------------------------------------------------------------------------------- multiprocessing
_WORKER_FN: Callable | None = None


def _init_worker(fn: Callable) -> None:
    global _WORKER_FN
    _WORKER_FN = fn


def _call_batch(items: list) -> list:
    fn = _WORKER_FN
    return [fn(x) for x in items]  # type: ignore[misc]


def map_pages(path: str | os.PathLike[str], fn: Callable[[Page], Any], workers: int = 1, chunksize: int = 32,
              **kwargs: Any) -> Iterator[Any]:
    """``fn(page)`` for every page of ``iter_pages(path, **kwargs)``, in dump order.

    Pages are read in this process and ``fn`` runs in a pool of ``workers`` processes (``fn`` must be a
    picklable top-level function); ``workers <= 1`` runs it here. Errors in the dump are raised, as in
    ``iter_pages``, after the results of every complete page before the damage.
    """
    pages = iter_pages(path, **kwargs)
    if workers is None or workers <= 1:
        for page in pages:
            yield fn(page)
        return

    import multiprocessing as mp

    failure: list[BaseException] = []

    def batches() -> Iterator[list[Page]]:
        batch: list[Page] = []
        try:
            for page in pages:
                batch.append(page)
                if len(batch) >= chunksize:
                    yield batch
                    batch = []
        except DumpError as e:  # keep the error for the consumer, after the pages before it
            failure.append(e)
        if batch:
            yield batch

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(fn,)) as pool:
        for results in pool.imap(_call_batch, batches()):
            yield from results
    if failure:
        raise failure[0]


def iter_articles_parallel(path: str | os.PathLike[str], workers: int = 1, chunksize: int = 32,
                           **kwargs: Any) -> Iterator["Article"]:  # noqa: F821
    """Like :func:`iter_articles`, with the wikitext cleaning spread over ``workers`` processes (ordered)."""
    if workers is None or workers <= 1:
        yield from iter_articles(path, **kwargs)
        return
    info = read_siteinfo(path)
    yield from map_pages(path, _ArticleParser(info), workers=workers, chunksize=chunksize, **kwargs)


class _ArticleParser:
    """Picklable ``page -> Article`` callable carrying the dump's siteinfo."""

    def __init__(self, info: SiteInfo):
        self.info = info

    def __call__(self, page: Page):
        from .wikitext import parse_article

        return parse_article(page, base_url=self.info.base_url, siteinfo=self.info)
