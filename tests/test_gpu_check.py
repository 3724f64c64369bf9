"""bench/gpu_check.sh runs end to end: its CPU smoke mode (TINY=1) takes every step the GPU run takes — build a
random Llama, QLoRA config 1 and 3 steps, chat_gpu.py with the adapter, batched generation, rag.py index —
with a 2-layer model and no 4-bit, so a renamed flag or config key fails here, not on the cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_smoke_mode_runs_every_step(tmp_path):
    log = tmp_path / "check.log"
    env = {**os.environ, "TINY": "1", "WORK": str(tmp_path / "work"), "STEP_TIMEOUT": "600", "PY": sys.executable}
    r = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), str(log)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    text = log.read_text(encoding="utf-8")
    assert r.returncode == 0, text[-3000:]
    rows = [
        line.split("\t")
        for line in text.split("step\trc\tseconds\tpeak VRAM\n")[1].splitlines()
        if line.count("\t") == 3
    ]
    steps = {row[0]: row[1] for row in rows}
    assert set(steps) >= {
        "build-tiny",
        "qlora-1step-tiny",
        "qlora-3steps-tiny",
        "chat-gpu-4bit-tiny",
        "generation-batch-tiny",
        "rag-index-embeddings",
    }
    assert set(steps.values()) == {"0"}
    assert "ratio ours/bare" in text and "failed steps: 0" in text and "index chunks: " in text
    assert (tmp_path / "work" / "lora-tiny" / "adapter_config.json").exists()


def test_mutation_script_parses_and_refuses_bad_input(tmp_path):
    # bench/mutation.sh is not run by CI (it takes hours): its syntax is checked, and a bad module name (or a
    # missing mutmut) is one error line before anything is copied or mutated
    script = ROOT / "bench" / "mutation.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    r = subprocess.run(
        ["bash", str(script), "no-such-module"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: no-such-module: unknown module") and r.stderr.count("\n") == 1, r.stderr
    # a known module on a Python without mutmut (CI's venv has none; -S hides site-packages here too)
    nosite = tmp_path / "python-without-site"
    nosite.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    nosite.chmod(0o755)
    r = subprocess.run(
        ["bash", str(script), "wikitext"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHON": str(nosite)},
    )
    assert r.returncode == 2
    assert r.stderr.startswith("error: mutmut 3.8.1 is not installed (found: none)"), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
