"""Which LSH band keys can matter: a fixed-size "seen twice" bitmap over all band keys.

Almost every band key of a corpus is unique (a document shares a band with nobody), yet grouping
by band key ships every (key, document) pair through a shuffle: 14 records per document, more
data than the documents themselves.  A bucket of one member makes no edge, so those records are
pure cost.  Before grouping, every band key is hashed into a bitmap of ``2**bits`` slots twice
over: ``once`` (some key hit this slot) and ``twice`` (two keys, or one key twice, hit it).
Only keys whose slot is in ``twice`` go on to the grouping.

A key shared by two documents always sets its ``twice`` bit, so no bucket with two or more
members is lost: the filter can only let unique keys through (when another key shares the slot),
never hold a shared one back.  The ``twice`` bitmaps of partial results merge exactly
(``twice = twice_a | twice_b | (once_a & once_b)``), so workers build them per bundle and one
combine merges them: the memory is fixed (``2 * 2**bits / 8`` bytes per partial bitmap) whatever
the corpus size.  With ``k`` keys in ``m = 2**bits`` slots a unique key passes with probability
about ``k / m``: 14 million keys (one million documents) in 2**28 slots let ~5 % through.

Pure numpy; the Beam wiring is in ``pipeline.dedup``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

__all__ = ["BandBits", "slots"]


def slots(keys: Sequence[bytes], bits: int) -> np.ndarray:
    """Slot of each band key: 8 bytes of its BLAKE2b digest (uniform already) modulo ``2**bits``.

    A band key is 2 bytes of band index + a 10-byte digest (``MinHasher.band_keys``); the band
    index is folded in so equal rows in different bands land in different slots.
    """
    if not keys:
        return np.zeros(0, dtype=np.uint64)
    raw = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1)
    digest = raw[:, -8:].copy().view(">u8").ravel().astype(np.uint64)
    band = raw[:, :2].copy().view(">u2").ravel().astype(np.uint64)
    mixed = digest ^ (band * np.uint64(0x9E3779B97F4A7C15))
    return mixed & np.uint64((1 << bits) - 1)


class BandBits:
    """The ``once`` / ``twice`` bitmaps (packed, ``2**bits`` bits each)."""

    def __init__(self, bits: int) -> None:
        if not 8 <= bits <= 34:
            raise ValueError(f"band filter bits must be in [8, 34], got {bits}")
        self.bits = bits
        self.once = np.zeros(1 << (bits - 3), dtype=np.uint8)
        self.twice = np.zeros(1 << (bits - 3), dtype=np.uint8)
        # (byte index, byte) of the non-zero bytes when this object was unpickled from the sparse
        # form and not changed since: merging it then costs O(keys), not O(2**bits)
        self._nonzero: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        # indices of every byte ever set (with repeats), or None once a dense merge made that
        # unknown: pickling then finds the non-zero bytes in O(keys) instead of scanning 2**bits
        self._touched: list[np.ndarray] | None = []
        self._touched_len = 0

    def add(self, keys: Sequence[bytes]) -> None:
        s = slots(keys, self.bits)
        if not len(s):
            return
        self._nonzero = None
        # within this batch: slots hit more than once
        uniq, counts = np.unique(s, return_counts=True)
        byte, bit = (uniq >> np.uint64(3)).astype(np.int64), (uniq & np.uint64(7)).astype(np.uint8)
        mask = (np.uint8(1) << bit).astype(np.uint8)
        seen_before = (self.once[byte] & mask) != 0
        again = seen_before | (counts > 1)
        # several slots may share a byte: accumulate with bitwise_or.at, not fancy assignment
        np.bitwise_or.at(self.twice, byte[again], mask[again])
        np.bitwise_or.at(self.once, byte, mask)
        self._note_touched(byte)

    def merge(self, other: "BandBits") -> "BandBits":
        if other.bits != self.bits:
            raise ValueError("cannot merge band bitmaps of different sizes")
        self._nonzero = None
        if other._nonzero is not None:
            once_at, once_val, twice_at, twice_val = other._nonzero
            # byte indices are unique within each array, so fancy-index read-modify-write is exact;
            # "twice" first: it needs this side's "once" from before the merge
            self.twice[once_at] |= self.once[once_at] & once_val
            self.twice[twice_at] |= twice_val
            self.once[once_at] |= once_val
            self._note_touched(once_at)
        else:
            both = np.bitwise_and(self.once, other.once)
            both |= other.twice
            self.twice |= both
            self.once |= other.once
            if other._touched is None:
                self._touched = None
            for part in other._touched or ():
                self._note_touched(part)
        return self

    def _note_touched(self, byte_index: np.ndarray) -> None:
        if self._touched is None:
            return
        self._touched.append(byte_index)
        self._touched_len += len(byte_index)
        # past an eighth of the bitmap's bytes the list costs more memory than the scan saves
        if self._touched_len > len(self.once) // 8:
            self._touched = None

    def _nonzero_once(self) -> np.ndarray:
        """Sorted indices of the non-zero bytes of ``once`` (those of ``twice`` are among them:
        a slot is only ever marked twice once it is marked once)."""
        if self._touched is None:
            return np.flatnonzero(self.once)
        if not self._touched:
            return np.zeros(0, dtype=np.int64)
        touched = np.concatenate(self._touched)
        touched.sort()
        keep = np.empty(len(touched), dtype=bool)
        keep[:1] = True
        np.not_equal(touched[1:], touched[:-1], out=keep[1:])
        self._touched = [touched[keep]]
        self._touched_len = len(self._touched[0])
        return self._touched[0]

    # Per-bundle bitmaps travel through the runner (pickled) to be merged, and the merged one is a
    # side input of every bundle after it.  2**27 slots are 2 x 16 MiB dense, while a bundle of a
    # few thousand documents sets ~50k bits: ship the non-zero bytes (5 bytes each) whenever that
    # is smaller.  The dense arrays are rebuilt on arrival (np.zeros maps untouched pages lazily).
    def __getstate__(self) -> dict:
        once_at = self._nonzero_once()
        if len(once_at) * 5 * 2 >= len(self.once):
            return {"bits": self.bits, "once": self.once, "twice": self.twice}
        twice_at = once_at[self.twice[once_at] != 0]
        index = np.uint32 if len(self.once) <= 1 << 32 else np.uint64
        return {"bits": self.bits, "sparse": (once_at.astype(index), self.once[once_at],
                                              twice_at.astype(index), self.twice[twice_at])}

    def __setstate__(self, state: dict) -> None:
        self.bits = state["bits"]
        self._nonzero = None
        if "sparse" not in state:
            self.once, self.twice = state["once"], state["twice"]
            self._touched = None
            return
        once_at, once_val, twice_at, twice_val = (np.asarray(a) for a in state["sparse"])
        once_at, twice_at = once_at.astype(np.int64), twice_at.astype(np.int64)
        self.once = np.zeros(1 << (self.bits - 3), dtype=np.uint8)
        self.twice = np.zeros(1 << (self.bits - 3), dtype=np.uint8)
        self.once[once_at] = once_val
        self.twice[twice_at] = twice_val
        self._nonzero = (once_at, once_val, twice_at, twice_val)
        self._touched, self._touched_len = [once_at], len(once_at)

    def shared(self, keys: Sequence[bytes]) -> list[bool]:
        """For each key: may another key (or another copy of it) be in its bucket?"""
        s = slots(keys, self.bits)
        byte, bit = (s >> np.uint64(3)).astype(np.int64), (s & np.uint64(7)).astype(np.uint8)
        return ((self.twice[byte] >> bit) & 1).astype(bool).tolist()

    @classmethod
    def merged(cls, parts: Iterable["BandBits"], bits: int) -> "BandBits":
        out = cls(bits)
        for p in parts:
            out.merge(p)
        return out

    def fill_ratio(self) -> float:
        return float(np.unpackbits(self.once).mean())
