"""chat_cpu.py (llama.cpp, embedded Gemma GGUF) and chat_gpu.py (transformers, tiny random Llama)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_models import gemma_gguf, make_lora  # noqa: F401  (session fixture + helper)

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def run(script: str, *args: str, stdin: str = "", timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=ENV,
    )


def no_traceback(p: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------------- chat_cpu


@pytest.fixture(scope="module")
def gguf(gemma_gguf):  # noqa: F811
    pytest.importorskip("llama_cpp")
    return str(gemma_gguf)


def test_chat_cpu_one_shot(gguf):
    p = run(
        "chat_cpu.py",
        "--model",
        gguf,
        "--prompt",
        "Qual é a capital do Brasil?",
        "--temperature",
        "0",
        "--max-new-tokens",
        "48",
        "--verbose",
    )
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    answer = p.stdout.strip()
    assert answer and "###" not in answer and "\ufffd" not in answer
    assert "tokens/s" in p.stderr and "first token" in p.stderr
    assert ">>>" not in p.stdout  # one-shot: no interactive prompt


def _gemma_lora(folder: Path, scale: float) -> Path:
    """A PEFT-shaped LoRA on every q_proj of Gemma 3 270M (hidden 640, 4 heads x 256), strong enough to show."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(18):
        name = f"base_model.model.model.layers.{i}.self_attn.q_proj"
        tensors[f"{name}.lora_A.weight"] = rng.standard_normal((4, 640)).astype(np.float32)
        tensors[f"{name}.lora_B.weight"] = (scale * rng.standard_normal((1024, 4))).astype(np.float32)
    folder.mkdir()
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    return folder


def test_chat_cpu_with_a_lora_adapter_folder(gguf, tmp_path):
    args = ("--model", gguf, "--prompt", "Qual é a capital do Brasil?", "--temperature", "0", "--max-new-tokens", "16")
    plain = run("chat_cpu.py", *args)
    adapter = _gemma_lora(tmp_path / "lora", scale=0.5)
    tuned = run("chat_cpu.py", *args, "--adapter", str(adapter))
    assert plain.returncode == 0 and tuned.returncode == 0, tuned.stderr
    no_traceback(tuned)
    assert (adapter / "adapter_model.gguf").exists()  # converted once, next to the adapter
    assert tuned.stdout.strip() != plain.stdout.strip()  # and applied
    missing = run("chat_cpu.py", *args, "--adapter", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "nope: adapter not found" in missing.stderr
    no_traceback(missing)


def test_chat_cpu_interactive_reset_and_exit(gguf):
    stdin = "Qual é a capital do Brasil?\n/reset\nQuem foi Tiradentes?\n/exit\nnunca lida\n"
    p = run("chat_cpu.py", "--model", gguf, "--temperature", "0", "--max-new-tokens", "12", stdin=stdin)
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert "[conversation cleared]" in p.stderr
    assert p.stdout.count(">>> ") == 4  # question, /reset, question, /exit; the line after /exit is never read
    answers = [a.strip() for a in p.stdout.split(">>> ")[1:] if a.strip()]
    assert len(answers) == 2


def test_chat_cpu_ctrl_d_and_history(gguf):
    # Ctrl-D (end of input) ends the session cleanly, after a two-turn conversation in completion mode
    stdin = "Quem descobriu o Brasil?\nEm que ano?\n"
    p = run("chat_cpu.py", "--model", gguf, "--temperature", "0", "--max-new-tokens", "16", "--verbose", stdin=stdin)
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert p.stderr.count("tokens/s") == 2
    # the second prompt carries the first turn: it is longer than a one-turn prompt
    sizes = [int(s.split(" tokens, finish")[0].split("prompt ")[-1]) for s in p.stderr.splitlines() if "prompt " in s]
    assert len(sizes) == 2 and sizes[1] > sizes[0] + 10


def test_chat_cpu_ctrl_c_at_the_prompt(gguf):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "chat_cpu.py"), "--model", gguf],
        cwd=ROOT,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a run started in the background inherits SIGINT ignored: the Ctrl-C would never arrive, and closing
        # stdin would then end the chat as "no input" (seen in a `pytest … &` run)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    banner = proc.stderr.readline()  # printed right before the first prompt
    assert "Chatting with" in banner
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=max(5, deadline - time.time()))
    assert proc.returncode in (0, 130), err
    assert "Traceback" not in err


def test_chat_cpu_ctrl_c_stops_the_answer_not_the_chat(gguf):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "chat_cpu.py"), "--model", gguf, "--max-new-tokens", "400", "--temperature", "0"],
        cwd=ROOT,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started in the background (nohup, `make test &`) inherits SIGINT ignored,
        # and Python then never raises KeyboardInterrupt: give the child the default handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # greedy, and a question whose greedy answer runs to the 400-token limit (~10 s): the Ctrl-C always lands
    # mid-answer (with sampling, a short answer sometimes ended before the signal arrived, and the test flaked)
    proc.stdin.write("Descreva em detalhes a história de Portugal e do Brasil.\n")
    proc.stdin.flush()
    seen = ""
    while len(seen) < 8:  # the prompt, then the first characters of the answer
        ch = proc.stdout.read(1)
        assert ch, "chat_cpu ended before answering"
        seen += ch
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate("/exit\n", timeout=120)
    assert proc.returncode == 0, err
    assert "[answer interrupted]" in err and "Traceback" not in err


def test_chat_cpu_bad_model_files(tmp_path):
    p = run("chat_cpu.py", "--model", str(tmp_path / "missing.gguf"), "--prompt", "Oi")
    assert p.returncode == 2 and p.stderr.strip().count("\n") == 0
    assert "missing.gguf: model file not found" in p.stderr
    fake = tmp_path / "notes.gguf"
    fake.write_text("apenas texto\n", encoding="utf-8")
    p = run("chat_cpu.py", "--model", str(fake), "--prompt", "Oi")
    assert p.returncode == 2 and "notes.gguf: not a GGUF file" in p.stderr and p.stderr.strip().count("\n") == 0
    p = run("chat_cpu.py", "--model", str(fake), "--temperature", "-1")
    assert p.returncode == 2 and "--temperature" in p.stderr


def test_chat_cpu_chat_mode_needs_a_chat_format(gguf, tmp_path):
    p = run(
        "chat_cpu.py",
        "--model",
        gguf,
        "--mode",
        "chat",
        "--chat-format",
        "gemma",
        "--prompt",
        "Olá!",
        "--temperature",
        "0",
        "--max-new-tokens",
        "8",
        "--verbose",
    )
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    assert "tokens/s" in p.stderr
    # the GGUF has no template of its own: outside the default path, chat mode asks for --chat-format
    other = tmp_path / "gemma-copy.gguf"
    other.symlink_to(gguf)
    p = run("chat_cpu.py", "--model", str(other), "--mode", "chat", "--prompt", "Olá!", "--max-new-tokens", "8")
    assert p.returncode == 2 and "no chat template" in p.stderr and "--chat-format" in p.stderr


# ---------------------------------------------------------------------------------------------------- chat_gpu


def gpu_main(argv, monkeypatch, capsys, stdin: str | None = None):
    """Run chat_gpu.main in this process (torch is already loaded: much faster than a subprocess)."""
    import chat_gpu

    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = chat_gpu.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_chat_gpu_one_shot_subprocess(tiny_llama):
    p = run(
        "chat_gpu.py",
        "--model",
        str(tiny_llama),
        "--prompt",
        "Qual é a capital do Brasil?",
        "--temperature",
        "0",
        "--max-new-tokens",
        "12",
        "--verbose",
    )
    assert p.returncode == 0, p.stderr
    no_traceback(p)
    import torch

    if not torch.cuda.is_available():
        assert "CUDA not available: running on CPU" in p.stderr
    assert "tokens/s" in p.stderr


def test_chat_gpu_interactive_with_and_without_adapter(tiny_llama, tmp_path, monkeypatch, capsys):
    stdin = "Qual é a capital do Brasil?\n/reset\nQuem foi Tiradentes?\n/exit\n"
    rc, out, err = gpu_main(
        ["--model", str(tiny_llama), "--temperature", "0", "--max-new-tokens", "10"], monkeypatch, capsys, stdin
    )
    assert rc == 0, err
    assert out.count(">>> ") == 4 and "[conversation cleared]" in err
    base_answer = out.split(">>> ")[1]

    adapter = make_lora(tiny_llama, tmp_path / "lora")
    rc, out, err = gpu_main(
        ["--model", str(tiny_llama), "--adapter", str(adapter), "--temperature", "0", "--max-new-tokens", "10"],
        monkeypatch,
        capsys,
        stdin,
    )
    assert rc == 0, err
    assert out.count(">>> ") == 4
    assert out.split(">>> ")[1] != base_answer  # the adapter is really applied


def test_chat_gpu_errors(tiny_llama, tmp_path, monkeypatch, capsys):
    import torch

    if not torch.cuda.is_available():
        rc, out, err = gpu_main(["--model", str(tiny_llama), "--load-in-4bit", "--prompt", "Oi"], monkeypatch, capsys)
        assert rc == 2 and "--load-in-4bit needs CUDA" in err and err.strip().count("\n") == 0
    rc, out, err = gpu_main(["--model", str(tmp_path / "nada"), "--prompt", "Oi"], monkeypatch, capsys)
    assert rc == 2 and "model not found" in err
    rc, out, err = gpu_main(["--model", str(tiny_llama), "--mode", "chat", "--prompt", "Oi"], monkeypatch, capsys)
    assert rc == 2 and "no chat template" in err
    rc, out, err = gpu_main(
        ["--model", str(tiny_llama), "--adapter", str(tmp_path), "--prompt", "Oi"], monkeypatch, capsys
    )
    assert rc == 2 and "not a LoRA adapter folder" in err


def test_chat_gpu_4bit_forced_on_cpu(tiny_llama, monkeypatch, capsys):
    pytest.importorskip("bitsandbytes")
    rc, out, err = gpu_main(
        [
            "--model",
            str(tiny_llama),
            "--load-in-4bit",
            "--allow-cpu-quantization",
            "--prompt",
            "Oi",
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    assert out.strip() or out == "\n"


def test_chat_gpu_llamacpp_backend(gguf, monkeypatch, capsys):
    rc, out, err = gpu_main(
        [
            "--backend",
            "llamacpp",
            "--model",
            gguf,
            "--n-gpu-layers",
            "0",
            "--prompt",
            "Qual é a capital do Brasil?",
            "--temperature",
            "0",
            "--max-new-tokens",
            "16",
        ],
        monkeypatch,
        capsys,
    )
    assert rc == 0, err
    assert out.strip() and "###" not in out
    rc, out, err = gpu_main(
        ["--backend", "llamacpp", "--model", gguf, "--load-in-4bit", "--prompt", "Oi"], monkeypatch, capsys
    )
    assert rc == 2 and "--backend transformers" in err
    rc, out, err = gpu_main(
        ["--backend", "llamacpp", "--model", gguf, "--adapter", "x", "--prompt", "Oi"], monkeypatch, capsys
    )
    assert rc == 2 and "x: adapter not found" in err  # llama.cpp takes adapters (lora_gguf.py)
