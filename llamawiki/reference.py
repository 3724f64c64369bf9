"""The committed reference run: the numbers the README shows, regenerated, never typed.

Four subcommands (``python -m llamawiki.reference ...``; ``make referencia`` runs the first two):

- ``save RUN_DIR...``: copy a finished compare.py run's small text files (respostas.jsonl, metricas.csv,
  pareado.csv, manifest.json, tabela.md, exposicao.csv, diagnostico_rag.csv, any other small CSV/JSON/JSONL/MD it
  wrote; not the png, not the hidden caches) into ``results/referencia/<run>/``, with ``origem.json``: the git
  commit, the date, the machine, the library versions, the command, and what the run's inputs were (dataset
  counts, the adapter's training, the index). respostas.jsonl keeps only the answers the tables used (one per
  question and system).
- ``readme``: rewrite the README's generated sections (between ``<!-- gerado: NAME -->`` and
  ``<!-- fim: NAME -->``) from ``results/referencia/`` (the sections: :mod:`llamawiki.readme`); ``--check``
  changes nothing and exits 1 when README.md is not what it would write (a test runs it: the README cannot drift
  from the reference).
- ``diff RUN_DIR``: how a run compares with the reference of the same name: identical answers, or which differ
  (question, system, before/after) and how each metric row moves. ``make demo`` ends with it.
- ``seeds RUN_DIR SEED_RUN_DIR...``: the spread of acerto across adapters trained with different seeds.

A reference that lacks a run (``make avaliacao`` not finished) is not an error: its README sections say the run is
absent instead of showing numbers. Reading a run folder: :mod:`llamawiki.runs`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .fileio import (
    UserError,
    atomic_open,
    atomic_path,
    cli,
    git_commit,
    library_versions,
    read_text,
    sha256_file,
)
from .readme import (  # noqa: F401  (re-exported: the README names were reference.X before readme.py)
    MARKER,
    README,
    RUNS,
    SECTIONS,
    load_reference,
    render_readme,
    update_readme,
)
from .runs import (  # noqa: F401  (re-exported: the run-reading names were reference.X before runs.py)
    ORIGIN,
    PAIRS_SHOWN,
    REFERENCE_DIR,
    REQUIRED,
    Pair,
    Run,
    acerto_cell,
    finished_problem,
    load_run,
    num,
    p_text,
    pair,
    run_date,
    signed,
)

SAVED_SUFFIXES = (".csv", ".json", ".jsonl", ".md")
MAX_FILE_BYTES = 5 * 1024 * 1024  # a reference is small text files: a bigger one is a mistake, not a reference


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
        "git": git_commit(root),
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
        # with the retrieved contexts: acerto reads them (a pasted passage is an echo) and the RAG diagnosis too,
        # so the saved answers score to the saved tables
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
    lines.append(f"{run.path} vs the reference {ref.path} (commit {commit}, {run_date(o)}):")
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
        before, after = acerto_cell(ref.metric(system)), acerto_cell(run.metric(system))
        if before != after:
            moved.append(f"    {system:<16} {before}  ->  {after}")
    if moved:
        lines.append("  acerto moved:")
        lines.extend(moved)
    else:
        lines.append("  acerto: every row as in the reference")
    for first, second in PAIRS_SHOWN:
        before, after = pair(ref, first, second), pair(run, first, second)
        if before and after and (p_text(before.p), signed(before.diff)) != (p_text(after.p), signed(after.diff)):
            lines.append(
                f"  {first} − {second}: {signed(before.diff)}, p {p_text(before.p)}  ->  "
                f"{signed(after.diff)}, p {p_text(after.p)}"
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
    """A seed run's label: ``s3`` -> ``3`` (the folder names make avaliacao SEEDS=... gives them). The main run's
    own adapter: its training seed (run_config.json, when the adapter on disk is the one the run used) and
    "referência", or "referência" alone."""
    if re.fullmatch(r"s\d+", run.name):
        return run.name[1:]
    seed = (_adapter_summary(run.manifest, Path.cwd()) or {}).get("seed")
    return f"{seed} (referência)" if seed is not None else "referência"


def spread_runs(run: Run, seed_dirs: Sequence[str | os.PathLike[str]]) -> list[Run]:
    """The runs the seed spread is taken over: the run itself (its own adapter is one more seed: the one its
    README numbers come from, unless a seed run used the same adapter) and one run per extra seed."""
    seed_runs = [load_run(d) for d in seed_dirs]
    if not seed_runs:
        raise UserError(f"{run.path}: no seed run given")
    own = _adapter_sha(run)
    if own is not None and own in {_adapter_sha(r) for r in seed_runs}:
        return seed_runs  # its adapter is one of the seeds' already: counted once
    return [run, *seed_runs]


def seed_spread(seed_runs: Sequence[Run]) -> list[dict]:
    """Per fine-tuned system: acerto's mean, min and max across the seed runs, and each seed's value."""
    rows = []
    labels = [seed_label(r) for r in seed_runs]  # once per run: the main run's label hashes its adapter
    for system in SEEDS_SYSTEMS:
        values = [
            (label, v)
            for label, r in zip(labels, seed_runs, strict=True)
            if (v := num(r.metric(system), "acerto")) is not None
        ]
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
        f"Um adaptador por semente (`make avaliacao SEEDS=...`, mais o adaptador desta execução, marcado "
        f"referência), as mesmas {n_questions} perguntas: quanto o acerto "
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


def write_seeds(
    run_dir: str | os.PathLike[str], seed_dirs: Sequence[str | os.PathLike[str]]
) -> tuple[Path, list[dict]]:
    """``run_dir``/sementes.csv and its section in ``run_dir``/tabela.md (replaced when already there); returns
    the file and its rows."""
    import csv

    run = load_run(run_dir)
    runs = spread_runs(run, seed_dirs)
    rows = seed_spread(runs)
    if not rows:
        raise UserError(f"{runs[-1].path}: no {' or '.join(SEEDS_SYSTEMS)} row in the seed runs' metricas.csv")
    out = run.path / SEEDS_CSV
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SEEDS_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    table = read_text(run.path / "tabela.md")
    table = re.sub(re.escape(SEEDS_BEGIN) + ".*?" + re.escape(SEEDS_END) + "\n?", "", table, flags=re.S)
    with atomic_open(run.path / "tabela.md") as f:
        f.write(table.rstrip("\n") + "\n\n" + seeds_section(rows, run.n_questions))
    return out, rows


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
        out, rows = write_seeds(args.run_dir, args.seed_dirs)
        for row in rows:
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
