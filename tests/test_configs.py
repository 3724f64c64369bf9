"""Every shipped config is exercised: each fine-tuning config in configs/*.yaml trains ONE step on CPU on the tiny
random Llama (only the model, data, output, step count, quantization and logging keys are overridden, through the
same ``--set`` mechanism users have, so a key the installed trl no longer knows fails here); each compare config
is validated without generating (every key known, every system resolvable, every model spec accepted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llamawiki import evaluation, prompt
from llamawiki.config import load_config
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _kind(path: Path) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "training" in data or "lora" in data:
        return "finetune"
    if "systems" in data:
        return "compare"
    return "models" if set(data) == {"models"} else "other"


FINETUNE = [p for p in CONFIGS if _kind(p) == "finetune"]
COMPARE = [p for p in CONFIGS if _kind(p) == "compare"]


def test_every_shipped_config_is_covered():
    # every shipped config by name: each one below runs (fine-tuning, one step) or is validated (compare)
    assert {p.name for p in FINETUNE} == {"demo.yaml", "llama2-13b-qlora.yaml", "estudo-demo.yaml",
                                          "estudo-llama2-13b.yaml"}
    assert {p.name for p in COMPARE} == {"compare-demo.yaml", "compare-llama2-13b.yaml", "compare-estudo.yaml",
                                         "compare-estudo-demo.yaml"}
    assert [p.name for p in CONFIGS if _kind(p) == "other"] == []


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("data")
    rec = [{"instruction": prompt.INSTRUCTION_QA, "input": "Qual é a capital do Brasil?",
            "output": "A capital do Brasil é Brasília."}] * 8
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rec)
    (d / "treino.jsonl").write_text(lines, encoding="utf-8")
    (d / "teste.jsonl").write_text(lines, encoding="utf-8")
    return d / "treino.jsonl", d / "teste.jsonl"


def _overrides(model: Path, train: Path, out: Path) -> list[str]:
    # only what cannot run here: the model, the data, where it goes, 1 step, no quantization/eval, no tensorboard
    return [f"model={model}", f"train_file={train}", "eval_file=null", f"output_dir={out}",
            "quantization=none", "training.max_steps=1", "training.bf16=false", "training.report_to=none",
            "training.disable_tqdm=true", "cpu_threads=1"]


@pytest.mark.parametrize("path", FINETUNE, ids=lambda p: p.name)
def test_finetune_config_trains_one_step(path, tiny_llama, data_files, tmp_path):
    from llamawiki.training import train

    shipped = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = tmp_path / "out"
    cfg = load_config(path, _overrides(tiny_llama, data_files[0], out))
    # every other key as shipped
    for key, value in shipped.get("training", {}).items():
        if key not in ("max_steps", "bf16", "report_to"):
            assert cfg["training"][key] == value
    assert cfg["lora"] == {**cfg["lora"], **shipped.get("lora", {})}
    assert train(cfg, overwrite=True) == out
    assert (out / "adapter_config.json").exists()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 1


def test_13b_warmup_is_a_ratio():
    """warmup_steps < 1 is a ratio of the total steps in the installed transformers (warmup_ratio is gone)."""
    from transformers import TrainingArguments

    cfg = load_config(ROOT / "configs" / "llama2-13b-qlora.yaml")
    assert "warmup_ratio" not in cfg["training"] and 0 < cfg["training"]["warmup_steps"] < 1
    args = TrainingArguments(output_dir="unused", warmup_steps=cfg["training"]["warmup_steps"], use_cpu=True,
                             report_to="none")
    assert args.get_warmup_steps(1000) == 30


@pytest.mark.parametrize("typo,closest", [("warmup_ratoi", "warmup_steps"), ("warmup_ratio", "warmup_steps"),
                                           ("learnig_rate", "learning_rate")])
def test_unknown_trl_key_names_file_key_version_and_closest(typo, closest, tiny_llama, data_files, tmp_path):
    import trl

    bad = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    bad["training"][typo] = 0.03
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    args = [sys.executable, str(ROOT / "finetune.py"), "--config", str(path)]
    for o in _overrides(tiny_llama, data_files[0], tmp_path / "out"):
        args += ["--set", o]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    err = lines[-1]
    assert err.startswith(f"error: {path}: "), err
    assert f"unknown training key {typo!r}" in err and f"trl {trl.__version__}" in err
    assert f"closest valid key: {closest!r}" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_key_without_close_match(tiny_llama, data_files, tmp_path):
    from llamawiki.training import train

    cfg = load_config(ROOT / "configs" / "demo.yaml", _overrides(tiny_llama, data_files[0], tmp_path / "o")
                      + ["training.zzzqqq=1"])
    with pytest.raises(UserError, match=r"unknown training key 'zzzqqq' for the installed trl .*no close SFTConfig"):
        train(cfg)


# ---- compare configs: validated without generating ----------------------------------------------------------

COMPARE_KEYS = evaluation.COMPARE_KEYS
GENERATION_KEYS = {"max_new_tokens", "temperature", "top_p", "top_k", "repeat_penalty", "repetition_penalty",
                   "batch_size", "stop"}


@pytest.mark.parametrize("path", COMPARE, ids=lambda p: p.name)
def test_compare_config_is_valid(path):
    from llamawiki import evaluation, models

    cfg = load_config(path)
    assert set(cfg) <= COMPARE_KEYS, set(cfg) - COMPARE_KEYS
    assert set(cfg.get("generation") or {}) <= GENERATION_KEYS
    assert set(cfg.get("retrieval") or {}) <= set(evaluation.DEFAULT_RETRIEVAL)
    assert (ROOT / cfg["questions"]).exists()
    evaluation.load_questions(ROOT / cfg["questions"])
    systems = evaluation.resolve_systems(cfg, list(cfg["systems"]))
    assert [s.name for s in systems] == list(cfg["systems"])
    assert set(cfg["default_systems"]) <= set(cfg["systems"])
    for s in systems:
        assert models.resolve_spec(s.model) == s.model, s.name  # resolved once, unknown keys rejected there
        if s.retrieval:
            assert s.retrieval["retriever"] in ("hybrid", "bm25", "dense", "faiss") and s.retrieval["k"] >= 1
    if cfg.get("judge"):
        enabled = {**cfg, "judge": {**cfg["judge"], "enabled": True}}
        spec = evaluation.judge_spec(enabled)          # the judge's model resolves like a system's
        assert spec["model"] and set(cfg["judge"]) <= {"enabled", "model", "generation", "instruction"}
        assert evaluation.judge_spec(cfg) is None or cfg["judge"].get("enabled") is not False
    for stage_path in cfg.get("stages") or {}:
        assert any(stage_path in json.dumps(s.model) or stage_path == (s.retrieval or {}).get("index_dir")
                   for s in systems), f"stage hint for a path no system uses: {stage_path}"
