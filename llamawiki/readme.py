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
        "Variação entre sementes do treino (um adaptador por semente; acerto médio, mínimo e máximo):",
        "",
        "| sistema | sementes | acerto médio | mínimo | máximo |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['system']} | {r.get('seeds', '')} | {fixed(num(r, 'mean'))} | {fixed(num(r, 'min'))} | "
            f"{fixed(num(r, 'max'))} |"
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
