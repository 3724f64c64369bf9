"""slurm/*.sbatch: syntax, and the command lines of the index-by-parts array job and its merge (DRY_RUN=1), with
a fake dump folder holding part files named like Wikimedia's. No slurm here: sbatch itself is not run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ["ptwiki-20230920-pages-articles1.xml-p1p100.bz2", "ptwiki-20230920-pages-articles2.xml-p101p250.bz2",
         "ptwiki-20230920-pages-articles10.xml-p251p900.bz2"]


def _run(script: str, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    e.update(env)
    return subprocess.run(["bash", str(ROOT / "slurm" / script)], capture_output=True, text=True, cwd=ROOT,
                          env=e, timeout=60)


@pytest.fixture
def dump_dir(tmp_path) -> Path:
    d = tmp_path / "dumps"
    d.mkdir()
    for name in PARTS + ["ptwiki-20230920-pages-articles.xml.bz2", "ptwiki-20230920-abstract.xml.gz"]:
        (d / name).write_bytes(b"")
    return d


@pytest.mark.parametrize("script", ["finetune.sbatch", "index.sbatch", "merge.sbatch"])
def test_syntax(script):
    assert subprocess.run(["bash", "-n", str(ROOT / "slurm" / script)]).returncode == 0


def test_index_dry_run_lists_one_task_per_part(dump_dir, tmp_path):
    p = _run("index.sbatch", tmp_path, DRY_RUN="1", DUMP_DIR=str(dump_dir))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "# 3 part(s): sbatch --array=0-2 slurm/index.sbatch"
    # natural order (articles1, 2, 10), only the p*p* parts, one index folder per part
    for i, name in enumerate(PARTS):
        stem = name[: -len(".bz2")]
        assert lines[1 + i].split() == [f"[task", f"{i}]", ".venv/bin/python", "rag.py", "index",
                                        str(dump_dir / name), "--index-dir", f"indexes/partes/{stem}"]
    assert len(lines) == 4


def test_index_array_task_runs_its_part(dump_dir, tmp_path):
    p = _run("index.sbatch", tmp_path, DRY_RUN="1", DUMP_DIR=str(dump_dir), SLURM_ARRAY_TASK_ID="1",
             EXTRA="--batch-size 512")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["[task", "1]", ".venv/bin/python", "rag.py", "index", str(dump_dir / PARTS[1]),
                                "--index-dir", "indexes/partes/" + PARTS[1][:-4], "--batch-size", "512"]
    p = _run("index.sbatch", tmp_path, DRY_RUN="1", DUMP_DIR=str(dump_dir), SLURM_ARRAY_TASK_ID="3")
    assert p.returncode == 2 and "only 3 part(s)" in p.stderr


def test_index_without_parts_or_array_is_one_error(tmp_path, dump_dir):
    p = _run("index.sbatch", tmp_path, DUMP_DIR=str(tmp_path))
    assert p.returncode == 2 and p.stderr.strip() == f"error: {tmp_path}: no dump parts (*pages-articles*.xml-p*p*.bz2)"
    p = _run("index.sbatch", tmp_path, DUMP_DIR=str(dump_dir))
    assert p.returncode == 2 and "sbatch --array=0-2 slurm/index.sbatch" in p.stderr


def test_merge_command_and_missing_part_named(dump_dir, tmp_path):
    parts_dir = tmp_path / "partes"
    stems = [n[:-4] for n in PARTS]
    p = _run("merge.sbatch", tmp_path, DRY_RUN="1", DUMP_DIR=str(dump_dir), PARTS_DIR=str(parts_dir))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [".venv/bin/python", "rag.py", "merge", *(str(parts_dir / s) for s in stems),
                                "--index-dir", "indexes/ptwiki"]
    # parts 0 and 2 built, part 1's task failed: merge names it and merges nothing
    for s in (stems[0], stems[2]):
        (parts_dir / s).mkdir(parents=True)
        (parts_dir / s / "manifest.json").write_text("{}")
    p = _run("merge.sbatch", tmp_path, DUMP_DIR=str(dump_dir), PARTS_DIR=str(parts_dir),
             INDEX_DIR=str(tmp_path / "merged"))
    assert p.returncode == 2
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {parts_dir / stems[1]} (array task 1): index part missing (its task failed or has not run)"]
    assert not (tmp_path / "merged").exists()
    assert (parts_dir / stems[0] / "manifest.json").exists() and (parts_dir / stems[2] / "manifest.json").exists()
