"""build_dataset.py --modes llm: parsing, grounding filter, generator specs, cache/resume, --limit, the CLI with a
stub (in process) and with the tiny random Llama (subprocess, end to end)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from llamawiki import dataset, llm_questions, prompt
from llamawiki.fileio import UserError
from llamawiki.llm_questions import LLMOptions, check_pair, generator_spec, parse_pairs, support

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Pergunta: Qual é a capital do Brasil?\nResposta: Brasília.\n\nPergunta: Quando?\nResposta: Em 1822.",
            [("Qual é a capital do Brasil?", "Brasília."), ("Quando?", "Em 1822.")],
        ),
        (
            "1. **Pergunta:** Quem proclamou a República?\n   **Resposta:** Deodoro da Fonseca.\n"
            "2. P: Em que ano? R: 1889",
            [("Quem proclamou a República?", "Deodoro da Fonseca."), ("Em que ano?", "1889")],
        ),
        (
            "Pergunta 1: Onde fica Brasília?\nResposta 1: No Planalto Central.",
            [("Onde fica Brasília?", "No Planalto Central.")],
        ),
        (
            "Claro! Aqui estão:\n- Pergunta: Qual é a moeda?\n- Resposta: O real.\n\nEspero ter ajudado.",
            [("Qual é a moeda?", "O real.")],
        ),
        (
            '[{"pergunta": "Qual a capital?", "resposta": "Brasília"}, {"question": "Who?", "answer": "Pedro"}]',
            [("Qual a capital?", "Brasília"), ("Who?", "Pedro")],
        ),
        (
            "1. Qual é a capital do Brasil? Brasília\n2. Quem foi Tiradentes? - Um inconfidente.",
            [("Qual é a capital do Brasil?", "Brasília"), ("Quem foi Tiradentes?", "Um inconfidente.")],
        ),
        ("Question: What is Brazil?\nAnswer: A country.", [("What is Brazil?", "A country.")]),
    ],
)
def test_parse_pairs_reads_the_usual_layouts(text, expected):
    assert parse_pairs(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "O Brasil é um país da América do Sul.",
        "Pergunta: Qual é a capital?",
        "Resposta: Brasília.",
        "dsfkj ### Input ksd 12 ?? !!",
        '[{"x": 1}]',
        "[not json",
    ],
)
def test_parse_pairs_without_a_pair_gives_nothing(text):
    assert parse_pairs(text) == []


# --------------------------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------------------------

EXCERPT = (
    "Brasília é a capital federal do Brasil e a sede do governo do Distrito Federal. A cidade foi "
    "inaugurada em 21 de abril de 1960 pelo presidente Juscelino Kubitschek."
)


def test_support_counts_content_words_ignoring_accents_case_and_stopwords():
    assert support("Foi inaugurada em 21 de abril de 1960.", EXCERPT) == 1.0
    assert support("JUSCELINO KUBITSCHEK a inaugurou.", EXCERPT) == pytest.approx(2 / 3)  # "inaugurou" differs
    assert support("Getúlio Vargas, em 1950.", EXCERPT) == 0.0
    assert support("Sim.", EXCERPT) == 0.0  # no content word: nothing to ground


@pytest.mark.parametrize(
    "question, answer, reason",
    [
        ("Quando Brasília foi inaugurada?", "Em 21 de abril de 1960.", None),
        ("Quando Brasília foi inaugurada", "Em 21 de abril de 1960.", "no_question_mark"),
        ("Quem inaugurou Brasília?", "Getúlio Vargas, em 1950.", "unsupported"),
        ("Quem inaugurou Brasília?", "O presidente Juscelino Kubitschek em 1955.", "unsupported"),  # 3/4 < 0.8
        ("Qual é a capital do Brasil?", "B.", "length"),
    ],
)
def test_check_pair_reasons(question, answer, reason):
    assert check_pair(question, answer, EXCERPT, 0.8, set(), min_chars=3) == reason


def test_check_pair_drops_a_question_already_kept_in_any_spelling():
    seen: set[str] = set()
    assert check_pair("Qual é a capital do Brasil?", "Brasília.", EXCERPT, 0.75, seen) is None
    assert check_pair("qual e a CAPITAL do brasil ?", "Brasília, a capital.", EXCERPT, 0.75, seen) == "duplicate"


# --------------------------------------------------------------------------------------------------------------
# Generator specs
# --------------------------------------------------------------------------------------------------------------


def test_generator_spec_forms(tmp_path):
    assert generator_spec("models/x.gguf") == {"model": "models/x.gguf", "backend": "llamacpp"}
    assert generator_spec("org/Llama-2-13b-chat-hf")["backend"] == "transformers"
    assert generator_spec("embedded")["model"].endswith(".gguf")
    spec = generator_spec(str(ROOT / "configs" / "models.yaml") + ":llama2-13b-chat-gpu")
    assert spec["name"] == "llama2-13b-chat-gpu" and spec["quantization"] == "4bit"
    one = tmp_path / "gerador.yaml"
    one.write_text("models:\n  meu:\n    backend: transformers\n    model: pasta/modelo\n", encoding="utf-8")
    assert generator_spec(str(one)) == {"name": "meu", "backend": "transformers", "model": "pasta/modelo"}
    top = tmp_path / "topo.yaml"
    top.write_text("model: pasta/modelo\nbackend: transformers\n", encoding="utf-8")
    assert generator_spec(str(top))["model"] == "pasta/modelo"


def test_generator_spec_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match=r"no model 'nada' under `models:` \(there: .*gemma-270m-gguf"):
        generator_spec(str(ROOT / "configs" / "models.yaml") + ":nada")
    with pytest.raises(UserError, match=r"models under `models:`; name one"):
        generator_spec(str(ROOT / "configs" / "models.yaml"))
    with pytest.raises(UserError, match="file not found"):
        generator_spec(str(tmp_path / "falta.yaml") + ":x")
    with pytest.raises(UserError, match="unknown key"):
        generator_spec({"model": "x", "backend": "transformers", "n_gpu_layers": 3})


@pytest.mark.parametrize(
    "kwargs, flag",
    [
        ({"max_pairs_per_article": 0}, "--max-pairs-per-article 0"),
        ({"max_excerpt_tokens": 0}, "--llm-max-excerpt-tokens 0"),
        ({"min_support": 1.5}, "--llm-min-support 1.5"),
        ({"temperature": -1.0}, "--llm-temperature -1.0"),
    ],
)
def test_llm_options_checked(kwargs, flag):
    with pytest.raises(UserError, match=re.escape(flag)):
        LLMOptions(**kwargs)


# --------------------------------------------------------------------------------------------------------------
# The writer on the sample dump, with a stub generator
# --------------------------------------------------------------------------------------------------------------


class StubGenerator:
    """Answers the LLM-questions prompt as a well-behaved chat model would, plus one pair of each bad kind: a
    hallucinated answer, a question without "?" and a repeat. Counts its calls; can fail after N calls."""

    name = "stub"
    has_chat_template = False

    def __init__(self, fail_after: int | None = None, text: str | None = None):
        self.calls: list[str] = []
        self.fail_after = fail_after
        self.text = text

    def count_tokens(self, text: str, special: bool = False) -> int:
        return len(text.split())

    def generate(self, text: str, **kwargs):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt
        self.calls.append(text)
        assert kwargs["stop"] == prompt.LLM_QA_STOP_STRINGS
        title = re.search(r"Artigo: (.*)", text).group(1)
        excerpt = text.split("Trecho:\n", 1)[1].split("\n\n### Response:", 1)[0]
        first = excerpt.split(". ")[0].rstrip(".") + "."
        n = zlib.crc32(excerpt.encode()) % 1000  # the same text for the same prompt, whatever ran before
        out = (
            self.text
            if self.text is not None
            else (
                f"Pergunta: O que diz o trecho {n} sobre {title}?\nResposta: {first}\n"
                f"Pergunta: Qual é a cor de {title}?\nResposta: Roxo com bolinhas amarelas de queijo.\n"
                f"Pergunta: Fale sobre {title}\nResposta: {first}\n"
                f"Pergunta: O que diz o trecho {n} sobre {title}?\nResposta: {first}\n"
            )
        )
        return type("G", (), {"text": out})()


def build(sample_dump, out, stub, **kw):
    kw.setdefault("limit", 4)
    modes = kw.pop("modes", ("llm",))
    return dataset.build_dataset(
        [sample_dump],
        out,
        dataset.GenerationOptions(modes=modes),
        progress=False,
        generator={"model": "stub/modelo", "backend": "transformers", "name": "stub-7b"},
        load_generator=lambda spec: stub,
        **kw,
    )


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_llm_mode_writes_grounded_records_and_counts_what_it_dropped(sample_dump, tmp_path):
    stub = StubGenerator()
    out = tmp_path / "llm.jsonl"
    result = build(sample_dump, out, stub, llm_options=LLMOptions(max_pairs_per_article=2))
    recs = read(out)
    assert recs and {r["source"] for r in recs} == {"llm"} and {r["generator"] for r in recs} == {"stub-7b"}
    assert all(r["input"].endswith("?") and "queijo" not in r["output"] for r in recs)
    assert all(r["text"] == prompt.build_example(r["input"], r["output"]) for r in recs)
    by_article: dict[str, int] = {}
    for r in recs:
        by_article[r["article"]] = by_article.get(r["article"], 0) + 1
    assert max(by_article.values()) <= 2 and len(by_article) == result.pages == 4
    st = result.llm
    assert st.kept == len(recs) and st.articles == 4 and st.generated == len(stub.calls) == st.prompts
    # the first excerpt of each article has one good pair and one of each bad kind, all read
    assert min(st.dropped["unsupported"], st.dropped["no_question_mark"], st.dropped["duplicate"]) >= st.articles
    assert st.kept == 2 * st.articles and st.prompts == 2 * st.articles
    # every prompt holds one excerpt within the token budget, lead first
    assert all(len(p.split("Trecho:\n", 1)[1].split("\n\n### Response:")[0].split()) <= 400 for p in stub.calls)
    # records read back as dataset records (the next stages accept them)
    from llamawiki.records import read_dataset

    assert [r["source"] for r in read_dataset(out)] == ["llm"] * len(recs)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "particiona.py"),
            str(out),
            "--train",
            str(tmp_path / "tr.jsonl"),
            "--test",
            str(tmp_path / "te.jsonl"),
            "--test-size",
            "0.25",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    train, test = read(tmp_path / "tr.jsonl"), read(tmp_path / "te.jsonl")
    assert len(train) + len(test) == len(recs) and not {r["article"] for r in train} & {r["article"] for r in test}


def test_llm_mode_beside_template_modes_and_excerpt_budget(sample_dump, tmp_path):
    stub = StubGenerator()
    out = tmp_path / "mix.jsonl"
    result = build(
        sample_dump,
        out,
        stub,
        modes=("infobox", "llm"),
        llm_options=LLMOptions(max_excerpt_tokens=20, max_pairs_per_article=1),
    )
    assert {"infobox", "llm"} <= set(result.by_source)
    assert all(len(p.split("Trecho:\n", 1)[1].split("\n\n### Response:")[0].split()) <= 20 for p in stub.calls)


def test_limit_bounds_the_model_calls(sample_dump, tmp_path):
    stub = StubGenerator()
    build(sample_dump, tmp_path / "one.jsonl", stub, limit=1, llm_options=LLMOptions(max_pairs_per_article=1))
    assert len(stub.calls) == 1


def test_rerun_is_served_by_the_cache_and_an_interrupted_run_resumes(sample_dump, tmp_path):
    out = tmp_path / "llm.jsonl"
    full = StubGenerator()
    build(sample_dump, out, full)
    cache = llm_questions.cache_path(out)
    assert cache.name == "llm.llm-cache.jsonl" and len(cache.read_text().splitlines()) == len(full.calls)
    before = out.read_bytes()
    again = StubGenerator()
    result = build(sample_dump, out, again)
    assert again.calls == [] and result.llm.generated == 0 and out.read_bytes() == before

    out2 = tmp_path / "cut.jsonl"
    out2.write_text("anterior\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        build(sample_dump, out2, StubGenerator(fail_after=3))
    assert out2.read_text(encoding="utf-8") == "anterior\n"  # atomic: the old file stays
    assert len(llm_questions.cache_path(out2).read_text().splitlines()) == 3
    resumed = StubGenerator()
    build(sample_dump, out2, resumed)
    assert len(resumed.calls) == len(full.calls) - 3 and out2.read_bytes() == before


def test_a_changed_setting_asks_again(sample_dump, tmp_path):
    out = tmp_path / "llm.jsonl"
    build(sample_dump, out, StubGenerator(), limit=1)
    other = StubGenerator()
    build(sample_dump, out, other, limit=1, llm_options=LLMOptions(max_new_tokens=100))
    assert other.calls


def test_unparsable_articles_are_counted_not_fatal(sample_dump, tmp_path):
    stub = StubGenerator(text="Desculpe, não entendi o pedido.")
    result = build(sample_dump, tmp_path / "mix.jsonl", stub, modes=("infobox", "llm"), limit=3)
    assert result.llm.kept == 0 and len(result.llm.unparsable_articles) == 3 and result.by_source["infobox"]
    with pytest.raises(UserError, match=r"no examples were produced .*llm: 0 pair\(s\) kept of 0 parsed"):
        build(sample_dump, tmp_path / "only.jsonl", stub, limit=2)
    assert not (tmp_path / "only.jsonl").exists()


def test_llm_mode_argument_errors(sample_dump, tmp_path):
    opts = dataset.GenerationOptions(modes=("llm",))
    with pytest.raises(UserError, match="--modes llm needs --generator"):
        dataset.build_dataset([sample_dump], tmp_path / "x.jsonl", opts, progress=False)
    with pytest.raises(UserError, match="--generator is for --modes llm"):
        dataset.build_dataset([sample_dump], tmp_path / "x.jsonl", progress=False, generator="x.gguf")
    csv = tmp_path / "qa.csv"
    csv.write_text("pergunta;resposta\nQual?;Isso.\n", encoding="utf-8")
    with pytest.raises(UserError, match="give a dump"):
        dataset.build_dataset([csv], tmp_path / "x.jsonl", opts, progress=False, generator="x.gguf")


# --------------------------------------------------------------------------------------------------------------
# The script, end to end
# --------------------------------------------------------------------------------------------------------------


def run(*args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run(
        [sys.executable, str(ROOT / "build_dataset.py"), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_with_the_tiny_random_llama_runs_end_to_end(sample_dump, tiny_llama, tmp_path):
    """A random model writes no usable pair: the run still ends (exit 0 with the infobox records), counts the
    articles it could not parse and says so; the rerun is served from the cache."""
    spec = tmp_path / "gerador.yaml"
    spec.write_text(
        f"models:\n  tiny:\n    backend: transformers\n    model: {tiny_llama}\n    n_ctx: 512\n", encoding="utf-8"
    )
    args = (
        sample_dump,
        "--modes",
        "infobox,llm",
        "--generator",
        f"{spec}:tiny",
        "--limit",
        "2",
        "--llm-max-excerpt-tokens",
        "48",
        "--llm-max-new-tokens",
        "12",
        "-o",
        tmp_path / "d.jsonl",
        "--no-progress",
    )
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = [line for line in proc.stderr.splitlines() if line.startswith("llm: ")]
    assert len(summary) == 1 and "of 2 article(s)" in summary[0], proc.stderr
    generated = int(re.search(r"\((\d+) generated, 0 cached\)", summary[0]).group(1))
    assert generated >= 2
    cache = tmp_path / "d.llm-cache.jsonl"
    assert len(cache.read_text(encoding="utf-8").splitlines()) == generated
    assert all(json.loads(line)["generator"] == "tiny" for line in cache.read_text(encoding="utf-8").splitlines())
    again = run(*args, cwd=tmp_path)
    assert again.returncode == 0 and f"(0 generated, {generated} cached)" in again.stderr


@pytest.mark.parametrize(
    "extra, needle",
    [
        (("--modes", "llm"), "--modes llm needs --generator"),
        (("--modes", "llm", "--generator", "pasta/que/nao/existe"), "pasta/que/nao/existe"),
        (("--modes", "llm", "--generator", "configs-inexistente.yaml:x"), "configs-inexistente.yaml: file not found"),
        (("--modes", "llm", "--generator", "x.gguf", "--max-pairs-per-article", "0"), "--max-pairs-per-article 0"),
        (("--generator", "x.gguf"), "--generator is for --modes llm"),
    ],
)
def test_cli_bad_generator_input_is_one_line_and_keeps_the_output(sample_dump, tmp_path, extra, needle):
    out = tmp_path / "d.jsonl"
    out.write_text("anterior\n", encoding="utf-8")
    proc = run(sample_dump, "-o", out, "--no-progress", "--limit", "1", *extra, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr
    assert out.read_text(encoding="utf-8") == "anterior\n"
