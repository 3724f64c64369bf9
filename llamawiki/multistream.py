"""Split a multistream dump (``pages-articles-multistream.xml.bz2``) into standalone part files, on the bzip2
stream boundaries its index gives, without decompressing the pages: the streams are copied byte for byte.

A multistream dump is bzip2 streams back to back: the first holds ``<mediawiki>`` and ``<siteinfo>``, each of
the next up to 100 ``<page>`` elements, the last ``</mediawiki>``. Its index (``...-multistream-index.txt.bz2``)
has one line ``offset:page_id:title`` per page, where offset is the byte position, in the dump, of the stream
that holds the page. A part is the header stream + a run of page streams + the footer stream: a valid dump on
its own (``llamawiki.dump.iter_pages`` reads it), and every page is in exactly one part, whole.

Parts are balanced by compressed size (not by page count: streams of long articles are larger). The plan
depends only on the dump's size and the index, so N array tasks that each write their own part agree on it.
"""

from __future__ import annotations

import bisect
import bz2
import os
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from .fileio import UserError, atomic_path
from .pages import DumpError

__all__ = ["MultistreamPlan", "read_stream_offsets", "plan_split", "part_name", "split_multistream"]

_COPY = 1 << 20


@dataclass(frozen=True)
class MultistreamPlan:
    """Byte ranges of one multistream dump: ``header`` and ``footer`` streams, and the page streams of each part."""

    dump: Path
    size: int
    header: tuple[int, int]
    footer: tuple[int, int]
    parts: tuple[tuple[int, int], ...]
    streams: int  # page streams in the dump (distinct offsets of the index)


def _open_text(path: Path):
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        return bz2.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_stream_offsets(index: str | os.PathLike[str]) -> list[int]:
    """The distinct stream offsets of a multistream index (``offset:page_id:title`` lines, .txt or .txt.bz2), sorted."""
    index = Path(index)
    if not index.is_file():
        raise UserError(f"{index}: index file not found")
    offsets: set[int] = set()
    try:
        with _open_text(index) as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                head = line.split(":", 2)
                if len(head) < 3 or not head[0].isdigit() or not head[1].isdigit():
                    raise UserError(f"{index}: line {n}: expected offset:page_id:title, got {line[:60]!r}")
                offsets.add(int(head[0]))
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"{index}: cannot read the index ({e})") from None
    if not offsets:
        raise UserError(f"{index}: empty index (no offset:page_id:title line)")
    return sorted(offsets)


def _read(f, start: int, end: int) -> bytes:
    f.seek(start)
    return f.read(end - start)


def _stream_end(f, start: int, dump: Path) -> int:
    """The byte where the bzip2 stream starting at ``start`` ends."""
    f.seek(start)
    dec = bz2.BZ2Decompressor()
    fed = 0
    try:
        while not dec.eof:
            block = f.read(1 << 16)
            if not block:
                raise DumpError(f"{dump}: the last stream of pages (at byte {start}) is cut; the file is incomplete")
            fed += len(block)
            dec.decompress(block)
    except OSError as e:
        raise DumpError(f"{dump}: byte {start}: not a bzip2 stream ({e}); is the index this dump's?") from None
    return start + fed - len(dec.unused_data)


def _check_stream(data: bytes, dump: Path, what: str, must: Iterable[bytes]) -> None:
    try:
        text = bz2.decompress(data)
    except (OSError, ValueError) as e:
        raise DumpError(f"{dump}: the {what} stream is not valid bzip2 ({e}); is the index this dump's?") from None
    missing = [m.decode() for m in must if m not in text]
    if missing or b"<page>" in text:
        problem = f"no {', '.join(missing)}" if missing else "it holds a <page>"
        raise DumpError(
            f"{dump}: the {what} stream is not a multistream {what} ({problem}); "
            "is this a multistream dump and the index its own?"
        )


def plan_split(dump: str | os.PathLike[str], index: str | os.PathLike[str], n_parts: int) -> MultistreamPlan:
    """Where each of ``n_parts`` parts starts and ends (page streams only; header and footer go in every part)."""
    dump = Path(dump)
    if not dump.is_file():
        raise UserError(f"{dump}: dump not found")
    if n_parts < 1:
        raise UserError(f"{dump}: parts must be at least 1, not {n_parts}")
    offsets = read_stream_offsets(index)
    size = dump.stat().st_size
    if offsets[0] <= 0 or offsets[-1] >= size:
        bad = offsets[0] if offsets[0] <= 0 else offsets[-1]
        raise UserError(f"{index}: offset {bad} outside the dump {dump} ({size} bytes); is it this dump's index?")
    if n_parts > len(offsets):
        raise UserError(f"{dump}: {len(offsets)} stream(s) of pages, cannot make {n_parts} parts")
    with open(dump, "rb") as f:
        for off in offsets[:1] + offsets[-1:]:
            if _read(f, off, off + 3) != b"BZh":
                raise DumpError(
                    f"{dump}: byte {off} (from {index}) is not the start of a bzip2 stream; is the index this dump's?"
                )
        footer_start = _stream_end(f, offsets[-1], dump)
        if footer_start >= size:
            raise DumpError(f"{dump}: no footer stream after the last page stream; the file is incomplete")
        _check_stream(_read(f, 0, offsets[0]), dump, "header", [b"<mediawiki", b"</siteinfo>"])
        _check_stream(_read(f, footer_start, size), dump, "footer", [b"</mediawiki>"])
    # cut at the stream starts closest to k/n of the page bytes; every part keeps at least one stream
    first, total = offsets[0], footer_start - offsets[0]
    cuts = [0]
    for k in range(1, n_parts):
        target = first + total * k / n_parts
        i = bisect.bisect_left(offsets, target)
        if i > 0 and (i == len(offsets) or target - offsets[i - 1] <= offsets[i] - target):
            i -= 1
        cuts.append(min(max(i, cuts[-1] + 1), len(offsets) - (n_parts - k)))
    bounds = [offsets[i] for i in cuts] + [footer_start]
    return MultistreamPlan(
        dump=dump,
        size=size,
        header=(0, offsets[0]),
        footer=(footer_start, size),
        parts=tuple(pairwise(bounds)),
        streams=len(offsets),
    )


def part_name(dump: str | os.PathLike[str], k: int, n_parts: int) -> str:
    """``ptwiki-...-multistream.xml.bz2``, 2, 8 -> ``ptwiki-...-multistream-part02of08.xml.bz2`` (k from 0)."""
    name = Path(dump).name
    for ext in (".xml.bz2", ".bz2"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    return f"{name}-part{k:02d}of{n_parts:02d}.xml.bz2"


def split_multistream(
    dump: str | os.PathLike[str],
    index: str | os.PathLike[str],
    n_parts: int,
    out_dir: str | os.PathLike[str],
    only: Iterable[int] | None = None,
) -> list[Path]:
    """Write the parts of ``dump`` (all, or those numbered in ``only``, from 0) into ``out_dir``; return their paths.

    Each part is written to a temporary file and renamed at the end, so an interrupted split leaves no half part.
    """
    plan = plan_split(dump, index, n_parts)
    wanted = list(range(n_parts)) if only is None else sorted(set(only))
    for k in wanted:
        if not 0 <= k < n_parts:
            raise UserError(f"{dump}: part {k} out of range (0..{n_parts - 1})")
    out_dir = Path(out_dir)
    written = []
    with open(plan.dump, "rb") as f:
        header, footer = _read(f, *plan.header), _read(f, *plan.footer)
        for k in wanted:
            path = out_dir / part_name(plan.dump, k, n_parts)
            start, end = plan.parts[k]
            with atomic_path(path) as tmp, open(tmp, "wb") as out:
                out.write(header)
                f.seek(start)
                left = end - start
                while left:
                    block = f.read(min(_COPY, left))
                    if not block:
                        raise DumpError(f"{plan.dump}: ends before byte {end}; the file changed while being split")
                    out.write(block)
                    left -= len(block)
                out.write(footer)
            written.append(path)
    return written
