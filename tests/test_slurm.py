"""slurm/*: every job under DRY_RUN=1 with SLURM_* variables; the index -> merge flow run for real on a multistream
dump made from the embedded sample (array tasks run locally, one after the other); the multistream split
(llamawiki.multistream) lossless; `make -n setup-gpu`. No slurm here: a job is run with bash, as sbatch would,
from the repository root with the variables SLURM sets."""

from __future__ import annotations

import bz2
import json
import os
import re
import shlex
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from llamawiki.dump import iter_pages
from llamawiki.fileio import UserError
from llamawiki.multistream import part_name, plan_split, read_stream_offsets, split_multistream

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"
JOBS = ["finetune.sbatch", "index.sbatch", "merge.sbatch", "compare.sbatch"]
PARTS = [
    "ptwiki-20230920-pages-articles1.xml-p1p100.bz2",
    "ptwiki-20230920-pages-articles2.xml-p101p250.bz2",
    "ptwiki-20230920-pages-articles10.xml-p251p900.bz2",
]
MULTI = "ptwiki-20230920-pages-articles-multistream.xml.bz2"
MULTI_INDEX = "ptwiki-20230920-pages-articles-multistream-index.txt.bz2"
PY = ".venv/bin/python"


def _run(script: str, slurm: dict | None = None, **env) -> subprocess.CompletedProcess:
    """Run a job as sbatch would: bash, from the repository root, with the SLURM_* variables of ``slurm``."""
    e = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLURM_", "CUDA_VISIBLE_DEVICES", "NUM_GPUS", "PARTS", "DUMP_DIR"))
    }
    e.update({"SLURM_JOB_ID": "1000", "SLURM_SUBMIT_DIR": str(ROOT), **(slurm or {})}, **env)
    return subprocess.run(
        ["bash", str(ROOT / "slurm" / script)], capture_output=True, text=True, cwd=ROOT, env=e, timeout=600
    )


def _array(script: str, n: int, **env) -> list[subprocess.CompletedProcess]:
    """``sbatch --array=0-(n-1) script``, the tasks run here one after the other."""
    return [
        _run(
            script,
            {
                "SLURM_ARRAY_JOB_ID": "1000",
                "SLURM_ARRAY_TASK_ID": str(i),
                "SLURM_ARRAY_TASK_COUNT": str(n),
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": str(n - 1),
            },
            **env,
        )
        for i in range(n)
    ]


def commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line) for line in stdout.splitlines() if line and not line.startswith("#")]


# ------------------------------------------------------------------------------------- a multistream dump
def write_multistream(xml: bytes, dump: Path, pages_per_stream: int = 10) -> Path:
    """Write ``xml`` as Wikimedia does a multistream dump: a header stream (<mediawiki>, <siteinfo>), streams of
    ``pages_per_stream`` pages, a footer stream (</mediawiki>); and its index, lines ``offset:page_id:title``."""
    starts = [m.start() for m in re.finditer(rb"  <page>", xml)]
    end = xml.rindex(b"</mediawiki>")
    groups = [starts[i : i + pages_per_stream] for i in range(0, len(starts), pages_per_stream)]
    out, lines = [bz2.compress(xml[: starts[0]])], []
    for i, group in enumerate(groups):
        stop = groups[i + 1][0] if i + 1 < len(groups) else end
        offset = sum(len(b) for b in out)
        for a, b in pairwise([*group, stop]):
            page = xml[a:b]
            pid = re.search(rb"<id>(\d+)</id>", page).group(1).decode()
            title = re.search(rb"<title>(.*?)</title>", page).group(1).decode()
            lines.append(f"{offset}:{pid}:{title}\n")
        out.append(bz2.compress(xml[group[0] : stop]))
    out.append(bz2.compress(xml[end:]))
    dump.write_bytes(b"".join(out))
    index = dump.with_name(dump.name[: -len(".xml.bz2")] + "-index.txt.bz2")
    index.write_bytes(bz2.compress("".join(lines).encode()))
    return index


@pytest.fixture(scope="module")
def sample_xml() -> bytes:
    if not SAMPLE.exists():
        pytest.skip(f"embedded sample dump missing: {SAMPLE}")
    return bz2.decompress(SAMPLE.read_bytes())


@pytest.fixture
def multistream(tmp_path, sample_xml) -> Path:
    d = tmp_path / "dumps"
    d.mkdir()
    write_multistream(sample_xml, d / MULTI)
    return d


def _all_pages(path):
    return [
        (p.id, p.title, p.text)
        for p in iter_pages(path, namespaces=None, skip_redirects=False, skip_disambiguation=False)
    ]


# ------------------------------------------------------------------------------------------- the split
@pytest.mark.parametrize("n", [1, 3, 8])
def test_split_is_lossless_every_page_once_in_order(multistream, n, tmp_path):
    dump = multistream / MULTI
    paths = split_multistream(dump, multistream / MULTI_INDEX, n, tmp_path / "out")
    assert [p.name for p in paths] == [part_name(dump, k, n) for k in range(n)]
    assert paths[0].name == f"ptwiki-20230920-pages-articles-multistream-part00of{n:02d}.xml.bz2"
    whole = _all_pages(dump)
    assert len(whole) == 80
    parts = [_all_pages(p) for p in paths]
    assert all(parts), "every part holds pages"
    assert [page for part in parts for page in part] == whole  # each page once, whole, in dump order
    assert _all_pages(SAMPLE) == whole  # and the multistream file is the sample
    # each part is a dump of its own: header (siteinfo) and footer included, read like any dump
    for p in paths:
        xml = bz2.decompress(p.read_bytes())
        assert xml.startswith(b"<mediawiki") and b"</siteinfo>" in xml and xml.rstrip().endswith(b"</mediawiki>")
    # only=: one part, the same bytes as in the full split
    again = split_multistream(dump, multistream / MULTI_INDEX, n, tmp_path / "one", only=[n - 1])
    assert [p.name for p in again] == [paths[-1].name] and again[0].read_bytes() == paths[-1].read_bytes()


def test_split_balances_compressed_bytes(multistream):
    plan = plan_split(multistream / MULTI, multistream / MULTI_INDEX, 4)
    assert plan.streams == 8 and len(plan.parts) == 4
    assert plan.parts[0][0] == plan.header[1] and plan.parts[-1][1] == plan.footer[0]
    assert all(a[1] == b[0] for a, b in pairwise(plan.parts))
    sizes = [b - a for a, b in plan.parts]
    assert max(sizes) < 2.5 * min(sizes)  # 8 streams in 4 parts: two streams each, not 5+1+1+1


def test_split_bad_input_is_one_line(multistream, tmp_path, sample_xml):
    dump, index = multistream / MULTI, multistream / MULTI_INDEX
    with pytest.raises(UserError, match=r"8 stream\(s\) of pages, cannot make 9 parts"):
        plan_split(dump, index, 9)
    bad = tmp_path / "bad-index.txt"
    bad.write_text("12:x:Brasil\n")
    with pytest.raises(UserError, match=r"bad-index.txt: line 1: expected offset:page_id:title"):
        read_stream_offsets(bad)
    # a single-stream dump with an index that is not its own: the offsets do not start streams
    wrong = tmp_path / "single-multistream.xml.bz2"
    wrong.write_bytes(SAMPLE.read_bytes())
    with pytest.raises(UserError, match=r"offset 52817 outside the dump .*single-multistream.xml.bz2 \(41675 bytes\)"):
        plan_split(wrong, index, 2)
    other = tmp_path / "other-index.txt"
    other.write_text("100:1:Brasil\n30000:2:Tiradentes\n")
    with pytest.raises(
        UserError,
        match=r"single-multistream.xml.bz2: byte 100 \(from .*other-index.txt\) is not the "
        r"start of a bzip2 stream; is the index this dump's\?",
    ):
        plan_split(wrong, other, 2)
    p = subprocess.run(
        [sys.executable, "slurm/split_multistream.py", str(dump), "--parts", "9", "--out-dir", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 2 and p.stderr == f"error: {dump}: 8 stream(s) of pages, cannot make 9 parts\n"
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# ---------------------------------------------------------------------------------- jobs under DRY_RUN
@pytest.fixture
def parts_dir(tmp_path) -> Path:
    d = tmp_path / "parts"
    d.mkdir()
    for name in PARTS + ["ptwiki-20230920-pages-articles.xml.bz2", "ptwiki-20230920-abstract.xml.gz"]:
        (d / name).write_bytes(b"")
    return d


@pytest.mark.parametrize("script", JOBS + ["site.sh", "lib.sh"])
def test_syntax(script):
    assert subprocess.run(["bash", "-n", str(ROOT / "slurm" / script)]).returncode == 0


def test_every_job_sources_the_site_settings_and_has_dry_run():
    for job in JOBS:
        text = (ROOT / "slurm" / job).read_text()
        assert "source slurm/lib.sh" in text, job
        assert not re.search(r"^#SBATCH --(partition|account|qos)", text, re.M), (
            f"{job}: site settings in slurm/site.sh"
        )
    assert "source slurm/site.sh" in (ROOT / "slurm" / "lib.sh").read_text()


def test_index_dry_run_on_parts_lists_one_task_per_part(parts_dir):
    p = _run("index.sbatch", DRY_RUN="1", DUMP_DIR=str(parts_dir))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "# 3 part(s) (parts): sbatch --array=0-2 slurm/index.sbatch"
    # natural order (articles1, 2, 10), only the p*p* parts, one index folder per part
    assert commands(p.stdout) == [
        [PY, "rag.py", "index", str(parts_dir / name), "--index-dir", f"indexes/partes/{name[:-4]}"] for name in PARTS
    ]


def test_index_dry_run_array_task(parts_dir):
    p = _run(
        "index.sbatch", {"SLURM_ARRAY_TASK_ID": "1"}, DRY_RUN="1", DUMP_DIR=str(parts_dir), EXTRA="--batch-size 512"
    )
    assert p.returncode == 0, p.stderr
    assert commands(p.stdout) == [
        [
            PY,
            "rag.py",
            "index",
            str(parts_dir / PARTS[1]),
            "--index-dir",
            "indexes/partes/" + PARTS[1][:-4],
            "--batch-size",
            "512",
        ]
    ]
    p = _run("index.sbatch", {"SLURM_ARRAY_TASK_ID": "3"}, DRY_RUN="1", DUMP_DIR=str(parts_dir))
    assert p.returncode == 2 and p.stderr == f"error: array task 3 but only 3 part(s) (parts) in {parts_dir}\n"


def test_index_dry_run_on_multistream_splits_then_indexes(multistream):
    p = _run(
        "index.sbatch", {"SLURM_ARRAY_TASK_ID": "2"}, DRY_RUN="1", DUMP_DIR=str(multistream), PARTS="4", PARTS_DIR="ix"
    )
    assert p.returncode == 0, p.stderr
    part = f"ix-dump/{MULTI[:-8]}-part02of04.xml.bz2"
    assert commands(p.stdout) == [
        [
            PY,
            "slurm/split_multistream.py",
            str(multistream / MULTI),
            "--index",
            str(multistream / MULTI_INDEX),
            "--parts",
            "4",
            "--only",
            "2",
            "--out-dir",
            "ix-dump",
        ],
        [PY, "rag.py", "index", part, "--index-dir", f"ix/{MULTI[:-8]}-part02of04.xml"],
    ]
    assert part.endswith(part_name(multistream / MULTI, 2, 4))  # bash and python name the parts alike
    assert not (ROOT / "ix").exists() and not (ROOT / "ix-dump").exists()  # a dry run writes nothing


def test_index_errors_are_one_line(tmp_path, parts_dir, multistream):
    p = _run("index.sbatch", DUMP_DIR=str(tmp_path / "nothing"))
    assert p.returncode == 2 and p.stderr == f"error: {tmp_path / 'nothing'}: dump folder not found (set DUMP_DIR)\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    p = _run("index.sbatch", DUMP_DIR=str(empty))
    assert (
        p.returncode == 2
        and p.stderr.startswith(f"error: {empty}: no dump: neither parts")
        and p.stderr.count("\n") == 1
    )
    p = _run("index.sbatch", DUMP_DIR=str(parts_dir))
    assert p.returncode == 2 and p.stderr == (
        "error: not an array task: submit with sbatch --array=0-2 slurm/index.sbatch\n"
    )
    p = _run("index.sbatch", {"SLURM_ARRAY_TASK_ID": "0"}, DUMP_DIR=str(multistream))
    assert p.returncode == 2 and "set PARTS=<n>" in p.stderr and p.stderr.count("\n") == 1
    (multistream / MULTI_INDEX).unlink()
    p = _run("index.sbatch", {"SLURM_ARRAY_TASK_ID": "0"}, DUMP_DIR=str(multistream), PARTS="2")
    assert p.returncode == 2 and p.stderr.startswith(f"error: {multistream / MULTI_INDEX}: not found")


@pytest.mark.parametrize("script", ["index.sbatch", "merge.sbatch"])
def test_parts_and_multistream_together_is_an_error(parts_dir, script):
    (parts_dir / MULTI).write_bytes(b"")
    p = _run(script, {"SLURM_ARRAY_TASK_ID": "0"}, DRY_RUN="1", DUMP_DIR=str(parts_dir), PARTS="2")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr == (
        f"error: {parts_dir}: both dump parts (3 files, {PARTS[0]} ...) and the multistream dump {MULTI}:"
        " the articles would be indexed twice; move one of the two out\n"
    )


def test_merge_command_and_missing_part_named(parts_dir, tmp_path):
    out = tmp_path / "partes"
    stems = [n[:-4] for n in PARTS]
    p = _run("merge.sbatch", DRY_RUN="1", DUMP_DIR=str(parts_dir), PARTS_DIR=str(out))
    assert p.returncode == 0, p.stderr
    assert commands(p.stdout) == [
        [PY, "rag.py", "merge", *(str(out / s) for s in stems), "--index-dir", "indexes/ptwiki"]
    ]
    # parts 0 and 2 built, part 1's task failed: merge names it and merges nothing
    for s in (stems[0], stems[2]):
        (out / s).mkdir(parents=True)
        (out / s / "manifest.json").write_text("{}")
    p = _run("merge.sbatch", DUMP_DIR=str(parts_dir), PARTS_DIR=str(out), INDEX_DIR=str(tmp_path / "merged"))
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {out / stems[1]} (array task 1): index part missing (its task failed or has not run)"]
    assert not (tmp_path / "merged").exists()


def test_finetune_dry_run_gpus_from_slurm_and_effective_batch(tmp_path):
    p = _run(
        "finetune.sbatch",
        {"SLURM_GPUS_ON_NODE": "3", "SLURM_CPUS_PER_TASK": "24"},
        DRY_RUN="1",
        CONFIG="configs/estudo-llama2-13b.yaml",
    )
    assert p.returncode == 0, p.stderr
    assert "3 GPU(s) (from SLURM_GPUS_ON_NODE)" in p.stdout
    assert "# effective batch 6 = 2 per device x 1 accumulation x 3 process(es)" in p.stdout
    assert "max_steps 1000: 6000 examples in all; one process would see 2000" in p.stdout
    assert commands(p.stdout) == [
        [
            "accelerate",
            "launch",
            "--config_file",
            "configs/accelerate/ddp.yaml",
            "--num_machines",
            "1",
            "--num_processes",
            "3",
            "--multi_gpu",
            "finetune.py",
            "--config",
            "configs/estudo-llama2-13b.yaml",
        ]
    ]
    # CUDA_VISIBLE_DEVICES when SLURM gives no count; --set in EXTRA changes the batch; epochs from the train file
    train = tmp_path / "treino.jsonl"
    train.write_text(
        "".join(json.dumps({"input": f"Pergunta {i}?", "output": f"Resposta {i}."}) + "\n" for i in range(40))
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"model: x\ntrain_file: {train}\ntraining: {{max_steps: 10, per_device_train_batch_size: 2, "
        "gradient_accumulation_steps: 4}\n"
    )
    p = _run(
        "finetune.sbatch",
        {"CUDA_VISIBLE_DEVICES": "0,1"},
        DRY_RUN="1",
        CONFIG=str(cfg),
        EXTRA="--set training.gradient_accumulation_steps=2 --resume",
    )
    assert p.returncode == 0, p.stderr
    assert "2 GPU(s) (from CUDA_VISIBLE_DEVICES)" in p.stdout
    assert "# effective batch 8 = 2 per device x 2 accumulation x 2 process(es)" in p.stdout
    assert "# 40 training examples: 2.0 epochs (1.0 with one process)" in p.stdout
    assert commands(p.stdout)[0][-5:] == [
        "--config",
        str(cfg),
        "--set",
        "training.gradient_accumulation_steps=2",
        "--resume",
    ]
    # one GPU: no --multi_gpu (accelerate would refuse it); no GPU: one line
    p = _run("finetune.sbatch", {"SLURM_GPUS_ON_NODE": "1"}, DRY_RUN="1", CONFIG=str(cfg))
    assert p.returncode == 0 and "--multi_gpu" not in p.stdout and "--num_processes 1" in p.stdout
    p = _run("finetune.sbatch", {"CUDA_VISIBLE_DEVICES": ""}, DRY_RUN="1", CONFIG=str(cfg), PATH="/usr/bin:/bin")
    assert p.returncode == 0 and "3 GPU(s) (from #SBATCH --gres, as none is visible here)" in p.stdout
    p = _run("finetune.sbatch", {"CUDA_VISIBLE_DEVICES": ""}, CONFIG=str(cfg), PATH="/usr/bin:/bin")
    assert (
        p.returncode == 2
        and p.stderr == f"error: {cfg}: no GPU (CUDA_VISIBLE_DEVICES): submit with --gres=gpu:N, or set NUM_GPUS\n"
    )
    # a bad config: the package's one line, before anything is launched
    p = _run(
        "finetune.sbatch",
        {"SLURM_GPUS_ON_NODE": "3"},
        DRY_RUN="1",
        CONFIG=str(cfg),
        EXTRA="--set training.gradient_accumulation_steps=abc",
    )
    assert p.returncode == 2 and "accelerate" not in p.stdout


def test_compare_dry_run():
    p = _run("compare.sbatch", DRY_RUN="1", PATH="/usr/bin:/bin")  # on a login node: no GPU, no slurm
    assert p.returncode == 0, p.stderr
    assert commands(p.stdout) == [[PY, "compare.py", "--config", "configs/compare-llama2-13b.yaml"]]
    p = _run(
        "compare.sbatch",
        {"SLURM_GPUS_ON_NODE": "1"},
        DRY_RUN="1",
        CONFIG="configs/compare-estudo.yaml",
        RUN_DIR="results/estudo",
        EXTRA="--study-answers --limit 2",
    )
    assert commands(p.stdout) == [
        [
            PY,
            "compare.py",
            "--config",
            "configs/compare-estudo.yaml",
            "--run-dir",
            "results/estudo",
            "--study-answers",
            "--limit",
            "2",
        ]
    ]


def test_site_settings_in_one_place(parts_dir):
    p = _run(
        "merge.sbatch", DRY_RUN="1", DUMP_DIR=str(parts_dir), SITE_MODULES="cuda/12.8 python/3.11", VENV="/opt/venv"
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "module purge; module load cuda/12.8 python/3.11"
    assert commands(p.stdout)[-1][0] == "/opt/venv/bin/python"


# ------------------------------------------------------------------ index -> merge, for real, on the sample
def test_multistream_index_array_then_merge_each_article_once(multistream, tmp_path):
    env = dict(
        DUMP_DIR=str(multistream), PARTS="2", PARTS_DIR=str(tmp_path / "partes"), INDEX_DIR=str(tmp_path / "ptwiki")
    )
    for i, p in enumerate(_array("index.sbatch", 2, EXTRA="--chunk-size 20000 --chunk-overlap 0", **env)):
        assert p.returncode == 0, f"task {i}: {p.stderr[-2000:]}"
    p = _run("merge.sbatch", **env)
    assert p.returncode == 0, p.stderr[-2000:]
    manifest = json.loads((tmp_path / "ptwiki" / "manifest.json").read_text())
    assert len(manifest["dump"]["merged"]) == 2
    with open(tmp_path / "ptwiki" / "chunks.jsonl", encoding="utf-8") as f:
        chunks = [json.loads(line) for line in f]
    articles = [p.title for p in iter_pages(SAMPLE)]
    assert manifest["counts"]["articles"] == len(articles)
    assert {c["metadata"]["title"] for c in chunks} == set(articles)
    # no article twice: no chunk repeated, and one page id per title
    keys = [(c["metadata"]["title"], c["metadata"].get("section"), c["text"]) for c in chunks]
    assert len(keys) == len(set(keys))
    ids = {}
    for c in chunks:
        ids.setdefault(c["metadata"]["title"], set()).add(c["metadata"]["page_id"])
    assert all(len(v) == 1 for v in ids.values())


# ---------------------------------------------------------------------------------------- make setup-gpu
def test_make_setup_gpu_installs_the_pinned_torch_with_cuda_and_builds_llama_cpp_with_cuda():
    pin = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    p = subprocess.run(
        ["make", "-n", "setup-gpu", "CUDA_TAG=cu126"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert p.returncode == 0, p.stderr
    lines = p.stdout.replace("\\\n", " ").splitlines()
    torch = [line for line in lines if re.search(r"install .*[\"' ]torch==", line)]
    assert len(torch) == 1
    version, tag = re.search(r"torch==([^\"'+ ]+)\+(\w+)", torch[0]).groups()
    assert (version, tag) == (pin, "cu126")
    assert "--index-url https://download.pytorch.org/whl/cu126" in torch[0]
    build = [line for line in lines if "pip wheel" in line and "llama-cpp-python==" in line]
    assert len(build) == 1
    cmake_args = shlex.split(re.search(r"CMAKE_ARGS=(\"[^\"]*\")", build[0]).group(1))[0].split()
    assert "-DGGML_CUDA=on" in cmake_args and "-DCMAKE_CUDA_ARCHITECTURES=80;90" in cmake_args
    # its own wheel folder (keyed by the flags), not the CPU build's, and that wheel is the one installed
    wheels = re.search(r"-w (\S+)", build[0]).group(1)
    cpu = subprocess.run(["make", "-n", "-B", "setup"], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert wheels not in cpu
    assert any(f"--force-reinstall {wheels}/*.whl" in line for line in lines)
    # torch before requirements.txt (whose torch==X the CUDA build then satisfies); nothing of it in `make test`
    assert lines.index(torch[0]) < next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    assert "setup-gpu" not in re.search(r"^test:.*$", (ROOT / "Makefile").read_text(), re.M).group(0)
