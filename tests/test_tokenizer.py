"""Tokenizer training (sampling, morpheme marking, BPE), the committed default, and the CLI,
on real Korean text from the development data."""
from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from tokenizer.train import (
    MORPHEME_MARKER, SPECIAL_TOKENS, MorphemeMarker, _water_level, build_untrained, id_fraction,
    iter_input_files, iter_records, sample_texts, train_tokenizer,
)

PII_SNIPPET = "연락처는 <|tel|> 이고 메일은 <|email|>, 주민번호 <|rrn|>, 계좌 <|acc|>, 카드 <|crd|> 입니다."


def _records(path: Path, n: int, skip: int = 0) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in itertools.islice(f, skip, skip + n)]


@pytest.fixture(scope="module")
def korean_records(shared_data) -> list[dict]:
    return (_records(shared_data / "ko_wiki.jsonl.gz", 120)
            + _records(shared_data / "ko_nsmc_reviews.jsonl.gz", 120)
            + _records(shared_data / "ko_comments.jsonl.gz", 1500)
            + _records(shared_data / "ko_nsmc_single.jsonl.gz", 1500))


@pytest.fixture(scope="module")
def heldout_texts(shared_data) -> list[str]:
    # documents the small tokenizers below never saw (skip past the training slice)
    texts = [r["text"] for r in _records(shared_data / "ko_wiki.jsonl.gz", 5, skip=500)]
    texts += [r["text"] for r in _records(shared_data / "ko_comments.jsonl.gz", 60, skip=40_000)]
    texts += [r["text"] for r in _records(shared_data / "ko_nsmc_single.jsonl.gz", 60, skip=30_000)]
    texts.append(texts[0][:200] + "\n\n" + PII_SNIPPET + f" 마커{MORPHEME_MARKER}문자 😀 ㅋㅋㅋ  \t끝.")
    return texts


@pytest.fixture(scope="module")
def small_tokenizers(korean_records):
    texts = [r["text"] for r in korean_records]
    return {m: train_tokenizer(texts, vocab_size=1500, morpheme_aware=m) for m in (False, True)}


def test_pii_tokens_match_the_pii_stage():
    from filters.pii import REPLACEMENT_TOKENS
    from tokenizer.train import PII_TOKENS

    assert sorted(PII_TOKENS) == sorted(REPLACEMENT_TOKENS.values())
    assert set(PII_TOKENS) <= set(SPECIAL_TOKENS)


# -- sampling ------------------------------------------------------------------------------------
def test_water_level():
    assert _water_level([10, 10], 100) == float("inf")
    assert _water_level([10, 100, 100], 110) == 50
    assert _water_level([30, 30, 30], 60) == 20


def test_sample_is_source_balanced_bounded_and_deterministic(korean_records):
    budget = 150_000
    texts, stats = sample_texts(iter(korean_records), budget, trim_every=50)
    assert stats.bytes_sampled <= budget
    assert stats.bytes_sampled == sum(len(t.encode()) for t in texts)
    per = stats.per_source
    # every source present; sources smaller than the fair share keep everything,
    # the larger ones get (nearly) equal byte shares
    sources = {r["source"] for r in korean_records}
    assert set(per) == sources
    level = _water_level([p["bytes_seen"] for p in per.values()], budget)
    largest_doc: dict[str, int] = {}
    for r in korean_records:
        largest_doc[r["source"]] = max(largest_doc.get(r["source"], 0), len(r["text"].encode()))
    assert sum(p["bytes_seen"] > level for p in per.values()) >= 3  # the budget really binds
    for name, p in per.items():
        if p["bytes_seen"] <= level:
            assert p["docs_sampled"] == p["docs_seen"], name
        else:  # the smallest-key prefix that fits: short of the share by less than one document
            assert level - largest_doc[name] < p["bytes_sampled"] <= level, (name, p, level)
    again, _ = sample_texts(iter(korean_records), budget, trim_every=7)
    assert again == texts  # same keys -> same sample, whatever the trim cadence
    shuffled, _ = sample_texts(reversed(korean_records), budget)
    assert shuffled == texts  # ... and whatever the input order


def test_holdout_excludes_documents(korean_records):
    texts, stats = sample_texts(iter(korean_records), 10**9, holdout_fraction=0.1)
    held = [r for r in korean_records if id_fraction(r["id"], "holdout") < 0.1]
    assert stats.docs_held_out == len(held) > 0
    assert len(texts) == len(korean_records) - len(held)


def test_iter_records_reads_a_pipeline_output_dir(tmp_path, korean_records):
    kept = tmp_path / "out" / "kept"
    kept.mkdir(parents=True)
    with gzip.open(kept / "part-00000-of-00001.jsonl.gz", "wt", encoding="utf-8") as f:
        for r in korean_records[:10]:
            f.write(json.dumps({"id": r["id"], "text": r["text"], "source": r["source"]}, ensure_ascii=False) + "\n")
    (tmp_path / "out" / "stats.json").write_text("{}")
    files = iter_input_files([tmp_path / "out"])
    assert [f.name for f in files] == ["part-00000-of-00001.jsonl.gz"]
    assert [r["text"] for r in iter_records(files)] == [r["text"] for r in korean_records[:10]]


# -- morpheme marking ----------------------------------------------------------------------------
def test_morpheme_marker_splits_eojeol_and_is_lossless(korean_records):
    mark = MorphemeMarker()
    assert mark("학교에 갔다") == f"학교{MORPHEME_MARKER}에 갔{MORPHEME_MARKER}다"
    for r in korean_records[:200]:
        marked = mark(r["text"])
        assert marked.replace(MORPHEME_MARKER, "") == r["text"]
    assert sum(mark(r["text"]).count(MORPHEME_MARKER) for r in korean_records[:50]) > 100


def test_training_pre_tokenizer_removes_marker():
    pre = build_untrained(True).pre_tokenizer
    pieces = [p for p, _ in pre.pre_tokenize_str(f"학교{MORPHEME_MARKER}에 갔{MORPHEME_MARKER}다")]
    joined = "".join(pieces)
    assert len(pieces) == 4  # 학교 | 에 | Ġ갔 | 다
    assert "\ue000" not in joined and "îĢĢ" not in joined  # neither the char nor its byte-level form


# -- trained tokenizers --------------------------------------------------------------------------
@pytest.mark.parametrize("morph", [False, True])
def test_small_tokenizer_roundtrip_and_specials(tmp_path, small_tokenizers, heldout_texts, morph):
    from transformers import PreTrainedTokenizerFast

    tok = small_tokenizers[morph]
    assert tok.get_vocab_size() == 1500 + len(SPECIAL_TOKENS)
    path = tmp_path / "tok.json"
    tok.save(str(path))
    saved = json.loads(path.read_text())
    assert "Split" not in json.dumps(saved["pre_tokenizer"])  # encode never needs the marker
    hf = PreTrainedTokenizerFast(tokenizer_file=str(path))
    for text in heldout_texts:
        ids = hf.encode(text)
        assert hf.decode(ids) == text
        assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text
    for t in SPECIAL_TOKENS:
        assert hf.encode(f"앞 {t} 뒤").count(hf.convert_tokens_to_ids(t)) == 1
        assert len(hf.encode(t)) == 1


def test_morpheme_aware_merges_respect_boundaries(small_tokenizers, korean_records):
    """No learned token of the morpheme-aware tokenizer contains a marker, and for frequent
    noun+particle words the plain tokenizer has whole-word tokens the morpheme-aware one
    cannot have learned (e.g. '학교에' stays 학교|에)."""
    from tokenizers import Tokenizer

    plain, morph = small_tokenizers[False], small_tokenizers[True]
    vocab_m = morph.get_vocab()
    assert not any("îĢĢ" in t for t in vocab_m)  # byte-level form of U+E000
    mark = MorphemeMarker()
    # count learned tokens that straddle a morpheme boundary in real text
    texts = [r["text"] for r in korean_records[:300]]

    import numpy as np

    boundaries = []
    for t in texts:  # is_boundary[i]: a morpheme boundary sits before character i
        flags, marked = np.zeros(len(t) + 1, dtype=bool), mark(t)
        pos = 0
        for ch in marked:
            if ch == MORPHEME_MARKER:
                flags[pos] = True
            else:
                pos += 1
        boundaries.append(np.concatenate([[0], np.cumsum(flags)]))  # prefix counts

    def crossing(tok: Tokenizer) -> int:
        n = 0
        for t, prefix in zip(texts, boundaries):
            for s, e in tok.encode(t).offsets:
                # boundaries strictly inside (s, e): positions s+1 .. e-1
                n += e - s > 1 and prefix[e] - prefix[s + 1] > 0
        return n

    assert crossing(morph) < 0.5 * crossing(plain)


def test_committed_default_tokenizer(heldout_texts, shared_data):
    from transformers import PreTrainedTokenizerFast

    from tokenizer.loading import DEFAULT_TOKENIZER_NAME, default_tokenizer_bytes, describe

    info = describe(default_tokenizer_bytes(), "default")
    assert info.vocab_size == 30_000 + len(SPECIAL_TOKENS)
    assert set(info.special_tokens) == set(SPECIAL_TOKENS) and info.eod_id == 0
    path = Path(__file__).resolve().parents[1] / "tokenizer" / DEFAULT_TOKENIZER_NAME
    hf = PreTrainedTokenizerFast(tokenizer_file=str(path))
    # held-out documents of the default's training (the 2% id-hash hold-out)
    held = [r["text"] for r in _records(shared_data / "ko_wiki.jsonl.gz", 800)
            if id_fraction(str(r["id"]), "holdout") < 0.02][:10]
    held += [r["text"] for r in _records(shared_data / "ko_comments.jsonl.gz", 5000)
             if id_fraction(str(r["id"]), "holdout") < 0.02][:50]
    assert len(held) > 30
    for text in held + heldout_texts:
        assert hf.decode(hf.encode(text)) == text
    for t in SPECIAL_TOKENS:
        assert len(hf.encode(t)) == 1
    # a 30k Korean vocabulary compresses Korean far below one token per character
    chars = sum(len(t) for t in held)
    assert sum(len(hf.encode(t)) for t in held) / chars < 0.8


def test_cli_train(tmp_path, shared_data, capsys):
    from pipeline.cli import main

    out = tmp_path / "t.json"
    rc = main(["tokenizer", "train", str(shared_data / "ko_nsmc_single.jsonl.gz"),
               str(shared_data / "ko_comments.jsonl.gz"), "--output", str(out),
               "--vocab-size", "800", "--sample-bytes", "400000"])
    assert rc == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    assert report["vocab_size"] == 800 + len(SPECIAL_TOKENS)
    assert report["sample"]["bytes_sampled"] <= 400_000
    assert set(report["sample"]["per_source"]) >= {"nsmc", "kote", "chatbot_data"}
    assert report["peak_rss_mb"] > 0 and report["seconds_training"] > 0
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out))
    text = "영화 정말 재밌어요 ㅎㅎ <|tel|>"
    assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text
