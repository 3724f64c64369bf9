"""compare.py and the comparison runner: prerequisites, cache/resume, outputs, and a short real run."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llamawiki import evaluation as ev
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    ("q1", "Qual a capital do Brasil?", "Brasília.", "Brasil"),
    ("q2", "Quando foi proclamada a independência do Brasil?", "Em 7 de setembro de 1822.", "Independência do Brasil"),
    ("q3", "Quem foi Tiradentes?", "Um líder da Inconfidência Mineira.", "Tiradentes"),
]


def write_questions(path: Path, rows=QUESTIONS) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "pergunta", "resposta_referencia", "artigo"])
        w.writerows(rows)
    return path


@dataclass
class FakeGeneration:
    text: str
    n_tokens: int
    seconds: float
    prompt_tokens: int


class FakeGenerator:
    """Answers from a fixed table; counts calls; raises after ``fail_after`` answers (an interrupted run)."""

    def __init__(self, spec, log, fail_after=None):
        self.spec, self.log, self.fail_after = spec, log, fail_after

    def generate(self, prompt, max_new_tokens=256, temperature=0.0, top_p=1.0, stop=None, loop_guard=None):
        if self.fail_after is not None and len(self.log["answers"]) >= self.fail_after:
            raise KeyboardInterrupt  # what Ctrl-C does mid-run
        self.log["answers"].append(prompt)
        text = (
            "A capital do Brasil é Brasília.\n### Instruction:\nlixo" if "capital" in prompt else "The answer is 1822."
        )
        if self.spec.get("adapter"):
            text = "Brasília." if "capital" in prompt else "Em 7 de setembro de 1822."
        return FakeGeneration(text, 7, 0.5, 40)


@dataclass
class FakeRag:
    text: str
    sources: list
    contexts: list
    generation: FakeGeneration


def make_env(tmp_path: Path, systems=("base", "finetuned")) -> tuple[dict, Path]:
    """A config whose model, adapter and index folders exist (the fake generator never reads them)."""
    base = tmp_path / "base-model"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    (base / "model.safetensors").write_bytes(b"weights-v1")
    adapter = tmp_path / "lora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"lora-v1")
    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text('{"chunks": 3}')
    cfg = {
        "seed": 1,
        "generation": {"max_new_tokens": 16},
        "models": {
            "tiny": {"backend": "transformers", "model": str(base)},
            "tiny+lora": {"backend": "transformers", "model": str(base), "adapter": str(adapter)},
        },
        "retrieval": {"index_dir": str(index), "retriever": "bm25", "k": 2},
        "systems": {
            "base": {"model": "tiny"},
            "rag": {"model": "tiny", "rag": True},
            "finetuned": {"model": "tiny+lora"},
            "rag+finetuned": {"model": "tiny+lora", "rag": True},
        },
        "default_systems": list(systems),
        "stages": {str(adapter): "`make finetune` (finetune.py)"},
    }
    return cfg, write_questions(tmp_path / "perguntas.csv")


def run(cfg, questions, run_dir, log, fail_after=None, **kw):
    loads = log.setdefault("loads", [])

    def load_generator(spec):
        loads.append(spec)
        return FakeGenerator(spec, log, fail_after)

    def load_retriever(index_dir, kind, k):
        log.setdefault("retrievers", []).append((index_dir, kind, k))
        return object()

    def rag_answer(question, retriever, generator, k, **gen):
        g = generator.generate(f"Contexto: ... Pergunta: {question}", **gen)
        return FakeRag(g.text, ["Brasil", "Brasília"], ["..."], g)

    return ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=run_dir,
        progress=False,
        load_generator=load_generator,
        load_retriever=load_retriever,
        rag_answer=rag_answer,
        **kw,
    )


def cache_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "respostas.jsonl").read_text().splitlines() if line.strip()]


# ---- cache and resume -----------------------------------------------------------------------------------------


def test_interrupted_run_resumes_with_only_missing_answers(tmp_path, capsys):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "results" / "r"
    first = {"answers": []}
    with pytest.raises(KeyboardInterrupt) as e:
        run(cfg, questions, run_dir, first, fail_after=4)
    assert len(first["answers"]) == 4
    assert len(cache_lines(run_dir)) == 4  # every finished answer was on disk before the interruption
    # the one line @cli prints after "interrupted: " (or "terminated (SIGTERM): ")
    assert (
        str(e.value) == f"{run_dir / 'respostas.jsonl'}: 4 new answer(s) saved, 2 left; run the same command "
        "again to resume"
    )
    assert not (run_dir / ".sha256-cache.json").exists()  # only a finished run stores the file hashes

    second = {"answers": []}
    result = run(cfg, questions, run_dir, second)
    assert len(second["answers"]) == 2  # only the 2 missing answers were generated
    assert result.generated == 2 and result.cached == 4
    assert len(cache_lines(run_dir)) == 6

    third = {"answers": []}
    result = run(cfg, questions, run_dir, third)
    assert third["answers"] == [] and third["loads"] == []  # nothing missing: no model is even loaded
    assert result.cached == 6 and (run_dir / "tabela.md").exists()


def test_each_distinct_model_is_loaded_once(tmp_path):
    cfg, questions = make_env(tmp_path)
    log = {"answers": []}
    result = run(cfg, questions, tmp_path / "run", log, systems=["base", "rag", "finetuned", "rag+finetuned"])
    assert len(log["answers"]) == 12
    assert len(log["loads"]) == 2  # base+rag share one model, finetuned+rag+finetuned the other
    assert sum(1 for s in log["loads"] if s.get("adapter")) == 1
    assert len(log["retrievers"]) == 1  # one index, loaded once
    assert "name" not in log["loads"][0]  # compare.py's labels are not passed to the loader
    rec = result.answers[("rag", "q1")]
    assert rec["sources"] == ["Brasil", "Brasília"]
    assert rec["retrieval"]["k"] == 2
    assert result.answers[("finetuned", "q1")]["model_spec"]["adapter"] == str(tmp_path / "lora")
    assert "adapter" not in result.answers[("base", "q1")]["model_spec"]


def test_cut_last_line_is_regenerated(tmp_path):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    cache = run_dir / "respostas.jsonl"
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) - 40])  # the process died while writing the last answer
    log = {"answers": []}
    result = run(cfg, questions, run_dir, log)
    assert len(log["answers"]) == 1 and result.cached == 5
    assert len(cache_lines_tolerant(cache)) == 6


def cache_lines_tolerant(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def test_cache_key_follows_settings_and_model_files(tmp_path):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    log = {"answers": []}
    run(cfg, questions, run_dir, log, generation={"max_new_tokens": 8})  # other generation settings: all new
    assert len(log["answers"]) == 6
    (tmp_path / "lora" / "adapter_model.safetensors").write_bytes(b"lora-v2, retrained")  # a retrained adapter
    log = {"answers": []}
    run(cfg, questions, run_dir, log, generation={"max_new_tokens": 8})
    assert len(log["answers"]) == 3  # only the finetuned system's answers
    assert all(s.get("adapter") for s in log["loads"])


def test_derived_gguf_adapter_does_not_change_the_cache_key(tmp_path):
    # llama.cpp converts the adapter to adapter_model.gguf on first load (lora_gguf.py): a derived file, so the
    # answers generated before it existed must still be found in the cache afterwards
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    (tmp_path / "lora" / "adapter_model.gguf").write_bytes(b"GGUF derived")
    log = {"answers": []}
    run(cfg, questions, run_dir, log)
    assert log["answers"] == []
    files = ev.model_files({"model": str(tmp_path / "base-model"), "adapter": str(tmp_path / "lora")})
    assert "adapter_model.gguf" not in {f.name for f in files}
    # a GGUF adapter given directly is the adapter's identity
    gguf_adapter = tmp_path / "other.gguf"
    gguf_adapter.write_bytes(b"GGUF")
    assert gguf_adapter in ev.model_files({"model": str(tmp_path / "base-model"), "adapter": str(gguf_adapter)})


def test_render_only_generates_nothing_even_without_models(tmp_path):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    (run_dir / "tabela.md").unlink()
    for f in (tmp_path / "base-model").iterdir():
        f.unlink()
    log = {"answers": []}
    result = run(cfg, questions, run_dir, log, render_only=True)
    assert log["loads"] == [] and result.cached == 6 and result.missing == 0
    assert "Brasília" in (run_dir / "tabela.md").read_text()


# ---- prerequisites --------------------------------------------------------------------------------------------


def test_missing_adapter_and_index_are_reported_before_generating(tmp_path):
    cfg, questions = make_env(tmp_path)
    for f in (tmp_path / "lora").iterdir():
        f.unlink()
    (tmp_path / "index" / "manifest.json").unlink()
    log = {"answers": []}
    with pytest.raises(UserError) as e:
        run(cfg, questions, tmp_path / "run", log, systems=["base", "rag", "finetuned"])
    msg = str(e.value)
    assert "lora: adapter not found" in msg and "`make finetune` (finetune.py)" in msg
    assert "index: RAG index not found" in msg and "rag.py index" in msg
    assert "\n" not in msg
    assert log["loads"] == [] and not (tmp_path / "run" / "respostas.jsonl").exists()


def test_unknown_system(tmp_path):
    cfg, questions = make_env(tmp_path)
    with pytest.raises(UserError, match="unknown system"):
        run(cfg, questions, tmp_path / "run", {"answers": []}, systems=["base", "nope"])


# ---- outputs --------------------------------------------------------------------------------------------------


def test_outputs_table_csv_png_manifest(tmp_path):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    result = run(cfg, questions, run_dir, {"answers": []}, systems=["base", "rag", "finetuned"])
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert table.startswith("# Perguntas e Respostas")
    assert table.index("## 1. Qual a capital do Brasil?") < table.index("## 2. Quando foi proclamada")
    assert "**Referência:** Brasília." in table
    assert "> A capital do Brasil é Brasília." in table and "### Instruction" not in table  # cut at stop
    assert "Fontes: Brasil; Brasília" in table
    assert "**não está em português**" in table  # "The answer is 1822."
    assert "| sistema |" in table and "| finetuned |" in table

    with open(run_dir / "metricas.csv", encoding="utf-8") as f:
        rows = {r["system"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["base", "rag", "finetuned"]
    ft = rows["finetuned"]
    # finetuned: q1 "Brasília." (EM 1), q2 "Em 7 de setembro de 1822." (EM 1), q3 the same date (EM 0)
    assert float(ft["exact_match"]) == pytest.approx(2 / 3, abs=1e-3)
    assert float(ft["exact_match_low"]) <= float(ft["exact_match"]) <= float(ft["exact_match_high"])
    assert float(rows["base"]["portugues"]) == pytest.approx(1 / 3, abs=1e-3)
    assert float(rows["base"]["latency_s"]) >= 0 and float(rows["base"]["tokens_per_s"]) == pytest.approx(14.0)

    png = (run_dir / "metricas.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 1 and manifest["generation"]["max_new_tokens"] == 16
    assert manifest["questions"]["n"] == 3 and len(manifest["questions"]["sha256"]) == 64
    files = {Path(f["path"]).name: f["sha256"] for m in manifest["models"] for f in m["files"]}
    assert files["model.safetensors"] == hashlib.sha256(b"weights-v1").hexdigest()
    assert files["adapter_model.safetensors"] == hashlib.sha256(b"lora-v1").hexdigest()
    assert any(m["index_manifest_sha256"] for m in manifest["models"])
    assert "transformers" in manifest["libraries"] and manifest["study_answers"] is None
    assert manifest["answers"] == {"generated": 9, "cached": 0, "missing": 0, "cache": str(run_dir / "respostas.jsonl")}
    assert result.summary[0]["system"] == "base"


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_study_answers_as_reference_rows(tmp_path, which, request):
    folder = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []}, systems=["base"], study_answers=str(folder))
    table = (run_dir / "tabela.md").read_text(encoding="utf-8")
    assert "**study-rag**" in table and "> The capital of Brazil is Brasília." in table
    with open(run_dir / "metricas.csv", encoding="utf-8") as f:
        rows = {r["system"]: r for r in csv.DictReader(f)}
    assert list(rows) == ["base", "study-base", "study-rag", "study-finetuned"]
    # q1 and q2 are study questions ("Quem foi Tiradentes?" is not one of them): 2 answers each
    assert rows["study-rag"]["n_answers"] == "2"
    assert float(rows["study-rag"]["portugues"]) == pytest.approx(0.5)  # q1 in English, q2 in Portuguese
    assert rows["study-rag"]["latency_s"] == ""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert set(manifest["study_answers"]) == set(ev.STUDY_FILES.values())


def test_missing_study_folder(tmp_path):
    cfg, questions = make_env(tmp_path)
    with pytest.raises(UserError, match="resposta_rga.txt"):
        run(cfg, questions, tmp_path / "run", {"answers": []}, study_answers=str(tmp_path / "nada"))


# ---- the CLI --------------------------------------------------------------------------------------------------


def _cli(args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_missing_adapter_one_line_no_traceback(tmp_path):
    cfg, questions = make_env(tmp_path)
    for f in (tmp_path / "lora").iterdir():
        f.unlink()
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    p = _cli(["--config", "cfg.yaml", "--questions", str(questions), "--run-dir", "out", "--no-progress"], tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "adapter not found" in lines[0] and "make finetune" in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_bad_questions_file(tmp_path):
    cfg, _ = make_env(tmp_path)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "q.csv").write_text("id,texto\n1,oi\n", encoding="utf-8")
    p = _cli(["--config", "cfg.yaml", "--questions", "q.csv", "--run-dir", "out"], tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "q.csv: missing column(s): pergunta, resposta_referencia" in p.stderr


# ---- a short real run on the tiny model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama, tmp_path_factory) -> Path:
    """A LoRA adapter for the tiny Llama, made here with peft (random LoRA B so it changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
        ),
    )
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-lora")
    peft_model.save_pretrained(out)
    return out


def test_end_to_end_on_tiny_model(tiny_llama, tiny_adapter, tmp_path, capsys):
    """compare.py's main() in-process (the real loader, generation, cache and outputs), two systems, 3 questions."""
    import compare

    cfg = {
        "seed": 3,
        "generation": {"max_new_tokens": 6},
        "models": {
            "tiny": {"backend": "transformers", "model": str(tiny_llama)},
            "tiny+lora": {"backend": "transformers", "model": str(tiny_llama), "adapter": str(tiny_adapter)},
        },
        "systems": {"base": {"model": "tiny"}, "finetuned": {"model": "tiny+lora"}},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    questions = write_questions(tmp_path / "perguntas.csv")
    args = [
        "--config",
        str(tmp_path / "cfg.yaml"),
        "--questions",
        str(questions),
        "--run-dir",
        str(tmp_path / "res"),
        "--no-progress",
    ]
    assert compare.main(args) == 0
    assert "6 answers generated, 0 from the cache" in capsys.readouterr().out
    recs = cache_lines(tmp_path / "res")
    assert len(recs) == 6 and {r["system"] for r in recs} == {"base", "finetuned"}
    for r in recs:
        assert 0 < r["tokens"] <= 6 and r["latency_s"] > 0 and r["tokens_per_s"] > 0
        assert r["generation"] == {"max_new_tokens": 6, "temperature": 0.0, "top_p": 1.0, "loop_guard": 3}
    base = {r["question_id"]: r["answer"] for r in recs if r["system"] == "base"}
    fine = {r["question_id"]: r["answer"] for r in recs if r["system"] == "finetuned"}
    assert base != fine  # the adapter was applied
    for name in ("tabela.md", "metricas.csv", "metricas.png", "manifest.json"):
        assert (tmp_path / "res" / name).stat().st_size > 0
    manifest = json.loads((tmp_path / "res" / "manifest.json").read_text())
    names = {Path(f["path"]).name for m in manifest["models"] for f in m["files"]}
    assert {"model.safetensors", "adapter_model.safetensors", "adapter_config.json"} <= names
    # a second run answers from the cache without loading a model, and renders the same answers
    assert compare.main(args) == 0
    assert "0 answers generated, 6 from the cache" in capsys.readouterr().out
    assert cache_lines(tmp_path / "res") == recs


def test_rag_system_through_the_real_retrieval_answer(tmp_path):
    """The default RAG path (retrieval.answer with the one prompt template) with a fixed retriever: the prompt
    carries the retrieved passage and the record carries its source title."""
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    cfg, questions = make_env(tmp_path, systems=("rag",))
    prompts = []

    class Gen:
        def generate(self, prompt, **gen):
            prompts.append(prompt)
            return FakeGeneration("Brasília é a capital.\n### Input:\nx", 5, 0.25, 80)

    docs = [Document(page_content="Brasília é a capital federal do Brasil.", metadata={"title": "Brasília"})]
    result = ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=tmp_path / "run",
        progress=False,
        limit=1,
        load_generator=lambda spec: Gen(),
        load_retriever=lambda index_dir, kind, k: RunnableLambda(lambda q: docs),
    )
    rec = result.answers[("rag", "q1")]
    assert rec["answer"] == "Brasília é a capital." and rec["sources"] == ["Brasília"]
    assert "Contexto:" in prompts[0] and "Brasília é a capital federal do Brasil." in prompts[0]
    assert rec["tokens"] == 5 and rec["tokens_per_s"] == pytest.approx(20.0)


# ---- a smaller run never replaces a finished one; a failed run changes nothing ---------------------------------


def _tables(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.md5((folder / name).read_bytes()).hexdigest()
        for name in ("tabela.md", "metricas.csv", "pareado.csv", "manifest.json")
    }


@pytest.mark.parametrize("smaller", [{"limit": 1}, {"limit": 1, "render_only": True}, {"systems": ["base"]}])
def test_a_smaller_run_writes_its_tables_to_parcial(tmp_path, capsys, smaller):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    finished = _tables(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["coverage"] == {"systems": ["base", "finetuned"], "question_ids": ["q1", "q2", "q3"]}
    capsys.readouterr()
    result = run(cfg, questions, run_dir, {"answers": []}, **smaller)
    assert _tables(run_dir) == finished  # the finished run's tables are untouched
    assert result.outputs["tabela.md"] == run_dir / "parcial" / "tabela.md"
    partial = json.loads((run_dir / "parcial" / "manifest.json").read_text())
    assert partial["partial_of"] == str(run_dir) and partial["answers"]["cache"] == str(run_dir / "respostas.jsonl")
    err = capsys.readouterr().err
    assert err.startswith(f"note: {run_dir}: holds the tables of a larger run (3 questions") and "parcial" in err
    # the same (or a larger) run replaces the tables as before
    run(cfg, questions, run_dir, {"answers": []}, systems=["base", "rag", "finetuned"])
    assert json.loads((run_dir / "manifest.json").read_text())["coverage"]["systems"] == ["base", "rag", "finetuned"]


def test_a_smaller_run_against_a_manifest_without_coverage(tmp_path):
    """results/ written before the coverage field: the same questions file with fewer rows is smaller."""
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["coverage"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    finished = _tables(run_dir)
    result = run(cfg, questions, run_dir, {"answers": []}, limit=2, render_only=True)
    assert _tables(run_dir) == finished and result.outputs["tabela.md"].parent.name == "parcial"


def test_a_failed_run_changes_no_file_hash_cache_and_says_no_resume(tmp_path):
    cfg, questions = make_env(tmp_path)
    run_dir = tmp_path / "run"
    run(cfg, questions, run_dir, {"answers": []})
    hashes = run_dir / ".sha256-cache.json"
    before = hashes.read_bytes()
    (tmp_path / "base-model" / "model.safetensors").write_bytes(b"weights-v2")  # new weights: new hashes

    def broken(spec):
        raise UserError(f"{spec['model']}: not a model folder")

    with pytest.raises(UserError) as e:
        ev.run_comparison(cfg, questions_path=questions, run_dir=run_dir, progress=False, load_generator=broken)
    assert "resume" not in str(e.value)
    assert hashes.read_bytes() == before


def test_an_error_after_some_answers_says_they_are_kept(tmp_path):
    cfg, questions = make_env(tmp_path)
    log = {"answers": []}

    class Failing(FakeGenerator):
        def generate(self, prompt, **kw):
            if len(self.log["answers"]) >= 2:
                raise UserError("model.gguf: the model stopped answering")
            return super().generate(prompt, **kw)

    with pytest.raises(UserError) as e:
        ev.run_comparison(
            cfg,
            questions_path=questions,
            run_dir=tmp_path / "run",
            progress=False,
            load_generator=lambda spec: Failing(spec, log),
        )
    assert str(e.value) == (
        "model.gguf: the model stopped answering (2 answer(s) generated before it are kept in "
        f"{tmp_path / 'run' / 'respostas.jsonl'})"
    )


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_the_table_warns_that_acerto_is_less_precise_on_sampled_answers(tmp_path, temperature):
    # docs/compare.md, "Rótulos à mão": precision 0.82 on answers sampled at temperature 0.7, 0.94-0.96 on greedy ones
    cfg, _ = make_env(tmp_path)
    cfg["generation"]["temperature"] = temperature
    questions = tmp_path / "perguntas.csv"
    with open(questions, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "pergunta", "resposta_referencia", "respostas_aceitas"])
        w.writerow(["q1", "Qual a capital do Brasil?", "Brasília.", "Brasília"])
    run(cfg, questions, tmp_path / "run", {"answers": []}, systems=["base"])
    table = (tmp_path / "run" / "tabela.md").read_text(encoding="utf-8")
    assert ("gulosa" in table) == (temperature == 0)
    assert ("**Respostas amostradas:**" in table) == (temperature > 0)
