"""Throughput of the pipeline spine (`polyko run`) and the local runner choice, side by side.

    .venv/bin/python -m bench.pipeline_spine --mb 300 [--compare-mb 60] [--stages normalize] \
        [--workdir /tmp/polyko-spine-bench]

1. Builds a JSONL corpus of about ``--mb`` MB (uncompressed) in ``--workdir`` (never in the repo)
   by concatenating the development data files (../shared/data, all of them) and repeating them
   with ids suffixed ``~r<k>`` until the size is reached, split into 8 files so several workers
   can read in parallel.
2. Runner comparison on the first ``--compare-mb`` MB: FnApiRunner in process with one worker
   (``direct_running_mode=in_memory``) vs FnApiRunner ``direct_running_mode=multi_processing``,
   ``direct_num_workers=cpu_count`` (the `polyko run` default), same input, same stages, one
   after the other in this run. (The DirectRunner is not measured: in Beam 2.77 it first tries
   to download the Prism runner binary, then falls back to the same FnApiRunner.)
3. The full corpus with the default runner (what `polyko run` uses without --runner).

For every run: wall seconds, documents/second, input MB/second, and the accounting from stats.json
(documents in = kept + rejected + errors must hold). Results: JSON on stdout and in
``<workdir>/results.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POLYKO_SHARED_DATA", REPO.parent / "shared" / "data"))
ALL_STAGES = ["normalize", "langid", "quality", "dedup", "pii", "tokenize"]


def build_corpus(out: Path, target_mb: float, n_files: int = 8) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "corpus.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("target_mb") == target_mb:
            return info
    for old in out.glob("part-*.jsonl"):
        old.unlink()
    sources = sorted(SHARED.glob("*.jsonl.gz"))
    lines: list[bytes] = []
    for src in sources:
        with gzip.open(src, "rb") as fh:
            lines.extend(fh)
    target = int(target_mb * 1e6)
    files = [open(out / f"part-{i:02d}.jsonl", "wb") for i in range(n_files)]
    written = docs = 0
    rep = 0
    try:
        while written < target:
            for i, raw in enumerate(lines):
                if rep:
                    rec = json.loads(raw)
                    rec["id"] = f"{rec['id']}~r{rep}"
                    raw = (json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8")
                files[docs % n_files].write(raw)
                written += len(raw)
                docs += 1
                if written >= target:
                    break
            rep += 1
    finally:
        for f in files:
            f.close()
    info = {"target_mb": target_mb, "bytes": written, "documents": docs, "files": n_files,
            "sources": [s.name for s in sources], "repeats": rep}
    marker.write_text(json.dumps(info))
    return info


def subset(corpus: Path, out: Path, mb: float) -> dict:
    """First ``mb`` MB of each corpus file, proportionally (same mix, fewer documents)."""
    out.mkdir(parents=True, exist_ok=True)
    parts = sorted(corpus.glob("part-*.jsonl"))
    per_file = int(mb * 1e6 / len(parts))
    docs = total = 0
    for p in parts:
        with open(p, "rb") as src, open(out / p.name, "wb") as dst:
            n = 0
            for line in src:
                if n >= per_file:
                    break
                dst.write(line)
                n += len(line)
                docs += 1
            total += n
    return {"bytes": total, "documents": docs}


def run_polyko(inputs: str, output: Path, stages: list[str], runner_args: list[str], input_bytes: int) -> dict:
    sets = []
    for s in ALL_STAGES:
        sets += ["--set", f"{s}.enabled={'true' if s in stages else 'false'}"]
    cmd = [str(REPO / ".venv" / "bin" / "polyko"), "run", inputs, "--output", str(output), "--overwrite", "-q",
           *sets, *runner_args]
    t0 = time.monotonic()
    ru0 = os.times()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - t0
    ru1 = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    stats = json.loads((output / "stats.json").read_text())
    d = stats["documents"]
    return {
        "command": " ".join(cmd[1:]),
        "runner": stats["runner"],
        "wall_s": round(wall, 2),
        "cpu_s_children": round((ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system), 2),
        "documents": d,
        "accounting_ok": stats["accounting"]["ok"],
        "docs_per_s": round(d["in"] / wall, 1),
        "jsonl_mb_per_s": round(input_bytes / 1e6 / wall, 3),
        "text_mb_per_s": round(stats["bytes"]["in"] / 1e6 / wall, 3),
        "stages_enabled": stats["stages_enabled"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=300)
    ap.add_argument("--compare-mb", type=float, default=60)
    ap.add_argument("--stages", nargs="+", default=["normalize"], choices=ALL_STAGES)
    ap.add_argument("--workdir", default="/tmp/polyko-spine-bench")
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args()
    work = Path(args.workdir)
    corpus = build_corpus(work / "corpus", args.mb)
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "machine": f"{platform.node()} {platform.machine()} cpus={os.cpu_count()} "
                          f"load_avg_at_start={os.getloadavg()[0]:.1f}",
               "python": sys.version.split()[0], "corpus": corpus, "stages": args.stages, "runs": {}}
    small = subset(work / "corpus", work / "compare", args.compare_mb)
    results["compare_input"] = small
    for name, runner_args in (
            ("fnapi", ["--runner=FnApiRunner", "--direct_running_mode=in_memory", "--direct_num_workers=1"]),
            ("fnapi_mp", ["--runner=FnApiRunner", "--direct_running_mode=multi_processing",
                          f"--direct_num_workers={os.cpu_count()}"])):
        results["runs"][f"compare_{name}"] = run_polyko(str(work / "compare" / "*.jsonl"), work / f"out-{name}",
                                                       args.stages, runner_args, small["bytes"])
        print(json.dumps(results["runs"][f"compare_{name}"]), flush=True)
    a, b = results["runs"]["compare_fnapi"], results["runs"]["compare_fnapi_mp"]
    results["multi_processing_speedup_over_in_memory"] = round(a["wall_s"] / b["wall_s"], 2)
    if not args.skip_full:
        results["runs"]["full_default_runner"] = run_polyko(str(work / "corpus" / "*.jsonl"), work / "out-full",
                                                            args.stages, [], corpus["bytes"])
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    for out in work.glob("out-*"):
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
