"""Encode with tiktoken's byte-pair encoder what a `tokenizers` byte-level BPE file describes.

`tokenizers` spends ~3x the CPU of tiktoken on the same Korean text (docs/benchmarks.md,
"Tokenizer backends"), and encoding is the second-largest cost of a `polyko run`. tiktoken runs
the same algorithm as a GPT-2-style byte-level BPE: split the text with the GPT-2 pattern,
then in each piece repeatedly merge the adjacent pair of lowest rank. :func:`tiktoken_ranks`
turns a tokenizer JSON into tiktoken's inputs when both give the same ids, and says why not
otherwise (the stage then keeps `tokenizers`):

* no normalizer; the pre-tokenizer is exactly ``ByteLevel(add_prefix_space=False,
  use_regex=True)``, whose pattern is GPT-2's (:data:`GPT2_PATTERN`);
* a plain BPE model: no dropout, no unknown token, no subword prefix or word suffix, no byte
  fallback, merges not skipped for whole words;
* all 256 byte symbols in the vocabulary; every merge produces a token no other merge
  produces, and merge results have increasing ids in merge order. tiktoken ranks a pair by
  the id of the merged token, `tokenizers` by the merge's position, so this makes the two orders
  one. Only byte symbols and merge results get a rank: a vocabulary entry no merge produces is
  never emitted by `tokenizers` either;
* added tokens match literally (no ``lstrip``, ``rstrip``, ``single_word``), none is part of
  another, so matching the first one found (tiktoken) is matching the longest (`tokenizers`),
  and each has the id `tokenizers` gives it (which differs from the JSON when the text is also a
  vocabulary entry or the ids leave a gap); no two tokens share an id;
* no truncation or padding.

One difference remains possible in principle, and these rules do not exclude it: tiktoken
merges two adjacent parts whose concatenation is a token even when no merge joins exactly
those two (the token's own merge splits it elsewhere), where `tokenizers` would not. For the
default tokenizer the two backends gave the same ids on every document of ``../shared/data``
(392,945 documents in Korean and 76 other languages, 29.5M tokens) and of the 100k benchmark
corpus (44M tokens with its junk and edited near-duplicates): ``python -m bench.bench_tokenize
--compare FILE...`` runs that check, also for a tokenizer of your own (``--tokenizer``).
``tokenize.encoder: tokenizers`` turns the fast path off, and the manifest records which
library encoded the shards.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np

# tokenizers' ByteLevel pre-tokenizer pattern (tokenizers/src/pre_tokenizers/byte_level.rs),
# which is also tiktoken's "gpt2" pattern.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class NotConvertible(ValueError):
    """The tokenizer is not one tiktoken reproduces; the message says which rule it breaks."""


def byte_symbols() -> dict[str, int]:
    """The byte-level alphabet: the printable character standing for each byte (GPT-2's
    ``bytes_to_unicode``, which `tokenizers`' ByteLevel uses) -> that byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbol_of = {b: chr(b) for b in printable}
    shifted = 0
    for b in range(256):
        if b not in symbol_of:
            symbol_of[b] = chr(256 + shifted)
            shifted += 1
    return {s: b for b, s in symbol_of.items()}


def tiktoken_ranks(spec: dict[str, Any], tokenizer_json: bytes | str | None = None
                   ) -> tuple[dict[bytes, int], dict[str, int]]:
    """``(mergeable ranks, special tokens)`` for ``tiktoken.Encoding`` from a parsed tokenizer
    JSON (``tokenizer_json``: its text, when the caller has it, so it is not written out again
    for the added-token check); raises :class:`NotConvertible` when tiktoken would not give the
    same ids."""
    if spec.get("normalizer") is not None:
        raise NotConvertible("it has a normalizer")
    for key in ("truncation", "padding"):
        if spec.get(key) is not None:
            raise NotConvertible(f"it sets {key}")
    pre = spec.get("pre_tokenizer") or {}
    if (pre.get("type") != "ByteLevel" or pre.get("add_prefix_space", True)
            or not pre.get("use_regex", True)):
        raise NotConvertible("its pre-tokenizer is not ByteLevel(add_prefix_space=False, use_regex=True)")
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        raise NotConvertible(f"its model is {model.get('type')}, not BPE")
    for key in ("dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(key):
            raise NotConvertible(f"its BPE model sets {key}")
    for key in ("byte_fallback", "ignore_merges"):
        if model.get(key):
            raise NotConvertible(f"its BPE model sets {key}")

    vocab: dict[str, int] = model["vocab"]
    byte_of = byte_symbols()
    missing = [s for s in byte_of if s not in vocab]
    if missing:
        raise NotConvertible(f"{len(missing)} of the 256 byte symbols are not in the vocabulary")
    ranks = {bytes([byte_of[s]]): vocab[s] for s in byte_of}
    last_id = -1
    for i, merge in enumerate(model["merges"]):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        token = left + right
        if left not in vocab or right not in vocab or token not in vocab:
            raise NotConvertible(f"merge {i} ({left!r} {right!r}) joins or makes a token outside the vocabulary")
        try:
            key = bytes(byte_of[c] for c in token)
        except KeyError:
            raise NotConvertible(f"merge {i} makes {token!r}, which is not byte-level") from None
        if key in ranks:
            raise NotConvertible(f"merge {i} makes {token!r}, which an earlier merge (or a byte) already makes")
        if vocab[token] <= last_id:
            raise NotConvertible(f"merge {i} makes id {vocab[token]}, not above the previous merge's {last_id}")
        ranks[key] = last_id = vocab[token]

    specials: dict[str, int] = {}
    for added in spec.get("added_tokens") or []:
        if added.get("lstrip") or added.get("rstrip") or added.get("single_word"):
            raise NotConvertible(f"added token {added['content']!r} sets lstrip, rstrip or single_word")
        specials[added["content"]] = added["id"]
    for a in specials:
        for b in specials:
            if a != b and a in b:
                raise NotConvertible(f"added token {a!r} is part of {b!r}")
    taken = set(ranks.values())
    if len(taken) != len(ranks):
        raise NotConvertible("two byte symbols or merge results share an id")
    clash = [t for t, i in specials.items() if i in taken]
    if clash:
        raise NotConvertible(f"added token {clash[0]!r} has the id of a byte or merge")
    if specials:
        # tokenizers gives an added token the vocabulary's id when its text is also a vocabulary
        # entry, and renumbers ids past the vocabulary: ask it rather than trust the JSON
        from tokenizers import Tokenizer

        text = json.dumps(spec) if tokenizer_json is None else tokenizer_json
        reference = Tokenizer.from_str(text.decode("utf-8") if isinstance(text, bytes) else text)
        for content, token_id in specials.items():
            if reference.token_to_id(content) != token_id:
                raise NotConvertible(f"added token {content!r} is id {reference.token_to_id(content)} "
                                     f"in tokenizers, not {token_id} as written")
    return ranks, specials


class TiktokenEncoder:
    """``encode(text) -> np.ndarray[uint32]``: the ids `tokenizers` gives for ``text`` with
    ``add_special_tokens=False`` (added tokens in the text are matched, as `tokenizers` does)."""

    def __init__(self, tokenizer_json: bytes | str) -> None:
        import tiktoken

        ranks, specials = tiktoken_ranks(json.loads(tokenizer_json), tokenizer_json)
        self._encoding = tiktoken.Encoding("polyko-bytelevel-bpe", pat_str=GPT2_PATTERN,
                                           mergeable_ranks=ranks, special_tokens=specials)

    def encode(self, text: str) -> np.ndarray:
        return self._encoding.encode_to_numpy(text, allowed_special="all")


def fast_encoder_status(tokenizer_json: bytes | str) -> str | None:
    """None when :class:`TiktokenEncoder` can encode with this tokenizer, else the reason."""
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        return "tiktoken is not installed"
    try:
        tiktoken_ranks(json.loads(tokenizer_json), tokenizer_json)
    except NotConvertible as exc:
        return str(exc)
    return None
