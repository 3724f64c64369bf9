"""The comparison of the study: scoring, the question set, the systems, the answer cache and the tables.

compare.py is a thin CLI over :func:`run_comparison`; the metrics are in :mod:`llamawiki.metrics`. The pieces,
top to bottom:

1. Questions: ``data/perguntas.csv`` (or JSONL/JSON) and a parser for the study's ``resposta_*.txt`` files, so the
   study's own (published, unscored) answers can be scored as reference rows.
2. Systems (``base``, ``rag``, ``finetuned``, ``rag+finetuned``) from the YAML config; every prerequisite is
   checked before anything is generated, each distinct model is loaded once, lazily.
3. The answer cache ``results/<run>/respostas.jsonl``: one line per answer, appended and fsynced as soon as it
   exists, keyed by everything that determines the answer; an interrupted run resumes where it stopped.
4. Outputs: ``tabela.md``, ``metricas.csv``, ``metricas.png``, ``manifest.json``.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import prompt as prompt_mod
from .diagnosis import diagnosis_rows, rag_diagnoses
from .exposure import (  # noqa: F401  (re-exported: the seen-in-training names are still evaluation.X for callers)
    EXPOSURE_LABELS,
    SEEN_FLAGS,
    Exposure,
    exposure_breakdown,
    exposures_of,
    fact_breakdown,
    training_exposure,
)
from .fileio import (
    JsonlCache,
    UserError,
    atomic_open,
    git_commit,
    library_versions,
    looks_local,
    read_csv,
    read_jsonl,
    sha256_file,
)
from .lora_gguf import is_gguf_adapter
from .matching import AcceptedAnswers, reference_supports
from .metrics import score_answer, token_f1
from .models import LOOP_GUARD, model_label, resolve_spec
from .options import generation_value
from .report import (  # noqa: F401  (re-exported: the tables' names are still evaluation.X for callers and tests)
    CSV_COLUMNS,
    PAIRED_COLUMNS,
    Question,
    RunResult,
    analysis_manifest,
    metric_stats,
    paired_comparison,
    render_table,
    shown_metrics,
    summarize,
    write_analysis_csvs,
    write_metrics_csv,
    write_metrics_png,
)
from .text import normalize, read_legacy_text

# ---------------------------------------------------------------------------------------------------------------
# 1. Questions and the study's answer files
# ---------------------------------------------------------------------------------------------------------------

REQUIRED_COLUMNS = ("id", "pergunta", "resposta_referencia")


@dataclass
class StudyAnswer:
    pergunta: str
    resposta: str


def load_questions(path: str | os.PathLike[str]) -> list[Question]:
    """The fixed question set: CSV (UTF-8, header ``id,pergunta,resposta_referencia[,artigo,respostas_aceitas,
    minimo_fatos,respostas_erradas,tipo]``), JSONL/JSON with the same keys, or one of the study's
    ``resposta_*.txt`` files (its questions, no reference answers).

    ``respostas_aceitas``: ``|`` separates aliases of one fact, ``;`` facts that are all required (or at least
    ``minimo_fatos``); ``respostas_erradas``: known wrong candidates, ``|``-separated; ``tipo``: the question's
    kind (``aberta``: open-ended). Each fact must appear, in some form, in the row's own reference: an empty
    alias or a fact the reference does not support is one error line naming the row."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: questions file not found")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return [Question(f"{i:02d}", a.pergunta) for i, a in enumerate(parse_study_answers(path), 1)]
    if suffix == ".csv":
        columns, rows = read_csv(path, "questions file")
    elif suffix in (".jsonl", ".json"):
        rows = read_jsonl(path)
        columns = sorted(set().union(*(r.keys() for r in rows))) if rows else []
        missing_somewhere = {c for c in REQUIRED_COLUMNS if any(c not in r for r in rows)}
        if missing_somewhere and set(REQUIRED_COLUMNS) - missing_somewhere:
            line = next(i for i, r in enumerate(rows, 1) if any(c not in r for c in REQUIRED_COLUMNS))
            raise UserError(
                f"{path}: record {line} lacks key(s): "
                + ", ".join(c for c in REQUIRED_COLUMNS if c not in rows[line - 1])
            )
        columns = [c for c in columns if c not in missing_somewhere]
    else:
        raise UserError(f"{path}: unknown questions format (use .csv, .jsonl, .json or a study resposta_*.txt)")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s): {', '.join(missing)} (expected {', '.join(REQUIRED_COLUMNS)}[, artigo])"
        )
    questions, seen = [], set()
    for i, row in enumerate(rows, 1):
        qid = str(row["id"]).strip()
        pergunta = str(row["pergunta"] or "").strip()
        if not qid or not pergunta:
            raise UserError(f"{path}: row {i}: empty id or pergunta")
        if qid in seen:
            raise UserError(f"{path}: row {i}: duplicate id {qid!r}")
        seen.add(qid)
        reference = str(row.get("resposta_referencia") or "").strip()
        accepted = None
        if "respostas_aceitas" in columns:
            try:
                accepted = AcceptedAnswers.parse(str(row.get("respostas_aceitas") or ""), row.get("minimo_fatos"))
            except ValueError as e:
                raise UserError(f"{path}: row {i}: {e}") from None
            unsupported = reference_supports(accepted, reference) if reference else []
            if unsupported:
                raise UserError(
                    f"{path}: row {i}: respostas_aceitas: {unsupported[0]!r} appears in no form in resposta_referencia"
                )
        wrong = tuple(w.strip() for w in str(row.get("respostas_erradas") or "").split("|") if w.strip())
        tipo = str(row.get("tipo") or "").strip()
        questions.append(
            Question(qid, pergunta, reference, str(row.get("artigo") or "").strip(), accepted, wrong, tipo)
        )
    if not questions:
        raise UserError(f"{path}: no questions")
    unscored = [q.id for q in questions if not q.resposta_referencia]
    if unscored:
        print(
            f"warning: {path}: {len(unscored)} question(s) without resposta_referencia, answered but not scored: "
            + ", ".join(unscored[:10])
            + (" …" if len(unscored) > 10 else ""),
            file=sys.stderr,
        )
    return questions


def parse_study_answers(path: str | os.PathLike[str]) -> list[StudyAnswer]:
    """Parse a study answer file: blocks starting with a line ``Pergunta: ...``, then ``Resposta: ...``.

    The answer is everything after the first ``Resposta:`` up to the next ``Pergunta:`` line (answers span
    lines and keep whatever the model wrote, e.g. the fine-tuned model's ``### Answer:`` echo): they are scored
    as published.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: study answer file not found")
    blocks: list[list[str]] = []
    for line in read_legacy_text(path).split("\n"):
        if line.startswith("Pergunta:"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
    answers = []
    for block in blocks:
        pergunta = block[0][len("Pergunta:") :].strip()
        body = "\n".join(block[1:])
        m = re.search(r"^Resposta:", body, flags=re.M)
        resposta = body[m.end() :] if m else body
        answers.append(StudyAnswer(pergunta, resposta.strip()))
    if not answers:
        raise UserError(f"{path}: no 'Pergunta:' blocks found (not a study answer file?)")
    return answers


STUDY_FILES = {  # reference system -> the study's file
    "study-base": "resposta_llama_simples.txt",
    "study-rag": "resposta_rga.txt",
    "study-finetuned": "resposta_fine.txt",
}


def match_question(pergunta: str, candidates: Sequence[str], threshold: float = 0.75) -> int | None:
    """Index of the candidate asking the same question: identical after normalization, else the best token F1
    at or above ``threshold`` ("Qual a capital do Brasil?" ~ "Qual é a capital do Brasil?")."""
    target = normalize(pergunta, drop_articles=True)
    for i, c in enumerate(candidates):
        if normalize(c, drop_articles=True) == target:
            return i
    best, best_i = 0.0, None
    for i, c in enumerate(candidates):
        f1 = token_f1(pergunta, c)
        if f1 > best:
            best, best_i = f1, i
    return best_i if best >= threshold else None


# ---------------------------------------------------------------------------------------------------------------
# 2. Systems and their prerequisites
# ---------------------------------------------------------------------------------------------------------------

# The top-level keys a compare config may have (a typo'd one is refused, as finetune.py does).
COMPARE_KEYS = {
    "run_name",
    "seed",
    "questions",
    "models",
    "systems",
    "default_systems",
    "retrieval",
    "generation",
    "study_answers_dir",
    "stages",
    "run_dir",
    "study_answers",
    "judge",
}


def check_compare_config(cfg: dict, where: str = "config") -> None:
    """Unknown top-level keys -> one line naming them and the closest known key."""
    import difflib

    unknown = sorted(set(cfg) - COMPARE_KEYS)
    if unknown:
        hints = [
            f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, COMPARE_KEYS, 1)) else repr(k)
            for k in unknown
        ]
        raise UserError(f"{where}: unknown key(s) {', '.join(hints)}; known: {', '.join(sorted(COMPARE_KEYS))}")


DEFAULT_GENERATION = {"max_new_tokens": 96, "temperature": 0.0, "top_p": 1.0}
DEFAULT_RETRIEVAL = {"index_dir": "indexes/amostra", "retriever": "hybrid", "k": 4}
# Keys of a model spec that only compare.py reads (never passed to models.load_generator).
_META_KEYS = {"name"}


@dataclass
class System:
    name: str
    model: dict  # the spec for models.load_generator
    retrieval: dict | None = None  # {index_dir, retriever, k} for RAG systems
    generation: dict = field(default_factory=dict)  # this system's overrides of the config's `generation:`
    prompt: str = "alpaca"  # the prompt template (prompt.TEMPLATES): estudo for the study's own

    @property
    def model_key(self) -> str:
        return json.dumps(self.model, sort_keys=True)

    @property
    def model_label(self) -> str:
        return model_label(self.model)


def resolve_systems(cfg: dict, names: Sequence[str] | None = None) -> list[System]:
    """The systems of the config (``systems:``), in config order or in the order of ``names``.

    A system's ``model`` is a name from ``models:`` or an inline spec; ``rag: true`` (or a mapping overriding
    ``retrieval:``) makes it a RAG system.
    """
    systems_cfg = cfg.get("systems") or {}
    if not isinstance(systems_cfg, dict) or not systems_cfg:
        raise UserError("config: no `systems:` defined")
    models_cfg = cfg.get("models") or {}
    if names is None:
        names = cfg.get("default_systems") or list(systems_cfg)
    unknown = [n for n in names if n not in systems_cfg]
    if unknown:
        raise UserError(f"--systems: unknown system(s) {', '.join(unknown)} (config has {', '.join(systems_cfg)})")
    out = []
    for name in names:
        sc = systems_cfg[name] or {}
        model = sc.get("model")
        if isinstance(model, str):
            if model not in models_cfg:
                raise UserError(f"config: system {name!r} uses model {model!r}, not defined under `models:`")
            spec = dict(models_cfg[model])
            spec.setdefault("name", model)
        elif isinstance(model, dict):
            spec = dict(model)
        else:
            raise UserError(f"config: system {name!r} has no `model:`")
        if sc.get("adapter"):
            spec["adapter"] = sc["adapter"]
        spec = resolve_spec(spec)
        rag = sc.get("rag")
        retrieval = None
        if rag:
            retrieval = {**DEFAULT_RETRIEVAL, **(cfg.get("retrieval") or {}), **(rag if isinstance(rag, dict) else {})}
            retrieval["k"] = int(retrieval["k"])
        unknown_keys = set(sc) - {"model", "adapter", "rag", "generation", "prompt"}
        if unknown_keys:
            raise UserError(
                f"config: system {name!r}: unknown key(s) {sorted(unknown_keys)} "
                "(known: model, adapter, rag, generation, prompt)"
            )
        out.append(
            System(
                name,
                spec,
                retrieval,
                dict(sc.get("generation") or {}),
                prompt_mod.check_template(str(sc.get("prompt") or "alpaca")),
            )
        )
    return out


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub model, or None when it is not in the Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 (a malformed id is "not cached")
        return None
    return Path(found).parent if isinstance(found, str) else None


def _stage_hint(cfg: dict, path: str, default: str) -> str:
    stages = cfg.get("stages") or {}
    norm = str(path).rstrip("/")
    for key, hint in stages.items():
        if str(key).rstrip("/") == norm:
            return str(hint)
    return default


def check_prerequisites(cfg: dict, systems: Sequence[System]) -> None:
    """Every model, adapter and index the selected systems need, checked before anything is generated.

    Raises one UserError naming each missing input and the stage that makes it.
    """
    problems: list[str] = []

    def add(msg: str) -> None:
        if msg not in problems:
            problems.append(msg)

    for s in systems:
        spec = s.model
        model = str(spec["model"])
        if looks_local(model):
            target = Path(model).expanduser()
            if spec.get("gguf_file"):
                target = target / str(spec["gguf_file"])
            if not target.exists() or (target.is_dir() and not (target / "config.json").exists()):
                stage = _stage_hint(cfg, str(target), _stage_hint(cfg, model, "the step in models/README.md"))
                add(f"{target}: model not found — run {stage} first")
        elif os.environ.get("HF_HUB_OFFLINE") == "1" and _hf_cache_snapshot(model) is None:
            add(
                f"{model}: model not in the local Hugging Face cache (HF_HUB_OFFLINE=1) — "
                f"download it first (`hf download {model}`)"
            )
        if spec.get("adapter"):
            adapter = Path(str(spec["adapter"])).expanduser()
            if not is_gguf_adapter(adapter) and not (adapter / "adapter_config.json").exists():
                stage = _stage_hint(cfg, str(spec["adapter"]), "`finetune.py`")
                add(f"{adapter}: adapter not found — run {stage} first")
        if s.retrieval:
            index_dir = Path(str(s.retrieval["index_dir"])).expanduser()
            if not (index_dir / "manifest.json").exists():
                add(
                    f"{index_dir}: RAG index not found — run "
                    f"{_stage_hint(cfg, str(s.retrieval['index_dir']), '`rag.py index`')} first"
                )
    if problems:
        raise UserError("; ".join(problems))


# ---------------------------------------------------------------------------------------------------------------
# File identity (sha256, cached by path + size + mtime so 25 GB models are hashed once)
# ---------------------------------------------------------------------------------------------------------------

_WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.gguf", "*.json", "*.model", "*.txt", "*.jinja")


class HashCache:
    """sha256 of files, remembered in a small JSON file keyed by resolved path, size and mtime."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        self.dirty = False
        if self.path and self.path.exists():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.data = {}

    def sha256(self, file: Path) -> str:
        real = Path(os.path.realpath(file))
        st = real.stat()
        stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        entry = self.data.get(str(real))
        if entry and entry.get("size") == stamp["size"] and entry.get("mtime_ns") == stamp["mtime_ns"]:
            return entry["sha256"]
        digest = sha256_file(real)
        self.data[str(real)] = {**stamp, "sha256": digest}
        self.dirty = True
        return digest

    def save(self) -> None:
        if self.path and self.dirty:
            with atomic_open(self.path) as f:
                json.dump(self.data, f, indent=1, sort_keys=True)
            self.dirty = False


def _folder_files(folder: Path) -> list[Path]:
    files: set[Path] = set()
    for pattern in _WEIGHT_PATTERNS:
        files.update(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
    return sorted(files)


def model_files(spec: dict) -> list[Path]:
    """The files that make a model spec's weights (base + adapter); empty for an uncached hub id."""
    model = str(spec["model"])
    files: list[Path] = []
    base = Path(model).expanduser() if looks_local(model) else _hf_cache_snapshot(model)
    if base is not None and base.exists():
        if base.is_file():
            files.append(base)
        elif spec.get("gguf_file"):
            files.append(base / str(spec["gguf_file"]))
        else:
            files.extend(_folder_files(base))
    if spec.get("adapter"):
        adapter = Path(str(spec["adapter"])).expanduser()
        if adapter.is_dir():
            # adapter_model.gguf is derived from adapter_model.safetensors (lora_gguf.py): not part of the identity
            files.extend(
                p
                for p in _folder_files(adapter)
                if p.name.startswith(("adapter_", "tokenizer")) and p.suffix != ".gguf"
            )
        elif adapter.is_file():
            files.append(adapter)
    return files


def files_identity(files: Iterable[Path], hashes: HashCache) -> list[dict]:
    out = []
    for f in files:
        if f.exists():
            out.append({"path": str(f), "size": f.stat().st_size, "sha256": hashes.sha256(f)})
    return out


def index_identity(index_dir: str | os.PathLike[str]) -> str | None:
    manifest = Path(index_dir) / "manifest.json"
    return sha256_file(manifest) if manifest.exists() else None


# ---------------------------------------------------------------------------------------------------------------
# 3. The answer cache
# ---------------------------------------------------------------------------------------------------------------

PROMPT_FINGERPRINT = hashlib.sha256(
    json.dumps(
        [
            prompt_mod.build_prompt("{pergunta}"),
            prompt_mod.INSTRUCTION_RAG,
            prompt_mod.STOP_STRINGS,
        ]
    ).encode()
).hexdigest()[:16]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def answer_keys(
    system: System, question: str, generation: dict, model_identity: list[dict], index_sha: str | None
) -> tuple[str, str]:
    """(key, loose key). The key covers the system, the model (file hashes), the adapter, the question, the
    generation and retrieval settings and the prompt template; the loose key leaves out the file hashes (used
    only by ``--render-only`` when the model files are gone)."""
    base = {
        "system": system.name,
        "model": {k: v for k, v in system.model.items() if k not in _META_KEYS},
        "question": question.strip(),
        "generation": generation,
        "retrieval": system.retrieval,
        "prompt": PROMPT_FINGERPRINT,
    }
    if system.prompt != "alpaca":
        base["template"] = system.prompt
    loose = _digest(base)
    full = _digest(
        {**base, "model_files": [(f["path"], f["sha256"]) for f in model_identity], "index_manifest": index_sha}
    )
    return full, loose


# ---------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------


def _default_load_generator(spec: dict):
    from .models import load_generator

    return load_generator(spec)


def _default_load_retriever(index_dir: str, kind: str, k: int):
    from .retrieval import load_retriever

    return load_retriever(index_dir, kind=kind, k=k)


def _default_rag_answer(question: str, retriever: Any, generator: Any, k: int, **gen):
    from .retrieval import answer

    return answer(question, retriever, generator, k=k, **gen)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def generate_answer(
    system: System,
    question: Question,
    generator: Any,
    generation: dict,
    retriever: Any = None,
    rag_answer: Callable | None = None,
) -> dict:
    """Ask one system one question; the answer text (cut with prompt.split_response) and its measurements."""
    t0 = time.perf_counter()
    sources: list[str] = []
    contexts: list[str] | None = None
    if system.retrieval:
        extra = (
            {"max_context_chars": system.retrieval["max_context_chars"]}
            if system.retrieval.get("max_context_chars")
            else {}
        )
        if system.prompt != "alpaca":
            extra["template"] = system.prompt
        ra = (rag_answer or _default_rag_answer)(
            question.pergunta, retriever, generator, k=system.retrieval["k"], **extra, **generation
        )
        gen = ra.generation
        text = ra.text
        sources = [str(s) for s in (ra.sources or [])]
        if getattr(ra, "contexts", None) is not None:
            contexts = [str(c) for c in ra.contexts]
    else:
        gen = generator.generate(
            prompt_mod.build_prompt(question.pergunta, template=system.prompt),
            stop=prompt_mod.stop_strings(system.prompt),
            **generation,
        )
        text = gen.text
    return answer_record(gen, text, time.perf_counter() - t0, sources, system.prompt, contexts)


def answer_record(
    gen: Any,
    text: str,
    latency: float,
    sources: Sequence[str] = (),
    template: str = "alpaca",
    contexts: Sequence[str] | None = None,
) -> dict:
    """The measured fields of one answer in the cache (text cut with prompt.split_response); a RAG answer also
    keeps ``contexts``, the chunk texts the model saw (what diagnosis.py reads the fact in). None of them is part
    of the cache key."""
    n_tokens = int(getattr(gen, "n_tokens", 0) or 0)
    gen_seconds = float(getattr(gen, "seconds", 0.0) or 0.0) or latency
    extra = {"contexts": list(contexts)} if contexts is not None else {}
    return {
        "answer": prompt_mod.split_response(text, template),
        "latency_s": round(latency, 4),
        "tokens": n_tokens,
        "prompt_tokens": int(getattr(gen, "prompt_tokens", 0) or 0),
        "tokens_per_s": round(n_tokens / gen_seconds, 3) if gen_seconds > 0 else None,
        "sources": list(sources),
        **extra,
    }


def batch_size_of(generation: dict, spec: dict) -> int:
    """``generation.batch_size`` (compare configs); default 8 for transformers on CUDA, else 1. Only plain
    (non-RAG) questions are batched; llama.cpp answers one at a time."""
    if generation.get("batch_size") is not None:
        return max(1, int(generation["batch_size"]))
    if spec.get("backend") == "transformers":
        from .models import cuda_available

        return 8 if cuda_available() else 1
    return 1


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def _study_dir(cfg: dict, study_answers: str | bool | None) -> Path | None:
    if not study_answers:
        return None
    folder = Path(
        study_answers if isinstance(study_answers, str) else str(cfg.get("study_answers_dir") or "data/estudo")
    )
    missing = [name for name in STUDY_FILES.values() if not (folder / name).exists()]
    if missing:
        command = (
            "`python data/estudo/baixar.py` (make estudo-dados)"
            if folder.resolve() == Path("data/estudo").resolve()
            else f"`python data/estudo/baixar.py --dest {folder}`"
        )
        raise UserError(
            f"{folder}: study answer file(s) not found: {', '.join(missing)}; download them (the "
            f"study's repository at a pinned commit, checked by sha256) with {command}"
        )
    return folder


def _study_records(folder: Path, questions: Sequence[Question]) -> dict[str, dict[str, dict]]:
    """system -> question id -> record, for the study's published answers matched to our questions."""
    out: dict[str, dict[str, dict]] = {}
    for system, name in STUDY_FILES.items():
        parsed = parse_study_answers(folder / name)
        perguntas = [a.pergunta for a in parsed]
        recs = {}
        for q in questions:
            i = match_question(q.pergunta, perguntas)
            if i is not None:
                recs[q.id] = {
                    "system": system,
                    "model": "Llama-2-13b-chat (estudo original)",
                    "question_id": q.id,
                    "question": q.pergunta,
                    "answer": parsed[i].resposta,
                    "reference": q.resposta_referencia,
                    "latency_s": None,
                    "tokens": None,
                    "tokens_per_s": None,
                    "sources": [],
                    "source_file": name,
                }
        out[system] = recs
    return out


@dataclass
class CompareOptions:
    """What ``compare.py`` asks of ``run_comparison`` (every field optional; the config supplies the rest).

    ``model`` overrides keys of every selected system's model spec (``--model --backend --gguf-file --n-ctx``;
    ``adapter`` only for the systems that have one) and ``generation`` keys of the config's ``generation:``
    (``--max-new-tokens --temperature --top-p``), the same flag names as the chat and RAG scripts.

    ``load_generator``, ``load_retriever`` and ``rag_answer`` say how answers are produced: the package's loader,
    index and RAG chain by default; any callables with the same signatures (tests pass stubs, a caller may pass
    a server client).
    """

    systems: Sequence[str] | None = None
    questions_path: str | os.PathLike[str] | None = None
    run_dir: str | os.PathLike[str] | None = None
    limit: int | None = None
    render_only: bool = False
    study_answers: str | bool | None = None
    progress: bool = True
    config_path: str | None = None
    model: dict = field(default_factory=dict)
    generation: dict = field(default_factory=dict)
    load_generator: Callable[[dict], Any] = _default_load_generator
    load_retriever: Callable[[str, str, int], Any] = _default_load_retriever
    rag_answer: Callable[..., Any] = _default_rag_answer

    def run_args(self) -> dict:
        """The options a run was made with, as manifest.json records them."""
        return {
            "systems": list(self.systems) if self.systems else None,
            "limit": self.limit,
            "render_only": self.render_only,
            "model": self.model or None,
            "generation": self.generation or None,
        }


def generation_settings(cfg: dict, overrides: dict | None = None, where: str = "config: generation") -> dict:
    """max_new_tokens/temperature/top_p: defaults <- the config's ``generation:`` <- command-line overrides."""
    generation = {
        **DEFAULT_GENERATION,
        **(cfg.get("generation") or {}),
        **{k: v for k, v in (overrides or {}).items() if v is not None},
    }
    out = {k: generation_value(k, generation[k], where) for k in ("max_new_tokens", "temperature", "top_p")}
    # the study's extra sampling settings, only when a config sets them (so other runs keep their cache keys)
    for k in ("top_k", "repeat_penalty"):
        if generation.get(k) is not None:
            out[k] = generation_value(k, generation[k], where)
    # models.Generator's loop guard is on unless a config turns it off: recorded (and in the cache keys) either way
    out["loop_guard"] = generation_value("loop_guard", generation.get("loop_guard", LOOP_GUARD), where)
    return out


def system_generation(system: System, generation: dict) -> dict:
    """The run's generation settings with the system's own overrides (``systems: {x: {generation: …}}``)."""
    return generation_settings({"generation": {**generation, **system.generation}}) if system.generation else generation


def apply_model_overrides(systems: Sequence[System], overrides: dict) -> list[System]:
    """The systems with ``--model --backend --gguf-file --n-ctx --adapter`` applied to their model specs.

    A new model or backend makes the config's model name meaningless, so the label is then derived from the spec.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not overrides:
        return list(systems)
    out = []
    for s in systems:
        spec = dict(s.model)
        if "model" in overrides or "backend" in overrides:
            spec.pop("name", None)
            if "model" in overrides:  # the config's backend and GGUF name belonged to the config's model
                spec.pop("gguf_file", None)
                spec.pop("backend", None)
        spec.update({k: v for k, v in overrides.items() if k != "adapter"})
        if overrides.get("adapter") and spec.get("adapter"):
            spec["adapter"] = overrides["adapter"]
        out.append(dataclasses.replace(s, model=resolve_spec(spec)))  # keeps the system's generation/prompt
    return out


def run_comparison(cfg: dict, options: CompareOptions | None = None, **kwargs: Any) -> RunResult:
    """Ask every selected system every question (only the answers not in the cache), score, write the outputs.

    ``options`` (or the same fields as keyword arguments): see CompareOptions.
    """
    from tqdm.auto import tqdm

    opts = options or CompareOptions(**kwargs)
    where = str(opts.config_path or "config")
    check_compare_config(cfg, where)
    if opts.limit is not None and int(opts.limit) < 1:
        raise UserError(f"--limit {opts.limit}: must be >= 1 (a run with no question would replace the tables)")
    seed = int(cfg.get("seed", 42))
    generation = generation_settings(cfg, opts.generation, f"{where}: generation")
    if (cfg.get("generation") or {}).get("batch_size") is not None:
        generation_value("batch_size", cfg["generation"]["batch_size"], f"{where}: generation")
    run_dir = Path(opts.run_dir or cfg.get("run_dir") or f"results/{cfg.get('run_name', 'run')}")
    questions_path = Path(opts.questions_path or cfg.get("questions") or "data/perguntas.csv")
    questions = load_questions(questions_path)
    if opts.limit is not None:
        questions = questions[: int(opts.limit)]
    selected = apply_model_overrides(resolve_systems(cfg, opts.systems), opts.model)
    study_answers = opts.study_answers if opts.study_answers is not None else cfg.get("study_answers")
    study_folder = _study_dir(cfg, study_answers)

    if not opts.render_only:
        check_prerequisites(cfg, selected)
    out_dir = tables_dir(run_dir, [s.name for s in selected], questions, questions_path)

    hashes = HashCache(run_dir / ".sha256-cache.json")
    cache = JsonlCache(run_dir / "respostas.jsonl")

    # Keys of every (system, question): what is in the cache and what must be generated.
    identities: dict[str, list[dict]] = {}
    index_shas: dict[str, str | None] = {}
    answers: dict[tuple[str, str], dict] = {}
    todo: list[tuple[System, Question, str, str]] = []
    cached = 0
    for s in selected:
        if s.model_key not in identities:
            identities[s.model_key] = files_identity(model_files(s.model), hashes)
        index_sha = None
        if s.retrieval:
            idx = str(s.retrieval["index_dir"])
            if idx not in index_shas:
                index_shas[idx] = index_identity(idx)
            index_sha = index_shas[idx]
        for q in questions:
            key, loose = answer_keys(
                s, q.pergunta, system_generation(s, generation), identities[s.model_key], index_sha
            )
            rec = cache.get(key, loose if opts.render_only else None)
            if rec is not None:
                answers[(s.name, q.id)] = {**rec, "reference": q.resposta_referencia, "question_id": q.id}
                cached += 1
            else:
                todo.append((s, q, key, loose))

    generated = 0
    run_dir.mkdir(parents=True, exist_ok=True)
    if todo and not opts.render_only:
        before = len(cache.by_key)
        try:
            batch = {k: v for k, v in (cfg.get("generation") or {}).items() if k == "batch_size"}
            generated = _generate_missing(todo, _Generation(generation, seed, cache, answers, batch), opts, tqdm)
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: every finished answer is already on disk
            saved = len(cache.by_key) - before
            raise type(e)(
                f"{cache.path}: {saved} new answer(s) saved, {len(todo) - saved} left; "
                "run the same command again to resume"
            ) from None
        except UserError as e:  # a rerun of the same command would fail the same way: no "resume"
            saved = len(cache.by_key) - before
            if saved:
                raise UserError(
                    f"{e} ({saved} answer(s) generated before it are kept in {cache.path})", e.exit_code
                ) from None
            raise
    missing = len(todo) - generated

    system_names = [s.name for s in selected]
    if study_folder is not None:
        for system, recs in _study_records(study_folder, questions).items():
            system_names.append(system)
            for qid, rec in recs.items():
                answers[(system, qid)] = rec

    by_id = {q.id: q for q in questions}
    scores = {}
    for k, rec in answers.items():
        q = by_id.get(k[1], Question(k[1], ""))
        scores[k] = score_answer(
            rec.get("answer", ""),
            rec.get("reference", ""),
            q.accepted,
            wrong=q.wrong,
            question=q.pergunta,
            tipo=q.tipo,
            context=rec.get("contexts"),
        )
    for k, verdict in judge_answers(cfg, answers, questions, run_dir, opts, tqdm).items():
        scores[k]["juiz"] = verdict["verdict"]
    summary = summarize(system_names, questions, answers, scores, seed=seed)
    exposure = exposures_of(selected, questions)
    diagnoses = rag_diagnoses([s.name for s in selected if s.retrieval], questions, answers, scores)
    result = RunResult(
        run_dir,
        system_names,
        questions,
        answers,
        scores,
        summary,
        generated,
        cached,
        missing,
        paired=paired_comparison(system_names, questions, scores, seed=seed),
        exposure=exposure,
        breakdown=exposure_breakdown(exposure, questions, scores),
        fact_breakdown=fact_breakdown(exposure, questions, scores),
        diagnoses=diagnoses,
        diagnosis=diagnosis_rows([s.name for s in selected if s.retrieval], diagnoses),
    )

    models_manifest = []
    for s in selected:
        models_manifest.append(
            {
                "system": s.name,
                "model": s.model,
                "label": s.model_label,
                "files": identities[s.model_key],
                "retrieval": s.retrieval,
                "index_manifest_sha256": (index_shas.get(str(s.retrieval["index_dir"])) if s.retrieval else None),
            }
        )
    write_outputs(
        result,
        cfg=cfg,
        generation=generation,
        seed=seed,
        questions_path=questions_path,
        models_manifest=models_manifest,
        study_folder=study_folder,
        config_path=opts.config_path,
        run_args=opts.run_args(),
        out_dir=out_dir,
    )
    hashes.save()  # only a run that finished: a failed one leaves .sha256-cache.json as it was
    return result


@dataclass
class _Generation:
    """The state answers are generated into: settings, seed, the cache and the answers dict being filled."""

    settings: dict
    seed: int
    cache: JsonlCache
    answers: dict
    batch: dict = field(default_factory=dict)  # {"batch_size": n} from the config (not part of the cache key)


def _store(run: _Generation, item: tuple, out: dict) -> None:
    """Append one answer to the cache (flushed at once: an interruption loses at most the answer in progress)."""
    s, q, key, loose = item
    rec = {
        "key": key,
        "loose_key": loose,
        "system": s.name,
        "model": s.model_label,
        "model_spec": {k: v for k, v in s.model.items() if k not in _META_KEYS},
        "question_id": q.id,
        "question": q.pergunta,
        **out,
        "reference": q.resposta_referencia,
        "generation": system_generation(s, run.settings),
        "retrieval": s.retrieval,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    run.cache.append(rec)
    run.answers[(s.name, q.id)] = rec


def _generate_missing(todo, run: _Generation, opts: CompareOptions, tqdm) -> int:
    """Generate the missing answers, one model at a time (each distinct model is loaded once, then freed).
    Plain questions go in batches of ``batch_size_of`` when the generator batches; RAG ones one at a time."""
    by_model: dict[str, list] = {}
    for item in todo:
        by_model.setdefault(item[0].model_key, []).append(item)
    retrievers: dict[tuple, Any] = {}
    generated = 0
    bar = tqdm(total=len(todo), desc="respostas", unit="resp", disable=not opts.progress)
    try:
        for items in by_model.values():
            spec = items[0][0].model
            bar.set_postfix_str(f"carregando {model_label(spec)}")
            generator = opts.load_generator({k: v for k, v in spec.items() if k not in _META_KEYS})
            _seed_everything(run.seed)
            size = batch_size_of(run.batch, spec)
            if size > 1 and hasattr(generator, "generate_batch"):
                plain = [it for it in items if not it[0].retrieval]
                items = [it for it in items if it[0].retrieval]
                by_system: dict[str, list] = {}
                for it in plain:  # a batch holds one system (one prompt, one setting)
                    by_system.setdefault(it[0].name, []).append(it)
                for group in by_system.values():
                    system = group[0][0]
                    settings = system_generation(system, run.settings)
                    for start in range(0, len(group), size):
                        chunk = group[start : start + size]
                        bar.set_postfix_str(f"{system.name} · lote de {len(chunk)}")
                        t0 = time.perf_counter()
                        gens = generator.generate_batch(
                            [prompt_mod.build_prompt(it[1].pergunta, template=system.prompt) for it in chunk],
                            stop=prompt_mod.stop_strings(system.prompt),
                            **settings,
                        )
                        latency = time.perf_counter() - t0
                        for item, g in zip(chunk, gens, strict=True):
                            _store(run, item, answer_record(g, g.text, latency, (), system.prompt))
                            generated += 1
                            bar.update(1)
            for item in items:
                s, q = item[0], item[1]
                bar.set_postfix_str(f"{s.name} · {q.id}")
                retriever = None
                if s.retrieval:
                    rkey = (str(s.retrieval["index_dir"]), s.retrieval["retriever"], s.retrieval["k"])
                    if rkey not in retrievers:
                        retrievers[rkey] = opts.load_retriever(*rkey)
                    retriever = retrievers[rkey]
                _store(
                    run,
                    item,
                    generate_answer(s, q, generator, system_generation(s, run.settings), retriever, opts.rag_answer),
                )
                generated += 1
                bar.update(1)
            del generator
            gc.collect()
    finally:
        bar.close()
    return generated


# ---------------------------------------------------------------------------------------------------------------
# The optional judge model
# ---------------------------------------------------------------------------------------------------------------

JUDGE_DEFAULTS = {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0}


def judge_spec(cfg: dict) -> dict | None:
    """The judge's model spec from the config's ``judge:`` section (``model:`` a name from ``models:`` or an
    inline spec; ``enabled: false`` turns it off), or None."""
    judge = cfg.get("judge")
    if not judge or (isinstance(judge, dict) and judge.get("enabled") is False):
        return None
    if not isinstance(judge, dict) or not judge.get("model"):
        raise UserError("config: `judge:` needs a `model:` (a name from `models:` or a model spec)")
    model = judge["model"]
    if isinstance(model, str):
        if model not in (cfg.get("models") or {}):
            raise UserError(f"config: judge uses model {model!r}, not defined under `models:`")
        model = {**cfg["models"][model], "name": model}
    return resolve_spec(dict(model))


def judge_answers(
    cfg: dict, answers: dict, questions: Sequence[Question], run_dir: Path, opts: CompareOptions, tqdm
) -> dict[tuple[str, str], dict]:
    """(system, question id) -> cached verdict record ``{"verdict": 1.0 | 0.0 | None, "text": ...}``, for every
    answer with a reference. Verdicts are cached in ``juiz.jsonl`` by (judge model, prompt, question, reference,
    answer): changing any of them asks again, nothing else does."""
    spec = judge_spec(cfg)
    if spec is None:
        return {}
    judge_cfg = cfg["judge"]
    instruction = str(judge_cfg.get("instruction") or prompt_mod.INSTRUCTION_JUDGE)
    generation = {**JUDGE_DEFAULTS, **(judge_cfg.get("generation") or {})}
    cache = JsonlCache(run_dir / "juiz.jsonl")
    by_id = {q.id: q for q in questions}
    todo, out = [], {}
    model = {k: v for k, v in spec.items() if k not in _META_KEYS}
    for (system, qid), rec in answers.items():
        q = by_id.get(qid)
        if q is None or not q.resposta_referencia:
            continue
        judge_prompt = prompt_mod.build_judge_prompt(
            q.pergunta, q.resposta_referencia, rec.get("answer", ""), instruction
        )
        key = _digest({"judge": model, "prompt": judge_prompt, "generation": generation})
        hit = cache.get(key)
        if hit is not None:
            out[(system, qid)] = hit
        else:
            todo.append(((system, qid), key, judge_prompt))
    if todo and not opts.render_only:
        generator = opts.load_generator(model)
        for k, key, judge_prompt in tqdm(todo, desc="juiz", unit="resp", disable=not opts.progress):
            g = generator.generate(judge_prompt, **generation)
            rec = {
                "key": key,
                "system": k[0],
                "question_id": k[1],
                "judge": model_label(spec),
                "text": g.text,
                "verdict": prompt_mod.parse_verdict(g.text),
            }
            cache.append(rec)
            out[k] = rec
        del generator
        gc.collect()
    return out


# ---------------------------------------------------------------------------------------------------------------
# 4. Outputs (the tables themselves: llamawiki.report)
# ---------------------------------------------------------------------------------------------------------------

PARTIAL_DIR = "parcial"  # where a smaller run's tables go when the run dir holds a finished run's


def _finished_coverage(run_dir: Path) -> dict | None:
    """What the tables in ``run_dir`` cover, from its manifest.json: ``{"systems", "question_ids" (None for a
    manifest older than this field), "n", "sha256"}``; None when there are no tables (or no readable manifest)."""
    try:
        data = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
        questions = data["questions"]
        cov = data.get("coverage") or {}
        systems = cov.get("systems") or [m["system"] for m in data.get("models") or []]
        return {
            "systems": set(systems),
            "question_ids": set(cov["question_ids"]) if "question_ids" in cov else None,
            "n": int(questions["n"]),
            "sha256": questions.get("sha256"),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def tables_dir(run_dir: Path, systems: Sequence[str], questions: Sequence[Question], questions_path: Path) -> Path:
    """Where this run writes its tables: ``run_dir``, unless ``run_dir`` holds the tables of a finished run
    that covers more (a superset of this run's systems and questions, and more of one of them: ``--limit``,
    fewer ``--systems``). Then ``run_dir/parcial/``, said in one note line: the outputs of a smaller run never
    replace a finished one. The answers still go to (and come from) ``run_dir/respostas.jsonl``."""
    old = _finished_coverage(run_dir)
    if old is None:
        return run_dir
    new_systems, new_ids = set(systems), {q.id for q in questions}
    if old["question_ids"] is not None:
        same_questions, fewer_questions = new_ids == old["question_ids"], new_ids < old["question_ids"]
    else:  # a manifest from before the coverage field: the same questions file, fewer rows
        same_file = questions_path.is_file() and sha256_file(questions_path) == old["sha256"]
        same_questions = same_file and len(new_ids) == old["n"]
        fewer_questions = same_file and len(new_ids) < old["n"]
    smaller = (fewer_questions and new_systems <= old["systems"]) or (same_questions and new_systems < old["systems"])
    if not smaller:
        return run_dir
    out = run_dir / PARTIAL_DIR
    n_old = len(old["question_ids"]) if old["question_ids"] is not None else old["n"]
    print(
        f"note: {run_dir}: holds the tables of a larger run ({n_old} questions, systems "
        f"{', '.join(sorted(old['systems']))}); this run ({len(new_ids)} question(s), systems "
        f"{', '.join(systems)}) writes its tables to {out}/ and leaves those unchanged",
        file=sys.stderr,
    )
    return out


def write_outputs(
    result: RunResult,
    *,
    cfg: dict,
    generation: dict,
    seed: int,
    questions_path: Path,
    models_manifest: list[dict],
    study_folder: Path | None,
    config_path: str | None,
    run_args: dict,
    out_dir: Path | None = None,
) -> None:
    """tabela.md, metricas.csv, pareado.csv, metricas.png and manifest.json in ``out_dir`` (default: the run
    dir; :func:`tables_dir` says which), and exposicao.csv, diagnostico_rag.csv when the run has fine-tuned or
    RAG systems."""
    run_dir = result.run_dir
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out_dir / name for name in ("tabela.md", "metricas.csv", "pareado.csv", "metricas.png", "manifest.json")
    }
    with atomic_open(paths["tabela.md"]) as f:
        f.write(render_table(result, generation))
    write_metrics_csv(paths["metricas.csv"], result.summary)
    write_metrics_csv(paths["pareado.csv"], result.paired, PAIRED_COLUMNS)
    paths.update(write_analysis_csvs(result, out_dir))
    write_metrics_png(paths["metricas.png"], result.summary)
    manifest = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config_path": config_path,
        "config": cfg,
        "run": run_args,
        "seed": seed,
        "generation": generation,
        "prompt_fingerprint": PROMPT_FINGERPRINT,
        "systems": result.systems,
        "questions": {"path": str(questions_path), "sha256": sha256_file(questions_path), "n": len(result.questions)},
        # what the tables cover (the smaller-run rule compares the next run with it: tables_dir)
        "coverage": {
            "systems": [m["system"] for m in models_manifest],
            "question_ids": [q.id for q in result.questions],
        },
        "partial_of": str(run_dir) if out_dir != run_dir else None,
        "models": models_manifest,
        "study_answers": (
            {
                name: {"path": str(study_folder / name), "sha256": sha256_file(study_folder / name)}
                for name in STUDY_FILES.values()
            }
            if study_folder
            else None
        ),
        "acerto_available": result.has_acerto,
        "paired": result.paired,
        **analysis_manifest(result),  # seen_in_training(_acerto), rag_diagnosis
        "answers": {
            "generated": result.generated,
            "cached": result.cached,
            "missing": result.missing,
            "cache": str(run_dir / "respostas.jsonl"),
        },
        "libraries": library_versions(),
        "git": git_commit(),
    }
    with atomic_open(paths["manifest.json"]) as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False, default=str)
        f.write("\n")
    result.outputs = paths
