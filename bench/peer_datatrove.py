"""The peer: datatrove configured as FineWeb-2's Korean (kor_Hang) pipeline, on the same input.

Runs inside the datatrove virtual environment that ``bench/e2e.py`` creates (it is not imported by
polyko).  The steps follow huggingface/fineweb-2's ``fineweb-2-pipeline.py`` with the thresholds
of its ``configs/kor_Hang.yml`` (copied into ``KOR_HANG`` below), in FineWeb-2's order:

1. language ID (fastText lid.176 — the same ``lid.176.ftz`` file polyko uses — Korean, score ≥ 0.842)
2. 4-stage MinHash dedup (5-grams, 14 buckets × 8 hashes, xxhash 64-bit)
3. Gopher repetition, FineWeb quality, Gopher quality with the kor_Hang thresholds
4. PII formatter, JSONL output, Megatron tokenized output with the same tokenizer file

Variant ``kiwi`` uses the word tokenizer datatrove assigns to Korean (Kiwi), as FineWeb-2 ran it;
variant ``whitespace`` swaps in a plain ``str.split`` word tokenizer so both sides do comparable
work.  With whitespace words, kor_Hang's stop words (Kiwi morphemes: particles such as 의, 는, 을)
almost never stand alone, so Gopher quality's "at least 2 stop words" rule drops ~90 % of real
Korean documents and the peer skips most of its later work.  Variant ``whitespace-eojeol`` is the
same pipeline with that one list replaced by eojeol stop words (``--stopwords``: the most frequent
whitespace words of real Korean text, computed by ``bench.e2e``), so that it keeps about as much
as the other pipelines and does comparable work downstream.  Prints one JSON line: wall time per step and in all, documents in and kept.

    python bench/peer_datatrove.py --input DIR --output DIR --variant kiwi --tokenizer FILE --lid FILE
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
from datatrove.pipeline.filters import (FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter,
                                        LanguageFilter)
from datatrove.pipeline.formatters import PIIFormatter
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer
from datatrove.pipeline.writers.jsonl import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.lid import FT176LID
from datatrove.utils.word_tokenizers import WordTokenizer, load_word_tokenizer

# huggingface/fineweb-2 configs/kor_Hang.yml
KOR_HANG = {
    "dup_line_frac": 0.374,
    "dup_n_grams": [(5, 0.201), (6, 0.184), (7, 0.168), (8, 0.154), (9, 0.14), (10, 0.127)],
    "language_score": 0.842,
    "line_punct_thr": 0.062,
    "max_avg_word_length": 6,
    "max_non_alpha_words_ratio": 0.791,
    "min_avg_word_length": 1,
    "new_line_ratio": 0.196,
    "stopwords": ["의", "다", "이", "는", "에", "을", "한", "년", "하", "은", "를", "했", "고", "에서", "가", "있",
                  "으로", "인", "월", "로", "되"],
    "top_n_grams": [(2, 0.282), (3, 0.228), (4, 0.185)],
}


class PlainWhitespaceTokenizer(WordTokenizer):
    """Variant (b): words are whitespace-separated units (eojeol), sentences split on punctuation."""

    _sent = re.compile(r"[^.!?\n]+[.!?\n]*")

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [s.strip() for s in self._sent.findall(text) if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in self._sent.finditer(text)]


def local_lid(model_path: str):
    """FT176LID that loads the local lid.176.ftz instead of downloading lid.176.bin."""

    class LocalFT176LID(FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText
                self._model = _FastText(model_path)
            return self._model

    return LocalFT176LID


def run(args) -> dict:
    out = Path(args.output)
    whitespace = args.variant.startswith("whitespace")
    words = PlainWhitespaceTokenizer() if whitespace else load_word_tokenizer("kor_Hang")
    lang = words if whitespace else "kor_Hang"
    stop_words = json.loads(args.stopwords) if args.variant == "whitespace-eojeol" else KOR_HANG["stopwords"]
    tasks = workers = args.workers
    timings = {}

    def timed(name, executor):
        t0 = time.perf_counter()
        executor.run()
        timings[name] = time.perf_counter() - t0

    lid_filter = LanguageFilter(languages=["ko"], language_threshold=KOR_HANG["language_score"])
    lid_filter.model = local_lid(args.lid)(["ko"])
    timed("langid", LocalPipelineExecutor(pipeline=[
        JsonlReader(args.input, glob_pattern="*.jsonl.gz"),
        lid_filter,
        JsonlWriter(str(out / "lid")),
    ], tasks=tasks, workers=workers, logging_dir=str(out / "logs/lid")))

    mh = MinhashConfig(hash_config=HashConfig(hash_fc="xxhash", precision=64), num_buckets=14,
                       hashes_per_bucket=8, n_grams=5)
    timed("minhash_signatures", LocalPipelineExecutor(pipeline=[
        JsonlReader(str(out / "lid")),
        MinhashDedupSignature(output_folder=str(out / "mh/sigs"), config=mh, language=lang),
    ], tasks=tasks, workers=workers, logging_dir=str(out / "logs/mh1")))
    timed("minhash_buckets", LocalPipelineExecutor(pipeline=[
        MinhashDedupBuckets(input_folder=str(out / "mh/sigs"), output_folder=str(out / "mh/buckets"),
                            config=MinhashConfig(hash_config=mh.hash_config)),
    ], tasks=mh.num_buckets, workers=workers, logging_dir=str(out / "logs/mh2")))
    timed("minhash_cluster", LocalPipelineExecutor(pipeline=[
        MinhashDedupCluster(input_folder=str(out / "mh/buckets"), output_folder=str(out / "mh/remove_ids"),
                            config=mh),
    ], tasks=1, workers=1, logging_dir=str(out / "logs/mh3")))
    timed("dedup_filter_quality_pii_tokenize", LocalPipelineExecutor(pipeline=[
        JsonlReader(str(out / "lid")),
        MinhashDedupFilter(input_folder=str(out / "mh/remove_ids")),
        GopherRepetitionFilter(language=lang, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                               dup_line_frac=KOR_HANG["dup_line_frac"], top_n_grams=KOR_HANG["top_n_grams"],
                               dup_n_grams=KOR_HANG["dup_n_grams"]),
        FineWebQualityFilter(language=lang, short_line_thr=999, char_duplicates_ratio=0.1,
                             line_punct_thr=KOR_HANG["line_punct_thr"], new_line_ratio=KOR_HANG["new_line_ratio"]),
        GopherQualityFilter(language=lang, max_avg_word_length=KOR_HANG["max_avg_word_length"],
                            min_avg_word_length=KOR_HANG["min_avg_word_length"], stop_words=stop_words,
                            max_non_alpha_words_ratio=KOR_HANG["max_non_alpha_words_ratio"], min_stop_words=2),
        PIIFormatter(),
        JsonlWriter(str(out / "kept")),
        MegatronDocumentTokenizer(output_folder=str(out / "tokens"), tokenizer_name_or_path=args.tokenizer,
                                  eos_token="<|endoftext|>"),
    ], tasks=tasks, workers=workers, logging_dir=str(out / "logs/final")))

    kept = 0
    for f in (out / "kept").glob("*.jsonl.gz"):
        import gzip
        with gzip.open(f, "rt") as fh:
            kept += sum(1 for _ in fh)
    after_lid = 0
    for f in (out / "lid").glob("*.jsonl.gz"):
        import gzip
        with gzip.open(f, "rt") as fh:
            after_lid += sum(1 for _ in fh)
    return {"variant": args.variant, "stop_words": stop_words, "seconds": sum(timings.values()), "steps": timings,
            "after_langid": after_lid, "kept": kept}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--variant", choices=["kiwi", "whitespace", "whitespace-eojeol"], required=True)
    ap.add_argument("--stopwords", default="[]", help="JSON list of stop words (whitespace-eojeol only)")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--lid", required=True)
    ap.add_argument("--workers", type=int, default=2)
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()
