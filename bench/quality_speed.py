"""Throughput of the whole Korean quality chain (filters/quality) on real kowiki articles.

    .venv/bin/python -m bench.quality_speed [--docs 3000] [--kiwi 200]

Reports, in one run on the same documents: docs/s and MB/s of the whole chain; the time share
of each filter (statistics are shared, so the first filter that touches a statistic pays for
it); and, with ``--kiwi N``, docs/s of Kiwi morphological analysis alone on the first N articles
(why words are eojeol by default).  Single process, single thread; times are CPU seconds of
the process (``time.process_time``), best of ``--rounds``, so the figures are per core even on a
shared machine.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import time
from pathlib import Path

from filters.base import Document
from filters.quality import build_filters

DATA = Path(os.environ.get("POLYKO_SHARED_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def load_wiki(n: int) -> list[dict]:
    out = []
    with gzip.open(DATA / "ko_wiki.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def run(docs: list[dict]) -> dict:
    filters = build_filters({})
    for f in filters:
        f.ensure_setup()
    per_filter = collections.Counter()
    kept = 0
    t0 = time.process_time()
    for r in docs:
        d = Document(r["id"], r["text"], r.get("source", ""))
        ok = True
        for f in filters:
            t = time.process_time()
            v = f.filter(d)
            per_filter[f.name] += time.process_time() - t
            if not v.keep:
                ok = False
                break
        kept += ok
    total = time.process_time() - t0
    chars = sum(len(r["text"]) for r in docs)
    mb = sum(len(r["text"].encode("utf-8")) for r in docs) / 1e6
    return {"docs": len(docs), "kept": kept, "seconds": round(total, 3),
            "docs_per_s": round(len(docs) / total, 1), "chars_per_s": round(chars / total),
            "MB_per_s": round(mb / total, 2),
            "filter_share": {k: round(v / total, 3) for k, v in per_filter.most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--kiwi", type=int, default=0, help="also time Kiwi tokenization on N articles")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    docs = load_wiki(args.docs)
    run(docs[:200])  # warm-up (regex compilation, lexicon load)
    result = max((run(docs) for _ in range(args.rounds)), key=lambda r: r["docs_per_s"])
    if args.kiwi:
        from kiwipiepy import Kiwi
        kiwi = Kiwi()
        sub = docs[: args.kiwi]
        kiwi.tokenize(sub[0]["text"])
        t = time.process_time()
        n_tok = sum(len(kiwi.tokenize(r["text"])) for r in sub)
        dt = time.process_time() - t
        n_eojeol = sum(len(r["text"].split()) for r in sub)
        chain = max((run(sub) for _ in range(args.rounds)), key=lambda r: r["docs_per_s"])
        result["kiwi"] = {"docs": len(sub), "docs_per_s": round(len(sub) / dt, 1),
                          "chain_docs_per_s_same_docs": chain["docs_per_s"],
                          "tokens_per_eojeol": round(n_tok / n_eojeol, 3)}
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
