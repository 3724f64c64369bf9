"""The README's generated sections: every number README.md shows, written from the committed reference run.

``python -m llamawiki.reference readme`` (:func:`update_readme`) rewrites each section between
``<!-- gerado: NAME -->`` and ``<!-- fim: NAME -->`` with ``SECTIONS[NAME](runs)``, the runs read from
``results/referencia/``; ``--check`` writes nothing and exits 1 when README.md is not what it would write (a test
runs it: the README cannot drift from the reference). A reference that lacks a run, or a run that lacks a file a
section reads (an older reference), renders a line saying so, never a number in its place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .fileio import UserError, atomic_open, read_csv, read_text
from .runs import (
    PAIRS_SHOWN,
    REFERENCE_DIR,
    Pair,
    Run,
    acerto_cell,
    acerto_count,
    fixed,
    load_run,
    num,
    p_text,
    pair,
    plural,
    pt,
    read_rows,
    run_date,
    signed,
)

README = Path("README.md")
RUNS = ("demo", "avaliacao")  # the runs the README shows, in its order
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
EXPOSURE_CSV = "exposicao.csv"  # compare.py: acerto of the adapter systems by wording and fact seen in training
DIAGNOSIS_CSV = "diagnostico_rag.csv"  # compare.py: where the RAG systems' answers went wrong
ADAPTER_SYSTEMS = ("finetuned", "rag+finetuned")
RAG_SYSTEMS = ("rag", "rag+finetuned")
SMALL_N = 10  # a group with fewer scored questions gets the caveat that its interval is wide


def _latency(row: dict | None) -> str:
    x = num(row, "latency_s")
    return "–" if not x else pt(f"{x:.1f}") + " s"


def _label(system: str) -> str:
    return STUDY_LABELS.get(system, system)


# ---------------------------------------------------------------------------------------------------------------
# the README sections


def _absent(name: str) -> str:
    make = {"demo": "make demo", "avaliacao": "make avaliacao"}.get(name, f"compare.py --run-dir results/{name}")
    return (
        f"*A referência ainda não tem a execução `{name}` (`results/referencia/{name}/`): rode `{make}` e depois "
        "`make referencia`. Nenhum número é mostrado no lugar dela.*\n"
    )


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
        where = f"{m.get('cpu') or 'CPU ?'}, {plural(cores or 0, 'núcleo', 'núcleos')}" if m else "máquina ?"
        lines.append(
            f"- `{name}`: {len(run.answers)} respostas a {run.n_questions} perguntas, commit `{commit}`, "
            f"{run_date(o)}, {where} (`results/referencia/{name}/origem.json`)."
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
    where = f" ({m.get('cpu')}, {plural(cores or 0, 'núcleo', 'núcleos')}, sem GPU)" if m else ""
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
            f"| {first} − {second} | {signed(pr.diff)} [{signed(pr.low)}, {signed(pr.high)}] | {pr.only_first} | "
            f"{pr.only_second} | {p_text(pr.p)} |"
        )
    return "\n".join(rows) + "\n" if shown else "*(sem comparação pareada nesta execução)*\n"


def section_tabela_demo(runs: dict[str, Run | None]) -> str:
    run = runs.get("demo")
    if run is None:
        return _absent("demo")
    table = _system_table(
        run,
        [
            ("acerto [IC 95%]", acerto_cell, False),
            ("F1", lambda r: fixed(num(r, "token_f1")), False),
            ("ROUGE-L", lambda r: fixed(num(r, "rouge_l")), False),
            ("em português", lambda r: fixed(num(r, "portugues")), False),
            ("palavras", lambda r: fixed(num(r, "palavras_mean"), 1), True),
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
    count = acerto_count(run.metric(system))
    return f"{count[0]} de {count[1]}" if count else "?"


def _separates(pr: Pair | None) -> str:
    if pr is None or pr.p is None:
        return "sem comparação pareada"
    verb = "se separa" if pr.p < 0.05 else "não se separa"
    return f"{verb}: {pt(signed(pr.diff))} [{pt(signed(pr.low))}, {pt(signed(pr.high))}], {p_text(pr.p, True)}"


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
    counts = {s: acerto_count(run.metric(s)) for s in known}
    best = max(known, key=lambda s: counts[s][0] if counts[s] else -1)
    lines.append(f"- O maior acerto é o de {SYSTEM_PHRASES[best]}.")
    f1 = {s: num(run.metric(s), "token_f1") for s in known}
    if f1.get("rag") is not None and f1.get("base") is not None and f1["rag"] < f1["base"]:
        lines.append(
            f"- O F1 ordena de outro jeito: põe o RAG sozinho abaixo do base ({pt(fixed(f1['rag']))} contra "
            f"{pt(fixed(f1['base']))}), porque premia quem repete as palavras da pergunta mesmo com o fato errado."
        )
    em = [num(run.metric(s), "exact_match") for s in known]
    if all(x == 0 for x in em if x is not None):
        lines.append("- EM é 0 em todos: as referências são frases completas.")
    if fact := _fact_reading(run):
        lines.append(f"- {fact}")
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
    near = plural(c.get("near", 0), "é quase idêntica", "são quase idênticas")
    return (
        f"Das {total} perguntas, {plural(c.get('identical', 0), 'está', 'estão')} no treino de "
        f"`{entry.get('adapter')}` (idêntica depois de normalizada), {near} "
        f"(Jaccard de palavras ≥ 0,8), {plural(c.get('article', 0), 'tem', 'têm')} outra pergunta do "
        f"mesmo artigo no treino e {plural(c.get('unseen', 0), 'é inédita', 'são inéditas')}. "
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
            ("acerto [IC 95%]", acerto_cell, False),
            ("F1", lambda r: fixed(num(r, "token_f1")), False),
            ("em português", lambda r: fixed(num(r, "portugues")), False),
            ("listas", lambda r: str(int(num(r, "listas") or 0)), True),
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
        "Variação entre sementes do treino (um adaptador por semente, o da referência incluído; acerto médio, mínimo e "
        "máximo):",
        "",
        "| sistema | sementes | acerto médio | mínimo | máximo |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['system']} | {r.get('seeds', '')} | {fixed(num(r, 'mean'))} | {fixed(num(r, 'min'))} | "
            f"{fixed(num(r, 'max'))} |"
        )
    reading = _seeds_reading(run, rows)
    return "\n".join(out) + "\n" + (f"\n{reading}\n" if reading else "")


# the comparison each fine-tuned system's seed range is read against: the same system without the adapter
SEED_COMPARISONS = {"finetuned": "base", "rag+finetuned": "rag"}


def _seeds_reading(run: Run, rows: Sequence[dict]) -> str:
    """Is the adapter's effect larger than what the training seed alone moves? For each fine-tuned system: its
    range across the seeds, against the reference's paired difference with the same system without adapter."""
    sentences = []
    for r in rows:
        system, low, high = r.get("system", ""), num(r, "min"), num(r, "max")
        other = SEED_COMPARISONS.get(system)
        if low is None or high is None or other is None or system not in SYSTEM_PHRASES:
            continue
        width = high - low
        text = (
            f"{SYSTEM_PHRASES[system]}, acerto de {pt(fixed(low))} a {pt(fixed(high))} entre as "
            f"{r.get('seeds', '?')} sementes (faixa de {pt(fixed(width))})"
        )
        pr = pair(run, system, other)
        if pr is not None:
            verdict = (
                "é maior que a faixa: não é só ruído de semente"
                if round(abs(pr.diff), 2) > round(width, 2)  # as the sentence shows them: 0,02 is not above 0,02
                else "está dentro da faixa: pode ser ruído de semente"
            )
            text += f", e a diferença para {SYSTEM_PHRASES[other]} na referência, {pt(signed(pr.diff))}, {verdict}"
        sentences.append(text)
    if not sentences:
        return ""
    return "**Leitura das sementes**: " + "; ".join(sentences) + "."


# ---------------------------------------------------------------------------------------------------------------
# the analyses compare.py writes beside the tables: acerto by fact seen in training (exposicao.csv) and where the
# RAG answers went wrong (diagnostico_rag.csv). An older reference lacks them: its sections say so.


@dataclass
class Share:
    """k right of n questions, with the Wilson 95% interval compare.py wrote."""

    k: int
    n: int
    low: float | None
    high: float | None

    @classmethod
    def of(cls, row: dict | None, prefix: str = "") -> Share:
        return cls(
            int(num(row, f"{prefix}k") or 0),
            int(num(row, f"{prefix}n") or 0),
            num(row, f"{prefix}low"),
            num(row, f"{prefix}high"),
        )

    def cell(self) -> str:
        """As a table cell: ``1/15 = 0.07 [0.01, 0.30]`` (``–`` without questions)."""
        if not self.n:
            return "–"
        return f"{self.k}/{self.n} = {self.k / self.n:.2f} [{fixed(self.low)}, {fixed(self.high)}]"

    def rate(self) -> str:
        """In a sentence, after its count: ``(0,07 [0,01, 0,30])``."""
        if not self.n:
            return "(sem perguntas)"
        return f"({pt(f'{self.k / self.n:.2f}')} [{pt(fixed(self.low))}, {pt(fixed(self.high))}])"


def _analysis_rows(run: Run, name: str, needed: Sequence[str]) -> list[dict] | None:
    """The rows of one of the run's analysis CSVs; None when the run has no such file (an older reference)."""
    path = run.path / name
    return read_rows(path, needed) if path.is_file() else None


def _not_available(run: Run, name: str) -> str:
    return (
        f"*Não disponível nesta referência: `results/referencia/{run.name}/` não tem `{name}` (salva antes de "
        "compare.py escrevê-lo; a próxima `make referencia` o traz).*\n"
    )


def _absent_short(name: str) -> str:
    return f"*A referência ainda não tem a execução `{name}` (ver acima).*\n"


def _fact_splits(run: Run) -> dict[str, dict] | None:
    """adapter system -> {"status", "visto", "nao_visto", "nd"} (Shares) from exposicao.csv; None without it."""
    rows = _analysis_rows(run, EXPOSURE_CSV, ("system", "status", "nivel", "grupo", "n", "k", "low", "high"))
    if rows is None:
        return None
    out: dict[str, dict] = {}
    for r in rows:
        if r["nivel"] != "fato":
            continue
        entry = out.setdefault(r["system"], {"status": r["status"]})
        key = {"fato_visto": "visto", "fato_nao_visto": "nao_visto", "fato_nd": "nd"}.get(r["grupo"])
        if key:
            entry[key] = Share.of(r)
    for entry in out.values():
        for key in ("visto", "nao_visto", "nd"):
            entry.setdefault(key, Share(0, 0, None, None))
    return out


def _fact_reading(run: Run) -> str:
    """The study's question, answered from the run: does the fine-tuned model get right the facts it trained on
    (a training answer states them), and more than the others? ("" when the run has no adapter system.)"""
    adapters = [s for s in ADAPTER_SYSTEMS if run.metric(s) is not None]
    if not adapters:
        return ""
    question = "O ajuste fino aprendeu os fatos do treino?"
    splits = _fact_splits(run)
    if splits is None:
        return f"{question} Não disponível nesta referência (sem `{EXPOSURE_CSV}`)."
    system = next((s for s in adapters if s in splits), None)
    if system is None:
        return f"{question} `{EXPOSURE_CSV}` não tem {' nem '.join(adapters)}."
    e = splits[system]
    seen, unseen = e["visto"], e["nao_visto"]
    who = SYSTEM_PHRASES[system][0].upper() + SYSTEM_PHRASES[system][1:]
    if e["status"] == "unknown" or not seen.n + unseen.n:
        return f"{question} Desconhecido: a execução não achou o arquivo de treino do adaptador de `{system}`."
    if not seen.n:
        return f"{question} Nenhuma das perguntas tem o fato numa resposta do treino: esta execução não responde."
    text = (
        f"{question} {who} acertou {seen.k} de {seen.n} perguntas cujo fato está numa resposta do treino {seen.rate()}"
    )
    text += f" e {unseen.k} de {unseen.n} das outras {unseen.rate()}." if unseen.n else " (todas têm o fato no treino)."
    if seen.high is not None and seen.high < 0.5:
        verdict = "a maioria dos fatos que viu no treino ele não reproduz (o IC 95% fica abaixo de 0,5)"
    elif seen.low is not None and seen.low > 0.5:
        verdict = "reproduz a maioria dos fatos que viu no treino (o IC 95% fica acima de 0,5)"
    else:
        verdict = "se reproduz a maioria dos fatos que viu no treino, o IC 95% não decide"
    if unseen.n and None not in (seen.low, seen.high, unseen.low, unseen.high):
        if seen.low > unseen.high:
            verdict += "; acerta mais quando o fato estava no treino (os ICs não se sobrepõem)"
        elif seen.high < unseen.low:
            verdict += "; acerta menos quando o fato estava no treino (os ICs não se sobrepõem)"
        else:
            verdict += "; a diferença para as de fato não visto fica dentro do acaso (os ICs se sobrepõem)"
    small_seen, small_unseen = 0 < seen.n < SMALL_N, 0 < unseen.n < SMALL_N
    if small_seen or small_unseen:
        few = plural(seen.n if small_seen else unseen.n, "pergunta tem", "perguntas têm") + " o fato "
        few += "no treino" + (f" e {unseen.n} fora dele" if small_unseen else "") if small_seen else "fora do treino"
        verdict += f" — só {few}: intervalo largo, indicação e não conclusão"
    status = " (o arquivo de treino mudou desde o treino do adaptador)" if e["status"] == "changed" else ""
    return f"{text} Lido assim: {verdict}{status}."


def _fact_section(runs: dict[str, Run | None], name: str, absent: Callable[[str], str]) -> str:
    run = runs.get(name)
    if run is None:
        return absent(name)
    adapters = [s for s in ADAPTER_SYSTEMS if run.metric(s) is not None]
    if not adapters:
        return "*(esta execução não tem sistema com adaptador)*\n"
    splits = _fact_splits(run)
    if splits is None:
        return _not_available(run, EXPOSURE_CSV)
    rows = [
        "| sistema | fato visto no treino | fato não visto no treino | fato n/d |",
        "|---|---|---|---:|",
    ]
    notes = []
    for system in adapters:
        e = splits.get(system)
        if e is None:
            rows.append(f"| {system} | – | – | – |")
            notes.append(f"`{system}`: ausente de `{EXPOSURE_CSV}`.")
            continue
        rows.append(f"| {system} | {e['visto'].cell()} | {e['nao_visto'].cell()} | {e['nd'].n} |")
        if e["status"] == "changed":
            notes.append(f"`{system}`: o arquivo de treino mudou desde o treino do adaptador (marcado com o atual).")
        elif e["status"] == "unknown":
            notes.append(f"`{system}`: o arquivo de treino do adaptador não foi achado (todas as perguntas n/d).")
    return "\n".join(rows) + "\n" + ("\n" + " ".join(notes) + "\n" if notes else "")


def section_fato_visto_demo(runs: dict[str, Run | None]) -> str:
    return _fact_section(runs, "demo", _absent)


def section_fato_visto_avaliacao(runs: dict[str, Run | None]) -> str:
    return _fact_section(runs, "avaliacao", _absent_short)


STAGE_COLUMNS = (  # diagnostico_rag.csv's stages (diagnosis.STAGES) -> the README's column
    ("certa", "certas"),
    ("artigo_ausente", "erro: recuperação"),
    ("trecho_ausente", "erro: trecho"),
    ("geracao", "erro: geração"),
    ("nd", "erro: contexto n/d"),
)
NOT_TOLD = ("artigo_ausente", "trecho_ausente", "geracao")  # what a run without stored contexts cannot tell


def _context_unknown(r: dict) -> bool:
    """No answer of this RAG system stored its context (answers cached before compare.py stored the chunks)."""
    return int(num(r, "contexto_nd") or 0) >= int(num(r, "n_answers") or num(r, "n") or 0)


def _rag_sentence(r: dict) -> str:
    system, n = r["system"], int(num(r, "n") or 0)
    count = {stage: int(num(r, stage) or 0) for stage, _ in STAGE_COLUMNS}
    errors = n - count["certa"]
    if not n:
        return f"`{system}`: nenhuma resposta pontuada."
    if not errors:
        return f"`{system}` acertou as {n} respostas: nenhum erro a separar."
    if _context_unknown(r):
        text = f"`{system}`: {plural(errors, 'erro', 'erros')} em {n} respostas"
        with_article, without = Share.of(r, "com_artigo_"), Share.of(r, "sem_artigo_")
        if with_article.n or without.n:
            text += (
                f"; em {with_article.n - with_article.k} o artigo da pergunta veio nas fontes, "
                f"em {without.n - without.k} não veio"
            )
        return text + "."
    parts = [
        f"{count['artigo_ausente']} de recuperação (o artigo não veio)",
        f"{count['trecho_ausente']} de trecho (o artigo veio, mas os trechos dados ao modelo não têm o fato)",
        f"{count['geracao']} de geração (o fato estava no contexto)",
    ]
    if count["nd"]:
        parts.append(f"{count['nd']} sem contexto guardado (n/d)")
    head = f"Dos {errors} erros" if errors > 1 else "Do único erro"
    return f"{head} do `{system}` (em {n} respostas): " + ", ".join(parts[:-1]) + " e " + parts[-1] + "."


def _rag_section(runs: dict[str, Run | None], name: str, absent: Callable[[str], str]) -> str:
    run = runs.get(name)
    if run is None:
        return absent(name)
    if not any(run.metric(s) is not None for s in RAG_SYSTEMS):
        return "*(esta execução não tem sistema com RAG)*\n"
    needed = ("system", "n_answers", "n", *(s for s, _ in STAGE_COLUMNS), "contexto_nd")
    rows = _analysis_rows(run, DIAGNOSIS_CSV, needed)
    if rows is None:
        return _not_available(run, DIAGNOSIS_CSV)
    rows = [r for r in rows if r["system"] in RAG_SYSTEMS] or rows
    table = [
        "| sistema | respostas | " + " | ".join(label for _, label in STAGE_COLUMNS) + " |",
        "|---|" + "---:|" * (1 + len(STAGE_COLUMNS)),
    ]
    for r in rows:
        unknown = _context_unknown(r)
        cells = ["n/d" if unknown and s in NOT_TOLD else str(int(num(r, s) or 0)) for s, _ in STAGE_COLUMNS]
        table.append(f"| {r['system']} | {int(num(r, 'n') or 0)} | " + " | ".join(cells) + " |")
    text = "\n".join(table) + "\n\n"
    if any(_context_unknown(r) for r in rows):
        which = " e ".join(f"`{r['system']}`" for r in rows if _context_unknown(r))
        text += (
            f"As respostas de {which} nesta referência não guardaram o contexto que o modelo viu (geradas antes de "
            "compare.py guardar os trechos): os erros não se separam em recuperação, trecho e geração (n/d); só se "
            "sabe se o artigo da pergunta veio nas fontes. "
        )
    return text + " ".join(_rag_sentence(r) for r in rows) + "\n"


def section_erros_rag_demo(runs: dict[str, Run | None]) -> str:
    return _rag_section(runs, "demo", _absent)


def section_erros_rag_avaliacao(runs: dict[str, Run | None]) -> str:
    return _rag_section(runs, "avaliacao", _absent_short)


def section_tempos(runs: dict[str, Run | None]) -> str:
    return _times(runs)


SECTIONS: dict[str, Callable[[dict[str, Run | None]], str]] = {
    "referencia": section_referencia,
    "etapas": section_etapas,
    "tabela-demo": section_tabela_demo,
    "leitura-demo": section_leitura_demo,
    "vistas-demo": section_vistas_demo,
    "fato-visto-demo": section_fato_visto_demo,
    "erros-rag-demo": section_erros_rag_demo,
    "tabela-avaliacao": section_tabela_avaliacao,
    "fato-visto-avaliacao": section_fato_visto_avaliacao,
    "erros-rag-avaliacao": section_erros_rag_avaliacao,
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
