"""What a MediaWiki export holds: a :class:`Page`, the wiki's :class:`SiteInfo`, and :class:`DumpError`.

A contract module: the dump reader (``llamawiki.dump``) makes these and the wikitext cleaner
(``llamawiki.wikitext``) reads them, so both import this module and neither imports the other's internals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from .fileio import UserError


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
    -2: "Media",
    -1: "Special",
    1: "Talk",
    2: "User",
    3: "User talk",
    4: "Project",
    5: "Project talk",
    6: "File",
    7: "File talk",
    8: "MediaWiki",
    9: "MediaWiki talk",
    10: "Template",
    11: "Template talk",
    12: "Help",
    13: "Help talk",
    14: "Category",
    15: "Category talk",
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
