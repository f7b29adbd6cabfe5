"""Dedup speed and memory: signature throughput per core, end-to-end Beam time and peak memory.

1. Signatures per second on one core, three ways side by side on the same documents:
   polyko's vectorised path (numpy shingle hashes + one permutation matrix per batch), datasketch
   ``MinHash.bulk`` (SHA-1 per shingle, permutations vectorised per document) and datasketch
   ``update()`` once per shingle.
2. End-to-end ``pipeline.dedup.Dedup`` on the shared benchmark corpus (``bench/corpus.py``: real
   documents with injected exact and near duplicates) for each ``--sizes``, each size in a fresh
   child process (FnApiRunner, one worker) so peak RSS is that run's own.

    .venv/bin/python -m bench.bench_dedup [--sizes 10000 100000] [--json out.json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CACHE = Path("/tmp/polyko_bench")


def corpus(n: int) -> Path:
    from bench.corpus import generate

    out = CACHE / f"dedup-{n}"
    if not (out / "labels.json").exists():
        generate(n, out, seed=1)
    return out


def _texts(n: int) -> list[str]:
    texts = []
    for path in sorted(corpus(10_000).glob("part-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
                if len(texts) == n:
                    return texts
    return texts


def signature_throughput(n_docs: int) -> dict:
    import numpy as np
    from datasketch import MinHash

    from dedup.minhash import MinHasher, MinHashParams, shingle_normalize
    from pipeline.config import load_defaults

    params = MinHashParams.from_section(load_defaults()["dedup"]["minhash"])
    texts = _texts(n_docs)
    chars = sum(len(t) for t in texts)
    hasher = MinHasher(params)
    hasher.shingles("warm-up")  # builds the punctuation table once per process
    # CPU time of this process: "per core" even while other jobs share the machine's cores

    t0 = time.process_time()
    sets = [hasher.shingles(t) for t in texts]
    t1 = time.process_time()
    for start in range(0, len(sets), 512):  # the Beam stage's batch size
        hasher.signatures(sets[start:start + 512])
    t2 = time.process_time()
    ours = len(texts) / (t2 - t0)

    def byte_shingles(text: str) -> list[bytes]:
        norm = shingle_normalize(text)
        k = params.shingle_size
        return list({norm[i:i + k].encode("utf-8") for i in range(max(1, len(norm) - k + 1))}) if norm else []

    t3 = time.process_time()
    grams = [byte_shingles(t) for t in texts]
    MinHash.bulk(grams, num_perm=params.num_perm, seed=params.seed)
    t4 = time.process_time()
    bulk = len(texts) / (t4 - t3)

    few = texts[: max(1, len(texts) // 10)]
    t5 = time.process_time()
    for t in few:
        m = MinHash(num_perm=params.num_perm, seed=params.seed)
        for g in byte_shingles(t):
            m.update(g)
    t6 = time.process_time()
    per_update = len(few) / (t6 - t5)
    avg_shingles = float(np.mean([len(s) for s in sets]))
    return {"docs": len(texts), "avg_chars": round(chars / len(texts)), "avg_shingles": round(avg_shingles),
            "num_perm": params.num_perm, "shingle": f"{params.shingle}{params.shingle_size}",
            "polyko_docs_per_s": round(ours), "polyko_shingle_s": round(t1 - t0, 3),
            "polyko_signature_s": round(t2 - t1, 3),
            "datasketch_bulk_docs_per_s": round(bulk), "datasketch_update_docs_per_s": round(per_update),
            "speedup_vs_bulk": round(ours / bulk, 1), "speedup_vs_update": round(ours / per_update, 1)}


def end_to_end_child(n: int) -> None:
    """Runs in a child process: read the corpus, Dedup, print one JSON line."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from filters.base import Document
    from pipeline.config import load_defaults
    from pipeline.dedup import Dedup

    src = corpus(n)
    stats_path = CACHE / f"dedup-{n}-stats.json"
    t0 = time.perf_counter()

    def write_stats(s):
        stats_path.write_text(json.dumps(s, ensure_ascii=False))

    def to_doc(line: str) -> Document:
        r = json.loads(line)
        return Document(r["id"], r["text"], r.get("source", ""))

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        docs = (p | "Read" >> beam.io.ReadFromText(str(src / "part-*.jsonl.gz"))
                | "Parse" >> beam.Map(to_doc))
        res = docs | "Dedup" >> Dedup(load_defaults()["dedup"])
        res["stats"] | "Stats" >> beam.Map(write_stats)
    wall = time.perf_counter() - t0
    stats = json.loads(stats_path.read_text())
    labels = json.loads((src / "labels.json").read_text())
    print(json.dumps({
        "docs": n, "bytes": labels["bytes"], "injected_exact": labels["kinds"].get("exact_dup", 0),
        "injected_near": labels["kinds"].get("near_dup", 0),
        "wall_s": round(wall, 1), "docs_per_s": round(n / wall),
        # CPU seconds of the (single-worker) process: comparable across runs on a shared machine
        "cpu_s": round(resource.getrusage(resource.RUSAGE_SELF).ru_utime
                       + resource.getrusage(resource.RUSAGE_SELF).ru_stime, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "drop_exact": stats["counts"]["drop_exact"], "drop_near": stats["counts"]["drop_near"],
        "lsh_candidate_pairs": stats["lsh_candidate_pairs"], "clusters": stats["clusters"],
        "capped_buckets": stats["capped_buckets"], "cc_unconverged_nodes": stats["cc_unconverged_nodes"],
        "audit_fp_rate": stats["audit"]["false_positive_rate"],
        "largest_cluster": stats["largest_clusters"][0]["size"] if stats["largest_clusters"] else 0}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--sig-docs", type=int, default=5000)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        end_to_end_child(args.child)
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    results = {"signatures": signature_throughput(args.sig_docs), "end_to_end": []}
    print("signatures (1 core):", json.dumps(results["signatures"]), flush=True)
    for n in args.sizes:
        corpus(n)  # generate outside the timed child
        out = subprocess.run([sys.executable, "-m", "bench.bench_dedup", "--child", str(n)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results["end_to_end"].append(row)
        print("end-to-end:", json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
