"""llamawiki.records: reading/validating record files and importing QA files."""

from __future__ import annotations

import json

import pytest

from llamawiki import prompt
from llamawiki.fileio import UserError
from llamawiki.records import make_record, read_dataset, read_qa_csv, read_qa_json
from llamawiki.text import decode_text


def test_import_the_studys_latin1_csv(study_fixture):
    """dados.csv's format: `pergunta;resposta`, no header, cp1252/Latin-1, CRLF."""
    from conftest import STUDY_PAIRS

    raw = (study_fixture / "dados.csv").read_bytes()
    assert b"\x96" in raw and b"\r\n" in raw and b"\xe9" in raw  # cp1252 en dash, CRLF, Latin-1 "é"
    records = read_qa_csv(study_fixture / "dados.csv")
    assert len(records) == raw.count(b"\r\n") == len(STUDY_PAIRS)
    assert [(r["input"], r["output"]) for r in records] == STUDY_PAIRS
    first = records[0]
    assert first["source"] == "csv" and first["article"] == ""
    assert first["text"] == prompt.build_example(first["input"], first["output"])
    texts = " ".join(r["input"] + r["output"] for r in records)
    assert "–" in texts and "Áurea" in texts and '"A Cobra Vai Fumar"' in texts  # en dash, accents, quotes kept
    assert "\x96" not in texts and "Ã" not in texts and "\r" not in texts


def test_import_the_real_studys_csv(real_study):
    records = read_qa_csv(real_study / "dados.csv")
    raw = (real_study / "dados.csv").read_bytes()
    assert len(records) == raw.count(b"\r\n") == 269
    first = records[0]
    assert first["input"] == "Quando ocorreu a chegada dos primeiros humanos na América do Sul?"
    assert first["output"].startswith("A chegada dos primeiros humanos na América do Sul ocorreu há")
    texts = " ".join(r["input"] + r["output"] for r in records)
    assert "–" in texts  # cp1252 0x96 decoded as an en dash, not a control character
    assert "\x96" not in texts and "Ã" not in texts


def test_import_the_studys_json(study_fixture):
    from conftest import STUDY_PAIRS

    records = read_qa_json(study_fixture / "saida.json")
    assert len(records) == len(STUDY_PAIRS)
    assert {r["source"] for r in records} == {"json"}
    assert records[11]["input"] == "O que foi a Lei Aurea?"  # the study's JSON has no accents
    assert records[13]["output"] == 'O lema "A Cobra Vai Fumar".'


def test_import_the_real_studys_json(real_study):
    records = read_qa_json(real_study / "saida.json")
    assert len(records) == 269
    assert {r["source"] for r in records} == {"json"}
    assert records[0]["input"] == "Quando ocorreu a chegada dos primeiros humanos na America do Sul?"


def test_csv_utf8_with_header_quotes_and_comma(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text(
        'pergunta;resposta;artigo\n"Qual é; a capital?";"Brasília; no DF.";Brasil\n\n'
        "Quem foi Tiradentes?;Um inconfidente.;Tiradentes\n",
        encoding="utf-8",
    )
    records = read_qa_csv(f)
    assert [(r["input"], r["output"], r["article"]) for r in records] == [
        ("Qual é; a capital?", "Brasília; no DF.", "Brasil"),
        ("Quem foi Tiradentes?", "Um inconfidente.", "Tiradentes"),
    ]
    g = tmp_path / "qa2.csv"
    g.write_text('question,answer\n"O que é, afinal?","Isto, aquilo."\n', encoding="utf-8-sig")
    assert [(r["input"], r["output"]) for r in read_qa_csv(g)] == [("O que é, afinal?", "Isto, aquilo.")]


def test_csv_bad_rows_are_reported_with_line_numbers(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_bytes(
        "Pergunta um?;Resposta um.\r\nsem separador\r\nPergunta três?;\r\nA?;B;C\r\nOk?;Sim.\r\n".encode("latin-1")
    )
    with pytest.raises(UserError) as e:
        read_qa_csv(f)
    msg = str(e.value)
    assert "\n" not in msg and str(f) in msg
    assert msg.endswith(
        "3 bad row(s) (separator ';'): lines 2 (1 field, expected 2), 3 (empty answer), 4 (3 fields, expected 2)"
    )


def test_empty_and_binary_inputs(tmp_path):
    empty = tmp_path / "vazio.csv"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        read_qa_csv(empty)
    with pytest.raises(UserError, match="NUL"):
        decode_text(b"\x00\x01binary", "x.bin")
    assert decode_text("Amé".encode("cp1252"), "x")[0] == "Amé"
    assert decode_text("Amé".encode(), "x") == ("Amé", "utf-8-sig")


def test_jsonl_import_with_instruction_and_bad_lines(tmp_path):
    f = tmp_path / "qa.jsonl"
    f.write_text(
        '{"instruction": "Responda.", "input": "Quem?", "output": "Ele."}\n\n'
        '{"input": "Onde?", "output": "Aqui.", "article": "Lugar"}\n',
        encoding="utf-8",
    )
    a, b = read_qa_json(f)
    assert a["instruction"] == "Responda." and a["text"] == prompt.build_example("Quem?", "Ele.", "Responda.")
    assert b["article"] == "Lugar" and b["instruction"] == prompt.INSTRUCTION_QA
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "Quem?", "output": "Ele."}\n{"input": "Sem resposta"}\n{"output": 3}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"2 bad record\(s\): line 2 \(missing 'output'\), line 3"):
        read_qa_json(bad)


def test_read_dataset_validates_fields_with_line_numbers(tmp_path):
    good = [
        make_record("Qual é a capital do Brasil?", "A capital do Brasil é Brasília.", "Brasil", "infobox"),
        make_record("O que é o Brasil?", "O Brasil é um país da América do Sul.", "Brasil", "lead"),
    ]
    f = tmp_path / "dataset.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in good), encoding="utf-8")
    assert read_dataset(f) == good
    broken = dict(good[0], source="wiki")
    missing = {k: v for k, v in good[1].items() if k != "output"} | {"output": ""}
    f.write_text(
        "\n".join([json.dumps(good[0]), json.dumps(broken), "", json.dumps(missing), "{oops"]) + "\n", encoding="utf-8"
    )
    with pytest.raises(UserError, match=r"malformed JSON line\(s\): line 5"):
        read_dataset(f)
    f.write_text("\n".join([json.dumps(good[0]), json.dumps(broken), "", json.dumps(missing)]) + "\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        read_dataset(f)
    assert "2 malformed record(s): line 2 (unknown source 'wiki'), line 4 (empty 'output')" in str(e.value)


@pytest.mark.parametrize("which", ["fixture", "real"])
def test_read_dataset_accepts_the_studys_json_list(which, request):
    from conftest import STUDY_N_TRAIN, STUDY_PAIRS

    folder = request.getfixturevalue("study_fixture" if which == "fixture" else "real_study")
    records = read_dataset(folder / "teste.json")
    assert len(records) == (len(STUDY_PAIRS) - STUDY_N_TRAIN if which == "fixture" else 27)
    assert all(r["text"] == prompt.build_example(r["input"], r["output"]) for r in records)
