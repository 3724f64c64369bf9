#!/usr/bin/env python3
"""Ask the study's fixed questions to each system and score the answers: the comparison table of the study.

Systems (from the YAML config): base (the model alone), rag (retrieval + the base model), finetuned (base + the
LoRA adapter of finetune.py) and rag+finetuned. Answers are cached in results/<run>/respostas.jsonl: an
interrupted run resumes where it stopped and a finished run re-renders its tables in seconds.

    python compare.py --config configs/compare-demo.yaml --run-dir results/demo
    python compare.py --config configs/compare-demo.yaml --systems base,finetuned --limit 5
    python compare.py --config configs/compare-demo.yaml --model models/llama-2-13b-chat.Q4_K_M.gguf \
        --adapter models/lora-llama2-13b
    python compare.py --config configs/compare-demo.yaml --run-dir results/demo --render-only --study-answers

Writes tabela.md (questions, answers, metrics), metricas.csv, pareado.csv, metricas.png and manifest.json in the
run dir; a run smaller than the finished one there (--limit, fewer --systems) writes them to <run-dir>/parcial/.
"""

from __future__ import annotations

import argparse

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import options  # noqa: E402
from llamawiki.config import load_config  # noqa: E402
from llamawiki.evaluation import CompareOptions, run_comparison  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/compare-demo.yaml", help="YAML with models, systems, retrieval")
    p.add_argument("--systems", help="comma-separated systems to run (default: the config's default_systems)")
    p.add_argument(
        "--questions",
        help="questions file: CSV/JSONL with id,pergunta,resposta_referencia[,artigo] "
        "or a study resposta_*.txt (default: the config's, data/perguntas.csv)",
    )
    p.add_argument("--run-dir", help="output folder (default: results/<run_name>)")
    p.add_argument("--limit", type=int, help="ask only the first N questions")
    p.add_argument("--render-only", action="store_true", help="generate nothing: re-render from the cache")
    p.add_argument(
        "--study-answers",
        nargs="?",
        const=True,
        default=None,
        metavar="DIR",
        help="add the study's published answers as rows study-base/-rag/-finetuned "
        "(DIR holds resposta_*.txt; default: the config's study_answers_dir)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    options.add_model_arguments(
        p,
        defaults=False,
        model_help="run every selected system on this model instead of the config's",
        adapter_help="replace the adapter of the systems that have one (finetuned, rag+finetuned)",
    )
    options.add_generation_arguments(p, defaults=False)
    return p.parse_args(argv)


@cli
def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.set)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()] if args.systems else None
    options.check_generation_arguments(args)
    result = run_comparison(
        cfg,
        CompareOptions(
            systems=systems,
            questions_path=args.questions,
            run_dir=args.run_dir,
            limit=args.limit,
            render_only=args.render_only,
            study_answers=args.study_answers,
            progress=not args.no_progress,
            config_path=args.config,
            model=options.model_spec(args),
            generation=options.generation_params(args),
        ),
    )
    print(
        f"{result.generated} answers generated, {result.cached} from the cache"
        + (f", {result.missing} missing (--render-only)" if result.missing else "")
    )
    for row in result.summary:
        acerto = (
            f"acerto {row['acerto']:.2f} [{row['acerto_low']:.2f}, {row['acerto_high']:.2f}]"
            if row["acerto_n"]
            else "acerto n/a"
        )
        print(
            f"  {row['system']:<16} {acerto}  F1 {row['token_f1']:.2f}  ROUGE-L {row['rouge_l']:.2f}  "
            f"EM {row['exact_match']:.2f}  pt {row['portugues']:.2f}  lists {row['listas']}"
        )
    for r in result.paired:
        print(
            f"  {r['a']} - {r['b']}: {r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}], "
            f"McNemar p {r['p_mcnemar']:.3f}"
        )
    for system, exp in result.exposure.items():
        counts = ", ".join(f"{k} {v}" for k, v in exp.counts().items())
        print(f"  seen in training ({system}): {counts}" + (f" [{exp.status}]" if exp.status != "ok" else ""))
    print(f"table: {result.outputs['tabela.md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
