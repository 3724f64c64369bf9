import json
import sys

import pytest

from llamawiki.config import load_config
from llamawiki.fileio import UserError, atomic_open, cli, read_jsonl, write_jsonl


def test_atomic_open_keeps_old_file_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("antigo\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_open(out) as f:
            f.write("novo, incompleto")
            raise RuntimeError("boom")
    assert out.read_text(encoding="utf-8") == "antigo\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp file left behind


def test_jsonl_roundtrip_keeps_accents(tmp_path):
    recs = [{"input": "Qual é a capital?", "output": "Brasília"}]
    assert write_jsonl(tmp_path / "a.jsonl", recs) == 1
    assert "Brasília" in (tmp_path / "a.jsonl").read_text(encoding="utf-8")
    assert read_jsonl(tmp_path / "a.jsonl") == recs


def test_read_jsonl_reports_bad_line_numbers(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": \n{"a": 3}\n[1]\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.jsonl: 2 malformed JSON line\(s\): line 2, 4"):
        read_jsonl(p)


def test_read_jsonl_accepts_study_json_list(tmp_path):
    p = tmp_path / "saida.json"
    p.write_text(json.dumps([{"input": "q", "output": "r"}]), encoding="utf-8")
    assert read_jsonl(p) == [{"input": "q", "output": "r"}]


@pytest.mark.parametrize(
    "content,msg", [(None, "file not found"), ("", "file is empty"), (b"\xff\xfe\x00", "not UTF-8")]
)
def test_read_jsonl_errors(tmp_path, content, msg):
    p = tmp_path / "x.jsonl"
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif content is not None:
        p.write_text(content)
    with pytest.raises(UserError, match=msg):
        read_jsonl(p)


def test_cli_prints_one_line_and_exit_code(capsys):
    @cli
    def main():
        raise UserError("dados.csv: linha 3 sem ';'")

    assert main() == 2
    err = capsys.readouterr().err
    assert err == "error: dados.csv: linha 3 sem ';'\n"


def test_config_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("lr: 0.001\nlora:\n  r: 8\n  alpha: 16\n", encoding="utf-8")
    cfg = load_config(p, ["lora.r=32", "max_steps=5", "name=teste"], defaults={"seed": 42, "lr": 1})
    assert cfg == {"seed": 42, "lr": 0.001, "lora": {"r": 32, "alpha": 16}, "max_steps": 5, "name": "teste"}


def test_config_errors(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(UserError, match="invalid YAML"):
        load_config(bad)
    with pytest.raises(UserError, match="expected key=value"):
        load_config(None, ["semigual"])


def test_atomic_open_output_has_normal_permissions(tmp_path):
    import os
    import stat

    umask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "x.txt") as f:
            f.write("ok")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ('id,pergunta,resposta_referencia\n1,"Qual a capital?,Brasília\n2,Quem?,Pedro\n', 2, "unterminated quote"),
        ('id,pergunta,resposta_referencia\n1,a,b\n2,"Quem" x,Pedro\n3,c,d\n', 3, "expected after"),
        ('id,pergunta,resposta_referencia\n1,"uma célula\nem duas linhas",b\n2,"x,y\n', 4, "unterminated quote"),
    ],
)
def test_read_csv_quote_error_names_the_line_the_record_starts_on(tmp_path, text, line, needle):
    from llamawiki.fileio import read_csv

    p = tmp_path / "q.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as e:
        read_csv(p)
    assert f"{p}: line {line}: " in str(e.value) and needle in str(e.value)


def test_read_csv_keeps_a_quoted_cell_that_spans_lines(tmp_path):
    from llamawiki.fileio import read_csv

    p = tmp_path / "q.csv"
    p.write_text('id,pergunta\n1,"uma célula\nem duas linhas"\n2,b\n', encoding="utf-8")
    assert [r["pergunta"] for r in read_csv(p)[1]] == ["uma célula\nem duas linhas", "b"]


def test_cli_sigterm_and_progress_bar(capsys):
    """SIGTERM ends like Ctrl-C (143, one line with what the script saved); an error after an unfinished
    progress bar starts on its own line."""
    import os
    import signal

    @cli
    def killed():
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not reached")

    @cli
    def interrupted_with_note():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt as e:
            raise type(e)("out.jsonl: 3 saved; run again to resume") from None

    @cli
    def bar_then_error():
        sys.stderr.write("\rindexing: 40%|####      |")
        raise UserError("idx: cannot write")

    before = signal.getsignal(signal.SIGTERM)
    assert killed() == 143
    assert capsys.readouterr().err == "terminated (SIGTERM)\n"
    assert interrupted_with_note() == 143
    assert capsys.readouterr().err == "terminated (SIGTERM): out.jsonl: 3 saved; run again to resume\n"
    assert bar_then_error() == 2
    assert capsys.readouterr().err.endswith("|\nerror: idx: cannot write\n")
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the script's only while it runs
