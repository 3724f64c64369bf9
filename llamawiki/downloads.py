"""Pinned, checksummed downloads: the original study's files (``data/estudo/``) and the models the configs name.

Two tables say what is fetched; nothing is decided by the network:

* ``STUDY_FILES``: the study's data and published answers, from github.com/AertySantos/llamawiki at one commit,
  each checked by its sha256 (``fetch``: URL -> temporary file -> sha256 -> rename; a file already there with
  the right hash is not downloaded again). Script: ``data/estudo/baixar.py`` (``make estudo-dados``).
* ``MODELS``: the Llama-2-13b-chat weights of configs/*.yaml, from the Hugging Face hub at pinned commits, into
  the local paths the configs read (``models/...``), so that ``HF_HUB_OFFLINE=1`` works afterwards; the GGUF files
  are checked by sha256. Script: ``models/baixar.py`` (``make modelos-estudo``). huggingface_hub is imported only
  when a model is downloaded; ``--dry-run`` prints the plan from the table and needs no network.

Every failure a user can fix (offline, hash mismatch, gated repository) is one ``UserError`` line.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .fileio import UserError, atomic_path, sha256_file

Log = Callable[[str], None]

# ---------------------------------------------------------------------------------------------------------------
# The study's files
# ---------------------------------------------------------------------------------------------------------------

STUDY_REPO = "AertySantos/llamawiki"
STUDY_COMMIT = "10f59b24247e084a84807c12659d71e34ef0b178"
STUDY_BASE_URL = f"https://raw.githubusercontent.com/{STUDY_REPO}/{STUDY_COMMIT}"
STUDY_DIR = "data/estudo"
STUDY_COMMAND = "python data/estudo/baixar.py"  # = make estudo-dados

STUDY_FILES: dict[str, tuple[str, str]] = {  # local name in data/estudo/ -> (path in the repository, sha256)
    "dados.csv": ("csv/dados.csv", "050d2f6e94fb7caf070b0cc3943cae5e2203fb4a851fe261fc6ed8590e2dacf0"),
    "saida.json": ("json/saida.json", "2405116b4cb380077774d6744278fdcd0573f2b392b0fe3a27c64432108a9228"),
    "treino.json": ("json/treino.json", "441b9c1e96abb2ecc29ae181bdb69ff53614edf6cb5c63791baeb234564c285f"),
    "teste.json": ("json/teste.json", "44cde63f38569c973b19c8bdec46c5ecf4a3fe61c4b492386d9794646446c38d"),
    "resposta_llama_simples.txt": (
        "resposta_llama_simples.txt",
        "6108b8bb2e5841119ce4d77168c02666603e0617a213df969f2e57e8156594d4",
    ),
    "resposta_rga.txt": ("resposta_rga.txt", "c2265ce4ea17dafda33ba0533b9d822771937bed41b16730fded404df3622e7c"),
    "resposta_fine.txt": ("resposta_fine.txt", "c6ecca475d3069461ec211ba4dfecf4b67f307be12bef2873bb1a8a94fab7b4a"),
}


@dataclass(frozen=True)
class PinnedFile:
    url: str
    dest: Path
    sha256: str


def study_files(dest_dir: str | os.PathLike[str] = STUDY_DIR, base_url: str = STUDY_BASE_URL) -> list[PinnedFile]:
    """The study's files as (URL, destination, sha256), in ``STUDY_FILES`` order."""
    base = base_url.rstrip("/")
    return [PinnedFile(f"{base}/{path}", Path(dest_dir) / name, sha) for name, (path, sha) in STUDY_FILES.items()]


def _say(log: Log | None, msg: str) -> None:
    if log is not None:
        log(msg)


def fetch(item: PinnedFile, timeout: float = 60.0, log: Log | None = print) -> bool:
    """Put ``item.url`` at ``item.dest`` if its sha256 is ``item.sha256``; True when downloaded, False when the
    file was already there with that hash. The bytes go to a temporary file next to the destination and are
    renamed only after the check: an interrupted, offline or mismatched download leaves nothing behind (and an
    older file at the destination as it was)."""
    dest = item.dest
    if dest.is_file():
        if sha256_file(dest) == item.sha256:
            _say(log, f"{dest}: already there (sha256 ok)")
            return False
        _say(log, f"warning: {dest}: sha256 differs from the pinned one; downloading it again")
    h = hashlib.sha256()
    size = 0
    with atomic_path(dest) as tmp:
        try:
            with urllib.request.urlopen(item.url, timeout=timeout) as resp, open(tmp, "wb") as out:
                while block := resp.read(1 << 16):
                    h.update(block)
                    out.write(block)
                    size += len(block)
        except urllib.error.HTTPError as e:
            raise UserError(f"{item.url}: HTTP {e.code} {e.reason}") from None
        except urllib.error.URLError as e:
            raise UserError(f"{item.url}: cannot download ({_reason(e.reason)}); offline?") from None
        except (OSError, http.client.HTTPException) as e:  # reset, timeout mid-transfer, truncated body
            if getattr(e, "filename", None) is not None:  # a local file (the temporary one), not the network
                raise
            raise UserError(f"{item.url}: cannot download ({_reason(e)}); offline?") from None
        got = h.hexdigest()
        if got != item.sha256:
            raise UserError(
                f"{item.url}: sha256 mismatch: expected {item.sha256}, got {got} ({size} bytes); {dest} not written"
            )
    _say(log, f"{dest}: downloaded {size:,} bytes (sha256 ok)")
    return True


def _reason(e: object) -> str:
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def download_study(
    dest_dir: str | os.PathLike[str] = STUDY_DIR,
    base_url: str = STUDY_BASE_URL,
    timeout: float = 60.0,
    log: Log | None = print,
) -> int:
    """Download the study's files that are missing (or wrong) into ``dest_dir``; returns how many were fetched."""
    return sum(fetch(item, timeout=timeout, log=log) for item in study_files(dest_dir, base_url))


def missing_study_files(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> list[str]:
    """The study's files (all, or ``names``) that are not in ``folder``."""
    return [n for n in (names if names is not None else STUDY_FILES) if not (Path(folder) / n).is_file()]


# ---------------------------------------------------------------------------------------------------------------
# Models (Hugging Face hub)
# ---------------------------------------------------------------------------------------------------------------

MODELS_COMMAND = "python models/baixar.py"  # = make modelos-estudo
LLAMA2_LICENSE = "Llama 2 Community License (https://ai.meta.com/llama/license/)"


@dataclass(frozen=True)
class HubModel:
    """One model of the configs: where it comes from (repo at a commit) and the local path the configs read.

    ``filename`` set: one file (a GGUF) saved as ``dest`` (whose name is ``filename``), checked by ``sha256``.
    ``filename`` None: a folder snapshot of the files matching ``allow_patterns`` saved in ``dest``.
    ``revision`` None means no commit could be verified: the download warns and names the commit it got.
    """

    name: str
    repo_id: str
    revision: str | None
    dest: str
    filename: str | None = None
    sha256: str | None = None
    allow_patterns: tuple[str, ...] = ()
    approx_size: str = ""
    license: str = LLAMA2_LICENSE
    used_by: str = ""

    def files_label(self) -> str:
        return self.filename or ", ".join(self.allow_patterns)


# Revisions and sha256 as published on huggingface.co (the file pages show the LFS sha256 at that commit).
# TheBloke/Llama-2-13B-chat-GGUF@810506a6: the commit that added Q4_K_M; Q4_K_S (commit 2226d187) is in it too.
MODELS: tuple[HubModel, ...] = (
    HubModel(
        name="llama-2-13b-chat-hf",
        repo_id="NousResearch/Llama-2-13b-chat-hf",
        revision="2a92285e19cc9a5a77014acc7685021714125bee",
        dest="models/llama-2-13b-chat-hf",
        allow_patterns=(
            "config.json",
            "generation_config.json",
            "model-*.safetensors",
            "model.safetensors.index.json",
            "tokenizer*",
            "special_tokens_map.json",
            "added_tokens.json",
            "LICENSE.txt",
            "USE_POLICY.md",
        ),
        approx_size="26 GB",
        used_by="fine-tuning QLoRA (configs/llama2-13b-qlora.yaml, estudo-llama2-13b.yaml), chat_gpu.py, "
        "compare-llama2-13b.yaml, compare-estudo.yaml (finetuned), models.yaml",
    ),
    HubModel(
        name="llama-2-13b-chat-q4km",
        repo_id="TheBloke/Llama-2-13B-chat-GGUF",
        revision="810506a61b427e439bad1f09c23b1e4422e6b2b8",
        dest="models/llama-2-13b-chat.Q4_K_M.gguf",
        filename="llama-2-13b-chat.Q4_K_M.gguf",
        sha256="7ddfe27f61bf994542c22aca213c46ecbd8a624cca74abff02a7b5a8c18f787f",
        approx_size="7.9 GB",
        used_by="llama.cpp on the CPU: chat_cpu.py, models.yaml (llama2-13b-chat-cpu)",
    ),
    HubModel(
        name="llama-2-13b-chat-q4ks",
        repo_id="TheBloke/Llama-2-13B-chat-GGUF",
        revision="810506a61b427e439bad1f09c23b1e4422e6b2b8",
        dest="models/llama-2-13b-chat.Q4_K_S.gguf",
        filename="llama-2-13b-chat.Q4_K_S.gguf",
        sha256="106d3b9c0a8e24217f588f2af44fce95ec8906c1ea92ca9391147ba29cc4d2a4",
        approx_size="7.4 GB",
        used_by="the study's GGUF: compare-estudo.yaml (base, rag)",
    ),
)

STAMP = ".baixado.json"  # written into a folder snapshot once every file is there: repo, revision, files


def select_models(only: Sequence[str] | None = None, models: Sequence[HubModel] = MODELS) -> list[HubModel]:
    """The models named by ``--only`` (all when empty); an unknown name is one UserError listing the names."""
    if not only:
        return list(models)
    by_name = {m.name: m for m in models}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        raise UserError(f"--only: unknown model(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(only)]


def human_size(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass
class RemoteFiles:
    """What the hub says about a model at its revision: the commit, and the selected files with their sizes."""

    commit: str | None
    files: dict[str, int | None]  # repo path -> size in bytes
    lfs_sha256: dict[str, str]  # repo path -> LFS sha256 (when the hub gives it)

    @property
    def total(self) -> int | None:
        sizes = list(self.files.values())
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]


def _matches(path: str, model: HubModel) -> bool:
    if model.filename:
        return path == model.filename
    return any(fnmatch.fnmatch(path, pat) for pat in model.allow_patterns)


def remote_files(model: HubModel, timeout: float | None = 30.0) -> RemoteFiles:
    """The selected files of ``model`` and their sizes, from the hub's metadata (one request)."""
    import huggingface_hub

    with hub_errors(model):
        info = huggingface_hub.HfApi().model_info(
            model.repo_id, revision=model.revision, files_metadata=True, timeout=timeout
        )
    files: dict[str, int | None] = {}
    lfs: dict[str, str] = {}
    for sib in info.siblings or []:
        if _matches(sib.rfilename, model):
            files[sib.rfilename] = sib.size
            sha = getattr(sib.lfs, "sha256", None) if sib.lfs is not None else None
            if sha:
                lfs[sib.rfilename] = sha
    if model.filename and model.filename not in files:
        raise UserError(f"{model.repo_id}: no file {model.filename} at revision {model.revision or info.sha}")
    if not files:
        raise UserError(
            f"{model.repo_id}: no file matches {model.files_label()} at revision {model.revision or info.sha}"
        )
    return RemoteFiles(getattr(info, "sha", None), files, lfs)


def _network_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror, urllib.error.URLError]
    for mod, name in (
        ("httpx", "TransportError"),
        ("requests.exceptions", "ConnectionError"),
        ("requests.exceptions", "Timeout"),
    ):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errs)


class hub_errors:
    """``with hub_errors(model):`` turns the hub's exceptions into one UserError line naming the repository."""

    def __init__(self, model: HubModel):
        self.model = model

    def __enter__(self) -> hub_errors:
        return self

    def __exit__(self, typ, exc, tb) -> bool:
        if exc is None or isinstance(exc, (UserError, KeyboardInterrupt)):
            return False
        from huggingface_hub import errors as hf

        repo, rev = self.model.repo_id, self.model.revision
        url = f"https://huggingface.co/{repo}"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, hf.GatedRepoError):
            msg = (
                f"{repo}: gated repository: accept its license at {url} with your account, log in "
                "(`hf auth login` or HF_TOKEN) and run again"
            )
        elif isinstance(exc, hf.OfflineModeIsEnabled) or (
            isinstance(exc, hf.LocalEntryNotFoundError) and os.environ.get("HF_HUB_OFFLINE") == "1"
        ):
            msg = f"{repo}: HF_HUB_OFFLINE=1 forbids downloads: run with HF_HUB_OFFLINE=0 (`make modelos-estudo` does)"
        elif isinstance(exc, (hf.LocalEntryNotFoundError, *_network_errors())):
            msg = f"{repo}: cannot reach huggingface.co (offline?): {first}"
        elif isinstance(exc, hf.RepositoryNotFoundError):
            msg = f"{repo}: repository not found on huggingface.co (or private: log in with `hf auth login`)"
        elif isinstance(exc, hf.RevisionNotFoundError):
            msg = f"{repo}: revision {rev} not found"
        elif isinstance(exc, hf.EntryNotFoundError):
            msg = f"{repo}: {self.model.files_label()} not found at revision {rev}: {first}"
        elif isinstance(exc, hf.HfHubHTTPError):
            msg = f"{repo}: {first}"
        else:
            return False
        raise UserError(msg) from None


def describe_plan(
    models: Sequence[HubModel], root: str | os.PathLike[str] = ".", remote: dict[str, RemoteFiles] | None = None
) -> list[str]:
    """The plan as printed lines: per model its repo, revision, files, size, destination, sha256, license."""
    lines: list[str] = [f"models (paths relative to {Path(root).resolve()}):"]
    total, known = 0, True
    for m in models:
        r = (remote or {}).get(m.name)
        if r is not None and r.total is not None:
            size = f"{human_size(r.total)} ({r.total:,} bytes, {len(r.files)} file(s), from the hub)"
            total += r.total
        else:
            size = f"~{m.approx_size} (exact size: from the hub when online)"
            known = False
        lines += [
            f"{m.name}",
            f"  repo:        {m.repo_id}",
            f"  revision:    {m.revision or 'None (not verified offline: the commit received is printed)'}",
            f"  files:       {m.files_label()}",
            f"  size:        {size}",
            f"  destination: {m.dest}",
        ]
        if m.sha256:
            lines.append(f"  sha256:      {m.sha256}")
        lines += [f"  license:     {m.license}", f"  used by:     {m.used_by}"]
    if known and models:
        lines.append(f"total: {human_size(total)} ({total:,} bytes)")
    return lines


def _gguf_metadata_file(dest: Path) -> Path:
    """Where hf_hub_download(local_dir=...) records what it downloaded (huggingface_hub's local-dir cache)."""
    return dest.parent / ".cache" / "huggingface" / "download" / f"{dest.name}.metadata"


def _snapshot_complete(model: HubModel, dest: Path) -> bool:
    """The folder has a stamp for this revision and every file it lists, with its size."""
    stamp = dest / STAMP
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if data.get("repo_id") != model.repo_id or (model.revision and data.get("revision") != model.revision):
        return False
    files = data.get("files") or {}
    return bool(files) and all(
        (dest / f).is_file() and (size is None or (dest / f).stat().st_size == size) for f, size in files.items()
    )


def already_there(model: HubModel, root: str | os.PathLike[str] = ".") -> bool:
    """True when ``model`` is complete at its destination (GGUF: its sha256; folder: its stamp), no network."""
    dest = Path(root) / model.dest
    if model.filename:
        return dest.is_file() and model.sha256 is not None and sha256_file(dest) == model.sha256
    return _snapshot_complete(model, dest)


def download_model(
    model: HubModel, root: str | os.PathLike[str] = ".", remote: RemoteFiles | None = None, log: Log | None = print
) -> Path:
    """Download one model to ``root/model.dest`` (huggingface_hub resumes an interrupted file) and check it."""
    import huggingface_hub

    dest = Path(root) / model.dest
    revision = model.revision or (remote.commit if remote else None)
    if model.revision is None:
        print(
            f"warning: {model.name}: revision not pinned (not verified offline); using commit "
            f"{revision or 'main'}: pin it in llamawiki/downloads.py",
            file=sys.stderr,
        )
    if model.filename:
        if remote and model.sha256 and remote.lfs_sha256.get(model.filename) not in (None, model.sha256):
            raise UserError(
                f"{model.repo_id}: {model.filename} at {revision} has sha256 "
                f"{remote.lfs_sha256[model.filename]} on the hub, not the pinned {model.sha256}"
            )
        with hub_errors(model):
            got = Path(
                huggingface_hub.hf_hub_download(
                    model.repo_id, model.filename, revision=revision, local_dir=str(dest.parent)
                )
            )
        if got.resolve() != dest.resolve():
            raise UserError(f"{got}: downloaded to an unexpected path (expected {dest})")
        if model.sha256:
            _say(log, f"{dest}: checking sha256 ...")
            actual = sha256_file(dest)
            if actual != model.sha256:
                dest.unlink(missing_ok=True)
                _gguf_metadata_file(dest).unlink(missing_ok=True)
                raise UserError(f"{dest}: sha256 mismatch: expected {model.sha256}, got {actual}; the file was removed")
        _say(log, f"{dest}: ok ({human_size(dest.stat().st_size)}, sha256 {model.sha256 or 'not pinned'})")
        return dest
    with hub_errors(model):
        huggingface_hub.snapshot_download(
            model.repo_id, revision=revision, local_dir=str(dest), allow_patterns=list(model.allow_patterns)
        )
    files = (
        remote.files
        if remote
        else {
            str(p.relative_to(dest)): p.stat().st_size
            for p in dest.rglob("*")
            if p.is_file() and ".cache" not in p.relative_to(dest).parts and p.name != STAMP
        }
    )
    missing = [f for f in files if not (dest / f).is_file()]
    if missing:
        raise UserError(f"{dest}: download incomplete, missing {', '.join(missing[:5])}; run again to resume")
    with atomic_path(dest / STAMP) as tmp:
        tmp.write_text(
            json.dumps({"repo_id": model.repo_id, "revision": revision, "files": files}, indent=1), encoding="utf-8"
        )
    _say(log, f"{dest}: ok ({len(files)} file(s), {human_size(sum(s or 0 for s in files.values()))})")
    return dest


def download_models(
    models: Sequence[HubModel], root: str | os.PathLike[str] = ".", dry_run: bool = False, log: Log | None = print
) -> None:
    """The one command behind ``models/baixar.py``: print the plan (with sizes from the hub when online), then
    download what is not already there. ``dry_run``: the plan only, from the table, no network needed."""
    if dry_run:
        remote: dict[str, RemoteFiles] = {}
        if os.environ.get("HF_HUB_OFFLINE") != "1":
            for m in models:
                try:
                    remote[m.name] = remote_files(m, timeout=10.0)
                except (UserError, ImportError):
                    break  # offline or no huggingface_hub: the plan from the table, without exact sizes
        for line in describe_plan(models, root, remote):
            _say(log, line)
        _say(log, "dry run: nothing downloaded")
        return
    todo = []
    for m in models:
        if already_there(m, root):
            _say(log, f"{Path(root) / m.dest}: already there ({m.repo_id}@{(m.revision or '')[:8]}), skipped")
        else:
            todo.append(m)
    if not todo:
        return
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise UserError(
            f"{todo[0].dest}: not downloaded: HF_HUB_OFFLINE=1 forbids downloads; run with "
            "HF_HUB_OFFLINE=0 (`make modelos-estudo` does)"
        )
    remote = {m.name: remote_files(m) for m in todo}
    for line in describe_plan(todo, root, remote):
        _say(log, line)
    for m in todo:
        download_model(m, root, remote[m.name], log=log)
