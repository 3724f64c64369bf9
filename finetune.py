"""Fine-tune a LoRA adapter (QLoRA on GPU, as in the study) on the instruction dataset.

    python finetune.py --config configs/demo.yaml                      # embedded Gemma 270M on CPU, ~3 min
    python finetune.py --config configs/llama2-13b-qlora.yaml          # the study: Llama-2-13B, QLoRA, GPU
    python finetune.py --config configs/demo.yaml --set training.max_steps=100 --set lora.r=8
    python finetune.py --config configs/demo.yaml --resume             # continue from the last checkpoint
    accelerate launch --config_file configs/accelerate/ddp.yaml finetune.py --config ...   # several GPUs

Writes to the output folder: the adapter (adapter_config.json, adapter_model.safetensors), checkpoint-N/,
run_config.json (resolved config, seed, versions, data hashes), loss.png, and with --merge a full model in merged/.
Every setting is in the YAML file (see configs/demo.yaml for each key); --set key=value overrides it.
"""

from __future__ import annotations

import argparse

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki.config import load_config  # noqa: E402
from llamawiki.fileio import UserError, cli  # noqa: E402
from llamawiki.training import train  # noqa: E402  (imports torch/trl only when training starts)


@cli
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    ap.add_argument(
        "--config",
        default="configs/demo.yaml",
        help="YAML experiment file (default: %(default)s; the study: configs/llama2-13b-qlora.yaml)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, dotted for sections: --set training.learning_rate=1e-4",
    )
    ap.add_argument("--output-dir", help="where the adapter goes (overrides output_dir)")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint-N in the output folder")
    ap.add_argument("--overwrite", action="store_true", help="replace a previous run in the output folder")
    ap.add_argument("--merge", action="store_true", help="also write <output_dir>/merged: base + adapter as one model")
    ap.add_argument("--report-to", choices=["none", "tensorboard"], help="training logs (default: the config's)")
    args = ap.parse_args(argv)

    overrides = list(args.set)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    if args.report_to:
        overrides.append(f"training.report_to={args.report_to}")
    cfg = load_config(args.config, overrides)

    try:
        train(cfg, resume=args.resume, overwrite=args.overwrite, merge=args.merge)
    except UserError as e:
        if str(e).startswith("config: "):  # name the file the user wrote
            raise UserError(f"{args.config}: {str(e)[len('config: ') :]}") from None
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
