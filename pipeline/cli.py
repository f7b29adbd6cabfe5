"""The `polyko` command. Each subcommand lives in the module that owns it; this file only routes.

A module listed in ``SUBCOMMANDS`` provides ``register(subparsers)`` adding its parser(s) with
``set_defaults(func=...)``. Modules are imported lazily so ``polyko stats`` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> module providing register(subparsers)
SUBCOMMANDS = {
    "run": "pipeline.run",
    "stats": "pipeline.stats_view",
    "report": "pipeline.report",
    "inspect": "pipeline.report",
    "tokenizer": "tokenizer.cli",
    "shards": "tokenizer.cli",
    "train": "train.launch",
    "export": "train.export",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polyko", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registered: set[str] = set()
    for name, module in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        if module in registered:
            continue
        registered.add(module)
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = argv[0] if argv and not argv[0].startswith("-") else None
    parser = build_parser(only=first if first in SUBCOMMANDS else None)
    # `polyko run` passes unknown options on to Beam as pipeline options.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_beam_options", False):
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    args.beam_args = extra
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
