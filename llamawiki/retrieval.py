"""Retrieval-augmented generation over the Wikipedia dump (LangChain 1.x, offline): querying an index and
answering with it. The index itself (loader, splitter, embeddings, FAISS + bm25s, build and merge, the folder
format) is :mod:`llamawiki.indexing`; its public names are re-exported here.

5. ``load_retriever`` — checks the manifest *before* unpickling anything, then returns a retriever:
   ``dense`` (FAISS), ``bm25`` or ``hybrid``. Hybrid is our own weighted reciprocal-rank fusion (RRF, the
   formula ``EnsembleRetriever`` uses) over chunk ids, fetching ``fetch_k`` candidates from each side and
   returning exactly ``k`` chunks (``EnsembleRetriever`` returns the union of both lists, up to 2k).
6. ``answer`` — an LCEL chain: retrieve -> format the context (fitted to the model's window) ->
   ``prompt.build_prompt(question, INSTRUCTION_RAG, context)`` -> ``generator.generate``. compare.py calls the
   same function for its RAG rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from . import prompt as prompt_mod
from .fileio import UserError, looks_local
from .indexing import (  # noqa: F401  (re-exported: rag.py, chat, evaluation, bench and tests use retrieval.X)
    BM25_DIR,
    BM25_PARAMS,
    BM25_PREPROCESS_VERSION,
    CHUNK_OFFSETS,
    CHUNKS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CHUNK_OVERLAP,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FETCH_K,
    DEFAULT_INDEX_TYPE,
    DEFAULT_K,
    DEFAULT_MAX_CONTEXT_CHARS,
    DEFAULT_NLIST,
    DEFAULT_NPROBE,
    DEFAULT_WEIGHTS,
    FAISS_DIR,
    INDEX_FORMAT,
    INDEX_TYPES,
    IVF_TRAIN_PER_LIST,
    LEAD_SECTION,
    MANIFEST,
    RETRIEVAL_LIBS,
    RETRIEVER_KINDS,
    RRF_C,
    BM25Builder,
    Manifest,
    WikiDumpLoader,
    _embedder_model_name,
    _ivf_of,
    _notice,
    article_documents,
    bm25_preprocess,
    build_index,
    check_faiss_files,
    check_ivf_options,
    chunk_header,
    embedded_model_path,
    embedding_name,
    finish_faiss,
    infobox_facts,
    load_embeddings,
    load_faiss,
    make_splitter,
    merge_indexes,
    read_chunks,
    read_manifest,
    split_documents,
)
from .options import DEFAULT_MAX_NEW_TOKENS

# ---------------------------------------------------------------------------------------------------------
# 4. Reading the BM25 side of an index
# ---------------------------------------------------------------------------------------------------------


class ChunkStore:
    """Random access to ``chunks.jsonl``: byte offsets (memory-mapped .npy) -> one line read per hit."""

    def __init__(self, path: Path, offsets: Any):
        self.path = Path(path)
        self.offsets = offsets

    def __len__(self) -> int:
        return len(self.offsets)

    def get(self, i: int) -> Document:
        with open(self.path, "rb") as f:
            f.seek(int(self.offsets[i]))
            line = f.readline()
        try:
            rec = json.loads(line)
            return Document(page_content=rec["text"], metadata=rec["metadata"], id=rec["id"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise UserError(
                f"{self.path}: chunk {i} does not match {BM25_DIR}/{CHUNK_OFFSETS}; rebuild the index"
            ) from None


class BM25Index:
    """A bm25s index (score matrix usually memory-mapped) + the chunk store it points into."""

    def __init__(self, model: Any, chunks: ChunkStore):
        self.model = model
        self.chunks = chunks

    def search(self, query: str, n: int) -> list[tuple[Document, float]]:
        """The top ``n`` chunks with a positive score, best first (ties: lower chunk id first)."""
        import numpy as np

        ids = self.model.get_tokens_ids(bm25_preprocess(query))
        if not ids:
            return []
        scores = self.model.get_scores_from_ids(ids)
        n = min(n, len(scores))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.chunks.get(int(i)), float(scores[i])) for i in top if scores[i] > 0]


def bm25_from_chunks(chunks_path: Path) -> tuple[BM25Builder, list[int]]:
    """A BM25Builder fed with every chunk of a chunks.jsonl, and the byte offset of each line."""
    builder, offsets = BM25Builder(), []
    pos = 0
    with open(chunks_path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            try:
                text = json.loads(line)["text"]
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                raise UserError(f"{chunks_path}: malformed chunk at line {lineno}; rebuild the index") from None
            offsets.append(pos)
            pos += len(line)
            builder.add(text)
    return builder, offsets


def load_bm25(index_dir: Path, manifest: Manifest) -> BM25Index:
    """The index's bm25s folder, memory-mapped; an index from before bm25s gets one built in memory."""
    import numpy as np

    folder = index_dir / BM25_DIR
    chunks_path = index_dir / CHUNKS
    if not (folder / "params.index.json").is_file():
        _notice(
            f"{index_dir}: no {BM25_DIR}/ folder (index made before bm25s); building BM25 in memory from "
            f"{CHUNKS} (rebuild or re-merge the index to save it)"
        )
        builder, offsets = bm25_from_chunks(chunks_path)
        if not len(builder):
            raise UserError(f"{index_dir}: the index has no chunks; rebuild it")
        return BM25Index(builder.build(), ChunkStore(chunks_path, np.asarray(offsets, dtype=np.int64)))
    import bm25s

    try:
        model = bm25s.BM25.load(str(folder), mmap=True, load_corpus=False, show_progress=False)
        offsets = np.load(folder / CHUNK_OFFSETS, mmap_mode="r")
    except (OSError, ValueError, KeyError) as e:
        raise UserError(
            f"{folder}: unreadable bm25s index ({str(e).splitlines()[0][:150]}); rebuild the index"
        ) from None
    n = manifest.n_chunks
    if model.scores["num_docs"] != n or len(offsets) != n:
        raise UserError(
            f"{folder}: {model.scores['num_docs']} BM25 documents and {len(offsets)} offsets, but "
            f"{n} chunks in the manifest; rebuild the index"
        )
    if not n:
        raise UserError(f"{index_dir}: the index has no chunks; rebuild it")
    return BM25Index(model, ChunkStore(chunks_path, offsets))


# ---------------------------------------------------------------------------------------------------------
# 6. Loading: manifest checks, retrievers
# ---------------------------------------------------------------------------------------------------------


class IndexRetriever(BaseRetriever):
    """Retriever over a llamawiki index: ``dense`` (FAISS), ``bm25`` or ``hybrid`` (weighted RRF of both).

    Returned documents are copies whose metadata carries ``rank`` and ``score`` (cosine similarity for dense,
    BM25 score for bm25, fused RRF score for hybrid). ``k`` chunks are returned; hybrid fuses the top
    ``fetch_k`` of each side: score(chunk) = sum_i weight_i / (RRF_C + rank_i).
    """

    kind: str = "hybrid"
    k: int = DEFAULT_K
    fetch_k: int = DEFAULT_FETCH_K
    weights: tuple[float, float] = DEFAULT_WEIGHTS  # (bm25, dense)
    vectorstore: Any = None
    bm25: Any = None
    manifest: dict = {}

    model_config = {"arbitrary_types_allowed": True}

    def _dense(self, query: str, n: int) -> list[tuple[Document, float]]:
        pairs = self.vectorstore.similarity_search_with_score(query, k=n)
        # Normalised vectors: squared L2 distance d = 2 - 2 cos.
        return [(doc, 1.0 - float(d) / 2.0) for doc, d in pairs]

    def _bm25(self, query: str, n: int) -> list[tuple[Document, float]]:
        return self.bm25.search(query, n)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.kind == "dense":
            ranked = self._dense(query, self.k)
        elif self.kind == "bm25":
            ranked = self._bm25(query, self.k)
        else:
            n = max(self.fetch_k, self.k)
            fused: dict[Any, float] = {}
            docs: dict[Any, Document] = {}
            for weight, search in zip(self.weights, (self._bm25, self._dense), strict=True):
                if weight <= 0:
                    continue
                for rank, (doc, _) in enumerate(search(query, n), 1):
                    key = doc.metadata.get("chunk_id", doc.page_content)
                    fused[key] = fused.get(key, 0.0) + weight / (RRF_C + rank)
                    docs.setdefault(key, doc)
            order = sorted(fused, key=lambda key: -fused[key])[: self.k]
            ranked = [(docs[key], fused[key]) for key in order]
        return [
            Document(
                page_content=doc.page_content, metadata={**doc.metadata, "rank": r, "score": round(s, 6)}, id=doc.id
            )
            for r, (doc, s) in enumerate(ranked, 1)
        ]


def load_retriever(
    index_dir: str | os.PathLike[str],
    kind: str = "hybrid",
    k: int = DEFAULT_K,
    embeddings: Any = None,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    fetch_k: int = DEFAULT_FETCH_K,
    nprobe: int | None = None,
) -> IndexRetriever:
    """A retriever over an index folder written by ``build_index``.

    BM25 is the index's bm25s folder, memory-mapped (an index made before bm25s gets it built in memory from
    chunks.jsonl, with a one-line note). nprobe: IVF cells searched per query (None: the manifest's).

    The manifest is checked first: a missing or foreign folder, or an index built with another embedding
    model than ``embeddings`` (None = the one in the manifest), is a UserError — the pickled FAISS docstore
    is only deserialised for a folder that carries our manifest.
    """
    if kind not in RETRIEVER_KINDS:
        raise UserError(f"unknown retriever {kind!r} (use {', '.join(RETRIEVER_KINDS)})")
    if k < 1:
        raise UserError(f"--k {k}: must be at least 1")
    if len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0:
        raise UserError(f"hybrid weights {tuple(weights)}: expected two non-negative numbers (bm25, dense)")
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    built_with = manifest.embedding_name

    vectorstore = bm25 = None
    # every file of the index first (cheap), the embedder last: a damaged index fails before a model loads
    if kind in ("dense", "hybrid"):
        from langchain_core.embeddings import FakeEmbeddings

        vectorstore = load_faiss(index_dir, FakeEmbeddings(size=manifest["embeddings"]["dimension"]))
        dim = manifest["embeddings"]["dimension"]
        if vectorstore.index.d != dim:
            raise UserError(
                f"{index_dir}: FAISS index has dimension {vectorstore.index.d}, manifest says {dim}; rebuild it"
            )
    if kind in ("bm25", "hybrid"):
        bm25 = load_bm25(index_dir, manifest)
    if vectorstore is not None:
        if embeddings is None or isinstance(embeddings, (str, os.PathLike)):
            requested = built_with if embeddings is None else embedding_name(embeddings)
            if requested != built_with:
                raise UserError(
                    f"{index_dir}: index was built with embeddings {built_with!r}, not {requested!r}; "
                    f"query it with the same model or rebuild it with --embeddings"
                )
            spec = embeddings if embeddings is not None else manifest["embeddings"].get("spec")
            missing_folder = spec is not None and looks_local(spec) and not Path(spec).expanduser().exists()
            if not missing_folder and embedding_name(spec) != built_with:  # name and spec disagree: edited?
                raise UserError(
                    f"{index_dir}: {MANIFEST} names embeddings {built_with!r} but its spec "
                    f"({spec!r}) loads {embedding_name(spec)!r}; rebuild the index, or give the model that "
                    f"built it with --embeddings"
                )
            embedder = load_embeddings(spec)
        else:
            embedder = embeddings
            requested = embedding_name(_embedder_model_name(embeddings))
            if requested != built_with:
                raise UserError(f"{index_dir}: index was built with embeddings {built_with!r}, not {requested!r}")
        vectorstore.embedding_function = embedder
        ivf = _ivf_of(vectorstore.index)
        if ivf is not None:
            probe = nprobe if nprobe is not None else manifest["faiss"].get("nprobe", DEFAULT_NPROBE)
            if probe < 1:
                raise UserError(f"--nprobe {probe}: must be at least 1")
            ivf.nprobe = int(probe)
    return IndexRetriever(
        kind=kind,
        k=k,
        fetch_k=fetch_k,
        weights=tuple(float(w) for w in weights),
        vectorstore=vectorstore,
        bm25=bm25,
        manifest=manifest.data,
    )


# ---------------------------------------------------------------------------------------------------------
# 7. Answering (LCEL)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RagAnswer:
    text: str  # the model's answer (cut at the first stop string)
    sources: list[str]  # article titles of the context, deduplicated, in rank order
    contexts: list[str]  # the chunk texts given to the model (after fitting to the window)
    generation: Any = None  # models.Generation (tokens, seconds, ...)
    question: str = ""
    prompt: str = ""
    documents: list[Document] = field(default_factory=list)  # the retrieved chunks used, with metadata

    def to_dict(self) -> dict:
        gen = self.generation
        return {
            "question": self.question,
            "answer": self.text,
            "sources": self.sources,
            "contexts": self.contexts,
            "chunks": [
                {
                    "title": d.metadata.get("title"),
                    "section": d.metadata.get("section"),
                    "source": d.metadata.get("source"),
                    "score": d.metadata.get("score"),
                }
                for d in self.documents
            ],
            "generation": None
            if gen is None
            else {
                "n_tokens": getattr(gen, "n_tokens", None),
                "seconds": getattr(gen, "seconds", None),
                "prompt_tokens": getattr(gen, "prompt_tokens", None),
            },
        }


def fit_context(docs: Sequence[Document], max_chars: int) -> list[Document]:
    """The documents that fit in ``max_chars`` characters, in rank order; the last one is cut if worth it."""
    kept: list[Document] = []
    left = max_chars
    for doc in docs:
        text = doc.page_content.strip()
        cost = len(text) + 2  # the blank line between passages
        if cost <= left:
            kept.append(doc)
            left -= cost
            continue
        if left >= 200 or not kept:  # cut at a word boundary rather than drop a useful passage
            cut = text[: max(left - 4, 0)]
            cut = cut[: cut.rfind(" ")] if " " in cut else cut
            if cut.strip():
                kept.append(Document(page_content=cut.rstrip() + " …", metadata=doc.metadata, id=doc.id))
        break
    return kept


def format_context(docs: Sequence[Document]) -> str:
    """Passages in rank order, separated by blank lines; each starts with its "Title — Section" line.

    Plain text on purpose: with "[1] ...", "[2] ..." numbering the embedded base model continued the list
    instead of answering (tried on the sample: 2 of 3 answers were list items or a copied passage).
    """
    return "\n\n".join(d.page_content.strip() for d in docs)


def check_max_context_chars(max_context_chars: int | None) -> None:
    """None (the default) or a positive number of characters: 0 or less would answer with no context at all."""
    if max_context_chars is not None and (isinstance(max_context_chars, bool) or int(max_context_chars) < 1):
        raise UserError(f"--max-context-chars {max_context_chars}: must be >= 1 (characters of context)")


def context_budget(generator: Any, max_new_tokens: int, max_context_chars: int | None) -> int:
    """Characters of context that fit: the explicit limit, and the model window if the generator tells it."""
    check_max_context_chars(max_context_chars)
    budget = DEFAULT_MAX_CONTEXT_CHARS if max_context_chars is None else max_context_chars
    n_ctx = getattr(generator, "n_ctx", None)
    if isinstance(n_ctx, int) and n_ctx > 0:
        # Prompt scaffolding ~150 tokens; ~3 characters per token is a conservative Portuguese average.
        budget = min(budget, max(300, (n_ctx - max_new_tokens - 150) * 3))
    return budget


def _with_k(retriever: Any, k: int) -> Any:
    if isinstance(retriever, IndexRetriever) and retriever.k != k:
        return retriever.model_copy(update={"k": k})
    return retriever


def sources_of(docs: Sequence[Document]) -> list[str]:
    seen: list[str] = []
    for d in docs:
        title = d.metadata.get("title")
        if title and title not in seen:
            seen.append(title)
    return seen


def retrieve(question: str, retriever: Any, k: int = DEFAULT_K) -> list[Document]:
    """The top ``k`` chunks for a question (any LangChain retriever)."""
    question = check_question(question)
    return list(_with_k(retriever, k).invoke(question))[:k]


def check_question(question: str) -> str:
    if question is None or not str(question).strip():
        raise UserError("question is empty")
    return str(question).strip()


def fit_to_window(
    question: str,
    docs: Sequence[Document],
    generator: Any,
    max_new_tokens: int,
    instruction: str = prompt_mod.INSTRUCTION_RAG,
    template: str = "alpaca",
) -> list[Document]:
    """Drop (then cut) passages from the end until prompt + answer fit the generator's window in tokens.

    Uses the generator's own tokenizer (``count_tokens``) when it has one; otherwise returns ``docs`` as is
    (the character budget already applied is then the only limit).
    """
    n_ctx = getattr(generator, "n_ctx", None)
    count = getattr(generator, "count_tokens", None)
    docs = list(docs)
    if not (isinstance(n_ctx, int) and n_ctx > 0 and callable(count)):
        return docs

    def tokens(ds: Sequence[Document]) -> int:
        return count(prompt_mod.build_prompt(question, instruction, format_context(ds), template=template))

    limit = n_ctx - max_new_tokens
    try:
        while docs and tokens(docs) > limit:
            last = docs[-1]
            if len(docs) == 1 or len(last.page_content) > 400:  # cut the last passage by a quarter
                text = last.page_content[: int(len(last.page_content) * 0.75)]
                text = text[: text.rfind(" ")] if " " in text else text
                if len(text) < 50:
                    docs.pop()
                    continue
                docs[-1] = Document(page_content=text + " …", metadata=last.metadata, id=last.id)
            else:
                docs.pop()
    except NotImplementedError:
        return docs
    return docs


def _prompt_chain(
    retriever: Any,
    generator: Any,
    k: int,
    max_context_chars: int | None,
    instruction: str,
    max_new_tokens: int,
    template: str = "alpaca",
):
    """{"question"} -> {question, docs, context, prompt}: the retrieval half of the RAG chain."""
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    retriever = _with_k(retriever, k)
    budget = context_budget(generator, max_new_tokens, max_context_chars)

    def select(x: dict) -> list[Document]:
        docs = fit_context(list(retriever.invoke(x["question"]))[:k], budget)
        return fit_to_window(x["question"], docs, generator, max_new_tokens, instruction, template)

    return (
        RunnablePassthrough.assign(docs=RunnableLambda(select))
        | RunnablePassthrough.assign(context=RunnableLambda(lambda x: format_context(x["docs"])))
        | RunnablePassthrough.assign(
            prompt=RunnableLambda(
                lambda x: prompt_mod.build_prompt(x["question"], instruction, x["context"], template=template)
            )
        )
    )


def rag_chain(
    retriever: Any,
    generator: Any,
    k: int = DEFAULT_K,
    max_context_chars: int | None = None,
    instruction: str = prompt_mod.INSTRUCTION_RAG,
    template: str = "alpaca",
    **gen: Any,
):
    """The LCEL chain {"question"} -> {question, docs, context, prompt, generation}.

    retrieve (top k) -> fit to ``max_context_chars`` and to the model window -> format the context (one block
    per chunk, headed by its article and section) -> ``prompt.build_prompt(question, instruction, context)`` ->
    ``generator.generate(prompt, **gen)``. ``template="estudo"``: the study's prompt (LangChain's English QA
    prompt around the context) and its stop strings, unless ``stop`` is given.
    """
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    prompt_mod.check_template(template)
    if template != "alpaca" and gen.get("stop") is None:
        gen = {**gen, "stop": prompt_mod.stop_strings(template)}
    max_new = int(gen.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
    return _prompt_chain(
        retriever, generator, k, max_context_chars, instruction, max_new, template
    ) | RunnablePassthrough.assign(generation=RunnableLambda(lambda x: generator.generate(x["prompt"], **gen)))


def rag_prompt(
    question: str,
    retriever: Any,
    generator: Any,
    k: int = DEFAULT_K,
    max_context_chars: int | None = None,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    instruction: str = prompt_mod.INSTRUCTION_RAG,
    template: str = "alpaca",
) -> tuple[str, list[Document]]:
    """The prompt ``answer`` would generate from, and its chunks (for streaming, as ``rag.py chat`` does)."""
    question = check_question(question)
    out = _prompt_chain(
        retriever, generator, k, max_context_chars, instruction, max_new_tokens, prompt_mod.check_template(template)
    ).invoke({"question": question})
    return out["prompt"], out["docs"]


def answer(
    question: str,
    retriever: Any,
    generator: Any,
    k: int = DEFAULT_K,
    max_context_chars: int | None = None,
    template: str = "alpaca",
    **gen: Any,
) -> RagAnswer:
    """Retrieve ``k`` chunks, put them in the one prompt template, generate; return text + sources.

    ``gen`` goes to ``generator.generate`` (max_new_tokens, temperature, top_p, stop). The context is cut to
    ``max_context_chars`` (default 4000) and to what the generator's window (``n_ctx``, if it has one) leaves.
    """
    question = check_question(question)
    out = rag_chain(retriever, generator, k=k, max_context_chars=max_context_chars, template=template, **gen).invoke(
        {"question": question}
    )
    generation = out["generation"]
    text = prompt_mod.split_response(getattr(generation, "text", str(generation)), template)
    docs = out["docs"]
    return RagAnswer(
        text=text,
        sources=sources_of(docs),
        contexts=[d.page_content for d in docs],
        generation=generation,
        question=question,
        prompt=out["prompt"],
        documents=docs,
    )
