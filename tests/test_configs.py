"""Every shipped config is exercised: each fine-tuning config in configs/*.yaml trains ONE step on CPU on the tiny
random Llama with only the model, the data (small files, evaluation kept), the output folder, the step count and
the quantization overridden (through the same ``--set`` mechanism users have); every other key runs as shipped
(report_to, precision, optimizer, scheduler, packing, ...) and is checked in the arguments the trainer saved, so a
key the installed trl/transformers no longer knows or rewrites fails here, not on a GPU. Each compare config is
validated without generating (every key known, every system resolvable, every model spec accepted)."""

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
    assert {p.name for p in FINETUNE} == {
        "demo.yaml",
        "llama2-13b-qlora.yaml",
        "estudo-demo.yaml",
        "estudo-llama2-13b.yaml",
    }
    assert {p.name for p in COMPARE} == {
        "compare-demo.yaml",
        "compare-llama2-13b.yaml",
        "compare-estudo.yaml",
        "compare-estudo-demo.yaml",
    }
    assert [p.name for p in CONFIGS if _kind(p) == "other"] == []


@pytest.fixture(scope="module")
def data_files(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("data")
    rec = [
        {
            "instruction": prompt.INSTRUCTION_QA,
            "input": "Qual é a capital do Brasil?",
            "output": "A capital do Brasil é Brasília.",
        }
    ] * 8
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rec)
    (d / "treino.jsonl").write_text(lines, encoding="utf-8")
    (d / "teste.jsonl").write_text(lines, encoding="utf-8")
    return d / "treino.jsonl", d / "teste.jsonl"


# What a CPU test cannot take from a shipped config: the model (a 13B), the data (the real split), where the
# adapter goes, the step count, and 4-bit quantization (bitsandbytes' 4-bit needs CUDA here). Nothing else.
OVERRIDDEN = {"model", "train_file", "eval_file", "output_dir", "quantization", "training.max_steps"}


def _overrides(model: Path, data: tuple[Path, Path], out: Path) -> list[str]:
    sets = [
        f"model={model}",
        f"train_file={data[0]}",
        f"eval_file={data[1]}",
        f"output_dir={out}",
        "quantization=none",
        "training.max_steps=1",
    ]
    assert {s.split("=", 1)[0] for s in sets} == OVERRIDDEN
    return sets


def _expected_in_trainer(key: str, value):
    """(SFTConfig field, value) a shipped ``training`` key must reach the trainer as: the YAML value, except the
    documented renames/resolutions (``gradient_checkpointing`` is transformers 5's ``activation_checkpointing``;
    ``auto`` resolves per device; ``report_to: none`` is transformers' empty list)."""
    import torch

    cuda = torch.cuda.is_available()
    if key == "max_steps":
        return key, 1
    if key == "gradient_checkpointing":
        return "activation_checkpointing", cuda if value == "auto" else value
    if key == "bf16" and value == "auto":
        return key, bool(cuda and torch.cuda.is_bf16_supported())
    if key == "report_to":
        return key, [] if value == "none" else ([value] if isinstance(value, str) else value)
    return key, value


def _tensorboard_scalars(out: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: set[str] = set()
    for run in (out / "runs").iterdir():
        acc = EventAccumulator(str(run))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


@pytest.mark.parametrize("path", FINETUNE, ids=lambda p: p.name)
def test_finetune_config_trains_one_step(path, tiny_llama, data_files, tmp_path):
    import torch

    from llamawiki.training import train

    shipped = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = tmp_path / "out"
    cfg = load_config(path, _overrides(tiny_llama, data_files, out))
    for key, value in shipped.items():  # every top-level key as shipped but the overridden
        if key not in OVERRIDDEN and not isinstance(value, dict):
            assert cfg[key] == value, key
    assert cfg["training"] == {**shipped["training"], "max_steps": 1}
    assert cfg["lora"] == shipped["lora"]
    assert train(cfg, overwrite=True) == out
    assert (out / "adapter_config.json").exists()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 1
    assert "eval_loss" in json.loads((out / "run_config.json").read_text())["metrics"]  # evaluation ran too
    # the arguments the trainer actually trained with (saved by Trainer.save_model) against the YAML
    built = torch.load(out / "training_args.bin", weights_only=False)
    for key, value in shipped["training"].items():
        field, expected = _expected_in_trainer(key, value)
        got = getattr(built, field)
        assert getattr(got, "value", got) == expected, f"{path.name}: training.{key}: {expected!r} -> {got!r}"
    assert built.use_cpu and built.eval_strategy.value == "steps"
    # report_to as shipped: TensorBoard event files with the training loss in <output_dir>/runs, or nothing
    if "tensorboard" in built.report_to:
        assert list(out.glob("runs/*/events.out.tfevents.*"))
        assert {"train/loss", "eval/loss"} <= _tensorboard_scalars(out)
    else:
        assert not (out / "runs").exists()


def test_finetune_cli_report_to_tensorboard_on_demo(tiny_llama, data_files, tmp_path):
    """``finetune.py --report-to tensorboard`` on configs/demo.yaml trains and writes TensorBoard events in
    <output_dir>/runs (it died at once on the ``logging_dir`` transformers 5 removed)."""
    out = tmp_path / "out"
    args = [
        sys.executable,
        str(ROOT / "finetune.py"),
        "--config",
        str(ROOT / "configs" / "demo.yaml"),
        "--report-to",
        "tensorboard",
        "--output-dir",
        str(out),
    ]
    for o in _overrides(tiny_llama, data_files, out):
        args += ["--set", o]
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 1
    assert "train/loss" in _tensorboard_scalars(out)


def test_logging_dir_is_refused_with_where_tensorboard_writes(tiny_llama, data_files, tmp_path):
    from llamawiki.training import train

    cfg = load_config(
        ROOT / "configs" / "demo.yaml",
        _overrides(tiny_llama, data_files, tmp_path / "o") + ["training.logging_dir=logs"],
    )
    with pytest.raises(
        UserError,
        match=r"unknown training key 'logging_dir'.*<output_dir>/runs/<date>_<host>.*"
        r"TENSORBOARD_LOGGING_DIR",
    ):
        train(cfg)
    assert not (tmp_path / "o").exists()


def test_13b_warmup_is_a_ratio():
    """warmup_steps < 1 is a ratio of the total steps in the installed transformers (warmup_ratio is gone)."""
    from transformers import TrainingArguments

    cfg = load_config(ROOT / "configs" / "llama2-13b-qlora.yaml")
    assert "warmup_ratio" not in cfg["training"] and 0 < cfg["training"]["warmup_steps"] < 1
    args = TrainingArguments(
        output_dir="unused", warmup_steps=cfg["training"]["warmup_steps"], use_cpu=True, report_to="none"
    )
    assert args.get_warmup_steps(1000) == 30


@pytest.mark.parametrize(
    "typo,closest",
    [("warmup_ratoi", "warmup_steps"), ("warmup_ratio", "warmup_steps"), ("learnig_rate", "learning_rate")],
)
def test_unknown_trl_key_names_file_key_version_and_closest(typo, closest, tiny_llama, data_files, tmp_path):
    import trl

    bad = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text(encoding="utf-8"))
    bad["training"][typo] = 0.03
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(bad), encoding="utf-8")
    args = [sys.executable, str(ROOT / "finetune.py"), "--config", str(path)]
    for o in _overrides(tiny_llama, data_files, tmp_path / "out"):
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

    cfg = load_config(
        ROOT / "configs" / "demo.yaml", _overrides(tiny_llama, data_files, tmp_path / "o") + ["training.zzzqqq=1"]
    )
    with pytest.raises(UserError, match=r"unknown training key 'zzzqqq' for the installed trl .*no close SFTConfig"):
        train(cfg)


# ---- compare configs: validated without generating ----------------------------------------------------------

COMPARE_KEYS = evaluation.COMPARE_KEYS
GENERATION_KEYS = {
    "max_new_tokens",
    "temperature",
    "top_p",
    "top_k",
    "repeat_penalty",
    "repetition_penalty",
    "batch_size",
    "stop",
    "loop_guard",
}


@pytest.mark.parametrize("path", COMPARE, ids=lambda p: p.name)
def test_compare_config_is_valid(path):
    from llamawiki import evaluation, models

    cfg = load_config(path)
    assert set(cfg) <= COMPARE_KEYS, set(cfg) - COMPARE_KEYS
    assert set(cfg.get("generation") or {}) <= GENERATION_KEYS
    assert set(cfg.get("retrieval") or {}) <= set(evaluation.DEFAULT_RETRIEVAL) | {"max_context_chars"}
    limit = (cfg.get("retrieval") or {}).get("max_context_chars")
    assert limit is None or (type(limit) is int and limit >= 1)
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
        spec = evaluation.judge_spec(enabled)  # the judge's model resolves like a system's
        assert spec["model"] and set(cfg["judge"]) <= {"enabled", "model", "generation", "instruction"}
        assert evaluation.judge_spec(cfg) is None or cfg["judge"].get("enabled") is not False
    for stage_path in cfg.get("stages") or {}:
        assert any(
            stage_path in json.dumps(s.model) or stage_path == (s.retrieval or {}).get("index_dir") for s in systems
        ), f"stage hint for a path no system uses: {stage_path}"


# ---- the study's RAG as run: one whole 10,000-character chunk in the prompt -----------------------------------


class _OneChunkRetriever:
    """What the study's index gives back: chunks in rank order (compare.py keeps the first k)."""

    def __init__(self, docs):
        self.docs = docs

    def invoke(self, question):
        return list(self.docs)


class _WindowGenerator:
    """A generator with the config's window (n_ctx) and a tokenizer at 3 characters per token (a conservative
    figure for Portuguese); records the prompt it is given."""

    def __init__(self, n_ctx: int):
        self.n_ctx, self.prompts = n_ctx, []

    def count_tokens(self, text, special=False):
        return len(text) // 3

    def generate(self, prompt_text, **gen):
        from types import SimpleNamespace

        self.prompts.append(prompt_text)
        return SimpleNamespace(text="Brasília.", n_tokens=2, seconds=0.01, prompt_tokens=self.count_tokens(prompt_text))


@pytest.mark.parametrize("name", ["compare-estudo.yaml", "compare-estudo-demo.yaml"])
def test_estudo_rag_prompt_holds_one_whole_10000_character_chunk(name):
    """The study's RAG: k = 1 chunk of `rag.py index --chunk-size 10000`, whole in the prompt (the default cap,
    retrieval.DEFAULT_MAX_CONTEXT_CHARS = 4000, would cut it), through compare.py's path
    (evaluation.generate_answer -> retrieval.answer) with the config's own generation settings and window."""
    from llamawiki import retrieval

    cfg = load_config(ROOT / "configs" / name)
    rag = [s for s in evaluation.resolve_systems(cfg, list(cfg["systems"])) if s.retrieval]
    assert [s.name for s in rag] == ["rag"]
    rag = rag[0]
    assert rag.retrieval["k"] == 1 and rag.prompt == "estudo"
    # a chunk as the study's index makes it: 10,000-character pieces, each headed by its title line
    text = " ".join(f"Frase {i}: a história do Brasil registra o fato número {i} com detalhes." for i in range(400))
    page = retrieval.Document(
        page_content=text, metadata={"title": "História do Brasil", "section": retrieval.LEAD_SECTION}
    )
    chunks = list(retrieval.split_documents([page], retrieval.make_splitter(10_000, 20)))
    first = chunks[0].page_content
    assert len(chunks) > 1 and 9_900 <= len(first.split("\n", 1)[1]) <= 10_000
    assert len(first) > retrieval.DEFAULT_MAX_CONTEXT_CHARS
    gen = _WindowGenerator(int(rag.model["n_ctx"]))
    generation = evaluation.system_generation(rag, evaluation.generation_settings(cfg))
    record = evaluation.generate_answer(
        rag,
        evaluation.Question("1", "Qual é a capital do Brasil?"),
        gen,
        generation,
        retriever=_OneChunkRetriever(chunks),
    )
    assert record["answer"] == "Brasília."
    sent = gen.prompts[0]
    assert first in sent  # the whole chunk, not cut
    assert chunks[1].page_content.split("\n", 1)[1][:200] not in sent  # k = 1: the second one is not there
    assert gen.count_tokens(sent) <= gen.n_ctx - generation["max_new_tokens"]
