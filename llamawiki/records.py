"""The dataset record: its schema, reading and validating record files, and importing QA files.

A record is one line of ``json/dataset.jsonl`` (and of ``treino.jsonl``/``teste.jsonl``)::

    {"text": prompt.build_example(q, a, instr), "instruction": instr, "input": q, "output": a,
     "article": title, "source": "infobox|lead|section|csv|json"}

or, in raw mode, ``{"text": article_text, "article": title, "source": "raw"}``. Every stage that reads records
(the split, fine-tuning, the comparison's leakage check) goes through :func:`read_dataset`.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from . import prompt
from .fileio import UserError, first_few, read_jsonl
from .text import decode_text, strip_accents

QA_SOURCES = ("infobox", "lead", "section", "llm", "csv", "json")
SOURCES = QA_SOURCES + ("raw",)
QA_FIELDS = ("text", "instruction", "input", "output", "article", "source")


def make_record(
    question: str, answer: str, article: str, source: str, instruction: str = prompt.INSTRUCTION_QA
) -> dict:
    question, answer = question.strip(), answer.strip()
    return {
        "text": prompt.build_example(question, answer, instruction),
        "instruction": instruction,
        "input": question,
        "output": answer,
        "article": article,
        "source": source,
    }


# --------------------------------------------------------------------------------------------------------------
# Importing existing QA files (the study's dados.csv / saida.json)
# --------------------------------------------------------------------------------------------------------------

QUESTION_COLUMNS = ("pergunta", "question", "input", "questao", "prompt")
ANSWER_COLUMNS = ("resposta", "answer", "output", "resposta_referencia", "completion", "response")
ARTICLE_COLUMNS = ("artigo", "article", "titulo", "title")
INSTRUCTION_COLUMNS = ("instrucao", "instruction")


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [re.sub(r"[\s\-]+", "_", strip_accents(h.strip().strip('"').casefold())) for h in header]
    for name in names:
        if name in keys:
            return keys.index(name)
    return None


def _csv_rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, line = [], 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((line, row))
            line = reader.line_num + 1
    except csv.Error as e:
        raise UserError(f"csv: line {line}: {e}") from None  # the line the bad record starts on
    return rows


def read_qa_csv(path: str | Path, instruction: str = prompt.INSTRUCTION_QA) -> list[dict]:
    """Records from a QA CSV: ``pergunta;resposta`` rows (the study's dados.csv: Latin-1, CRLF, no header).

    Also accepts UTF-8, a header row (pergunta/resposta, question/answer, input/output, optional artigo and
    instruction columns) and ``,`` as the separator. Bad rows are reported together, with line numbers.
    """
    path = Path(path)
    text, _ = decode_text(read_bytes(path), path)
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    first_line = text.lstrip("\ufeff").splitlines()[0]
    delimiter = None
    header_cols: dict[str, int | None] | None = None
    for delim in (";", ",", "\t"):
        header = next(csv.reader([first_line], delimiter=delim))
        q, a = _find_column(header, QUESTION_COLUMNS), _find_column(header, ANSWER_COLUMNS)
        if q is not None and a is not None:
            delimiter = delim
            header_cols = {
                "q": q,
                "a": a,
                "article": _find_column(header, ARTICLE_COLUMNS),
                "instruction": _find_column(header, INSTRUCTION_COLUMNS),
                "n": len(header),
            }
            break
    try:
        if delimiter is None:  # no header: two columns, pergunta;resposta; pick the separator that fits best
            best = None
            for delim in (";", ",", "\t"):
                rows = _csv_rows(text, delim)
                good = sum(1 for _, r in rows if len(r) == 2)
                if best is None or good > best[0]:
                    best = (good, delim, rows)
            _, delimiter, rows = best
            cols = {"q": 0, "a": 1, "article": None, "instruction": None, "n": 2}
        else:
            rows = _csv_rows(text, delimiter)[1:]
            cols = header_cols
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    records, bad = [], []
    for line, row in rows:
        if len(row) != cols["n"]:
            bad.append(f"{line} ({len(row)} field{'s' if len(row) != 1 else ''}, expected {cols['n']})")
            continue
        question, answer = row[cols["q"]].strip(), row[cols["a"]].strip()
        if not question or not answer:
            bad.append(f"{line} (empty {'question' if not question else 'answer'})")
            continue
        article = row[cols["article"]].strip() if cols["article"] is not None else ""
        instr = (row[cols["instruction"]].strip() if cols["instruction"] is not None else "") or instruction
        records.append(make_record(question, answer, article, "csv", instr))
    if bad:
        shown = first_few(bad)
        sep = {";": "';'", ",": "','", "\t": "tab"}[delimiter]
        raise UserError(f"{path}: {len(bad)} bad row(s) (separator {sep}): line{'s' if len(bad) > 1 else ''} {shown}")
    if not records:
        raise UserError(f"{path}: no question/answer rows")
    return records


def read_qa_json(path: str | Path, instruction: str = prompt.INSTRUCTION_QA) -> list[dict]:
    """Records from a JSON list or JSONL of {"input", "output"} (optionally "instruction", "article").

    The study's saida.json / treino.json / teste.json are lists of {"input", "output"}. Records that already
    are dataset records (with "text" and "source") are kept as they are.
    """
    path = Path(path)
    records = _convert_records(path, lambda item: normalize_record(item, instruction, default_source="json"), "bad")
    if not records:
        raise UserError(f"{path}: no records")
    return records


def normalize_record(item: dict, instruction: str = prompt.INSTRUCTION_QA, default_source: str = "json") -> dict:
    """A full dataset record from a dataset record or a bare {"input", "output"} item; ValueError if unusable."""
    source = item.get("source")
    if source == "raw":
        if not isinstance(item.get("text"), str) or not item["text"].strip():
            raise ValueError("raw record without text")
        return {"text": item["text"], "article": str(item.get("article") or ""), "source": "raw"}
    for name in ("input", "output", "instruction", "article", "text"):
        if name in item and not isinstance(item[name], str):
            raise ValueError(f"field '{name}' is not a string")
    question = (item.get("input") or "").strip()
    answer = (item.get("output") or "").strip()
    instr = (item.get("instruction") or "").strip() or instruction
    if not answer:
        raise ValueError("missing 'output'")
    if not question and "instruction" not in item:
        raise ValueError("missing 'input'")
    source = source if source in QA_SOURCES else default_source
    return {
        "text": prompt.build_example(question, answer, instr),
        "instruction": instr,
        "input": question,
        "output": answer,
        "article": (item.get("article") or "").strip(),
        "source": source,
    }


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def _record_lines(path: Path, count: int) -> list[str]:
    """Where each record of a JSON list / JSONL file is ("item 3" / "line 7"), for error messages."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
        if head.startswith(b"["):
            return [f"item {i}" for i in range(1, count + 1)]
        f.seek(0)
        return [f"line {n}" for n, line in enumerate(f, 1) if line.strip()][:count]


def read_dataset(path: str | Path) -> list[dict]:
    """Read json/dataset.jsonl (or treino/teste, or the study's JSON list) for later stages.

    Every record is validated: QA records need string ``text``, ``instruction``, ``input``, ``output``,
    ``article`` and ``source``; raw records need ``text``. Bare study records ({"input", "output"}) are
    completed with the template. Malformed records are reported with their line numbers in one UserError.
    """

    def checked(item: dict) -> dict:
        if "text" in item and "source" in item:
            _validate(item)
            return item
        return normalize_record(item)

    return _convert_records(Path(path), checked, "malformed")


def _convert_records(path: Path, convert, adjective: str) -> list[dict]:
    """``convert`` applied to every record of a JSON list / JSONL file; the ValueErrors it raises are
    collected with their line numbers into one UserError ("<path>: 2 <adjective> record(s): line 2 (...)")."""
    items = read_jsonl(path)
    records, bad = [], []
    for loc, item in zip(_record_lines(path, len(items)), items, strict=True):
        try:
            records.append(convert(item))
        except ValueError as e:
            bad.append(f"{loc} ({e})")
    if bad:
        raise UserError(f"{path}: {len(bad)} {adjective} record(s): {first_few(bad)}")
    return records


def _validate(rec: dict) -> None:
    source = rec.get("source")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    needed = ("text", "article") if source == "raw" else QA_FIELDS
    for name in needed:
        if name not in rec:
            raise ValueError(f"missing '{name}'")
        if not isinstance(rec[name], str):
            raise ValueError(f"field '{name}' is not a string")
    if not rec["text"].strip():
        raise ValueError("empty 'text'")
    if source != "raw" and not rec["output"].strip():
        raise ValueError("empty 'output'")
