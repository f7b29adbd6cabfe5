"""The tiktoken backend of the tokenize stage (tokenizer/fast_encode.py): the same ids as
`tokenizers` on real text in Korean and other languages, on the committed tokenizer and on
freshly trained ones, and a refusal, with the reason, for every tokenizer it cannot reproduce."""
from __future__ import annotations

import copy
import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from filters.base import Document
from pipeline.tokenize import TIKTOKEN, TOKENIZERS, DocumentEncoder, choose_backend
from tokenizer.fast_encode import NotConvertible, TiktokenEncoder, fast_encoder_status, tiktoken_ranks
from tokenizer.loading import default_tokenizer_bytes, tokenizer_from_bytes
from tokenizer.train import SPECIAL_TOKENS, train_tokenizer


def _texts(path: Path, n: int, skip: int = 0) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in itertools.islice(f, skip, skip + n)]


@pytest.fixture(scope="module")
def real_texts(shared_data) -> list[str]:
    texts = (_texts(shared_data / "ko_wiki.jsonl.gz", 60)
             + _texts(shared_data / "ko_nsmc_reviews.jsonl.gz", 60)
             + _texts(shared_data / "ko_comments.jsonl.gz", 300)
             + _texts(shared_data / "ko_law.jsonl.gz", 10)
             + _texts(shared_data / "other_lang.jsonl.gz", 300))
    wiki, comment = texts[0], texts[130]
    # the places where the two libraries' regex engines and special-token matching could part:
    # added tokens inside words, whitespace runs before words and at the end (\s+(?!\S)), English
    # contractions, digits next to Hangul, emoji and variation selectors, full-width and
    # ideographic spaces, conjoining jamo, a long run of one character
    texts += [
        comment + "<|endoftext|>" + wiki[:300] + "<|pad|>",
        "연락처<|tel|>이고 메일은<|email|>입니다 " + comment,
        wiki[:200] + "   \n\n\t  " + comment + "   ",
        "It's what they'd said: we'll see, I'm sure you've " + comment,
        "2023년 12월 31일 오후 11시 59분 3,500원 " + wiki[:150],
        comment + " 😂😂😂 ❤️❤️ 👍🏻 ㅋㅋㅋㅋ ㅠㅠ",
        wiki[:100] + "\u3000" + wiki[100:200] + "\u00a0" + "ＡＢＣ１２３",
        "\u1100\u1161\u11a8 " + comment,   # a syllable written as conjoining jamo
        "ㅋ" * 700 + " " + "!" * 300,
        "",
    ]
    return texts


def test_same_ids_as_tokenizers_on_real_text(real_texts):
    data = default_tokenizer_bytes()
    fast, reference = TiktokenEncoder(data), tokenizer_from_bytes(data)
    expected = [e.ids for e in reference.encode_batch_fast(real_texts, add_special_tokens=False)]
    got = [fast.encode(t).tolist() for t in real_texts]
    assert sum(map(len, expected)) > 100_000
    assert got == expected
    # the added tokens really were matched whole (one id each), as tokenizers does
    assert fast.encode("앞<|endoftext|>뒤").tolist().count(0) == 1


@pytest.mark.parametrize("morpheme_aware", [False, True])
def test_same_ids_for_freshly_trained_tokenizers(real_texts, morpheme_aware):
    """polyko's own trainer (plain and morpheme-aware) makes files the fast path accepts."""
    tok = train_tokenizer(real_texts[:400], vocab_size=2000, morpheme_aware=morpheme_aware)
    data = tok.to_str().encode("utf-8")
    assert fast_encoder_status(data) is None
    fast = TiktokenEncoder(data)
    expected = [e.ids for e in tok.encode_batch_fast(real_texts, add_special_tokens=False)]
    assert [fast.encode(t).tolist() for t in real_texts] == expected


def test_document_encoder_backends_give_identical_bytes(real_texts):
    docs = [Document(id=f"d{i}", text=t, source="s") for i, t in enumerate(real_texts)]
    data = default_tokenizer_bytes()
    assert choose_backend(data, "auto") == TIKTOKEN
    fast = DocumentEncoder(data, 0, "uint16", 0.1, TIKTOKEN).encode(docs)
    slow = DocumentEncoder(data, 0, "uint16", 0.1, TOKENIZERS).encode(docs)
    assert fast == slow
    assert all(np.frombuffer(t, dtype=np.uint16)[-1] == 0 for *_, t in fast)


def _spec() -> dict:
    return json.loads(default_tokenizer_bytes())


def _first_merge(spec: dict) -> tuple[str, str]:
    m = spec["model"]["merges"][0]
    return tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)


def _broken_specs():
    spec = _spec()
    yield "normalizer", {**spec, "normalizer": {"type": "NFC"}}
    yield "pre-tokenizer", {**spec, "pre_tokenizer": {**spec["pre_tokenizer"], "add_prefix_space": True}}
    yield "pre-tokenizer", {**spec, "pre_tokenizer": {"type": "Whitespace"}}
    yield "dropout", {**spec, "model": {**spec["model"], "dropout": 0.1}}
    yield "byte_fallback", {**spec, "model": {**spec["model"], "byte_fallback": True}}
    yield "model is WordPiece", {**spec, "model": {**spec["model"], "type": "WordPiece"}}

    s = copy.deepcopy(spec)
    del s["model"]["vocab"]["Ā"]           # the byte 0x00's symbol
    yield "byte symbols", s

    s = copy.deepcopy(spec)
    s["model"]["merges"].append(s["model"]["merges"][0])  # the same token made twice
    yield "already makes", s

    s = copy.deepcopy(spec)
    merges, vocab = s["model"]["merges"], s["model"]["vocab"]
    a, b = (tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges[:2])
    vocab[a[0] + a[1]], vocab[b[0] + b[1]] = vocab[b[0] + b[1]], vocab[a[0] + a[1]]  # ids out of merge order
    yield "not above", s

    s = copy.deepcopy(spec)
    s["added_tokens"][0]["lstrip"] = True
    yield "lstrip", s

    yield "sets truncation", {**spec, "truncation": {"direction": "Right", "max_length": 4, "strategy":
                                                     "LongestFirst", "stride": 0}}
    yield "sets padding", {**spec, "padding": {"strategy": {"Fixed": 8}, "direction": "Right",
                                               "pad_to_multiple_of": None, "pad_id": 1, "pad_type_id": 0,
                                               "pad_token": "<|pad|>"}}

    s = copy.deepcopy(spec)
    a, b = _first_merge(s)
    s["model"]["vocab"][a + b] = s["model"]["vocab"]["Ā"]     # a merge result with a byte's id
    yield "share an id", s

    s = copy.deepcopy(spec)
    vocab_text = next(t for t in s["model"]["vocab"] if len(t) > 3 and t.isalpha() and t.isascii())
    s["added_tokens"].append({**s["added_tokens"][0], "id": len(s["model"]["vocab"]), "content": vocab_text,
                              "special": False})
    yield "in tokenizers, not", s                             # tokenizers keeps the vocabulary's id

    s = copy.deepcopy(spec)
    s["added_tokens"].append({**s["added_tokens"][0], "id": len(s["model"]["vocab"]) + 3,
                              "content": "<|gap|>"})
    yield "in tokenizers, not", s                             # tokenizers closes the gap in the ids

    s = copy.deepcopy(spec)
    s["added_tokens"].append({**s["added_tokens"][0], "id": len(s["model"]["vocab"]) + 10,
                              "content": "<|endoftext|>x"})
    yield "is part of", s


@pytest.mark.parametrize("reason,spec", list(_broken_specs()), ids=lambda v: v if isinstance(v, str) else "")
def test_tokenizers_it_cannot_reproduce_are_refused_with_the_reason(reason, spec):
    with pytest.raises(NotConvertible, match=reason):
        tiktoken_ranks(spec)
    data = json.dumps(spec).encode("utf-8")
    assert reason in fast_encoder_status(data)
    assert choose_backend(data, "auto") == TOKENIZERS
    with pytest.raises(ValueError, match="tokenize.encoder=tiktoken cannot encode"):
        choose_backend(data, "tiktoken")


def test_a_normalizer_really_changes_ids_so_refusing_it_matters():
    """The refusal above is not pedantry: with a lowercasing normalizer tokenizers' ids differ
    from what the unnormalised byte-level BPE (all tiktoken can run) gives."""
    spec = _spec()
    lowered = tokenizer_from_bytes(json.dumps({**spec, "normalizer": {"type": "Lowercase"}}).encode())
    text = "KBS News 보도 ABC"
    assert lowered.encode(text, add_special_tokens=False).ids != TiktokenEncoder(default_tokenizer_bytes()).encode(text).tolist()


def test_choose_backend_values():
    data = default_tokenizer_bytes()
    assert choose_backend(data, "tokenizers") == TOKENIZERS
    assert choose_backend(data, "tiktoken") == TIKTOKEN
    with pytest.raises(ValueError, match="must be one of"):
        choose_backend(data, "fast")
    with pytest.raises(ValueError, match="unknown encoder backend"):
        DocumentEncoder(data, 0, "uint16", 0.0, "auto")


def test_special_tokens_are_the_trainers():
    _ranks, specials = tiktoken_ranks(_spec())
    assert set(specials) == set(SPECIAL_TOKENS)
