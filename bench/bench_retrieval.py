#!/usr/bin/env python3
"""Retrieval benchmark: quality (hit@1 / hit@5) on the fixed questions, speed, and FAISS at 1 M vectors.

    python bench/bench_retrieval.py                      # sample dump + data/perguntas.csv, FAISS 1 M
    python bench/bench_retrieval.py --faiss-n 0          # skip the FAISS scale test
    python bench/bench_retrieval.py --index-dir indexes/amostra --reuse-index
    python bench/bench_retrieval.py --scale                        # rank-bm25 vs bm25s at 100k and 1M chunks
    python bench/bench_retrieval.py --scale --sizes 20000          # quick

What it prints (Markdown, ready for docs/benchmarks.md):
1. hit@1 and hit@5 of the source article (column ``artigo``) for dense, BM25 and hybrid: hit@k = the article
   is the title of one of the first k *chunks* returned (not k distinct articles, which would be easier).
2. Embedding throughput while indexing (chunks/s, from the build), and a pure re-embedding of the chunks;
   query latency p50/p95 per retriever (query embedding + search + fusion; warm, one query at a time).
3. FAISS exact (IndexFlatIP) vs IVF (IVF1024, nprobe 8 and 32) on N random unit vectors of the embedding
   dimension: ms per query and recall@10 of IVF against the exact result, with the flat/IVF speed ratio.
   Random vectors have no cluster structure, so IVF recall here is a pessimistic bound.
4. Hours per million chunks on this CPU, from the measured throughput.

``--scale`` instead: rank-bm25 (BM25Okapi, the old BM25) vs bm25s (what ``hybrid``/``bm25`` use now, through
``retrieval.BM25Builder`` and ``BM25Index``) on synthetic chunks at each of ``--sizes``, in one run. The
chunks are the sample dump's sentences (``WikiDumpLoader`` + ``text.split_sentences``) shuffled into texts of
~``--chunk-chars`` characters under an article title, plus a few Zipf-distributed pseudo-names per chunk so
the vocabulary grows with the corpus as real text does (the 43-article sample alone has a few thousand words).
Each library is measured in its own forked process: build time (Portuguese preprocessing included), memory
(RSS growth and peak over the process's starting point), single queries/s (top 20), and for bm25s the
save + memory-mapped load (RSS after the mmap load, before and after the queries). Then the ratios
bm25s / rank-bm25. Finally recall@10 of ``retrieval.finish_faiss``'s IVF against the flat index on
clustered random unit vectors (``--ivf-n``), for each ``--nprobe``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llamawiki import retrieval  # noqa: E402
from llamawiki.fileio import UserError, cli  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    i = (len(values) - 1) * p / 100
    lo, hi = int(i), min(int(i) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (i - lo)


def read_questions(path: Path) -> list[dict]:
    if not path.exists():
        raise UserError(f"{path}: question file not found")
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "pergunta" not in rows[0] or "artigo" not in rows[0]:
        raise UserError(f"{path}: expected columns id,pergunta,resposta_referencia,artigo")
    return rows


def bench_quality(index_dir: Path, questions: list[dict], embeddings, weights) -> tuple[dict, list[dict]]:
    results, misses = {}, []
    for kind in retrieval.RETRIEVER_KINDS:
        r = retrieval.load_retriever(index_dir, kind=kind, k=5, embeddings=embeddings, weights=weights)
        r.invoke("aquecimento")  # warm-up (first call loads kernels)
        hit1 = hit5 = 0
        lat = []
        for row in questions:
            t = time.perf_counter()
            docs = r.invoke(row["pergunta"])
            lat.append(time.perf_counter() - t)
            titles = [d.metadata["title"] for d in docs]
            hit1 += bool(titles) and titles[0] == row["artigo"]
            hit5 += row["artigo"] in titles[:5]
            if not titles or titles[0] != row["artigo"]:
                misses.append(
                    {
                        "retriever": kind,
                        "id": row.get("id"),
                        "pergunta": row["pergunta"],
                        "artigo": row["artigo"],
                        "top": titles[:5],
                    }
                )
        n = len(questions)
        results[kind] = {
            "hit@1": hit1 / n,
            "hit@5": hit5 / n,
            "p50_ms": 1000 * percentile(lat, 50),
            "p95_ms": 1000 * percentile(lat, 95),
            "n": n,
        }
    return results, misses


def bench_embedding(index_dir: Path, embeddings, min_chunks: int = 256) -> dict:
    texts = [d.page_content for d in retrieval.read_chunks(index_dir)]
    while len(texts) < min_chunks:
        texts = texts + texts
    embeddings.embed_documents(texts[:32])  # warm-up
    import torch

    t, c = time.perf_counter(), time.process_time()
    embeddings.embed_documents(texts)
    s, cpu = time.perf_counter() - t, time.process_time() - c
    threads = torch.get_num_threads()
    # On a shared machine wall time mostly measures the scheduler; CPU time / threads is what an idle
    # machine with the same cores would take.
    return {
        "chunks": len(texts),
        "seconds": s,
        "chunks_per_s": len(texts) / s,
        "cpu_seconds": cpu,
        "threads": threads,
        "idle_chunks_per_s": len(texts) / (cpu / threads),
        "mean_chars": sum(map(len, texts)) / len(texts),
    }


def synthetic_vectors(rng, n: int, dim: int, clustered: bool, centers=None):
    """Unit vectors: uniform on the sphere, or around 10,000 random topics (closer to real embeddings)."""
    import numpy as np

    out = np.empty((n, dim), dtype="float32")
    step = 100_000
    for i in range(0, n, step):  # fill in slices: bounded temporary memory
        m = min(step, n - i)
        block = rng.standard_normal((m, dim), dtype=np.float32)
        if clustered:
            block = centers[rng.integers(0, len(centers), m)] + 0.6 * block / np.sqrt(dim)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[i : i + m] = block
    return out


def bench_faiss(
    n: int, dim: int, n_queries: int, nlist: int, nprobes: list[int], seed: int = 0, clustered: bool = False
) -> dict:
    import faiss
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = None
    if clustered:
        centers = rng.standard_normal((10_000, dim), dtype=np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    xb = synthetic_vectors(rng, n, dim, clustered, centers)
    xq = synthetic_vectors(rng, n_queries, dim, clustered, centers)
    out: dict = {
        "n": n,
        "dim": dim,
        "queries": n_queries,
        "threads": faiss.omp_get_max_threads(),
        "memory_mb": xb.nbytes / 2**20,
        "data": "clustered" if clustered else "random",
    }

    flat = faiss.IndexFlatIP(dim)
    t = time.perf_counter()
    flat.add(xb)
    out["flat_add_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _, gt = flat.search(xq, 10)
    out["flat_batch_ms"] = 1000 * (time.perf_counter() - t) / n_queries
    single = []
    for q in xq[: min(20, n_queries)]:
        t = time.perf_counter()
        flat.search(q[None, :], 10)
        single.append(time.perf_counter() - t)
    out["flat_single_ms"] = 1000 * statistics.median(single)

    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    n_train = min(n, 64 * nlist)
    t = time.perf_counter()
    ivf.train(xb[rng.choice(n, n_train, replace=False)])
    out["ivf_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ivf.add(xb)
    out["ivf_add_s"] = time.perf_counter() - t
    out["ivf"] = {}
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        t = time.perf_counter()
        _, got = ivf.search(xq, 10)
        batch_ms = 1000 * (time.perf_counter() - t) / n_queries
        single = []
        for q in xq[: min(20, n_queries)]:
            t = time.perf_counter()
            ivf.search(q[None, :], 10)
            single.append(time.perf_counter() - t)
        recall = float(np.mean([len(set(gt[i]) & set(got[i])) / 10 for i in range(n_queries)]))
        out["ivf"][nprobe] = {
            "batch_ms": batch_ms,
            "single_ms": 1000 * statistics.median(single),
            "recall@10": recall,
            "speedup_vs_flat": out["flat_batch_ms"] / batch_ms,
        }
    return out


# ---------------------------------------------------------------------------------------------------------
# --scale: rank-bm25 vs bm25s, IVF vs flat recall
# ---------------------------------------------------------------------------------------------------------


def sample_sentences(dump: Path) -> tuple[list[str], list[str]]:
    """The sample's sentences (through the project's loader) and its article titles."""
    from llamawiki.text import split_sentences

    sentences, titles = [], []
    for doc in retrieval.WikiDumpLoader(dump).lazy_load():
        if doc.metadata["title"] not in titles:
            titles.append(doc.metadata["title"])
        sentences += [s for s in split_sentences(doc.page_content) if len(s) > 20]
    if not sentences:
        raise UserError(f"{dump}: no sentences")
    return sentences, titles


def synthetic_chunks(
    sentences: list[str],
    titles: list[str],
    n: int,
    chunk_chars: int,
    seed: int = 0,
    names_per_chunk: int = 3,
    name_space: int = 2_000_000,
) -> Iterator[str]:
    """``n`` chunks: a title line, random sentences up to ``chunk_chars``, a few Zipf pseudo-names."""
    import random

    import numpy as np

    rng = random.Random(seed)
    zipf = np.random.default_rng(seed).zipf(1.3, size=n * names_per_chunk) % name_space
    for i in range(n):
        parts, size = [rng.choice(titles)], 0
        while size < chunk_chars:
            s = rng.choice(sentences)
            parts.append(s)
            size += len(s) + 1
        names = " ".join(f"nome{int(z)}x" for z in zipf[i * names_per_chunk : (i + 1) * names_per_chunk])
        yield "\n".join(parts[:1] + [" ".join(parts[1:]) + " " + names])


def make_queries(sentences: list[str], n: int, seed: int = 1) -> list[str]:
    """Question-like queries: 3-6 content words of a random sentence."""
    import random

    rng = random.Random(seed)
    out = []
    while len(out) < n:
        words = retrieval.bm25_preprocess(rng.choice(sentences))
        if len(words) >= 3:
            out.append(" ".join(rng.sample(words, min(len(words), rng.randint(3, 6)))))
    return out


def _rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _timed_queries(search, queries: list[str], budget_s: float) -> tuple[float, int]:
    search(queries[0])  # warm-up
    t = time.perf_counter()
    done = 0
    for q in queries:
        search(q)
        done += 1
        if time.perf_counter() - t > budget_s:
            break
    return done / (time.perf_counter() - t), done


def _bench_one(lib: str, texts: list[str], queries: list[str], budget_s: float, workdir: Path) -> dict:
    """Runs in a forked child: build + query one library; RSS relative to the child's start."""
    import numpy as np

    base = _rss_mb()
    t = time.perf_counter()
    if lib == "rank-bm25":
        from rank_bm25 import BM25Okapi

        index = BM25Okapi([retrieval.bm25_preprocess(x) for x in texts])
        out = {"build_s": time.perf_counter() - t, "rss_mb": _rss_mb() - base}

        def search(q):
            scores = index.get_scores(retrieval.bm25_preprocess(q))
            top = np.argpartition(-scores, 19)[:20]
            return top[np.argsort(-scores[top])]
    else:
        builder = retrieval.BM25Builder()
        for x in texts:
            builder.add(x)
        offsets = list(range(len(texts)))  # the bench keeps no chunks.jsonl: a hit returns its position
        folder = workdir / f"bm25s-{len(texts)}"
        folder.mkdir(parents=True, exist_ok=True)
        entry = builder.save(folder, offsets)
        out = {
            "build_s": time.perf_counter() - t,
            "rss_mb": _rss_mb() - base,
            "vocabulary": entry["vocabulary"],
            "postings": entry["postings"],
            "disk_mb": sum(f.stat().st_size for f in folder.iterdir()) / 2**20,
        }
        del builder, offsets
        import gc

        gc.collect()
        import bm25s

        before = _rss_mb()
        t = time.perf_counter()
        model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)

        class Positions:
            def get(self, i):
                return i

        index = retrieval.BM25Index(model, Positions())
        out["load_mmap_s"] = time.perf_counter() - t
        out["rss_after_load_mb"] = _rss_mb() - before

        def search(q):
            return index.search(q, 20)

    out["peak_rss_mb"] = _rss_mb("VmHWM") - base
    qps, done = _timed_queries(search, queries, budget_s)
    out.update({"queries_per_s": qps, "queries": done})
    if lib == "bm25s":
        out["rss_after_queries_mb"] = _rss_mb() - before
    return out


def _in_child(fn, *args) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)

    def run():
        try:
            child.send(fn(*args))
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            child.send({"error": f"{type(e).__name__}: {e}"})

    proc = ctx.Process(target=run)
    proc.start()
    result = parent.recv() if parent.poll(None) else {"error": "no result"}
    proc.join()
    return result


def bench_bm25_scale(args) -> list[dict]:
    sentences, titles = sample_sentences(Path(args.dump))
    queries = make_queries(sentences, args.queries)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            t = time.perf_counter()
            texts = list(synthetic_chunks(sentences, titles, n, args.chunk_chars))
            row = {
                "n": n,
                "make_s": time.perf_counter() - t,
                "mean_chars": sum(map(len, texts)) / n,
                "sentences": len(sentences),
            }
            for lib in args.libs:
                row[lib] = _in_child(_bench_one, lib, texts, queries, args.query_budget, Path(tmp))
                print(f"  [{n:,} chunks] {lib}: {row[lib]}", file=sys.stderr, flush=True)
            rows.append(row)
            del texts
    return rows


def bench_ivf_recall(n: int, dim: int, n_queries: int, nlist: int, nprobes: list[int], seed: int = 0) -> dict:
    """recall@10 of retrieval.finish_faiss's IVF vs the exact flat index (L2), clustered unit vectors."""
    from types import SimpleNamespace

    import faiss
    import numpy as np

    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(nlist * 4, 100), dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    xb = synthetic_vectors(rng, n, dim, True, centers)
    xq = synthetic_vectors(rng, n_queries, dim, True, centers)
    flat = faiss.IndexFlatL2(dim)
    flat.add(xb)
    t = time.perf_counter()
    _, gt = flat.search(xq, 10)
    flat_ms = 1000 * (time.perf_counter() - t) / n_queries
    store = SimpleNamespace(index=flat)
    t = time.perf_counter()
    entry = retrieval.finish_faiss(store, "ivf", nlist, nprobes[0])
    out = {
        "n": n,
        "dim": dim,
        "queries": n_queries,
        "nlist": nlist,
        "build_s": time.perf_counter() - t,
        "index": entry["index"],
        "flat_ms": flat_ms,
        "nprobe": {},
    }
    ivf = faiss.extract_index_ivf(store.index)
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        t = time.perf_counter()
        _, got = store.index.search(xq, 10)
        ms = 1000 * (time.perf_counter() - t) / n_queries
        recall = float(np.mean([len(set(gt[i]) & set(got[i])) / 10 for i in range(n_queries)]))
        out["nprobe"][nprobe] = {"recall@10": recall, "ms": ms, "speedup": flat_ms / ms}
    return out


def report_scale(args, rows: list[dict], ivf: dict | None) -> str:
    import platform

    lines = [
        f"Máquina: {os.cpu_count()} núcleos ({platform.processor() or platform.machine()}), sem GPU. "
        f"Trechos sintéticos: frases da amostra ({rows[0]['sentences'] if rows else 0} frases) embaralhadas em "
        f"textos de ~{args.chunk_chars} caracteres + 3 pseudo-nomes Zipf por trecho; {args.queries} consultas "
        f"de 3–6 palavras, top 20, uma a uma (até {args.query_budget:.0f} s por biblioteca).",
        "",
        "| trechos | biblioteca | construção (s) | RSS (MB) | pico RSS (MB) | consultas/s | vocabulário |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = []
    for row in rows:
        for lib in args.libs:
            r = row[lib]
            if "error" in r:
                lines.append(f"| {row['n']:,} | {lib} | erro: {r['error']} | | | | |")
                continue
            lines.append(
                f"| {row['n']:,} | {lib} | {r['build_s']:.1f} | {r['rss_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
                f"{r['queries_per_s']:.1f} | {r.get('vocabulary', '')} |"
            )
        a, b = row.get("rank-bm25", {}), row.get("bm25s", {})
        if "build_s" in a and "build_s" in b:
            ratios.append(
                (
                    row["n"],
                    b["build_s"] / a["build_s"],
                    b["rss_mb"] / max(a["rss_mb"], 1e-9),
                    b["queries_per_s"] / a["queries_per_s"],
                    b,
                )
            )
    if ratios:
        lines += [
            "",
            "Razões bm25s / rank-bm25:",
            "",
            "| trechos | tempo de construção | RSS após construir | consultas/s "
            "| bm25s mmap: carga (s), RSS após carga / após consultas (MB), disco (MB) |",
            "|---|---|---|---|---|",
        ]
        for n, build, rss, qps, b in ratios:
            lines.append(
                f"| {n:,} | {build:.2f}× | {rss:.2f}× | **{qps:.0f}×** | {b['load_mmap_s']:.2f} s, "
                f"{b['rss_after_load_mb']:.0f} / {b['rss_after_queries_mb']:.0f} MB, {b['disk_mb']:.0f} MB |"
            )
    if ivf:
        lines += [
            "",
            f"FAISS IVF{ivf['nlist']} (`retrieval.finish_faiss`, {ivf['index']}) vs Flat L2 exato: "
            f"{ivf['n']:,} vetores unitários agrupados de dim {ivf['dim']}, {ivf['queries']} consultas "
            f"(treino + inserção {ivf['build_s']:.1f} s; Flat {ivf['flat_ms']:.2f} ms/consulta em lote):",
            "",
            "| nprobe | recall@10 | ms/consulta (lote) | vs. flat |",
            "|---|---|---|---|",
        ]
        for nprobe, r in ivf["nprobe"].items():
            lines.append(f"| {nprobe} | {r['recall@10']:.3f} | {r['ms']:.3f} | {r['speedup']:.1f}× |")
    return "\n".join(lines)


def report(args, manifest: dict, quality: dict, misses: list[dict], emb: dict, fa: dict | None) -> str:
    import platform

    c, t = manifest["counts"], manifest["timing"]
    lines = [
        f"Máquina: {os.cpu_count()} núcleos ({platform.processor() or platform.machine()}), sem GPU; "
        f"embeddings `{manifest['embeddings']['name']}` (dim {manifest['embeddings']['dimension']}), "
        f"chunks de {manifest['chunking']['chunk_size']}/{manifest['chunking']['chunk_overlap']} caracteres.",
        f"Amostra: {c['articles']} artigos, {c['documents']} seções, {c['chunks']} chunks; "
        f"{quality['dense']['n']} perguntas de `{args.questions}`.",
        "",
        "| recuperador | hit@1 | hit@5 | latência p50 (ms) | p95 (ms) |",
        "|---|---|---|---|---|",
    ]
    for kind in ("dense", "bm25", "hybrid"):
        q = quality[kind]
        lines.append(f"| {kind} | {q['hit@1']:.2f} | {q['hit@5']:.2f} | {q['p50_ms']:.1f} | {q['p95_ms']:.1f} |")
    per_m = 1e6 / emb["chunks_per_s"] / 3600
    per_m_idle = 1e6 / emb["idle_chunks_per_s"] / 3600
    lines += [
        "",
        f"Embeddings: {t['chunks_per_s']} chunks/s durante a indexação; re-embedding de {emb['chunks']} chunks "
        f"(média {emb['mean_chars']:.0f} caracteres): {emb['chunks_per_s']:.1f} chunks/s em tempo de relógio "
        f"(→ {per_m:.1f} h por milhão de chunks), {emb['cpu_seconds']:.1f} s de CPU em {emb['threads']} threads "
        f"→ **{emb['idle_chunks_per_s']:.1f} chunks/s com a máquina livre, {per_m_idle:.1f} h por milhão de chunks**.",
    ]
    if fa:
        lines += ["", report_faiss(args, fa)]
    if misses:
        lines += ["", "Erros no top-1:"]
        for m in misses:
            lines.append(f"- {m['retriever']}: “{m['pergunta']}” (esperado {m['artigo']}) → {m['top']}")
    return "\n".join(lines)


def report_faiss(args, fa: dict) -> str:
    kind = "aleatórios" if fa["data"] == "random" else "sintéticos em 10.000 grupos"
    lines = [
        f"FAISS, {fa['n']:,} vetores {kind} normalizados de dim {fa['dim']} ({fa['memory_mb']:.0f} MB), "
        f"{fa['queries']} consultas, top-10, {fa['threads']} threads:",
        "",
        "| índice | ms/consulta (lote) | ms/consulta (uma a uma) | recall@10 | vs. flat |",
        "|---|---|---|---|---|",
        f"| Flat (exato) | {fa['flat_batch_ms']:.2f} | {fa['flat_single_ms']:.2f} | 1.00 | 1.0× |",
    ]
    for nprobe, r in fa["ivf"].items():
        lines.append(
            f"| IVF{args.nlist}, nprobe {nprobe} | {r['batch_ms']:.2f} | {r['single_ms']:.2f} | "
            f"{r['recall@10']:.2f} | {r['speedup_vs_flat']:.1f}× mais rápido |"
        )
    lines.append(
        f"\n(IVF: treino {fa['ivf_train_s']:.1f} s em {min(fa['n'], 64 * args.nlist):,} vetores, "
        f"inserção {fa['ivf_add_s']:.1f} s; Flat: inserção {fa['flat_add_s']:.1f} s.)"
    )
    return "\n".join(lines)


@cli
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dump", default=str(ROOT / "data" / "ptwiki-amostra-pages-articles.xml.bz2"))
    p.add_argument("--questions", default=str(ROOT / "data" / "perguntas.csv"))
    p.add_argument("--index-dir", default=None, help="where to build the index (default: a temp folder)")
    p.add_argument("--reuse-index", action="store_true", help="use --index-dir as it is instead of rebuilding")
    p.add_argument("--embeddings", default=None)
    p.add_argument("--chunk-size", type=int, default=retrieval.DEFAULT_CHUNK_SIZE)
    p.add_argument("--chunk-overlap", type=int, default=retrieval.DEFAULT_CHUNK_OVERLAP)
    p.add_argument("--weights", type=float, nargs=2, default=retrieval.DEFAULT_WEIGHTS, metavar=("BM25", "DENSE"))
    p.add_argument("--faiss-n", type=int, default=1_000_000, help="random vectors for the FAISS test (0: skip)")
    p.add_argument("--faiss-queries", type=int, default=200)
    p.add_argument(
        "--faiss-data",
        choices=("random", "clustered"),
        default="random",
        help="random: uniform unit vectors (speed; worst case for IVF recall); clustered: 10,000 topics",
    )
    p.add_argument("--skip-quality", action="store_true", help="only the FAISS test (needs no index)")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    p.add_argument("--json", default=None, help="also write the raw figures here")
    p.add_argument("--scale", action="store_true", help="rank-bm25 vs bm25s at --sizes, and IVF recall (no model)")
    p.add_argument("--sizes", default="100000,1000000", help="--scale: chunk counts, comma-separated")
    p.add_argument("--libs", default="rank-bm25,bm25s", help="--scale: which BM25 libraries")
    p.add_argument("--chunk-chars", type=int, default=800, help="--scale: characters per synthetic chunk")
    p.add_argument("--queries", type=int, default=200, help="--scale: queries per library")
    p.add_argument("--query-budget", type=float, default=30.0, help="--scale: max seconds of queries per library")
    p.add_argument("--ivf-n", type=int, default=100_000, help="--scale: vectors for the IVF recall test (0: skip)")
    args = p.parse_args(argv)

    if args.scale:
        try:
            args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        except ValueError:
            raise UserError(f"--sizes {args.sizes}: expected comma-separated integers") from None
        args.libs = [x.strip() for x in args.libs.split(",") if x.strip()]
        unknown = set(args.libs) - {"rank-bm25", "bm25s"}
        if unknown or not args.sizes or min(args.sizes) < 20:
            raise UserError(f"--sizes/--libs: sizes >= 20 and libraries rank-bm25, bm25s ({sorted(unknown)})")
        if "rank-bm25" in args.libs:
            try:
                import rank_bm25  # noqa: F401
            except ImportError:
                print("note: rank-bm25 is not installed; measuring bm25s only", file=sys.stderr)
                args.libs.remove("rank-bm25")
        rows = bench_bm25_scale(args)
        ivf = bench_ivf_recall(args.ivf_n, 384, args.faiss_queries, args.nlist, args.nprobe) if args.ivf_n else None
        print(report_scale(args, rows, ivf))
        if args.json:
            Path(args.json).write_text(json.dumps({"bm25": rows, "ivf": ivf}, indent=2, default=str), encoding="utf-8")
        return 0

    manifest = quality = emb = None
    misses: list[dict] = []
    if args.skip_quality:
        fa = bench_faiss(
            args.faiss_n, 384, args.faiss_queries, args.nlist, args.nprobe, clustered=args.faiss_data == "clustered"
        )
        print(report_faiss(args, fa))
        return 0
    questions = read_questions(Path(args.questions))
    embeddings = retrieval.load_embeddings(args.embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(args.index_dir) if args.index_dir else Path(tmp) / "index"
        if args.reuse_index:
            manifest = retrieval.read_manifest(index_dir).data
        else:
            manifest = retrieval.build_index(
                args.dump,
                index_dir,
                embeddings=embeddings,
                chunk_size=args.chunk_size,
                chunk_overlap=args.chunk_overlap,
            ).data
        quality, misses = bench_quality(index_dir, questions, embeddings, args.weights)
        emb = bench_embedding(index_dir, embeddings)
    fa = None
    if args.faiss_n > 0:
        fa = bench_faiss(
            args.faiss_n,
            manifest["embeddings"]["dimension"] if manifest else 384,
            args.faiss_queries,
            args.nlist,
            args.nprobe,
            clustered=args.faiss_data == "clustered",
        )
    print(report(args, manifest, quality, misses, emb, fa))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"manifest": manifest, "quality": quality, "misses": misses, "embedding": emb, "faiss": fa},
                ensure_ascii=False,
                indent=2,
                default=str,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
