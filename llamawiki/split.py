"""Stage 2: a train/test split grouped by article, and a report of what leaks between the two sides.

The study split its 269 QA pairs at random, so the same question (or a rewording of it) could be trained on and
then tested. ``grouped_split`` keeps every group (by default: every article) on one side only. Records with no
article (imported from a CSV/JSON QA file) are grouped by their normalized question instead, so at least
identical questions never straddle the split.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import ceil
from pathlib import Path

from .fileio import UserError
from .records import read_dataset
from .text import SIMILARITY_STOPWORDS as STOPWORDS
from .text import normalize

GROUP_KEYS = ("article", "question", "none")
DEFAULT_THRESHOLD = 0.8  # word-set Jaccard (split.similarity) at or above which two questions are near-identical


def group_of(record: dict, group_key: str = "article") -> str:
    """The group a record belongs to: its article, else (imports without article) its normalized question."""
    question = normalize(record.get("input") or record.get("text") or "")
    if group_key == "question":
        return "q:" + question
    if group_key == "none":
        return ""
    value = str(record.get(group_key) or "").strip()
    return "a:" + value if value else "q:" + question


def grouped_split(
    records: Sequence[dict], test_size: float = 0.1, seed: int = 42, group_key: str = "article"
) -> tuple[list[dict], list[dict]]:
    """Split ``records`` into (train, test) with about ``test_size`` of the records in test.

    Deterministic for a seed: groups are sorted, shuffled with ``random.Random(seed)`` and moved to the test side
    while that brings it closer to the target size. No group has records on both sides. ``group_key="none"``
    gives the study's plain random split (every record its own group). Records keep their input order.
    """
    if not 0 < test_size < 1:
        raise UserError(f"--test-size: must be between 0 and 1, got {test_size}")
    if group_key not in GROUP_KEYS and not any(group_key in r for r in records[:1000]):
        raise UserError(f"--group-by: no record has the field '{group_key}'")
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        key = f"#{i}" if group_key == "none" else group_of(rec, group_key)
        groups[key].append(i)
    order = sorted(groups)
    random.Random(seed).shuffle(order)
    target = round(test_size * len(records))
    if len(records) >= 2:
        target = min(max(target, 1), len(records) - 1)
    in_test: set[int] = set()
    n_test = 0
    for key in order:
        if n_test >= target:
            break
        size = len(groups[key])
        # Take the group if the test side ends nearer the target with it than without it.
        if abs(target - (n_test + size)) < abs(target - n_test):
            in_test.update(groups[key])
            n_test += size
    train = [r for i, r in enumerate(records) if i not in in_test]
    test = [r for i, r in enumerate(records) if i in in_test]
    return train, test


# ---------------------------------------------------------------------------------------------------------------
# Leakage report
# ---------------------------------------------------------------------------------------------------------------


def _tokens(text: str) -> frozenset[str]:
    """The content words of a text: its normalized words without :data:`STOPWORDS`."""
    return frozenset(t for t in normalize(text).split() if t not in STOPWORDS)


def _words(text: str) -> frozenset[str]:
    """All the normalized words of a text, function words included."""
    return frozenset(normalize(text).split())


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def similarity(a: tuple[frozenset[str], frozenset[str]], b: tuple[frozenset[str], frozenset[str]]) -> float:
    """How alike two texts are, from their (content words, all words) as :func:`_tokens` and :func:`_words` give.

    The Jaccard of the content words; the larger of that and the Jaccard of all the words when one text's content
    words include the other's (only words added or dropped: "Quando foi proclamada a independência do Brasil?"
    ~ "Quando foi a independência do Brasil?" is 0.67 on content words, 0.86 on all words). A swapped content
    word keeps the content-word Jaccard alone: templated questions share all their function words, and "Quem foi
    o antecessor de X como presidente?" ~ "Quem foi o sucessor de X como presidente?" (0.86 on all words) are not
    the same question.
    """
    content = _jaccard(a[0], b[0])
    if a[0] and b[0] and (a[0] <= b[0] or b[0] <= a[0]):
        return max(content, _jaccard(a[1], b[1]))
    return content


def _candidates(sets: Sequence[frozenset[str]]) -> tuple[Counter, dict[str, list[int]]]:
    df: Counter = Counter()
    postings: dict[str, list[int]] = defaultdict(list)
    for j, toks in enumerate(sets):
        for tok in toks:
            postings[tok].append(j)
            df[tok] += 1
    return df, postings


def _prefix(toks: frozenset[str], df: Counter, threshold: float) -> list[str]:
    """The rarest words of ``toks`` of which a set with Jaccard ≥ threshold must hold at least one."""
    ordered = sorted(toks, key=lambda t: (df.get(t, 0), t))
    return ordered[: len(toks) - ceil(threshold * len(toks)) + 1]


def near_duplicates(
    train_texts: Sequence[str], test_texts: Sequence[str], threshold: float = DEFAULT_THRESHOLD
) -> list[tuple[int, int, float]]:
    """(test index, best train index, :func:`similarity`) for every test text ≥ threshold alike to a train text.

    Exact via prefix filtering: a train text with Jaccard ≥ t shares at least ceil(t·|A|) of test text A's
    words, so it must contain one of A's |A| - ceil(t·|A|) + 1 rarest words; only those postings are compared
    (done for the content words and for all the words, the two Jaccards :func:`similarity` takes).
    """
    train = [(_tokens(t), _words(t)) for t in train_texts]
    test = [(_tokens(t), _words(t)) for t in test_texts]
    index = [_candidates([t[part] for t in train]) for part in (0, 1)]
    found = []
    for i, sets in enumerate(test):
        if not sets[0]:
            continue
        candidates: set[int] = set()
        for part, (df, postings) in enumerate(index):
            for tok in _prefix(sets[part], df, threshold):
                candidates.update(postings.get(tok, ()))
        best = max(((similarity(sets, train[j]), j) for j in sorted(candidates)), default=(0.0, -1))
        if best[0] >= threshold:
            found.append((i, best[1], round(best[0], 3)))
    return found


@dataclass
class LeakageReport:
    n_train: int
    n_test: int
    train_sources: dict[str, int]
    test_sources: dict[str, int]
    shared_articles: list[str] = field(default_factory=list)  # articles with records on both sides
    identical_questions: list[str] = field(default_factory=list)  # test questions also in train (normalized)
    near_questions: list[tuple[str, str, float]] = field(default_factory=list)  # (test q, train q, jaccard)
    identical_answers: list[str] = field(default_factory=list)
    near_answers: list[tuple[str, str, float]] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD

    @property
    def leaked_test_records(self) -> int:
        """Test records whose question or answer is identical or near-identical to a train record's."""
        return len(self._leaked)

    _leaked: set = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        return {
            "n_train": self.n_train,
            "n_test": self.n_test,
            "train_sources": self.train_sources,
            "test_sources": self.test_sources,
            "shared_articles": len(self.shared_articles),
            "identical_questions": len(self.identical_questions),
            "near_questions": len(self.near_questions),
            "identical_answers": len(self.identical_answers),
            "near_answers": len(self.near_answers),
            "leaked_test_records": self.leaked_test_records,
            "threshold": self.threshold,
        }

    def format(self, examples: int = 3) -> str:
        def pct(n: int) -> str:
            return f"{n} ({100 * n / self.n_test:.1f}% of test)" if self.n_test else str(n)

        def sources(c: dict) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "-"

        lines = [
            f"train: {self.n_train} records ({sources(self.train_sources)})",
            f"test:  {self.n_test} records ({sources(self.test_sources)})",
            f"articles on both sides: {len(self.shared_articles)}",
            f"test questions identical to a train question (normalized): {pct(len(self.identical_questions))}",
            f"test questions near-identical to a train question (word Jaccard >= {self.threshold}): "
            f"{pct(len(self.near_questions))}",
            f"test answers identical to a train answer: {pct(len(self.identical_answers))}",
            f"test answers near-identical to a train answer (word Jaccard >= {self.threshold}): "
            f"{pct(len(self.near_answers))}",
            f"test records leaked (any of the above): {pct(self.leaked_test_records)}",
        ]
        for title in self.shared_articles[:examples]:
            lines.append(f"  shared article: {title}")
        for q in self.identical_questions[:examples]:
            lines.append(f"  identical question: {q}")
        for q, tq, sim in self.near_questions[:examples]:
            lines.append(f"  near question ({sim}): {q!r} ~ {tq!r}")
        return "\n".join(lines)


def leakage_report(
    train: Sequence[dict], test: Sequence[dict], threshold: float = DEFAULT_THRESHOLD, group_key: str = "article"
) -> LeakageReport:
    """What the test side shares with the train side: articles, identical and near-identical questions/answers.

    Questions are compared normalized (casefolded, without accents and punctuation); "near" means a word-set
    Jaccard ≥ ``threshold`` (:func:`similarity`: stopwords ignored unless only words were added) without being
    identical. Raw records (no question) are only counted.
    """
    report = LeakageReport(
        n_train=len(train),
        n_test=len(test),
        train_sources=dict(Counter(str(r.get("source", "?")) for r in train)),
        test_sources=dict(Counter(str(r.get("source", "?")) for r in test)),
        threshold=threshold,
    )
    train_articles = {str(r.get(group_key) or "") for r in train} - {""}
    test_articles = {str(r.get(group_key) or "") for r in test} - {""}
    report.shared_articles = sorted(train_articles & test_articles)

    train_qa = [r for r in train if r.get("output")]
    test_qa = [(i, r) for i, r in enumerate(test) if r.get("output")]
    leaked: set[int] = {i for i, r in enumerate(test) if str(r.get(group_key) or "") in train_articles}
    for part, name in (("input", "questions"), ("output", "answers")):
        train_norm = {normalize(r.get(part) or "") for r in train_qa} - {""}
        identical, rest = [], []
        for i, r in test_qa:
            text = r.get(part) or ""
            if normalize(text) and normalize(text) in train_norm:
                identical.append(text)
                leaked.add(i)
            else:
                rest.append((i, text))
        near = near_duplicates([r.get(part) or "" for r in train_qa], [t for _, t in rest], threshold)
        near_list = []
        for k, j, sim in near:
            leaked.add(rest[k][0])
            near_list.append((rest[k][1], train_qa[j].get(part) or "", sim))
        setattr(report, f"identical_{name}", identical)
        setattr(report, f"near_{name}", near_list)
    report._leaked = leaked
    return report


LEAKAGE_FLAGS = ("identical", "near", "article", "unseen")


@dataclass
class QuestionLeak:
    """How close one evaluation question came to the training data."""

    flag: str  # one of LEAKAGE_FLAGS
    similarity: float = 0.0  # best split.similarity with a training question (1.0 when identical)
    train_question: str = ""  # the closest training question (identical or near), else ""


def question_leakage(
    questions: Sequence[tuple[str, str | None]], train_records: Sequence[dict], threshold: float = DEFAULT_THRESHOLD
) -> list[QuestionLeak]:
    """For each (question, article) pair, what the training records held of it: ``identical`` (the same
    normalized question as a record's ``input``), ``near`` (:func:`similarity` ≥ ``threshold``, the check
    particiona.py reports), ``article`` (another question about the same article), or ``unseen``."""
    qa = [r for r in train_records if r.get("input")]
    by_norm = {}
    for r in qa:
        by_norm.setdefault(normalize(r["input"]), r["input"])
    articles = {str(r.get("article") or "").strip() for r in train_records} - {""}
    out: list[QuestionLeak] = []
    rest: list[int] = []
    for i, (question, _) in enumerate(questions):
        norm = normalize(question)
        if norm and norm in by_norm:
            out.append(QuestionLeak("identical", 1.0, by_norm[norm]))
        else:
            out.append(QuestionLeak("unseen"))
            rest.append(i)
    for k, j, sim in near_duplicates([r["input"] for r in qa], [questions[i][0] for i in rest], threshold):
        out[rest[k]] = QuestionLeak("near", sim, qa[j]["input"])
    for i, (_, article) in enumerate(questions):
        if out[i].flag == "unseen" and article and article.strip() in articles:
            out[i] = QuestionLeak("article")
    return out


def exclude_questions(
    records: Sequence[dict], questions: Sequence[tuple[str, str]], threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[dict], dict[str, int]]:
    """Drop the records whose question is identical or near-identical to one of ``questions`` ((id, text)
    pairs). Returns (kept records, {question id: records dropped}) — the ids with nothing dropped are left out."""
    inputs = [(i, r.get("input") or "") for i, r in enumerate(records) if r.get("input")]
    dropped: dict[int, str] = {}
    norms = {}
    for qid, text in questions:
        norms.setdefault(normalize(text), qid)
    for i, text in inputs:
        qid = norms.get(normalize(text))
        if qid is not None:
            dropped[i] = qid
    # near: each training question against the evaluation questions (a record near any question goes)
    rest = [(i, t) for i, t in inputs if i not in dropped]
    for k, j, _ in near_duplicates([t for _, t in questions], [t for _, t in rest], threshold):
        dropped[rest[k][0]] = questions[j][0]
    counts = Counter(dropped.values())
    return [r for i, r in enumerate(records) if i not in dropped], dict(sorted(counts.items()))


def study_split_report(folder: str | Path, threshold: float = DEFAULT_THRESHOLD) -> LeakageReport:
    """Leakage of the study's own random split: ``treino.json`` vs ``teste.json`` (lists of input/output)."""
    folder = Path(folder)
    train = read_dataset(folder / "treino.json")
    test = read_dataset(folder / "teste.json")
    return leakage_report(train, test, threshold=threshold)
