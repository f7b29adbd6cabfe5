"""Evaluate the filter chain normalize → langid → quality on a labelled set built from real text.

    .venv/bin/python -m bench.eval_filters [--per-kind 300] [--seed 1] [--curve] [--json out.json]

The labelled set comes from ../shared/data (see its README):

* **Korean documents**: Wikipedia articles, NSMC review pages, bills, and single reviews /
  comments / lingua sentences that are documents by our definition (below).
* **Short Korean**: the same sources' texts under the minimum length ("굿", "축하해요!"), reported
  separately; a pretraining corpus does not need them and the quality stage drops them on purpose.
* **Korean with code** (python-docs ``ko`` strings): Korean prose mixed with reST and identifiers,
  reported separately: neither clean prose nor non-Korean.
* **Non-Korean**: per language, python-docs ``en``/``ja``/``zh_CN`` strings and lingua sentences and
  word pairs of 74 languages; plus real source-code files (``code``).
* **Junk** of each kind, built from real Korean sentences (``JUNK_KINDS``).

Definition: a *Korean document* is a Korean text with at least ``MIN_DOC_NONSPACE`` non-space
characters after normalisation (one or two full sentences; the same minimum as
``quality.length.min_chars``'s default).  Targets: Korean retention by langid ≥ 0.99, non-Korean
rejection ≥ 0.99 for every language, clean-document retention by the full chain ≥ 0.95, junk
rejection ≥ 0.95 for every kind.

``main()`` returns a dict of metrics (used by ``bench/eval_all.py``) and prints tables; ``--curve``
also prints the langid threshold curve recorded in docs/langid.md.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from filters.base import Document, run_filters
from filters.langid import build_filters as build_langid, load_model, predict_language
from filters.normalize import build_filters as build_normalize
from filters.text_stats import hangul_letter_ratio
from pipeline.config import load_defaults

DATA_DIR = Path(os.environ.get("POLYKO_SHARED_DATA",
                               Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
MIN_DOC_NONSPACE = 50
TARGETS = {"korean_retention": 0.99, "non_korean_rejection": 0.99,
           "clean_retention": 0.95, "junk_rejection": 0.95}


def _records(name: str) -> Iterator[dict]:
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def nonspace_len(text: str) -> int:
    return len(text) - sum(1 for ch in text if ch.isspace())


@dataclass
class Item:
    group: str        # "korean", "korean_short", "korean_code", "non_korean", "junk"
    kind: str         # source / language / junk kind
    text: str


# --- real text pools ------------------------------------------------------------------------

class Pools:
    def __init__(self) -> None:
        self.wiki = [r["text"] for r in _records("ko_wiki.jsonl.gz")]
        self.reviews = [r["text"] for r in _records("ko_nsmc_reviews.jsonl.gz")]
        self.law = [r["text"] for r in _records("ko_law.jsonl.gz")]
        self.single = [r["text"] for r in _records("ko_nsmc_single.jsonl.gz")]
        self.comments = [(r["source"], r["text"]) for r in _records("ko_comments.jsonl.gz")]
        self.other = [r for r in _records("other_lang.jsonl.gz")]
        # Sentences of Wikipedia prose (ending in 다.), the raw material for most junk.
        self.sentences = [s.strip() + "다." for t in self.wiki[:3000]
                          for s in re.split(r"다\.\s", t) if 20 <= len(s) <= 150
                          and hangul_letter_ratio(s) > 0.9]
        self.review_lines = [ln for t in self.reviews[:3000] for ln in t.split("\n")
                             if 10 <= len(ln) <= 120]
        # Short nouns/eojeol (2–6 syllables) for lists, tag clouds and tables.
        self.words = sorted({w for s in self.sentences[:5000] for w in s.split()
                             if 2 <= len(w) <= 6 and hangul_letter_ratio(w) == 1.0 and w.isalpha()})


# --- junk generators, each from real Korean text --------------------------------------------

SPAM_TERMS = ["온라인카지노", "바카라사이트", "토토사이트", "먹튀검증", "안전놀이터", "슬롯머신", "파워볼",
              "스포츠토토", "메이저사이트", "출장마사지", "출장안마", "무직자대출", "당일대출", "비아그라",
              "첫충 20%", "매충 10%", "홀덤사이트", "카지노 가입코드"]
BOILERPLATE_LINES = [
    "홈", "로그인", "회원가입", "마이페이지", "장바구니", "고객센터", "공지사항", "자주 묻는 질문", "이용약관",
    "개인정보처리방침", "이메일무단수집거부", "사이트맵", "맨 위로", "이전글", "다음글", "목록", "댓글 0",
    "공유하기", "카카오톡 공유", "페이스북 공유", "트위터 공유", "URL 복사", "신고하기", "본문 바로가기",
    "메뉴 바로가기", "검색", "전체메뉴", "더보기", "닫기", "구독하기", "좋아요 0", "인쇄", "글자크기",
    "Copyright © 2024 All rights reserved.", "무단전재 및 재배포 금지", "사업자등록번호 정보확인",
    "통신판매업 신고번호", "대표전화 1588-0000", "팩스 02-000-0000", "개인정보보호책임자", "청소년보호정책",
    "제휴문의", "광고문의", "회사소개", "채용정보", "오시는 길", "뉴스레터 신청", "RSS", "앱 다운로드",
]
JAMO_BITS = ["ㅋ", "ㅎ", "ㅠ", "ㅜ", "ㅡㅡ", "^^", "^_^", "ㅇㅇ", "ㄷㄷ", ";;", "~~", "♥", "ㄱㄱ", "T_T",
             "><", "ㅗ", "ㅉㅉ", "😂", "👍", "ㅇㅈ", "ㄹㅇ", "ㅅㅂ", "?!", "…"]
SYMBOL_BITS = ["★", "☆", "♥", "■", "□", "▶", "◀", "●", "○", "◆", "※", "→", "▲", "▼", "=", "-", "|", "+", "%"]


def junk_spam(rng: random.Random, p: Pools) -> str:
    lines = []
    for _ in range(rng.randint(5, 12)):
        terms = rng.sample(SPAM_TERMS, 3)
        lines.append(f"★{terms[0]}★ {terms[1]} {terms[2]} 추천 ✔ 카톡 {rng.choice(['vip', 'win', 'bet'])}"
                     f"{rng.randint(100, 999)} ✔ 24시간 상담 {rng.randint(1, 99)}만원 즉시지급")
    # Real sentences padded in, as spam pages do to look organic.
    for _ in range(rng.randint(1, 3)):
        lines.insert(rng.randrange(len(lines)), rng.choice(p.review_lines))
    return "\n".join(lines)


def junk_repetition(rng: random.Random, p: Pools) -> str:
    style = rng.randrange(3)
    if style == 0:                                            # the same line over and over
        return "\n".join([rng.choice(p.sentences)] * rng.randint(8, 30))
    if style == 1:                                            # a phrase looped inside one line
        words = rng.choice(p.review_lines).split()
        phrase = " ".join(words[: rng.randint(2, 4)])
        return " ".join([phrase] * rng.randint(20, 60))
    block = [rng.choice(p.sentences) for _ in range(rng.randint(2, 3))]   # a paragraph pasted 6–15x
    return "\n".join(block * rng.randint(6, 15))


def junk_jamo_emoticon(rng: random.Random, p: Pools) -> str:
    parts = []
    while sum(map(len, parts)) < rng.randint(60, 300):
        bit = rng.choice(JAMO_BITS)
        parts.append(bit * (rng.randint(3, 12) if len(bit) == 1 else rng.randint(1, 4)))
    if rng.random() < 0.5:                                    # a word or two of real Korean
        parts.insert(rng.randrange(len(parts)), rng.choice(p.words))
    return " ".join(parts)


def _mojibake(rng: random.Random, text: str, pairs) -> str:
    enc, dec = rng.choice(pairs)
    return text.encode(enc, errors="ignore").decode(dec, errors="replace")


def junk_mojibake(rng: random.Random, p: Pools) -> str:
    """Korean bytes read as Latin: UTF-8/EUC-KR decoded as latin-1/cp1252 (the issue's kind)."""
    text = "\n".join(rng.sample(p.sentences, rng.randint(2, 6)))
    return _mojibake(rng, text, [("utf-8", "latin-1"), ("utf-8", "cp1252"),
                                 ("euc-kr", "latin-1"), ("euc-kr", "cp1252")])


def junk_mojibake_cp949(rng: random.Random, p: Pools) -> str:
    """UTF-8 Korean read as CP949 — the commonest mis-decoding on Korean sites; ~70 % Hangul."""
    text = "\n".join(rng.sample(p.sentences, rng.randint(2, 6)))
    return _mojibake(rng, text, [("utf-8", "cp949")])


def junk_code(rng: random.Random, p: Pools) -> str:
    """A window of a real source file (kss_code files carry Korean comments and strings)."""
    files = [r["text"] for r in p.other if r["lang"] == "code"]
    lines = rng.choice(files).split("\n")
    start = rng.randrange(max(1, len(lines) - 40))
    return "\n".join(lines[start:start + rng.randint(20, 60)])


def junk_markup(rng: random.Random, p: Pools) -> str:
    """Data/markup dumps around real Korean strings: JSON records, CSS/JS, wiki templates."""
    style = rng.randrange(3)
    n = rng.randint(4, 10)
    if style == 0:
        return "\n".join(json.dumps({"id": rng.randint(1, 99999), "title": rng.choice(p.words),
                                     "desc": rng.choice(p.sentences)[:40], "price": rng.randint(1, 99) * 1000,
                                     "tags": rng.sample(p.words, 2)}, ensure_ascii=False) for _ in range(n))
    if style == 1:
        return "\n".join(f'.item-{i} {{ color: #{rng.randint(0, 0xFFFFFF):06x}; margin: {rng.randint(0, 20)}px; }}'
                         f'\nvar msg{i} = "{rng.choice(p.words)}"; document.getElementById("t{i}").innerText = msg{i};'
                         for i in range(n))
    return "\n".join(f"{{{{정보상자 | 이름 = {rng.choice(p.words)} | 종류 = {rng.choice(p.words)} "
                     f"| 위치 = {rng.choice(p.words)} }}}}\n[[분류:{rng.choice(p.words)}]] [[파일:{rng.choice(p.words)}.jpg|섬네일]]"
                     for _ in range(n))


def junk_boilerplate(rng: random.Random, p: Pools) -> str:
    lines = rng.sample(BOILERPLATE_LINES, rng.randint(12, 30))
    if rng.random() < 0.5:
        lines = [" | ".join(lines[i:i + 5]) for i in range(0, len(lines), 5)]
    return "\n".join(lines)


def junk_too_short(rng: random.Random, p: Pools) -> str:
    short = [t for t in p.single if nonspace_len(t) < 10]
    return rng.choice(short)


def junk_symbol_digit(rng: random.Random, p: Pools) -> str:
    style = rng.randrange(3)
    rows = rng.randint(6, 15)
    if style == 0:                                            # price/stock tables
        return "\n".join(f"{rng.choice(p.words)} | {rng.randint(1000, 99999):,} | {rng.choice('▲▼')}"
                         f"{rng.randint(1, 999)} | {rng.uniform(-9, 9):+.2f}% | {rng.randint(1, 9999999):,}"
                         for _ in range(rows))
    if style == 1:                                            # lottery / score lists
        return "\n".join(f"{rng.randint(900, 1100)}회 " + " ".join(str(rng.randint(1, 45)) for _ in range(6))
                         + f" + {rng.randint(1, 45)}" for _ in range(rows))
    return "\n".join("".join(rng.choice(SYMBOL_BITS) * rng.randint(1, 5) for _ in range(8))
                     + f" {rng.choice(p.words)} " + "".join(rng.choice(SYMBOL_BITS) for _ in range(10))
                     for _ in range(rows))


def junk_list_bullet(rng: random.Random, p: Pools) -> str:
    style = rng.randrange(3)
    n = rng.randint(10, 30)
    words = rng.sample(p.words, n)
    if style == 0:
        return "\n".join(f"{rng.choice(['•', '-', '·', '▶', '*'])} {w}" for w in words)
    if style == 1:
        return " ".join(f"#{w}" for w in words)               # tag cloud
    return "\n".join(f"{i + 1}. {w}" for i, w in enumerate(words))


JUNK_KINDS: dict[str, Callable[[random.Random, Pools], str]] = {
    "spam_ads": junk_spam,
    "repetition": junk_repetition,
    "jamo_emoticon": junk_jamo_emoticon,
    "mojibake_latin": junk_mojibake,
    "mojibake_cp949": junk_mojibake_cp949,
    "code": junk_code,
    "markup": junk_markup,
    "boilerplate_only": junk_boilerplate,
    "too_short": junk_too_short,
    "symbol_digit": junk_symbol_digit,
    "list_bullet": junk_list_bullet,
}


# --- the labelled set -----------------------------------------------------------------------

def build_labelled_set(pools: Pools, per_kind: int = 300, seed: int = 1) -> list[Item]:
    rng = random.Random(seed)
    items: list[Item] = []

    def sample(seq, n):
        seq = list(seq)
        return rng.sample(seq, min(n, len(seq)))

    def add_korean(kind: str, texts, n: int) -> None:
        texts = list(texts)
        docs = [t for t in texts if nonspace_len(t) >= MIN_DOC_NONSPACE]
        short = [t for t in texts if nonspace_len(t) < MIN_DOC_NONSPACE]
        items.extend(Item("korean", kind, t) for t in sample(docs, n))
        items.extend(Item("korean_short", kind, t) for t in sample(short, n // 2))

    add_korean("wiki", pools.wiki, per_kind * 2)
    add_korean("nsmc_reviews", pools.reviews, per_kind * 2)
    add_korean("law", pools.law, 10)
    add_korean("nsmc_single", pools.single, per_kind)
    for source in sorted({s for s, _ in pools.comments}):
        add_korean(f"comments:{source}", (t for s, t in pools.comments if s == source), per_kind)
    add_korean("lingua_ko", (r["text"] for r in pools.other
                             if r["source"] == "lingua_testdata" and r["lang"] == "ko"), per_kind)
    items.extend(Item("korean_code", "python_docs_ko", t) for t in
                 sample((r["text"] for r in pools.other if r["source"] == "python_docs" and r["lang"] == "ko"),
                        per_kind))

    by_lang: dict[str, list[str]] = collections.defaultdict(list)
    for r in pools.other:
        if r["lang"] == "ko":
            continue
        lang = {"zh_CN": "zh"}.get(r["lang"], r["lang"])
        by_lang[lang].append(r["text"])
    for lang in sorted(by_lang):
        # CJK and English are the confusers that matter: sample them deeper.
        n = per_kind * 2 if lang in ("ja", "zh", "en") else max(50, per_kind // 3)
        items.extend(Item("non_korean", lang, t) for t in sample(by_lang[lang], n))

    for kind, make in JUNK_KINDS.items():
        items.extend(Item("junk", kind, make(rng, pools)) for _ in range(per_kind))
    return items


# --- running the chain ----------------------------------------------------------------------

def build_chain() -> dict[str, list]:
    from filters.quality import build_filters as build_quality   # the quality engineer's stage

    defaults = load_defaults()
    return {"normalize": build_normalize(defaults["normalize"]),
            "langid": build_langid(defaults["langid"]),
            "quality": build_quality(defaults["quality"])}


def evaluate(items: list[Item], chain: dict[str, list]) -> list[dict]:
    """Run normalize → langid → quality on every item; one outcome dict per item."""
    outcomes = []
    for i, item in enumerate(items):
        doc = Document(id=f"eval-{i}", text=item.text, source=item.kind)
        outcome = {"group": item.group, "kind": item.kind, "stage": None, "reason": None}
        for stage, filters in chain.items():
            result = run_filters(filters, doc)
            if not result.kept:
                outcome.update(stage=stage, reason=result.reason)
                break
        outcome["langid_label"] = doc.signals.get("langid.label")
        outcome["text"] = item.text
        outcomes.append(outcome)
    return outcomes


def _rate(outs: list[dict], keep: bool, upto: str | None = None) -> float:
    """Share kept (keep=True) or dropped; ``upto="langid"`` counts only drops by normalize/langid."""
    if not outs:
        return float("nan")
    stages = {"normalize", "langid"} if upto == "langid" else None

    def dropped(o):
        return o["stage"] is not None and (stages is None or o["stage"] in stages)
    n = sum(1 for o in outs if dropped(o) != keep)
    return n / len(outs)


def summarise(outcomes: list[dict]) -> dict:
    groups: dict[tuple[str, str], list[dict]] = collections.defaultdict(list)
    for o in outcomes:
        groups[(o["group"], o["kind"])].append(o)

    def of(group):
        return [o for (g, _), outs in groups.items() if g == group for o in outs]

    metrics: dict = {"min_doc_nonspace": MIN_DOC_NONSPACE, "targets": TARGETS}
    korean = of("korean")
    metrics["korean_retention_langid"] = _rate(korean, True, "langid")
    metrics["clean_retention"] = _rate(korean, True)
    metrics["korean_by_source"] = {k: {"n": len(v), "langid_kept": _rate(v, True, "langid"),
                                       "chain_kept": _rate(v, True)}
                                   for (g, k), v in sorted(groups.items()) if g == "korean"}
    metrics["korean_short_by_source"] = {k: {"n": len(v), "langid_kept": _rate(v, True, "langid"),
                                             "chain_kept": _rate(v, True)}
                                         for (g, k), v in sorted(groups.items()) if g == "korean_short"}
    code = of("korean_code")
    metrics["korean_code"] = {"n": len(code), "langid_kept": _rate(code, True, "langid"),
                              "chain_kept": _rate(code, True)}
    metrics["non_korean_rejection"] = {k: {"n": len(v), "langid_rejected": _rate(v, False, "langid"),
                                           "chain_rejected": _rate(v, False)}
                                       for (g, k), v in sorted(groups.items()) if g == "non_korean"}
    metrics["non_korean_rejection_min"] = min(v["chain_rejected"] for v in metrics["non_korean_rejection"].values())
    metrics["non_korean_rejection_langid_min"] = min(
        v["langid_rejected"] for v in metrics["non_korean_rejection"].values())
    junk = {}
    for (g, k), v in sorted(groups.items()):
        if g != "junk":
            continue
        reasons = collections.Counter(f"{o['stage']}.{o['reason']}" for o in v if o["stage"])
        kept_examples = [o["text"][:160] for o in v if o["stage"] is None][:3]
        junk[k] = {"n": len(v), "rejected": _rate(v, False), "langid_rejected": _rate(v, False, "langid"),
                   "top_reasons": dict(reasons.most_common(3)), "kept_examples": kept_examples}
    metrics["junk_rejection"] = junk
    metrics["junk_rejection_min"] = min(v["rejected"] for v in junk.values())
    dropped_clean = collections.Counter(f"{o['stage']}.{o['reason']}" for o in korean if o["stage"])
    metrics["clean_drop_reasons"] = dict(dropped_clean.most_common(8))
    examples: dict[str, list[str]] = collections.defaultdict(list)
    for o in korean:
        key = f"{o['stage']}.{o['reason']}"
        if o["stage"] and len(examples[key]) < 3:
            examples[key].append(f"[{o['kind']}] {o['text'][:160]}")
    metrics["clean_drop_examples"] = dict(examples)
    metrics["passes"] = {
        "korean_retention": metrics["korean_retention_langid"] >= TARGETS["korean_retention"],
        "non_korean_rejection": metrics["non_korean_rejection_min"] >= TARGETS["non_korean_rejection"],
        "clean_retention": metrics["clean_retention"] >= TARGETS["clean_retention"],
        "junk_rejection": metrics["junk_rejection_min"] >= TARGETS["junk_rejection"],
    }
    return metrics


# --- langid threshold curve -----------------------------------------------------------------

CURVE_THRESHOLDS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


CURVE_RULE_RATIOS = [0.5, 0.7, 0.8, 0.95, 1.0]   # swept at the configured threshold


def langid_curve(pools: Pools) -> list[dict]:
    """Korean retention vs non-Korean rejection per threshold, on every record of the data.

    Scores are computed once per text (normalised, chunked as in the filter) and the threshold
    swept afterwards.  ``hangul_keep_ratio=None`` is fastText alone.
    """
    from filters.normalize import normalize_text

    section = load_defaults()["langid"]
    model = load_model(section["model_path"])
    scored: dict[str, list[tuple[str, float, float]]] = collections.defaultdict(list)

    def score(group: str, text: str) -> None:
        text = normalize_text(text)
        label, s, _ = predict_language(model, text, section["chunk_chars"], section["max_chunks"])
        scored[group].append((label, s, hangul_letter_ratio(text)))

    korean = ([t for t in pools.wiki] + pools.reviews + pools.law + pools.single + [t for _, t in pools.comments]
              + [r["text"] for r in pools.other if r["source"] == "lingua_testdata" and r["lang"] == "ko"])
    for t in korean:
        score("ko_doc" if nonspace_len(t) >= MIN_DOC_NONSPACE else "ko_short", t)
    for r in pools.other:
        if r["lang"] == "ko":
            if r["source"] == "python_docs":
                score("ko_code", r["text"])
            continue
        lang = {"zh_CN": "zh"}.get(r["lang"], r["lang"])
        score(lang if lang in ("ja", "zh", "en", "code") else f"other:{lang}", r["text"])
    # UTF-8 Korean mis-decoded as CP949 is ~70 % Hangul: the junk the Hangul rule could let in.
    rng = random.Random(7)
    for _ in range(2000):
        score("moji_cp949", junk_mojibake_cp949(rng, pools))
    rows = []
    grid = ([(None, th) for th in CURVE_THRESHOLDS]
            + [(section["hangul_keep_ratio"], th) for th in CURVE_THRESHOLDS]
            + [(ratio, section["threshold"]) for ratio in CURVE_RULE_RATIOS])
    for ratio, th in grid:
        def kept(lbl, s, h, th=th, ratio=ratio):
            return (lbl == "ko" and s >= th) or (ratio is not None and h >= ratio)
        row = {"threshold": th, "hangul_keep_ratio": ratio}
        other_kept = other_n = 0
        per_lang = {}
        for g, vals in scored.items():
            k = sum(1 for v in vals if kept(*v))
            if g.startswith("other:"):
                other_kept += k
                other_n += len(vals)
                per_lang[g[6:]] = 1.0 - k / len(vals)
                continue
            row[g] = k / len(vals) if g.startswith("ko_") else 1.0 - k / len(vals)
            row[f"n_{g}"] = len(vals)
        row["other"], row["n_other"] = 1.0 - other_kept / other_n, other_n
        row["other_min_lang"], row["other_min"] = min(per_lang.items(), key=lambda kv: kv[1])
        rows.append(row)
    return rows


def print_curve(rows: list[dict]) -> None:
    cols = ["ko_doc", "ko_short", "ko_code", "ja", "zh", "en", "other", "other_min", "code", "moji_cp949"]
    print("\nlangid curve: Korean columns = share kept, others = share rejected (fastText alone / + Hangul rule)")
    print(f"{'hangul_rule':>11} {'thr':>5} " + " ".join(f"{c:>8}" for c in cols))
    for r in rows:
        rule = "off" if r["hangul_keep_ratio"] is None else f">={r['hangul_keep_ratio']}"
        print(f"{rule:>11} {r['threshold']:>5.2f} " + " ".join(f"{r.get(c, float('nan')):>8.4f}" for c in cols)
              + f"  (worst other: {r['other_min_lang']})")
    r0 = rows[0]
    print("n: " + ", ".join(f"{c}={r0.get('n_' + c)}" for c in cols if c != "other_min"))


def print_tables(m: dict) -> None:
    print(f"\nKorean documents (>= {MIN_DOC_NONSPACE} non-space chars): langid retention "
          f"{m['korean_retention_langid']:.4f}, full-chain (clean) retention {m['clean_retention']:.4f}")
    print(f"{'source':<32}{'n':>6}{'langid kept':>13}{'chain kept':>12}")
    for k, v in m["korean_by_source"].items():
        print(f"{k:<32}{v['n']:>6}{v['langid_kept']:>13.4f}{v['chain_kept']:>12.4f}")
    print(f"clean drops by reason: {m['clean_drop_reasons']}")
    print(f"\nShort Korean (< {MIN_DOC_NONSPACE} non-space chars; not a target):")
    for k, v in m["korean_short_by_source"].items():
        print(f"{k:<32}{v['n']:>6}{v['langid_kept']:>13.4f}{v['chain_kept']:>12.4f}")
    c = m["korean_code"]
    print(f"{'python_docs ko (Korean+code)':<32}{c['n']:>6}{c['langid_kept']:>13.4f}{c['chain_kept']:>12.4f}")
    print(f"\nNon-Korean rejection (min over languages: langid {m['non_korean_rejection_langid_min']:.4f}, "
          f"chain {m['non_korean_rejection_min']:.4f})")
    worst = sorted(m["non_korean_rejection"].items(), key=lambda kv: kv[1]["langid_rejected"])
    print(f"{'language':<10}{'n':>6}{'langid rej':>12}{'chain rej':>11}")
    for k, v in worst:
        if k in ("ja", "zh", "en", "code") or v["langid_rejected"] < 1.0:
            print(f"{k:<10}{v['n']:>6}{v['langid_rejected']:>12.4f}{v['chain_rejected']:>11.4f}")
    n_other = sum(1 for k, v in worst if v["langid_rejected"] == 1.0 and k not in ("ja", "zh", "en", "code"))
    print(f"(other {n_other} languages: langid rejects all)")
    print(f"\nJunk rejection by the full chain (min {m['junk_rejection_min']:.4f})")
    print(f"{'kind':<18}{'n':>5}{'rejected':>10}{'by langid':>11}  top reasons")
    for k, v in m["junk_rejection"].items():
        print(f"{k:<18}{v['n']:>5}{v['rejected']:>10.4f}{v['langid_rejected']:>11.4f}  {v['top_reasons']}")
    print(f"\npasses: {m['passes']}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-kind", type=int, default=300, help="documents per source/junk kind")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--curve", action="store_true", help="also sweep the langid threshold (all records)")
    ap.add_argument("--json", help="write the metrics here")
    # main() with no argument (bench/eval_all.py, bench/run_all.py) runs the defaults instead of
    # reading the caller's command line.
    args = ap.parse_args([] if argv is None else argv)

    t0 = time.perf_counter()
    pools = Pools()
    items = build_labelled_set(pools, args.per_kind, args.seed)
    outcomes = evaluate(items, build_chain())
    metrics = summarise(outcomes)
    metrics["n_items"] = len(items)
    print_tables(metrics)
    if args.curve:
        metrics["langid_curve"] = langid_curve(pools)
        print_curve(metrics["langid_curve"])
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\n{len(items)} labelled texts, {metrics['seconds']} s")
    if args.json:
        Path(args.json).write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    return metrics


if __name__ == "__main__":
    main(sys.argv[1:])
