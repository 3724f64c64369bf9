#!/usr/bin/env python3
"""Split a multistream dump into N standalone part dumps on its bzip2 stream boundaries (llamawiki.multistream).

    python slurm/split_multistream.py ptwiki-latest-pages-articles-multistream.xml.bz2 --parts 8 --out-dir partes
    python slurm/split_multistream.py DUMP --parts 8 --only 3 --out-dir partes      # just part 3 (an array task)

The index defaults to the one Wikimedia publishes beside the dump (...-multistream-index.txt.bz2). Parts are
named <dump>-partKKofNN.xml.bz2 (K from 0, as the array task ids) and each is a valid dump with every page of
its streams; together they hold every page exactly once. No decompression of the pages: bytes are copied.

Why here and not in rag.py or as `python -m llamawiki...`: splitting is a step of the cluster jobs only
(slurm/index.sbatch runs it once per array task), so it lives beside them; the work is in the package
(llamawiki/multistream.py), and the package itself keeps no command-line entry points.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root, for llamawiki

from llamawiki.fileio import cli  # noqa: E402
from llamawiki.multistream import split_multistream  # noqa: E402


def default_index(dump: str) -> str:
    """``...-multistream.xml.bz2`` -> ``...-multistream-index.txt.bz2`` (Wikimedia's name for its index)."""
    name = Path(dump).name
    stem = name[: -len(".xml.bz2")] if name.endswith(".xml.bz2") else Path(name).stem
    return str(Path(dump).with_name(stem + "-index.txt.bz2"))


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("dump", help="the multistream dump (.xml.bz2)")
    p.add_argument("--index", help="its offset:page_id:title index (default: <dump stem>-index.txt.bz2 beside it)")
    p.add_argument("--parts", type=int, required=True, help="how many parts")
    p.add_argument(
        "--only", type=int, action="append", metavar="K", help="write only part K (from 0; repeatable); default: all"
    )
    p.add_argument("--out-dir", required=True, help="folder for the parts")
    args = p.parse_args(argv)
    for path in split_multistream(
        args.dump, args.index or default_index(args.dump), args.parts, args.out_dir, only=args.only
    ):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
