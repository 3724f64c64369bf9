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
        spec = evaluation.judge_spec(enabled)          # the judge's model resolves like a system's
        assert spec["model"] and set(cfg["judge"]) <= {"enabled", "model", "generation", "instruction"}
        assert evaluation.judge_spec(cfg) is None or cfg["judge"].get("enabled") is not False
    for stage_path in cfg.get("stages") or {}:
        assert any(stage_path in json.dumps(s.model) or stage_path == (s.retrieval or {}).get("index_dir")
                   for s in systems), f"stage hint for a path no system uses: {stage_path}"


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
    page = retrieval.Document(page_content=text, metadata={"title": "História do Brasil",
                                                           "section": retrieval.LEAD_SECTION})
    chunks = list(retrieval.split_documents([page], retrieval.make_splitter(10_000, 20)))
    first = chunks[0].page_content
    assert len(chunks) > 1 and 9_900 <= len(first.split("\n", 1)[1]) <= 10_000
    assert len(first) > retrieval.DEFAULT_MAX_CONTEXT_CHARS
    gen = _WindowGenerator(int(rag.model["n_ctx"]))
    generation = evaluation.system_generation(rag, evaluation.generation_settings(cfg))
    record = evaluation.generate_answer(rag, evaluation.Question("1", "Qual é a capital do Brasil?"), gen,
                                        generation, retriever=_OneChunkRetriever(chunks))
    assert record["answer"] == "Brasília."
    sent = gen.prompts[0]
    assert first in sent                                    # the whole chunk, not cut
    assert chunks[1].page_content.split("\n", 1)[1][:200] not in sent   # k = 1: the second one is not there
    assert gen.count_tokens(sent) <= gen.n_ctx - generation["max_new_tokens"]
