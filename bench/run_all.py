"""`make bench`: run every benchmark script in bench/, one after the other, at small sizes.

    python -m bench.run_all [--only NAME ...] [--list] [--keep-going]

Every script is a separate ``python -m bench.<name>`` process (fresh memory figures, one
failure does not hide the others' output).  ``PLAN`` names the scripts this project requires and
the arguments that keep a full ``make bench`` to tens of minutes on a 2-core machine; a required
script that is missing is an error, and a benchmark script found in bench/ that ``PLAN`` does
not know is run with its own defaults rather than skipped.  The only script not run
automatically is the GPU training benchmark when no CUDA device is present; it is reported as
skipped with the reason, and the run fails if ``--require-gpu`` is given.

Logs go to ``bench/results/tmp/run_all/<name>.log`` (git-ignored); a summary table (script, seconds, status) is
printed at the end and written to ``bench/results/tmp/run_all/summary.json``.  Exit status is non-zero
when any script failed or a required one is missing.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "tmp" / "run_all"  # git-ignored

# name -> arguments for a small run (defaults of each script are sized for the full numbers in
# docs/benchmarks.md; these keep `make bench` short while still exercising every path).
PLAN: dict[str, list[str]] = {
    "bench_filters": ["--docs", "2000", "--repeats", "2"],
    "bench_dedup": ["--sizes", "10000", "--sig-docs", "2000"],
    "bench_pii": ["--docs", "2000", "--rounds", "2"],
    "bench_tokenize": ["--mb", "5", "--repeats", "2", "--train-mb", "10", "--train-morph-mb", "2"],
    "bench_report": ["--scales", "1,10"],
    "quality_speed": ["--docs", "1000", "--rounds", "2"],
    "pipeline_spine": ["--mb", "10", "--compare-mb", "5", "--workdir", "/tmp/polyko-bench/spine-small"],
    "stage_kernels": ["--docs", "10000"],
    "e2e": ["--sizes", "2000", "10000", "--peer-max-docs", "kiwi=2000", "whitespace=10000", "whitespace-eojeol=10000",
            "--output", "bench/results/tmp/run_all/e2e.json"],
    "train_gpu": [],
}
# Scripts that must exist (the issue lists them); a missing one fails the run loudly.
REQUIRED = ("bench_filters", "bench_dedup", "bench_pii", "bench_tokenize", "stage_kernels", "e2e")
# Modules in bench/ that are not benchmarks themselves (libraries, evaluations, the peer script
# that runs inside datatrove's venv, the runners).
NOT_BENCHMARKS = {"__init__", "corpus", "peer_datatrove", "report_e2e", "run_all", "eval_all"}
GPU_ONLY = {"train_gpu"}


def discover() -> list[str]:
    """Every benchmark module in bench/: PLAN's order first, then any new ones alphabetically."""
    found = {p.stem for p in BENCH.glob("*.py")} - NOT_BENCHMARKS
    found = {n for n in found if not n.startswith("eval_")}
    return [n for n in PLAN if n in found] + sorted(found - set(PLAN))


def has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def run_script(name: str, args: list[str], log: Path) -> tuple[int, float]:
    cmd = [sys.executable, "-m", f"bench.{name}", *args]
    print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:  # echo and keep, so long runs show progress
            fh.write(line)
            sys.stdout.write(f"   {line}")
        rc = proc.wait()
    return rc, time.perf_counter() - t0


def main(argv: list[str] | None = None, plan: dict[str, list[str]] = PLAN, required=REQUIRED) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="run just these scripts")
    ap.add_argument("--list", action="store_true", help="print what would run and exit")
    ap.add_argument("--require-gpu", action="store_true", help="fail instead of skipping GPU-only scripts")
    args = ap.parse_args(argv)

    present = {p.stem for p in BENCH.glob("*.py")}
    missing = [n for n in required if n not in present]
    if missing:
        print(f"run_all: ERROR required benchmark scripts missing from bench/: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    names = discover()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            print(f"run_all: ERROR no such benchmark: {', '.join(unknown)} (have: {', '.join(names)})",
                  file=sys.stderr)
            return 2
        names = [n for n in names if n in args.only]
    if args.list:
        for n in names:
            print(n, " ".join(plan.get(n, ["(script defaults)"])))
        return 0

    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = []
    cuda = has_cuda()
    for name in names:
        if name in GPU_ONLY and not cuda:
            status = "FAILED (no CUDA device)" if args.require_gpu else "SKIPPED: no CUDA device on this machine"
            print(f"== {name}: {status}", flush=True)
            summary.append({"script": name, "status": status, "seconds": 0.0})
            continue
        rc, secs = run_script(name, plan.get(name, []), RESULTS / f"{name}.log")
        summary.append({"script": name, "status": "ok" if rc == 0 else f"FAILED (exit {rc})",
                        "seconds": round(secs, 1)})
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1))
    print("\nscript                 seconds  status")
    for row in summary:
        print(f"{row['script']:<22} {row['seconds']:>7.1f}  {row['status']}")
    failed = [r for r in summary if r["status"].startswith("FAILED")]
    if failed:
        print(f"run_all: {len(failed)} benchmark(s) failed; logs in {RESULTS}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
