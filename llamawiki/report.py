"""The numbers and tables of a comparison: the question and run data types, the statistics (Wilson and bootstrap
intervals, the paired comparison) and the outputs ``tabela.md``, ``metricas.csv``, ``pareado.csv``,
``exposicao.csv``, ``diagnostico_rag.csv`` and ``metricas.png``.

:mod:`llamawiki.evaluation` runs the systems and caches their answers, then hands a :class:`RunResult` here; what
a fine-tuned system's training held is :mod:`llamawiki.exposure`, where a RAG answer went wrong
:mod:`llamawiki.diagnosis`.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import split as split_mod
from .acerto import CHECKS
from .diagnosis import CSV_COLUMNS as DIAGNOSIS_COLUMNS
from .diagnosis import STAGES, RagDiagnosis, flat_row
from .exposure import (  # noqa: F401  (re-exported: the seen-in-training names were report.X before exposure.py)
    EXPOSURE_LABELS,
    FACT_LABELS,
    FACT_SEEN_FLAGS,
    SEEN_FLAGS,
    Exposure,
    exposure_breakdown,
    exposures_of,
    fact_breakdown,
    proportion_stats,
    training_exposure,
)
from .fileio import atomic_open, atomic_path
from .matching import AcceptedAnswers
from .metrics import (
    METRICS,
    bootstrap_ci,
    mcnemar_exact,
    paired_bootstrap_diff,
)


@dataclass
class Question:
    id: str
    pergunta: str
    resposta_referencia: str = ""
    artigo: str = ""
    accepted: AcceptedAnswers | None = None  # column respostas_aceitas (+ minimo_fatos): what acerto looks for
    wrong: tuple[str, ...] = ()  # column respostas_erradas: known wrong candidates (acerto's candidato-errado)
    tipo: str = ""  # column tipo: infobox, lead, section, fato, aberta (an open question: no list checks)


@dataclass
class RunResult:
    run_dir: Path
    systems: list[str]
    questions: list[Question]
    answers: dict[tuple[str, str], dict]  # (system, question id) -> record
    scores: dict[tuple[str, str], dict]  # (system, question id) -> metric -> value
    summary: list[dict]  # one row per system
    generated: int = 0
    cached: int = 0
    missing: int = 0
    outputs: dict[str, Path] = field(default_factory=dict)
    paired: list[dict] = field(default_factory=list)  # paired_comparison on acerto
    exposure: dict[str, Exposure] = field(default_factory=dict)  # fine-tuned system -> seen-in-training flags
    breakdown: list[dict] = field(default_factory=list)  # exposure_breakdown (the wording)
    fact_breakdown: list[dict] = field(default_factory=list)  # exposure.fact_breakdown (the fact)
    diagnoses: dict[tuple[str, str], RagDiagnosis] = field(default_factory=dict)  # RAG answers: diagnosis.diagnose
    diagnosis: list[dict] = field(default_factory=list)  # diagnosis.diagnosis_rows

    @property
    def has_acerto(self) -> bool:
        return any(q.accepted is not None for q in self.questions)


# ---------------------------------------------------------------------------------------------------------------
# 4. Scores and outputs
# ---------------------------------------------------------------------------------------------------------------


def metric_stats(values: Sequence[float], kind: str, seed: int = 42, n_resamples: int = 1000) -> dict:
    """mean, low, high, n (and k for proportions): a Wilson interval for a proportion, a bootstrap one for a
    mean. No values -> NaNs (the metric is not available)."""
    if kind == "proportion":
        return proportion_stats(values)
    mean, low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return {"mean": mean, "low": low, "high": high, "n": len(values)}


def summarize(
    system_names: Sequence[str],
    questions: Sequence[Question],
    answers: dict,
    scores: dict,
    seed: int = 42,
    n_resamples: int = 1000,
) -> list[dict]:
    """One row per system: every metric with its 95% interval (Wilson for acerto, EM, em português; bootstrap
    for F1, ROUGE-L), mean answer length, candidate lists, mean latency, tokens/s."""
    rows = []
    for system in system_names:
        keys = [(system, q.id) for q in questions if (system, q.id) in answers]
        row: dict[str, Any] = {
            "system": system,
            "model": answers[keys[0]].get("model", "") if keys else "",
            "n_answers": len(keys),
        }
        for name, (_, kind) in METRICS.items():
            values = [scores[k][name] for k in keys if scores[k].get(name) is not None]
            st = metric_stats(values, kind, seed=seed, n_resamples=n_resamples)
            row[name], row[f"{name}_low"], row[f"{name}_high"], row[f"{name}_n"] = (
                st["mean"],
                st["low"],
                st["high"],
                st["n"],
            )
        words = [scores[k]["palavras"] for k in keys]
        row["palavras_mean"] = sum(words) / len(words) if words else math.nan
        row["listas"] = sum(bool(scores[k]["lista"]) for k in keys)
        latencies = [answers[k]["latency_s"] for k in keys if answers[k].get("latency_s") is not None]
        tokens = [answers[k].get("tokens") or 0 for k in keys if answers[k].get("latency_s") is not None]
        rates = [answers[k]["tokens_per_s"] for k in keys if answers[k].get("tokens_per_s") is not None]
        row["latency_s"] = sum(latencies) / len(latencies) if latencies else math.nan
        row["tokens_mean"] = sum(tokens) / len(tokens) if tokens else math.nan
        row["tokens_per_s"] = sum(rates) / len(rates) if rates else math.nan
        rows.append(row)
    return rows


def paired_comparison(
    system_names: Sequence[str],
    questions: Sequence[Question],
    scores: dict,
    metric: str = "acerto",
    seed: int = 42,
    n_resamples: int = 2000,
) -> list[dict]:
    """Every pair of systems on the questions both answered: the difference in ``metric`` (A - B) with a paired
    bootstrap 95% interval, the discordant counts and the exact McNemar p-value."""
    rows = []
    ids = [q.id for q in questions]
    for i, a in enumerate(system_names):
        for b in system_names[i + 1 :]:
            # paired by question id: a system that lacks an answer (or a score) only drops that question
            score_a = {
                qid: scores[(a, qid)][metric]
                for qid in ids
                if (a, qid) in scores and scores[(a, qid)].get(metric) is not None
            }
            score_b = {
                qid: scores[(b, qid)][metric]
                for qid in ids
                if (b, qid) in scores and scores[(b, qid)].get(metric) is not None
            }
            common = [qid for qid in ids if qid in score_a and qid in score_b]
            if not common:
                continue
            x, y = [score_a[qid] for qid in common], [score_b[qid] for qid in common]
            diff, low, high = paired_bootstrap_diff(x, y, n_resamples=n_resamples, seed=seed)
            only_a = sum(1 for p, q in zip(x, y, strict=True) if p > q)
            only_b = sum(1 for p, q in zip(x, y, strict=True) if q > p)
            rows.append(
                {
                    "a": a,
                    "b": b,
                    "n": len(common),
                    "a_rate": sum(x) / len(x),
                    "b_rate": sum(y) / len(y),
                    "diff": diff,
                    "low": low,
                    "high": high,
                    "only_a": only_a,
                    "only_b": only_b,
                    "p_mcnemar": mcnemar_exact(only_a, only_b),
                }
            )
    return rows


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}"


def _quote(text: str) -> str:
    text = (text or "").strip() or "(resposta vazia)"
    # a leading "#" would turn a quoted line into a heading ("### Answer:" in the study's answers)
    return "\n".join("> " + re.sub(r"^(\s*)#", r"\1\\#", line) if line.strip() else ">" for line in text.splitlines())


def shown_metrics(summary: Sequence[dict]) -> list[str]:
    """The metric columns of the table and the plot: all, but ``juiz`` only when a judge gave verdicts."""
    return [n for n in METRICS if n != "juiz" or any(row.get("juiz_n") for row in summary)]


def _interval(row: dict, name: str) -> str:
    if not row.get(f"{name}_n"):
        return "n/d"
    return f"{_fmt(row[name])} [{_fmt(row[f'{name}_low'])}, {_fmt(row[f'{name}_high'])}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _p_value(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def acerto_note(sc: dict) -> str:
    """acerto of one answer with the check that decided: "**acerto** (fato)", "erro (negacao: nega 'Brasília')"."""
    word = "**acerto**" if sc["acerto"] else "erro"
    check = sc.get("acerto_regra")
    if not check:
        return word
    detail = sc.get("acerto_detalhe")
    return f"{word} ({check}: {detail})" if detail and not sc["acerto"] else f"{word} ({check})"


def check_counts(result: RunResult) -> list[str]:
    """Per system, how many answers each named check decided (the table under the metrics)."""
    counts: dict[str, Counter] = {}
    for (system, _), sc in result.scores.items():
        if sc.get("acerto_regra"):
            counts.setdefault(system, Counter())[sc["acerto_regra"]] += 1
    if not counts:
        return []
    checks = [c for c in CHECKS if any(c in n for n in counts.values())]
    out = [
        "## A regra que decidiu o acerto",
        "",
        "Quantas respostas de cada sistema cada regra decidiu (`fato` = acerto; as outras, erro). As regras: "
        'docs/compare.md, seção "As métricas".',
        "",
        "| sistema | " + " | ".join(checks) + " |",
        "|---|" + "---:|" * len(checks),
    ]
    for system in result.systems:
        if system in counts:
            out.append(f"| {system} | " + " | ".join(str(counts[system][c]) for c in checks) + " |")
    return out + [""]


def render_table(result: RunResult, generation: dict | None = None) -> str:
    """tabela.md: the study's "Perguntas e Respostas" layout (question, reference, each system's answer, its
    scores, sources and whether training saw the question), then the metrics, the paired comparison and the
    seen-in-training tables."""
    out = ["# Perguntas e Respostas", ""]
    if generation:
        out += [
            f"Decodificação: max_new_tokens={generation['max_new_tokens']}, temperature={generation['temperature']}"
            f" ({'gulosa' if generation['temperature'] == 0 else 'amostragem'}), top_p={generation['top_p']}.",
            "",
        ]
        if generation["temperature"] and any(q.accepted is not None for q in result.questions):
            # measured on hand labels (docs/compare.md, "Rótulos à mão"): on sampled answers of a small model acerto
            # credits facts named in a wrong role far more often than on greedy ones
            out += [
                "**Respostas amostradas:** nelas o acerto é menos preciso (um fato citado num papel errado conta como "
                'certo: veja docs/compare.md, "Rótulos à mão"); leia as respostas ou use o juiz.',
                "",
            ]
    index = {q.id: n for n, q in enumerate(result.questions)}
    for n, q in enumerate(result.questions, 1):
        out += [f"## {n}. {q.pergunta}", ""]
        if q.resposta_referencia:
            ref = f"**Referência:** {q.resposta_referencia}"
            if q.artigo:
                ref += f" _(artigo: {q.artigo})_"
            out += [ref, ""]
        if q.accepted is not None:
            out += [f"**Aceitas:** {q.accepted}", ""]
        for system in result.systems:
            rec = result.answers.get((system, q.id))
            if rec is None:
                continue
            sc = result.scores[(system, q.id)]
            out += [f"**{system}** ({rec.get('model', '')}):", "", _quote(rec.get("answer", "")), ""]
            notes = []
            if sc.get("acerto") is not None:
                notes.append(acerto_note(sc))
            if sc.get("lista"):
                notes.append("lista de candidatos")
            if sc.get("token_f1") is not None:
                notes.append(f"F1 {sc['token_f1']:.2f} · ROUGE-L {sc['rouge_l']:.2f}")
            notes.append("em português" if sc["portugues"] else "**não está em português**")
            if "juiz" in sc:
                notes.append({1.0: "juiz: correta", 0.0: "juiz: incorreta"}.get(sc["juiz"], "juiz: sem veredito"))
            if system in result.exposure:
                exp = result.exposure[system]
                notes.append(EXPOSURE_LABELS[exp.flags[index[q.id]]])
                if exp.facts:
                    notes.append(FACT_LABELS[exp.facts[index[q.id]]])
            if (system, q.id) in result.diagnoses:
                notes.append(result.diagnoses[(system, q.id)].note())
            if rec.get("latency_s") is not None:
                notes.append(f"{rec['latency_s']:.1f} s, {rec.get('tokens', 0)} tokens")
            out += ["_" + " · ".join(notes) + "_", ""]
            if rec.get("sources"):
                out += ["Fontes: " + "; ".join(rec["sources"]), ""]

    out += [
        "# Métricas",
        "",
        "**acerto**: a resposta afirma o fato-chave (coluna `respostas_aceitas`), como palavras inteiras, após "
        "normalização (minúsculas, sem acentos, pontuação e artigos; datas e números por extenso numa só "
        "grafia), sem o negar, hesitar, listar candidatos, afirmar um candidato errado conhecido (coluna "
        "`respostas_erradas`) ou tê-lo só no eco da pergunta ou do prompt; ao lado de cada resposta, entre "
        "parênteses, a regra que decidiu (tabela abaixo). EM, F1 e ROUGE-L comparam com a resposta de "
        "referência. Intervalos de 95%: **Wilson** para as proporções (acerto, EM, em português), "
        '**bootstrap** (1000 reamostragens) para as médias (F1, ROUGE-L). "listas": respostas que enumeram '
        "vários candidatos — o acerto delas pode ser sorte."
        + (
            " **juiz**: o veredito (correta/incorreta) do modelo juiz da seção `judge:` da configuração."
            if "juiz" in shown_metrics(result.summary)
            else ""
        ),
        "",
    ]
    if not result.has_acerto:
        out += ["_acerto: não disponível (n/d) — o arquivo de perguntas não tem a coluna `respostas_aceitas`._", ""]
    shown = shown_metrics(result.summary)
    labels = [METRICS[name][0] for name in shown]
    out += [
        "| sistema | modelo | respostas | " + " | ".join(labels) + " | palavras | listas | latência média (s) "
        "| tokens/s |",
        "|---|---|---:|" + "---|" * len(labels) + "---:|---:|---:|---:|",
    ]
    for row in result.summary:
        cells = [row["system"], row["model"], str(row["n_answers"])]
        cells += [_interval(row, name) for name in shown]
        cells += [
            _fmt(row["palavras_mean"], 1),
            str(row["listas"]),
            _fmt(row["latency_s"]),
            _fmt(row["tokens_per_s"], 1),
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if any(s.startswith("study-") for s in result.systems):
        out += [
            "",
            "As linhas `study-*` são as respostas publicadas pelo estudo original (Llama-2-13B), "
            "pontuadas aqui contra as mesmas referências (só as perguntas que o estudo fez).",
        ]
    if result.has_acerto:
        out += [""] + check_counts(result)

    if result.paired:
        out += [
            "",
            "## Comparação pareada (acerto)",
            "",
            "Para cada par de sistemas, nas mesmas perguntas: diferença de acerto (A − B) com intervalo de 95% "
            "por bootstrap pareado (2000 reamostragens das perguntas), quantas só A acertou e só B acertou, e o "
            "p-valor exato de McNemar (binomial nos pares discordantes). Um intervalo que contém 0, ou p ≥ 0,05, "
            "não separa os dois sistemas.",
            "",
            "| A | B | perguntas | acerto A | acerto B | A − B [IC 95%] | só A | só B | p (McNemar) |",
            "|---|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for r in result.paired:
            cells = [
                r["a"],
                r["b"],
                str(r["n"]),
                _fmt(r["a_rate"]),
                _fmt(r["b_rate"]),
                f"{r['diff']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}]",
                str(r["only_a"]),
                str(r["only_b"]),
                _p_value(r["p_mcnemar"]),
            ]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")

    if result.exposure:
        out += exposure_tables(result)
    if result.diagnosis:
        out += diagnosis_table(result)
    return "\n".join(out) + "\n"


def _group_cell(g: dict) -> str:
    """ "n: acerto x [low, high]" for a group of questions (just n when none has an acerto)."""
    if not g["n"]:
        return str(g["questions"])
    return f"{g['questions']}: acerto {_fmt(g['mean'])} [{_fmt(g['low'])}, {_fmt(g['high'])}]"


def _train_status(exp: Exposure) -> str:
    return {
        "ok": f"`{exp.train_file}` (sha256 confere)",
        "changed": f"`{exp.train_file}` (**alterado desde o treino**)",
        "unknown": exp.note or "desconhecido",
    }[exp.status]


def exposure_tables(result: RunResult) -> list[str]:
    """The seen-in-training tables: acerto by the wording seen and by the fact seen, per fine-tuned system, and
    the questions whose wording the training held."""
    out = [
        "",
        "## Perguntas vistas no treino",
        "",
        "Para cada sistema ajustado, o arquivo de treino do adaptador (do seu `run_config.json`, conferido "
        "pelo sha256) comparado às perguntas: idêntica (normalizada), quase idêntica (Jaccard de palavras ≥ "
        f"{split_mod.DEFAULT_THRESHOLD}, a medida e o limiar do particiona.py: o maior dos dois Jaccards, sem e com "
        "as palavras funcionais, quando uma pergunta só acrescenta palavras à outra), outra pergunta do mesmo "
        "artigo, ou inédita. Sem `run_config.json`: desconhecido. Acerto (Wilson) em cada grupo.",
        "",
        "| sistema | treino | vista (idêntica/quase) | mesmo artigo | inédita | desconhecida |",
        "|---|---|---|---|---|---|",
    ]
    for r in result.breakdown:
        cells = [r["system"], _train_status(result.exposure[r["system"]])]
        cells += [_group_cell(r[g]) for g in ("vista", "artigo", "inedita", "desconhecida")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if result.fact_breakdown:
        out += [
            "",
            "## Acerto por fato visto / não visto no treino",
            "",
            "O fato visto no treino: alguma resposta (`output`) do arquivo de treino afirma o fato da pergunta numa "
            "forma aceita (`respostas_aceitas`, pelo menos `minimo_fatos` numa mesma resposta), lida como o acerto "
            "lê (mesma normalização, palavras inteiras), seja qual for a pergunta de treino; do mesmo artigo da "
            "pergunta ou de outro. n/d: sem arquivo de treino ou pergunta sem `respostas_aceitas`. Acerto (Wilson) "
            "em cada grupo: o modelo acerta mais o que viu no treino?",
            "",
            "| sistema | fato visto (mesmo artigo) | fato visto (outro artigo) | fato visto (total) | fato não visto "
            "| n/d |",
            "|---|---|---|---|---|---|",
        ]
        for r in result.fact_breakdown:
            groups = ("fato_mesmo_artigo", "fato_outro_artigo", "fato_visto", "fato_nao_visto", "fato_nd")
            cells = [r["system"], *(_group_cell(r[g]) for g in groups)]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    adapters = {exp.adapter: exp for exp in result.exposure.values()}
    for exp in adapters.values():
        seen = [
            (q, exp.closest[i])
            for i, (q, f) in enumerate(zip(result.questions, exp.flags, strict=True))
            if f in SEEN_FLAGS
        ]
        if seen:
            out += ["", f"Perguntas que o treino de `{exp.adapter}` continha (ou quase):", ""]
            out += [f'- {q.id}. {q.pergunta} ← treino: "{t}"' for q, t in seen]
    return out


def diagnosis_table(result: RunResult) -> list[str]:
    """ "Onde o RAG errou": per RAG system, the answers by where they stand, and acerto by article retrieved or
    not and by fact in the context or not."""
    out = [
        "",
        "## Onde o RAG errou",
        "",
        "Para cada resposta dos sistemas com RAG: a recuperação trouxe o artigo da pergunta (coluna `artigo`) "
        "para o contexto (as fontes da resposta)? O contexto dado ao modelo contém o fato numa forma aceita "
        "(lido como o acerto lê)? Uma resposta errada sem o fato no contexto é falha da **recuperação** (o artigo "
        "não veio, ou veio sem o trecho do fato); com o fato no contexto, falha da **geração**. Contexto n/d: "
        "resposta do cache gravada antes de o contexto ser guardado (gere de novo para diagnosticá-la). Acerto "
        "(Wilson) com e sem o artigo, com e sem o fato no contexto.",
        "",
        "| sistema | respostas | certas | erradas: artigo não recuperado | erradas: artigo recuperado, fato fora do "
        "contexto | erradas: fato no contexto (geração) | erradas: contexto n/d | acerto | com o artigo | sem o "
        "artigo | com o fato no contexto | sem o fato no contexto |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]

    def acerto(st: dict) -> str:
        if not st["n"]:
            return "n/d"
        return f"{st['k']}/{st['n']}: {_fmt(st['mean'])} [{_fmt(st['low'])}, {_fmt(st['high'])}]"

    for r in result.diagnosis:
        cells = [r["system"], str(r["n"]), *(str(r[stage]) for stage in STAGES)]
        cells += [acerto(r[g]) for g in ("acerto", "com_artigo", "sem_artigo", "com_fato", "sem_fato")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out


def exposure_csv_rows(result: RunResult) -> list[dict]:
    """exposicao.csv: one row per (fine-tuned system, level, group) with acerto and its Wilson interval."""
    rows = []
    for level, table in (("pergunta", result.breakdown), ("fato", result.fact_breakdown)):
        for r in table:
            for group, g in r.items():
                if isinstance(g, dict):
                    rows.append({"system": r["system"], "status": r["status"], "nivel": level, "grupo": group, **g})
    return rows


EXPOSURE_COLUMNS = ["system", "status", "nivel", "grupo", "questions", "n", "k", "mean", "low", "high"]


def write_analysis_csvs(result: RunResult, out_dir: Path) -> dict[str, Path]:
    """exposicao.csv (the fine-tuned systems' acerto by wording and fact seen) and diagnostico_rag.csv (where the
    RAG systems' answers went wrong), each only when the run has such systems; name -> path of those written."""
    paths = {}
    if result.exposure:
        paths["exposicao.csv"] = out_dir / "exposicao.csv"
        write_metrics_csv(paths["exposicao.csv"], exposure_csv_rows(result), EXPOSURE_COLUMNS)
    if result.diagnosis:
        paths["diagnostico_rag.csv"] = out_dir / "diagnostico_rag.csv"
        write_metrics_csv(paths["diagnostico_rag.csv"], [flat_row(r) for r in result.diagnosis], DIAGNOSIS_COLUMNS)
    return paths


def analysis_manifest(result: RunResult) -> dict:
    """The manifest.json keys of the seen-in-training and RAG-diagnosis analyses."""
    return {
        "seen_in_training": {system: exp.as_dict() for system, exp in result.exposure.items()},
        # acerto by the wording seen and by the fact seen (exposure.exposure_breakdown, exposure.fact_breakdown)
        "seen_in_training_acerto": {"pergunta": result.breakdown, "fato": result.fact_breakdown},
        # where each RAG system's answers went wrong (diagnosis.diagnosis_rows), and each answer's diagnosis
        "rag_diagnosis": {
            "systems": result.diagnosis,
            "answers": [
                {"system": system, "question_id": qid, **d.as_dict()} for (system, qid), d in result.diagnoses.items()
            ],
        },
    }


CSV_COLUMNS = (
    ["system", "model", "n_answers"]
    + [c for name in METRICS for c in (name, f"{name}_low", f"{name}_high", f"{name}_n")]
    + ["palavras_mean", "listas", "latency_s", "tokens_mean", "tokens_per_s"]
)
PAIRED_COLUMNS = ["a", "b", "n", "a_rate", "b_rate", "diff", "low", "high", "only_a", "only_b", "p_mcnemar"]


def write_metrics_csv(path: Path, summary: Sequence[dict], columns: Sequence[str] = CSV_COLUMNS) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for row in summary:
            w.writerow(
                {
                    k: (
                        round(v, 4)
                        if isinstance(v, float) and not math.isnan(v)
                        else ("" if isinstance(v, float) else v)
                    )
                    for k, v in row.items()
                }
            )


def write_metrics_png(path: Path, summary: Sequence[dict]) -> None:
    """Grouped bars: one group per metric, one bar per system, 95% CI as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = shown_metrics(summary)
    fig, ax = plt.subplots(figsize=(max(7.5, 1.8 * len(names) + 0.4 * len(summary) + 1.8), 4.2))
    width = 0.8 / max(1, len(summary))
    for i, row in enumerate(summary):
        xs = [j + (i - (len(summary) - 1) / 2) * width for j in range(len(names))]
        means = [0.0 if math.isnan(row[n]) else row[n] for n in names]
        lo = [0.0 if math.isnan(row[n]) else row[n] - row[f"{n}_low"] for n in names]
        hi = [0.0 if math.isnan(row[n]) else row[f"{n}_high"] - row[n] for n in names]
        ax.bar(xs, means, width, yerr=[lo, hi], capsize=3, label=row["system"])
    ax.set_xticks(range(len(names)), [METRICS[n][0] for n in names])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("média (IC 95%)")
    ax.set_title("Comparação dos sistemas")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
