"""Rebuild the committed default tokenizer and the plain-vs-morpheme-aware comparison.

    .venv/bin/python -m tokenizer.build_default [--data /work/shared/data] [--write]

Trains both variants (plain byte-level BPE and morpheme-aware "MBBPE") on the Korean files of the
development data (kowiki, NSMC, comments) with 2% of documents held out by id hash, measures
tokens per character on the held-out documents per source, prints a Markdown table for
docs/tokenizer.md, and with ``--write`` copies the chosen variant to
``tokenizer/polyko-ko-30k.json``. Same data + same code -> the same file (sampling keys and the
hold-out split are hashes of document ids; BPE training is deterministic).
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from tokenizer.train import (
    DEFAULT_SAMPLE_BYTES, DEFAULT_VOCAB_SIZE, id_fraction, iter_input_files, iter_records,
    train_from_paths,
)

KOREAN_FILES = ["ko_wiki.jsonl.gz", "ko_nsmc_reviews.jsonl.gz", "ko_nsmc_single.jsonl.gz",
                "ko_comments.jsonl.gz"]
HOLDOUT_FRACTION = 0.02
DEFAULT_PATH = Path(__file__).with_name("polyko-ko-30k.json")


def heldout_texts(files, fraction: float = HOLDOUT_FRACTION) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for rec in iter_records(iter_input_files(files)):
        if id_fraction(rec["id"], "holdout") < fraction:
            out[rec["source"]].append(rec["text"])
    return dict(out)


def tokens_per_char(tokenizer_path: str, texts_by_source: dict[str, list[str]]) -> dict[str, float]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_path)
    result: dict[str, float] = {}
    all_tokens = all_chars = 0
    for source in sorted(texts_by_source):
        texts = texts_by_source[source]
        n_tok = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
        n_chr = sum(len(t) for t in texts)
        result[source] = n_tok / n_chr
        all_tokens += n_tok
        all_chars += n_chr
    result["ALL"] = all_tokens / all_chars
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    ap.add_argument("--sample-bytes", type=int, default=DEFAULT_SAMPLE_BYTES)
    ap.add_argument("--choose", choices=["plain", "morpheme"], default="morpheme")
    ap.add_argument("--write", action="store_true", help=f"copy the chosen variant to {DEFAULT_PATH}")
    args = ap.parse_args(argv)

    files = [str(Path(args.data) / f) for f in KOREAN_FILES]
    heldout = heldout_texts(files)
    work = Path(tempfile.mkdtemp(prefix="polyko-tok-"))
    reports, ratios = {}, {}
    for name, morph in (("plain", False), ("morpheme", True)):
        out = work / f"{name}.json"
        rep = train_from_paths(files, out, vocab_size=args.vocab_size, sample_bytes=args.sample_bytes,
                               morpheme_aware=morph, holdout_fraction=HOLDOUT_FRACTION)
        reports[name] = rep
        ratios[name] = tokens_per_char(str(out), heldout)
        print(json.dumps({"variant": name, "sha256": rep.sha256, "vocab_size": rep.vocab_size,
                          "sample_docs": rep.sample["docs_sampled"], "sample_bytes": rep.sample["bytes_sampled"],
                          "seconds_sampling": round(rep.seconds_sampling, 1),
                          "seconds_training": round(rep.seconds_training, 1),
                          "peak_rss_mb": round(rep.peak_rss_mb)}), flush=True)

    n_docs = {s: len(v) for s, v in heldout.items()}
    n_chars = {s: sum(map(len, v)) for s, v in heldout.items()}
    print("\n| held-out source | docs | chars | plain tok/char | morpheme-aware tok/char | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for s in sorted(heldout) + ["ALL"]:
        p, m = ratios["plain"][s], ratios["morpheme"][s]
        docs = sum(n_docs.values()) if s == "ALL" else n_docs[s]
        chars = sum(n_chars.values()) if s == "ALL" else n_chars[s]
        print(f"| {s} | {docs:,} | {chars:,} | {p:.4f} | {m:.4f} | {m / p:.3f} |")
    if args.write:
        shutil.copyfile(reports[args.choose].output, DEFAULT_PATH)
        print(f"\nwrote {DEFAULT_PATH} ({args.choose}, sha256 {reports[args.choose].sha256})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
