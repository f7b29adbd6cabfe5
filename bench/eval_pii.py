"""PII masking evaluation on real Korean documents (docs/pii.md records the numbers).

1. **Injection recall.**  Synthetic values (the same generators as the test fixture, another
   seed) are written into natural sentences ("문의는 … 로 연락 주세요") that are inserted at a
   sentence boundary of a real document (Korean Wikipedia, NSMC review pages, online comments).
   The sentence frames here are *not* the fixture's, so the fixture's wording is not what is
   measured.  A value counts as found when a span of the right type covers it (up to 3 extra
   characters, e.g. parentheses).
2. **Negative preservation.**  Sentences with dates, times, prices, case numbers, ISBNs,
   versions, order codes, year spans and impossible-date RRN shapes are inserted the same way;
   preserved = no span touches the inserted sentence.
3. **Untouched documents.**  Every Korean document of the development data is scanned as is;
   each span is listed with its context so false positives can be judged by reading them.

    .venv/bin/python -m bench.eval_pii [--per-type 300] [--seed 7] [--json out.json]
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

from bench.corpus import DEFAULT_DATA
from filters.pii import find_pii

REPO = Path(__file__).resolve().parent.parent


def _fixture_module():
    """The value generators of tests/fixtures/pii/make_fixture.py (one source of fake values)."""
    path = REPO / "tests" / "fixtures" / "pii" / "make_fixture.py"
    spec = importlib.util.spec_from_file_location("pii_make_fixture", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# Frames written for this evaluation only (the fixture uses others).
FRAMES = {
    "tel": ["자세한 사항은 {v}로 문의하시기 바랍니다.", "행사 관련 문의는 사무국({v})으로 하면 된다.",
            "연락처: {v}", "전화 {v} 로 신청을 받는다.", "예약은 {v}에서 받는다.",
            "휴대전화 {v}로 문자를 보내면 된다.", "현재 대표번호는 {v}이다.", "고객센터 {v} 운영 중.",
            "팩스는 {v}번을 쓴다.", "담당자 연락처는 {v}입니다."],
    "rrn": ["신청자는 주민등록번호 {v}를 적어야 했다.", "그의 주민번호는 {v}로 알려졌다.",
            "외국인등록번호 {v}로 등록했다.", "본인확인 절차에서 {v} 주민번호가 쓰였다.",
            "성명 김철수 주민등록번호 {v} 주소 서울특별시"],
    "email": ["문의는 전자우편 {v}로 받는다.", "이메일 주소는 {v}이다.", "투고: {v}", "연락은 {v}로 하면 된다.",
              "{v} 앞으로 의견을 보내 달라고 했다."],
    "acc": ["후원금은 {b} {v}(예금주 사단법인)로 입금하면 된다.", "입금 계좌는 {b} {v}이다.",
            "{b} 계좌 {v}로 송금했다.", "성금 계좌: {b} {v}", "회비 납부 계좌 {v} ({b})"],
    "crd": ["결제에 쓴 카드 번호는 {v}였다.", "신용카드 {v}로 결제되었다.", "카드번호 {v} 사용이 정지되었다.",
            "체크카드({v}) 분실 신고를 했다."],
}

# No context word of any recognizer in these (values still in a natural position).
BARE_FRAMES = ["참고로 {v} 이다.", "({v})", "{v} 확인 바람.", "적힌 것은 {v}뿐이었다."]

BOUNDARY = re.compile(r"(?<=[.!?。])\s+|\n")


def load_documents(data: Path) -> dict[str, list[str]]:
    def read(name):
        with gzip.open(data / name, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    docs = {
        "ko_wiki": [r["text"] for r in read("ko_wiki.jsonl.gz")],
        "ko_wiki_stubs": [r["text"] for r in read("ko_wiki_stubs.jsonl.gz")],
        "ko_nsmc_reviews": [r["text"] for r in read("ko_nsmc_reviews.jsonl.gz")],
        "ko_nsmc_single": [r["text"] for r in read("ko_nsmc_single.jsonl.gz")],
        "ko_comments": [r["text"] for r in read("ko_comments.jsonl.gz")],
        "ko_law": [r["text"] for r in read("ko_law.jsonl.gz")],
        "python_docs_ko": [r["text"] for r in read("other_lang.jsonl.gz")
                           if r.get("source") == "python_docs" and r.get("lang") == "ko"],
    }
    return docs


def insert_at_boundary(rng: random.Random, doc: str, sentence: str) -> tuple[str, int]:
    """``doc`` with ``sentence`` inserted after a random sentence end; returns (text, offset)."""
    cuts = [m.end() for m in BOUNDARY.finditer(doc)]
    if not cuts:
        text = doc.rstrip() + " "
        return text + sentence, len(text)
    cut = rng.choice(cuts)
    pre = doc[:cut]
    if not pre.endswith((" ", "\n")):
        pre += " "
    return pre + sentence + " " + doc[cut:], len(pre)


def value_pool(fx, rng):
    pools = {
        "tel": [(f, v, None) for f, v in fx.phone_values(rng)],
        "rrn": [(f, v, None) for f, v in fx.rrn_values(rng)],
        "email": [(f, v, None) for f, v in fx.email_values(rng)],
        "acc": [(f, v, b) for b, f, v in fx.account_values(rng)],
        "crd": [(f, v, None) for f, v in fx.card_values(rng)],
    }
    return pools


def run_injection(docs, per_type, seed):
    fx = _fixture_module()
    rng = random.Random(seed)
    hosts = docs["ko_wiki"] + docs["ko_nsmc_reviews"] + [c for c in docs["ko_comments"] if len(c) > 40]
    found, total, wrong_type = Counter(), Counter(), Counter()
    by_format = defaultdict(lambda: [0, 0])
    misses = []
    for typ in FRAMES:
        pool = []
        while len(pool) < per_type:
            pool += value_pool(fx, rng)[typ]
        for fmt, value, bank in pool[:per_type]:
            frame = rng.choice(FRAMES[typ])
            sentence = frame.format(v=value, b=bank or "")
            text, offset = insert_at_boundary(rng, rng.choice(hosts), sentence)
            vs = offset + sentence.index(value)
            ve = vs + len(value)
            spans = find_pii(text)
            covering = [s for s in spans if s.start <= vs and s.end >= ve and (s.end - s.start) <= len(value) + 3]
            ok = any(s.name == typ for s in covering)
            total[typ] += 1
            found[typ] += ok
            by_format[(typ, fmt)][0] += ok
            by_format[(typ, fmt)][1] += 1
            if not ok:
                wrong_type[typ] += bool(covering)
                if len(misses) < 40:
                    misses.append({"type": typ, "format": fmt, "sentence": sentence,
                                   "got": [(s.name, text[s.start:s.end], s.score) for s in spans
                                           if s.end > offset and s.start < offset + len(sentence)]})
    # The same values with no context word at all: shows which formats rely on context.
    bare_found, bare_total = Counter(), Counter()
    for typ in FRAMES:
        pool = []
        while len(pool) < per_type:
            pool += value_pool(fx, rng)[typ]
        for fmt, value, _ in pool[:per_type]:
            sentence = rng.choice(BARE_FRAMES).format(v=value)
            text, offset = insert_at_boundary(rng, rng.choice(hosts), sentence)
            vs = offset + sentence.index(value)
            bare_total[typ] += 1
            bare_found[typ] += any(s.name == typ and s.start <= vs and s.end >= vs + len(value)
                                   for s in find_pii(text))
    neg_total, neg_kept = Counter(), Counter()
    neg_fail = []
    negs = []
    while len(negs) < per_type * 2:
        negs += fx.negative_cases(rng)
    for kind, sentence in negs[:per_type * 2]:
        text, offset = insert_at_boundary(rng, rng.choice(hosts), sentence)
        end = offset + len(sentence)
        touched = [s for s in find_pii(text) if s.end > offset and s.start < end]
        neg_total[kind] += 1
        neg_kept[kind] += not touched
        if touched and len(neg_fail) < 40:
            neg_fail.append({"kind": kind, "sentence": sentence,
                             "got": [(s.name, text[s.start:s.end], s.score) for s in touched]})
    return {"found": found, "total": total, "wrong_type": wrong_type, "by_format": by_format,
            "bare_found": bare_found, "bare_total": bare_total,
            "misses": misses, "neg_total": neg_total, "neg_kept": neg_kept, "neg_fail": neg_fail}


def run_untouched(docs):
    per_file = {}
    samples = []
    for name, texts in docs.items():
        counts = Counter()
        t0 = time.perf_counter()
        for text in texts:
            for s in find_pii(text):
                counts[s.name] += 1
                samples.append({"file": name, "type": s.name, "format": s.fmt, "score": s.score,
                                "context": text[max(0, s.start - 40):s.end + 25].replace("\n", " ⏎ "),
                                "value_at": [max(0, s.start - 40), s.end + 25]})
        per_file[name] = {"docs": len(texts), "spans": dict(counts),
                          "seconds": round(time.perf_counter() - t0, 1)}
    return per_file, samples


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--per-type", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    args = ap.parse_args(argv)

    docs = load_documents(args.data)
    t0 = time.perf_counter()
    inj = run_injection(docs, args.per_type, args.seed)
    print(f"## Injection into real documents ({args.per_type} per type, seed {args.seed}, "
          f"{time.perf_counter() - t0:.0f}s)\n")
    print("| type | found / injected | recall | masked with another token | recall without context word |")
    print("|---|---:|---:|---:|---:|")
    for t in FRAMES:
        print(f"| {t} | {inj['found'][t]} / {inj['total'][t]} | {inj['found'][t] / inj['total'][t]:.3f} "
              f"| {inj['wrong_type'][t]} | {inj['bare_found'][t] / inj['bare_total'][t]:.3f} |")
    print("\nPer format (recall < 1 only):")
    for (t, f), (ok, n) in sorted(inj["by_format"].items()):
        if ok < n:
            print(f"  {t}/{f}: {ok}/{n}")
    print("\nMisses:")
    for m in inj["misses"]:
        print("  ", m)
    nt, nk = sum(inj["neg_total"].values()), sum(inj["neg_kept"].values())
    print(f"\n## Negative preservation: {nk} / {nt} = {nk / nt:.4f}\n")
    for kind in sorted(inj["neg_total"]):
        print(f"  {kind}: {inj['neg_kept'][kind]}/{inj['neg_total'][kind]}")
    for m in inj["neg_fail"]:
        print("   FAIL", m)

    per_file, samples = run_untouched(docs)
    print("\n## Untouched real documents\n")
    print("| file | documents | spans masked |")
    print("|---|---:|---|")
    for name, r in per_file.items():
        print(f"| {name} | {r['docs']:,} | {r['spans'] or '-'} |")
    print("\nEvery span (read to judge false positives):")
    for s in samples:
        print(f"  [{s['file']}] {s['type']}/{s['format']} {s['score']}: {s['context']}")
    if args.json:
        args.json.write_text(json.dumps({
            "injection": {k: (dict(v) if isinstance(v, Counter) else v) for k, v in inj.items()
                          if k != "by_format"},
            "by_format": {f"{t}/{f}": v for (t, f), v in inj["by_format"].items()},
            "untouched": per_file, "untouched_spans": samples}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
