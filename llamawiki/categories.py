"""The topic filter: keep the articles of a category and of its subcategories, down to a depth.

The category tree comes from the dump itself, in one extra streaming pass before the stage's own pass:
the category pages (namespace 14) say which categories they belong to (their ``[[Categoria:...]]`` links are
the edges child -> parent), and every article says which categories it is in. Links are read by
:func:`llamawiki.wikitext.category_links`, the same parser that fills ``Article.categories``.

    keep = category_filter(dump, "História do Brasil", depth=2)     # None when category is None
    for article in iter_articles(dump, keep=keep): ...              # or map_pages(..., keep=keep)

Depth 0 keeps the articles directly in the category; depth 1 adds those of its direct subcategories, and so
on. Category graphs of real wikis have cycles (A in B, B in A): every category is visited once, at the
smallest depth that reaches it. Names are compared as MediaWiki does: ``_`` = space, runs of spaces collapsed,
the first letter case-insensitive (``case`` of the siteinfo), with or without the ``Categoria:``/``Category:``
prefix (or the dump's own name of namespace 14). A name that is neither a category page nor used by any
article is a :class:`UserError` listing the closest names found.

Both build_dataset.py (``llamawiki.dataset``) and ``rag.py index`` (``llamawiki.retrieval``) call
:func:`category_filter`; :class:`CategoryFilter` is a picklable ``page -> bool`` for the dump reader's ``keep``.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from array import array
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dump import DumpTruncated, map_pages, read_siteinfo
from .fileio import UserError
from .pages import Page, SiteInfo
from .text import strip_accents
from .wikitext import CATEGORY_PREFIXES, category_links

__all__ = [
    "category_key",
    "CategoryGraph",
    "CategoryFilter",
    "read_category_graph",
    "category_filter",
    "check_category_arguments",
]

CATEGORY_NS = 14
_SPACES_RE = re.compile(r"[\s_]+")


def category_key(name: str, siteinfo: SiteInfo | None = None) -> str:
    """The canonical name of a category: ``"categoria:história_do  Brasil"`` -> ``"História do Brasil"``.

    Drops a leading ``:`` and a category-namespace prefix (``Categoria:``, ``Category:``, or the dump's own
    name for namespace 14), turns ``_`` and runs of whitespace into one space and upper-cases the first letter
    unless the wiki is ``case-sensitive``.
    """
    name = name.strip().lstrip(":").strip()
    if ":" in name:
        prefix, rest = name.split(":", 1)
        prefixes = CATEGORY_PREFIXES | (siteinfo.names(CATEGORY_NS) if siteinfo is not None else set())
        if _SPACES_RE.sub(" ", prefix).strip().lower() in prefixes:
            name = rest
    name = _SPACES_RE.sub(" ", name).strip()
    if name and (siteinfo is None or siteinfo.case != "case-sensitive"):
        name = name[0].upper() + name[1:]
    return name


@dataclass
class CategoryGraph:
    """What one pass over a dump says about its categories.

    ``parents``: category page -> the categories it is in. ``used``: category -> number of articles directly in
    it. The articles' category lists are kept compactly (category ids in one array) so that the number of
    articles under any set of categories is known before the stage's own pass.
    """

    path: str = ""
    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    used: Counter = field(default_factory=Counter)
    articles: int = 0
    truncated: bool = False
    _ids: dict[str, int] = field(default_factory=dict, repr=False)
    _flat: array = field(default_factory=lambda: array("i"), repr=False)
    _ends: array = field(default_factory=lambda: array("q"), repr=False)

    def add_category_page(self, name: str, parents: Iterable[str]) -> None:
        self.parents[name] = tuple(dict.fromkeys(p for p in parents if p and p != name))

    def add_article(self, categories: Iterable[str]) -> None:
        for name in dict.fromkeys(c for c in categories if c):
            self.used[name] += 1
            self._flat.append(self._ids.setdefault(name, len(self._ids)))
        self._ends.append(len(self._flat))
        self.articles += 1

    def names(self) -> set[str]:
        """Every category the dump knows: those with a page and those some article is in."""
        return set(self.parents) | set(self.used)

    def children(self) -> dict[str, list[str]]:
        kids: dict[str, list[str]] = {}
        for child, parents in self.parents.items():
            for parent in parents:
                kids.setdefault(parent, []).append(child)
        return kids

    def subtree(self, root: str, depth: int) -> dict[str, int]:
        """``root`` and its subcategories down to ``depth``: category -> its depth (shortest path; a cycle
        is walked once)."""
        kids = self.children()
        found = {root: 0}
        queue = deque([root])
        while queue:
            name = queue.popleft()
            d = found[name]
            if d >= depth:
                continue
            for child in kids.get(name, ()):
                if child not in found:
                    found[child] = d + 1
                    queue.append(child)
        return found

    def count_articles(self, categories: Iterable[str]) -> int:
        """How many articles are in at least one of ``categories``."""
        wanted = {self._ids[c] for c in categories if c in self._ids}
        if not wanted:
            return 0
        n = start = 0
        flat = self._flat
        for end in self._ends:
            for i in range(start, end):
                if flat[i] in wanted:
                    n += 1
                    break
            start = end
        return n

    def closest(self, name: str, n: int = 3) -> list[str]:
        """The ``n`` known category names most like ``name`` (accents and case ignored)."""
        folded: dict[str, str] = {}
        for known in sorted(self.names()):
            folded.setdefault(strip_accents(known).casefold(), known)
        key = strip_accents(name).casefold()
        # cutoff 0.6 first: difflib's quick bounds skip most names (seconds on ptwiki's ~10^5 categories)
        matches = difflib.get_close_matches(key, list(folded), n=n, cutoff=0.6) or difflib.get_close_matches(
            key, list(folded), n=n, cutoff=0.0
        )
        return [folded[m] for m in matches]


class _PageCategories:
    """Picklable ``page -> (ns, canonical title, canonical categories)`` for the category pass (workers)."""

    def __init__(self, siteinfo: SiteInfo):
        self.siteinfo = siteinfo

    def __call__(self, page: Page) -> tuple[int, str, list[str]]:
        info = self.siteinfo
        return page.ns, page.title, [category_key(c, info) for c in category_links(page.text, info)]


def read_category_graph(
    path: str | os.PathLike[str], namespaces: Iterable[int | str] = (0,), workers: int = 1, progress: bool = False
) -> CategoryGraph:
    """One pass over the dump: the category pages and the categories of every article of ``namespaces``.

    Redirects and disambiguation pages are skipped, as in the stages' own pass. A truncated dump gives the
    graph of its complete pages (the stage's own pass then reports the damage as usual).
    """
    from tqdm import tqdm

    path = Path(path)
    info = read_siteinfo(path)
    article_ns = info.resolve_namespaces(namespaces)
    wanted = None if article_ns is None else article_ns | {CATEGORY_NS}
    graph = CategoryGraph(path=str(path))
    items = map_pages(path, _PageCategories(info), workers=max(workers, 1), namespaces=wanted)
    bar = tqdm(
        desc=f"{path.name} (categories)", unit=" pages", disable=not progress, dynamic_ncols=True, mininterval=0.5
    )
    try:
        for ns, title, links in items:
            bar.update(1)
            if ns == CATEGORY_NS:
                graph.add_category_page(category_key(title, info), links)
            if article_ns is None or ns in article_ns:
                graph.add_article(links)
    except DumpTruncated:
        graph.truncated = True
    finally:
        bar.close()
        items.close()
    return graph


@dataclass
class CategoryFilter:
    """``page -> bool``: the page is in one of ``categories`` (the tree under ``category``, down to ``depth``).

    Picklable (it runs in the dump reader's workers). ``articles`` / ``total``: articles kept / read by the
    category pass, for the stage's report; :meth:`describe` is what manifests record.
    """

    category: str
    depth: int
    categories: dict[str, int]  # category -> its depth under ``category``
    siteinfo: SiteInfo
    articles: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self._keys = frozenset(self.categories)

    def __call__(self, page: Page) -> bool:
        info = self.siteinfo
        return any(category_key(c, info) in self._keys for c in category_links(page.text, info))

    def describe(self) -> dict[str, Any]:
        by_depth = Counter(self.categories.values())
        return {
            "name": self.category,
            "depth": self.depth,
            "articles": self.articles,
            "categories_per_depth": [by_depth[d] for d in range(max(by_depth) + 1)],
            "categories": sorted(self.categories),
        }

    def summary(self) -> str:
        n = len(self.categories)
        return (
            f"category '{self.category}' (depth {self.depth}, {n} categor{'y' if n == 1 else 'ies'}): "
            f"kept {self.articles} of {self.total} articles"
        )


def check_category_arguments(category: str | None, depth: int) -> None:
    """``--category`` / ``--category-depth`` checks that need no dump (UserError)."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise UserError(f"--category-depth {depth}: must be an integer >= 0")
    if category is not None and not category_key(category):
        raise UserError("--category: empty category name")
    if category is None and depth:
        raise UserError("--category-depth needs --category")


def category_filter(
    path: str | os.PathLike[str],
    category: str | None,
    depth: int = 0,
    namespaces: Iterable[int | str] = (0,),
    workers: int = 1,
    progress: bool = False,
    quiet: bool = False,
) -> CategoryFilter | None:
    """The filter of the articles of ``path`` in ``category`` or its subcategories down to ``depth``.

    None when ``category`` is None (no filter). One pass over the dump (:func:`read_category_graph`); prints
    one line to stderr with how many articles are kept (unless ``quiet``). An unknown category raises
    ``UserError("<dump>: category 'X' not found; closest: A, B, C")``.
    """
    check_category_arguments(category, depth)
    if category is None:
        return None
    path = Path(path)
    info = read_siteinfo(path)
    root = category_key(category, info)
    graph = read_category_graph(path, namespaces, workers=workers, progress=progress)
    if root not in graph.names():
        near = graph.closest(root)
        hint = f"closest: {', '.join(near)}" if near else "the dump has no categories"
        raise UserError(f"{path}: category '{category.strip()}' not found; {hint}")
    tree = graph.subtree(root, depth)
    keep = CategoryFilter(root, depth, tree, info, articles=graph.count_articles(tree), total=graph.articles)
    if not quiet:
        print(f"{path}: {keep.summary()}", file=sys.stderr)
    return keep
