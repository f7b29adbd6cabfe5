"""`make eval`: run every evaluation script in bench/ (``eval_*.py``) with its default settings.

    python -m bench.eval_all [--only NAME ...] [--list]

The evaluations (filter precision/recall, dedup recall/false removals, PII precision/recall) are
the numbers in docs/; each runs as its own ``python -m bench.<name>`` process with the defaults
those documents were made with, its metrics written to ``bench/results/tmp/eval_all/<name>.json``
and its log next to it.  The ones the issue names (``REQUIRED``) must exist: a missing one is an
error, never a silent skip; any other ``eval_*.py`` found in bench/ runs too.  Exit status is
non-zero when a script is missing or fails.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.run_all import BENCH, run_script

RESULTS = BENCH / "results" / "tmp" / "eval_all"  # git-ignored
REQUIRED = ("eval_filters", "eval_dedup", "eval_pii")


def discover() -> list[str]:
    found = sorted(p.stem for p in BENCH.glob("eval_*.py") if p.stem != "eval_all")
    return [n for n in REQUIRED if n in found] + [n for n in found if n not in REQUIRED]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    present = set(discover())
    missing = [n for n in REQUIRED if n not in present]
    if missing:
        print(f"eval_all: ERROR required evaluation scripts missing from bench/: {', '.join(missing)}",
              file=sys.stderr)
        return 2
    names = discover()
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            print(f"eval_all: ERROR no such evaluation: {', '.join(unknown)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.only]
    if args.list:
        print("\n".join(names))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = []
    for name in names:
        rc, secs = run_script(name, ["--json", str(RESULTS / f"{name}.json")], RESULTS / f"{name}.log")
        summary.append((name, secs, "ok" if rc == 0 else f"FAILED (exit {rc})"))
    print("\nevaluation             seconds  status")
    for name, secs, status in summary:
        print(f"{name:<22} {secs:>7.1f}  {status}")
    return 1 if any(s != "ok" for _, _, s in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
