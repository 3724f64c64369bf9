"""Small I/O helpers shared by every stage: the CLI error convention, atomic writes, hashing, JSONL."""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any


class UserError(Exception):
    """Bad input or a missing prerequisite: printed as one line (``error: <path>: <problem>``), exit 2.

    Raise it with the file and the problem in the message; never let a traceback reach a researcher for
    something they can fix.
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a scheduler's time limit) inside a ``@cli`` script: unwinds like Ctrl-C, so whatever
    saves work on an interruption saves it, and ends with one line and exit 143 (128 + 15)."""


class _LineTracker:
    """sys.stderr, remembering whether the last text written to it ended a line (a progress bar ends with
    ``\r``, not ``\n``): so an error line can start at column 0 instead of being glued onto the bar."""

    def __init__(self, stream: Any):
        self._stream = stream
        self.at_line_start = True

    def write(self, s: str) -> int:
        if s:
            self.at_line_start = s.endswith("\n")
        return self._stream.write(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _end_progress_line() -> None:
    """Before an error line: close every open tqdm bar (a bar still open would redraw over the message), then
    end the line a bar left unfinished."""
    tqdm_mod = sys.modules.get("tqdm")
    if tqdm_mod is not None:
        for bar in list(getattr(tqdm_mod.tqdm, "_instances", ())):
            with contextlib.suppress(Exception):
                bar.close()
    err = sys.stderr
    with contextlib.suppress(Exception):
        if isinstance(err, _LineTracker) and not err.at_line_start:
            err.write("\n")
        err.flush()


def _error(message: str) -> None:
    _end_progress_line()
    print(message, file=sys.stderr, flush=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


def utf8_output() -> None:
    """stdout/stderr in UTF-8 whatever the locale (``LC_ALL=C`` gives ASCII, and the first "é" of an answer or a
    message would end the run with UnicodeEncodeError); a character that cannot be written becomes "?"."""
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if encoding != "utf8" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(encoding="utf-8", errors="replace")
            except (ValueError, OSError):  # a stream already written to in another encoding, a closed one
                pass


def cli(main: Callable[..., int | None]) -> Callable[..., int]:
    """Decorate a script's ``main``: UserError or OSError -> one line on stderr, Ctrl-C -> exit 130, SIGTERM ->
    exit 143 (with what was saved, when the script says so), no traceback; the line starts at column 0 even after
    a progress bar."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        import signal
        import threading

        utf8_output()

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        stderr = sys.stderr
        if not isinstance(stderr, _LineTracker):
            sys.stderr = _LineTracker(stderr)
        try:
            return main(*args, **kwargs) or 0
        except UserError as e:
            _error(f"error: {e}")
            return e.exit_code
        except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM; the message, if any, says what was saved
            what, code = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else ("interrupted", 130)
            _error(f"{what}: {e}" if str(e) else what)
            return code
        except BrokenPipeError:
            return 0
        except OSError as e:  # disk full, permissions, a vanished file: the file and the system's reason
            where = e.filename if e.filename is not None else "output"
            _error(f"error: {where}: {e.strerror or e}")
            return 1
        finally:
            sys.stderr = stderr
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


def check_distinct_paths(
    outputs: dict[str, str | os.PathLike[str] | None], inputs: Iterable[str | os.PathLike[str]] = ()
) -> None:
    """Refuse an output that is a directory, that is one of the inputs, or that is another output (same file
    after resolving links and ``..``): a run must never overwrite what it reads or what it just wrote."""
    seen: dict[Path, str] = {}
    ins = {Path(p).resolve(): str(p) for p in inputs}
    for flag, out in outputs.items():
        if out is None:
            continue
        real = Path(out).resolve()
        if real.is_dir():
            raise UserError(f"{out}: is a directory; give a file name ({flag})")
        if real in ins:
            raise UserError(f"{out}: {flag} is the input file {ins[real]}; it would be overwritten")
        if real in seen:
            raise UserError(f"{out}: {flag} and {seen[real]} are the same file; one output would overwrite the other")
        seen[real] = flag


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds.

    Whatever was at ``path`` before stays intact if writing fails or is interrupted.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"{path}: cannot write: {e.strerror or e}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the output the permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except OSError as e:
        # a write to the temporary file (disk full, quota, I/O error) fails as the output, which is left as it was
        if e.filename in (None, str(tmp_path), tmp_path) or e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise UserError(
                f"{path}: cannot write: {e.strerror or e}; the previous file, if any, is left unchanged"
            ) from None
        raise
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", encoding: str | None = "utf-8"):
    """``open`` for writing that only replaces ``path`` when the block completes."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict]) -> int:
    """Write records as JSON lines atomically; return the count."""
    n = 0
    with atomic_open(path) as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_text(path: str | os.PathLike[str], what: str = "file", encoding: str = "utf-8") -> str:
    """A UTF-8 text file; missing (or a folder) and non-UTF-8 bytes are one-line UserErrors."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found" if not path.is_dir() else f"{path}: is a directory, not a file")
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_csv(path: str | os.PathLike[str], what: str = "file") -> tuple[list[str], list[dict[str, str]]]:
    """A UTF-8 CSV (a BOM is fine) as ``(columns, rows)``, names and keys stripped, values never None.
    A missing file, non-UTF-8 bytes or a row with more fields than the header raise one-line UserErrors."""
    path = Path(path)
    text = read_text(path, what, encoding="utf-8-sig")
    # the real lines, terminators kept: the reader counts file lines and a quoted cell may span lines
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    rows = []
    start = 1  # the file line the record being read starts on
    try:
        columns = [c.strip() for c in (reader.fieldnames or [])]
        start = reader.line_num + 1
        for n, raw in enumerate(reader, 1):
            if None in raw:
                raise UserError(f"{path}: line {start}: row {n}: more fields than columns")
            rows.append({(k or "").strip(): (v or "") for k, v in raw.items()})
            start = reader.line_num + 1
    except csv.Error as e:  # an unterminated quote would otherwise swallow the rest of the file into one field
        if "end of data" in str(e):  # the quote opened on the record's first line runs to the end of the file
            raise UserError(
                f"{path}: line {start}: unterminated quote (the quoted field runs to the end of the file)"
            ) from None
        raise UserError(f"{path}: line {start}: {e} (an unterminated or stray quote?)") from None
    return columns, rows


def read_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    """Read a JSONL file (or a JSON list, the study's format). Bad lines raise UserError with line numbers."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise UserError(f"{path}: file is empty")
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if not all(isinstance(x, dict) for x in data):
            raise UserError(f"{path}: expected a JSON list of objects")
        return data
    if path.suffix.lower() == ".json" and text.lstrip().startswith("{"):
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # JSON lines in a .json file: read as JSONL below
        if isinstance(whole, dict):
            keys = ", ".join(list(whole)[:5])
            raise UserError(f"{path}: expected a JSON list of objects, found one object (keys: {keys})")
    records, bad = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(lineno)
            continue
        if not isinstance(rec, dict):
            bad.append(lineno)
            continue
        records.append(rec)
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise UserError(f"{path}: {len(bad)} malformed JSON line(s): line {shown}")
    return records


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def library_versions(
    names: Iterable[str] = (
        "torch",
        "transformers",
        "peft",
        "trl",
        "datasets",
        "accelerate",
        "bitsandbytes",
        "langchain",
        "langchain-core",
        "langchain-community",
        "faiss-cpu",
        "sentence-transformers",
        "llama-cpp-python",
    ),
) -> dict[str, str | None]:
    """Installed versions of the libraries a result depends on (written beside every output)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


# The first four bytes of every GGUF file (models and LoRA adapters alike).
GGUF_MAGIC = b"GGUF"


def looks_local(name: str | os.PathLike[str]) -> bool:
    """True when a model/embeddings name is meant as a local path rather than a Hugging Face hub id.

    A hub id is ``owner/name``; anything that exists, starts with ``.``, ``/`` or ``~``, has more than one
    slash, or starts with an existing folder (``models/missing``) is a path, so a typo gets "not found" instead
    of a hub download attempt.
    """
    name = str(name)
    p = Path(name).expanduser()
    return (
        p.exists()
        or name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or (len(p.parts) > 1 and Path(p.parts[0]).is_dir())
    )


def use_offline_hub() -> None:
    """Never reach a model hub at run time (the machines this runs on have no access): local files only.

    Every script calls this before importing transformers or sentence-transformers; an explicit setting in the
    environment wins.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # bitsandbytes warns on import on CPUs without its optional kernels: noise before every one-line error
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def first_few(items: Sequence[str], n: int = 5) -> str:
    """``"a, b, c, d, e and 3 more"``: the first ``n`` items of a list for a one-line message."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


class JsonlCache:
    """A JSONL file of ``{"key": ..., ...}`` records, appended + flushed + fsynced as soon as each exists, so an
    interrupted run resumes where it stopped (compare.py's respostas.jsonl/juiz.jsonl, the LLM questions' cache).
    A line cut by an interruption is skipped with one warning and its work done again."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.by_key: dict[str, dict] = {}
        self.by_loose: dict[str, dict] = {}
        self.skipped_lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    self.skipped_lines += 1  # a line cut by an interruption: that answer is generated again
                    continue
                if isinstance(rec, dict) and "key" in rec:
                    self._index(rec)
                else:
                    self.skipped_lines += 1
            if self.skipped_lines:
                print(
                    f"warning: {self.path}: {self.skipped_lines} unreadable line(s) skipped (cut by an "
                    "interruption?); their results are generated again",
                    file=sys.stderr,
                )

    def _index(self, rec: dict) -> None:
        self.by_key[rec["key"]] = rec
        if rec.get("loose_key"):
            self.by_loose[rec["loose_key"]] = rec

    def get(self, key: str, loose_key: str | None = None) -> dict | None:
        rec = self.by_key.get(key)
        if rec is None and loose_key is not None:
            rec = self.by_loose.get(loose_key)
        return rec

    def append(self, rec: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # the previous run died mid-line: start a fresh line
                    f.write(b"\n")
            f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self._index(rec)


def git_commit(root: Path | None = None) -> dict | None:
    """The checkout's HEAD commit and whether tracked files have uncommitted changes; None outside git."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None
