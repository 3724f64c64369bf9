#!/usr/bin/env python3
"""Count the defects of the template Portuguese in a dataset made by build_dataset.py.

Three kinds (``llamawiki.dataset.DEFECT_KINDS``; the rules are in docs/dataset.md, "Português das perguntas"):

- ``preposicao_sem_artigo``: "em" before a place that takes an article ("morreu em Rio de Janeiro");
- ``substantivo_maiusculo``: a capitalized common noun from an infobox after the verb ("foi Militar");
- ``secao_malformada``: a section title glued to the subject ("sobre Primeiro imperador do Brasil de Pedro I").

Only generated text is checked: every question of infobox/lead/section records and the answers of infobox records.

    python data/check_dataset.py json/dataset.jsonl
    python data/check_dataset.py json/dataset.jsonl --fail-on-defects     # exit 1 when any defect is found

Bad input: one line ``error: <file>: <problem>`` and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.dataset import DEFECT_KINDS, count_template_defects  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402
from llamawiki.records import read_dataset  # noqa: E402


@cli
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="dataset JSONL file(s)")
    parser.add_argument("--fail-on-defects", action="store_true", help="exit 1 when any defect is found")
    args = parser.parse_args(argv)
    any_defect = False
    for path in args.datasets:
        counts, n = count_template_defects(read_dataset(path))
        print(f"{path}: {n} records")
        width = max(len(k) for k in DEFECT_KINDS)
        for kind, what in DEFECT_KINDS.items():
            print(f"  {kind:<{width}}  {counts[kind]:>5}  {what}")
        any_defect = any_defect or any(counts.values())
    return 1 if any_defect and args.fail_on_defects else 0


if __name__ == "__main__":
    sys.exit(main())
