"""Korean quality heuristics (filters/quality): each filter keeps real Korean text and drops the
bad case it exists for, on both sides of its threshold.

Good text is real (tests/fixtures/quality_ko.jsonl.gz: kowiki, NSMC, kote/curse_detection;
python-docs English strings and kss source code read from the shared development data).
Bad cases are built from those real sentences.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from filters.base import Document, run_filters
from filters.quality import FILTER_ORDER, build_filters
from filters.quality.boilerplate import (BoilerplateRemover, EmoticonCollapser, collapse_emoticons,
                                         remove_boilerplate)
from filters.quality.filters import (CodeMarkupFilter, HangulShareFilter, JamoEmoticonFilter, LengthFilter,
                                     LineStructureFilter, MojibakeFilter, RepetitionFilter, SpamLexiconFilter,
                                     SymbolDigitFilter, ends_sentence, load_lexicon)
from filters.quality.stats import DocStats, doc_stats

FIXTURE = Path(__file__).parent / "fixtures" / "quality_ko.jsonl.gz"


def _load() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out.setdefault(r["kind"], []).append(r)
    return out


DATA = _load()
WIKI = [r["text"] for r in DATA["wiki"]]
REVIEWS = [r["text"] for r in DATA["reviews"]]
COMMENTS = [r["text"] for r in DATA["comment"]]
SHORT = [r["text"] for r in DATA["short"]]
# Real Korean sentences (kowiki), 30-150 characters, for building bad cases.
SENTENCES = [s.strip() + "." for t in WIKI for ln in t.split("\n") for s in ln.split(". ")
             if 30 <= len(s.strip()) <= 150 and not s.strip().endswith(".")]


def doc(text: str, i: str = "t") -> Document:
    return Document(id=i, text=text, source="test")


def verdict(f, text: str):
    d = doc(text)
    f.ensure_setup()
    return f.filter(d), d


# ----------------------------------------------------------------------------- shared stats
def test_doc_stats_computed_once_and_recomputed_after_rewrite():
    d = doc(WIKI[0])
    s1 = doc_stats(d)
    assert doc_stats(d) is s1
    assert s1.words == WIKI[0].split()
    assert s1.lines == [ln.strip() for ln in WIKI[0].split("\n") if ln.strip()]
    d.text = d.text + "\n" + SENTENCES[0]
    s2 = doc_stats(d)
    assert s2 is not s1 and s2.lines[-1] == SENTENCES[0]
    other = doc(WIKI[0])
    assert doc_stats(other) is not s2  # a different document never reuses the cache


def test_doc_stats_counts_hangul_letters_including_jamo():
    s = DocStats("한국어 ㅋㅋ abc 123 !!")
    assert (s.n_syllables, s.n_jamo, s.n_letters, s.n_digits) == (3, 2, 8, 3)
    assert s.hangul_letter_ratio == pytest.approx(5 / 8)
    assert s.n_symbols == 2


def test_dup_ngram_fraction_matches_definition():
    sent = SENTENCES[1]
    s = DocStats(sent + " " + sent)
    n_words = len(sent.split())
    assert n_words >= 5
    # the second copy is one long repeated run: scanning marks it in n-gram jumps
    assert s.dup_ngram_char_frac(5) > 0.3
    assert DocStats(sent).dup_ngram_char_frac(5) == 0.0
    assert DocStats(sent).top_ngram_char_frac(2) == 0.0  # a single occurrence is no repetition


# ----------------------------------------------------------------------------- boilerplate
FOOTER = ["홍길동 기자 hong@yna.co.kr", "저작권자 © 연합뉴스 무단전재 및 재배포 금지",
          "▶ 네이버에서 연합뉴스 구독하기 바로가기", "공유하기 | 페이스북 | 트위터 | 카카오톡",
          "구독과 좋아요 부탁드립니다", "<ⓒ 뉴스1코리아, 무단전재-재배포 금지>", "[관련기사]"]


def test_boilerplate_lines_removed_and_counted():
    article = WIKI[2]
    f = BoilerplateRemover()
    v, d = verdict(f, article + "\n" + "\n".join(FOOTER))
    assert v.keep
    assert d.text == article.strip()
    assert d.signals["quality.boilerplate_lines"] == len(FOOTER)
    assert f.drain_counts()["boilerplate_lines"] == len(FOOTER)


@pytest.mark.parametrize("line", FOOTER)
def test_each_footer_kind_is_boilerplate(line):
    assert remove_boilerplate(SENTENCES[3] + "\n" + line) == (SENTENCES[3], 1)


def test_prose_mentioning_reporters_or_copyright_is_kept():
    # Long lines are prose even when they contain a footer phrase; a sentence about a
    # reporter or subscribers is not a sign-off.
    long_line = " ".join(SENTENCES[4:7]) + " 무단전재 및 재배포 금지"
    assert len(long_line) > 120
    text = "\n".join([long_line, "김철수 기자는 이 사건을 처음 보도한 사람이다.", "이 채널의 구독자는 십만 명을 넘었다."])
    out, n = remove_boilerplate(text)
    assert n == 0 and out == text


def test_site_navigation_and_footer_lines_removed():
    chrome = ["홈 | 회사소개 | 이용약관 | 개인정보처리방침 | 고객센터",
              "대표전화 1588-0000 | 팩스 02-000-0000 | 사업자등록번호 정보확인",
              "이전글 · 다음글 · 목록 · 맨 위로", "댓글 0 | 좋아요 12 | 공유하기"]
    text = "\n".join(chrome[:2] + [WIKI[4]] + chrome[2:])
    out, n = remove_boilerplate(text)
    assert n == len(chrome) and out == WIKI[4].strip()
    # the same words inside a sentence are prose
    prose = "회사소개 페이지와 이용약관을 새로 고쳤다고 공지사항에 올렸다."
    assert remove_boilerplate(prose) == (prose, 0)


def test_boilerplate_only_document_dropped():
    v, d = verdict(BoilerplateRemover(), "\n".join(FOOTER))
    assert not v.keep and v.reason == "boilerplate_only"


# ----------------------------------------------------------------------------- emoticons
def test_emoticon_runs_collapse_configurably():
    review = next(r for r in REVIEWS if "ㅋㅋㅋ" in r)
    v, d = verdict(EmoticonCollapser(), review)
    assert v.keep and "ㅋㅋㅋ" not in d.text and "ㅋㅋ" in d.text
    assert d.signals["quality.emoticon_runs_collapsed"] >= 1
    assert collapse_emoticons("재밌닼ㅋㅋㅋㅋㅋ ㅠㅠㅠㅠ", max_run=3)[0] == "재밌닼ㅋㅋㅋ ㅠㅠㅠ"
    assert collapse_emoticons("정말... 좋다!!!!!!")[0] == "정말... 좋다!!!"  # "..." stays an ellipsis
    assert collapse_emoticons("ㅋㅋ 좋아요") == ("ㅋㅋ 좋아요", 0)


# ----------------------------------------------------------------------------- length
def _nonspace_prefix(text: str, n: int) -> str:
    """Shortest prefix of ``text`` with exactly ``n`` non-space characters."""
    count = 0
    for i, ch in enumerate(text):
        if not ch.isspace():
            count += 1
            if count == n:
                return text[: i + 1]
    raise ValueError("text too short")


def test_length_keeps_articles_drops_stubs_and_borderline():
    f = LengthFilter(min_chars=50, min_words=5)
    assert all(verdict(f, t)[0].keep for t in WIKI)
    assert all(verdict(f, t)[0].reason == "too_short_chars" for t in SHORT)
    at = _nonspace_prefix(WIKI[5], 50)
    assert verdict(f, at)[0].keep
    v, d = verdict(f, _nonspace_prefix(WIKI[5], 49))
    assert v.reason == "too_short_chars" and d.signals["quality.chars"] == 49
    nospace = "".join(WIKI[6].split())[:200]
    assert verdict(f, nospace)[0].reason == "too_few_words"
    assert verdict(LengthFilter(max_words=50), WIKI[0])[0].reason == "too_many_words"


# ----------------------------------------------------------------------------- hangul share
@pytest.fixture(scope="module")
def english_strings(shared_data) -> list[str]:
    out = []
    with gzip.open(shared_data / "other_lang.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r.get("lang") == "en" and len(r["text"]) > 60:
                out.append(r["text"])
                if len(out) == 40:
                    break
    return out


def test_hangul_share_threshold_both_sides(english_strings):
    f = HangulShareFilter(0.25)
    assert verdict(f, WIKI[7])[0].keep
    assert verdict(f, "\n".join(english_strings))[0].reason == "low_hangul_share"
    # Walk from a Korean sentence towards English: the last kept and first dropped straddle 0.25.
    korean = SENTENCES[8]
    words = " ".join(english_strings).split()
    prev = None
    for k in range(1, len(words)):
        v, d = verdict(f, korean + " " + " ".join(words[:k]))
        if not v.keep:
            assert prev is not None and prev >= 0.25 > d.signals["quality.hangul_letter_ratio"]
            break
        prev = d.signals["quality.hangul_letter_ratio"]
    else:
        pytest.fail("never crossed the threshold")


# ----------------------------------------------------------------------------- mojibake
def test_mojibake_from_wrong_charsets_dropped():
    f = MojibakeFilter()
    text = WIKI[9]
    assert verdict(f, text)[0].keep
    utf8_as_cp1252 = text.encode("utf-8").decode("cp1252", errors="replace")
    euckr_as_latin1 = text.encode("cp949", errors="ignore").decode("latin-1")
    sjis = text.encode("cp949", errors="ignore").decode("shift_jis", errors="replace")
    utf8_as_cp949 = text.encode("utf-8").decode("cp949", errors="replace")
    for bad in (utf8_as_cp1252, euckr_as_latin1, sjis, utf8_as_cp949):
        v, d = verdict(f, bad)
        assert v.reason == "mojibake", bad[:80]


def test_mojibake_tolerates_units_and_rare_replacement_chars():
    f = MojibakeFilter(max_frac=0.01)
    text = SENTENCES[10] + " 기온은 25°C, 거리는 3㎞였다. 세 사람은 ······ 말이 없었다."
    v, d = verdict(f, text)
    assert v.keep and d.signals["quality.mojibake_frac"] == 0.0
    article = WIKI[11]
    n = len(article.replace(" ", "").replace("\n", ""))
    few = article + "\ufffd" * (n // 200)        # 0.5 % of characters
    many = article + "\ufffd" * (n // 50)        # 2 %
    assert verdict(f, few)[0].keep
    assert verdict(f, many)[0].reason == "mojibake"


# ----------------------------------------------------------------------------- symbols / digits
def test_symbol_digit_and_hashtag_junk_dropped():
    f = SymbolDigitFilter()
    for t in WIKI + REVIEWS:
        assert verdict(f, t)[0].keep, t[:80]
    divider = "★☆★☆★☆★☆★☆★☆★☆★☆★☆★☆"
    decorated = "\n".join(x for s in SENTENCES[:6] for x in (divider, divider, s))
    assert verdict(f, decorated)[0].reason == "symbol_ratio"
    numbers = SENTENCES[12] + "\n" + "\n".join(f"{i:04d} {i * 37 % 10000:04d} {i * 91 % 10000:04d}"
                                               for i in range(40))
    assert verdict(f, numbers)[0].reason == "digit_ratio"
    tags = " ".join("#" + w for w in SENTENCES[13].split())
    assert verdict(f, SENTENCES[14] + "\n" + tags)[0].reason == "hash_ratio"
    # Korean informal "..." is punctuation, not a Gopher symbol
    dots = "잼있게 보긴봤는데..도깨비와는 좀 다른듯...도깨비는 사실 봐도 봐도 잼있... 개인적으로..도깨비에 한표..."
    assert verdict(f, dots)[0].keep


# ----------------------------------------------------------------------------- jamo / emoticons
def test_jamo_emoticon_threshold_both_sides():
    f = JamoEmoticonFilter(max_frac=0.4)
    for t in COMMENTS + REVIEWS:
        assert verdict(f, t)[0].keep, t[:80]
    base = COMMENTS[0]
    n = len(base) - base.count(" ")
    below = base + " " + "ㅠ" * int(n * 0.6)      # 0.6n / 1.6n = 0.375
    above = base + " " + "ㅠ" * int(n * 0.75)     # 0.75n / 1.75n = 0.43
    assert verdict(f, below)[0].keep
    assert verdict(f, above)[0].reason == "jamo_emoticon"
    assert verdict(f, "ㅋㅋ ㅎㅎ ^^ ㅠㅠ ㅇㅇ ㄷㄷ 😂😂")[0].reason == "jamo_emoticon"


# ----------------------------------------------------------------------------- code / markup
@pytest.fixture(scope="module")
def source_files(shared_data) -> list[str]:
    """Real source files (kss, tokenizers, tiktoken, llm.c …) of at least 1,000 characters."""
    out = []
    with gzip.open(shared_data / "other_lang.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if '"prog_lang"' in line:
                r = json.loads(line)
                if len(r["text"]) >= 1000:
                    out.append(r["text"])
    assert len(out) >= 100
    return out


def test_code_dropped_prose_kept(source_files):
    f = CodeMarkupFilter()
    dropped = [not verdict(f, t)[0].keep for t in source_files]
    assert sum(dropped) / len(dropped) >= 0.9
    korean_code = [t for t in source_files if DocStats(t).hangul_letter_ratio >= 0.25]
    assert korean_code, "kss has source files whose letters are mostly Hangul"
    assert all(verdict(f, t)[0].reason in ("code", "markup") for t in korean_code)
    for t in WIKI + REVIEWS + COMMENTS:
        assert verdict(f, t)[0].reason != "code", t[:80]
    assert not CodeMarkupFilter.is_code_line("진짜 어이없네;;")
    assert CodeMarkupFilter.is_code_line('print("안녕하세요");')
    assert CodeMarkupFilter.is_code_line("normalization_type=\"NFC\",")


def test_html_markup_dropped():
    f = CodeMarkupFilter()
    html = "\n".join(f'<div class="post"><p><span style="color:#333">{s}</span></p></div>' for s in SENTENCES[:8])
    v, d = verdict(f, html)
    assert not v.keep and v.reason in ("markup", "code")
    assert d.signals["quality.markup_char_frac"] > 0.05


# ----------------------------------------------------------------------------- line structure
def test_korean_sentence_endings_recognised():
    assert ends_sentence("정말 재미있었어요ㅋㅋ")
    assert ends_sentence("그래서 결국 포기했다")
    assert ends_sentence("이게 맞는 건가?")
    assert not ends_sentence("회사소개")
    assert not ends_sentence("고객센터 | 이용약관")


def test_line_structure_keeps_reviews_and_articles():
    f = LineStructureFilter()
    for t in WIKI + REVIEWS + COMMENTS:
        v, d = verdict(f, t)
        assert v.keep, (v.reason, t[:80])


def test_navigation_menu_dropped_by_line_punct():
    # A menu of real article titles: no line ends like a sentence.
    titles = [r["title"] for r in DATA["wiki"] if r["title"][-1] not in "다요죠까네군음함임됨셈듯걸"][:20]
    v, d = verdict(LineStructureFilter(max_newline_word_ratio=10.0), "\n".join(titles))
    assert v.reason == "line_punct_ratio" and d.signals["quality.sentence_end_line_frac"] < 0.062


def test_list_ratio_threshold_both_sides():
    f = LineStructureFilter(max_newline_word_ratio=0.44)
    words = " ".join(SENTENCES[:10]).split()
    one_per_line = "\n".join(words)                       # ratio ~1.0
    assert verdict(f, one_per_line)[0].reason == "list_ratio"
    two_per_line = "\n".join(" ".join(words[i:i + 3]) for i in range(0, len(words), 3))  # ~0.33
    assert verdict(LineStructureFilter(min_sentence_end_line_frac=0.0), two_per_line)[0].keep


def test_ellipsis_and_bullet_pages_dropped():
    teaser = "\n".join(s[: len(s) // 2] + "…" for s in SENTENCES[:10])
    assert verdict(LineStructureFilter(), teaser)[0].reason == "ellipsis_lines"
    bullets = "\n".join("• " + s for s in SENTENCES[:10])
    assert verdict(LineStructureFilter(), bullets)[0].reason == "bullet_lines"
    half = "\n".join(("• " + s) if i % 2 else s for i, s in enumerate(SENTENCES[:10]))
    assert verdict(LineStructureFilter(), half)[0].keep


def test_short_texts_not_judged_by_line_fractions():
    one_line = "• " + SENTENCES[15][:-1] + "…"
    assert verdict(LineStructureFilter(), one_line)[0].keep


# ----------------------------------------------------------------------------- spam
def _spam_ad(sentences: list[str]) -> str:
    ads = ["안전놀이터 추천 토토사이트 먹튀검증 완료 가입코드 7777", "온라인카지노 바카라 첫충 20% 매충 10%",
           "무직자대출 당일대출 카톡문의 24시간상담", "출장마사지 출장안마 전지역 30분 도착"]
    return "\n".join(x for i, s in enumerate(sentences) for x in (s, ads[i % len(ads)]))


def test_spam_lexicon_drops_ads_keeps_single_mentions():
    f = SpamLexiconFilter()
    v, d = verdict(f, _spam_ad(SENTENCES[:6]))
    assert v.reason == "spam_lexicon" and d.signals["quality.spam_distinct_terms"] >= 2
    news = "\n".join(SENTENCES[16:24]) + "\n매카트니는 기타의 홀로 바디가 보다 많은 피드백을 줄 것이라는 생각 하에 카지노를 1964년 구매하였다."
    v, d = verdict(f, news)
    assert v.keep and d.signals["quality.spam_hits"] == 1
    totoro = "\n".join(["웰 메이드란 이런것이다.둘리는 분명 미키마우스나 토토로 못지 않은 캐릭터.",
                        "'토토로'와 '원령공주'를 혼합한 , 아름다운 억지동화", "토토로 짜가리...-ㅅ- 같은뎅"])
    assert verdict(f, totoro)[1].signals["quality.spam_hits"] == 0
    for t in WIKI + REVIEWS + COMMENTS:
        assert verdict(f, t)[0].keep, t[:80]


def test_spam_density_threshold_both_sides():
    f = SpamLexiconFilter(min_hits=3, max_hits_per_word=0.05, min_distinct_terms=2)
    ad = "카지노 바카라 먹튀검증"   # 3 hits
    filler = " ".join(SENTENCES[20:40]).split()
    # 3 hits in 3 + k words: density > 0.05 while k < 57
    assert verdict(f, ad + " " + " ".join(filler[:50]))[0].reason == "spam_lexicon"
    assert verdict(f, ad + " " + " ".join(filler[:60]))[0].keep
    assert verdict(f, "홀덤 홀덤 홀덤 " + " ".join(filler[:10]))[0].keep  # one term: an article on poker


def test_lexicon_file_parses():
    lex = load_lexicon()
    cats = {c for c, _ in lex}
    assert {"gambling", "adult", "loan"} <= cats
    assert len(lex) >= 40


# ----------------------------------------------------------------------------- repetition
def test_repetition_keeps_real_text():
    f = RepetitionFilter()
    for t in WIKI + REVIEWS + COMMENTS:
        v, d = verdict(f, t)
        assert v.keep, (v.reason, t[:80])


def test_duplicate_line_threshold_both_sides():
    f = RepetitionFilter(dup_line_frac=0.374, dup_line_char_frac=1.0,
                         top_ngram_char_frac={"2": 1.0}, dup_ngram_char_frac={"5": 1.0})
    unique = SENTENCES[:10]
    # k duplicates of the first line among 10 + k lines: k=5 -> 0.333 kept, k=7 -> 0.41 dropped
    keep_doc = "\n".join(unique + [unique[0]] * 5)
    drop_doc = "\n".join(unique + [unique[0]] * 7)
    assert verdict(f, keep_doc)[0].keep
    v, d = verdict(f, drop_doc)
    assert v.reason == "dup_line_frac" and d.signals["quality.dup_line_frac"] == pytest.approx(7 / 17, abs=1e-3)


def test_repeated_phrases_dropped_by_ngram_rules():
    f = RepetitionFilter()
    phrase = " ".join(SENTENCES[30].split()[:2])
    spammy = SENTENCES[31] + " " + " ".join([phrase] * 30)
    v, d = verdict(f, spammy)
    assert v.reason == "top_2gram", d.signals
    para = SENTENCES[32] + " " + SENTENCES[33]
    copied = " ".join([para, SENTENCES[34], para, SENTENCES[35]])  # one line, one paragraph twice
    v, d = verdict(RepetitionFilter(top_ngram_char_frac={"2": 1.0, "3": 1.0, "4": 1.0}), copied)
    assert v.reason.startswith("dup_") and v.reason.endswith("gram"), d.signals


# ----------------------------------------------------------------------------- the chain
def test_build_filters_order_and_config():
    fs = build_filters({"enabled": True})
    assert [f.name for f in fs] == list(FILTER_ORDER)
    assert [f.name for f in fs][:2] == ["boilerplate", "emoticon_collapse"]
    assert fs[-1].name == "repetition"
    assert all(f.stage == "quality" for f in fs)
    fs = build_filters({"spam_lexicon": {"enabled": False}, "length": {"min_chars": 10}})
    assert "spam_lexicon" not in [f.name for f in fs]
    assert next(f for f in fs if f.name == "length").min_chars == 10
    assert build_filters({"enabled": False}) == []


def test_default_config_section_builds_every_filter():
    from pipeline.config import load_config
    cfg = load_config()
    fs = build_filters(cfg["quality"])
    assert [f.name for f in fs] == list(FILTER_ORDER)
    rep = fs[-1]
    assert dict(rep.top)[2] == pytest.approx(0.282) and dict(rep.dup)[10] == pytest.approx(0.127)


def test_signals_written_for_dropped_documents_too():
    fs = build_filters({})
    d = doc("\n".join([SENTENCES[40]] * 12))
    res = run_filters(fs, d)
    assert not res.kept and res.filter_name == "repetition"
    for key in ("quality.chars", "quality.hangul_letter_ratio", "quality.symbol_ratio",
                "quality.sentence_end_line_frac", "quality.lines", "quality.spam_density",
                "quality.dup_line_frac"):
        assert key in d.signals
    json.dumps(d.signals)  # JSON-serialisable scalars


def test_whole_chain_on_real_documents():
    fs = build_filters({})
    kept = {}
    for kind, recs in DATA.items():
        results = [run_filters(fs, doc(r["text"], r["id"])).kept for r in recs]
        kept[kind] = sum(results) / len(results)
    assert kept["wiki"] >= 0.95 and kept["reviews"] >= 0.95 and kept["comment"] >= 0.9, kept
    assert kept["short"] == 0.0, kept


def test_filters_survive_pickling_for_beam_workers():
    import pickle
    fs = pickle.loads(pickle.dumps(build_filters({})))
    d = doc(WIKI[1])
    assert run_filters(fs, d).kept and "quality.dup_line_frac" in d.signals


def test_whole_chain_strips_footer_then_keeps_article():
    fs = build_filters({})
    d = doc(WIKI[3] + "\n" + "\n".join(FOOTER))
    res = run_filters(fs, d)
    assert res.kept and d.text == WIKI[3].strip()
    counts = sum((f.drain_counts() for f in fs), start=__import__("collections").Counter())
    assert counts["boilerplate_lines"] == len(FOOTER)


# ----------------------------------------------------------------------------- follow-ups (issue 3)
def _shared_records(shared_data, name: str, ids: set[str] | None = None) -> dict[str, dict]:
    out = {}
    with gzip.open(shared_data / name, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if ids is None or r["id"] in ids:
                out[r["id"]] = r
    return out


def test_bills_with_form_header_and_blank_line_layout_kept(shared_data):
    """National Assembly bills: a column-layout form header ("의 안 / 번 호 / 9899"), hard-wrapped
    prose with a blank line after every line, and a comparison table of "-----" rules."""
    bills = list(_shared_records(shared_data, "ko_law.jsonl.gz").values())
    assert len(bills) == 10
    fs = build_filters({})
    for r in bills:
        d = doc(r["text"], r["id"])
        res = run_filters(fs, d)
        assert res.kept, (res.reason, r["text"][:60], d.signals.get("quality.newline_word_ratio"))
        # blank lines do not count as line breaks: hard-wrapped prose is ~4 eojeol per break
        assert d.signals["quality.newline_word_ratio"] < 0.3
    # a list is still a list however it is spaced
    words = " ".join(SENTENCES[:10]).split()
    for sep in ("\n", "\n\n"):
        assert verdict(LineStructureFilter(), sep.join(words))[0].reason == "list_ratio"


def test_repeated_rules_are_layout_repeated_text_lines_are_not():
    f = RepetitionFilter()
    rule = "-" * 28
    table = "\n".join(x for s in SENTENCES[:12] for x in (s, rule))   # a rule after every sentence
    v, d = verdict(f, table)
    assert v.keep and d.signals["quality.dup_line_char_frac"] == 0.0
    pasted = "\n".join(SENTENCES[:12] + SENTENCES[:3])                  # real lines pasted again
    assert verdict(f, pasted)[0].reason in ("dup_line_char_frac", "dup_line_frac")


def test_symbol_runs_count_once(shared_data):
    recs = _shared_records(shared_data, "ko_comments.jsonl.gz",
                           {"kocohub-unlabeled5-20376", "kocohub-unlabeled5-29126"})
    ellipses = recs["kocohub-unlabeled5-20376"]["text"]    # "…하아..........미우새보고 음...어..."
    hearts = recs["kocohub-unlabeled5-29126"]["text"]      # "영웅이는 뭘하든 좋다❤️❤️❤️…" (41 hearts)
    f = SymbolDigitFilter()
    v, d = verdict(f, ellipses)
    assert v.keep and d.signals["quality.symbol_ratio"] < 0.3
    assert verdict(f, ellipses.replace("...", "…"))[0].keep
    # a longer real comment followed by a held-down emoji or "!" key survives the whole chain
    fs = build_filters({})
    for tail, kept_tail in (("😂" * 30, "😂😂"), ("❤️" * 30, "❤️❤️"), ("!" * 40, "!!!")):
        d = doc(COMMENTS[0] + tail)
        res = run_filters(fs, d)
        assert res.kept, (res.reason, tail[:2])
        assert d.text == COMMENTS[0] + kept_tail
    # different symbols in a row keep their full weight: dividers and tables still go
    divider = "★☆■□▶◀●○◆※→▲▼★☆■□▶◀●○"
    decorated = "\n".join(x for s in SENTENCES[:6] for x in (divider, divider, s))
    assert verdict(f, decorated)[0].reason == "symbol_ratio"
    # 41 hearts after ten characters: collapsed to two, the rest is too short to be a document
    v, d = verdict(EmoticonCollapser(), hearts)
    assert d.text == "영웅이는 뭘하든 좋다❤️❤️" and d.signals["quality.emoticon_runs_collapsed"] == 1
    assert run_filters(build_filters({}), doc(hearts)).reason == "too_short_chars"


def test_trailing_wiki_category_links_removed_not_dropped():
    titles = [r["title"] for r in DATA["wiki"]][:8]
    article = min(WIKI, key=len)   # a short article, like the kowiki stubs that carry 8 categories
    links = ["[[분류:" + t + "]]" for t in titles] + ["[[en:" + titles[0] + "]] [[ja:" + titles[1] + "]]"]
    fs = build_filters({})
    d = doc(article + "\n" + "\n".join(links) + "\n")
    res = run_filters(fs, d)
    assert res.kept and d.text == article.strip()
    assert d.signals["quality.wiki_link_lines"] == len(links)
    assert d.signals["quality.markup_char_frac"] == 0.0
    counts = sum((f.drain_counts() for f in fs), start=__import__("collections").Counter())
    assert counts["wiki_link_lines"] == len(links)
    # only the trailing block: links inside the text stay for the markup filter to judge
    inline = "\n".join(links[:4]) + "\n" + article
    v, d = verdict(BoilerplateRemover(), inline)
    assert v.keep and d.text == inline and d.signals["quality.wiki_link_lines"] == 0
    d = doc(inline)
    run_filters(build_filters({}), d)
    assert d.signals["quality.markup_char_frac"] > 0
    # switched off: the article is dropped for its markup, as before
    off = build_filters({"boilerplate": {"strip_trailing_wiki_links": False}})
    assert run_filters(off, doc(article + "\n" + "\n".join(links))).reason == "markup"
    # a page that is nothing but links is left empty
    assert verdict(BoilerplateRemover(), "\n".join(links))[0].reason == "boilerplate_only"


def test_length_is_measured_after_laughter_is_collapsed():
    """Decision (docs/quality.md): a comment whose length is mostly laughter is not a document."""
    short = next(t for t in SHORT if 15 <= len(t.replace(" ", "")) < 40)
    padded = short + " " + "ㅋ" * 60
    assert len(padded.replace(" ", "")) >= 60
    res = run_filters(build_filters({}), doc(padded))
    assert res.reason == "too_short_chars"


def test_python_docstrings_and_import_lists_are_code(source_files, shared_data):
    f = CodeMarkupFilter()
    src = _shared_records(shared_data, "other_lang.jsonl.gz",
                          {"code-kss_code-kss/_modules/keywords/extract_keywords.py"})
    lines = next(iter(src.values()))["text"].split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("min_word_count: int"))
    window = "\n".join(lines[start:start + 40])      # signature tail + Google-style docstring
    v, d = verdict(f, window)
    assert v.reason == "code", d.signals
    for line in ('"""', "Args:", "Returns:", "text (Union[str, List[str]): single text or list of texts",
                 "List[str]: list of keywords", ") -> Union[List[str], List[Tuple[str, float]]]:",
                 ">>> from kss import Kss", "or self._ef()"):
        assert CodeMarkupFilter.is_code_line(line), line
    # a parenthesised import list is code up to its closing parenthesis, last name included
    imports = ["from kss._modules.g2p.rules import (", "jyeo,", "palatalize,", "modifying_rieul", ")"]
    assert CodeMarkupFilter.count_code_lines(imports) == 5
    assert CodeMarkupFilter.count_code_lines(imports + SENTENCES[:5]) == 5
    # English or Korean prose in the same shape is not code
    assert not CodeMarkupFilter.is_code_line("Seoul (city): the capital and largest city of Korea")
    assert not CodeMarkupFilter.is_code_line("주의사항 (중요): 반드시 읽어 주세요")


def test_quality_stats_use_text_stats_character_classes(shared_data):
    from filters.text_stats import text_stats
    texts = WIKI[:20] + REVIEWS[:20] + COMMENTS[:20] + ["① 첫째 ② 둘째 ²³ ㅋㅋㅋ ㅠㅠ \u3164 한글", "ᄒᆞᆫ글 옛한글 ꥠ ힰ"]
    for t in texts:
        s, ts = DocStats(t), text_stats(t)
        assert (s.n_hangul, s.n_syllables, s.n_jamo, s.n_letters, s.n_digits) == \
               (ts.hangul, ts.hangul_syllables, ts.jamo, ts.letters, ts.digits), t[:40]
        assert s.n_nonspace == ts.chars - ts.whitespace
