"""A finished compare.py run, read: its manifest, metric rows, paired rows and answers (a ``results/<run>`` folder
or its copy in the committed reference ``results/referencia/<run>``), and its numbers formatted as the README and
``python -m llamawiki.reference diff`` print them (tables with dots, prose with Portuguese decimal commas).

Shared by :mod:`llamawiki.readme` (the README's generated sections) and :mod:`llamawiki.reference` (save, diff,
seeds and the command line); it reads compare.py's output files and imports no model code.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .fileio import UserError, read_csv, read_text

REFERENCE_DIR = Path("results/referencia")
ORIGIN = "origem.json"
# the files every finished compare.py run has; the reference of a run is unusable without them
REQUIRED = ("manifest.json", "metricas.csv", "pareado.csv", "tabela.md", "respostas.jsonl")
# the pairs of systems the README shows, as "first − second" (pareado.csv has every pair, in either order)
PAIRS_SHOWN = (
    ("rag", "base"),
    ("finetuned", "base"),
    ("rag+finetuned", "rag"),
    ("rag+finetuned", "finetuned"),
)


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


def read_json(path: Path) -> dict:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_rows(path: Path, needed: Sequence[str]) -> list[dict]:
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
    manifest = read_json(path / "manifest.json")
    if finished and (problem := finished_problem(manifest)):
        raise UserError(f"{path}: {problem}; finish the run first")
    metrics = read_rows(path / "metricas.csv", ("system", "acerto", "acerto_n"))
    paired = read_rows(path / "pareado.csv", ("a", "b", "diff", "low", "high", "only_a", "only_b", "p_mcnemar"))
    coverage = manifest.get("coverage") or {}
    systems = set(coverage.get("systems") or [r["system"] for r in metrics])
    ids = set(coverage.get("question_ids") or [])
    answers: dict[tuple[str, str], dict] = {}
    for rec in _read_answers(path / "respostas.jsonl"):
        if rec["system"] in systems and (not ids or str(rec["question_id"]) in ids):
            answers[(str(rec["question_id"]), rec["system"])] = rec  # the last one wins: the latest generated
    origin = read_json(path / ORIGIN) if (path / ORIGIN).is_file() else None
    return Run(path, manifest, metrics, paired, answers, origin)


# ---------------------------------------------------------------------------------------------------------------
# formatting (tables as compare.py writes them: dots; prose: Portuguese decimal commas)


def num(row: dict | None, key: str) -> float | None:
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


def fixed(x: float | None, digits: int = 2, sign: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def pt(text: str) -> str:
    """A number written for prose: decimal comma."""
    return text.replace(".", ",")


def p_text(p: float | None, prose: bool = False) -> str:
    """A McNemar p: ``0.039``/``<0.001`` in a table, ``p = 0,039``/``p < 0,001`` in prose."""
    if p is None:
        return "p ?" if prose else "–"
    if p < 0.001:
        return "p < 0,001" if prose else "<0.001"
    return f"p = {pt(f'{p:.3f}')}" if prose else f"{p:.3f}"


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def acerto_count(row: dict | None) -> tuple[int, int] | None:
    """acerto as (hits, n) from a metricas.csv row (the rate is written with 4 decimals: exact for n < 5000)."""
    rate, n = num(row, "acerto"), num(row, "acerto_n")
    if rate is None or not n:
        return None
    return round(rate * n), int(n)


def acerto_cell(row: dict | None) -> str:
    count = acerto_count(row)
    if count is None:
        return "–"
    k, n = count
    return f"{k}/{n} = {k / n:.2f} [{fixed(num(row, 'acerto_low'))}, {fixed(num(row, 'acerto_high'))}]"


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
        diff, low, high = num(r, "diff"), num(r, "low"), num(r, "high")
        if diff is None or low is None or high is None:
            return None
        only_a, only_b = int(num(r, "only_a") or 0), int(num(r, "only_b") or 0)
        p = num(r, "p_mcnemar")
        if flip:
            diff, low, high, only_a, only_b = -diff, -high, -low, only_b, only_a
        return Pair(first, second, int(num(r, "n") or 0), diff, low, high, only_a, only_b, p)
    return None


def signed(x: float) -> str:
    """A signed difference with a typographic minus; a rounded zero is ``+0.00`` (never ``−0.00``)."""
    text = fixed(x, sign=True)
    return "+" + text[1:] if float(text) == 0 else text.replace("-", "−")


def run_date(origin: dict | None, key: str = "run_created") -> str:
    value = (origin or {}).get(key) or (origin or {}).get("saved") or ""
    return value[:10] or "?"
