#!/usr/bin/env python3
"""Download the original study's files into data/estudo/ (pinned commit, each file checked by sha256).

    python data/estudo/baixar.py            # = make estudo-dados

The files come from github.com/AertySantos/llamawiki at the commit in llamawiki/downloads.py (STUDY_FILES):
dados.csv, saida.json, treino.json, teste.json and the three answer files resposta_*.txt. A file already there
with the right sha256 is not downloaded again; a mismatch or no network is one line `error: <url>: ...` and
leaves nothing half-written. Provenance and license: data/estudo/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.downloads import STUDY_BASE_URL, download_study  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", default=str(ROOT / "data" / "estudo"), help="folder to write to (default: %(default)s)")
    ap.add_argument(
        "--base-url",
        default=STUDY_BASE_URL,
        help="where the repository's files are (a mirror; default: the pinned commit on GitHub)",
    )
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up")
    args = ap.parse_args(argv)
    n = download_study(args.dest, args.base_url, timeout=args.timeout)
    print(f"{args.dest}: {n} file(s) downloaded, all checked by sha256")
    return 0


if __name__ == "__main__":
    sys.exit(main())
