"""Retrieval at scale: bm25s (saved beside FAISS, memory-mapped) and the FAISS IVF option, with merge.

A deterministic hashing embedder (bag of BM25 tokens hashed into 64 dimensions) stands in for MiniLM: the
tests are about the index files, the manifest and the rankings, and this keeps them to a few seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_retrieval import PAGES, QUESTIONS, write_dump  # noqa: E402

from llamawiki import retrieval  # noqa: E402
from llamawiki.fileio import UserError  # noqa: E402

DIM = 64


class HashEmbeddings(Embeddings):
    """Normalised bag of hashed tokens: similar texts get similar vectors, no model to load."""

    model_name = None  # -> recorded as the default embedding name, so load_retriever's check passes

    def _vector(self, text: str) -> list[float]:
        v = np.full(DIM, 1e-3, dtype=np.float32)
        for tok in retrieval.bm25_preprocess(text):
            v[zlib.crc32(tok.encode()) % DIM] += 1.0
        return (v / np.linalg.norm(v)).tolist()

    def embed_documents(self, texts):
        return [self._vector(t) for t in texts]

    def embed_query(self, text):
        return self._vector(text)


@pytest.fixture(scope="module")
def emb():
    return HashEmbeddings()


@pytest.fixture(scope="module")
def small_dump(tmp_path_factory) -> Path:
    return write_dump(tmp_path_factory.mktemp("dump") / "ptwiki-teste.xml.bz2", PAGES)


@pytest.fixture(scope="module")
def flat_dir(tmp_path_factory, small_dump, emb) -> Path:
    out = tmp_path_factory.mktemp("flat") / "idx"
    retrieval.build_index(small_dump, out, embeddings=emb, chunk_size=200, chunk_overlap=30, progress=False)
    return out


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ bm25s


def test_bm25s_top_hit_agrees_with_rank_bm25(flat_dir):
    rank_bm25 = pytest.importorskip("rank_bm25")
    docs = retrieval.read_chunks(flat_dir)
    old = rank_bm25.BM25Okapi([retrieval.bm25_preprocess(d.page_content) for d in docs])
    new = retrieval.load_retriever(flat_dir, kind="bm25", k=5)
    queries = [q for q, _ in QUESTIONS] + [
        "Quem popularizou o relógio de pulso?",
        "café Vale do Paraíba",
        "Petrobras petróleo",
        "bacia amazônica floresta",
    ]
    for q in queries:
        scores = old.get_scores(retrieval.bm25_preprocess(q))
        best = int(np.argmax(scores))
        got = new.invoke(q)
        assert got[0].metadata["chunk_id"] == docs[best].metadata["chunk_id"], q
        assert got[0].page_content == docs[best].page_content
        assert [d.metadata["score"] for d in got] == sorted((d.metadata["score"] for d in got), reverse=True)
    for q, article in QUESTIONS:  # and the articles still come first
        assert new.invoke(q)[0].metadata["title"] == article
    assert new.invoke("de a o que") == []  # only stopwords: no hit, no error


def test_bm25s_index_is_saved_beside_faiss_and_memory_mapped(flat_dir):
    folder = flat_dir / retrieval.BM25_DIR
    for name in (
        "data.csc.index.npy",
        "indices.csc.index.npy",
        "indptr.csc.index.npy",
        "vocab.index.json",
        "params.index.json",
        retrieval.CHUNK_OFFSETS,
    ):
        assert (folder / name).is_file(), name
    m = manifest(flat_dir)
    b = m["bm25"]
    assert b["library"] == "bm25s" and b["dir"] == retrieval.BM25_DIR and b["mmap"] is True
    assert b["method"] == "lucene" and b["k1"] == 1.5 and b["b"] == 0.75
    assert b["preprocess"] == retrieval.BM25_PREPROCESS_VERSION and b["vocabulary"] > 50
    assert m["versions"]["bm25s"] == b["version"]
    r = retrieval.load_retriever(flat_dir, kind="bm25")
    assert isinstance(r.bm25.model.scores["data"], np.memmap)
    assert isinstance(r.bm25.chunks.offsets, np.memmap)
    docs = retrieval.read_chunks(flat_dir)
    assert len(r.bm25.chunks) == len(docs) == m["counts"]["chunks"] == r.bm25.model.scores["num_docs"]
    for i in (0, len(docs) // 2, len(docs) - 1):  # offsets point at the right lines
        assert r.bm25.chunks.get(i).page_content == docs[i].page_content


def test_index_without_bm25s_folder_is_built_at_load_with_a_note(flat_dir, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(flat_dir, old)
    shutil.rmtree(old / retrieval.BM25_DIR)
    capsys.readouterr()
    r = retrieval.load_retriever(old, kind="bm25", k=3)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no bm25s/ folder" in err[0] and err[0].startswith("note: ")
    ref = retrieval.load_retriever(flat_dir, kind="bm25", k=3)
    for q, _ in QUESTIONS:
        assert [d.page_content for d in r.invoke(q)] == [d.page_content for d in ref.invoke(q)]
    # a bm25s folder that does not match the chunks is refused in one line
    bad = tmp_path / "bad"
    shutil.copytree(flat_dir, bad)
    offsets = np.load(bad / retrieval.BM25_DIR / retrieval.CHUNK_OFFSETS)
    np.save(bad / retrieval.BM25_DIR / retrieval.CHUNK_OFFSETS, offsets[:-1])
    with pytest.raises(UserError, match="rebuild the index"):
        retrieval.load_retriever(bad, kind="bm25")


# ------------------------------------------------------------------------------------------------ IVF


def test_ivf_build_query_and_manifest(small_dump, flat_dir, emb, tmp_path):
    n = manifest(flat_dir)["counts"]["chunks"]
    assert n >= 8
    out = tmp_path / "ivf"
    m = retrieval.build_index(
        small_dump,
        out,
        embeddings=emb,
        chunk_size=200,
        chunk_overlap=30,
        progress=False,
        index_type="ivf",
        nlist=4,
        nprobe=4,
    )
    f = m["faiss"]
    assert f["index_type"] == "ivf" and f["index"] == "IndexIVFFlat" and f["nlist"] == 4 and f["nprobe"] == 4
    assert manifest(out)["faiss"] == f
    assert manifest(flat_dir)["faiss"]["index_type"] == "flat"
    import faiss

    assert faiss.read_index(str(out / "faiss" / "index.faiss")).ntotal == n
    flat = retrieval.load_retriever(flat_dir, kind="dense", k=4, embeddings=emb)
    ivf = retrieval.load_retriever(out, kind="dense", k=4, embeddings=emb)
    assert faiss.extract_index_ivf(ivf.vectorstore.index).nprobe == 4
    for q, _ in QUESTIONS:  # nprobe == nlist visits every cell: the exact answer
        a, b = flat.invoke(q), ivf.invoke(q)
        assert [d.metadata["chunk_id"] for d in a] == [d.metadata["chunk_id"] for d in b]
        assert [d.metadata["score"] for d in a] == pytest.approx([d.metadata["score"] for d in b], abs=1e-5)
    one = retrieval.load_retriever(out, kind="dense", k=4, embeddings=emb, nprobe=1)
    assert faiss.extract_index_ivf(one.vectorstore.index).nprobe == 1
    assert 0 < len(one.invoke(QUESTIONS[0][0])) <= 4
    hybrid = retrieval.load_retriever(out, kind="hybrid", k=3, embeddings=emb)
    assert hybrid.invoke(QUESTIONS[0][0])[0].metadata["title"] == QUESTIONS[0][1]


def test_ivf_with_fewer_chunks_than_nlist_falls_back_to_flat(small_dump, emb, tmp_path, capsys):
    capsys.readouterr()
    m = retrieval.build_index(
        small_dump,
        tmp_path / "few",
        embeddings=emb,
        chunk_size=200,
        chunk_overlap=30,
        progress=False,
        index_type="ivf",
        nlist=10_000,
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "fewer than --nlist 10000" in err[0] and "flat" in err[0]
    f = m["faiss"]
    assert f["index_type"] == "flat" and f["index"] == "IndexFlatL2" and f["requested"] == "ivf"
    assert "fallback" in f
    assert retrieval.load_retriever(tmp_path / "few", kind="dense", embeddings=emb).invoke("café")
    with pytest.raises(UserError, match="--nlist 0"):
        retrieval.build_index(small_dump, tmp_path / "x", embeddings=emb, index_type="ivf", nlist=0, progress=False)
    with pytest.raises(UserError, match="--index-type hnsw"):
        retrieval.build_index(small_dump, tmp_path / "x", embeddings=emb, index_type="hnsw", progress=False)


def test_merge_keeps_or_changes_the_index_type_and_rebuilds_bm25s(tmp_path, emb, flat_dir):
    titles = list(PAGES)
    parts = [
        write_dump(tmp_path / "p1.xml", {t: PAGES[t] for t in titles[:3]}),
        write_dump(tmp_path / "p2.xml", {t: PAGES[t] for t in titles[3:]}),
    ]
    for i, part in enumerate(parts, 1):
        retrieval.build_index(
            part,
            tmp_path / f"i{i}",
            embeddings=emb,
            chunk_size=200,
            chunk_overlap=30,
            progress=False,
            index_type="ivf",
            nlist=2,
            nprobe=2,
        )
    inputs = [tmp_path / "i1", tmp_path / "i2"]
    m = retrieval.merge_indexes(inputs, tmp_path / "m-ivf", progress=False)  # as the first input: IVF
    assert m["faiss"]["index_type"] == "ivf" and m["faiss"]["nlist"] == 2 and m["faiss"]["nprobe"] == 2
    assert m["bm25"]["library"] == "bm25s"
    assert m["counts"] == manifest(flat_dir)["counts"]
    m2 = retrieval.merge_indexes(inputs, tmp_path / "m-flat", progress=False, index_type="flat")
    assert m2["faiss"]["index_type"] == "flat"
    m3 = retrieval.merge_indexes(
        [tmp_path / "m-flat"], tmp_path / "m-ivf4", progress=False, index_type="ivf", nlist=4, nprobe=4
    )  # a flat index turned into IVF by merge
    assert m3["faiss"]["index_type"] == "ivf" and m3["faiss"]["nlist"] == 4
    single = {
        kind: retrieval.load_retriever(flat_dir, kind=kind, k=3, embeddings=emb) for kind in retrieval.RETRIEVER_KINDS
    }
    for out in ("m-ivf", "m-flat", "m-ivf4"):
        for kind in retrieval.RETRIEVER_KINDS:  # merged bm25s statistics = the one-go index's; nprobe = nlist
            merged = retrieval.load_retriever(tmp_path / out, kind=kind, k=3, embeddings=emb)
            assert (tmp_path / out / retrieval.BM25_DIR / "params.index.json").is_file()
            for q, _ in QUESTIONS:
                assert [d.page_content for d in merged.invoke(q)] == [d.page_content for d in single[kind].invoke(q)], (
                    out,
                    kind,
                    q,
                )


def test_cli_index_ivf_fallback_and_bad_nprobe(small_dump, tmp_path):
    out = tmp_path / "cli"
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "rag.py"),
            "index",
            str(small_dump),
            "--index-dir",
            str(out),
            "--index-type",
            "ivf",
            "--nlist",
            "5000",
            "--nprobe",
            "8",
            "--chunk-size",
            "400",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "fewer than --nlist 5000: built a flat (exact) FAISS index instead of IVF" in r.stderr
    assert "FAISS IndexFlatL2; bm25s" in r.stdout
    m = manifest(out)
    assert m["faiss"]["requested"] == "ivf" and m["faiss"]["index_type"] == "flat"
    bad = subprocess.run(
        [
            sys.executable,
            str(ROOT / "rag.py"),
            "index",
            str(small_dump),
            "--index-dir",
            str(tmp_path / "b"),
            "--index-type",
            "ivf",
            "--nprobe",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --nprobe 0: must be at least 1"
