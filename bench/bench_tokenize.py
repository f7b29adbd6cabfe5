"""Tokenizer throughput inside the tokenize stage vs bare ``encode_batch``, and training cost.

    .venv/bin/python -m bench.bench_tokenize [--mb 20] [--repeats 3] [--train-mb 100] [--train-morph-mb 20]
    .venv/bin/python -m bench.bench_tokenize --compare ../shared/data/*.jsonl.gz [--tokenizer FILE]

1. Throughput, one core: ``RAYON_NUM_THREADS=1`` is set before ``tokenizers`` loads, so both
   paths run on one native thread and the numbers are per core. The same real Korean text
   (kowiki, NSMC reviews, comments from the development data, repeated up to ``--mb`` MB) is
   encoded, alternately, by
   * ``bare``: ``Tokenizer.encode_batch`` over batches of ``tokenize.batch_size`` texts;
   * ``stage``: the stage's DoFn (``pipeline.tokenize.EncodeDocsFn``: buffering, encode_batch,
     split hash, ids -> uint16 bytes + end-of-document, counters) driven through
     setup/start_bundle/process/finish_bundle on ``Document`` objects, with the ``tokenizers``
     backend;
   * ``stage_tiktoken``: the same DoFn with the ``tiktoken`` backend (``tokenizer.fast_encode``),
     which ``tokenize.encoder: auto`` picks for the default tokenizer; its output bytes must equal
     the ``stage`` run's;
   best of ``--repeats`` each; the ratio stage/bare is the number to watch (target >= 0.80), and
   stage_tiktoken/stage is what the fast backend saves.
2. Training: ``polyko tokenizer train`` in a fresh process (so its peak RSS is its own) on a
   benchmark corpus from ``bench.corpus`` with ``--sample-bytes`` = ``--train-mb`` MB
   (plain) and ``--train-morph-mb`` MB (morpheme-aware); wall time and peak RSS.
3. ``--compare FILE...``: encode the ``text`` of every record of JSON-lines files (``.gz``
   too) or Parquet files with both backends and count the documents whose ids differ (printing the first few);
   exit status 1 if any does. This is the check to run before trusting ``tokenize.encoder:
   auto`` with a tokenizer of your own.
"""
from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # before tokenizers is imported: per-core numbers
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import argparse  # noqa: E402
import gzip  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from filters.base import Document  # noqa: E402

DATA = Path(os.environ.get("POLYKO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def korean_docs(mb: float) -> list[Document]:
    files = ["ko_wiki.jsonl.gz", "ko_nsmc_reviews.jsonl.gz", "ko_comments.jsonl.gz"]
    base: list[Document] = []
    # interleave sources so any prefix has the mix
    streams = []
    for f in files:
        with gzip.open(DATA / f, "rt", encoding="utf-8") as fh:
            streams.append([json.loads(line) for line in fh])
    for group in itertools.zip_longest(*streams):
        base.extend(Document(id=str(r["id"]), text=r["text"], source=r["source"]) for r in group if r)
    target, total, out = mb * 1e6, 0, []
    for copy in itertools.count():
        for d in base:
            if total >= target:
                return out
            out.append(Document(id=f"{d.id}#{copy}", text=d.text, source=d.source))
            total += len(d.text.encode("utf-8"))
    return out  # pragma: no cover


def bench_throughput(docs: list[Document], repeats: int, batch_size: int) -> dict:
    from pipeline.tokenize import DocumentEncoder, EncodeDocsFn
    from tokenizer.loading import describe, read_tokenizer_bytes, tokenizer_from_bytes

    data, where = read_tokenizer_bytes(None)
    info = describe(data, where)
    texts = [d.text for d in docs]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    bare_tok = tokenizer_from_bytes(data)

    def bare() -> int:
        n = 0
        for i in range(0, len(texts), batch_size):
            n += sum(len(e.ids) for e in bare_tok.encode_batch(texts[i:i + batch_size], add_special_tokens=False))
        return n

    outputs: dict[str, list[bytes]] = {}

    def stage_with(backend: str):
        fn = EncodeDocsFn(DocumentEncoder(data, info.eod_id, "uint16", 0.005, backend), batch_size)
        fn.setup()

        def stage() -> int:
            out = []
            fn.start_bundle()
            for d in docs:
                out.extend(item[3] for item in fn.process(d))
            out.extend(wv.value[3] for wv in fn.finish_bundle())
            outputs[backend] = out
            return sum(map(len, out)) // 2 - len(docs)  # end-of-document ids are not encoding work
        return stage

    # CPU seconds of this process (one rayon thread + the Python thread), so the per-core rate
    # holds on a shared machine too; wall seconds alongside
    runs = (("bare", bare), ("stage", stage_with("tokenizers")), ("stage_tiktoken", stage_with("tiktoken")))
    best = {k: float("inf") for name, _ in runs for k in (name, name + "_wall")}
    tokens = {}
    for _ in range(repeats):
        for name, f in runs:
            c0, t0 = time.process_time(), time.perf_counter()
            tokens[name] = f()
            best[name] = min(best[name], time.process_time() - c0)
            best[name + "_wall"] = min(best[name + "_wall"], time.perf_counter() - t0)
    assert tokens["bare"] == tokens["stage"] == tokens["stage_tiktoken"], tokens
    assert outputs["tiktoken"] == outputs["tokenizers"], "the tiktoken backend gave other ids"
    return {
        "docs": len(docs), "mb": round(mb, 1), "tokens": tokens["bare"], "batch_size": batch_size,
        "rayon_threads": os.environ.get("RAYON_NUM_THREADS"),
        "bare_cpu_s": round(best["bare"], 2), "stage_cpu_s": round(best["stage"], 2),
        "bare_mb_per_cpu_s": round(mb / best["bare"], 2), "stage_mb_per_cpu_s": round(mb / best["stage"], 2),
        "stage_over_bare_cpu": round(best["bare"] / best["stage"], 3),
        "bare_wall_s": round(best["bare_wall"], 2), "stage_wall_s": round(best["stage_wall"], 2),
        "stage_over_bare_wall": round(best["bare_wall"] / best["stage_wall"], 3),
        "stage_tiktoken_cpu_s": round(best["stage_tiktoken"], 2),
        "stage_tiktoken_mb_per_cpu_s": round(mb / best["stage_tiktoken"], 2),
        "tiktoken_speedup_cpu": round(best["stage"] / best["stage_tiktoken"], 2),
        "chars_per_token": round(sum(map(len, texts)) / tokens["bare"], 3),
    }


def compare_backends(paths: list[str], tokenizer_file: str | None, show: int = 5) -> dict:
    """Encode every record's text with both backends; count documents with different ids."""
    from tokenizer.fast_encode import TiktokenEncoder
    from tokenizer.loading import read_tokenizer_bytes, tokenizer_from_bytes

    data, _where = read_tokenizer_bytes(tokenizer_file)
    fast, reference = TiktokenEncoder(data), tokenizer_from_bytes(data)
    docs = tokens = differ = 0
    cpu = {"tiktoken": 0.0, "tokenizers": 0.0}
    from pipeline.report import iter_records   # JSON lines (.gz) or Parquet, as polyko writes them

    for path in paths:
        texts = [t for t in (rec.get("text") for rec in iter_records(path)) if isinstance(t, str) and t]
        for start in range(0, len(texts), 1000):
            chunk = texts[start:start + 1000]
            c0 = time.process_time()
            ours = [fast.encode(t).tolist() for t in chunk]
            c1 = time.process_time()
            theirs = [e.ids for e in reference.encode_batch_fast(chunk, add_special_tokens=False)]
            cpu["tiktoken"] += c1 - c0
            cpu["tokenizers"] += time.process_time() - c1
            for text, a, b in zip(chunk, ours, theirs):
                docs += 1
                tokens += len(b)
                if a != b:
                    differ += 1
                    if differ <= show:
                        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                        print(f"DIFFERENT {path}: tokens {at}: tiktoken {a[at:at + 4]} tokenizers {b[at:at + 4]} "
                              f"in {reference.decode(b[max(0, at - 3):at + 4])!r}", flush=True)
        print(json.dumps({"file": path, "documents": docs, "tokens": tokens, "different": differ}), flush=True)
    return {"files": len(paths), "documents": docs, "tokens": tokens, "different": differ,
            "cpu_s": {k: round(v, 1) for k, v in cpu.items()}}


def bench_training(sample_mb: float, morph: bool, corpus_dir: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix="polyko-tokbench-")) / "tok.json"
    cmd = [sys.executable, "-m", "pipeline.cli", "tokenizer", "train", str(corpus_dir), "--output", str(out),
           "--sample-bytes", str(int(sample_mb * 1e6))] + (["--morpheme-aware"] if morph else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rep = json.loads(proc.stdout[proc.stdout.index("{"):])
    return {"morpheme_aware": morph, "sample_mb": round(rep["sample"]["bytes_sampled"] / 1e6, 1),
            "docs_sampled": rep["sample"]["docs_sampled"], "seconds_sampling": round(rep["seconds_sampling"], 1),
            "seconds_training": round(rep["seconds_training"], 1), "wall_s": round(wall, 1),
            "peak_rss_mb": round(rep["peak_rss_mb"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0, help="MB of text for the throughput comparison")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--train-mb", type=float, nargs="*", default=[100.0], help="plain training sample sizes")
    ap.add_argument("--train-morph-mb", type=float, nargs="*", default=[20.0])
    ap.add_argument("--corpus", type=Path, default=None, help="bench.corpus output dir (generated if absent)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--compare", nargs="+", metavar="FILE", help="only check the backends give equal ids on FILEs")
    ap.add_argument("--tokenizer", default=None, help="tokenizer JSON for --compare (default: the packaged one)")
    args = ap.parse_args(argv)

    if args.compare:
        result = compare_backends(args.compare, args.tokenizer)
        print(json.dumps({"compare": result}), flush=True)
        return 1 if result["different"] else 0

    if not args.skip_throughput:
        docs = korean_docs(args.mb)
        print(json.dumps({"throughput": bench_throughput(docs, args.repeats, args.batch_size)}), flush=True)
    sizes = [(mb, False) for mb in args.train_mb] + [(mb, True) for mb in args.train_morph_mb]
    if sizes:
        need_mb = max(mb for mb, _ in sizes)
        corpus = args.corpus
        if corpus is None:
            corpus = Path(tempfile.gettempdir()) / f"polyko-tokbench-corpus-{int(need_mb)}"
        if not (corpus / "labels.json").exists():
            # bench.corpus writes ~1.5 kB of text per document; 20% margin: the sample is
            # source-balanced, so some sources fill up before others
            n_docs = int(need_mb * 1e6 * 1.2 / 1500) + 1000
            subprocess.run([sys.executable, "-m", "bench.corpus", "--docs", str(n_docs), "--output", str(corpus)],
                           check=True, capture_output=True)
        for mb, morph in sizes:
            print(json.dumps({"training": bench_training(mb, morph, corpus)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
