"""Throughput of the langid stage alone and the quality stage alone, per core, on the same documents.

    .venv/bin/python -m bench.bench_filters [--docs 6000] [--repeats 3] [--json out.json]

Single process, one thread: the numbers are per core.  Documents are real Korean text from
../shared/data in a web-like mix (Wikipedia articles, NSMC review pages, comments of at least one
sentence), normalised once before timing, because both stages run after ``normalize`` in the
pipeline.  Each stage runs on fresh copies of the same documents (quality rewrites text), timing
only ``run_filters``; model loading (``setup``) happens before the clock starts, as in a Beam
worker.  The best of ``--repeats`` runs is reported (least disturbed by other processes on a
shared machine), and all runs are listed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import sys
import time
from pathlib import Path

from filters.base import Document, run_filters
from filters.langid import build_filters as build_langid
from filters.normalize import normalize_text
from pipeline.config import load_defaults

DATA_DIR = Path(os.environ.get("POLYKO_SHARED_DATA",
                               Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
# Share of each source in the benchmark documents (by count).
MIX = {"ko_wiki.jsonl.gz": 0.4, "ko_nsmc_reviews.jsonl.gz": 0.3, "ko_comments.jsonl.gz": 0.3}


def load_documents(n_docs: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    texts: list[str] = []
    for name, share in MIX.items():
        with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as f:
            pool = [json.loads(line)["text"] for line in f]
        if name == "ko_comments.jsonl.gz":
            pool = [t for t in pool if len(t) >= 30]
        texts.extend(rng.sample(pool, min(len(pool), int(n_docs * share))))
    rng.shuffle(texts)
    return [normalize_text(t) for t in texts]


def time_stage(filters, texts: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of running ``filters`` over fresh documents of ``texts``.

    CPU time of this process is the per-core cost even when other jobs share the cores; wall
    time is listed too."""
    docs = [Document(id=str(i), text=t, source="bench") for i, t in enumerate(texts)]
    for f in filters:
        f.ensure_setup()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for doc in docs:
        run_filters(filters, doc)
    return time.process_time() - cpu0, time.perf_counter() - wall0


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=6000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    # main() with no argument (bench/eval_all.py, bench/run_all.py) runs the defaults instead of
    # reading the caller's command line.
    args = ap.parse_args([] if argv is None else argv)

    from filters.quality import build_filters as build_quality

    defaults = load_defaults()
    texts = load_documents(args.docs)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    stages = {"langid": lambda: build_langid(defaults["langid"]),
              "quality": lambda: build_quality(defaults["quality"])}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in stages}
    for _ in range(args.repeats):                 # interleaved, so both see the same machine load
        for name, make in stages.items():
            runs[name].append(time_stage(make(), texts))
    result = {"documents": len(texts), "megabytes": round(n_bytes / 1e6, 2),
              "mean_chars_per_doc": round(sum(map(len, texts)) / len(texts)), "stages": {}}
    print(f"{len(texts)} real Korean documents, {n_bytes / 1e6:.2f} MB UTF-8, "
          f"mean {result['mean_chars_per_doc']} chars; single process, best of {args.repeats}")
    print(f"{'stage':<10}{'docs/s':>10}{'MB/s':>8}{'CPU s':>8}  all runs (CPU s / wall s)")
    for name, times in runs.items():
        best = min(cpu for cpu, _ in times)
        row = {"docs_per_s": round(len(texts) / best, 1), "mb_per_s": round(n_bytes / 1e6 / best, 3),
               "seconds_best": round(best, 3),
               "runs_cpu_wall": [(round(c, 2), round(w, 2)) for c, w in times]}
        result["stages"][name] = row
        print(f"{name:<10}{row['docs_per_s']:>10}{row['mb_per_s']:>8}{row['seconds_best']:>8}  {row['runs_cpu_wall']}")
    ratio = result["stages"]["quality"]["seconds_best"] / result["stages"]["langid"]["seconds_best"]
    result["quality_over_langid_time"] = round(ratio, 2)
    print(f"quality takes {ratio:.2f}x the time of langid on the same documents")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
