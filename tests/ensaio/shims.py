"""The stand-ins of the rehearsal (tests/test_ensaio.py): what a documented command runs here instead of what it
cannot run (a GPU, a 26 GB download, a SLURM cluster, the real ptwiki dump).

Each stand-in is a small executable in the rehearsal clone (``.venv/bin/python``, ``.venv/bin/pip``,
``.venv/bin/accelerate``, and ``sbatch``, ``wget``, ``hf``, ``make``, ``bash`` first on PATH) that calls
``python shims.py NAME ARGS...``. The table of what each one replaces, and why, is ``STAND_INS`` in
tests/test_ensaio.py; this module only carries it out. Environment (set by the test):

    ENSAIO_REAL_PYTHON   the real interpreter of the project's venv
    ENSAIO_REAL_BIN      the real venv's bin/ (accelerate, pip, hf)
    ENSAIO_STANDINS      folder with the stand-in models (tiny random Llama: HF folder and GGUF) and dumps
    ENSAIO_LOG           a file where each stand-in notes what it did (read back by the test)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REAL_PYTHON = os.environ.get("ENSAIO_REAL_PYTHON", sys.executable)
REAL_BIN = Path(os.environ.get("ENSAIO_REAL_BIN", Path(sys.executable).parent))
STANDINS = Path(os.environ.get("ENSAIO_STANDINS", "."))

# What each script gets appended, because the full run cannot happen here (the reasons: STAND_INS in the test).
FINETUNE_EXTRA = ["--set", "training.max_steps=1", "--set", "max_eval_samples=4", "--set", "quantization=none"]
COMPARE_EXTRA = ["--limit", "1"]
LLM_DATASET_EXTRA = ["--limit", "10"]
GENERATING = ("compare.py", "chat_cpu.py", "chat_gpu.py", "rag.py")  # scripts that generate answers
MAX_NEW_TOKENS = ["--max-new-tokens", "24"]
TYPED_QUESTION = "Qual é a capital do Brasil?\n"
GPU_ACCELERATE_CONFIGS = (
    "configs/accelerate/ddp.yaml",
    "configs/accelerate/fsdp.yaml",
    "configs/accelerate/deepspeed_zero2.yaml",
)
CPU_ACCELERATE_CONFIG = "configs/accelerate/cpu.yaml"
# The files the documented wget commands fetch, and the stand-in each one gets (built by the test).
WGET_FILES = {
    "ptwiki-latest-pages-articles-multistream.xml.bz2": "ptwiki-multistream.xml.bz2",
    "ptwiki-latest-pages-articles-multistream-index.txt.bz2": "ptwiki-multistream-index.txt.bz2",
    "ptwiki-latest-pages-articles.xml.bz2": "ptwiki-pages-articles.xml.bz2",
}


def note(line: str) -> None:
    log = os.environ.get("ENSAIO_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")


def fail(msg: str) -> None:
    print(f"ensaio: {msg}", file=sys.stderr)
    raise SystemExit(2)


def flags_of(args: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def check_flags(cmd: list[str], args: list[str]) -> None:
    """The flags of a command that is not run here exist: each one is named by the command's own --help."""
    out = subprocess.run([*cmd, "--help"], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"{' '.join(cmd)} --help failed: {out.stderr.strip()[-500:]}")
    missing = [f for f in flags_of(args) if f not in out.stdout and f != "--help"]
    if missing:
        fail(f"{' '.join(cmd)}: no such flag(s) {', '.join(missing)} (its --help does not name them)")
    note(f"flags checked: {' '.join(cmd)} {' '.join(flags_of(args))}")


def _script(args: list[str]) -> tuple[int, str | None]:
    """Index and path of the script in a python command line (None for -m/-c or an interactive interpreter)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-m", "-c"):
            return i, None
        if a.startswith("-"):
            i += 1
            continue
        return i, os.path.normpath(a)
    return i, None


def materialize_model(dest: Path) -> None:
    """The stand-in of a downloaded Llama-2-13B: the tiny random Llama (HF folder) or its GGUF, at ``dest``."""
    dest = Path(dest)
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.suffix == ".gguf":
        shutil.copyfile(STANDINS / "tiny-llama.gguf", dest)
    else:
        shutil.copytree(STANDINS / "tiny-llama-hf", dest)
    note(f"stand-in model: {dest}")


def python(args: list[str]) -> None:
    i, script = _script(args)
    env = dict(os.environ)
    stdin = None
    extra: list[str] = []
    if script is not None:
        rest = args[i + 1 :]
        if script.startswith("bench/") or script.startswith("bench" + os.sep):
            check_flags([REAL_PYTHON, script], rest)
            return
        if script == "build_dataset.py" and "--modes" in rest and rest[rest.index("--modes") + 1] == "llm":
            # a random model writes no usable pair: the infobox questions keep the output (and the next step) alive
            rest = list(rest)
            rest[rest.index("--modes") + 1] = "infobox,llm"
            args = [*args[: i + 1], *rest]
            if "--limit" not in rest:  # the model's work: one generation per pair, 24 tokens on the CPU
                extra = LLM_DATASET_EXTRA
        if script == "finetune.py":
            extra = FINETUNE_EXTRA
        elif script == "compare.py":
            extra = COMPARE_EXTRA
        elif script == os.path.normpath("models/baixar.py"):
            return baixar(args[: i + 1], rest)
        elif script == os.path.normpath("data/estudo/baixar.py"):
            return baixar_estudo(args[: i + 1], rest)
        if (
            script in GENERATING
            and "--max-new-tokens" not in rest
            and (script != "rag.py" or rest[:1] in (["ask"], ["chat"]))
        ):
            extra = [*extra, *MAX_NEW_TOKENS]
        if "--load-in-4bit" in rest:
            extra = [*extra, "--allow-cpu-quantization"]
        if (
            script in ("chat_cpu.py", "chat_gpu.py")
            and "--prompt" not in rest
            or script == "rag.py"
            and rest[:1] == ["chat"]
        ):
            stdin = TYPED_QUESTION
        note(f"python {' '.join(args)} {' '.join(extra)}".rstrip())
    cmd = [REAL_PYTHON, *args, *extra]
    if stdin is None:
        os.execve(REAL_PYTHON, cmd, env)
    raise SystemExit(subprocess.run(cmd, input=stdin, text=True, env=env).returncode)


def baixar(cmd: list[str], rest: list[str]) -> None:
    """models/baixar.py: its plan as written (flags checked, offline), then the tiny Llama at every planned path."""
    out = subprocess.run([REAL_PYTHON, *cmd, *rest, "--dry-run"], capture_output=True, text=True)
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(out.returncode)
    sys.path.insert(0, os.getcwd())
    from llamawiki import downloads

    only = [rest[k + 1] for k, a in enumerate(rest) if a == "--only"] + [
        a.split("=", 1)[1] for a in rest if a.startswith("--only=")
    ]
    for model in downloads.select_models(only or None):
        materialize_model(Path(model.dest))


def baixar_estudo(cmd: list[str], rest: list[str]) -> None:
    """data/estudo/baixar.py: run as written against a local mirror of the study's repository at its commit
    (the developers' copy of the files, which tests may read); where there is none, the project's own small files
    in the study's formats are written instead, and the rehearsal says so."""
    mirror = os.environ.get("ENSAIO_STUDY_MIRROR")
    if mirror:
        note(f"python {' '.join(cmd)} --base-url file://{mirror} (local mirror)")
        os.execv(REAL_PYTHON, [REAL_PYTHON, *cmd, *rest, "--base-url", f"file://{mirror}"])
    check_flags([REAL_PYTHON, *cmd], rest)
    sys.path.insert(0, os.path.join(os.getcwd(), "tests"))
    from conftest import write_study_files

    write_study_files(Path("data/estudo"))
    note("no copy of the study's files here: data/estudo/ holds the tests' small files in the study's formats")


def accelerate(args: list[str]) -> None:
    args = list(args)
    if args[:1] == ["launch"]:
        for j, a in enumerate(args):
            if (
                a == "--config_file"
                and j + 1 < len(args)
                and os.path.normpath(args[j + 1]) in tuple(os.path.normpath(c) for c in GPU_ACCELERATE_CONFIGS)
            ):
                note(f"accelerate: {args[j + 1]} -> {CPU_ACCELERATE_CONFIG}")
                args[j + 1] = CPU_ACCELERATE_CONFIG
        if "finetune.py" in args:
            args += FINETUNE_EXTRA
    note(f"accelerate {' '.join(args)}")
    os.execv(str(REAL_BIN / "accelerate"), [str(REAL_BIN / "accelerate"), *args])


def pip(args: list[str]) -> None:
    if args[:1] == ["install"]:
        # installs nothing into the shared venv: pip resolves the request against the index and stops
        note(f"pip {' '.join(args)} --dry-run")
        os.execv(REAL_PYTHON, [REAL_PYTHON, "-m", "pip", *args, "--dry-run", "-q"])
    os.execv(REAL_PYTHON, [REAL_PYTHON, "-m", "pip", *args])


def make(args: list[str]) -> None:
    real = shutil.which("make", path=os.environ.get("ENSAIO_REAL_PATH"))
    targets = [a for a in args if not a.startswith("-") and "=" not in a]
    if any(t in ("test", "setup-gpu") for t in targets):
        # `make test` is what runs this rehearsal; setup-gpu needs CUDA and the PyTorch index: printed, not run
        note(f"make -n {' '.join(args)}")
        os.execv(real, [real, "-n", *args])
    note(f"make {' '.join(args)}")
    os.execv(real, [real, *args])


def wget(args: list[str]) -> None:
    urls = [a for a in args if re.match(r"https?://", a)]
    if not urls:
        fail(f"wget {' '.join(args)}: no URL")
    for url in urls:
        name = url.rsplit("/", 1)[-1]
        if name not in WGET_FILES:
            fail(f"wget: {url}: no stand-in for this file")
        shutil.copyfile(STANDINS / WGET_FILES[name], name)
        note(f"wget {url} -> sample as {name}")


def hf(args: list[str]) -> None:
    if args[:1] != ["download"]:
        fail(f"hf {' '.join(args)}: only `hf download` has a stand-in")
    check_flags([str(REAL_BIN / "hf"), "download"], args[1:])
    rest = args[1:]
    local = None
    positional = []
    j = 0
    while j < len(rest):
        a = rest[j]
        if a == "--local-dir":
            local = rest[j + 1]
            j += 2
            continue
        if a.startswith("--local-dir="):
            local = a.split("=", 1)[1]
        elif a.startswith("--"):
            if "=" not in a and j + 1 < len(rest) and not rest[j + 1].startswith("--"):
                j += 1
        else:
            positional.append(a)
        j += 1
    if local is None:
        fail("hf download without --local-dir: the configs read local paths under models/")
    files = positional[1:]
    if files:
        for f in files:
            materialize_model(Path(local) / f)
    else:
        materialize_model(Path(local))


def sbatch(args: list[str]) -> None:
    """Runs the job script here, once per array task, with the SLURM_* variables a real allocation sets."""
    parsable = False
    array = None
    j = 0
    while j < len(args) and args[j].startswith("-"):
        a = args[j]
        if a == "--parsable":
            parsable = True
        elif a.startswith("--array="):
            array = a.split("=", 1)[1]
        elif a == "--array":
            array = args[j + 1]
            j += 1
        elif a.startswith("--") and "=" not in a:
            j += 1  # --option value
        j += 1
    if j >= len(args):
        fail("sbatch: no job script")
    script, script_args = args[j], args[j + 1 :]
    counter = Path(os.environ.get("ENSAIO_STANDINS", ".")) / "sbatch-jobid"
    job = int(counter.read_text()) + 1 if counter.exists() else 1000
    counter.write_text(str(job))
    tasks: list[int | None] = [None]
    if array:
        tasks = []
        for part in array.split("%")[0].split(","):
            if "-" in part:
                a, b = part.split("-")
                tasks += list(range(int(a), int(b) + 1))
            else:
                tasks.append(int(part))
    for t in tasks:
        env = dict(
            os.environ,
            SLURM_JOB_ID=str(job if t is None else job + 1 + t),
            SLURM_SUBMIT_DIR=os.getcwd(),
            SLURM_NNODES="1",
            SLURM_JOB_NUM_NODES="1",
            SLURM_JOB_NODELIST="localhost",
            SLURM_NODEID="0",
            SLURM_GPUS_ON_NODE="1",
            SLURM_CPUS_PER_TASK="2",
            SLURM_NTASKS="1",
        )
        if t is not None:
            env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(t))
        note(f"sbatch {script} task {t}" + (f" {shlex.join(script_args)}" if script_args else ""))
        r = subprocess.run(["bash", script, *script_args], env=env, stdout=sys.stderr)
        if r.returncode != 0:
            fail(f"sbatch {script}: job {job} task {t} exited {r.returncode}")
    print(job if parsable else f"Submitted batch job {job}")


def bash(args: list[str]) -> None:
    script = next((a for a in args if not a.startswith("-")), None)
    if script and os.path.normpath(script).startswith("bench" + os.sep):
        # a benchmark measures (docs/benchmarks.md); here its syntax is checked, as `bash -n` does
        note(f"bash -n {script}")
        os.execv("/bin/bash", ["/bin/bash", "-n", script])
    os.execv("/bin/bash", ["/bin/bash", *args])


SHIMS = {
    "bash": bash,
    "python": python,
    "accelerate": accelerate,
    "pip": pip,
    "make": make,
    "wget": wget,
    "hf": hf,
    "sbatch": sbatch,
}

if __name__ == "__main__":
    SHIMS[sys.argv[1]](sys.argv[2:])
