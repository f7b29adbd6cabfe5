"""PII stage throughput per core, with and without the pre-screen, on real Korean documents.

Documents: real Korean text from the development data in the benchmark corpus's proportions
(bench/corpus.py MIX: Wikipedia 0.34, NSMC review pages 0.18, comments 0.10), deterministic by
seed.  Both variants run in the same process on the same documents, alternating in rounds, and
are timed in CPU seconds of this process (``time.process_time``), so "per core" holds on a
shared machine; wall time is printed too.  The analyzer is built before timing (as ``setup()``
does once per worker).

    .venv/bin/python -m bench.bench_pii [--docs 6000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import time
from pathlib import Path

from bench.corpus import DEFAULT_DATA, MIX
from filters.base import Document
from filters.pii import AnalyzerSettings, PiiMaskFilter, get_analyzer, prescreen


def load_mix(data: Path, n: int, seed: int) -> list[str]:
    def read(name):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f]

    pools = {"ko_wiki": read("ko_wiki.jsonl.gz"), "ko_reviews": read("ko_nsmc_reviews.jsonl.gz"),
             "ko_comments": [t for t in read("ko_comments.jsonl.gz") if len(t) >= 10]}
    total = sum(MIX[k] for k in pools)
    rng = random.Random(seed)
    docs = []
    for kind, pool in pools.items():
        docs += rng.sample(pool, min(len(pool), round(n * MIX[kind] / total)))
    rng.shuffle(docs)
    return docs


def run(docs: list[str], use_prescreen: bool) -> tuple[float, float, int]:
    f = PiiMaskFilter(AnalyzerSettings(), use_prescreen=use_prescreen)
    f.ensure_setup()
    spans = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for i, text in enumerate(docs):
        doc = Document(str(i), text, "bench")
        f.filter(doc)
        spans += doc.signals["pii.spans"]
    return time.process_time() - c0, time.perf_counter() - w0, spans


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--docs", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    docs = load_mix(args.data, args.docs, args.seed)
    mb = sum(len(t.encode("utf-8")) for t in docs) / 1e6
    screened = sum(prescreen(t) for t in docs)
    get_analyzer(AnalyzerSettings())  # one-time build, as setup() does per worker
    best = {True: None, False: None}
    for r in range(args.rounds):
        for use in (True, False) if r % 2 == 0 else (False, True):
            cpu, wall, spans = run(docs, use)
            if best[use] is None or cpu < best[use][0]:
                best[use] = (cpu, wall, spans)
    print(f"{len(docs):,} real Korean documents, {mb:.1f} MB; pre-screen passes {screened:,} "
          f"({screened / len(docs):.1%}) to the analyzer; best of {args.rounds} rounds\n")
    print("| variant | docs/s per core (CPU) | MB/s per core | wall s | spans |")
    print("|---|---:|---:|---:|---:|")
    for use in (True, False):
        cpu, wall, spans = best[use]
        print(f"| {'with' if use else 'without'} pre-screen | {len(docs) / cpu:,.0f} | {mb / cpu:.2f} "
              f"| {wall:.1f} | {spans} |")
    ratio = best[False][0] / best[True][0]
    print(f"\npre-screen speed-up: {ratio:.1f}x (same spans: {best[True][2] == best[False][2]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
