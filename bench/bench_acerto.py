#!/usr/bin/env python3
"""acerto against hand labels: confusion matrix, precision, recall and Cohen's κ, per system and overall.

    python bench/bench_acerto.py --labels data/rotulos-estudo.csv
    python bench/bench_acerto.py --labels data/rotulos-*.csv --disagreements      # + every disagreement
    python bench/bench_acerto.py --labels outro.csv --labels mais.csv --by-check  # which check decided, per label
    python bench/bench_acerto.py --labels data/rotulos-estudo.csv --config configs/compare-llama2-13b.yaml \\
        --set judge.enabled=true                                                  # + the judge model's verdicts

A label file is a UTF-8 CSV with at least ``pergunta, respostas_aceitas, minimo_fatos, resposta, rotulo`` (1 =
correct, 0 = not: docs/compare.md, "Rótulos à mão"), optionally ``id``, ``sistema``, ``motivo``,
``respostas_erradas``, ``tipo``, ``resposta_referencia`` and ``contexto`` (a RAG answer's retrieved passages, as
the model saw them: with it, a passage pasted from its header is an echo). When ``id`` names a question of
``data/perguntas*.csv`` (``--questions`` to use other files) and the question text is the same, that question's
*current* columns (accepted forms, ``minimo_fatos``, ``respostas_erradas``, ``tipo``, reference) are used instead
of the file's: a label file stays valid as the question files improve. Otherwise the file's own columns are used.

Precision = of the answers acerto scores correct, the share labelled correct; recall = of the answers labelled
correct, the share acerto scores correct; κ = (agreement − chance agreement) / (1 − chance agreement). Bad input
is one line ``error: <file>: <problem>`` and exit 2.

The judge (``--config`` with an enabled ``judge:`` section): its verdicts on the same answers, from the same
``evaluation.judge_answers`` that compare.py uses (cached in ``--judge-cache``/juiz.jsonl), scored against the
labels the same way; an answer the judge gave no verdict on is counted apart. The judge's reference is the
question's ``resposta_referencia`` when known, else the accepted forms.

A second labeller's labels, written apart, go in a ``rotulo_2`` column: where a file has them, the report adds how
the two labellers agree, and ``--label-column rotulo_2`` scores acerto (and the judge) against the second
labeller instead of the first.
"""

from __future__ import annotations

import argparse
import glob
import math
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki.acerto import CHECKS, Verdict, judge_acerto  # noqa: E402
from llamawiki.fileio import UserError, cli, read_csv  # noqa: E402
from llamawiki.matching import AcceptedAnswers  # noqa: E402
from llamawiki.text import normalize  # noqa: E402

REQUIRED = ("pergunta", "respostas_aceitas", "minimo_fatos", "resposta", "rotulo")
DEFAULT_QUESTIONS = "data/perguntas*.csv"


@dataclass
class Labelled:
    """One labelled answer, with the question columns acerto is computed from."""

    file: str
    row: int
    id: str
    sistema: str
    pergunta: str
    accepted: AcceptedAnswers
    wrong: list[str]
    tipo: str
    reference: str
    resposta: str
    rotulo: int
    motivo: str = ""
    current: bool = False  # the columns come from data/perguntas*.csv, not from the label file
    contexto: str = ""  # a RAG answer's retrieved passages, when the file has them: a pasted passage is an echo
    rotulo_2: int | None = None  # a second labeller's label, written apart, when the file has one
    verdict: Verdict | None = None
    juiz: float | None = None


def _split_wrong(text: str) -> list[str]:
    return [w.strip() for w in (text or "").split("|") if w.strip()]


def _same_question(a: str, b: str) -> bool:
    wa, wb = set(normalize(a).split()), set(normalize(b).split())
    return bool(wa) and len(wa & wb) / len(wa | wb) >= 0.8


def load_question_index(patterns: Sequence[str]) -> dict[str, dict]:
    """id -> the current columns of that question in the question files (a row that does not parse is left out:
    the label file's own columns are used for it)."""
    index: dict[str, dict] = {}
    for pattern in patterns:
        paths = sorted(glob.glob(str(ROOT / pattern))) or sorted(glob.glob(pattern))
        for path in paths:
            _, rows = read_csv(path, "questions file")
            for row in rows:
                qid = (row.get("id") or "").strip()
                try:
                    accepted = AcceptedAnswers.parse(row.get("respostas_aceitas", ""), row.get("minimo_fatos"))
                except ValueError:
                    continue
                if qid and qid not in index:
                    index[qid] = {
                        "pergunta": row.get("pergunta", ""),
                        "accepted": accepted,
                        "wrong": _split_wrong(row.get("respostas_erradas", "")),
                        "tipo": (row.get("tipo") or "").strip(),
                        "reference": (row.get("resposta_referencia") or "").strip(),
                    }
    return index


def load_labels(path: str, questions: dict[str, dict], column: str = "rotulo") -> list[Labelled]:
    """The rows of one label file, labelled by ``column`` (``rotulo``, or ``rotulo_2`` for the second labeller);
    any problem is a UserError naming the file (and the row)."""
    columns, rows = read_csv(path, "label file")
    needed = [column if c == "rotulo" else c for c in REQUIRED]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UserError(f"{path}: missing column(s): {', '.join(missing)} (needs {', '.join(needed)})")
    if not rows:
        raise UserError(f"{path}: no labelled answers")
    out = []
    for n, row in enumerate(rows, 1):
        label = (row[column] or "").strip()
        if label not in ("0", "1"):
            raise UserError(f"{path}: row {n}: {column} must be 1 or 0, got {label!r}")
        second = (row.get("rotulo_2") or "").strip() if column == "rotulo" else ""
        if second not in ("", "0", "1"):
            raise UserError(f"{path}: row {n}: rotulo_2 must be 1, 0 or empty, got {second!r}")
        qid = (row.get("id") or "").strip()
        q = questions.get(qid)
        if q is not None and _same_question(q["pergunta"], row["pergunta"]):
            accepted, wrong, tipo, reference = q["accepted"], q["wrong"], q["tipo"], q["reference"]
            current = True
        else:
            try:
                accepted = AcceptedAnswers.parse(row["respostas_aceitas"], row["minimo_fatos"])
            except ValueError as e:
                raise UserError(f"{path}: row {n}: {e}") from None
            wrong = _split_wrong(row.get("respostas_erradas", ""))
            tipo, reference, current = (row.get("tipo") or "").strip(), (row.get("resposta_referencia") or ""), False
        out.append(
            Labelled(
                path,
                n,
                qid,
                (row.get("sistema") or "").strip() or "—",
                row["pergunta"].strip(),
                accepted,
                wrong,
                tipo,
                reference.strip(),
                row["resposta"],
                int(label),
                (row.get("motivo") or "").strip(),
                current,
                row.get("contexto") or "",
                rotulo_2=int(second) if second else None,
            )
        )
    return out


# ---- agreement ------------------------------------------------------------------------------------------------


@dataclass
class Agreement:
    tp: int = 0  # scored correct, labelled correct
    fp: int = 0  # scored correct, labelled wrong
    fn: int = 0  # scored wrong, labelled correct
    tn: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, pairs: Sequence[tuple[bool, int]]) -> Agreement:
        a = cls()
        for scored, label in pairs:
            if scored and label:
                a.tp += 1
            elif scored:
                a.fp += 1
            elif label:
                a.fn += 1
            else:
                a.tn += 1
        return a

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def accuracy(self) -> float:
        return (self.tp + self.tn) / self.n if self.n else math.nan

    @property
    def kappa(self) -> float:
        """Cohen's κ of two raters (the metric and the labels) on a yes/no judgement; NaN when chance agreement
        is total (both always say the same one thing)."""
        n = self.n
        if not n:
            return math.nan
        observed = (self.tp + self.tn) / n
        yes = ((self.tp + self.fp) / n) * ((self.tp + self.fn) / n)
        no = ((self.fn + self.tn) / n) * ((self.fp + self.tn) / n)
        chance = yes + no
        return (observed - chance) / (1 - chance) if chance < 1 else math.nan


def _f(x: float) -> str:
    return "n/d" if math.isnan(x) else f"{x:.2f}"


def agreement_lines(title: str, a: Agreement, rater: str = "acerto") -> list[str]:
    return [
        f"## {title} ({a.n} respostas)",
        "",
        "| | rótulo 1 | rótulo 0 |",
        "|---|---:|---:|",
        f"| {rater} 1 | {a.tp} | {a.fp} |",
        f"| {rater} 0 | {a.fn} | {a.tn} |",
        "",
        f"precision {_f(a.precision)}",
        f"recall {_f(a.recall)}",
        f"kappa {_f(a.kappa)}",
        f"accuracy {_f(a.accuracy)}",
        "",
    ]


def score(rows: Sequence[Labelled]) -> None:
    for r in rows:
        r.verdict = judge_acerto(
            r.resposta, r.accepted, r.wrong, question=r.pergunta, tipo=r.tipo, context=r.contexto or None
        )


def report(
    rows: Sequence[Labelled], by_check: bool = False, disagreements: bool = False, width: int = 400, judge: bool = False
) -> str:
    out = ["# acerto contra os rótulos à mão", ""]
    files = Counter(r.file for r in rows)
    current = Counter(r.file for r in rows if r.current)
    for f, n in files.items():
        out.append(f"- {f}: {n} respostas ({current[f]} com as colunas atuais de {DEFAULT_QUESTIONS})")
    out.append("")
    out += agreement_lines("geral", Agreement.of([(r.verdict.correct, r.rotulo) for r in rows]))
    systems = sorted({r.sistema for r in rows})
    if len(systems) > 1:
        for s in systems:
            out += agreement_lines(
                f"sistema {s}", Agreement.of([(r.verdict.correct, r.rotulo) for r in rows if r.sistema == s])
            )
    twice = [r for r in rows if r.rotulo_2 is not None]
    if twice:
        # the second labeller read against the first: how far two careful readers agree, the ceiling of any metric
        out += agreement_lines(
            "segundo rotulador (rotulo_2) contra o primeiro",
            Agreement.of([(r.rotulo_2 == 1, r.rotulo) for r in twice]),
            rater="rotulo_2",
        )
    judged = [r for r in rows if r.juiz is not None]
    if judge:
        out += agreement_lines("juiz", Agreement.of([(r.juiz == 1.0, r.rotulo) for r in judged]), rater="juiz")
        out += [f"juiz sem veredito: {len(rows) - len(judged)} respostas", ""]
    if by_check:
        out += [
            "## a regra que decidiu",
            "",
            "| regra | respostas | rótulo 1 | rótulo 0 | o que é |",
            "|---|---:|---:|---:|---|",
        ]
        counts = Counter((r.verdict.check, r.rotulo) for r in rows)
        for check, meaning in CHECKS.items():
            n1, n0 = counts[(check, 1)], counts[(check, 0)]
            if n1 or n0:
                out.append(f"| {check} | {n1 + n0} | {n1} | {n0} | {meaning} |")
        out.append("")
    if disagreements:
        bad = [r for r in rows if r.verdict.correct != bool(r.rotulo)]
        out += [f"## discordâncias ({len(bad)})", ""]
        for r in bad:
            answer = " ".join(r.resposta.split())
            if len(answer) > width:
                answer = answer[:width] + " …"
            acerto = "1" if r.verdict.correct else "0"
            out += [
                f"- {Path(r.file).name} linha-dado {r.row} · id {r.id or '—'} · {r.sistema} · rótulo {r.rotulo}, "
                f"acerto {acerto} ({r.verdict.check}: {r.verdict.detail})",
                f"  - pergunta: {r.pergunta} · aceitas: {r.accepted}"
                + (f" · erradas: {'|'.join(r.wrong)}" if r.wrong else ""),
                f"  - resposta: {answer}",
            ]
            if r.motivo:
                out.append(f"  - motivo do rótulo: {r.motivo}")
        out.append("")
    return "\n".join(out)


# ---- the judge ------------------------------------------------------------------------------------------------


def judge_labels(
    rows: Sequence[Labelled],
    config: str,
    overrides: Sequence[str] = (),
    cache_dir: str | Path = "results/bench-acerto",
    load_generator: Callable[[dict], Any] | None = None,
) -> bool:
    """Fill ``juiz`` on every row from the config's judge (``evaluation.judge_answers``: the same prompt and
    cache as compare.py). False when the config has no enabled judge."""
    from llamawiki import evaluation as ev
    from llamawiki.config import load_config
    from llamawiki.report import Question

    cfg = load_config(config, list(overrides))
    if ev.judge_spec(cfg) is None:
        return False
    questions, answers = [], {}
    for n, r in enumerate(rows):
        qid = f"r{n}"
        reference = r.reference or "; ".join(" | ".join(fact) for fact in r.accepted.facts)
        questions.append(Question(qid, r.pergunta, reference))
        answers[(r.sistema, qid)] = {"answer": r.resposta}
    opts = ev.CompareOptions(progress=sys.stderr.isatty())
    if load_generator is not None:
        opts.load_generator = load_generator
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    verdicts = ev.judge_answers(cfg, answers, questions, Path(cache_dir), opts, tqdm)
    for n, r in enumerate(rows):
        rec = verdicts.get((r.sistema, f"r{n}"))
        r.juiz = rec.get("verdict") if rec else None
    return True


@cli
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", action="append", nargs="+", required=True, metavar="FILE", help="label CSV(s)")
    ap.add_argument(
        "--questions",
        action="append",
        metavar="GLOB",
        help=f"question files whose current columns replace a label's (default {DEFAULT_QUESTIONS})",
    )
    ap.add_argument("--disagreements", action="store_true", help="print every answer where acerto and the label differ")
    ap.add_argument("--by-check", action="store_true", help="per named check: how many answers it decided, by label")
    ap.add_argument("--width", type=int, default=400, help="characters of each answer shown (default 400)")
    ap.add_argument("--config", help="a compare config: with an enabled `judge:` section, also score the judge")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the config")
    ap.add_argument("--judge-cache", default="results/bench-acerto", help="folder of the judge's juiz.jsonl")
    ap.add_argument(
        "--label-column",
        default="rotulo",
        metavar="COLUMN",
        help="the column of the labels to score against (default rotulo; rotulo_2: the second labeller)",
    )
    args = ap.parse_args(argv)
    questions = load_question_index(args.questions or [DEFAULT_QUESTIONS])
    files = [f for group in args.labels for f in group]
    rows = [r for f in files for r in load_labels(f, questions, args.label_column)]
    score(rows)
    judged = bool(args.config) and judge_labels(rows, args.config, args.set, args.judge_cache)
    if args.config and not judged:
        print(f"note: {args.config}: no enabled `judge:` section; only acerto is scored", file=sys.stderr)
    print(report(rows, by_check=args.by_check, disagreements=args.disagreements, width=args.width, judge=judged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
