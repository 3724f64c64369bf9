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
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=stdin, preexec_fn=preexec)


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
    proc = run(ROOT / "build_dataset.py", root / "mini-pages-articles.xml.bz2", "-o", root / "dataset.jsonl",
               "--no-progress", cwd=root)
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
    return run(ROOT / "chat_cpu.py", "--model", tiny_gguf["base"], "--adapter", adapter, "--prompt", "Oi",
               "--max-new-tokens", "2", "--n-ctx", "128", cwd=cwd, timeout=180)


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
        lambda w, t: ([ROOT / "build_dataset.py", _cut_bz2(w, t), "-o", t / "good.jsonl", "--no-progress"],
                      [t / "good.jsonl"]), ["cortado.xml.bz2", "unchanged"]),
    "build_dataset: truncated bz2 --allow-truncated, no page": (
        lambda w, t: ([ROOT / "build_dataset.py", _cut_bz2(w, t), "-o", t / "good.jsonl", "--no-progress",
                       "--allow-truncated"], [t / "good.jsonl"]), ["no examples"]),
    "build_dataset: output is a directory": (
        lambda w, t: ([ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t, "--no-progress"], []),
        ["is a directory"]),
    "build_dataset: output is the input": (
        lambda w, t: ([ROOT / "build_dataset.py", t / "good.jsonl", "-o", t / "good.jsonl"], [t / "good.jsonl"]),
        ["input"]),
    "build_dataset: --limit -1": (
        lambda w, t: ([ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t / "good.jsonl",
                       "--limit", "-1"], [t / "good.jsonl"]), ["--limit"]),
    "build_dataset: --sentences 0": (
        lambda w, t: ([ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t / "good.jsonl",
                       "--sentences", "0"], [t / "good.jsonl"]), ["--sentences"]),
    "build_dataset: min chars above max": (
        lambda w, t: ([ROOT / "build_dataset.py", w / "mini-pages-articles.xml.bz2", "-o", t / "good.jsonl",
                       "--min-answer-chars", "500", "--max-answer-chars", "100"], [t / "good.jsonl"]),
        ["--min-answer-chars"]),
    "build_dataset: JSON holding a dict": (
        lambda w, t: ([ROOT / "build_dataset.py", _write(t / "qa.json", '{"pergunta": "x"}'), "-o",
                       t / "good.jsonl"], [t / "good.jsonl"]), ["qa.json", "list"]),
    "particiona: --train equal to --test": (
        lambda w, t: ([ROOT / "particiona.py", w / "dataset.jsonl", "--train", t / "x.jsonl", "--test",
                       t / "x.jsonl"], [t / "x.jsonl"]), ["same file"]),
    "particiona: --train is the input": (
        lambda w, t: ([ROOT / "particiona.py", t / "good.jsonl", "--train", t / "good.jsonl", "--test",
                       t / "teste.jsonl"], [t / "good.jsonl"]), ["input"]),
    "particiona: --test is a directory": (
        lambda w, t: ([ROOT / "particiona.py", w / "dataset.jsonl", "--train", t / "x.jsonl", "--test", t],
                      [t / "x.jsonl"]), ["is a directory"]),
    "particiona: --threshold 5": (
        lambda w, t: ([ROOT / "particiona.py", w / "dataset.jsonl", "--train", t / "x.jsonl", "--test",
                       t / "y.jsonl", "--threshold", "5"], [t / "x.jsonl"]), ["--threshold"]),
    "compare: --limit 0 on a finished run": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--limit", "0"], [t / "run" / "tabela.md"]),
        ["--limit"]),
    "compare: --limit -2": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--limit", "-2"], [t / "run" / "tabela.md"]),
        ["--limit"]),
    "compare: --set generation.temperature=abc": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--set", "generation.temperature=abc"],
                      [t / "run" / "tabela.md"]), ["generation.temperature", "abc"]),
    "compare: --max-new-tokens 0": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--max-new-tokens", "0"],
                      [t / "run" / "tabela.md"]), ["--max-new-tokens"]),
    "compare: unknown top-level key": (
        lambda w, t: ([ROOT / "compare.py", "--config", _typo_config(t), "--run-dir", t / "run"],
                      [t / "run" / "tabela.md"]), ["generaton", "did you mean 'generation'"]),
    "compare: unterminated quote in the questions": (
        lambda w, t: ([ROOT / "compare.py", "--run-dir", t / "run", "--questions",
                       _write(t / "q.csv", 'id,pergunta,resposta_referencia\n1,"Qual a capital?,Brasília\n'
                                           '2,Quem?,Pedro\n')], [t / "run" / "tabela.md"]),
        ["q.csv", "quote"]),
    "rag.py ask: --max-tokens 0": (
        lambda w, t: ([ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", t / "nada",
                       "--max-tokens", "0"], []), ["--max-new-tokens"]),
    "rag.py ask: --temperature -1": (
        lambda w, t: ([ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", t / "nada",
                       "--temperature", "-1"], []), ["--temperature"]),
    "rag.py ask: empty question": (
        lambda w, t: ([ROOT / "rag.py", "ask", "  ", "--index-dir", t / "nada"], []), ["question"]),
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
    (tmp_path / "good.jsonl").write_text(
        (work / "dataset.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
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
        argv = [ROOT / script, work / "dataset.jsonl", "--train", out, "--test", tmp_path / "t.jsonl", "--test-size", "0.34"]
    line = assert_refused(run(*argv, cwd=tmp_path, preexec=_small_file_limit), "cannot write")
    assert "unchanged" in line
    assert md5(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind


def test_disk_full_while_indexing_keeps_the_old_index(work, tmp_path):
    from llamawiki import retrieval

    index = tmp_path / "idx"
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40,
                          progress=False)
    before = {p.name: md5(p) for p in index.rglob("*") if p.is_file()}
    proc = run(ROOT / "rag.py", "index", work / "mini-pages-articles.xml.bz2", "--index-dir", index,
               "--chunk-size", "200", "--chunk-overlap", "20", cwd=tmp_path, preexec=_small_file_limit)
    proc.stderr = "\n".join(line for line in proc.stderr.replace("\r", "\n").splitlines()
                             if not line.startswith(("indexing", "Loading weights")))  # progress bars of a long run
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
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40,
                          progress=False)
    (index / retrieval.FAISS_DIR / "index.faiss").write_bytes(b"lixo" * 100)
    proc = run(ROOT / "rag.py", "ask", "Quem foi Tiradentes?", "--index-dir", index, "--retriever", "dense",
               "--retrieve-only", cwd=tmp_path)
    assert_refused(proc, "FAISS", "rebuild")
    proc = run(ROOT / "rag.py", "merge", index, index, "--index-dir", tmp_path / "junto", cwd=tmp_path)
    assert_refused(proc)
    assert not (tmp_path / "junto").exists()


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
        "stream lost mid-page (two pages spliced)": multistream(xml, [0, head, a, inside_text(xml, "Minas Gerais"),
                                                                      foot, len(xml)], drop={2}),
        "stream lost mid-page before a page (nested <page>)": multistream(
            xml, [0, head, a, xml.rindex(b"  <page>", 0, minas), foot, len(xml)], drop={2}),
        "stream lost on a page boundary, index beside": multistream(xml, aligned_cuts(xml), drop={3}),
        "stream written twice (ids go backwards)": multistream(xml, aligned_cuts(xml), repeat={2}),
        "footer stream lost (cut right after a </page>)": multistream(
            xml, [0, head, xml.index(b"</page>", minas) + 7, len(xml)], drop={2}),
    }
    out = {}
    for i, (kind, (data, index)) in enumerate(kinds.items()):
        folder = root / f"dano{i}"
        folder.mkdir()
        dump = folder / "ptwiki-20240301-pages-articles-multistream.xml.bz2"
        dump.write_bytes(data)
        if "index" in kind:
            (folder / "ptwiki-20240301-pages-articles-multistream-index.txt.bz2").write_bytes(
                bz2.compress(index.encode()))
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
    good = run(ROOT / "build_dataset.py", "-o", out, ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2",
               "--no-progress", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    before = out.read_bytes()
    assert before.count(b"\n") > 50
    dump = damaged[kind]
    line = assert_refused(run(ROOT / "build_dataset.py", "-o", out, dump, "--no-progress", cwd=tmp_path),
                          str(dump), *DAMAGE_NEEDLES[kind])
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
    retrieval.build_index(work / "mini-pages-articles.xml.bz2", index, chunk_size=400, chunk_overlap=40,
                          progress=False)
    before = {p.relative_to(index): md5(p) for p in index.rglob("*") if p.is_file()}
    dump = damaged[kind]
    proc = run(ROOT / "rag.py", "index", dump, "--index-dir", index, "--chunk-size", "2000", "--chunk-overlap", "0",
               cwd=tmp_path)
    proc.stderr = "\n".join(line for line in proc.stderr.replace("\r", "\n").splitlines()
                            if not line.startswith(("indexing", "Loading weights")))  # progress bars
    assert_refused(proc, str(dump), *DAMAGE_NEEDLES[kind])
    assert {p.relative_to(index): md5(p) for p in index.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temporary folder left
