"""Bad input at the model boundary (issue 25), each case a subprocess as a user would run it: a LoRA of another
model, truncated safetensors, text that is not UTF-8, an empty stdin, an empty config, a checkpoint cut by a
full disk. The promise of docs/garantias.md: one ``error:`` line (warnings may come first), a non-zero exit
(never 139), no traceback, nothing written that was not there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GGUF = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
HF = ROOT / "models" / "gemma-3-270m-hf"
needs_gguf = pytest.mark.skipif(not GGUF.exists(), reason="embedded GGUF missing (make models)")
needs_hf = pytest.mark.skipif(not HF.exists(), reason="embedded HF folder missing (make models)")


def run(*args, stdin=subprocess.DEVNULL, env=None, input_bytes=None, timeout=300) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **(env or {}))
    p = subprocess.run(
        [sys.executable, *map(os.fsencode, map(str, args))],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        timeout=timeout,
        stdin=None if input_bytes is not None else stdin,
        input=input_bytes,
    )
    return subprocess.CompletedProcess(
        p.args, p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    )


def assert_one_error(p: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str:
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], p.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def llama_lora(tiny_llama, tmp_path_factory) -> Path:
    """A peft LoRA of the tiny Llama (hidden 64): for the embedded Gemma (hidden 640), an adapter of another model."""
    from test_lora_gguf import make_lora

    return make_lora(Path(tiny_llama), tmp_path_factory.mktemp("lora") / "llama-lora", seed=1)[0]


# -- 1. a LoRA of another model: refused before llama.cpp or transformers read it --------------------------------


@needs_gguf
@pytest.mark.parametrize(
    "argv",
    [
        ("chat_cpu.py", "--prompt", "Oi"),
        ("rag.py", "ask", "Oi", "--index-dir", "{idx}"),
        ("compare.py", "--config", "configs/compare-demo.yaml", "--systems", "finetuned", "--run-dir", "{run}"),
    ],
)
def test_llamacpp_adapter_of_another_model_is_one_line_not_a_segfault(llama_lora, tmp_path, argv):
    adapter = tmp_path / "adapter"
    shutil.copytree(llama_lora, adapter)
    idx = tmp_path / "idx"
    if argv[0] == "rag.py":  # rag.py checks the index first: a real (tiny) one is not needed to reach the model
        pytest.importorskip("faiss")
        if not (ROOT / "indexes" / "amostra" / "manifest.json").exists():
            pytest.skip("demo index missing (make index)")
        idx = ROOT / "indexes" / "amostra"
    args = [a.format(idx=idx, run=tmp_path / "run") for a in argv]
    if argv[0] == "compare.py":
        cfg = yaml.safe_load((ROOT / "configs" / "compare-demo.yaml").read_text(encoding="utf-8"))
        for spec in cfg["models"].values():
            if isinstance(spec, dict) and spec.get("adapter"):
                spec["adapter"] = str(adapter)
        (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
        args[args.index("--config") + 1] = str(tmp_path / "c.yaml")
    else:
        args += ["--adapter", str(adapter)]
    p = run(*args, "--max-new-tokens", "4")
    assert p.returncode != 139
    assert_one_error(p, str(adapter), "adapter does not match the base model (gemma-3-270m-q4_k_m.gguf: ")
    assert not (adapter / "adapter_model.gguf").exists()  # a failed conversion is never cached


@needs_gguf
def test_cached_gguf_of_another_model_is_refused(llama_lora, tmp_path, monkeypatch):
    """A conversion cached by a version without the shape check: the folder and the .gguf given directly."""
    from llamawiki import lora_gguf

    adapter = tmp_path / "adapter"
    shutil.copytree(llama_lora, adapter)
    monkeypatch.setattr(lora_gguf, "lora_mismatch", lambda *a: None)
    bad = lora_gguf.lora_to_gguf(adapter, GGUF)
    for given in (adapter, bad):
        p = run("chat_cpu.py", "--adapter", given, "--prompt", "Oi", "--max-new-tokens", "4")
        assert_one_error(p, f"{given}: adapter does not match the base model")


@needs_hf
def test_transformers_adapter_of_another_model_is_refused_before_the_base_loads(llama_lora, tmp_path):
    p = run("chat_gpu.py", "--adapter", llama_lora, "--prompt", "Oi", "--max-new-tokens", "4")
    assert_one_error(p, f"{llama_lora}: adapter does not match the base model (gemma-3-270m-hf: ")
    assert "Loading weights" not in p.stderr  # the base model was never loaded


# -- 1b. truncated safetensors: the model folder and the adapter's weights ---------------------------------------


def _truncated_copy(src: Path, dst: Path, name: str) -> Path:
    shutil.copytree(src, dst)
    f = dst / name
    f.write_bytes(f.read_bytes()[:-1000])
    return f


def test_truncated_model_safetensors_is_one_line(tiny_llama, tmp_path):
    model = tmp_path / "model"
    f = _truncated_copy(Path(tiny_llama), model, "model.safetensors")
    p = run("chat_gpu.py", "--model", model, "--prompt", "Oi", "--max-new-tokens", "4")
    assert_one_error(p, f"{f}: truncated")
    p = run(
        "compare.py",
        "--config",
        "configs/compare-demo.yaml",
        "--systems",
        "base",
        "--backend",
        "transformers",
        "--model",
        model,
        "--run-dir",
        tmp_path / "run",
        "--limit",
        "1",
    )
    assert_one_error(p, f"{f}: truncated")
    cfg = {
        "model": str(model),
        "train_file": str(tmp_path / "t.jsonl"),
        "eval_file": None,
        "output_dir": str(tmp_path / "out"),
    }
    (tmp_path / "t.jsonl").write_text(json.dumps({"input": "q?", "output": "a."}) + "\n", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    p = run("finetune.py", "--config", tmp_path / "c.yaml")
    assert_one_error(p, f"{f}: truncated")


def test_truncated_adapter_safetensors_is_one_line(tiny_llama, llama_lora, tmp_path):
    f = _truncated_copy(llama_lora, tmp_path / "adapter", "adapter_model.safetensors")
    p = run(
        "chat_gpu.py",
        "--model",
        tiny_llama,
        "--adapter",
        tmp_path / "adapter",
        "--prompt",
        "Oi",
        "--max-new-tokens",
        "4",
    )
    assert_one_error(p, f"{f}: truncated")


# -- 2. text that is not UTF-8; a C locale -------------------------------------------------------------------------

LATIN1 = "Qual \xe9 a capital do Brasil?".encode("latin-1")


@needs_gguf
def test_latin1_stdin_and_argv_are_read_with_a_warning():
    p = run("chat_cpu.py", "--max-new-tokens", "4", input_bytes=LATIN1 + b"\n")
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "warning: stdin: not UTF-8; read as Latin-1: 'Qual é a capital do Brasil?'" in p.stderr
    p = run("chat_cpu.py", "--max-new-tokens", "4", "--prompt", os.fsdecode(LATIN1))
    assert p.returncode == 0 and "warning: --prompt: not UTF-8; read as Latin-1" in p.stderr, p.stderr


@needs_gguf
def test_c_locale_prompt_and_output():
    p = run(
        "chat_cpu.py",
        "--max-new-tokens",
        "4",
        "--prompt",
        "Qual é a capital do Brasil?",
        env={"LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""},
    )
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert "not UTF-8" not in p.stderr  # UTF-8 bytes under a C locale are UTF-8, not Latin-1


# -- 3. an empty stdin ---------------------------------------------------------------------------------------------


@needs_gguf
def test_empty_stdin_is_said_before_the_model_loads(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for stdin in (subprocess.DEVNULL, open(empty, "rb")):
        p = run("chat_cpu.py", stdin=stdin)
        assert_one_error(p, "stdin: no input (stdin is empty): nothing to answer")
        assert "Chatting with" not in p.stderr  # said before loading the model
    p = run("chat_cpu.py", "--max-new-tokens", "4", input_bytes=b"")  # a pipe: known only after loading
    assert_one_error(p, "stdin: no input (stdin is empty)")


# -- 4. an empty config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty config"),
        ("# only a comment\n", "empty config"),
        ("- a\n- b\n", "expected a mapping of settings at the top level"),
    ],
)
def test_empty_or_non_mapping_config_writes_nothing(tmp_path, text, needle):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text, encoding="utf-8")
    p = run("finetune.py", "--config", cfg, "--output-dir", tmp_path / "out")
    assert_one_error(p, f"{cfg}: {needle}")
    assert not (tmp_path / "out").exists()


# -- 5. a checkpoint cut by a full disk ------------------------------------------------------------------------------


def test_resume_names_the_incomplete_checkpoint(tiny_llama, llama_lora, tmp_path):
    out = tmp_path / "out"
    ckpt = out / "checkpoint-1"
    _truncated_copy(llama_lora, ckpt, "adapter_model.safetensors")
    train = tmp_path / "t.jsonl"
    train.write_text(json.dumps({"input": "q?", "output": "a."}) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump({"model": str(tiny_llama), "train_file": str(train), "eval_file": None, "output_dir": str(out)}),
        encoding="utf-8",
    )
    p = run("finetune.py", "--config", cfg, "--resume")
    assert_one_error(p, "checkpoint-1 is incomplete (trainer_state.json is missing")
    (ckpt / "trainer_state.json").write_text("{}", encoding="utf-8")
    p = run("finetune.py", "--config", cfg, "--resume")
    assert_one_error(p, "checkpoint-1 is incomplete (adapter_model.safetensors is damaged", "--overwrite")
