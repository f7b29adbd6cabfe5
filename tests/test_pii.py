"""Korean PII masking (filters/pii): fixture precision/recall, validators, context matching, filter.

The fixture (tests/fixtures/pii/pii_cases.jsonl, built by make_fixture.py in the same folder) holds
real Korean sentences (Chatbot_data MIT, NSMC CC0) around synthetic PII values and around numbers
that must stay (dates, prices, case numbers, ISBNs, versions, order codes, impossible RRNs).
"""
from __future__ import annotations

import gzip
import json
import socket
from collections import Counter
from itertools import islice
from pathlib import Path

import pytest

from filters.base import Document, run_filters
from filters.pii import (REPLACEMENT_TOKENS, AnalyzerSettings, PiiSpan, build_filters, find_pii,
                         get_analyzer, mask_text, prescreen, resolve_overlaps)
from filters.pii.context import KoreanContextMatcher
from filters.pii.validators import (card_number_ok, looks_like_year_range, luhn_ok,
                                    rrn_birth_date, rrn_check_digit_ok, rrn_format_ok)

FIXTURE = Path(__file__).parent / "fixtures" / "pii" / "pii_cases.jsonl"
TYPES = ("tel", "rrn", "email", "acc", "crd")
MIN_RECALL = {"tel": 0.99, "rrn": 0.99, "email": 0.99, "acc": 0.95, "crd": 0.95}


@pytest.fixture(scope="module")
def cases():
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def predictions(cases):
    return {c["id"]: find_pii(c["text"]) for c in cases}


# ------------------------------------------------------------------ fixture evaluation


def test_fixture_is_well_formed(cases):
    assert len(cases) >= 300
    kinds = Counter(c["kind"] for c in cases)
    assert kinds["negative"] >= 100
    per_type = Counter(c["type"] for c in cases if c["kind"] == "positive")
    assert all(per_type[t] >= 30 for t in TYPES), per_type
    for c in cases:
        assert c["source"] in {"chatbot_data", "nsmc"} and c["license"] in {"MIT", "CC0-1.0"}
        for s in c["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(c["text"])
        assert (c["kind"] == "positive") == bool(c["spans"])


def _scores(cases, predictions):
    tp, fn, fp = Counter(), Counter(), Counter()
    for c in cases:
        gold = {(s["start"], s["end"], s["type"]) for s in c["spans"]}
        got = {(s.start, s.end, s.name) for s in predictions[c["id"]]}
        for g in gold:
            (tp if g in got else fn)[g[2]] += 1
        for g in got - gold:
            fp[g[2]] += 1
    return tp, fn, fp


def test_fixture_recall_and_precision_per_type(cases, predictions):
    tp, fn, fp = _scores(cases, predictions)
    report = {}
    for t in TYPES:
        recall = tp[t] / (tp[t] + fn[t])
        precision = tp[t] / (tp[t] + fp[t]) if tp[t] + fp[t] else 1.0
        report[t] = (round(precision, 3), round(recall, 3))
    print("precision, recall per type:", report)
    for t in TYPES:
        assert report[t][1] >= MIN_RECALL[t], (t, report[t])
        assert report[t][0] >= 0.98, (t, report[t])


def test_no_negative_is_masked(cases, predictions):
    masked = [(c["type"], c["text"], [c["text"][s.start:s.end] for s in predictions[c["id"]]])
              for c in cases if c["kind"] == "negative" and predictions[c["id"]]]
    assert masked == []


def test_every_format_in_the_fixture_is_found(cases, predictions):
    """Per-format recall: a format that silently stops matching shows up here by name."""
    found, total = Counter(), Counter()
    for c in cases:
        if c["kind"] != "positive":
            continue
        total[c["format"]] += 1
        got = {(s.start, s.end, s.name) for s in predictions[c["id"]]}
        found[c["format"]] += all((s["start"], s["end"], s["type"]) in got for s in c["spans"])
    missing = {f: (found[f], n) for f, n in total.items() if found[f] == 0}
    assert missing == {}


def test_prescreen_passes_every_positive_and_skips_digitless_text(cases):
    assert all(prescreen(c["text"]) for c in cases if c["kind"] == "positive")
    assert not prescreen("연락처는 나중에 알려 드릴게요. 오늘은 12시에 만나요.")
    assert not prescreen("1990년에 태어나 2010년에 졸업했다")  # digits, but no 7-digit run


def test_without_prescreen_the_result_is_the_same(cases):
    for c in cases[::7]:
        assert find_pii(c["text"], use_prescreen=False) == find_pii(c["text"])


# ------------------------------------------------------------------ validators


def test_rrn_birth_date_validation():
    assert rrn_birth_date("900101", "1").isoformat() == "1990-01-01"
    assert rrn_birth_date("050315", "4").isoformat() == "2005-03-15"
    assert rrn_birth_date("901301", "1") is None          # month 13
    assert rrn_birth_date("900230", "2") is None          # 30 February
    assert rrn_birth_date("000229", "3") is not None      # 2000 is a leap year
    assert rrn_birth_date("010229", "3") is None          # 2001 is not
    assert rrn_birth_date("880229", "1") is not None      # 1988 leap year
    assert rrn_birth_date("990101", "3") is None          # 2099: in the future
    assert rrn_birth_date("900101", "9") is None          # 1800s digit not accepted
    assert rrn_birth_date("900101", "0") is None
    assert rrn_format_ok("9001015234561") and not rrn_format_ok("900101523456")


def test_rrn_check_digit():
    # 9*2+0*3+0*4+1*5+0*6+1*7+1*8+2*9+3*2+4*3+5*4+6*5 = 124; 124 % 11 = 3; (11-3) % 10 = 8
    assert rrn_check_digit_ok("9001011234568")
    assert not rrn_check_digit_ok("9001011234567")
    # foreigner (gender digit 5-8): sum 156, 156 % 11 = 2, (13-2) % 10 = 1
    assert rrn_check_digit_ok("9001015234561")
    assert not rrn_check_digit_ok("9001015234569")    # the citizen formula's digit
    assert not rrn_check_digit_ok("900101123456")      # 12 digits


def test_luhn_and_card_checks():
    assert luhn_ok("79927398713")                      # the textbook example
    assert not luhn_ok("79927398710")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert card_number_ok("4111111111111111")
    assert card_number_ok("378282246310005")           # Amex test number
    assert not card_number_ok("0000000000000000")      # Luhn-valid but no issuer starts with 0
    assert not card_number_ok("1234567812345670")      # Luhn-valid, prefix 1
    assert not card_number_ok("4111111111111112")


def test_year_range_shape():
    assert looks_like_year_range("1592", "1598")
    assert looks_like_year_range("1519", "1589")
    assert not looks_like_year_range("1588", "1234")   # second group "earlier": a phone
    assert not looks_like_year_range("1899", "5764")


# ------------------------------------------------------------------ context matching


def test_context_words_match_with_korean_particles_and_compounds():
    m = KoreanContextMatcher(["*연락", "문의", "*주민번호", "*메일", "tel"])
    for text in ("연락처는 010", "주민번호를 900101", "메일로 보내", "이메일: a@b.kr",
                 "문의드립니다 02", "전화연락 주세요 02", "Tel.02", "TEL:02"):
        assert m.find(text, len(text), len(text)) is not None, text


def test_context_word_prefix_rule_blocks_unrelated_words():
    m = KoreanContextMatcher(["문의", "tel"])
    assert m.find("메디치 가문의 1519-1589", 8, 17) is None     # 가문의 ≠ 문의
    assert m.find("hotel 02-123-4567", 6, 17) is None
    assert m.find("전문의 상담 02-123-4567", 7, 19) is None


def test_context_window_is_limited_to_characters_around_the_span():
    m = KoreanContextMatcher(["*전화"], chars_before=10, chars_after=5)
    text = "전화" + "가" * 20 + " 02-123-4567 " + "나" * 10 + "전화"
    start = text.index("02")
    assert m.find(text, start, start + 11) is None
    assert m.find("전화 02-123-4567", 3, 14) == "전화"
    assert m.find("02-123-4567 전화", 0, 11) == "전화"


def test_near_words_count_only_next_to_the_value():
    m = KoreanContextMatcher(["*계좌"], near_words=["우리"], near_chars=6)
    assert m.find("우리 1002-123-456789", 3, 18) == "우리"
    far = "우리는 오늘 만났다 그리고 1002-123-456789"
    assert m.find(far, far.index("1002"), len(far)) is None


# ------------------------------------------------------------------ context-gated formats


def _names(text):
    return [(s.name, text[s.start:s.end]) for s in find_pii(text)]


def test_rrn_without_valid_check_digit_needs_context():
    assert _names("번호 900101-1234567 입니다") == []                        # check digit wrong
    assert _names("주민번호는 900101-1234567 입니다") == [("rrn", "900101-1234567")]
    assert _names("홍길동(900101-1234568)") == [("rrn", "900101-1234568")]   # valid check digit
    assert _names("주민번호 901301-1234568") == []                           # impossible date


def test_account_needs_banking_context():
    assert _names("운송장 1002-123-456789 조회") == []
    assert _names("우리 1002-123-456789 로 입금") == [("acc", "1002-123-456789")]
    assert _names("입금계좌: 3333011234567") == [("acc", "3333011234567")]


def test_card_separated_vs_bare():
    assert _names("번호가 4111-1111-1111-1111 이에요") == [("crd", "4111-1111-1111-1111")]
    assert _names("번호가 4111111111111111 이에요") == []
    assert _names("카드번호 4111111111111111") == [("crd", "4111111111111111")]
    assert _names("카드번호 4111-1111-1111-1112") == []                      # fails Luhn


def test_phone_formats_and_year_spans():
    assert _names("문의 010-0123-4567로") == [("tel", "010-0123-4567")]
    assert _names("+82 10 0123 4567") == [("tel", "+82 10 0123 4567")]
    assert _names("대표번호 1588-0123") == [("tel", "1588-0123")]
    assert _names("카트린 드 메디시스(1519-1589) 상담") == []
    assert _names("임진왜란(1592-1598년) 문의") == []
    assert _names("2019-05-31, 2019.05.31 10:30:00 1,234,000원 2019가합123456") == []


def test_email_suffix_check_and_korean_particles():
    assert _names("메일은 gildong@naver.com으로") == [("email", "gildong@naver.com")]
    assert _names("연락 a.b@snu.ac.kr, c@예시.한국") == [("email", "a.b@snu.ac.kr"), ("email", "c@예시.한국")]
    assert _names("image@2x.png 와 user@host.invalidtld") == []


def test_email_suffix_list_is_read_offline(monkeypatch):
    """A fresh recognizer resolves suffixes with every socket call failing: no download."""
    from filters.pii.recognizers import EmailRecognizer

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    rec = EmailRecognizer()
    results = rec.analyze("보내실 곳 hong@korea.kr 또는 x@y.co.kr", [rec.ENTITY])
    assert len(results) == 2


# ------------------------------------------------------------------ the filter


def test_replacement_tokens_are_the_fixed_ones():
    assert REPLACEMENT_TOKENS == {"tel": "<|tel|>", "rrn": "<|rrn|>", "email": "<|email|>",
                                  "acc": "<|acc|>", "crd": "<|crd|>"}


def _defaults():
    from pipeline.config import load_defaults
    return load_defaults()["pii"]


def test_filter_masks_text_and_writes_signals_and_counts():
    (f,) = build_filters(_defaults())
    doc = Document("d1", "문의는 010-0123-4567로, 메일은 a@b.co.kr 입니다. 또 02-0123-4567.", "test")
    result = run_filters([f], doc)
    assert result.kept
    assert doc.text == "문의는 <|tel|>로, 메일은 <|email|> 입니다. 또 <|tel|>."
    assert doc.signals["pii.spans"] == 3
    assert doc.signals["pii.spans.tel"] == 2 and doc.signals["pii.spans.email"] == 1
    assert doc.signals["pii.spans.rrn"] == 0
    assert f.drain_counts() == Counter({"masked.tel": 2, "masked.email": 1})


def test_filter_leaves_clean_text_alone():
    (f,) = build_filters(_defaults())
    text = "1990년 5월 31일, 가격은 1,234,000원이었다."
    doc = Document("d2", text, "test")
    assert run_filters([f], doc).kept and doc.text == text and doc.signals["pii.spans"] == 0
    assert not f.drain_counts()


def test_max_spans_drops_and_custom_tokens():
    section = dict(_defaults(), max_spans=2, tokens={"tel": "[TEL]"})
    (f,) = build_filters(section)
    doc = Document("d3", "010-0123-4567, 010-0234-5678, 010-0345-6789로 연락", "test")
    result = run_filters([f], doc)
    assert not result.kept and result.reason == "too_many_pii"
    assert doc.text.count("[TEL]") == 3
    (f,) = build_filters(dict(section, max_spans=3))
    assert run_filters([f], Document("d4", "010-0123-4567, 010-0234-5678, 010-0345-6789", "t")).kept


def test_disabled_and_entity_subset():
    assert build_filters(dict(_defaults(), enabled=False)) == []
    (f,) = build_filters(dict(_defaults(), entities=["email"]))
    doc = Document("d5", "010-0123-4567 a@b.co.kr", "t")
    run_filters([f], doc)
    assert doc.text == "010-0123-4567 <|email|>" and "pii.spans.tel" not in doc.signals


def test_analyzer_is_built_once_per_process_and_filter_pickles():
    import pickle

    (f1,) = build_filters(_defaults())
    (f2,) = build_filters(_defaults())
    f1.ensure_setup()
    f2.ensure_setup()
    assert get_analyzer(f1.settings) is get_analyzer(f2.settings)
    clone = pickle.loads(pickle.dumps(f1))
    doc = Document("d6", "TEL 02-0123-4567", "t")
    run_filters([clone], doc)
    assert doc.text == "TEL <|tel|>"


def test_presidio_engine_has_only_our_recognizers_and_no_nlp_model():
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    engine = get_analyzer(AnalyzerSettings())
    assert isinstance(engine.nlp_engine, NoOpNlpEngine)
    assert sorted(engine.get_supported_entities("ko")) == sorted(
        ["KR_PHONE_NUMBER", "KR_RRN", "EMAIL_ADDRESS", "KR_BANK_ACCOUNT", "CREDIT_CARD"])


def test_overlaps_keep_the_stronger_span():
    spans = [PiiSpan(0, 13, "acc", 0.55, "account_hyphen"), PiiSpan(0, 13, "tel", 0.85, "mobile"),
             PiiSpan(20, 30, "email", 0.9, "email")]
    assert [s.name for s in resolve_overlaps(spans)] == ["tel", "email"]
    assert mask_text("0123456789012 and x@y.co.kr", [spans[1]]) == "<|tel|> and x@y.co.kr"


def test_overlap_resolution_matches_the_pairwise_definition():
    """The bisect implementation keeps exactly what "best first, skip anything overlapping" keeps."""
    import random

    rng = random.Random(3)
    for _ in range(20):
        spans = []
        for _ in range(200):
            start = rng.randint(0, 500)
            spans.append(PiiSpan(start, start + rng.randint(1, 25), rng.choice(TYPES),
                                 rng.choice([0.5, 0.55, 0.8, 0.9, 1.0]), "x"))
        expected = []
        for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
            if all(span.end <= c.start or span.start >= c.end for c in expected):
                expected.append(span)
        assert resolve_overlaps(spans) == sorted(expected, key=lambda s: s.start)


# ------------------------------------------------------------------ real text


def test_real_wikipedia_text_gets_no_rrn_account_or_card_masks(shared_data):
    """Korean Wikipedia holds many numbers (years, statistics, codes) and no RRNs, accounts or
    cards; phones and emails there are real public contact numbers and are masked."""
    counts = Counter()
    with gzip.open(shared_data / "ko_wiki.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in islice(f, 4000):
            for s in find_pii(json.loads(line)["text"]):
                counts[s.name] += 1
    assert counts["rrn"] == counts["acc"] == counts["crd"] == 0, counts


def test_beam_stage_masks_and_counts():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.stages import FilterStage

    docs = [Document("a", "예약 문의 02-0123-4567", "src"), Document("b", "오늘 날씨 좋다", "src")]
    with TestPipeline(runner="FnApiRunner") as p:
        out = (p | beam.Create(docs) | FilterStage("pii", build_filters(_defaults())))
        assert_that(out["kept"] | beam.Map(lambda d: d.text),
                    equal_to(["예약 문의 <|tel|>", "오늘 날씨 좋다"]))
    result = p.result
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query()["counters"]}
    assert counters.get("pii.count.masked.tel") == 1


def test_presidio_is_imported_by_the_analyzer_not_by_building_the_stage():
    """The process that only builds the Beam graph must not pay presidio's import (~1.3 CPU-s)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from filters.pii import ENTITY_NAMES, build_filters\n"
        "filters = build_filters({})\n"
        "assert 'presidio_analyzer' not in sys.modules, 'imported while building the stage'\n"
        "try:\n"
        "    build_filters({'entities': ['tel', 'passport']})\n"
        "    raise SystemExit('unknown entity accepted')\n"
        "except ValueError as e:\n"
        "    assert 'passport' in str(e), e\n"
        "filters[0].ensure_setup()\n"
        "assert 'presidio_analyzer' in sys.modules and 'torch' not in sys.modules\n"
        "from filters.pii.recognizers import RECOGNIZERS\n"
        "assert tuple(RECOGNIZERS) == ENTITY_NAMES, (tuple(RECOGNIZERS), ENTITY_NAMES)\n"
        "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
