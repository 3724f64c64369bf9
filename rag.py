#!/usr/bin/env python3
"""RAG over the Portuguese Wikipedia dump: build the index, ask a question, or chat.

    python rag.py index data/ptwiki-amostra-pages-articles.xml.bz2 --index-dir indexes/amostra
    python rag.py ask "Qual é a capital do Brasil?" --index-dir indexes/amostra
    python rag.py ask "Quem foi Tiradentes?" --retriever bm25 --k 5 --retrieve-only --json
    python rag.py chat --index-dir indexes/amostra                               # /reset, /exit as in chat_cpu.py
    python rag.py ask "Quem foi Tiradentes?" --adapter models/lora-demo          # RAG + the fine-tuned adapter
    python rag.py merge indexes/parte1 indexes/parte2 --index-dir indexes/ptwiki   # dumps split in parts
    python rag.py merge indexes/partes/* --index-dir indexes/ptwiki --index-type ivf --nlist 8192 --nprobe 32

The logic is in llamawiki/retrieval.py (loader, splitter, embeddings, FAISS flat/IVF + bm25s, LCEL answer chain);
models are loaded by llamawiki/models.py (llama.cpp on the embedded Gemma GGUF by default).
"""

from __future__ import annotations

import argparse
import json
import sys

from llamawiki.fileio import use_offline_hub

use_offline_hub()

from llamawiki import options, retrieval  # noqa: E402
from llamawiki.fileio import cli  # noqa: E402

DEFAULT_INDEX = "indexes/amostra"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="index a dump (FAISS + bm25s + manifest)")
    ix.add_argument("dump", help="MediaWiki XML dump (.xml or .xml.bz2)")
    ix.add_argument("--index-dir", default=DEFAULT_INDEX)
    ix.add_argument(
        "--embeddings", default=None, help="sentence-transformers name or folder (default: embedded all-MiniLM-L6-v2)"
    )
    ix.add_argument(
        "--chunk-size", type=int, default=retrieval.DEFAULT_CHUNK_SIZE, help="characters (default %(default)s)"
    )
    ix.add_argument(
        "--chunk-overlap", type=int, default=retrieval.DEFAULT_CHUNK_OVERLAP, help="characters (default %(default)s)"
    )
    ix.add_argument(
        "--batch-size",
        type=int,
        default=retrieval.DEFAULT_BATCH_SIZE,
        help="chunks embedded per batch (default %(default)s)",
    )
    ix.add_argument("--limit", type=int, default=None, help="index only the first N articles")
    ix.add_argument("--allow-truncated", action="store_true", help="index the complete pages of a truncated dump")
    ix.add_argument(
        "--category",
        default=None,
        metavar="NAME",
        help='index only the articles in this category of the dump ("História do Brasil")',
    )
    ix.add_argument(
        "--category-depth",
        type=int,
        default=0,
        metavar="N",
        help="... or in its subcategories down to N levels (default: %(default)s = directly in it)",
    )
    ix.add_argument(
        "--rebuild",
        action="store_true",
        help="build again even when --index-dir already holds an index of the same dump, settings and code",
    )
    add_faiss_arguments(ix, retrieval.DEFAULT_INDEX_TYPE, retrieval.DEFAULT_NLIST, retrieval.DEFAULT_NPROBE)

    mg = sub.add_parser("merge", help="merge indexes built from parts of a dump into one")
    mg.add_argument("inputs", nargs="+", help="index folders (same embeddings and chunk settings)")
    mg.add_argument("--index-dir", required=True, help="the merged index")
    add_faiss_arguments(mg, None, None, None)

    for name, help_ in (("ask", "answer one question"), ("chat", "ask questions interactively")):
        q = sub.add_parser(name, help=help_)
        if name == "ask":
            q.add_argument("question")
            q.add_argument("--json", action="store_true", help="print one JSON object")
            q.add_argument("--retrieve-only", action="store_true", help="show the retrieved chunks, load no model")
        q.add_argument("--index-dir", default=DEFAULT_INDEX)
        q.add_argument("--retriever", choices=retrieval.RETRIEVER_KINDS, default="hybrid")
        q.add_argument("--k", type=int, default=retrieval.DEFAULT_K, help="chunks in the context (default %(default)s)")
        q.add_argument(
            "--embeddings", default=None, help="must be the model the index was built with (default: the manifest's)"
        )
        q.add_argument(
            "--weights",
            type=float,
            nargs=2,
            metavar=("BM25", "DENSE"),
            default=retrieval.DEFAULT_WEIGHTS,
            help="hybrid fusion weights (default %(default)s)",
        )
        q.add_argument(
            "--max-context-chars",
            type=int,
            default=retrieval.DEFAULT_MAX_CONTEXT_CHARS,
            help="most characters of retrieved text in the prompt, >= 1 (default %(default)s)",
        )
        q.add_argument(
            "--nprobe", type=int, default=None, help="IVF index: cells searched per query (default: the manifest's)"
        )
        options.add_model_arguments(q)
        options.add_generation_arguments(q)
        if name == "chat":
            q.add_argument("--verbose", action="store_true", help="print tokens/s after each answer")
            q.set_defaults(prompt=None, system=None)
    return p.parse_args(argv)


def add_faiss_arguments(p: argparse.ArgumentParser, index_type, nlist, nprobe) -> None:
    """--index-type/--nlist/--nprobe; None defaults (merge) mean: as the first input index."""
    same = "default: as the first input" if index_type is None else None
    p.add_argument(
        "--index-type",
        choices=retrieval.INDEX_TYPES,
        default=index_type,
        help=f"FAISS index: flat (exact) or ivf (inverted lists, for millions of chunks) "
        f"({same or 'default %(default)s'})",
    )
    p.add_argument(
        "--nlist",
        type=int,
        default=nlist,
        help=f"IVF cells; fewer chunks than this -> flat ({same or 'default %(default)s'})",
    )
    p.add_argument(
        "--nprobe",
        type=int,
        default=nprobe,
        help=f"IVF cells searched per query, stored in the manifest ({same or 'default %(default)s'})",
    )


def describe_faiss(m) -> str:
    f = m["faiss"]
    if f.get("index_type") == "ivf":
        return f"FAISS {f['index']} nlist {f['nlist']} nprobe {f['nprobe']}"
    return f"FAISS {f.get('index', 'flat')}"


def load_model(args: argparse.Namespace):
    """The generator through the one model loader (llama.cpp on the embedded GGUF unless told otherwise)."""
    from llamawiki import models

    return models.load_generator(options.model_spec(args))


def print_answer(res: retrieval.RagAnswer, as_json: bool) -> None:
    if as_json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=2))
        return
    print(res.text or "(resposta vazia)")
    print("\nFontes: " + "; ".join(res.sources))


def print_chunks(question: str, docs, as_json: bool) -> None:
    if as_json:
        out = {
            "question": question,
            "sources": retrieval.sources_of(docs),
            "chunks": [
                {
                    "rank": d.metadata.get("rank"),
                    "title": d.metadata.get("title"),
                    "section": d.metadata.get("section"),
                    "source": d.metadata.get("source"),
                    "score": d.metadata.get("score"),
                    "text": d.page_content,
                }
                for d in docs
            ],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for d in docs:
        m = d.metadata
        print(f"[{m.get('rank')}] {m.get('title')} — {m.get('section')}  (score {m.get('score')})  {m.get('source')}")
        print("    " + d.page_content.replace("\n", " ")[:300])


def chat(args: argparse.Namespace, retriever, generator) -> int:
    """The shared terminal chat (llamawiki.chat: /reset, /exit, Ctrl-C), each answer from its own context."""
    from llamawiki.chat import RagChat, run_chat

    conversation = RagChat(
        generator,
        retriever,
        k=args.k,
        max_context_chars=args.max_context_chars,
        verbose=args.verbose,
        **options.generation_params(args),
    )
    return run_chat(generator, args, chat=conversation)


@cli
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "index":
        m = retrieval.build_index(
            args.dump,
            args.index_dir,
            embeddings=args.embeddings,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            batch_size=args.batch_size,
            allow_truncated=args.allow_truncated,
            limit=args.limit,
            index_type=args.index_type,
            nlist=args.nlist,
            nprobe=args.nprobe,
            category=args.category,
            category_depth=args.category_depth,
            skip_if_current=not args.rebuild,
        )
        c, t = m["counts"], m["timing"]
        if m.reused:
            print(
                f"{args.index_dir}: up to date ({c['chunks']} chunks of this dump, with these settings and this code): "
                "nothing to do; --rebuild builds it again"
            )
            return 0
        print(
            f"{args.index_dir}: {c['articles']} articles, {c['documents']} sections, {c['chunks']} chunks "
            f"({m['embeddings']['name']}, dim {m['embeddings']['dimension']}; {t['chunks_per_s']} chunks/s; "
            f"{describe_faiss(m)}; bm25s)"
        )
        return 0

    if args.command == "merge":
        m = retrieval.merge_indexes(
            args.inputs, args.index_dir, index_type=args.index_type, nlist=args.nlist, nprobe=args.nprobe
        )
        c = m["counts"]
        print(
            f"{args.index_dir}: {len(args.inputs)} indexes merged: {c['articles']} articles, {c['chunks']} chunks "
            f"({describe_faiss(m)}; bm25s)"
        )
        return 0

    options.check_generation_arguments(args)
    if args.command == "chat":
        from llamawiki.chat import check_chat_arguments

        check_chat_arguments(args)
    if args.command == "ask":
        retrieval.check_question(args.question)  # before loading the embedder and the model
    retriever = retrieval.load_retriever(
        args.index_dir,
        kind=args.retriever,
        k=args.k,
        embeddings=args.embeddings,
        weights=args.weights,
        nprobe=args.nprobe,
    )
    if args.command == "ask" and args.retrieve_only:
        print_chunks(args.question, retrieval.retrieve(args.question, retriever, k=args.k), args.json)
        return 0
    generator = load_model(args)
    if args.command == "chat":
        return chat(args, retriever, generator)
    res = retrieval.answer(
        args.question,
        retriever,
        generator,
        k=args.k,
        max_context_chars=args.max_context_chars,
        **options.generation_params(args),
    )
    print_answer(res, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
