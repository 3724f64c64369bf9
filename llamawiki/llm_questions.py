"""LLM-written question/answer pairs (``build_dataset.py --modes llm``), the way the study made its 200 pairs.

The study gave ChatGPT excerpts of its "História do Brasil" articles and kept the pairs it wrote. Here any model
that ``models.load_generator`` loads reads one excerpt at a time (the lead, then each section, cut to
``max_excerpt_tokens`` of the generator's own tokenizer) and is asked, in Portuguese, for a few pairs in a fixed
layout (``prompt.INSTRUCTION_LLM_QA``). What it writes is parsed leniently (``Pergunta:``/``Resposta:`` labels,
``P:``/``R:``, numbering, bold, English labels, a JSON list) and every pair is filtered:

- the question must end with a question mark;
- the answer must be grounded in the excerpt: at least ``min_support`` of its content words (accents and case
  ignored, stopwords left out, numbers kept) occur in the excerpt;
- a question already kept (normalized, in this run) is a duplicate.

Each completion is cached in a JSONL file beside the output, keyed by the generator, the prompt and the
generation settings, so an interrupted run resumes at the excerpt where it stopped and a rerun costs nothing.

The embedded Gemma 3 270M is a base model: it does not follow this prompt (docs/dataset.md gives the figures
and the GPU recipe with a chat model).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import prompt
from .fileio import JsonlCache, UserError
from .models import SPEC_META_KEYS, load_generator, model_label, resolve_spec
from .options import LLM_QUESTIONS_MAX_NEW_TOKENS
from .records import make_record
from .text import STOPWORDS_PT, end_with_period, normalize, split_sentences

SOURCE = "llm"

# --------------------------------------------------------------------------------------------------------------
# Parsing what the generator wrote
# --------------------------------------------------------------------------------------------------------------

_Q_LABEL = r"(?:pergunta|quest[aã]o|question|p|q)"
_A_LABEL = r"(?:resposta|answer|r|a)"
# a label at the start of a line (after list markers / bold), or inline after the question mark
_LABEL = re.compile(
    rf"(?:^|\n)[ \t]*(?:[-*•]+[ \t]*)?(?:\d{{1,2}}[.)][ \t]*)?(?:\*\*|__)?(?P<kind>{_Q_LABEL}|{_A_LABEL})"
    rf"(?:[ \t]*\d{{1,2}})?[ \t]*(?:\*\*|__)?[ \t]*[:：\-–—][ \t]*(?:\*\*|__)?"
    rf"|(?<=\?)[ \t]*(?:\*\*|__)?(?P<inline>{_A_LABEL})[ \t]*(?:\*\*|__)?[ \t]*[:：][ \t]*(?:\*\*|__)?",
    re.IGNORECASE,
)
_NUMBERED = re.compile(
    r"^[ \t]*(?:[-*•]+[ \t]*)?\d{1,2}[.)][ \t]+(?P<q>[^\n?]{3,}\?)[ \t]*(?:[-–—:][ \t]*)?"
    r"(?P<a>[^\n]*)$",
    re.MULTILINE,
)
_MARKDOWN = re.compile(r"\*\*|__|`")


def _clean(text: str) -> str:
    text = _MARKDOWN.sub("", text)
    return re.sub(r"\s+", " ", text).strip().strip('"“”«»').strip()


def _json_pairs(text: str) -> list[tuple[str, str]] | None:
    start, end = text.find("["), text.rfind("]")
    if start == -1 or end <= start:
        return None
    try:
        items = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(items, list):
        return None
    pairs = []
    for item in items:
        if not isinstance(item, dict):
            continue
        keys = {normalize(str(k)): v for k, v in item.items()}
        q = next((keys[k] for k in ("pergunta", "question", "questao", "p", "q") if k in keys), None)
        a = next((keys[k] for k in ("resposta", "answer", "r", "a") if k in keys), None)
        if isinstance(q, str) and isinstance(a, str):
            pairs.append((_clean(q), _clean(a)))
    return pairs


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The (question, answer) pairs in a completion, in order; unpaired pieces are left out.

    Understood: ``Pergunta: … Resposta: …`` (also ``P:``/``R:``, ``Pergunta 1:``, ``**Pergunta:**``, ``1. Pergunta:``,
    English ``Question:``/``Answer:``, the answer on the question's line), a JSON list of
    ``{"pergunta", "resposta"}`` objects, and numbered lines ``1. …? …``.
    """
    text = text.replace("\r\n", "\n")
    pieces: list[tuple[str, int, int]] = []  # (kind, label start, text start)
    for m in _LABEL.finditer(text):
        kind = "a" if m.group("inline") or normalize(m.group("kind") or "")[:1] in ("r", "a") else "q"
        pieces.append((kind, m.start(), m.end()))
    pairs: list[tuple[str, str]] = []
    for i, (kind, _, begin) in enumerate(pieces):
        if kind != "q" or i + 1 >= len(pieces) or pieces[i + 1][0] != "a":
            continue
        q = _clean(text[begin : pieces[i + 1][1]])
        a_begin = pieces[i + 1][2]
        a_end = pieces[i + 2][1] if i + 2 < len(pieces) else len(text)
        a = _clean(text[a_begin:a_end].split("\n\n")[0])
        if q and a:
            pairs.append((q, a))
    if pairs:
        return pairs
    found = _json_pairs(text)
    if found:
        return found
    return [(_clean(m["q"]), _clean(m["a"])) for m in _NUMBERED.finditer(text) if _clean(m["a"])]


# --------------------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------------------


def content_words(text: str) -> list[str]:
    """The words that carry an answer's facts: normalized, without stopwords; numbers always count."""
    return [
        w for w in normalize(text, drop_articles=True).split() if w.isdigit() or (len(w) > 1 and w not in STOPWORDS_PT)
    ]


def support(answer: str, excerpt: str) -> float:
    """The share of the answer's content words found in the excerpt (0.0 for an answer without any: "Sim.")."""
    words = content_words(answer)
    if not words:
        return 0.0
    have = set(normalize(excerpt, drop_articles=True).split())
    return sum(w in have for w in words) / len(words)


# why a parsed pair was dropped (the counts in the run's summary)
DROP_REASONS = ("no_question_mark", "unsupported", "duplicate", "length")


def check_pair(
    question: str,
    answer: str,
    excerpt: str,
    min_support: float,
    seen: set[str],
    min_chars: int = 1,
    max_chars: int = 10_000,
) -> str | None:
    """None when the pair is kept (its question is added to ``seen``), else the reason it is dropped."""
    if not question.endswith("?"):
        return "no_question_mark"
    if not (min_chars <= len(answer) <= max_chars):
        return "length"
    if support(answer, excerpt) < min_support:
        return "unsupported"
    key = normalize(question)
    if key in seen:
        return "duplicate"
    seen.add(key)
    return None


# --------------------------------------------------------------------------------------------------------------
# The generator spec: a model spec, a path or hub id, or an entry of a YAML file
# --------------------------------------------------------------------------------------------------------------


def load_llm(spec: dict) -> Any:
    """The generator that writes the questions: ``spec`` loaded by the one model loader (models.load_generator)."""
    return load_generator(spec)


def generator_spec(value: str | dict) -> dict:
    """The model spec ``--generator`` names, resolved (``models.resolve_spec``).

    ``value`` may be a mapping, a model (GGUF file, HF folder or hub id, ``embedded``), ``FILE.yaml:NAME`` (an
    entry of the file's ``models:`` section, as compare.py's configs and configs/models.yaml write them), or
    ``FILE.yaml`` holding one model (a spec at the top, a ``model:`` mapping, or ``models:`` with one entry).
    """
    if isinstance(value, dict):
        return resolve_spec(value)
    text = str(value).strip()
    if not text:
        raise UserError("--generator: empty model spec")
    path, _, name = text.partition(":") if re.match(r"^[^:]+\.ya?ml:", text) else (text, "", "")
    if not path.endswith((".yaml", ".yml")):
        return resolve_spec({"model": text})
    from .config import load_config

    if not Path(path).is_file():
        raise UserError(f"{path}: file not found (--generator)")
    cfg = load_config(path)
    models = cfg.get("models") if isinstance(cfg.get("models"), dict) else {}
    if name:
        if name not in models:
            known = ", ".join(sorted(models)) or "none"
            raise UserError(f"{path}: no model {name!r} under `models:` (there: {known})")
        return resolve_spec({**models[name], "name": name})
    if isinstance(cfg.get("model"), dict):
        return resolve_spec(dict(cfg["model"]))
    if len(models) == 1:
        ((only, spec),) = models.items()
        return resolve_spec({**spec, "name": only})
    if models:
        raise UserError(
            f"{path}: {len(models)} models under `models:`; name one: {path}:NAME ({', '.join(sorted(models))})"
        )
    if "model" in cfg:
        return resolve_spec({k: v for k, v in cfg.items() if k != "generation"})
    raise UserError(f"{path}: no model spec (a `model:` key, or `models:` with its entries)")


# --------------------------------------------------------------------------------------------------------------
# The writer: article excerpts -> records, cached
# --------------------------------------------------------------------------------------------------------------


@dataclass
class LLMOptions:
    max_pairs_per_article: int = 3
    pairs_per_excerpt: int = 3  # asked for in one prompt (at most what the article still needs)
    max_excerpts: int = 4  # lead + the first sections
    max_excerpt_tokens: int = 400  # of the generator's tokenizer
    min_excerpt_chars: int = 80  # shorter excerpts hold too little to ask about
    min_support: float = 0.75
    max_new_tokens: int = LLM_QUESTIONS_MAX_NEW_TOKENS
    temperature: float = 0.0
    top_p: float = 1.0

    def __post_init__(self):
        for flag, value in (
            ("--max-pairs-per-article", self.max_pairs_per_article),
            ("--llm-max-excerpt-tokens", self.max_excerpt_tokens),
            ("--llm-max-new-tokens", self.max_new_tokens),
            ("pairs_per_excerpt", self.pairs_per_excerpt),
            ("max_excerpts", self.max_excerpts),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{flag} {value}: must be a whole number >= 1")
        if not 0 <= self.min_support <= 1:
            raise UserError(f"--llm-min-support {self.min_support}: must be in [0, 1]")
        if self.temperature < 0:
            raise UserError(f"--llm-temperature {self.temperature}: must be >= 0")

    def generation(self) -> dict:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p}


@dataclass
class LLMStats:
    articles: int = 0
    prompts: int = 0
    generated: int = 0  # prompts sent to the model (the rest came from the cache)
    parsed: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    unparsable_articles: list[str] = field(default_factory=list)  # no pair could be read from any of its excerpts

    def summary(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v) or "none"
        return (
            f"llm: {self.kept} pair(s) kept of {self.parsed} parsed from {self.prompts} excerpt(s) of "
            f"{self.articles} article(s) ({self.generated} generated, {self.prompts - self.generated} cached); "
            f"dropped: {drops}"
        )


def cache_path(output: str | Path) -> Path:
    """``json/dataset.jsonl`` -> ``json/dataset.llm-cache.jsonl``."""
    output = Path(output)
    return output.with_name(output.name.removesuffix(".jsonl") + ".llm-cache.jsonl")


class LLMQuestionWriter:
    """Turns an article's excerpts into ``source: llm`` records with one generator.

    ``generator`` is a loaded ``models.Generator`` or anything with ``generate``/``count_tokens`` (tests pass a
    stub); ``spec`` names it in the records and the cache key. With a chat template the prompt goes through
    ``generator.chat`` (a chat model answers as asked), else through the Alpaca completion prompt.
    """

    def __init__(
        self,
        generator: Any,
        spec: dict,
        options: LLMOptions | None = None,
        cache: str | Path | None = None,
        instruction: str = prompt.INSTRUCTION_QA,
        min_answer_chars: int = 1,
        max_answer_chars: int = 10_000,
    ):
        self.generator = generator
        self.options = options or LLMOptions()
        self.name = model_label(spec)
        self.identity = {k: v for k, v in spec.items() if k not in SPEC_META_KEYS}  # what loads the model
        self.cache = JsonlCache(cache) if cache is not None else None
        self.instruction = instruction
        self.answer_chars = (min_answer_chars, max_answer_chars)
        self.stats = LLMStats()
        self.seen: set[str] = set()
        self.chat = bool(getattr(generator, "has_chat_template", False))

    # -- excerpts -------------------------------------------------------------------------------------------
    def fit(self, text: str) -> str:
        """``text`` cut to whole sentences within ``max_excerpt_tokens`` (the first sentence cut by words)."""
        budget = self.options.max_excerpt_tokens
        count = self.generator.count_tokens
        if count(text) <= budget:
            return text.strip()
        kept: list[str] = []
        for sentence in split_sentences(text):
            if count(" ".join(kept + [sentence])) > budget:
                break
            kept.append(sentence)
        if kept:
            return " ".join(kept)
        words = text.split()
        lo, hi = 1, len(words)
        while lo < hi:  # the longest prefix of words that fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if count(" ".join(words[:mid])) <= budget else (lo, mid - 1)
        return " ".join(words[:lo])

    def excerpts(self, texts: Iterable[str]) -> list[str]:
        out = []
        for text in texts:
            text = (text or "").strip()
            if len(text) >= self.options.min_excerpt_chars:
                out.append(self.fit(text))
            if len(out) >= self.options.max_excerpts:
                break
        return out

    # -- one prompt -----------------------------------------------------------------------------------------
    def _prompt(self, title: str, excerpt: str, n: int) -> tuple[str, list[dict] | None]:
        if self.chat:
            content = prompt.INSTRUCTION_LLM_QA.format(n=n) + "\n\n" + prompt.build_llm_questions_input(title, excerpt)
            return content, [{"role": "user", "content": content}]
        return prompt.build_llm_questions_prompt(title, excerpt, n), None

    def _complete(self, text: str, messages: list[dict] | None) -> str:
        gen = self.options.generation()
        if messages is not None:
            out = self.generator.chat(messages, **gen)
        else:
            out = self.generator.generate(text, stop=prompt.LLM_QA_STOP_STRINGS, **gen)
        self.stats.generated += 1
        return out.text if hasattr(out, "text") else str(out)

    def completion(self, title: str, excerpt: str, n: int) -> str:
        """The generator's text for one excerpt, from the cache when this exact prompt was answered before."""
        text, messages = self._prompt(title, excerpt, n)
        key = hashlib.sha256(
            json.dumps(
                {
                    "generator": self.identity,
                    "chat": messages is not None,
                    "prompt": text,
                    "generation": self.options.generation(),
                },
                sort_keys=True,
                ensure_ascii=False,
            ).encode("utf-8")
        ).hexdigest()
        self.stats.prompts += 1
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None and isinstance(hit.get("text"), str):
            return hit["text"]
        out = self._complete(text, messages)
        if self.cache is not None:
            self.cache.append({"key": key, "article": title, "generator": self.name, "text": out})
        return out

    # -- one article ----------------------------------------------------------------------------------------
    def article_records(
        self, title: str, texts: Iterable[str], on_pair: Callable[[], None] | None = None
    ) -> list[dict]:
        """Up to ``max_pairs_per_article`` records from the article's texts (lead first, then sections)."""
        self.stats.articles += 1
        records: list[dict] = []
        parsed_any = False
        excerpts = self.excerpts(texts)
        for excerpt in excerpts:
            need = self.options.max_pairs_per_article - len(records)
            if need <= 0:
                break
            pairs = parse_pairs(self.completion(title, excerpt, min(need, self.options.pairs_per_excerpt)))
            parsed_any = parsed_any or bool(pairs)
            self.stats.parsed += len(pairs)
            for question, answer in pairs:
                if len(records) >= self.options.max_pairs_per_article:
                    break
                answer = end_with_period(answer)
                why = check_pair(question, answer, excerpt, self.options.min_support, self.seen, *self.answer_chars)
                if why:
                    self.stats.dropped[why] += 1
                    continue
                rec = make_record(question, answer, title, SOURCE, self.instruction)
                rec["generator"] = self.name
                records.append(rec)
                self.stats.kept += 1
                if on_pair is not None:
                    on_pair()
        if excerpts and not parsed_any:
            self.stats.unparsable_articles.append(title)
        return records
