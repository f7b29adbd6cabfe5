"""Normalisation: pure functions on real Korean text, and the filter's keep/drop behaviour."""
from __future__ import annotations

import gzip
import json
import unicodedata

import pytest

from filters.base import Document, run_filters
from filters.normalize import (NormalizeFilter, build_filters, collapse_whitespace, compose_jamo,
                               normalize_text, remove_control_chars, unescape_html)


@pytest.fixture(scope="module")
def wiki_texts(shared_data):
    out = []
    with gzip.open(shared_data / "ko_wiki.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            out.append(json.loads(line)["text"])
            if len(out) == 40:
                break
    return out


@pytest.fixture(scope="module")
def reviews(shared_data):
    out = []
    with gzip.open(shared_data / "ko_nsmc_single.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)["text"]
            if any("\uac00" <= c <= "\ud7a3" for c in t) and len(t) > 15:
                out.append(t)
            if len(out) == 40:
                break
    return out


def test_conjoining_jamo_compose_to_precomposed_syllables(wiki_texts):
    for text in wiki_texts[:10]:
        decomposed = unicodedata.normalize("NFD", text)  # what macOS file names / some exports give
        assert any("\u1100" <= c <= "\u11ff" for c in decomposed)
        assert normalize_text(decomposed) == normalize_text(text)
        assert not any("\u1100" <= c <= "\u11ff" for c in normalize_text(decomposed))


def test_lone_conjoining_jamo_become_compatibility_jamo():
    # "ㅋㅋ" typed as conjoining initials (U+110F) cannot compose into syllables
    assert compose_jamo("재밌다\u110f\u110f\u110f") == "재밌다ㅋㅋㅋ"
    assert compose_jamo("\u1172\u1172") == "ㅠㅠ"
    assert compose_jamo("ㅋㅋㅋ 대박") == "ㅋㅋㅋ 대박"  # compatibility jamo stay as they are


def test_control_and_format_characters_removed_newlines_kept(reviews):
    text = reviews[0]
    dirty = "\ufeff" + text[:5] + "\x00\u200b" + text[5:] + "\x07\r\n" + reviews[1] + "\u00ad"
    cleaned = remove_control_chars(dirty)
    assert cleaned == text + "\n" + reviews[1]
    assert remove_control_chars("가\t나") == "가\t나"


def test_whitespace_runs_collapse_but_line_breaks_stay(reviews):
    a, b = reviews[2], reviews[3]
    messy = f"  {a}\u3000\u00a0 \t  끝  \n\n\n\n   {b}   \n"
    assert collapse_whitespace(messy) == f"{collapse_whitespace(a)} 끝\n\n{collapse_whitespace(b)}"


def test_html_entities_and_tags_removed_but_angle_brackets_in_prose_stay(reviews):
    r = reviews[4]
    scraped = f"<p>{r}</p><br/>&quot;기생충&quot; &amp;nbsp;봤어요 &#44032;&#xAC01; <script>var a=1;</script>"
    out = normalize_text(scraped)
    assert r in out
    assert '"기생충"' in out and "가각" in out and "<" not in out and "var a" not in out
    assert normalize_text("영화 <기생충> 최고, 3 < 5") == "영화 <기생충> 최고, 3 < 5"
    assert unescape_html("a&lt;br&gt;b") == "a\nb"
    assert normalize_text("AT&T와 R&D") == "AT&T와 R&D"  # bare ampersands are not entities


def test_clean_real_text_is_unchanged_and_idempotent(wiki_texts):
    for text in wiki_texts:
        once = normalize_text(text)
        assert normalize_text(once) == once
    # kowiki text is already NFC and single-spaced: normalisation keeps it (modulo edge spaces)
    same = sum(normalize_text(t) == t.strip() for t in wiki_texts)
    assert same >= len(wiki_texts) * 0.8


def test_filter_rewrites_text_and_drops_empty_documents(reviews):
    f = NormalizeFilter()
    doc = Document("a", unicodedata.normalize("NFD", reviews[5]) + "  \x00", "nsmc")
    res = run_filters([f], doc)
    assert res.kept and doc.text == unicodedata.normalize("NFC", reviews[5]).strip()
    assert f.drain_counts()["changed_documents"] == 1
    empty = Document("b", " \u200b<br>&nbsp;\n\t", "nsmc")
    res = run_filters([f], empty)
    assert not res.kept and res.stage == "normalize" and res.reason == "empty"


def test_build_filters_reads_section_and_rejects_bad_form():
    (f,) = build_filters({"enabled": True, "unicode_form": "NFKC", "strip_html": False})
    assert f.unicode_form == "NFKC" and f.strip_html is False
    with pytest.raises(ValueError):
        NormalizeFilter(unicode_form="NFX")


def test_fast_paths_give_the_full_scans_output(wiki_texts, reviews):
    """remove_control_chars skips its character-class scan for printable text, and
    collapse_whitespace leaves single spaces alone: both must equal the plain definitions."""
    import re

    from filters.normalize import _control_chars_re, remove_control_chars

    def collapse_reference(text: str) -> str:
        lines = [line.strip(" ") for line in re.sub(r"[^\S\n]+", " ", text).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n ")

    injected = ["\u200b", "\ufeff", "\x00", "\u00ad", "\ue000", "\U000f0001", "\u200d", "\u200c",
                "\t", "\u00a0", "\u3000", "\u2009", "  ", " \t ", "\u0378", "\n\n\n\n",
                " \n", "\n ", "\n \n \n", "   \n\n\n  "]
    texts = list(wiki_texts[:150]) + list(reviews[:300])
    variants = texts + [t[:40] + c + t[40:80] + c + c + t[80:] for t in texts[:100] for c in injected]
    for t in variants:
        plain = t.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace(
            "\u2029", "\n").replace("\x85", "\n")
        assert remove_control_chars(t) == _control_chars_re().sub("", plain)
        assert collapse_whitespace(t) == collapse_reference(t)
    # the premise of collapse_whitespace's fast path, over every code point
    import sys
    spaces = [chr(cp) for cp in range(sys.maxunicode + 1) if re.match(r"\s", chr(cp))]
    assert len(spaces) > 20
    assert [c for c in spaces if c.isprintable() and c not in " \n"] == []
    assert remove_control_chars("한\u200b글\ufeff") == "한글"          # a removed character still is
    assert collapse_whitespace("가\u00a0나\t다  라 마") == "가 나 다 라 마"
