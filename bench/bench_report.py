"""`polyko report` on runs of growing size: time grows with the documents, memory must not.

Scales a finished run directory (default: a fresh `polyko run` on ~300 real documents from
../shared/data) by writing its kept/ and rejected/ records K times (ids made unique; texts,
signals, stage, reason unchanged) next to the same stats.json/config.yaml, then renders the
report for each K in a fresh process and records wall time and peak RSS, side by side.

    .venv/bin/python -m bench.bench_report [--run DIR] [--scales 1,10,50] [--work /tmp/bench_report]
"""
from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("POLYKO_SHARED_DATA",
                                   Path(__file__).resolve().parent.parent.parent / "shared" / "data"))


def _make_base_run(work: Path) -> Path:
    from pipeline.cli import main

    src = work / "input.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as out:
        for name, n in (("ko_wiki.jsonl.gz", 80), ("ko_wiki_stubs.jsonl.gz", 40), ("ko_nsmc_single.jsonl.gz", 80),
                        ("ko_comments.jsonl.gz", 60), ("ko_nsmc_reviews.jsonl.gz", 20), ("other_lang.jsonl.gz", 40)):
            with gzip.open(DEFAULT_DATA / name, "rt", encoding="utf-8") as fh:
                out.writelines(itertools.islice(fh, n))
    run_dir = work / "base"
    if main(["run", str(src), "--output", str(run_dir), "--overwrite", "--quiet"]) != 0:
        raise SystemExit("polyko run failed")
    return run_dir


def _scale(base: Path, k: int, out: Path) -> int:
    """Copy ``base`` with kept/ and rejected/ repeated ``k`` times; returns documents written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in ("stats.json", "config.yaml"):
        shutil.copy(base / name, out / name)
    if (base / "shards").exists():
        shutil.copytree(base / "shards", out / "shards")
    (out / "errors").mkdir()
    n = 0
    for sub in ("kept", "rejected"):
        (out / sub).mkdir()
        records = [json.loads(line) for p in sorted((base / sub).glob("*.jsonl.gz"))
                   for line in gzip.open(p, "rt", encoding="utf-8")]
        with gzip.open(out / sub / "part-00000-of-00001.jsonl.gz", "wt", encoding="utf-8", compresslevel=1) as fh:
            for i in range(k):
                for rec in records:
                    rec = dict(rec, id=f"{rec['id']}~{i}")
                    if rec.get("duplicate_of"):
                        rec["duplicate_of"] = f"{rec['duplicate_of']}~{i}"
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    n += 1
    return n


def _measure(run_dir: str) -> None:
    from pipeline.report import write_report

    t0 = time.perf_counter()
    write_report(run_dir, set_items=["quality.length.min_chars=100"])
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb,
                      "html_kb": os.path.getsize(os.path.join(run_dir, "report.html")) / 1024}))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a finished run directory to scale (default: run polyko on real sample)")
    ap.add_argument("--scales", default="1,10,50")
    ap.add_argument("--work", default="/tmp/bench_report")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        _measure(args.measure)
        return {}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = Path(args.run) if args.run else _make_base_run(work)
    rows = []
    for k in (int(x) for x in args.scales.split(",")):
        scaled = work / f"x{k}"
        docs = _scale(base, k, scaled)
        size_mb = sum(p.stat().st_size for p in scaled.rglob("*.jsonl.gz")) / 1e6
        res = subprocess.run([sys.executable, "-m", "bench.bench_report", "--measure", str(scaled)],
                             check=True, capture_output=True, text=True)
        m = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append({"scale": k, "documents": docs, "gzip_mb": round(size_mb, 2), **m})
        print(f"x{k:<4} {docs:>9,} docs {size_mb:8.1f} MB gz  {m['seconds']:7.2f} s  "
              f"{docs / m['seconds']:9,.0f} docs/s  peak RSS {m['peak_rss_mb']:6.0f} MB  "
              f"report {m['html_kb']:.0f} kB", flush=True)
    return {"rows": rows}


if __name__ == "__main__":
    main()
