#!/usr/bin/env python3
"""Benchmark: our dump reader + cleaner (llamawiki.dump / llamawiki.wikitext) against wikiextractor.

Both tools read the same dump with the same number of worker processes and write their output to a temporary
folder; each runs as its own subprocess, timed wall-clock (interpreter start and imports included, like a user
would see). Prints pages/s for both and the ratio ours / wikiextractor, plus markup leftovers
(``{{ }} [[ ]] <ref {| thumb|``) per 1,000 words of output, counted over the articles both tools emitted.

    pip install -r bench/requirements.txt          # wikiextractor==3.1.0
    python bench/bench_extract.py                   # the embedded sample, repeated to ~3,000+ pages
    python bench/bench_extract.py --dump ptwiki-latest-pages-articles1.xml-p1p105695.bz2 --repeat 1
    python bench/bench_extract.py --processes 4 --repeat 200

``--repeat K`` writes a temporary dump with the sample's pages K times (titles and ids made unique), so the
timing is not dominated by start-up. The anchor (wikiextractor) is measured in the same run.

``--baseline DIR`` takes another checkout of this repository as the anchor instead of wikiextractor (what a
change to the reader costs: ``git worktree add /tmp/base <commit>``); both outputs must then be identical.

    python bench/bench_extract.py --baseline /tmp/base --rounds 5
"""

from __future__ import annotations

import argparse
import bz2
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DUMP = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"
LEFTOVER_TOKENS = ("{{", "}}", "[[", "]]", "<ref", "{|", "thumb|")
_WORD_RE = re.compile(r"\w+")
_PAGE_RE = re.compile(rb"<page>.*?</page>\s*", re.DOTALL)
_TITLE_RE = re.compile(rb"<title>(.*?)</title>")
_ID_RE = re.compile(rb"<id>(\d+)</id>")


# ------------------------------------------------------------------------------------------- the dump
def _open_xml(path: Path) -> bytes:
    with open(path, "rb") as f:
        magic = f.read(3)
    if magic == b"BZh":
        with bz2.open(path, "rb") as f:
            return f.read()
    return path.read_bytes()


def repeat_dump(src: Path, k: int, out: Path) -> int:
    """Write ``src``'s pages ``k`` times (unique titles/ids) to ``out`` (.xml.bz2); return the page count."""
    xml = _open_xml(src)
    pages = [m.group() for m in _PAGE_RE.finditer(xml)]
    if not pages:
        raise SystemExit(f"error: {src}: no <page> elements found")
    head = xml[: xml.index(b"<page>")]
    tail = xml[xml.rindex(b"</page>") + len(b"</page>") :].lstrip()
    n = 0
    with bz2.open(out, "wb", compresslevel=9) as f:
        f.write(head)
        for rep in range(k):
            for page in pages:
                n += 1
                if rep:
                    page = _TITLE_RE.sub(
                        lambda m, rep=rep: b"<title>" + m.group(1) + b" " + str(rep).encode() + b"</title>",
                        page,
                        count=1,
                    )
                    page = _ID_RE.sub(
                        lambda m, rep=rep: b"<id>" + str(int(m.group(1)) + rep * 10_000_000).encode() + b"</id>",
                        page,
                        count=1,
                    )
                f.write(page)
        f.write(b"  " + tail)
    return n


def count_pages(path: Path) -> int:
    return len(re.findall(rb"<page>", _open_xml(path)))


# ----------------------------------------------------------------------------------------- the two tools
class _ArticleJson:
    """page -> one JSON line of the cleaned article (runs in the worker processes, like build_dataset's work)."""

    def __init__(self, info):
        self.info = info

    def __call__(self, page) -> str:
        from llamawiki.wikitext import parse_article

        art = parse_article(page, base_url=self.info.base_url, siteinfo=self.info)
        return json.dumps({"title": art.title, "text": art.plain_text()}, ensure_ascii=False) + "\n"


def run_ours(dump: Path, out_dir: Path, processes: int) -> None:
    """What the ``--_ours`` subprocess does: read + clean every article, write JSONL (like wikiextractor)."""
    import resource

    from llamawiki.dump import map_pages, read_siteinfo

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "ours.jsonl", "w", encoding="utf-8") as f:
        for line in map_pages(dump, _ArticleJson(read_siteinfo(dump)), workers=processes):
            f.write(line)
    me = resource.getrusage(resource.RUSAGE_SELF)
    print(f"main process CPU: {me.ru_utime + me.ru_stime:.2f} s", file=sys.stderr)


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and its children)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"error: command failed ({proc.returncode}): {' '.join(cmd)}")
    return dt, cpu


def read_ours(out_dir: Path) -> dict[str, str]:
    docs = {}
    with open(out_dir / "ours.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            docs[rec["title"]] = rec["text"]
    return docs


def read_wikiextractor(out_dir: Path) -> dict[str, str]:
    docs = {}
    for p in sorted(out_dir.rglob("wiki_*")):
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rec = json.loads(line)
                    docs[rec["title"]] = rec["text"]
    return docs


def leftovers_per_1000_words(texts: list[str]) -> tuple[float, int, dict[str, int]]:
    words = 0
    counts = dict.fromkeys(LEFTOVER_TOKENS, 0)
    for t in texts:
        words += len(_WORD_RE.findall(t))
        for tok in LEFTOVER_TOKENS:
            counts[tok] += t.count(tok)
    total = sum(counts.values())
    return (1000.0 * total / words if words else 0.0), words, counts


def prepare_dump(args: argparse.Namespace, work: Path) -> tuple[Path, int, int]:
    """(the dump to time, its page count, the repeat factor)."""
    n_src = count_pages(args.dump)
    k = args.repeat or max(1, -(-3000 // max(1, n_src)))
    if k > 1:
        dump = work / "bench-dump.xml.bz2"
        return dump, repeat_dump(args.dump, k, dump), k
    return args.dump, n_src, k


def compare_with_baseline(args: argparse.Namespace) -> int:
    """Ours against another checkout (``--baseline``): alternating rounds, wall and CPU time, outputs compared."""
    import shutil
    import statistics

    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    try:
        dump, n_pages, k = prepare_dump(args, work)
        print(
            f"dump: {dump.name} ({n_pages:,} pages; source {args.dump.name} x{k}); processes: {args.processes}; "
            f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"
        )
        runs: dict[str, list[tuple[float, float]]] = {"baseline": [], "ours": []}
        scripts = {"baseline": args.baseline.resolve() / "bench" / "bench_extract.py", "ours": Path(__file__).resolve()}
        for _ in range(args.rounds):
            for name in ("baseline", "ours"):
                out = work / name
                shutil.rmtree(out, ignore_errors=True)
                runs[name].append(
                    timed([sys.executable, str(scripts[name]), "--_ours", str(dump), str(out), str(args.processes)])
                )
        same = (work / "baseline" / "ours.jsonl").read_bytes() == (work / "ours" / "ours.jsonl").read_bytes()
        print(f"\n{'':10}{'wall s (median)':>16}{'CPU s (median)':>16}   rounds: {args.rounds}, alternating")
        med = {}
        for name, values in runs.items():
            med[name] = (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            print(f"{name:10}{med[name][0]:16.2f}{med[name][1]:16.2f}")
        print(
            f"\ncost ratio (ours / baseline): {med['ours'][0] / med['baseline'][0]:.3f} wall-clock, "
            f"{med['ours'][1] / med['baseline'][1]:.3f} CPU time; outputs identical: {'yes' if same else 'NO'}"
        )
        return 0 if same else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dump", type=Path, default=DEFAULT_DUMP, help="dump to read (.xml or .xml.bz2)")
    ap.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="repeat the dump's pages K times into a temporary dump (default: enough for 3,000 pages)",
    )
    ap.add_argument("--processes", type=int, default=2, help="worker processes for both tools (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="timed runs of each tool, alternating (best kept)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the outputs in this folder")
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout of llamawiki to compare with, instead of wikiextractor",
    )
    ap.add_argument("--_ours", nargs=3, metavar=("DUMP", "OUT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args._ours:
        run_ours(Path(args._ours[0]), Path(args._ours[1]), int(args._ours[2]))
        return 0

    if not args.dump.exists():
        print(f"error: {args.dump}: file not found", file=sys.stderr)
        return 2
    if args.baseline is not None:
        if not (args.baseline / "bench" / "bench_extract.py").is_file():
            print(f"error: {args.baseline}: not a checkout of llamawiki (no bench/bench_extract.py)", file=sys.stderr)
            return 2
        return compare_with_baseline(args)
    try:
        import wikiextractor  # noqa: F401
    except ImportError:
        print("error: wikiextractor is not installed: pip install -r bench/requirements.txt", file=sys.stderr)
        return 2

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-extract-"))
    work.mkdir(parents=True, exist_ok=True)
    dump, n_pages, k = prepare_dump(args, work)
    size_mb = dump.stat().st_size / 1e6
    print(f"dump: {dump} ({n_pages:,} pages, {size_mb:.1f} MB; source {args.dump.name} x{k})")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
        f"processes: {args.processes}"
    )

    we_dir, our_dir = work / "wikiextractor", work / "ours"
    we_cmd = [
        sys.executable,
        "-m",
        "wikiextractor.WikiExtractor",
        "--no-templates",
        "--json",
        "-q",
        "--processes",
        str(args.processes),
        "-o",
        str(we_dir),
        str(dump),
    ]
    our_cmd = [sys.executable, str(Path(__file__).resolve()), "--_ours", str(dump), str(our_dir), str(args.processes)]
    # alternate the two tools so that load from elsewhere on the machine hits both alike; keep the best
    t_we = cpu_we = t_ours = cpu_ours = float("inf")
    for _ in range(args.rounds):
        for d in (we_dir, our_dir):
            if d.exists():
                import shutil

                shutil.rmtree(d)
        w, c = timed(we_cmd)
        t_we, cpu_we = min(t_we, w), min(cpu_we, c)
        w, c = timed(our_cmd)
        t_ours, cpu_ours = min(t_ours, w), min(cpu_ours, c)

    we_docs, our_docs = read_wikiextractor(we_dir), read_ours(our_dir)
    common = sorted(set(we_docs) & set(our_docs))
    we_rate, we_words, we_counts = leftovers_per_1000_words([we_docs[t] for t in common])
    our_rate, our_words, our_counts = leftovers_per_1000_words([our_docs[t] for t in common])

    print()
    print(f"{'':16}{'wall s':>8}{'pages/s':>9}{'CPU s':>8}{'articles out':>14}{'leftovers/1k words':>20}{'words':>10}")
    print(
        f"{'wikiextractor':16}{t_we:8.2f}{n_pages / t_we:9.0f}{cpu_we:8.2f}{len(we_docs):14,}{we_rate:20.3f}"
        f"{we_words:10,}"
    )
    print(
        f"{'llamawiki':16}{t_ours:8.2f}{n_pages / t_ours:9.0f}{cpu_ours:8.2f}{len(our_docs):14,}{our_rate:20.3f}"
        f"{our_words:10,}"
    )
    print(
        f"\nthroughput ratio (llamawiki / wikiextractor): {t_we / t_ours:.2f}x wall-clock, "
        f"{cpu_we / cpu_ours:.2f}x CPU time (best of {args.rounds} alternating rounds)"
    )
    print(f"leftovers over the {len(common):,} articles both emitted:")
    print("  wikiextractor: " + ", ".join(f"{k} {v}" for k, v in we_counts.items()))
    print("  llamawiki:     " + ", ".join(f"{k} {v}" for k, v in our_counts.items()))
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
