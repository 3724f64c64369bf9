"""llamawiki.downloads, data/estudo/baixar.py and models/baixar.py, without the internet: the study's files from a
local HTTP server, the hub through fakes of huggingface_hub's functions (monkeypatched)."""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from llamawiki import downloads as dl
from llamawiki.fileio import UserError

ROOT = Path(__file__).resolve().parent.parent


# ---- a local HTTP server ----------------------------------------------------------------------------------------


class Server:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1; counts the requests per path."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.hits: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A local port nothing listens on (connection refused: what an offline machine sees first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


BODY = "Quem foi Tiradentes?;Um inconfidente.\r\n".encode("cp1252")
SHA = hashlib.sha256(BODY).hexdigest()


# ---- the study's files ------------------------------------------------------------------------------------------


def test_good_hash_writes_the_file_and_a_rerun_downloads_nothing(tmp_path):
    with Server({"/csv/dados.csv": BODY}) as srv:
        item = dl.PinnedFile(f"{srv.url}/csv/dados.csv", tmp_path / "estudo" / "dados.csv", SHA)
        lines: list[str] = []
        assert dl.fetch(item, log=lines.append) is True
        assert item.dest.read_bytes() == BODY and leftovers(item.dest.parent) == []
        assert lines == [f"{item.dest}: downloaded {len(BODY)} bytes (sha256 ok)"]
        assert dl.fetch(item, log=lines.append) is False  # already there: no request
        assert srv.hits == {"/csv/dados.csv": 1}
        assert lines[-1] == f"{item.dest}: already there (sha256 ok)"


def test_bad_hash_is_one_line_and_leaves_no_file(tmp_path):
    with Server({"/csv/dados.csv": BODY + b"x"}) as srv:
        item = dl.PinnedFile(f"{srv.url}/csv/dados.csv", tmp_path / "dados.csv", SHA)
        with pytest.raises(UserError) as e:
            dl.fetch(item, log=None)
    msg = one_line(e)
    assert msg.startswith(f"{item.url}: sha256 mismatch: expected {SHA}, got ")
    assert not item.dest.exists() and leftovers(tmp_path) == []


def test_a_wrong_file_already_there_is_replaced_and_kept_when_the_download_fails(tmp_path):
    dest = tmp_path / "dados.csv"
    dest.write_bytes(b"old")
    with Server({"/ok": BODY, "/bad": b"bad"}) as srv:
        with pytest.raises(UserError, match="sha256 mismatch"):
            dl.fetch(dl.PinnedFile(f"{srv.url}/bad", dest, SHA), log=None)
        assert dest.read_bytes() == b"old"  # the rename never happened
        lines: list[str] = []
        assert dl.fetch(dl.PinnedFile(f"{srv.url}/ok", dest, SHA), log=lines.append) is True
    assert dest.read_bytes() == BODY
    assert lines[0].startswith(f"warning: {dest}: sha256 differs")


def test_offline_and_http_errors_are_one_line(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/csv/dados.csv"
    with pytest.raises(UserError) as e:
        dl.fetch(dl.PinnedFile(url, tmp_path / "dados.csv", SHA), log=None)
    assert one_line(e).startswith(f"{url}: cannot download (") and one_line(e).endswith("offline?")
    with Server({}) as srv:
        with pytest.raises(UserError) as e:
            dl.fetch(dl.PinnedFile(f"{srv.url}/nada.csv", tmp_path / "dados.csv", SHA), log=None)
    assert one_line(e) == f"{srv.url}/nada.csv: HTTP 404 Not Found"
    assert list(tmp_path.iterdir()) == []


def test_the_table_is_the_pinned_commit_of_the_original_repository():
    items = dl.study_files("data/estudo")
    assert [i.dest.name for i in items] == [
        "dados.csv",
        "saida.json",
        "treino.json",
        "teste.json",
        "resposta_llama_simples.txt",
        "resposta_rga.txt",
        "resposta_fine.txt",
    ]
    assert items[0].url == (
        "https://raw.githubusercontent.com/AertySantos/llamawiki/10f59b24247e084a84807c12659d71e34ef0b178/csv/dados.csv"
    )
    assert all(len(i.sha256) == 64 and i.dest.parent == Path("data/estudo") for i in items)
    readme = (ROOT / "data" / "estudo" / "README.md").read_text(encoding="utf-8")
    assert dl.STUDY_COMMIT in readme and all(i.sha256 in readme for i in items)


def run_script(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or ROOT,
        timeout=120,
    )


def assert_one_line_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in err, err


def test_baixar_script_from_a_mirror_with_the_wrong_bytes(tmp_path, study_fixture):
    """The script end to end: the fixture's bytes are not the study's, so the first file fails its sha256."""
    files = {f"/{path}": (study_fixture / name).read_bytes() for name, (path, _) in dl.STUDY_FILES.items()}
    with Server(files) as srv:
        proc = run_script(ROOT / "data/estudo/baixar.py", "--dest", tmp_path / "estudo", "--base-url", srv.url)
    assert_one_line_error(proc, f"{srv.url}/csv/dados.csv: sha256 mismatch", "not written")
    assert not (tmp_path / "estudo" / "dados.csv").exists()
    proc = run_script(
        ROOT / "data/estudo/baixar.py", "--dest", tmp_path / "e2", "--base-url", f"http://127.0.0.1:{closed_port()}"
    )
    assert_one_line_error(proc, "cannot download", "offline?")


def test_baixar_script_with_the_real_files(tmp_path, real_study):
    files = {f"/{path}": (real_study / name).read_bytes() for name, (path, _) in dl.STUDY_FILES.items()}
    dest = tmp_path / "estudo"
    with Server(files) as srv:
        first = run_script(ROOT / "data/estudo/baixar.py", "--dest", dest, "--base-url", srv.url)
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip().endswith("7 file(s) downloaded, all checked by sha256")
        again = run_script(ROOT / "data/estudo/baixar.py", "--dest", dest, "--base-url", srv.url)
        assert again.returncode == 0 and "0 file(s) downloaded" in again.stdout
        assert set(srv.hits.values()) == {1}  # each file fetched once
    assert {p.name for p in dest.iterdir()} == set(dl.STUDY_FILES)


def test_compare_without_the_study_files_names_the_download_command(tmp_path, monkeypatch):
    from llamawiki import evaluation as ev

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as e:
        ev._study_dir({}, True)  # --study-answers with the default study_answers_dir
    assert one_line(e).startswith("data/estudo: study answer file(s) not found: resposta_llama_simples.txt")
    assert "`python data/estudo/baixar.py` (make estudo-dados)" in one_line(e)
    with pytest.raises(UserError, match=r"python data/estudo/baixar.py --dest outra"):
        ev._study_dir({}, "outra")
    for cfg in sorted((ROOT / "configs").glob("compare-*.yaml")):
        assert yaml.safe_load(cfg.read_text(encoding="utf-8"))["study_answers_dir"] == "data/estudo", cfg.name


# ---- models -----------------------------------------------------------------------------------------------------


def config_model_paths() -> set[str]:
    """Every model path configs/*.yaml read (top-level `model:` and `models.*.model`), but the embedded Gemma
    (made by `make models`) and the names of other entries."""
    from llamawiki.models import EMBEDDED_GGUF, EMBEDDED_HF

    found: set[str] = set()
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        values = [data.get("model")] + [m.get("model") for m in (data.get("models") or {}).values()]
        found.update(str(v) for v in values if v)
    embedded = {Path(EMBEDDED_GGUF).resolve(), Path(EMBEDDED_HF).resolve()}
    return {p for p in found if p != "embedded" and (ROOT / p).resolve() not in embedded}


def test_dry_run_plans_exactly_the_paths_the_configs_read_offline(tmp_path):
    proc = run_script(ROOT / "models/baixar.py", "--dry-run", env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    dests = {
        line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.strip().startswith("destination:")
    }
    assert dests == config_model_paths() == {m.dest for m in dl.MODELS}
    assert all(not Path(d).is_absolute() and d.startswith("models/") for d in dests)
    for m in dl.MODELS:
        assert f"  repo:        {m.repo_id}" in proc.stdout and f"  revision:    {m.revision}" in proc.stdout
    assert "exact size: from the hub when online" in proc.stdout and "dry run: nothing downloaded" in proc.stdout
    one = run_script(
        ROOT / "models/baixar.py", "--dry-run", "--only", "llama-2-13b-chat-q4ks", env={"HF_HUB_OFFLINE": "1"}
    )
    assert one.stdout.count("destination:") == 1 and "models/llama-2-13b-chat.Q4_K_S.gguf" in one.stdout
    bad = run_script(ROOT / "models/baixar.py", "--only", "llama-3")
    assert_one_line_error(bad, "--only: unknown model(s) llama-3; known: llama-2-13b-chat-hf")


def test_the_models_table_is_pinned():
    for m in dl.MODELS:
        assert m.revision and len(m.revision) == 40 and int(m.revision, 16) >= 0, m.name
        if m.filename:
            assert Path(m.dest).name == m.filename and m.sha256 and len(m.sha256) == 64
        else:
            assert m.allow_patterns and not any(p.endswith(".bin") for p in m.allow_patterns)


def test_models_script_offline_is_one_line(tmp_path):
    proc = run_script(
        ROOT / "models/baixar.py", "--root", tmp_path, "--only", "llama-2-13b-chat-q4km", env={"HF_HUB_OFFLINE": "1"}
    )
    assert_one_line_error(proc, "HF_HUB_OFFLINE=1 forbids downloads", "HF_HUB_OFFLINE=0")
    proc = run_script(
        ROOT / "models/baixar.py",
        "--root",
        tmp_path,
        "--only",
        "llama-2-13b-chat-q4km",
        env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"},
    )
    assert_one_line_error(proc, "TheBloke/Llama-2-13B-chat-GGUF: cannot reach huggingface.co (offline?)")
    assert list(tmp_path.iterdir()) == []


GGUF = b"GGUF" + bytes(range(200)) * 50
GGUF_SHA = hashlib.sha256(GGUF).hexdigest()
FOLDER = {
    "config.json": b'{"model_type": "llama"}',
    "model-00001-of-00001.safetensors": b"w" * 3000,
    "tokenizer.model": b"t" * 500,
    "pytorch_model.bin": b"not wanted",
}


def table(revision="a" * 40) -> list[dl.HubModel]:
    return [
        dl.HubModel(
            "tiny-gguf",
            "org/Tiny-GGUF",
            revision,
            "models/tiny.Q4_K_M.gguf",
            filename="tiny.Q4_K_M.gguf",
            sha256=GGUF_SHA,
        ),
        dl.HubModel(
            "tiny-hf",
            "org/Tiny-hf",
            revision,
            "models/tiny-hf",
            allow_patterns=("config.json", "model-*.safetensors", "tokenizer*"),
        ),
    ]


class FakeHub:
    """huggingface_hub's model_info / hf_hub_download / snapshot_download, serving in-memory files."""

    def __init__(self, monkeypatch, gguf: bytes = GGUF, fail: Exception | None = None, info_fail=None):
        import huggingface_hub

        self.calls: list[tuple] = []
        self.gguf, self.fail, self.info_fail = gguf, fail, info_fail
        monkeypatch.setattr(huggingface_hub.HfApi, "model_info", self.model_info)
        monkeypatch.setattr(huggingface_hub, "hf_hub_download", self.hf_hub_download)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def files(self, repo_id):
        return {"tiny.Q4_K_M.gguf": GGUF} if repo_id.endswith("GGUF") else FOLDER

    def model_info(self, repo_id, *, revision=None, files_metadata=False, timeout=None, **kw):
        self.calls.append(("model_info", repo_id, revision))
        if self.info_fail:
            raise self.info_fail
        sibs = [
            SimpleNamespace(rfilename=n, size=len(b), lfs=SimpleNamespace(sha256=hashlib.sha256(b).hexdigest()))
            for n, b in self.files(repo_id).items()
        ]
        return SimpleNamespace(sha=revision or "c" * 40, siblings=sibs)

    def hf_hub_download(self, repo_id, filename, *, revision=None, local_dir=None, **kw):
        self.calls.append(("hf_hub_download", repo_id, filename, revision))
        if self.fail:
            raise self.fail
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.gguf)
        return str(out)

    def snapshot_download(self, repo_id, *, revision=None, local_dir=None, allow_patterns=None, **kw):
        import fnmatch

        self.calls.append(("snapshot_download", repo_id, revision, tuple(allow_patterns or ())))
        if self.fail:
            raise self.fail
        for name, body in self.files(repo_id).items():
            if any(fnmatch.fnmatch(name, p) for p in allow_patterns):
                (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
                (Path(local_dir) / name).write_bytes(body)
        return str(local_dir)


def test_download_prints_sizes_first_then_checks_and_skips_on_rerun(tmp_path, monkeypatch):
    hub = FakeHub(monkeypatch)
    lines: list[str] = []
    dl.download_models(table(), root=tmp_path, log=lines.append)
    text = "\n".join(lines)
    first_download = text.index("tiny.Q4_K_M.gguf: ok")
    assert (
        text.index(f"size:        {dl.human_size(len(GGUF))} ({len(GGUF):,} bytes, 1 file(s), from the hub)")
        < first_download
    )
    assert "size:        3.52 KB (3,523 bytes, 3 file(s), from the hub)" in text  # the .bin is not selected
    assert "total: " in text and text.index("total: ") < first_download
    assert (tmp_path / "models/tiny.Q4_K_M.gguf").read_bytes() == GGUF
    got = {p.name for p in (tmp_path / "models/tiny-hf").iterdir()}
    assert got == {"config.json", "model-00001-of-00001.safetensors", "tokenizer.model", dl.STAMP}
    assert [c[0] for c in hub.calls] == ["model_info", "model_info", "hf_hub_download", "snapshot_download"]
    assert all(c[2] == "a" * 40 for c in hub.calls if c[0] == "model_info")  # at the pinned revision

    hub.calls.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a rerun needs no network: nothing asked of the hub
    lines.clear()
    dl.download_models(table(), root=tmp_path, log=lines.append)
    assert hub.calls == [] and all("already there" in line for line in lines) and len(lines) == 2


def test_sha256_mismatch_is_one_line_and_no_file_is_left(tmp_path, monkeypatch):
    FakeHub(monkeypatch, gguf=GGUF + b"!")
    with pytest.raises(UserError) as e:
        dl.download_models(table()[:1], root=tmp_path, log=None)
    dest = tmp_path / "models/tiny.Q4_K_M.gguf"
    assert one_line(e) == (
        f"{dest}: sha256 mismatch: expected {GGUF_SHA}, got "
        f"{hashlib.sha256(GGUF + b'!').hexdigest()}; the file was removed"
    )
    assert list((tmp_path / "models").iterdir()) == []


def test_gated_repository_is_one_line(tmp_path, monkeypatch):
    import httpx
    from huggingface_hub.errors import GatedRepoError

    response = httpx.Response(403, request=httpx.Request("GET", "https://huggingface.co/org/Tiny-GGUF"))
    FakeHub(monkeypatch, fail=GatedRepoError("403 Client Error.\nCannot access gated repo", response=response))
    with pytest.raises(UserError) as e:
        dl.download_models(table()[:1], root=tmp_path, log=None)
    assert one_line(e) == (
        "org/Tiny-GGUF: gated repository: accept its license at https://huggingface.co/"
        "org/Tiny-GGUF with your account, log in (`hf auth login` or HF_TOKEN) and run again"
    )


@pytest.mark.parametrize("where", ["model_info", "download"])
def test_offline_is_one_line(tmp_path, monkeypatch, where):
    import httpx
    from huggingface_hub.errors import LocalEntryNotFoundError

    if where == "model_info":
        FakeHub(monkeypatch, info_fail=httpx.ConnectError("[Errno -3] Temporary failure in name resolution"))
    else:
        FakeHub(
            monkeypatch,
            fail=LocalEntryNotFoundError(
                "An error happened while trying to locate the file on "
                "the Hub and we cannot find it in the local cache.\nMore"
            ),
        )
    with pytest.raises(UserError) as e:
        dl.download_models(table()[1:], root=tmp_path, log=None)
    assert one_line(e).startswith("org/Tiny-hf: cannot reach huggingface.co (offline?): ")
    assert not (tmp_path / "models/tiny-hf" / dl.STAMP).exists()


def test_unpinned_revision_warns_with_the_commit_it_got(tmp_path, monkeypatch, capsys):
    hub = FakeHub(monkeypatch)
    dl.download_models(table(revision=None)[:1], root=tmp_path, log=None)
    assert (
        "warning: tiny-gguf: revision not pinned (not verified offline); using commit " + "c" * 40
        in capsys.readouterr().err
    )
    assert ("hf_hub_download", "org/Tiny-GGUF", "tiny.Q4_K_M.gguf", "c" * 40) in hub.calls
