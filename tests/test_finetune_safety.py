"""finetune.py on bad values, crashed runs and Ctrl-C (issue 14), as subprocesses on the tiny random Llama:
one stderr line, no traceback, the right exit code, and bad values refused before any model is loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from llamawiki import prompt

ROOT = Path(__file__).resolve().parent.parent
QA = [
    ("Qual é a capital do Brasil?", "A capital do Brasil é Brasília."),
    ("Quem foi Tiradentes?", "Joaquim José da Silva Xavier, líder da Inconfidência Mineira."),
]


@pytest.fixture(scope="module")
def train_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "treino.jsonl"
    rows = [{"instruction": prompt.INSTRUCTION_QA, "input": q, "output": a} for q, a in QA * 8]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _cfg(model: Path, train: Path, out: Path, **training) -> dict:
    t = {
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "max_length": 256,
        "logging_steps": 1,
        "save_steps": 1000,
        "disable_tqdm": True,
    }
    t.update(training)
    return {
        "model": str(model),
        "train_file": str(train),
        "eval_file": None,
        "output_dir": str(out),
        "cpu_threads": 1,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"},
        "training": t,
    }


def _write(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _run(config: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "finetune.py"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env=_env(),
    )


BAD = [
    ("training.max_steps=abc", "training.max_steps: expected an integer, not 'abc'"),
    ("training.learning_rate=abc", "training.learning_rate: expected a number, not 'abc'"),
    ("lora.r=-1", "lora.r: must be an integer >= 1"),
    ("lora.r=2.5", "lora.r: must be an integer >= 1"),
    ("lora.dropout=1.5", "lora.dropout: must be a number in [0, 1)"),
    ("max_train_samples=0", "max_train_samples: must be an integer >= 1, or null for all"),
    ("max_eval_samples=-3", "max_eval_samples: must be an integer >= 1"),
    ("training.max_steps=0", "training.max_steps: must be >= 1"),
    ("training.per_device_train_batch_size=0", "training.per_device_train_batch_size: must be >= 1"),
    ("training.bf16=maybe", "training.bf16: must be true, false or auto"),
    ("training.optim=adamw_torh", "training.optim: 'adamw_torh' is not one of the"),
    ("training.lr_scheduler_type=cosin", "closest: 'cosine'"),
    ("training.seed=abc", "training.seed: expected an integer"),
    ("training.packing=maybe", "training.packing: expected true/false"),
    ("training.packing=true training.packing_strategy=wrapped", "training.packing_strategy: 'wrapped' cuts examples"),
    ("training.padding_free=true", "training.padding_free: without packing"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_before_the_model_loads(override, message, tiny_llama, train_file, tmp_path):
    out = tmp_path / "out"
    config = _write(tmp_path, _cfg(tiny_llama, train_file, out))
    t0 = time.monotonic()
    p = _run(config, *[a for o in override.split() for a in ("--set", o)])
    elapsed = time.monotonic() - t0
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"error: {config}: "), lines[0]
    assert message in lines[0]
    assert not out.exists(), "nothing is written for a bad config"
    assert elapsed < 20, f"{elapsed:.1f} s: the model was loaded before the config was checked"


def test_bad_value_fails_fast(tiny_llama, train_file, tmp_path):
    """The common numeric keys are checked before torch/trl are even imported (was ~20 s after a model load)."""
    config = _write(tmp_path, _cfg(tiny_llama, train_file, tmp_path / "out"))
    t0 = time.monotonic()
    p = _run(config, "--set", "training.learning_rate=abc")
    assert p.returncode == 2 and time.monotonic() - t0 < 10


def test_failed_run_does_not_lock_its_folder(tiny_llama, train_file, tmp_path):
    """A run that died before its first checkpoint (status running, dead pid; or failed) leaves a folder the
    corrected rerun may use, whatever its config was; a finished run stays protected."""
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = {
        "status": "running",
        "pid": dead.pid,
        "host": os.uname().nodename,
        "identity": {"training.learning_rate": "abc"},
    }
    (out / "run_config.json").write_text(json.dumps(stale), encoding="utf-8")
    config = _write(tmp_path, _cfg(tiny_llama, train_file, out, max_steps=1))
    p = _run(config)
    assert p.returncode == 0, p.stderr
    assert "stopped before its first checkpoint" in p.stdout
    rc = json.loads((out / "run_config.json").read_text())
    assert rc["status"] == "done" and rc["pid"] != dead.pid
    # a finished run of another config is still refused
    p = _run(config, "--set", "lora.r=8")
    assert p.returncode == 2 and "different config" in p.stderr


def test_examples_cut_away_by_max_length(tiny_llama, tmp_path):
    """trl drops an example whose prompt alone fills max_length: all dropped is one line naming the file and the
    key (trl's own failure was a sampler traceback), some dropped is a warning with the count."""
    long_q = "Qual é a capital do Brasil? " * 120  # a prompt far beyond 256 tokens
    rows = [{"instruction": prompt.INSTRUCTION_QA, "input": q, "output": a} for q, a in QA * 2]
    long_rows = [{"instruction": prompt.INSTRUCTION_QA, "input": long_q, "output": "Brasília."}] * 3
    only_long, mixed = tmp_path / "longos.jsonl", tmp_path / "misto.jsonl"
    for path, content in ((only_long, long_rows), (mixed, rows + long_rows)):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content), encoding="utf-8")
    out = tmp_path / "out"
    p = _run(_write(tmp_path, _cfg(tiny_llama, only_long, out, max_steps=1)))
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(errors) == 1, p.stderr
    assert errors[0] == (
        f"error: {only_long}: all 3 examples are dropped: the prompt alone fills "
        "training.max_length (256 tokens), so no answer token is left to learn; raise "
        "training.max_length"
    )
    assert not (out / "run_config.json").exists()  # nothing recorded: the corrected rerun is free
    p = _run(_write(tmp_path, _cfg(tiny_llama, mixed, out, max_steps=1)))
    assert p.returncode == 0, p.stderr
    assert f"warning: {mixed}: 3 of 7 examples dropped: the prompt alone fills training.max_length" in p.stderr


def test_live_run_is_refused(tiny_llama, train_file, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "run_config.json").write_text(
            json.dumps({"status": "running", "pid": sleeper.pid, "host": os.uname().nodename}), encoding="utf-8"
        )
        p = _run(_write(tmp_path, _cfg(tiny_llama, train_file, out, max_steps=1)), "--overwrite")
        assert p.returncode == 2 and f"a run is training in this folder now (pid {sleeper.pid}" in p.stderr
    finally:
        sleeper.kill()
        sleeper.wait()


def test_sigint_saves_a_checkpoint_and_resume_finds_it(tiny_llama, train_file, tmp_path):
    out = tmp_path / "out"
    config = _write(tmp_path, _cfg(tiny_llama, train_file, out, max_steps=100000))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "finetune.py"), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=_env(),
    )
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:  # PrinterCallback logs each step as a dict with 'loss'
        seen.append(line)
        if "'loss'" in line:
            break
        assert time.monotonic() < deadline, "".join(seen)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    err = stderr.strip().splitlines()[-1]
    ckpts = sorted(out.glob("checkpoint-*"))
    assert len(ckpts) == 1 and (ckpts[0] / "trainer_state.json").exists()
    step = int(ckpts[0].name.split("-")[1])
    assert step >= 1
    assert err.startswith(f"error: {out}: interrupted (SIGINT) at step {step}: checkpoint saved in {ckpts[0]}")
    assert "--resume" in err
    assert json.loads((out / "run_config.json").read_text())["status"] == "interrupted"
    # --resume continues from it (here up to a short max_steps, past the saved step)
    p = _run(config, "--resume", "--set", f"training.max_steps={step + 1}")
    assert p.returncode == 0, p.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == step + 1
    assert json.loads((out / "run_config.json").read_text())["resumed_from"] == str(ckpts[0])
