#!/usr/bin/env python3
"""Stage 1: Wikipedia dump (and/or existing QA files) -> instruction examples, one JSON line each.

    python build_dataset.py data/ptwiki-amostra-pages-articles.xml.bz2
    python build_dataset.py ptwiki-latest-pages-articles-multistream.xml.bz2 --workers 8
    python build_dataset.py data/estudo/dados.csv --output json/estudo.jsonl   # after python data/estudo/baixar.py
    python build_dataset.py dump.xml.bz2 --modes raw --output json/pretreino.jsonl
    python build_dataset.py dump.xml.bz2 --category "História do Brasil" --category-depth 2
    python build_dataset.py dump.xml.bz2 --modes llm --generator configs/models.yaml:llama2-13b-chat-gpu

Each line: {"text": "<the study's Alpaca-style prompt + answer>", "instruction", "input", "output", "article",
"source"}; ``--modes llm`` asks a model (--generator) for pairs about excerpts of each article, as the study
did with ChatGPT (records also carry "generator"; completions cached beside the output, json/dataset.llm-cache.jsonl,
so a rerun resumes); ``--modes raw`` writes {"text": <article>, "article", "source": "raw"} for continued pre-training.
INPUT may be a dump (.xml / .xml.bz2 / multistream) or a QA file (.csv "pergunta;resposta", .json, .jsonl).
"""

import argparse
import sys

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import dataset, llm_questions  # noqa: E402
from llamawiki.fileio import cli, first_few  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="dump (.xml/.xml.bz2) or QA file (.csv/.json/.jsonl)")
    p.add_argument("--output", "-o", default="json/dataset.jsonl", help="output JSONL (default: %(default)s)")
    p.add_argument(
        "--modes",
        default="infobox,lead,section",
        help="comma-separated: infobox, lead, section, llm, raw (default: %(default)s)",
    )
    p.add_argument("--namespaces", default="0", help="comma-separated namespace numbers or names (default: 0)")
    p.add_argument("--workers", type=int, default=1, help="processes cleaning the dump (default: %(default)s)")
    p.add_argument(
        "--allow-truncated",
        action="store_true",
        help="a cut dump is a warning (exit 0), not an error; complete pages are kept either way",
    )
    p.add_argument("--limit", type=int, default=None, help="stop after N articles (for a quick look)")
    p.add_argument(
        "--category",
        default=None,
        metavar="NAME",
        help='keep only the articles in this category of the dump ("História do Brasil")',
    )
    p.add_argument(
        "--category-depth",
        type=int,
        default=0,
        metavar="N",
        help="... or in its subcategories down to N levels (default: %(default)s = directly in it)",
    )
    p.add_argument("--min-answer-chars", type=int, default=dataset.GenerationOptions.min_answer_chars)
    p.add_argument("--max-answer-chars", type=int, default=dataset.GenerationOptions.max_answer_chars)
    p.add_argument(
        "--sentences",
        type=int,
        default=dataset.GenerationOptions.lead_sentences,
        help="sentences per lead/section answer (default: %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("llm mode (questions written by a model)")
    d = llm_questions.LLMOptions
    g.add_argument(
        "--generator",
        default=None,
        metavar="SPEC",
        help="the model: a GGUF file, HF folder or hub id, 'embedded', FILE.yaml:NAME (an entry of "
        "its models: section, e.g. configs/models.yaml:llama2-13b-chat-gpu) or FILE.yaml",
    )
    for flag, kind, metavar, field, what in (
        ("--max-pairs-per-article", int, "N", "max_pairs_per_article", "pairs kept per article at most"),
        (
            "--llm-max-excerpt-tokens",
            int,
            "N",
            "max_excerpt_tokens",
            "each excerpt (the lead, a section) cut to this many tokens",
        ),
        (
            "--llm-min-support",
            float,
            "X",
            "min_support",
            "share of an answer's content words that must occur in its excerpt",
        ),
        ("--llm-max-new-tokens", int, "N", "max_new_tokens", "most tokens the model writes per excerpt"),
        ("--llm-temperature", float, "T", "temperature", "0 = greedy"),
    ):
        g.add_argument(
            flag, type=kind, metavar=metavar, default=getattr(d, field), help=what + " (default: %(default)s)"
        )
    return p.parse_args(argv)


@cli
def main(argv=None):
    args = parse_args(argv)
    options = dataset.GenerationOptions(
        modes=dataset.parse_modes(args.modes),
        min_answer_chars=args.min_answer_chars,
        max_answer_chars=args.max_answer_chars,
        lead_sentences=args.sentences,
        section_sentences=args.sentences,
    )
    namespaces = tuple(
        int(n) if n.strip().lstrip("-").isdigit() else n.strip() for n in args.namespaces.split(",") if n.strip()
    )
    llm_options = llm_questions.LLMOptions(
        max_pairs_per_article=args.max_pairs_per_article,
        max_excerpt_tokens=args.llm_max_excerpt_tokens,
        min_support=args.llm_min_support,
        max_new_tokens=args.llm_max_new_tokens,
        temperature=args.llm_temperature,
    )
    result = dataset.build_dataset(
        args.inputs,
        args.output,
        options,
        namespaces=namespaces,
        workers=args.workers,
        allow_truncated=args.allow_truncated,
        limit=args.limit,
        progress=not args.no_progress,
        category=args.category,
        category_depth=args.category_depth,
        generator=args.generator,
        llm_options=llm_options,
    )
    if result.llm is not None:
        print(result.llm.summary(), file=sys.stderr)
        if result.llm.unparsable_articles:
            names = result.llm.unparsable_articles
            print(
                f"warning: {len(names)} article(s) gave no parsable question/answer pair: {first_few(names)}",
                file=sys.stderr,
            )
    for message in result.truncated:
        print(f"warning: {message} (kept the complete pages before it: --allow-truncated)", file=sys.stderr)
    by_source = ", ".join(f"{k} {v}" for k, v in sorted(result.by_source.items())) or "none"
    articles = f" from {result.pages} articles" if result.pages else ""
    print(f"{args.output}: {result.written} examples{articles} ({by_source})")


if __name__ == "__main__":
    sys.exit(main())
