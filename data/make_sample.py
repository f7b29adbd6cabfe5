"""Build the bundled demo sample ``data/sample/*.jsonl.gz`` from the development data.

    .venv/bin/python data/make_sample.py [--shared ../shared/data]

Deterministic (evenly spaced records, fixed gzip mtime), a few MB in total, licences limited to
CC BY-SA (kowiki), CC0 (nsmc), MIT (kote, chatbot_data, curse_detection) and PSF-2.0
(python_docs en/ja/zh_CN as non-Korean text).  lingua_testdata, konlpy and korean_hate_speech
are left out (see data/sample/DATA_LICENSES.md).  Records are copied unchanged (``source`` and
``license`` fields included), so the naturally occurring junk of these sources (one-word
reviews, "ㅋㅋㅋ", duplicated chatbot answers, wiki stubs) is in the sample as it is.
"""
from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

# output file -> (input file, filter on the record, how many records, evenly spaced)
PLAN = {
    "kowiki.jsonl.gz": ("ko_wiki.jsonl.gz", lambda r: True, 1400),
    "kowiki_stubs.jsonl.gz": ("ko_wiki_stubs.jsonl.gz", lambda r: True, 400),
    "nsmc_reviews.jsonl.gz": ("ko_nsmc_reviews.jsonl.gz", lambda r: True, 500),
    "nsmc_single.jsonl.gz": ("ko_nsmc_single.jsonl.gz", lambda r: True, 3000),
    "comments.jsonl.gz": ("ko_comments.jsonl.gz",
                          lambda r: r["source"] in ("kote", "chatbot_data", "curse_detection"), 4500),
    "python_docs_other_lang.jsonl.gz": ("other_lang.jsonl.gz",
                                        lambda r: r["source"] == "python_docs" and r.get("lang") in ("en", "ja", "zh_CN"),
                                        1500),
}


def evenly_spaced(records: list[dict], n: int) -> list[dict]:
    if len(records) <= n:
        return records
    step = len(records) / n
    return [records[int(i * step)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(HERE.parent.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(HERE / "sample"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, (src, keep, n) in PLAN.items():
        with gzip.open(Path(args.shared) / src, "rt", encoding="utf-8") as fh:
            records = [r for r in map(json.loads, fh) if keep(r)]
        if src == "ko_comments.jsonl.gz":  # equal share per source, so each kind is represented
            picked = []
            for s in ("kote", "chatbot_data", "curse_detection"):
                picked += evenly_spaced([r for r in records if r["source"] == s], n // 3)
        else:
            picked = evenly_spaced(records, n)
        with open(out / name, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            for r in picked:
                gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8"))
        print(f"{name}: {len(picked)} records, {(out / name).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
