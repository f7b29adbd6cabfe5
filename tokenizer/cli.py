"""``polyko tokenizer train`` and ``polyko shards inspect``."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from tokenizer.train import DEFAULT_SAMPLE_BYTES, DEFAULT_VOCAB_SIZE


def register(subparsers) -> None:
    tok = subparsers.add_parser("tokenizer", help="train a byte-level BPE tokenizer on kept documents")
    tok_sub = tok.add_subparsers(dest="tokenizer_command", required=True, metavar="ACTION")
    train = tok_sub.add_parser(
        "train", help="train on a pipeline output (DIR/kept) or JSONL/Parquet files",
        description="Byte-level BPE (Polyglot-Ko): VOCAB_SIZE learned entries plus <|endoftext|>, "
                    "<|pad|> and the PII tokens, on a source-balanced sample under a byte budget.")
    train.add_argument("inputs", nargs="+", metavar="KEPT_DIR",
                       help="pipeline output dir (its kept/ is used), a folder, or .jsonl[.gz]/.parquet files")
    train.add_argument("--output", "-o", required=True, help="tokenizer.json to write")
    train.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE,
                       help="learned entries, special tokens not counted (default %(default)s, Polyglot-Ko)")
    train.add_argument("--sample-bytes", type=int, default=DEFAULT_SAMPLE_BYTES,
                       help="UTF-8 bytes of training text, shared fairly between sources (default %(default)s)")
    train.add_argument("--morpheme-aware", action="store_true",
                       help="segment training text with MeCab-ko so no merge crosses a morpheme boundary")
    train.add_argument("--min-frequency", type=int, default=2)
    train.add_argument("--holdout-fraction", type=float, default=0.0,
                       help="skip this fraction of documents (by id hash) to keep them for evaluation")
    train.add_argument("--progress", action="store_true", help="show the trainer's progress bar")
    train.set_defaults(func=_cmd_train)

    shards = subparsers.add_parser("shards", help="look at token shards")
    sh_sub = shards.add_subparsers(dest="shards_command", required=True, metavar="ACTION")
    insp = sh_sub.add_parser("inspect", help="print counts and decode a few documents of DIR/shards")
    insp.add_argument("shards_dir", metavar="DIR/shards")
    insp.add_argument("--decode", type=int, default=2, help="documents to decode per shard (default 2)")
    insp.add_argument("--chars", type=int, default=300, help="characters to print per decoded document")
    insp.add_argument("--tokenizer", default=None,
                      help="tokenizer.json (default: the manifest's file, else the committed default)")
    insp.set_defaults(func=_cmd_inspect)


def _cmd_train(args: argparse.Namespace) -> int:
    from tokenizer.train import train_from_paths

    rep = train_from_paths(args.inputs, args.output, vocab_size=args.vocab_size,
                           sample_bytes=args.sample_bytes, morpheme_aware=args.morpheme_aware,
                           holdout_fraction=args.holdout_fraction, min_frequency=args.min_frequency,
                           show_progress=args.progress)
    d = asdict(rep)
    print(f"wrote {rep.output}: {rep.vocab_size} tokens ({rep.learned} learned + "
          f"{len(rep.special_tokens)} special), morpheme-aware={rep.morpheme_aware}")
    print(f"sample: {rep.sample['docs_sampled']:,} docs, {rep.sample['bytes_sampled']:,} bytes "
          f"of {rep.sample['bytes_seen']:,} seen; sampling {rep.seconds_sampling:.1f}s, "
          f"training {rep.seconds_training:.1f}s, peak RSS {rep.peak_rss_mb:.0f} MB")
    print(json.dumps(d, ensure_ascii=False, indent=2))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import os

    from tokenizer.loading import load_tokenizer
    from tokenizer.shards import IndexedDatasetReader, ShardFormatError, read_manifest

    manifest = read_manifest(args.shards_dir)
    tinfo = manifest.get("tokenizer", {})
    tok_file = args.tokenizer
    if tok_file is None and tinfo.get("file") and not str(tinfo["file"]).startswith("package:") \
            and os.path.exists(tinfo["file"]):
        tok_file = tinfo["file"]
    tok = load_tokenizer(tok_file)
    totals = manifest.get("totals", {})
    print(f"{args.shards_dir}: {len(manifest['shards'])} shards, dtype {manifest.get('dtype')}, "
          f"{totals.get('documents', 0):,} documents, {totals.get('tokens', 0):,} tokens")
    print(f"tokenizer sha256 {tinfo.get('sha256')} vocab {tinfo.get('vocab_size')} "
          f"eod {tinfo.get('eod_id')} ({tinfo.get('file')})")
    for split, v in sorted(totals.get("per_split", {}).items()):
        print(f"  split {split}: {v['documents']:,} documents, {v['tokens']:,} tokens")
    for source, v in sorted(totals.get("per_source", {}).items()):
        print(f"  source {source}: {v['documents']:,} documents, {v['tokens']:,} tokens")
    bad = 0
    for shard in manifest["shards"]:
        try:
            reader = IndexedDatasetReader(shard["prefix"])
        except (ShardFormatError, FileNotFoundError) as e:
            print(f"[{shard['path']}] ERROR {e}")
            bad += 1
            continue
        ok = len(reader) == shard["documents"] and reader.num_tokens == shard["tokens"]
        print(f"[{shard['path']}] split={shard['split']} documents={len(reader):,} tokens={reader.num_tokens:,}"
              + ("" if ok else f"  MISMATCH with manifest ({shard['documents']} docs, {shard['tokens']} tokens)"))
        bad += not ok
        for i in range(min(args.decode, len(reader))):
            text = tok.decode(reader[i].tolist(), skip_special_tokens=False)
            shown = text[: args.chars].replace("\n", "\\n")
            print(f"  doc {i} ({int(reader.sizes[i])} tokens): {shown}{'…' if len(text) > args.chars else ''}")
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    from pipeline.cli import main

    sys.exit(main(sys.argv[1:]))
