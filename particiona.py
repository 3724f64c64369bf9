#!/usr/bin/env python3
"""Stage 2: split the examples into train and test sets, grouped by article, and report any leakage.

    python particiona.py                                   # json/dataset.jsonl -> json/treino.jsonl, json/teste.jsonl
    python particiona.py data/estudo/saida.json --test-size 0.1 --seed 42   # after python data/estudo/baixar.py

Deterministic for a seed. No article has examples on both sides (the study's random split let the same
questions into both); examples without an article (imported QA files) are grouped by their normalized question.
``--group-by none`` reproduces the study's plain random split.

``--exclude-questions data/perguntas.csv`` (repeatable) drops from the train side every record whose question is
identical or near-identical (word Jaccard >= --threshold) to an evaluation question, and says how many went for
which question: the way to fine-tune a model that has not seen the comparison's questions.
"""

import argparse
import json
import sys

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import split  # noqa: E402
from llamawiki.evaluation import load_questions  # noqa: E402
from llamawiki.fileio import UserError, atomic_open, check_distinct_paths, cli  # noqa: E402
from llamawiki.records import read_dataset  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument(
        "input",
        nargs="?",
        default="json/dataset.jsonl",
        help="dataset JSONL or the study's JSON list (default: %(default)s)",
    )
    p.add_argument("--train", default="json/treino.jsonl", help="train output (default: %(default)s)")
    p.add_argument("--test", default="json/teste.jsonl", help="test output (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=0.1, help="fraction of examples in test (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="shuffle seed (default: %(default)s)")
    p.add_argument(
        "--group-by",
        default="article",
        help="article (default), question (normalized question), none (plain random split)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=split.DEFAULT_THRESHOLD,
        help="word-Jaccard similarity counted as near-duplicate (default: %(default)s)",
    )
    p.add_argument(
        "--exclude-questions",
        action="append",
        default=[],
        metavar="FILE",
        help="questions file (CSV/JSONL, like data/perguntas.csv): drop training records identical or "
        "near-identical to its questions (repeatable)",
    )
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    if not 0 < args.threshold <= 1:
        raise UserError(f"--threshold {args.threshold}: must be a word-Jaccard similarity in (0, 1]")
    check_distinct_paths({"--train": args.train, "--test": args.test}, [args.input, *args.exclude_questions])
    records = read_dataset(args.input)
    if len(records) < 2:
        raise UserError(f"{args.input}: {len(records)} record(s); need at least 2 to split")
    train, test = split.grouped_split(records, test_size=args.test_size, seed=args.seed, group_key=args.group_by)
    if not train or not test:
        raise UserError(
            f"{args.input}: cannot split {len(records)} records into two non-empty sides "
            f"grouped by {args.group_by} (too few groups)"
        )
    excluded = {}
    for path in args.exclude_questions:
        questions = [(q.id, q.pergunta) for q in load_questions(path)]
        train, dropped = split.exclude_questions(train, questions, threshold=args.threshold)
        excluded[path] = dropped
    with atomic_open(args.train) as f_train, atomic_open(args.test) as f_test:  # both or neither
        for f, part in ((f_train, train), (f_test, test)):
            for rec in part:
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(
        f"{args.input}: {len(records)} records -> {args.train} ({len(train)}), {args.test} ({len(test)}); "
        f"seed {args.seed}, grouped by {args.group_by}"
    )
    for path, dropped in excluded.items():
        n = sum(dropped.values())
        detail = ", ".join(f"{qid} ({k})" for qid, k in dropped.items())
        print(
            f"{path}: {n} training record(s) dropped as identical or near-identical to its questions"
            + (f": {detail}" if detail else "")
        )
    print(split.leakage_report(train, test, threshold=args.threshold).format())


if __name__ == "__main__":
    sys.exit(main())
