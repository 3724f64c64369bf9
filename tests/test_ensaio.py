"""The rehearsal (ensaio) of the documented path: every ```bash block of README.md, models/README.md,
data/README.md and docs/*.md runs as written, in reading order, in a temporary clone of the working tree.

Why: twice the flagship config died on a GPU at its first step on a key the tests had overridden, and the docs
drifted from the code (a deprecated CLI, paths nobody writes). Here nothing is overridden but what cannot run on a
2-core machine without a GPU or internet, and every such stand-in is in the one table below.

The blocks are read with Sybil's Markdown lexer (sybil on PyPI), so fences, indentation and line numbers are
Sybil's and not a hand-written extractor's; Sybil's own evaluation (a shared Python namespace) does not fit shell
blocks that depend on each other's files, so each block is run here, in order, by bash with `-e -o pipefail`.
"""

from __future__ import annotations

import bz2
import os
import re
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

# Two chains, one per test module, so that make test's two pytest-xdist workers (--dist loadfile: a module runs on
# one worker, in order) share the rehearsal: this module rehearses the README and the pages of its first stages
# (README_PATH below); tests/test_ensaio_docs.py rehearses the other pages, in a copy of this clone taken when the
# README's last block has run (the "handoff": what a reader of docs/rag.md has done is the README). Run alone, the
# second chain runs the README's blocks itself first. (loadgroup + xdist_group does not hold a group together
# with pytest 9.2.)

ROOT = Path(__file__).resolve().parent.parent
SHIMS = Path(__file__).resolve().parent / "ensaio" / "shims.py"

# Reading order: the README first (it is the path a new user follows), then the models and data pages it points
# to, then each stage's page in pipeline order. A doc added to docs/ without a place here fails
# test_every_doc_is_rehearsed.
DOCS = [
    "README.md",
    "models/README.md",
    "data/README.md",
    "docs/dataset.md",
    "docs/finetune.md",
    # ---- the second chain (tests/test_ensaio_docs.py) starts here, from the state the README leaves
    "docs/rag.md",
    "docs/chat.md",
    "docs/compare.md",
    "docs/estudo.md",
    "docs/benchmarks.md",
    "docs/architecture.md",
    "docs/garantias.md",
]

# ---- the stand-ins: what the docs say, what runs here instead, and why (tests/ensaio/shims.py carries it out) ----
STAND_INS = [
    (
        "Llama-2-13B (models/llama-2-13b-chat-hf, its Q4_K_M and Q4_K_S GGUF)",
        "a tiny random Llama (hidden 64, 2 layers) as an HF folder and as a GGUF, at the same paths",
        "26 GB of weights and a GPU",
    ),
    (
        "python models/baixar.py ... (the model download)",
        "the same command with --dry-run (flags checked, the plan printed), then the tiny Llama at each planned path",
        "no hub: the machine reaches only PyPI",
    ),
    (
        "python data/estudo/baixar.py (the study's files from GitHub)",
        "the same command with --base-url file://<a mirror of the repository's paths, from the developers' copy>; "
        "where no copy exists, the tests' small files in the study's formats",
        "no GitHub",
    ),
    (
        "chat_gpu.py --load-in-4bit",
        "+ --allow-cpu-quantization",
        "no CUDA: bitsandbytes runs 4-bit on the CPU only when asked",
    ),
    (
        "hf download REPO [FILE] --local-dir DIR",
        "`hf download --help` names every flag; the tiny Llama at DIR",
        "no hub",
    ),
    (
        "wget https://dumps.wikimedia.org/ptwiki/latest/<dump>",
        "the embedded sample, written as a multistream dump with its index (or as the plain dump)",
        "no internet; the sample has the dump's format",
    ),
    (
        "sbatch [--array=...] [--parsable] JOB",
        "bash JOB here, once per array task, with SLURM_JOB_ID/SLURM_ARRAY_TASK_ID/SLURM_GPUS_ON_NODE=1 set",
        "no SLURM cluster",
    ),
    (
        "accelerate launch --config_file configs/accelerate/{ddp,fsdp,deepspeed_zero2}.yaml",
        "the same launch with configs/accelerate/cpu.yaml (tests/test_accelerate_configs.py checks those three)",
        "no GPU",
    ),
    (
        "finetune.py ... (also under accelerate, make and sbatch)",
        "+ --set training.max_steps=1 --set max_eval_samples=4 --set quantization=none",
        "the step count, the data (4 evaluation examples: 24 take ~40 s on a CPU core) and 4-bit (no CUDA): the "
        "only overrides a config test may make",
    ),
    (
        "build_dataset.py --modes llm (questions written by Llama-2-13B)",
        "--modes infobox,llm, and + --limit 10 (unless the command sets it; particiona needs 10 articles for a "
        "test side)",
        "the tiny random Llama writes no usable pair; the infobox questions keep the file (and the next step) alive; "
        "time: every article is one generation per pair on the CPU",
    ),
    (
        "compare.py, chat_cpu.py, chat_gpu.py, rag.py ask/chat (answers of up to 256 new tokens)",
        "+ --max-new-tokens 24 (unless the command sets it)",
        "time: the random and base models ramble to the limit; a shorter answer exercises the same path",
    ),
    (
        "compare.py ... (also under make and sbatch)",
        "+ --limit 1",
        "one question per system: 19-212 questions x 4 systems take 4-38 min on 2 cores",
    ),
    (
        "chat_cpu.py / chat_gpu.py / rag.py chat (interactive)",
        "one typed question on stdin, then end of input",
        "no person at the terminal",
    ),
    (
        "python bench/*.py ... / bash bench/*.sh",
        "the script's --help names every documented flag / bash -n",
        "a benchmark measures; it is not a test",
    ),
    (
        "pip install ...",
        "pip install ... --dry-run (resolved against PyPI, nothing installed)",
        "the venv is shared with the test run",
    ),
    (
        "make test / make setup-gpu",
        "make -n (printed, not run)",
        "make test is what runs this rehearsal; setup-gpu needs CUDA",
    ),
]


def _blocks() -> list[tuple[str, int, str]]:
    from sybil import Sybil
    from sybil.parsers.markdown import CodeBlockParser

    out = []
    parser = Sybil(parsers=[CodeBlockParser(language="bash", evaluator=lambda example: None)])
    for doc in DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        for ex in parser.parse(path).examples():
            out.append((doc, ex.line, ex.parsed))
    return out


BLOCKS = _blocks()
README_PATH = DOCS[: DOCS.index("docs/rag.md")]  # this module's chain; the rest: tests/test_ensaio_docs.py
CHAIN = [b for b in BLOCKS if b[0] in README_PATH]
DOCS_CHAIN = [b for b in BLOCKS if b[0] not in README_PATH]
HANDOFF_AFTER = [b for b in BLOCKS if b[0] == "README.md"][-1][:2]  # (doc, line) of the README's last block


def test_every_doc_is_rehearsed():
    docs = {
        str(p.relative_to(ROOT))
        for p in [
            ROOT / "README.md",
            ROOT / "models" / "README.md",
            ROOT / "data" / "README.md",
            *(ROOT / "docs").glob("*.md"),
        ]
    }
    assert docs <= set(DOCS), f"add to DOCS in reading order: {sorted(docs - set(DOCS))}"


def test_no_command_outside_bash_blocks():
    # a command shown in a fence without a language (or as `console`/`sh`) would escape the rehearsal
    fence = re.compile(r"^```(\w*)\s*$")
    commands = re.compile(r"^\s*(python|\.venv/bin/python|make|sbatch|accelerate|wget|hf|pip|bash)\s")
    bad = []
    for doc in DOCS:
        path = ROOT / doc
        if not path.exists():
            continue
        lang = None
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            m = fence.match(line)
            if m:
                lang = m.group(1) if lang is None else None
                continue
            if lang is not None and lang != "bash" and commands.match(line):
                bad.append(f"{doc}:{n}: {line.strip()}")
    assert not bad, "commands outside ```bash blocks (not rehearsed):\n" + "\n".join(bad)


def _multistream(sample: Path, out: Path, index: Path, pages_per_stream: int = 5) -> None:
    """The sample as Wikimedia publishes the full dump: a header stream, streams of N pages, a footer stream, and
    the index file (offset:page_id:title, the byte offset of the stream that holds the page)."""
    xml = bz2.decompress(sample.read_bytes())
    starts = [m.start() for m in re.finditer(rb"  <page>", xml)]
    end = xml.rindex(b"</mediawiki>")
    cuts = [0, *starts[::pages_per_stream], end, len(xml)]
    data = b""
    lines = []
    for a, b in pairwise(cuts):
        chunk = xml[a:b]
        for m in re.finditer(rb"<page>\s*<title>(.*?)</title>.*?<id>(\d+)</id>", chunk, re.S):
            lines.append(f"{len(data)}:{int(m.group(2))}:{m.group(1).decode()}")
        data += bz2.compress(chunk)
    out.write_bytes(data)
    index.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))


def _wrapper(path: Path, name: str, env_python: str) -> None:
    path.write_text(f'#!/bin/sh\nexec "{env_python}" "{SHIMS}" {name} "$@"\n')
    path.chmod(0o755)


def make_clone(base: Path) -> tuple[Path, dict, Path]:
    """A copy of the working tree (tracked and untracked-not-ignored files, as a clone plus local edits would
    have), a venv whose python/pip/accelerate are the stand-ins, and the stand-in models and dumps, in ``base``.
    Returns (repo, env, log)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_llama
    from gguf_tiny import write_llama_gguf

    repo = base / "llamawiki"
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for f in filter(None, files):
        src = ROOT / f
        if src.is_file():
            (repo / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / f)

    real_venv = Path(sys.prefix)
    real_python = str(real_venv / "bin" / "python")
    venv_bin = repo / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    for stamp in real_venv.glob(".installed-*"):
        shutil.copy2(stamp, repo / ".venv" / stamp.name)
    for entry in (real_venv / "bin").iterdir():
        if entry.name not in ("python", "python3", "python3.11", "pip", "pip3", "accelerate"):
            (venv_bin / entry.name).symlink_to(entry)
    for name in ("python", "python3", "python3.11"):
        _wrapper(venv_bin / name, "python", real_python)
    for name in ("pip", "pip3"):
        _wrapper(venv_bin / name, "pip", real_python)
    _wrapper(venv_bin / "accelerate", "accelerate", real_python)
    shim_bin = base / "bin"
    shim_bin.mkdir()
    for name in ("sbatch", "wget", "hf", "make", "bash"):
        _wrapper(shim_bin / name, name, real_python)

    standins = base / "stand-ins"
    standins.mkdir()
    hf = build_tiny_llama(standins / "tiny-llama-hf")
    write_llama_gguf(hf, standins / "tiny-llama.gguf")
    sample = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"
    _multistream(sample, standins / "ptwiki-multistream.xml.bz2", standins / "ptwiki-multistream-index.txt.bz2")
    shutil.copyfile(sample, standins / "ptwiki-pages-articles.xml.bz2")

    # the study's repository at its pinned commit, served from the developers' copy (tests may read ../shared):
    # data/estudo/baixar.py then runs as written, sha256 checks included, against file:// URLs
    shared = ROOT.parent / "shared" / "reference" / "original-study"
    mirror = None
    if shared.is_dir():
        from llamawiki.downloads import STUDY_FILES

        mirror = base / "estudo-mirror"
        for name, (path, _sha) in STUDY_FILES.items():
            (mirror / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(shared / name, mirror / path)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env.update(
        PATH=f"{venv_bin}:{shim_bin}:{os.environ['PATH']}",
        ENSAIO_REAL_PATH=os.environ["PATH"],
        ENSAIO_REAL_PYTHON=real_python,
        ENSAIO_REAL_BIN=str(real_venv / "bin"),
        ENSAIO_STANDINS=str(standins),
        ENSAIO_LOG=str(base / "ensaio.log"),
        HF_HOME=str(base / "hf_home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONDONTWRITEBYTECODE="1",
        MPLBACKEND="Agg",
    )
    if mirror:
        env["ENSAIO_STUDY_MIRROR"] = str(mirror)
    return repo, env, base / "ensaio.log"


def handoff_dir(tmp_path_factory) -> Path:
    """The folder both chains see: beside the workers' own temporary folders under pytest-xdist (one per run),
    else in this process's."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ensaio-handoff"
    folder.mkdir(exist_ok=True)
    return folder


def _copy_or_link(src: str, dst: str) -> None:
    # model weights (~1.4 GB) are linked: the project writes every file through a temporary file and a rename, so
    # the first chain never changes them in place after the handoff; everything else is copied
    if os.path.getsize(src) > 50_000_000:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def hand_off(repo: Path, folder: Path, passed: bool) -> None:
    """After the README's last block: a copy of the clone for the second chain (READY), or FAILED."""
    if passed:
        shutil.copytree(repo, folder / "repo.partial", symlinks=True, copy_function=_copy_or_link)
        (folder / "repo.partial").rename(folder / "repo")
    (folder / ("READY" if passed else "FAILED")).touch()


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    handoff = handoff_dir(tmp_path_factory)
    (handoff / "STARTED").touch()
    try:
        yield make_clone(tmp_path_factory.mktemp("ensaio"))
    finally:
        if not any((handoff / m).exists() for m in ("READY", "FAILED")):  # README blocks deselected or errored
            (handoff / "FAILED").touch()


def _run(clone, code: str) -> tuple[subprocess.CompletedProcess, str]:
    """Run one block in the clone as a user's shell would (bash -e -o pipefail); returns it and the stand-ins used."""
    repo, env, log = clone
    start = log.stat().st_size if log.exists() else 0
    r = subprocess.run(
        ["/bin/bash", "-e", "-o", "pipefail", "-c", code],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=900,
    )
    did = log.read_text(encoding="utf-8")[start:] if log.exists() else ""
    return r, did


def test_the_stand_ins_let_failures_through(clone):
    # the shims change what cannot run here, never the outcome: an unknown flag fails, whether the command runs
    # (particiona.py), is only flag-checked (a bench script) or goes through a stand-in (sbatch, accelerate)
    for code in (
        "python particiona.py --no-such-flag",
        ".venv/bin/python bench/bench_chat.py --no-such-flag",
        "DRY_RUN=1 sbatch --parsable slurm/no-such-job.sbatch",
        "accelerate launch --config_file configs/accelerate/ddp.yaml finetune.py --no-such-flag",
        "make no-such-target",
    ):
        r, _ = _run(clone, code)
        assert r.returncode != 0, code


def run_block(clone, doc: str, line: int, code: str) -> None:
    """Run one documented block in the clone, keep its log, and fail on a non-zero exit or a traceback."""
    repo, env, log = clone
    r, did = _run(clone, code)
    (log.parent / "logs").mkdir(exist_ok=True)
    (log.parent / "logs" / f"{doc.replace('/', '_')}-{line}.log").write_text(
        f"exit {r.returncode}\n--- stand-ins\n{did}--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}", encoding="utf-8"
    )
    assert r.returncode == 0, (
        f"{doc}:{line}: exit {r.returncode}\n--- block\n{code}--- stand-ins used\n{did}"
        f"--- stdout (tail)\n{r.stdout[-3000:]}\n--- stderr (tail)\n{r.stderr[-5000:]}"
    )
    assert "Traceback (most recent call last)" not in r.stderr, f"{doc}:{line}: a traceback\n{r.stderr[-5000:]}"


@pytest.mark.parametrize("doc,line,code", CHAIN, ids=[f"{d}:{n}" for d, n, _ in CHAIN])
def test_documented_block_runs_as_written(clone, doc, line, code, tmp_path_factory):
    if (doc, line) != HANDOFF_AFTER:
        return run_block(clone, doc, line, code)
    try:
        run_block(clone, doc, line, code)
    except BaseException:
        hand_off(clone[0], handoff_dir(tmp_path_factory), passed=False)
        raise
    hand_off(clone[0], handoff_dir(tmp_path_factory), passed=True)
