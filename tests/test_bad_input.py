"""The bad-input battery (issue 14): each case runs a script as a subprocess, as a careless or unlucky user would,
and asserts the promise of docs/garantias.md:

* exactly one ``error:`` line on stderr, nothing else but warnings (the libraries' noise silenced);
* a non-zero exit (never 139: no segfault);
* no traceback;
* the md5 of every previous output unchanged.

Cases that must succeed (a damaged cached conversion is rebuilt) assert that instead.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_scripts_dataset import dump_xml

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd: Path, stdin=subprocess.DEVNULL, preexec=None, timeout=120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=stdin,
        preexec_fn=preexec,
    )


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_refused(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """One ``error:`` line (other lines may only be warnings), exit != 0 and not a signal, no traceback."""
    assert proc.returncode > 0, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr[-3000:]
    others = [line for line in lines if not line.startswith(("error: ", "warning: "))]
    assert not others, f"noise around the error: {others[:5]}"
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


# ------------------------------------------------------------------------------------------------------------
# Fixtures: a small dump, a dataset, a tiny Llama GGUF with a LoRA adapter
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "mini-pages-articles.xml.bz2").write_bytes(bz2.compress(dump_xml().encode("utf-8")))
    proc = run(
        ROOT / "build_dataset.py",
        root / "mini-pages-articles.xml.bz2",
        "-o",
        root / "dataset.jsonl",
        "--no-progress",
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama, tmp_path_factory):
    """(base GGUF, finetune-style adapter folder, its GGUF conversion) on the tiny random Llama."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("peft")
    pytest.importorskip("gguf")
    from gguf_tiny import write_llama_gguf
    from test_lora_gguf import make_lora

    from llamawiki import lora_gguf

    root = tmp_path_factory.mktemp("tiny-gguf")
    base = write_llama_gguf(Path(tiny_llama), root / "tiny-f32.gguf")
    adapter, _ = make_lora(Path(tiny_llama), root / "adapter", seed=1)
    converted = lora_gguf.lora_to_gguf(adapter, base, root / "adapter.gguf")
    return {"root": root, "base": base, "adapter": adapter, "gguf": converted}


def chat_cpu(tiny_gguf, adapter, cwd):
    return run(
        ROOT / "chat_cpu.py",
        "--model",
        tiny_gguf["base"],
        "--adapter",
        adapter,
        "--prompt",
        "Oi",
        "--max-new-tokens",
        "2",
        "--n-ctx",
        "128",
        cwd=cwd,
        timeout=180,
    )


# ------------------------------------------------------------------------------------------------------------
# 1. No segfault: every adapter file is validated before llama.cpp reads it
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["text-named-gguf", "truncated-adapter", "base-model-as-adapter", "junk-txt"])
def test_bad_adapter_is_one_line_not_a_segfault(tiny_gguf, tmp_path, case):
    if case == "text-named-gguf":
        bad = tmp_path / "adapter.gguf"
        bad.write_text("isto não é um GGUF\n", encoding="utf-8")
        needles = ["not a GGUF"]
    elif case == "truncated-adapter":
        bad = tmp_path / "cut.gguf"
        data = tiny_gguf["gguf"].read_bytes()
        bad.write_bytes(data[: len(data) * 2 // 3])
        needles = ["truncated"]
    elif case == "base-model-as-adapter":
        bad = tiny_gguf["base"]
        needles = ["not a LoRA adapter"]
    else:
        bad = tmp_path / "junk.txt"
        bad.write_text("lixo\n", encoding="utf-8")
        needles = ["not an adapter"]
    line = assert_refused(chat_cpu(tiny_gguf, bad, tmp_path), str(bad.name), *needles)
    assert "not found" not in line


def test_damaged_cached_conversion_is_rebuilt(tiny_gguf, tmp_path):
    from llamawiki import lora_gguf

    adapter = tmp_path / "adapter"
    shutil.copytree(tiny_gguf["adapter"], adapter)
    cached = lora_gguf.ensure_lora_gguf(adapter, tiny_gguf["base"])
    good = cached.read_bytes()
    cached.write_bytes(good[:100_000] if len(good) > 100_000 else good[: len(good) // 2])
    proc = chat_cpu(tiny_gguf, adapter, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lora_gguf.check_gguf_file(cached, kind="adapter", architecture="llama")  # whole again
    assert cached.stat().st_size == len(good)


# ------------------------------------------------------------------------------------------------------------
# 2. A failed run never changes a previous output; same-file inputs/outputs refused
# ------------------------------------------------------------------------------------------------------------


def _cut_bz2(work: Path, tmp_path: Path) -> Path:
    data = (work / "mini-pages-articles.xml.bz2").read_bytes()
    cut = tmp_path / "cortado.xml.bz2"
    cut.write_bytes(data[: len(data) // 2])
    return cut


CASES = {
    # name: (argv builder(work, tmp) -> (argv, files whose md5 must not change), needles)
    "build_dataset: truncated bz2": (
        lambda w, t: (
            [ROOT / "build_dataset.py", _cut_bz2(w, t), "-o", t / "good.jsonl", "--no-progress"],
            [t / "good.jsonl"],
        ),
        ["cortado.xml.bz2", "unchanged"],
    ),
    "build_dataset: truncated bz2 --allow-truncated, no page": (
        lambda w, t: (
            [ROOT / "build_dataset.py", _cut_bz2(w, t), "-o", t / "good.jsonl", "--no-progress", "--allow-truncated"],
            [t / "good.jsonl"],
        ),
        ["no examples"],
    ),
    "build_dataset: output is a directory": (
        lambda w, t: ([ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t, "--no-progress"], []),
        ["is a directory"],
    ),
    "build_dataset: output is the input": (
        lambda w, t: ([ROOT / "build_dataset.py", t / "good.jsonl", "-o", t / "good.jsonl"], [t / "good.jsonl"]),
        ["input"],
    ),
    "build_dataset: --limit -1": (
        lambda w, t: (
            [ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t / "good.jsonl", "--limit", "-1"],
            [t / "good.jsonl"],
        ),
        ["--limit"],
    ),
    "build_dataset: --sentences 0": (
        lambda w, t: (
            [ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t / "good.jsonl", "--sentences", "0"],
            [t / "good.jsonl"],
        ),
        ["--sentences"],
    ),
    "build_dataset: min chars above max": (
        lambda w, t: (
            [
                ROOT / "build_dataset.py",
                w / "mini-pages-articles.xml.bz2",
                "-o",
                t / "good.jsonl",
                "--min-answer-chars",
                "500",
                "--max-answer-chars",
                "100",
            ],
            [t / "good.jsonl"],
        ),
        ["--min-answer-chars"],
    ),
    "build_dataset: JSON holding a dict": (
        lambda w, t: (
            [ROOT / "build_dataset.py", _write(t / "qa.json", '{"pergunta": "x"}'), "-o", t / "good.jsonl"],
            [t / "good.jsonl"],
        ),
        ["qa.json", "list"],
    ),
    "particiona: --train equal to --test": (
        lambda w, t: (
            [ROOT / "particiona.py", w / "dataset.jsonl", "--train", t / "x.jsonl", "--test", t / "x.jsonl"],
            [t / "x.jsonl"],
        ),
        ["same file"],
    ),
    "particiona: --train is the input": (
        lambda w, t: (
            [ROOT / "particiona.py", t / "good.jsonl", "--train", t / "good.jsonl", "--test", t / "teste.jsonl"],
            [t / "good.jsonl"],
        ),
        ["input"],
    ),
    "particiona: --test is a directory": (
        lambda w, t: (
            [ROOT / "particiona.py", w / "dataset.jsonl", "--train", t / "x.jsonl", "--test", t],
            [t / "x.jsonl"],
        ),
        ["is a directory"],
    ),
    "particiona: --threshold 5": (
        lambda w, t: (
            [
                ROOT / "particiona.py",
                w / "dataset.jsonl",
                "--train",
                t / "x.jsonl",
                "--test",
                t / "y.jsonl",
                "--threshold",
                "5",
            ],
            [t / "x.jsonl"],
        ),
        ["--threshold"],
    ),
    "compare: --limit 0 on a finished run": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--limit", "0"], [t / "run" / "tabela.md"]),
        ["--limit"],
    ),
    "compare: --limit -2": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--limit", "-2"], [t / "run" / "tabela.md"]),
        ["--limit"],
    ),
    "compare: --set generation.temperature=abc": (
        lambda w, t: (
            [ROOT / "compare.py", "--run-dir", t / "run", "--set", "generation.temperature=abc"],
            [t / "run" / "tabela.md"],
        ),
        ["generation.temperature", "abc"],
    ),
    "compare: --max-new-tokens 0": (
        lambda w, t: (
            [ROOT / "compare.py", "--run-dir", t / "run", "--max-new-tokens", "0"],
            [t / "run" / "tabela.md"],
        ),
        ["--max-new-tokens"],
    ),
    "compare: unknown top-level key": (
        lambda w, t: (
            [ROOT / "compare.py", "--config", _typo_config(t), "--run-dir", t / "run"],
            [t / "run" / "tabela.md"],
        ),
        ["generaton", "did you mean 'generation'"],
    ),
    "compare: unterminated quote in the questions": (
        lambda w, t: (
            [
                ROOT / "compare.py",
                "--run-dir",
                t / "run",
                "--questions",
                _write(t / "q.csv", 'id,pergunta,resposta_referencia\n1,"Qual a capital?,Brasília\n2,Quem?,Pedro\n'),
            ],
            [t / "run" / "tabela.md"],
        ),
        ["q.csv", "quote"],
    ),
    "rag.py ask: --max-tokens 0": (
        lambda w, t: (
            [ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", t / "nada", "--max-tokens", "0"],
            [],
        ),
        ["--max-new-tokens"],
    ),
    "rag.py ask: --temperature -1": (
        lambda w, t: (
            [ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", t / "nada", "--temperature", "-1"],
            [],
        ),
        ["--temperature"],
    ),
    "rag.py ask: empty question": (
        lambda w, t: ([ROOT / "rag.py", "ask", "  ", "--index-dir", t / "nada"], []),
        ["question"],
    ),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _typo_config(tmp: Path) -> Path:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "compare-demo.yaml").read_text(encoding="utf-8"))
    cfg["generaton"] = {"max_new_tokens": 8}
    return _write(tmp / "typo.yaml", yaml.safe_dump(cfg, allow_unicode=True))


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_changes_nothing(work, tmp_path, case):
    build, needles = CASES[case]
    (tmp_path / "good.jsonl").write_text((work / "dataset.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "x.jsonl").write_text('{"old": true}\n', encoding="utf-8")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tabela.md").write_text("| a tabela de antes |\n", encoding="utf-8")
    argv, kept = build(work, tmp_path)
    before = {p: md5(p) for p in kept}
    assert_refused(run(*argv, cwd=ROOT), *needles)
    assert {p: md5(p) for p in kept} == before


# ------------------------------------------------------------------------------------------------------------
# 3. OSError at a known boundary: disk full (a file-size limit stands in for it), stdin closed, damaged FAISS
# ------------------------------------------------------------------------------------------------------------


def _small_file_limit():
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))  # Python ignores SIGXFSZ: writes fail with EFBIG


@pytest.mark.parametrize("script", ["build_dataset.py", "particiona.py"])
def test_disk_full_is_one_line_and_keeps_the_old_file(work, tmp_path, script):
    out = tmp_path / "out.jsonl"
    out.write_text('{"old": true}\n', encoding="utf-8")
    before = md5(out)
    assert (work / "dataset.jsonl").stat().st_size > 2 * 1024  # the output passes the limit
    if script == "build_dataset.py":
        argv = [ROOT / script, work / "mini-pages-articles.xml.bz2", "-o", out, "--no-progress"]
    else:
        argv = [
            ROOT / script,
            work / "dataset.jsonl",
            "--train",
            out,
            "--test",
            tmp_path / "t.jsonl",
            "--test-size",
            "0.34",
        ]
    line = assert_refused(run(*argv, cwd=tmp_path, preexec=_small_file_limit), "cannot write")
    assert "unchanged" in line
    assert md5(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_disk_full_while_indexing_keeps_the_old_index(work, tmp_path):
    from llamawiki import retrieval

    index = tmp_path / "idx"
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40, progress=False)
    before = {p.name: md5(p) for p in index.rglob("*") if p.is_file()}
    proc = run(
        ROOT / "rag.py",
        "index",
        work / "mini-pages-articles.xml.bz2",
        "--index-dir",
        index,
        "--chunk-size",
        "200",
        "--chunk-overlap",
        "20",
        cwd=tmp_path,
        preexec=_small_file_limit,
    )
    proc.stderr = "\n".join(
        line
        for line in proc.stderr.replace("\r", "\n").splitlines()
        if not line.startswith(("indexing", "Loading weights"))
    )  # progress bars of a long run
    assert_refused(proc, str(index), "cannot write", "unchanged")
    assert {p.name: md5(p) for p in index.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_chat_with_stdin_closed_is_one_line(tiny_gguf, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    cmd = f'"{sys.executable}" "{ROOT / "chat_cpu.py"}" --model "{tiny_gguf["base"]}" --n-ctx 128 <&-'
    proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert_refused(proc, "stdin")


def test_damaged_faiss_is_one_line(work, tmp_path):
    from llamawiki import retrieval

    index = tmp_path / "idx"
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40, progress=False)
    (index / retrieval.FAISS_DIR / "index.faiss").write_bytes(b"lixo" * 100)
    proc = run(
        ROOT / "rag.py",
        "ask",
        "Quem foi Tiradentes?",
        "--index-dir",
        index,
        "--retriever",
        "dense",
        "--retrieve-only",
        cwd=tmp_path,
    )
    assert_refused(proc, "FAISS", "rebuild")
    proc = run(ROOT / "rag.py", "merge", index, index, "--index-dir", tmp_path / "junto", cwd=tmp_path)
    assert_refused(proc)
    assert not (tmp_path / "junto").exists()


# ---- issue 25: compare, rag and CSV ----
# Each case runs the script as a user would (subprocess); a finished compare run is made in-process with the fake
# generator of tests/test_compare.py, then re-rendered by compare.py (--render-only needs no model).


def _finished_compare_run(tmp: Path) -> tuple[Path, Path, Path]:
    """(config YAML, questions CSV, run dir) of a finished 3-question, 2-system run."""
    import yaml
    from test_compare import FakeGenerator, make_env

    from llamawiki import evaluation as ev

    cfg, questions = make_env(tmp)
    run_dir = tmp / "run"
    ev.run_comparison(
        cfg,
        questions_path=questions,
        run_dir=run_dir,
        progress=False,
        load_generator=lambda spec: FakeGenerator(spec, {"answers": []}),
    )
    return _write(tmp / "cfg.yaml", yaml.safe_dump(cfg, allow_unicode=True)), questions, run_dir


def test_compare_smaller_render_only_keeps_the_finished_tables(tmp_path):
    config, questions, run_dir = _finished_compare_run(tmp_path)
    tables = ("tabela.md", "metricas.csv", "pareado.csv", "manifest.json")
    before = {name: md5(run_dir / name) for name in tables}
    proc = run(
        ROOT / "compare.py",
        "--config",
        config,
        "--questions",
        questions,
        "--run-dir",
        run_dir,
        "--limit",
        "1",
        "--render-only",
        "--no-progress",
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {name: md5(run_dir / name) for name in tables} == before
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and "larger run (3 questions" in notes[0] and f"{run_dir / 'parcial'}/" in notes[0]
    assert json.loads((run_dir / "parcial" / "manifest.json").read_text())["coverage"]["question_ids"] == ["q1"]
    assert f"table: {run_dir / 'parcial' / 'tabela.md'}" in proc.stdout


def test_compare_failed_run_keeps_the_hash_cache_and_says_no_resume(tmp_path):
    config, questions, run_dir = _finished_compare_run(tmp_path)
    hashes = run_dir / ".sha256-cache.json"
    before = md5(hashes)
    (tmp_path / "base-model" / "model.safetensors").write_bytes(b"weights-v2")  # new weights: new answers
    proc = run(
        ROOT / "compare.py",
        "--config",
        config,
        "--questions",
        questions,
        "--run-dir",
        run_dir,
        "--no-progress",
        cwd=ROOT,
    )  # not a loadable model: one line, nothing saved
    line = assert_refused(proc)
    assert "resume" not in proc.stderr and "base-model" in line
    assert md5(hashes) == before


CASES_25 = {
    # name: (argv builder(work, tmp) -> (argv, files whose md5 must not change), needles)
    "compare: quote error on line 2 is line 2": (
        lambda w, t: (
            [
                ROOT / "compare.py",
                "--run-dir",
                t / "run",
                "--questions",
                _write(t / "q.csv", 'id,pergunta,resposta_referencia\n1,"Qual a capital?,Brasília\n'),
            ],
            [t / "run" / "tabela.md"],
        ),
        ["q.csv: line 2: unterminated quote"],
    ),
    "rag.py ask: --max-context-chars -5": (
        lambda w, t: (
            [ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", t / "nada", "--max-context-chars", "-5"],
            [],
        ),
        ["--max-context-chars -5", ">= 1"],
    ),
    "rag.py chat: --max-context-chars 0": (
        lambda w, t: ([ROOT / "rag.py", "chat", "--index-dir", t / "nada", "--max-context-chars", "0"], []),
        ["--max-context-chars 0"],
    ),
}


@pytest.mark.parametrize("case", list(CASES_25))
def test_issue25_bad_input_is_one_line_and_changes_nothing(work, tmp_path, case):
    build, needles = CASES_25[case]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "tabela.md").write_text("| a tabela de antes |\n", encoding="utf-8")
    argv, kept = build(work, tmp_path)
    before = {p: md5(p) for p in kept}
    assert_refused(run(*argv, cwd=ROOT), *needles)
    assert {p: md5(p) for p in kept} == before


@pytest.fixture(scope="module")
def mini_index(work, tmp_path_factory) -> Path:
    from llamawiki import retrieval

    index = tmp_path_factory.mktemp("idx25") / "idx"
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=200, chunk_overlap=20, progress=False)
    return index


def _index_md5(index: Path) -> dict:
    return {str(p.relative_to(index)): md5(p) for p in index.rglob("*") if p.is_file()}


def test_rag_merge_of_the_same_part_twice_is_refused(mini_index, tmp_path):
    proc = run(ROOT / "rag.py", "merge", mini_index, mini_index, "--index-dir", tmp_path / "junto", cwd=tmp_path)
    assert_refused(proc, str(mini_index), "given twice", "twice")
    copy = tmp_path / "copia"
    shutil.copytree(mini_index, copy)
    proc = run(ROOT / "rag.py", "merge", mini_index, copy, "--index-dir", tmp_path / "junto", cwd=tmp_path)
    assert_refused(proc, str(copy), "same dump")
    assert not (tmp_path / "junto").exists()


def test_rag_ask_on_a_manifest_edited_to_another_model_is_refused(mini_index, tmp_path):
    index = tmp_path / "editado"
    shutil.copytree(mini_index, index)
    m = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    m["embeddings"].update(name="intfloat/multilingual-e5-small", spec=None)
    (index / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    proc = run(ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", index, "--retrieve-only", cwd=tmp_path)
    assert_refused(proc, str(index), "intfloat/multilingual-e5-small", "all-MiniLM-L6-v2")


def test_rag_ask_checks_the_index_before_loading_the_embedder(mini_index, tmp_path):
    index = tmp_path / "estragado"
    shutil.copytree(mini_index, index)
    (index / "bm25s" / "chunk_offsets.npy").write_bytes(b"lixo")
    proc = run(ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", index, "--retrieve-only", cwd=tmp_path)
    assert_refused(proc, "bm25s", "rebuild")
    assert "Loading" not in proc.stderr and "\r" not in proc.stderr  # no progress bar before the error


def _rag_index_argv(work: Path, index: Path, *extra: str) -> list:
    """rag.py index over the mini dump with mini_index's settings (small chunks, small batches: a run long enough
    to be interrupted)."""
    dump = work / "mini-pages-articles.xml.bz2"
    return [ROOT / "rag.py", "index", dump, "--index-dir", index, "--chunk-size", "200", "--chunk-overlap", "20",
            "--batch-size", "2", *extra]  # fmt: skip


def _rag_index(work: Path, index: Path, cwd: Path, **kw) -> subprocess.Popen | subprocess.CompletedProcess:
    # --rebuild: the same recipe as mini_index; without it the index is up to date and nothing is written
    return run(*_rag_index_argv(work, index, "--rebuild"), cwd=cwd, **kw)


def test_rag_index_disk_full_while_writing_faiss_is_one_line(work, mini_index, tmp_path):
    index = tmp_path / "idx"
    shutil.copytree(mini_index, index)
    before = _index_md5(index)
    sizes = {p.name: p.stat().st_size for p in index.rglob("*") if p.is_file()}
    limit = sizes["chunks.jsonl"] + 512
    assert limit < sizes["index.faiss"]  # chunks.jsonl fits under the limit, the FAISS file does not

    def fsize():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = _rag_index(work, index, tmp_path, preexec=fsize)
    lines = proc.stderr.replace("\r", "\n").splitlines()
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr[-2000:]  # at column 0, not glued
    proc.stderr = "\n".join(line for line in lines if not line.startswith(("indexing", "Loading weights")))
    assert_refused(proc, str(index), "cannot write the index", "FAISS", "unchanged")
    assert _index_md5(index) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _popen(*args, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.Popen(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def _wait_for_temp(folder: Path, proc: subprocess.Popen, timeout: float = 120) -> list[Path]:
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        found = [p for p in folder.iterdir() if p.name.startswith(".idx.") and p.name.endswith(".tmp")]
        if found:
            return found
        time.sleep(0.05)
    return []


def test_rag_index_after_sigkill_removes_the_stale_temp_folder(work, tmp_path):
    import signal

    argv = _rag_index_argv(work, tmp_path / "idx")
    proc = _popen(*argv, cwd=tmp_path)
    stale = _wait_for_temp(tmp_path, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert stale and all(p.exists() for p in stale)  # what SIGKILL leaves behind
    done = run(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "removed 1 temporary folder(s)" in done.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert (tmp_path / "idx" / "manifest.json").is_file()


def test_sigterm_is_one_line_exit_143_and_changes_nothing(work, mini_index, tmp_path):
    """SIGTERM (kill, a scheduler) mid-run: exit 143 and one line, like Ctrl-C; the old index is kept and no
    temporary folder is left."""
    import signal

    index = tmp_path / "idx"
    shutil.copytree(mini_index, index)
    before = _index_md5(index)
    proc = _popen(*_rag_index_argv(work, index, "--rebuild"), cwd=tmp_path)
    assert _wait_for_temp(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err
    last = err.replace("\r", "\n").splitlines()[-1]
    assert last == "terminated (SIGTERM)", err[-2000:]
    assert _index_md5(index) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------------------------------------------------
# 5. Accepted before, reported now
# ------------------------------------------------------------------------------------------------------------


def test_cache_junk_lines_are_counted_and_reported(tmp_path, capsys):
    from llamawiki.fileio import JsonlCache

    path = tmp_path / "respostas.jsonl"
    path.write_text('{"key": "a", "answer": "x"}\n{"key": "b", "ans\n[1, 2]\n', encoding="utf-8")
    cache = JsonlCache(path)
    assert set(cache.by_key) == {"a"} and cache.skipped_lines == 2
    assert "2 unreadable line(s)" in capsys.readouterr().err


def test_question_without_reference_is_said(tmp_path, capsys):
    from llamawiki.evaluation import load_questions

    path = _write(tmp_path / "q.csv", "id,pergunta,resposta_referencia\n1,Quem?,Pedro\n2,Onde?,\n")
    assert [q.id for q in load_questions(path)] == ["1", "2"]
    err = capsys.readouterr().err
    assert "1 question(s) without resposta_referencia" in err and ": 2" in err


# ---- issue 25: damaged dumps ----------------------------------------------------------------------------------
# A multistream dump that lost a stream (in the middle of a page, on a page boundary, its footer) or holds one
# twice: build_dataset.py and rag.py index refuse it in one line and leave the previous outputs as they were.


def _damaged_dumps(root: Path) -> dict[str, Path]:
    """Folders each holding ptwiki-...-multistream.xml.bz2 (+ its index when the damage needs it)."""
    from test_dump import aligned_cuts, inside_text, multistream, page_starts, sample_xml

    xml = sample_xml()
    starts = [p for p, _, _ in page_starts(xml)]
    head, foot = starts[0], xml.rindex(b"</mediawiki>")
    a = inside_text(xml, "Revolução Constitucionalista de 1932")
    minas = xml.index(b"<title>Minas Gerais")
    kinds = {
        "stream lost mid-page (two pages spliced)": multistream(
            xml, [0, head, a, inside_text(xml, "Minas Gerais"), foot, len(xml)], drop={2}
        ),
        "stream lost mid-page before a page (nested <page>)": multistream(
            xml, [0, head, a, xml.rindex(b"  <page>", 0, minas), foot, len(xml)], drop={2}
        ),
        "stream lost on a page boundary, index beside": multistream(xml, aligned_cuts(xml), drop={3}),
        "stream written twice (ids go backwards)": multistream(xml, aligned_cuts(xml), repeat={2}),
        "footer stream lost (cut right after a </page>)": multistream(
            xml, [0, head, xml.index(b"</page>", minas) + 7, len(xml)], drop={2}
        ),
    }
    out = {}
    for i, (kind, (data, index)) in enumerate(kinds.items()):
        folder = root / f"dano{i}"
        folder.mkdir()
        dump = folder / "ptwiki-20240301-pages-articles-multistream.xml.bz2"
        dump.write_bytes(data)
        if "index" in kind:
            (folder / "ptwiki-20240301-pages-articles-multistream-index.txt.bz2").write_bytes(
                bz2.compress(index.encode())
            )
        out[kind] = dump
    return out


DAMAGE_NEEDLES = {
    "stream lost mid-page (two pages spliced)": ["'Revolução Constitucionalista de 1932'", "bytes", "spliced"],
    "stream lost mid-page before a page (nested <page>)": ["<page> opens inside the page"],
    "stream lost on a page boundary, index beside": ["listed in the multistream index is missing"],
    "stream written twice (ids go backwards)": ["page ids go backwards"],
    "footer stream lost (cut right after a </page>)": ["XML ends before </mediawiki>", "'Minas Gerais'"],
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> dict[str, Path]:
    return _damaged_dumps(tmp_path_factory.mktemp("damaged"))


@pytest.mark.parametrize("kind", list(DAMAGE_NEEDLES))
def test_damaged_dump_keeps_the_previous_dataset(damaged, tmp_path, kind):
    out = tmp_path / "json" / "dataset.jsonl"
    out.parent.mkdir()
    good = run(
        ROOT / "build_dataset.py",
        "-o",
        out,
        ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2",
        "--no-progress",
        cwd=tmp_path,
    )
    assert good.returncode == 0, good.stderr
    before = out.read_bytes()
    assert before.count(b"\n") > 50
    dump = damaged[kind]
    line = assert_refused(
        run(ROOT / "build_dataset.py", "-o", out, dump, "--no-progress", cwd=tmp_path), str(dump), *DAMAGE_NEEDLES[kind]
    )
    assert line.startswith(f"error: {dump}: ")
    assert out.read_bytes() == before  # byte-identical
    assert sorted(p.name for p in out.parent.iterdir()) == ["dataset.jsonl"]  # no temporary file left
    if "lost" in kind and "footer" not in kind:  # --allow-truncated does not let a hole through
        proc = run(ROOT / "build_dataset.py", "-o", out, dump, "--no-progress", "--allow-truncated", cwd=tmp_path)
        assert_refused(proc, *DAMAGE_NEEDLES[kind])
        assert out.read_bytes() == before


@pytest.mark.parametrize("kind", list(DAMAGE_NEEDLES))
def test_damaged_dump_keeps_the_previous_index(work, damaged, tmp_path, kind):
    from llamawiki import retrieval

    index = tmp_path / "idx"
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40, progress=False)
    before = {p.relative_to(index): md5(p) for p in index.rglob("*") if p.is_file()}
    dump = damaged[kind]
    proc = run(
        ROOT / "rag.py",
        "index",
        dump,
        "--index-dir",
        index,
        "--chunk-size",
        "2000",
        "--chunk-overlap",
        "0",
        cwd=tmp_path,
    )
    proc.stderr = "\n".join(
        line
        for line in proc.stderr.replace("\r", "\n").splitlines()
        if not line.startswith(("indexing", "Loading weights"))
    )  # progress bars
    assert_refused(proc, str(dump), *DAMAGE_NEEDLES[kind])
    assert {p.relative_to(index): md5(p) for p in index.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temporary folder left
