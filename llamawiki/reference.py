"""The committed reference run: the numbers the README shows, regenerated, never typed.

Three subcommands (``python -m llamawiki.reference ...``; ``make referencia`` runs the first two):

- ``save RUN_DIR...``: copy a finished compare.py run's small text files (respostas.jsonl, metricas.csv,
  pareado.csv, manifest.json, tabela.md, any other small CSV/JSON/JSONL/MD it wrote; not the png, not the hidden
  caches) into ``results/referencia/<run>/``, with ``origem.json``: the git commit, the date, the machine, the
  library versions, the command, and what the run's inputs were (dataset counts, the adapter's training, the
  index). respostas.jsonl keeps only the answers the tables used (one per question and system).
- ``readme``: rewrite the README's generated sections (between ``<!-- gerado: NAME -->`` and
  ``<!-- fim: NAME -->``) from ``results/referencia/``; ``--check`` changes nothing and exits 1 when README.md
  is not what it would write (a test runs it: the README cannot drift from the reference).
- ``diff RUN_DIR``: how a run compares with the reference of the same name: identical answers, or which differ
  (question, system, before/after) and how each metric row moves. ``make demo`` ends with it.

A reference that lacks a run (``make avaliacao`` not finished) is not an error: its README sections say the run is
absent instead of showing numbers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import UserError, atomic_open, atomic_path, cli, library_versions, read_csv, read_text, sha256_file

REFERENCE_DIR = Path("results/referencia")
ORIGIN = "origem.json"
README = Path("README.md")
# the files every finished compare.py run has; the reference of a run is unusable without them
REQUIRED = ("manifest.json", "metricas.csv", "pareado.csv", "tabela.md", "respostas.jsonl")
SAVED_SUFFIXES = (".csv", ".json", ".jsonl", ".md")
MAX_FILE_BYTES = 5 * 1024 * 1024  # a reference is small text files: a bigger one is a mistake, not a reference
RUNS = ("demo", "avaliacao")  # the runs the README shows, in its order
# the pairs of systems the README shows, as "first − second" (pareado.csv has every pair, in either order)
PAIRS_SHOWN = (
    ("rag", "base"),
    ("finetuned", "base"),
    ("rag+finetuned", "rag"),
    ("rag+finetuned", "finetuned"),
)
STUDY_LABELS = {
    "study-base": "estudo: Llama-2-13B",
    "study-rag": "estudo: + RAG",
    "study-finetuned": "estudo: + QLoRA",
}
SYSTEM_PHRASES = {
    "base": "o modelo base",
    "rag": "o RAG sozinho",
    "finetuned": "o ajuste fino sozinho",
    "rag+finetuned": "RAG + ajuste fino",
}
MARKER = re.compile(r"<!-- gerado: ([\w-]+) -->\n(.*?)<!-- fim: \1 -->", re.S)


# ---------------------------------------------------------------------------------------------------------------
# reading a run (a results/<run> folder or its reference copy)


@dataclass
class Run:
    """A finished compare.py run: its manifest, metric rows, paired rows, answers and (a reference) origin."""

    path: Path
    manifest: dict
    metrics: list[dict]
    paired: list[dict]
    answers: dict[tuple[str, str], dict] = field(default_factory=dict)  # (question_id, system) -> record
    origin: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def metric(self, system: str) -> dict | None:
        return next((r for r in self.metrics if r.get("system") == system), None)

    @property
    def systems(self) -> list[str]:
        return [r["system"] for r in self.metrics]

    @property
    def n_questions(self) -> int:
        return int((self.manifest.get("questions") or {}).get("n") or 0)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def _read_rows(path: Path, needed: Sequence[str]) -> list[dict]:
    columns, rows = read_csv(path)
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (not a compare.py table?)")
    return rows


def _read_answers(path: Path) -> list[dict]:
    """respostas.jsonl in file order; a line an interruption cut (the run then generated it again) is skipped."""
    records = []
    for line in read_text(path).splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "system" in rec and "question_id" in rec:
            records.append(rec)
    return records


def finished_problem(manifest: dict) -> str | None:
    """Why a run's manifest does not describe a finished, complete run (None: it does)."""
    if manifest.get("partial_of"):
        return f"a partial run (tables of a smaller run than {manifest['partial_of']})"
    answers = manifest.get("answers") or {}
    if answers.get("missing"):
        return f"{answers['missing']} answer(s) missing (--render-only of an unfinished run)"
    coverage = manifest.get("coverage") or {}
    n = (manifest.get("questions") or {}).get("n")
    if n is not None and len(coverage.get("question_ids") or []) != n:
        return f"the tables cover {len(coverage.get('question_ids') or [])} of {n} questions (--limit)"
    return None


def load_run(path: str | os.PathLike[str], *, finished: bool = True) -> Run:
    """A run folder (results/demo or results/referencia/demo): UserError naming the file when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{path}: {'not a folder' if path.exists() else 'no such run folder'}")
    absent = [name for name in REQUIRED if not (path / name).is_file()]
    if absent:
        raise UserError(
            f"{path}: not a finished compare.py run (no {', '.join(absent)}); run compare.py --run-dir {path} first"
        )
    manifest = _read_json(path / "manifest.json")
    if finished and (problem := finished_problem(manifest)):
        raise UserError(f"{path}: {problem}; finish the run first")
    metrics = _read_rows(path / "metricas.csv", ("system", "acerto", "acerto_n"))
    paired = _read_rows(path / "pareado.csv", ("a", "b", "diff", "low", "high", "only_a", "only_b", "p_mcnemar"))
    coverage = manifest.get("coverage") or {}
    systems = set(coverage.get("systems") or [r["system"] for r in metrics])
    ids = set(coverage.get("question_ids") or [])
    answers: dict[tuple[str, str], dict] = {}
    for rec in _read_answers(path / "respostas.jsonl"):
        if rec["system"] in systems and (not ids or str(rec["question_id"]) in ids):
            answers[(str(rec["question_id"]), rec["system"])] = rec  # the last one wins: the latest generated
    origin = _read_json(path / ORIGIN) if (path / ORIGIN).is_file() else None
    return Run(path, manifest, metrics, paired, answers, origin)


# ---------------------------------------------------------------------------------------------------------------
# save


def machine() -> dict:
    """The machine a run was saved on (the reference is made where it ran: ``make referencia``)."""
    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except (OSError, ValueError, IndexError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_gb": memory_gb,
        "platform": platform.platform(),
    }


def git_state(root: Path | None = None) -> dict | None:
    root = root or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _records_summary(root: Path, relative: str) -> dict | None:
    """A dataset JSONL: its sha256, how many records and articles (None when absent)."""
    path = root / relative
    if not path.is_file():
        return None
    n, articles = 0, set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            n += 1
            articles.add(rec.get("article"))
    return {"path": relative, "sha256": sha256_file(path), "records": n, "articles": len(articles - {None})}


def _duration(started: str | None, finished: str | None) -> float | None:
    try:
        return (_dt.datetime.fromisoformat(finished) - _dt.datetime.fromisoformat(started)).total_seconds()
    except (TypeError, ValueError):
        return None


def _adapter_summary(manifest: dict, root: Path) -> dict | None:
    """The adapter the run's finetuned systems used: its training (from run_config.json), when the adapter on disk
    is still the one the run used (same safetensors sha256 as in the manifest)."""
    for entry in manifest.get("models") or []:
        adapter = (entry.get("model") or {}).get("adapter")
        if not adapter:
            continue
        folder = root / adapter
        out: dict = {"path": adapter}
        used = {
            f["path"]: f.get("sha256") for f in entry.get("files") or [] if f.get("path", "").endswith(".safetensors")
        }
        out["sha256"] = next(iter(used.values()), None)
        weights = folder / "adapter_model.safetensors"
        if weights.is_file() and used and sha256_file(weights) not in used.values():
            out["note"] = "the adapter on disk changed after the run: its training is not recorded"
            return out
        config = folder / "run_config.json"
        if config.is_file():
            try:
                rc = json.loads(config.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                rc = {}
            metrics = rc.get("metrics") or {}
            out.update(
                {
                    "seed": rc.get("seed"),
                    "global_step": rc.get("global_step"),
                    "started": rc.get("started"),
                    "finished": rc.get("finished"),
                    "seconds": _duration(rc.get("started"), rc.get("finished")),
                    "train_runtime_s": metrics.get("train_runtime"),
                    "train_loss": metrics.get("train_loss"),
                    "eval_loss": metrics.get("eval_loss"),
                    "cpu_threads": (rc.get("config") or {}).get("cpu_threads"),
                    "train": ((rc.get("data") or {}).get("train") or {}).get("n"),
                }
            )
        return out
    return None


def _index_summary(manifest: dict, root: Path) -> dict | None:
    for entry in manifest.get("models") or []:
        index_dir = (entry.get("retrieval") or {}).get("index_dir")
        if not index_dir:
            continue
        path = root / index_dir / "manifest.json"
        out: dict = {"path": index_dir, "manifest_sha256": entry.get("index_manifest_sha256")}
        if path.is_file():
            try:
                im = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                im = {}
            out.update({"counts": im.get("counts"), "seconds": (im.get("timing") or {}).get("seconds")})
        return out
    return None


def compare_command(manifest: dict, run_dir: Path) -> str:
    """The compare.py command that made the run, from its manifest."""
    parts = ["python compare.py"]
    if manifest.get("config_path"):
        parts.append(f"--config {manifest['config_path']}")
    questions = (manifest.get("questions") or {}).get("path")
    if questions and questions != (manifest.get("config") or {}).get("questions"):
        parts.append(f"--questions {questions}")
    parts.append(f"--run-dir {run_dir}")
    run = manifest.get("run") or {}
    if run.get("systems"):
        parts.append("--systems " + ",".join(run["systems"]))
    if run.get("limit"):
        parts.append(f"--limit {run['limit']}")
    if manifest.get("study_answers"):
        parts.append("--study-answers")
    return " ".join(parts)


def origin(run: Run, command: str | None, root: Path) -> dict:
    manifest = run.manifest
    latencies = [float(r.get("latency_s") or 0) for r in run.answers.values()]
    return {
        "run": run.name,
        "source": str(run.path),
        "saved": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "run_created": manifest.get("created"),
        "git": git_state(root),
        "run_git": manifest.get("git"),
        "command": command,
        "compare_command": compare_command(manifest, run.path),
        "machine": machine(),
        "libraries": library_versions(),
        "questions": manifest.get("questions"),
        "answers": {"n": len(run.answers), "latency_s_sum": round(sum(latencies), 1)},
        "inputs": {
            "dataset": _records_summary(root, "json/dataset.jsonl"),
            "train": _records_summary(root, "json/treino.jsonl"),
            "test": _records_summary(root, "json/teste.jsonl"),
            "adapter": _adapter_summary(manifest, root),
            "index": _index_summary(manifest, root),
        },
    }


def files_to_save(run_dir: Path) -> list[Path]:
    """The run's small text files: top-level CSV/JSON/JSONL/MD (no png, no hidden caches, no parcial/)."""
    files = []
    for p in sorted(run_dir.iterdir()):
        if p.name.startswith(".") or not p.is_file() or p.suffix not in SAVED_SUFFIXES or p.name == ORIGIN:
            continue
        files.append(p)
    return files


def save_run(
    run_dir: str | os.PathLike[str],
    dest: str | os.PathLike[str] = REFERENCE_DIR,
    *,
    name: str | None = None,
    command: str | None = None,
    root: Path | None = None,
) -> Path:
    """Copy a finished run into ``dest/<name>`` (default name: the run folder's) and write its origem.json.

    The new folder is built beside the old one and swapped in at the end: a failure leaves the previous reference
    as it was."""
    run = load_run(run_dir)
    root = root or Path.cwd()
    dest = Path(dest)
    target = dest / (name or run.name)
    files = files_to_save(run.path)
    big = [p for p in files if p.stat().st_size > MAX_FILE_BYTES and p.name != "respostas.jsonl"]
    if big:
        raise UserError(f"{big[0]}: {big[0].stat().st_size} bytes, over the reference's {MAX_FILE_BYTES} per file")
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=dest))
    try:
        for p in files:
            if p.name == "respostas.jsonl":
                continue
            shutil.copyfile(p, staging / p.name)
        # only the answers the tables used, in question order then system order: no stale cache entries
        order = {qid: i for i, qid in enumerate((run.manifest.get("coverage") or {}).get("question_ids") or [])}
        systems = {s: i for i, s in enumerate(run.systems)}
        ordered = sorted(
            run.answers.values(),
            key=lambda r: (order.get(str(r["question_id"]), 1 << 30), systems.get(r["system"], 1 << 30)),
        )
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            raise UserError(f"{run.path / 'respostas.jsonl'}: the answers used are over {MAX_FILE_BYTES} bytes")
        (staging / "respostas.jsonl").write_text(text, encoding="utf-8")
        (staging / ORIGIN).write_text(
            json.dumps(origin(run, command, root), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        os.chmod(staging, 0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            target.rename(old)
        staging.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


# ---------------------------------------------------------------------------------------------------------------
# formatting (tables as compare.py writes them: dots; prose: Portuguese decimal commas)


def _num(row: dict | None, key: str) -> float | None:
    if row is None:
        return None
    value = row.get(key)
    if value in (None, ""):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _f(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def _pt(text: str) -> str:
    """A number written for prose: decimal comma."""
    return text.replace(".", ",")


def _p(p: float | None, prose: bool = False) -> str:
    """A McNemar p: ``0.039``/``<0.001`` in a table, ``p = 0,039``/``p < 0,001`` in prose."""
    if p is None:
        return "p ?" if prose else "–"
    if p < 0.001:
        return "p < 0,001" if prose else "<0.001"
    return f"p = {_pt(f'{p:.3f}')}" if prose else f"{p:.3f}"


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _count(row: dict | None) -> tuple[int, int] | None:
    """acerto as (hits, n) from a metricas.csv row (the rate is written with 4 decimals: exact for n < 5000)."""
    rate, n = _num(row, "acerto"), _num(row, "acerto_n")
    if rate is None or not n:
        return None
    return round(rate * n), int(n)


def _acerto_cell(row: dict | None) -> str:
    count = _count(row)
    if count is None:
        return "–"
    k, n = count
    return f"{k}/{n} = {k / n:.2f} [{_f(_num(row, 'acerto_low'))}, {_f(_num(row, 'acerto_high'))}]"


def _latency(row: dict | None) -> str:
    x = _num(row, "latency_s")
    return "–" if not x else _pt(f"{x:.1f}") + " s"


def _label(system: str) -> str:
    return STUDY_LABELS.get(system, system)


@dataclass
class Pair:
    """A paired comparison, oriented as ``first − second``."""

    first: str
    second: str
    n: int
    diff: float
    low: float
    high: float
    only_first: int
    only_second: int
    p: float | None


def pair(run: Run, first: str, second: str) -> Pair | None:
    for r in run.paired:
        flip = (r.get("a"), r.get("b")) == (second, first)
        if (r.get("a"), r.get("b")) != (first, second) and not flip:
            continue
        diff, low, high = _num(r, "diff"), _num(r, "low"), _num(r, "high")
        if diff is None or low is None or high is None:
            return None
        only_a, only_b = int(_num(r, "only_a") or 0), int(_num(r, "only_b") or 0)
        p = _num(r, "p_mcnemar")
        if flip:
            diff, low, high, only_a, only_b = -diff, -high, -low, only_b, only_a
        return Pair(first, second, int(_num(r, "n") or 0), diff, low, high, only_a, only_b, p)
    return None


def _minus(x: float) -> str:
    """A signed difference with a typographic minus; a rounded zero is ``+0.00`` (never ``−0.00``)."""
    text = _f(x, sign=True)
    return "+" + text[1:] if float(text) == 0 else text.replace("-", "−")


# ---------------------------------------------------------------------------------------------------------------
# the README sections


def _absent(name: str) -> str:
    make = {"demo": "make demo", "avaliacao": "make avaliacao"}.get(name, f"compare.py --run-dir results/{name}")
    return (
        f"*A referência ainda não tem a execução `{name}` (`results/referencia/{name}/`): rode `{make}` e depois "
        "`make referencia`. Nenhum número é mostrado no lugar dela.*\n"
    )


def _date(origin: dict | None, key: str = "run_created") -> str:
    value = (origin or {}).get(key) or (origin or {}).get("saved") or ""
    return value[:10] or "?"


def section_referencia(runs: dict[str, Run | None]) -> str:
    lines = []
    for name in RUNS:
        run = runs.get(name)
        if run is None:
            lines.append(f"- `{name}`: ausente (ainda não salva em `results/referencia/{name}/`).")
            continue
        o = run.origin or {}
        git = o.get("run_git") or o.get("git") or {}
        commit = (git.get("commit") or "?")[:10] + (" (com alterações locais)" if git.get("dirty") else "")
        m = o.get("machine") or {}
        cores = m.get("cores_usable") or m.get("cores")
        where = f"{m.get('cpu') or 'CPU ?'}, {_plural(cores or 0, 'núcleo', 'núcleos')}" if m else "máquina ?"
        lines.append(
            f"- `{name}`: {len(run.answers)} respostas a {run.n_questions} perguntas, commit `{commit}`, "
            f"{_date(o)}, {where} (`results/referencia/{name}/origem.json`)."
        )
    return "\n".join(lines) + "\n"


def section_etapas(runs: dict[str, Run | None]) -> str:
    run = runs.get("demo")
    inputs = ((run.origin or {}).get("inputs") if run else None) or {}

    def records(key: str, with_articles: bool = False) -> str:
        s = inputs.get(key)
        if not s:
            return ""
        return f" ({s['records']} exemplos de {s['articles']} artigos)" if with_articles else f" ({s['records']})"

    adapter = inputs.get("adapter") or {}
    index = inputs.get("index") or {}
    steps = f" ({adapter['global_step']} passos)" if adapter.get("global_step") else ""
    chunks = (index.get("counts") or {}).get("chunks")
    n_answers = f" ({len(run.answers)} respostas)" if run else ""
    rows = [
        "| # | script | entrada | saída |",
        "|---|--------|---------|-------|",
        "| 1 | `build_dataset.py` | dump `pages-articles` (`.xml`/`.xml.bz2`) ou CSV/JSON de perguntas | "
        f"`json/dataset.jsonl`{records('dataset', True)} |",
        f"| 2 | `particiona.py` | `json/dataset.jsonl` | `json/treino.jsonl`{records('train')}, "
        f"`json/teste.jsonl`{records('test')}, agrupado por artigo |",
        f"| 3 | `finetune.py` | `json/treino.jsonl` + modelo base | adaptador LoRA em `models/lora-demo/`{steps} |",
        f"| 4 | `rag.py index` | o dump | índice FAISS + BM25 em `indexes/amostra/`"
        f"{f' ({chunks} trechos)' if chunks else ''} |",
        "| 5 | `compare.py` | `data/perguntas.csv`, modelos, adaptador, índice | `results/demo/tabela.md`, "
        f"`metricas.csv`, `pareado.csv`, `metricas.png`, `manifest.json`{n_answers} |",
        "| – | `chat_cpu.py` / `chat_gpu.py` | GGUF (+ adaptador LoRA, llama.cpp) / pasta HF + adaptador "
        "(transformers) | conversa no terminal |",
        "| – | `rag.py ask` / `rag.py chat` | índice + modelo | resposta com fontes |",
    ]
    text = "\n".join(rows) + "\n"
    return text if run is not None else text + "\n" + _absent("demo")


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _times(runs: dict[str, Run | None]) -> str:
    """The durations the reference recorded (never typed): training, index, answers."""
    parts = []
    demo = runs.get("demo")
    o = (demo.origin if demo else None) or {}
    m = o.get("machine") or {}
    adapter = (o.get("inputs") or {}).get("adapter") or {}
    index = (o.get("inputs") or {}).get("index") or {}
    if adapter.get("seconds"):
        parts.append(f"ajuste fino {_minutes(adapter['seconds'])} ({adapter.get('global_step')} passos)")
    if index.get("seconds"):
        parts.append(f"índice {_minutes(index['seconds'])}")
    for name in RUNS:
        run = runs.get(name)
        answers = ((run.origin or {}).get("answers") if run else None) or {}
        if answers.get("latency_s_sum"):
            parts.append(
                f"`{name}`: {answers['n']} respostas em {_minutes(answers['latency_s_sum'])} (soma das latências)"
            )
    if not parts:
        return "Tempos: a referência não registrou nenhum.\n"
    cores = m.get("cores_usable") or m.get("cores")
    where = f" ({m.get('cpu')}, {_plural(cores or 0, 'núcleo', 'núcleos')}, sem GPU)" if m else ""
    return f"Tempos da execução de referência{where}: " + "; ".join(parts) + ".\n"


def _system_table(run: Run, columns: Sequence[tuple[str, Callable[[dict], str], bool]]) -> str:
    head = "| sistema | " + " | ".join(c[0] for c in columns) + " |"
    align = "|---|" + "|".join("---:" if c[2] else "---" for c in columns) + "|"
    rows = [head, align]
    for row in run.metrics:
        rows.append(f"| {_label(row['system'])} | " + " | ".join(c[1](row) for c in columns) + " |")
    return "\n".join(rows) + "\n"


def _paired_table(run: Run) -> str:
    rows = [
        "| A − B | diferença [IC 95%] | só A acertou | só B acertou | p |",
        "|---|---|---:|---:|---:|",
    ]
    shown = 0
    for first, second in PAIRS_SHOWN:
        pr = pair(run, first, second)
        if pr is None:
            continue
        shown += 1
        rows.append(
            f"| {first} − {second} | {_minus(pr.diff)} [{_minus(pr.low)}, {_minus(pr.high)}] | {pr.only_first} | "
            f"{pr.only_second} | {_p(pr.p)} |"
        )
    return "\n".join(rows) + "\n" if shown else "*(sem comparação pareada nesta execução)*\n"


def section_tabela_demo(runs: dict[str, Run | None]) -> str:
    run = runs.get("demo")
    if run is None:
        return _absent("demo")
    table = _system_table(
        run,
        [
            ("acerto [IC 95%]", _acerto_cell, False),
            ("F1", lambda r: _f(_num(r, "token_f1")), False),
            ("ROUGE-L", lambda r: _f(_num(r, "rouge_l")), False),
            ("em português", lambda r: _f(_num(r, "portugues")), False),
            ("palavras", lambda r: _f(_num(r, "palavras_mean"), 1), True),
            ("latência", _latency, True),
        ],
    )
    study = any(s.startswith("study-") for s in run.systems)
    note = (
        ""
        if study
        else "\nAs linhas `estudo:` (as respostas publicadas pelo estudo, Llama-2-13B, pontuadas do mesmo jeito) só "
        "aparecem quando a referência é salva de uma execução com `--study-answers` (precisa de `make "
        "estudo-dados`); esta não tem.\n"
    )
    return (
        table
        + note
        + "\nComparação pareada (mesmas perguntas; diferença de acerto com IC *bootstrap* pareado, p exato de "
        "McNemar):\n\n" + _paired_table(run)
    )


def _hits(run: Run, system: str) -> str:
    count = _count(run.metric(system))
    return f"{count[0]} de {count[1]}" if count else "?"


def _separates(pr: Pair | None) -> str:
    if pr is None or pr.p is None:
        return "sem comparação pareada"
    verb = "se separa" if pr.p < 0.05 else "não se separa"
    return f"{verb}: {_pt(_minus(pr.diff))} [{_pt(_minus(pr.low))}, {_pt(_minus(pr.high))}], {_p(pr.p, True)}"


def _reading(run: Run) -> str:
    """The reading of a run's table, every number from the run (a sentence template, not typed numbers)."""
    known = [s for s in SYSTEM_PHRASES if run.metric(s) is not None]
    if not known:
        return ""
    lines = [f"**Leitura** (gerada da referência; {run.n_questions} perguntas). Pelo acerto:"]
    for system in known:
        text = f"- {SYSTEM_PHRASES[system]}: {_hits(run, system)}"
        comparisons = [(a, b) for a, b in PAIRS_SHOWN if a == system and b in known]
        if comparisons:
            text += "; contra " + "; contra ".join(
                f"{SYSTEM_PHRASES[b]}, {_separates(pair(run, a, b))}" for a, b in comparisons
            )
        lines.append(text + ".")
    counts = {s: _count(run.metric(s)) for s in known}
    best = max(known, key=lambda s: counts[s][0] if counts[s] else -1)
    lines.append(f"- O maior acerto é o de {SYSTEM_PHRASES[best]}.")
    f1 = {s: _num(run.metric(s), "token_f1") for s in known}
    if f1.get("rag") is not None and f1.get("base") is not None and f1["rag"] < f1["base"]:
        lines.append(
            f"- O F1 ordena de outro jeito: põe o RAG sozinho abaixo do base ({_pt(_f(f1['rag']))} contra "
            f"{_pt(_f(f1['base']))}), porque premia quem repete as palavras da pergunta mesmo com o fato errado."
        )
    em = [_num(run.metric(s), "exact_match") for s in known]
    if all(x == 0 for x in em if x is not None):
        lines.append("- EM é 0 em todos: as referências são frases completas.")
    return "\n".join(lines) + "\n"


def section_leitura_demo(runs: dict[str, Run | None]) -> str:
    run = runs.get("demo")
    if run is None:
        return _absent("demo")
    return (
        _reading(run) + "\nCom poucas perguntas, uma resposta a mais muda o p de lado de 0,05: leia o p do demo como "
        "indicação; as perguntas de `make avaliacao` decidem.\n"
    )


def _exposure(run: Run) -> str:
    seen = run.manifest.get("seen_in_training") or {}
    entry = seen.get("finetuned") or next(iter(seen.values()), None)
    if not entry or entry.get("status") != "ok":
        return "*(a execução não registrou quais perguntas estão no treino)*\n"
    c = entry.get("counts") or {}
    total = sum(int(v or 0) for v in c.values())
    near = _plural(c.get("near", 0), "é quase idêntica", "são quase idênticas")
    return (
        f"Das {total} perguntas, {_plural(c.get('identical', 0), 'está', 'estão')} no treino de "
        f"`{entry.get('adapter')}` (idêntica depois de normalizada), {near} "
        f"(Jaccard de palavras ≥ 0,8), {_plural(c.get('article', 0), 'tem', 'têm')} outra pergunta do "
        f"mesmo artigo no treino e {_plural(c.get('unseen', 0), 'é inédita', 'são inéditas')}. "
        f'O acerto em cada grupo: seção "Perguntas vistas no treino" de `results/referencia/{run.name}/tabela.md`.\n'
    )


def section_vistas_demo(runs: dict[str, Run | None]) -> str:
    run = runs.get("demo")
    return _absent("demo") if run is None else _exposure(run)


def section_tabela_avaliacao(runs: dict[str, Run | None]) -> str:
    run = runs.get("avaliacao")
    if run is None:
        return _absent("avaliacao")
    table = _system_table(
        run,
        [
            ("acerto [IC 95%]", _acerto_cell, False),
            ("F1", lambda r: _f(_num(r, "token_f1")), False),
            ("em português", lambda r: _f(_num(r, "portugues")), False),
            ("listas", lambda r: str(int(_num(r, "listas") or 0)), True),
        ],
    )
    return (
        table
        + "\n"
        + _paired_table(run)
        + "\n"
        + _reading(run)
        + "\n"
        + _exposure(run)
        + ("\n" + _seeds(run) if (run.path / "sementes.csv").is_file() else "")
    )


def _seeds(run: Run) -> str:
    """The spread of acerto across training seeds (sementes.csv, when the run trained several adapters)."""
    columns, rows = read_csv(run.path / "sementes.csv")
    if not rows or "system" not in columns:
        return ""
    out = [
        "Variação entre sementes do treino (um adaptador por semente; acerto médio, mínimo e máximo):",
        "",
        "| sistema | sementes | acerto médio | mínimo | máximo |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['system']} | {r.get('seeds', '')} | {_f(_num(r, 'mean'))} | {_f(_num(r, 'min'))} | "
            f"{_f(_num(r, 'max'))} |"
        )
    return "\n".join(out) + "\n"


def section_tempos(runs: dict[str, Run | None]) -> str:
    return _times(runs)


SECTIONS: dict[str, Callable[[dict[str, Run | None]], str]] = {
    "referencia": section_referencia,
    "etapas": section_etapas,
    "tabela-demo": section_tabela_demo,
    "leitura-demo": section_leitura_demo,
    "vistas-demo": section_vistas_demo,
    "tabela-avaliacao": section_tabela_avaliacao,
    "tempos": section_tempos,
}


def load_reference(reference: str | os.PathLike[str] = REFERENCE_DIR) -> dict[str, Run | None]:
    """The reference's runs by name; a run it does not have (or only a folder without the files) is None."""
    reference = Path(reference)
    runs: dict[str, Run | None] = {}
    for name in RUNS:
        folder = reference / name
        runs[name] = load_run(folder, finished=False) if folder.exists() else None
    return runs


def render_readme(text: str, runs: dict[str, Run | None], where: str = "README.md") -> str:
    """``text`` with every generated section rewritten from ``runs``."""
    unknown = sorted({m.group(1) for m in MARKER.finditer(text)} - set(SECTIONS))
    if unknown:
        raise UserError(f"{where}: unknown generated section(s) {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    opened = re.findall(r"<!-- gerado: ([\w-]+) -->", text)
    closed = {m.group(1) for m in MARKER.finditer(text)}
    unclosed = [name for name in opened if name not in closed]
    if unclosed:
        raise UserError(f"{where}: section {unclosed[0]!r} opened (<!-- gerado: -->) but never closed (<!-- fim: -->)")

    def replace(m: re.Match) -> str:
        name = m.group(1)
        return f"<!-- gerado: {name} -->\n{SECTIONS[name](runs)}<!-- fim: {name} -->"

    return MARKER.sub(replace, text)


def update_readme(
    readme: str | os.PathLike[str] = README, reference: str | os.PathLike[str] = REFERENCE_DIR, check: bool = False
) -> list[str]:
    """Rewrite ``readme``'s generated sections (atomically); with ``check``, write nothing and raise (exit 1)
    when it differs. Returns the names of the sections that changed."""
    readme = Path(readme)
    text = read_text(readme, "README")
    if "<!-- gerado: " not in text:
        raise UserError(f"{readme}: no generated section (<!-- gerado: NAME --> ... <!-- fim: NAME -->)")
    new = render_readme(text, load_reference(reference), str(readme))
    old_sections = {m.group(1): m.group(2) for m in MARKER.finditer(text)}
    changed = [m.group(1) for m in MARKER.finditer(new) if old_sections.get(m.group(1)) != m.group(2)]
    if new == text:
        return []
    if check:
        raise UserError(
            f"{readme}: {len(changed)} generated section(s) differ from {reference} ({', '.join(changed)}); "
            "run `make referencia` (or python -m llamawiki.reference readme) and commit README.md",
            exit_code=1,
        )
    with atomic_open(readme) as f:
        f.write(new)
    return changed


# ---------------------------------------------------------------------------------------------------------------
# diff


def _short(text: str, width: int = 70) -> str:
    text = " ".join((text or "").split())
    return json.dumps(text if len(text) <= width else text[: width - 1] + "…", ensure_ascii=False)


def _adapter_sha(run: Run) -> str | None:
    for entry in run.manifest.get("models") or []:
        for f in entry.get("files") or []:
            if f.get("path", "").endswith("adapter_model.safetensors"):
                return f.get("sha256")
    return None


def diff_runs(run: Run, ref: Run, max_listed: int = 20) -> list[str]:
    """Lines saying how ``run`` compares with ``ref``: answers, adapter, metric rows, the pairs shown."""
    lines = []
    o = ref.origin or {}
    commit = ((o.get("run_git") or o.get("git") or {}).get("commit") or "?")[:10]
    lines.append(f"{run.path} vs the reference {ref.path} (commit {commit}, {_date(o)}):")
    if problem := finished_problem(run.manifest):
        lines.append(f"  note: this run is unfinished ({problem}): compared on the answers it has")
    q_run, q_ref = (run.manifest.get("questions") or {}), (ref.manifest.get("questions") or {})
    if q_run.get("sha256") and q_ref.get("sha256") and q_run["sha256"] != q_ref["sha256"]:
        lines.append(f"  note: the questions file differs ({q_run.get('path')} changed since the reference)")
    a_run, a_ref = _adapter_sha(run), _adapter_sha(ref)
    if a_run and a_ref:
        lines.append(
            "  adapter: "
            + ("same sha256 as the reference's" if a_run == a_ref else "a different adapter_model.safetensors sha256")
        )
    keys = sorted(set(run.answers) | set(ref.answers), key=lambda k: (_qkey(k[0]), k[1]))
    differ = [k for k in keys if k in run.answers and k in ref.answers and _answer(run, k) != _answer(ref, k)]
    only_run = [k for k in keys if k not in ref.answers]
    only_ref = [k for k in keys if k not in run.answers]
    both = len(keys) - len(only_run) - len(only_ref)
    if not differ and not only_run and not only_ref:
        lines.append(f"  identical answers ({both}/{both})")
    else:
        lines.append(f"  {len(differ)} of {both} answers differ")
        for qid, system in differ[:max_listed]:
            lines.append(f"    question {qid}, {system}:")
            lines.append(f"      reference: {_short(_answer(ref, (qid, system)))}")
            lines.append(f"      this run:  {_short(_answer(run, (qid, system)))}")
        if len(differ) > max_listed:
            lines.append(f"    ... and {len(differ) - max_listed} more")
        if only_run:
            lines.append(f"  {len(only_run)} answer(s) only in this run (systems: {_systems(only_run)})")
        if only_ref:
            lines.append(f"  {len(only_ref)} answer(s) only in the reference (systems: {_systems(only_ref)})")
    moved = []
    for system in dict.fromkeys(ref.systems + run.systems):
        before, after = _acerto_cell(ref.metric(system)), _acerto_cell(run.metric(system))
        if before != after:
            moved.append(f"    {system:<16} {before}  ->  {after}")
    if moved:
        lines.append("  acerto moved:")
        lines.extend(moved)
    else:
        lines.append("  acerto: every row as in the reference")
    for first, second in PAIRS_SHOWN:
        before, after = pair(ref, first, second), pair(run, first, second)
        if before and after and (_p(before.p), _minus(before.diff)) != (_p(after.p), _minus(after.diff)):
            lines.append(
                f"  {first} − {second}: {_minus(before.diff)}, p {_p(before.p)}  ->  "
                f"{_minus(after.diff)}, p {_p(after.p)}"
            )
    return lines


def _qkey(qid: str) -> tuple:
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid)


def _answer(run: Run, key: tuple[str, str]) -> str:
    return str(run.answers[key].get("answer", ""))


def _systems(keys: list[tuple[str, str]]) -> str:
    return ", ".join(dict.fromkeys(k[1] for k in keys))


def answers_identical(run: Run, ref: Run) -> bool:
    return set(run.answers) == set(ref.answers) and all(_answer(run, k) == _answer(ref, k) for k in run.answers)


# ---------------------------------------------------------------------------------------------------------------
# seeds: the spread of acerto across adapters trained with different seeds (make avaliacao SEEDS="1 2 3")

SEEDS_CSV = "sementes.csv"
SEEDS_SYSTEMS = ("finetuned", "rag+finetuned")
SEEDS_COLUMNS = ["system", "seeds", "mean", "min", "max", "values"]
SEEDS_BEGIN, SEEDS_END = "<!-- sementes -->", "<!-- fim: sementes -->"


def seed_label(run: Run) -> str:
    """A seed run's label: ``s3`` -> ``3`` (the folder names make avaliacao SEEDS=... gives them)."""
    return run.name[1:] if re.fullmatch(r"s\d+", run.name) else run.name


def seed_spread(seed_runs: Sequence[Run]) -> list[dict]:
    """Per fine-tuned system: acerto's mean, min and max across the seed runs, and each seed's value."""
    rows = []
    for system in SEEDS_SYSTEMS:
        values = [(seed_label(r), _num(r.metric(system), "acerto")) for r in seed_runs]
        values = [(label, v) for label, v in values if v is not None]
        if not values:
            continue
        rates = [v for _, v in values]
        rows.append(
            {
                "system": system,
                "seeds": len(values),
                "mean": round(sum(rates) / len(rates), 4),
                "min": min(rates),
                "max": max(rates),
                "values": ";".join(f"{label}:{v}" for label, v in values),
            }
        )
    return rows


def seeds_section(rows: Sequence[dict], n_questions: int) -> str:
    out = [
        SEEDS_BEGIN,
        "## Variação entre sementes do treino",
        "",
        f"Um adaptador por semente (`make avaliacao SEEDS=...`), as mesmas {n_questions} perguntas: quanto o acerto "
        "dos sistemas ajustados muda só com a semente do treino (inicialização do LoRA, ordem dos dados, dropout). "
        "Uma diferença entre sistemas menor que essa faixa pode ser ruído de semente.",
        "",
        "| sistema | sementes | acerto médio | mínimo | máximo | por semente |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        each = ", ".join(f"{label}: {float(v):.2f}" for label, v in (x.split(":") for x in r["values"].split(";")))
        out.append(f"| {r['system']} | {r['seeds']} | {r['mean']:.2f} | {r['min']:.2f} | {r['max']:.2f} | {each} |")
    return "\n".join(out) + "\n" + SEEDS_END + "\n"


def write_seeds(run_dir: str | os.PathLike[str], seed_dirs: Sequence[str | os.PathLike[str]]) -> Path:
    """``run_dir``/sementes.csv and its section in ``run_dir``/tabela.md (replaced when already there)."""
    import csv

    run = load_run(run_dir)
    seed_runs = [load_run(d) for d in seed_dirs]
    if not seed_runs:
        raise UserError(f"{run.path}: no seed run given")
    rows = seed_spread(seed_runs)
    if not rows:
        raise UserError(f"{seed_runs[0].path}: no {' or '.join(SEEDS_SYSTEMS)} row in the seed runs' metricas.csv")
    out = run.path / SEEDS_CSV
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SEEDS_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    table = read_text(run.path / "tabela.md")
    table = re.sub(re.escape(SEEDS_BEGIN) + ".*?" + re.escape(SEEDS_END) + "\n?", "", table, flags=re.S)
    with atomic_open(run.path / "tabela.md") as f:
        f.write(table.rstrip("\n") + "\n\n" + seeds_section(rows, run.n_questions))
    return out


# ---------------------------------------------------------------------------------------------------------------
# command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m llamawiki.reference", description=(__doc__ or "").split("\n\n")[0].strip()
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save", help="copy finished runs into the reference (results/referencia/<run>/)")
    s.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished compare.py run folders (results/demo)")
    s.add_argument("--reference", default=str(REFERENCE_DIR), help="the reference folder (default: %(default)s)")
    s.add_argument(
        "--allow-missing",
        action="store_true",
        help="a missing or unfinished run is a warning (its reference, if any, is left as it was), not an error",
    )
    s.add_argument("--command-line", help="the command that made the runs, recorded in origem.json")
    r = sub.add_parser("readme", help="regenerate README.md's generated sections from the reference")
    r.add_argument("--readme", default=str(README), help="default: %(default)s")
    r.add_argument("--reference", default=str(REFERENCE_DIR), help="default: %(default)s")
    r.add_argument("--check", action="store_true", help="write nothing; exit 1 if README.md is not up to date")
    e = sub.add_parser("seeds", help="the spread of acerto across seed runs: RUN_DIR/sementes.csv + tabela.md")
    e.add_argument("run_dir", metavar="RUN_DIR", help="the main run (results/avaliacao)")
    e.add_argument("seed_dirs", nargs="+", metavar="SEED_RUN_DIR", help="one finished run per seed (…/sementes/s1)")
    d = sub.add_parser("diff", help="compare a run with the reference of the same name")
    d.add_argument("run_dir", metavar="RUN_DIR")
    d.add_argument("--reference", default=str(REFERENCE_DIR), help="default: %(default)s")
    d.add_argument("--name", help="the reference run to compare with (default: the run folder's name)")
    d.add_argument("--check", action="store_true", help="exit 1 when an answer differs from the reference")
    return p.parse_args(argv)


@cli
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "save":
        for run_dir in args.run_dirs:
            try:
                target = save_run(run_dir, args.reference, command=args.command_line)
            except UserError as e:
                if not args.allow_missing:
                    raise
                print(f"warning: {e}; its reference, if any, is left as it was", file=sys.stderr)
                continue
            print(f"saved {run_dir} -> {target}")
        return 0
    if args.command == "readme":
        changed = update_readme(args.readme, args.reference, check=args.check)
        if args.check:
            print(f"{args.readme}: up to date with {args.reference}")
        elif changed:
            print(f"{args.readme}: rewrote {', '.join(changed)}")
        else:
            print(f"{args.readme}: already up to date with {args.reference}")
        return 0
    if args.command == "seeds":
        out = write_seeds(args.run_dir, args.seed_dirs)
        for row in seed_spread([load_run(d) for d in args.seed_dirs]):
            print(
                f"  {row['system']:<16} acerto over {row['seeds']} seeds: mean {row['mean']:.3f}, "
                f"min {row['min']:.3f}, max {row['max']:.3f}"
            )
        print(f"seeds: {out} (and a section of {Path(args.run_dir) / 'tabela.md'})")
        return 0
    run = load_run(args.run_dir, finished=False)  # an unfinished run is compared on the answers it has
    ref_dir = Path(args.reference) / (args.name or run.name)
    if not ref_dir.exists():
        print(f"{run.path}: no reference run {ref_dir} to compare with (make referencia saves one)")
        return 0
    ref = load_run(ref_dir, finished=False)
    print("\n".join(diff_runs(run, ref)))
    return 1 if args.check and not answers_identical(run, ref) else 0


if __name__ == "__main__":
    raise SystemExit(main())
