"""The shared vocabulary: one set of flag names across the scripts, one model-spec resolution."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llamawiki import evaluation, models, options
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent
SHARED = ["--model", "--backend", "--adapter", "--gguf-file", "--n-ctx", "--max-new-tokens", "--temperature", "--top-p"]
SCRIPTS = [["chat_cpu.py"], ["chat_gpu.py"], ["rag.py", "ask"], ["rag.py", "chat"], ["compare.py"]]


def _help(cmd: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, str(ROOT / cmd[0]), *cmd[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("cmd", SCRIPTS, ids=" ".join)
def test_every_model_script_uses_the_shared_names(cmd):
    text = _help(cmd)
    for flag in SHARED:
        assert f"{flag} " in text or f"{flag}\n" in text, (cmd, flag)
    for old in options.ALIASES:  # hidden aliases: accepted, not advertised
        assert old + " " not in text and old + "\n" not in text, (cmd, old)


def _parser(**kw) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    options.add_model_arguments(p, **kw)
    options.add_generation_arguments(p, defaults=kw.get("defaults", True))
    return p


def test_defaults_are_greedy_and_old_names_still_work():
    args = _parser().parse_args([])
    assert args.temperature == options.GREEDY == 0.0 and args.n_ctx == 2048 and args.max_new_tokens == 256
    args = _parser().parse_args(["--ctx", "512", "--max-tokens", "7"])
    assert args.n_ctx == 512 and args.max_new_tokens == 7
    assert options.model_spec(args) == {"backend": "llamacpp", "n_ctx": 512}
    # as overrides (compare.py): nothing set unless given, so the config wins
    args = _parser(defaults=False).parse_args(["--temperature", "0.5"])
    assert options.model_spec(args) == {} and options.generation_params(args) == {"temperature": 0.5}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--temperature", "-1"], "--temperature -1.0: must be >= 0"),
        (["--top-p", "0"], "--top-p 0.0: must be in (0, 1]"),
        (["--max-new-tokens", "0"], "--max-new-tokens 0: must be >= 1"),
        (["--n-ctx", "10"], "--n-ctx 10: too small (at least 64)"),
    ],
)
def test_impossible_values_are_one_line(argv, message):
    with pytest.raises(UserError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        options.check_generation_arguments(_parser().parse_args(argv))


def test_resolve_spec_fills_the_defaults_once():
    gguf, hf = os.path.abspath(models.EMBEDDED_GGUF), os.path.abspath(models.EMBEDDED_HF)
    s = models.resolve_spec({})
    assert s["backend"] == "llamacpp" and os.path.abspath(s["model"]) == gguf
    s = models.resolve_spec({"backend": "hf", "model": "embedded", "name": "x"})
    assert s["backend"] == "transformers" and os.path.abspath(s["model"]) == hf and s["name"] == "x"
    assert models.resolve_spec({"model": "a/b.gguf"})["backend"] == "llamacpp"
    assert models.resolve_spec({"model": "owner/name"})["backend"] == "transformers"
    # a GGUF inside a folder: llama.cpp loads the file, transformers de-quantizes it from the folder
    assert models.resolve_spec({"backend": "llamacpp", "model": "m", "gguf_file": "q.gguf"})["model"] == os.path.join(
        "m", "q.gguf"
    )
    s = models.resolve_spec({"backend": "transformers", "model": "m/q.gguf"})
    assert (s["model"], s["gguf_file"]) == ("m", "q.gguf")
    assert models.resolve_spec(models.resolve_spec({"adapter": None, "n_ctx": 512})) == models.resolve_spec(
        {"n_ctx": 512}
    )
    with pytest.raises(UserError, match="unknown key.*quantization"):
        models.resolve_spec({"backend": "llamacpp", "quantization": "4bit"})
    with pytest.raises(UserError, match="unknown backend 'vllm'"):
        models.resolve_spec({"backend": "vllm"})
    assert models.is_embedded(models.resolve_spec({})["model"]) and not models.is_embedded("other.gguf")


def test_compare_model_flags_override_every_system():
    cfg = {
        "models": {
            "m": {"backend": "llamacpp", "model": "models/a.gguf", "n_ctx": 2048},
            "m+lora": {"backend": "llamacpp", "model": "models/a.gguf", "adapter": "models/lora"},
        },
        "systems": {"base": {"model": "m"}, "finetuned": {"model": "m+lora"}},
    }
    systems = evaluation.resolve_systems(cfg)
    out = evaluation.apply_model_overrides(
        systems, {"model": "models/big", "backend": "transformers", "adapter": "models/lora-13b", "n_ctx": 4096}
    )
    base, ft = out
    assert base.model == {"backend": "transformers", "model": "models/big", "n_ctx": 4096}
    assert ft.model["adapter"] == "models/lora-13b" and "adapter" not in base.model
    assert base.model_label == "big" and ft.model_label == "big + lora-13b"
    assert evaluation.apply_model_overrides(systems, {}) == systems
    # only the generation keys given on the command line replace the config's
    assert evaluation.generation_settings({"generation": {"max_new_tokens": 16}}, {"temperature": 0.3}) == {
        "max_new_tokens": 16,
        "temperature": 0.3,
        "top_p": 1.0,
        "loop_guard": 3,
    }
