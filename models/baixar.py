#!/usr/bin/env python3
"""Download every model the configs name, at pinned revisions, into the paths they read (models/...).

    python models/baixar.py --dry-run                    # the plan: repo, revision, files, size, destination
    python models/baixar.py                              # = make modelos-estudo (~41 GB)
    python models/baixar.py --only llama-2-13b-chat-q4km # one model (repeat --only for more)

The table is llamawiki/downloads.py (MODELS): Llama-2-13b-chat in HF format (NousResearch/Llama-2-13b-chat-hf,
~26 GB, for the GPU) and the Q4_K_M and Q4_K_S GGUF files of TheBloke/Llama-2-13B-chat-GGUF (llama.cpp), each at
a commit, the GGUF files checked by sha256. Sizes are printed from the hub before anything is downloaded;
an interrupted download resumes; a model already there is skipped without the network. Afterwards
HF_HUB_OFFLINE=1 works: the configs name these local paths. --dry-run needs no network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.downloads import MODELS, download_models, select_models  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="download only this model (repeatable): " + ", ".join(m.name for m in MODELS),
    )
    ap.add_argument("--dry-run", action="store_true", help="print the plan, download nothing (works offline)")
    ap.add_argument("--root", default=str(ROOT), help="the repository the paths are relative to (default: %(default)s)")
    args = ap.parse_args(argv)
    download_models(select_models(args.only), root=args.root, dry_run=args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
