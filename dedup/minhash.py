"""Exact-text keys, shingles and MinHash signatures, vectorised with numpy.

Signatures use datasketch's ``affine32`` scheme: its permutation parameters
(``MinHash(num_perm, seed, scheme="affine32").permutations``) and its MurmurHash3 pre-mix,
applied to a whole batch of documents as one ``(shingles x num_perm)`` uint32 matrix per chunk
instead of one ``update()`` per shingle.  ``tests/test_dedup_minhash.py`` checks that the result is
bit-identical to ``datasketch.MinHash.update_batch`` on the same shingle hashes, so signatures
stay interchangeable with datasketch's LSH/LeanMinHash.

Shingle hashes are computed without a Python call per shingle either: text -> code points
(numpy), then a polynomial rolling hash over each n-gram window (n shifted multiply-adds), then a
64-bit avalanche and fold to 32 bits.  Word n-grams hash each word once with CRC32 (C speed, the
same value in every worker process, unlike Python's salted ``hash``).
"""
from __future__ import annotations

import hashlib
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# polynomial base for rolling n-gram hashes (odd 64-bit constant; arithmetic wraps mod 2^64)
_POLY = np.uint64(0x100000001B3)
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))

# rows of the (shingles x num_perm) matrix processed at once: 32768 x 128 x 4 B = 16 MiB
_CHUNK_ROWS = 32768


def exact_normalize(text: str) -> str:
    """What "the same text" means for exact dedup: NFC, case-folded, whitespace runs collapsed.

    Punctuation is kept: two texts that differ in punctuation are near-, not exact, duplicates.
    """
    # str.split() splits at exactly the characters regex \s matches (str.isspace), and joining
    # with one space is the collapsed, stripped text without a replacement per space
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def exact_key(text: str) -> bytes:
    """16-byte BLAKE2b of the normalised text (collision odds ~2^-64 at 10^10 documents)."""
    return hashlib.blake2b(exact_normalize(text).encode("utf-8"), digest_size=16).digest()


def shingle_normalize(text: str) -> str:
    """Text as shingles see it: NFC, lower-case, punctuation/symbols deleted, whitespace collapsed.

    Deleting (not spacing out) punctuation makes punctuation edits cost no shingles at all, also
    where quotes and brackets hug a Korean word ("「서울」이다" = "서울이다"); Hangul, digits and
    letters are untouched.
    """
    text = unicodedata.normalize("NFC", text).lower()
    # A document holds a handful of distinct punctuation characters: one C-level replace() each
    # is ~25% faster than str.translate's dict look-up for every character.
    for mark in _punct_set().intersection(text):
        text = text.replace(mark, "")
    return " ".join(text.split())


_PUNCT: frozenset[str] | None = None


def _punct_set() -> frozenset[str]:
    """Every punctuation (P*) and symbol (S*) character.

    Built once per process (BMP + the emoji/symbol planes, ~50 ms) so that normalisation never
    looks up ``unicodedata.category`` per character.
    """
    global _PUNCT
    if _PUNCT is None:
        ranges = [range(0x10000), range(0x1F000, 0x1FB00)]
        _PUNCT = frozenset(chr(cp) for r in ranges for cp in r if unicodedata.category(chr(cp))[0] in "PS")
    return _PUNCT


def _mix64_to32(h: np.ndarray) -> np.ndarray:
    """Avalanche a uint64 array (MurmurHash3 fmix64) and keep the high 32 bits."""
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(33))
    h = h * _MIX2
    h = h ^ (h >> np.uint64(33))
    return (h >> np.uint64(32)).astype(np.uint32)


def _rolling(units: np.ndarray, n: int) -> np.ndarray:
    """Polynomial hash of every window of ``n`` consecutive uint64 units (vectorised)."""
    count = len(units) - n + 1
    h = np.zeros(count, dtype=np.uint64)
    for j in range(n):
        h = h * _POLY + units[j:j + count]
    return h


def shingle_hashes(text: str, shingle: str = "char", size: int = 5) -> np.ndarray:
    """Sorted unique uint32 hashes of the text's shingles.

    ``shingle="char"``: character ``size``-grams of the normalised text (spaces included, so word
    boundaries still count); ``shingle="word"``: ``size``-grams of whitespace tokens.  A text shorter
    than one n-gram yields one shingle (the whole text); an empty text yields none.
    """
    norm = shingle_normalize(text)
    if not norm:
        return np.empty(0, dtype=np.uint32)
    if shingle == "char":
        units = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    elif shingle == "word":
        units = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in norm.split(" ")), dtype=np.uint64)
    else:
        raise ValueError(f"unknown shingle type {shingle!r} (char or word)")
    n = min(size, len(units))
    # the n-gram length is mixed in so a short text's single shingle differs from a window
    hashes = np.sort(_mix64_to32(_rolling(units, n) + np.uint64(n)))
    return _sorted_unique(hashes)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """Unique values of a sorted array.  Sorting and comparing neighbours is ~1.7x faster per
    document than ``np.unique``, whose hash-based path (numpy 2) was a tenth of dedup's kernel."""
    if len(a) < 2:
        return a
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted-unique shingle hash arrays."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


@dataclass(frozen=True)
class MinHashParams:
    shingle: str = "char"
    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 14
    rows: int = 9
    seed: int = 1
    verify_threshold: float = 0.0

    @classmethod
    def from_section(cls, minhash: dict) -> "MinHashParams":
        p = cls(shingle=minhash["shingle"], shingle_size=int(minhash["shingle_size"]),
                num_perm=int(minhash["num_perm"]), bands=int(minhash["bands"]),
                rows=int(minhash["rows"]), seed=int(minhash["seed"]),
                verify_threshold=float(minhash.get("verify_threshold", 0.0)))
        if p.bands * p.rows > p.num_perm:
            raise ValueError(f"dedup.minhash: bands x rows = {p.bands * p.rows} exceeds num_perm {p.num_perm}")
        return p


class MinHasher:
    """Batch MinHash signatures with datasketch's affine32 permutations."""

    def __init__(self, params: MinHashParams):
        # datasketch (which imports scipy: ~0.6 CPU-s) is needed only for these parameters; a
        # hasher built where the Beam graph is built travels to the workers with them, pickled.
        from datasketch import MinHash

        self.params = params
        a, b = MinHash(num_perm=params.num_perm, seed=params.seed, scheme="affine32").permutations
        # (num_perm, 1) columns: the permuted matrix is (num_perm, shingles) so that the per-document
        # min runs along contiguous memory (reduceat on axis 1 is ~4x faster than on axis 0)
        self._a = np.asarray(a, dtype=np.uint32)[:, None]
        self._b = np.asarray(b, dtype=np.uint32)[:, None]

    def shingles(self, text: str) -> np.ndarray:
        return shingle_hashes(text, self.params.shingle, self.params.shingle_size)

    def _permute_min(self, hv: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Min over each segment ``hv[offsets[i]:offsets[i+1]]`` of the permuted hashes."""
        s1, m1, s2, m2, s3 = _FMIX32
        h = hv ^ (hv >> s1)
        h = h * m1
        h = h ^ (h >> s2)
        h = h * m2
        h = h ^ (h >> s3)
        phv = self._a * h[None, :] + self._b  # uint32 wrap-around is the modulo 2^32
        return np.minimum.reduceat(phv, offsets[:-1], axis=1).T

    def signatures(self, shingle_sets: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(shingle_sets), num_perm)`` uint32 signatures; empty sets get all-0xFFFFFFFF."""
        num_perm = self.params.num_perm
        out = np.full((len(shingle_sets), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
        group: list[int] = []
        group_rows = 0

        def flush() -> None:
            nonlocal group, group_rows
            if group:
                arrays = [shingle_sets[i] for i in group]
                offsets = np.concatenate([[0], np.cumsum([len(x) for x in arrays])])
                out[group] = self._permute_min(np.concatenate(arrays), offsets)
            group, group_rows = [], 0

        for i, hv in enumerate(shingle_sets):
            n = len(hv)
            if n == 0:
                continue
            if n > _CHUNK_ROWS:  # one long document: its own chunks, min-combined
                for start in range(0, n, _CHUNK_ROWS):
                    part = hv[start:start + _CHUNK_ROWS]
                    out[i] = np.minimum(out[i], self._permute_min(part, np.array([0, len(part)]))[0])
                continue
            if group_rows + n > _CHUNK_ROWS:
                flush()
            group.append(i)
            group_rows += n
        flush()
        return out

    def band_keys(self, signature: np.ndarray) -> list[bytes]:
        """One LSH key per band: band index + the band's rows, hashed to 12 bytes.

        Two documents share a key iff (up to hash collisions, ~2^-88) they agree on all ``rows``
        values of that band.
        """
        r = self.params.rows
        keys = []
        for band in range(self.params.bands):
            digest = hashlib.blake2b(signature[band * r:(band + 1) * r].tobytes(), digest_size=10).digest()
            keys.append(band.to_bytes(2, "big") + digest)
        return keys


def collision_probability(similarity: float, bands: int, rows: int) -> float:
    """P(two documents of Jaccard ``similarity`` share at least one band) = 1-(1-s^r)^b."""
    return 1.0 - (1.0 - similarity ** rows) ** bands


def stable_hash64(*parts: str) -> int:
    """Deterministic 64-bit hash of strings (same in every process), for sampling and sharding."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "big")



def bbit_sketch(signature: np.ndarray) -> bytes:
    """The low 8 bits of every signature value (b-bit MinHash, Li & König 2010): num_perm bytes.

    Travels with each (band key, document) pair so a bucket can check its candidate pairs without
    shipping full 4-byte signatures through the shuffle.
    """
    return (signature & np.uint32(0xFF)).astype(np.uint8).tobytes()


def bbit_jaccard(a: bytes, b: bytes) -> float:
    """Jaccard estimate from two 8-bit sketches: P(low bytes equal) = J + (1 - J) / 256."""
    x = np.frombuffer(a, dtype=np.uint8)
    y = np.frombuffer(b, dtype=np.uint8)
    agree = float(np.count_nonzero(x == y)) / len(x)
    return max(0.0, (agree - 1 / 256) / (1 - 1 / 256))
