"""Pure tests of dedup.minhash: keys, shingles, vectorised signatures vs datasketch, band keys."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash

from dedup.minhash import (MinHasher, MinHashParams, collision_probability, exact_key, jaccard,
                           shingle_hashes, shingle_normalize)

FIXTURE = Path(__file__).parent / "fixtures" / "dedup_kowiki.jsonl.gz"


@pytest.fixture(scope="module")
def articles():
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_exact_key_ignores_case_and_spacing_but_not_punctuation(articles):
    text = articles[0]["text"]
    assert exact_key(text) == exact_key("  " + text.replace(" ", "   ").replace("\n", "\n\n") + "\n")
    assert exact_key("Seoul 서울") == exact_key("seoul   서울")
    assert exact_key(text) != exact_key(text.replace(".", "。", 1))
    assert exact_key(articles[0]["text"]) != exact_key(articles[1]["text"])


def test_shingle_normalisation_drops_punctuation_and_collapses_space():
    assert shingle_normalize("진주만 공격(, ) 또는  「진주만」 공습!!") == "진주만 공격 또는 진주만 공습"
    a = shingle_hashes("대한민국의 수도는 서울이다. 인구는 약 천만 명이다.")
    b = shingle_hashes("대한민국의  수도는 「서울」이다 인구는, 약 천만 명이다...")
    assert np.array_equal(a, b)


def test_shingles_short_and_empty_texts():
    assert len(shingle_hashes("")) == 0
    assert len(shingle_hashes("?!")) == 0
    assert len(shingle_hashes("굿")) == 1
    assert len(shingle_hashes("굿", "word", 5)) == 1
    assert not np.array_equal(shingle_hashes("최고"), shingle_hashes("최고다"))
    with pytest.raises(ValueError):
        shingle_hashes("텍스트", "syllable", 3)


@pytest.mark.parametrize("shingle,size", [("char", 5), ("word", 5), ("char", 3)])
def test_signatures_bit_identical_to_datasketch(articles, shingle, size):
    params = MinHashParams(shingle=shingle, shingle_size=size, num_perm=64, bands=8, rows=8, seed=7)
    hasher = MinHasher(params)
    texts = [a["text"] for a in articles[:12]] + ["굿", "", "a" * 40000]
    sets = [hasher.shingles(t) for t in texts]
    sigs = hasher.signatures(sets)
    for hv, sig in zip(sets, sigs):
        ref = MinHash(num_perm=64, seed=7, scheme="affine32", hashfunc=lambda v: v)
        ref.update_batch([int(x) for x in hv])
        assert np.array_equal(ref.hashvalues, sig)


def test_long_document_chunking_matches_single_pass():
    params = MinHashParams(num_perm=32, bands=4, rows=8)
    hasher = MinHasher(params)
    big = np.arange(100_000, dtype=np.uint32) * np.uint32(2654435761)
    big = np.unique(big)
    chunked = hasher.signatures([big])[0]
    ref = MinHash(num_perm=32, seed=1, scheme="affine32", hashfunc=lambda v: v)
    ref.update_batch([int(x) for x in big])
    assert np.array_equal(chunked, ref.hashvalues)


def test_signature_agreement_estimates_jaccard(articles):
    hasher = MinHasher(MinHashParams(num_perm=256, bands=32, rows=8))
    base = articles[3]["text"]
    variants = [base[: int(len(base) * f)] for f in (0.95, 0.8, 0.6, 0.4)]
    sets = [hasher.shingles(t) for t in [base] + variants]
    sigs = hasher.signatures(sets)
    for i in range(1, len(sets)):
        est = float(np.mean(sigs[0] == sigs[i]))
        assert abs(est - jaccard(sets[0], sets[i])) < 0.1


def test_band_keys_match_iff_band_rows_match():
    hasher = MinHasher(MinHashParams(num_perm=16, bands=4, rows=4))
    sig = np.arange(16, dtype=np.uint32)
    other = sig.copy()
    other[5] += 1  # band 1 differs
    k1, k2 = hasher.band_keys(sig), hasher.band_keys(other)
    assert [a == b for a, b in zip(k1, k2)] == [True, False, True, True]
    # the band index is part of the key: equal rows in different bands do not collide
    flat = np.zeros(16, dtype=np.uint32)
    assert len(set(hasher.band_keys(flat))) == 4


def test_params_validation_and_collision_curve():
    with pytest.raises(ValueError):
        MinHashParams.from_section({"shingle": "char", "shingle_size": 5, "num_perm": 64,
                                    "bands": 10, "rows": 8, "seed": 1})
    assert collision_probability(0.9, 14, 9) > 0.99
    assert collision_probability(0.3, 14, 9) < 0.001


def test_jaccard_exact():
    a = np.array([1, 2, 3, 4], dtype=np.uint32)
    b = np.array([3, 4, 5], dtype=np.uint32)
    assert jaccard(a, b) == pytest.approx(2 / 5)
    assert jaccard(a, a) == 1.0


def test_bbit_sketch_estimates_jaccard(articles):
    from dedup.minhash import bbit_jaccard, bbit_sketch

    hasher = MinHasher(MinHashParams())
    base = articles[7]["text"]
    texts = [base, base[: int(len(base) * 0.9)], base[: int(len(base) * 0.5)], articles[8]["text"]]
    sets = [hasher.shingles(t) for t in texts]
    sigs = hasher.signatures(sets)
    sk = [bbit_sketch(s) for s in sigs]
    assert len(sk[0]) == 128
    for i in (1, 2, 3):
        assert abs(bbit_jaccard(sk[0], sk[i]) - jaccard(sets[0], sets[i])) < 0.12
    assert bbit_jaccard(sk[0], sk[0]) == 1.0
    assert bbit_jaccard(sk[0], sk[3]) < 0.2


def test_fast_normalisation_and_hashing_equal_the_plain_definitions(articles):
    """exact_normalize/shingle_normalize use str.split and per-mark replace(), shingle_hashes a
    sort instead of np.unique: each must give what the plain regex / translate / unique did."""
    import re
    import sys
    import unicodedata

    from dedup.minhash import _mix64_to32, _rolling, exact_normalize, shingle_normalize

    spaces = [chr(cp) for cp in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(cp))]
    assert spaces == [chr(cp) for cp in range(sys.maxunicode + 1) if chr(cp).isspace()]
    table = {cp: None for r in (range(0x10000), range(0x1F000, 0x1FB00)) for cp in r
             if unicodedata.category(chr(cp))[0] in "PS"}

    def exact_reference(t):
        return re.sub(r"\s+", " ", unicodedata.normalize("NFC", t).lower()).strip()

    def shingle_reference(t):
        return re.sub(r"\s+", " ", unicodedata.normalize("NFC", t).lower().translate(table)).strip()

    texts = [a["text"] for a in articles[:40]]
    texts += [t[:50] + " \u3000「서울」이다!! 😀👍🏽 ₩1,000 \u00a0\t\n" + t[50:120] for t in texts[:10]]
    texts += ["", " ", "ＡＢＣ Ｄ", "ᄒᆞᆫ글", "...", "a\u2028b\x1cc"]
    for t in texts:
        assert exact_normalize(t) == exact_reference(t)
        assert shingle_normalize(t) == shingle_reference(t)
        norm = shingle_reference(t)
        if norm:
            units = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
            n = min(5, len(units))
            expected = np.unique(_mix64_to32(_rolling(units, n) + np.uint64(n)))
            assert np.array_equal(shingle_hashes(t), expected)
