"""Scale real text from ../shared/data to a benchmark corpus of N documents, deterministic by seed.

The mix is fixed (see ``MIX``): real Korean documents, real non-Korean documents, junk made from
real sentences, and exact / near duplicates of documents generated earlier in the same corpus.
Because the development data holds ~30k Korean documents, a corpus of 1M documents cannot be
1M distinct articles; each generated Korean document is therefore a *window* of a real one (a run
of consecutive paragraphs of a Wikipedia article, or a random set of reviews/comments of one
kind), so documents are real text but distinct, as a web crawl's are.

    python -m bench.corpus --docs 100000 --output /tmp/bench/100k [--seed 1]

writes ``part-00000.jsonl.gz`` … (5,000 documents a file) and ``labels.json`` (counts per kind).
Many files, as real crawls come: datatrove gives each task whole files, so a corpus in one file
would leave all but one of the peer's workers idle (the first 30k-document comparison did).
Memory stays bounded: only the source pools (~40 MB of text) and a ring of recent documents
(for duplicates) are held.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
from pathlib import Path

DEFAULT_DATA = Path(os.environ.get("POLYKO_SHARED_DATA",
                                   Path(__file__).resolve().parent.parent.parent / "shared" / "data"))

# kind -> share of documents
MIX = {
    "ko_wiki": 0.34,
    "ko_reviews": 0.18,
    "ko_comments": 0.10,
    "non_korean": 0.12,
    "junk_spam": 0.025,
    "junk_repetition": 0.025,
    "junk_jamo": 0.02,
    "junk_short": 0.02,
    "exact_dup": 0.07,
    "near_dup": 0.08,
}
DOCS_PER_FILE = 5_000
SPAM_WORDS = ["카지노", "토토", "바카라", "먹튀검증", "스포츠토토", "출장마사지", "무직자대출", "당일대출",
              "슬롯머신", "파워볼", "홀덤", "온라인카지노"]


def _read(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


class Pools:
    """Real text from the development data, grouped the way the generator uses it."""

    def __init__(self, data_dir: Path):
        self.wiki = [r["text"].split("\n") for r in _read(data_dir / "ko_wiki.jsonl.gz")]
        self.review_lines = [ln for r in _read(data_dir / "ko_nsmc_reviews.jsonl.gz")
                             for ln in r["text"].split("\n") if ln.strip()]
        self.comments = [r["text"] for r in _read(data_dir / "ko_comments.jsonl.gz") if len(r["text"]) >= 10]
        other = collections.defaultdict(list)
        for r in _read(data_dir / "other_lang.jsonl.gz"):
            lang = r.get("lang")
            if r["source"] == "python_docs" and lang in ("en", "ja", "zh_CN"):
                other[lang].append(r["text"])
            elif r["source"] == "lingua_testdata" and r.get("kind") == "sentence" and lang != "ko":
                other["lingua"].append(r["text"])
        self.other = {k: v for k, v in other.items() if v}
        self.sentences = [s.strip() + "." for lines in self.wiki[:3000] for ln in lines
                          for s in ln.split(". ") if 20 <= len(s) <= 120]


def _wiki_window(rng: random.Random, pools: Pools) -> str:
    paras = pools.wiki[rng.randrange(len(pools.wiki))]
    if len(paras) <= 3:
        return "\n".join(paras)
    n = rng.randint(3, min(len(paras), 12))
    start = rng.randrange(len(paras) - n + 1)
    return "\n".join(paras[start:start + n])


def _reviews(rng: random.Random, pools: Pools) -> str:
    return "\n".join(rng.sample(pools.review_lines, rng.randint(8, 30)))


def _comments(rng: random.Random, pools: Pools) -> str:
    return "\n".join(rng.sample(pools.comments, rng.randint(6, 20)))


def _non_korean(rng: random.Random, pools: Pools) -> str:
    lang = rng.choice(sorted(pools.other))
    pool = pools.other[lang]
    return "\n".join(rng.sample(pool, min(len(pool), rng.randint(8, 25))))


def _spam(rng: random.Random, pools: Pools) -> str:
    lines = []
    for _ in range(rng.randint(6, 14)):
        words = rng.sample(SPAM_WORDS, 3)
        lines.append(f"{words[0]} {words[1]} 추천 {words[2]} 가입코드 {rng.randint(1000, 9999)} 바로가기")
        if rng.random() < 0.3:
            lines.append(rng.choice(pools.sentences))
    return "\n".join(lines)


def _repetition(rng: random.Random, pools: Pools) -> str:
    sentence = rng.choice(pools.sentences)
    other = rng.choice(pools.sentences)
    return "\n".join([sentence] * rng.randint(10, 30) + [other])


def _jamo(rng: random.Random, pools: Pools) -> str:
    bits = ["ㅋㅋㅋㅋㅋ", "ㅎㅎㅎ", "ㅠㅠㅠㅠ", "ㅜㅜ", "ㄷㄷㄷ", "ㅋㅋㅋㅋㅋㅋㅋㅋ", "ㄱㄱ", "^^", "ㅇㅇ"]
    return "\n".join(" ".join(rng.choice(bits) for _ in range(rng.randint(3, 10)))
                     for _ in range(rng.randint(3, 12)))


def _short(rng: random.Random, pools: Pools) -> str:
    return rng.choice(pools.comments)[:rng.randint(2, 12)]


def _near_dup(rng: random.Random, text: str) -> str:
    """One of the dedup issue's recipes: typos, truncation, header/footer, paragraph swap."""
    recipe = rng.randrange(4)
    if recipe == 0:  # a few character typos
        chars = list(text)
        for _ in range(max(1, len(chars) // 200)):
            i = rng.randrange(len(chars))
            chars[i] = rng.choice("가나다라마바사아자차카타파하 ")
        return "".join(chars)
    if recipe == 1:  # drop the last 5-10%
        return text[: int(len(text) * rng.uniform(0.90, 0.95))]
    if recipe == 2:  # add a short header and footer
        return f"[공유] 원문 보기\n{text}\n출처: 블로그 스크랩"
    lines = text.split("\n")  # swap two paragraphs
    if len(lines) >= 2:
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


GENERATORS = {"ko_wiki": _wiki_window, "ko_reviews": _reviews, "ko_comments": _comments,
              "non_korean": _non_korean, "junk_spam": _spam, "junk_repetition": _repetition,
              "junk_jamo": _jamo, "junk_short": _short}


def generate(n_docs: int, output: Path, seed: int = 1, data_dir: Path = DEFAULT_DATA) -> dict:
    rng = random.Random(seed)
    pools = Pools(data_dir)
    kinds, weights = zip(*MIX.items())
    recent: collections.deque[str] = collections.deque(maxlen=5000)  # candidates for duplicates
    counts: collections.Counter[str] = collections.Counter()
    total_bytes = 0
    output.mkdir(parents=True, exist_ok=True)
    out = None
    for i in range(n_docs):
        if i % DOCS_PER_FILE == 0:
            if out:
                out.close()
            out = gzip.open(output / f"part-{i // DOCS_PER_FILE:05d}.jsonl.gz", "wt", encoding="utf-8",
                            compresslevel=1)
        kind = rng.choices(kinds, weights)[0]
        if kind in ("exact_dup", "near_dup") and not recent:
            kind = "ko_wiki"
        if kind == "exact_dup":
            text = rng.choice(recent)
        elif kind == "near_dup":
            text = _near_dup(rng, rng.choice(recent))
        else:
            text = GENERATORS[kind](rng, pools)
            if kind.startswith("ko_") and len(text) > 400:
                recent.append(text)
        counts[kind] += 1
        total_bytes += len(text.encode("utf-8"))
        out.write(json.dumps({"id": f"bench-{seed}-{i}", "text": text, "source": kind.split("_")[0]
                              if kind.startswith("junk") else kind, "kind": kind}, ensure_ascii=False))
        out.write("\n")
    if out:
        out.close()
    labels = {"documents": n_docs, "bytes": total_bytes, "seed": seed, "kinds": dict(counts)}
    (output / "labels.json").write_text(json.dumps(labels, indent=1))
    return labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    print(json.dumps(generate(args.docs, args.output, args.seed, args.data)))


if __name__ == "__main__":
    main()
