"""The band-key prefilter (dedup/band_filter.py): never holds back a key two documents share,
merges per-bundle bitmaps exactly, and lets through about k/m of the unique keys."""
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from dedup.band_filter import BandBits
from dedup.minhash import MinHasher, MinHashParams
from dedup.recipes import NEAR_RECIPES, labelled_set
from pipeline.config import load_defaults

FIXTURE = Path(__file__).parent / "fixtures" / "dedup_kowiki.jsonl.gz"


@pytest.fixture(scope="module")
def band_keys():
    """Band keys of real articles with exact and near copies of some of them."""
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        articles = [json.loads(line) for line in f]
    triples, _ = labelled_set(articles, seed=3, recipes=("exact",) + NEAR_RECIPES, variants_of=40)
    hasher = MinHasher(MinHashParams.from_section(load_defaults()["dedup"]["minhash"]))
    sigs = hasher.signatures([hasher.shingles(t) for _, t, _ in triples])
    return [hasher.band_keys(s) for s in sigs]


def test_no_shared_key_is_ever_held_back(band_keys):
    flat = [k for keys in band_keys for k in keys]
    counts = {}
    for k in flat:
        counts[k] = counts.get(k, 0) + 1
    shared = [k for k, n in counts.items() if n > 1]
    unique = [k for k, n in counts.items() if n == 1]
    assert len(shared) > 100 and len(unique) > 1000
    bits = BandBits(12)  # a tiny bitmap: many collisions, still no loss
    for i in range(0, len(band_keys), 37):  # uneven batches, as bundles come
        bits.add([k for keys in band_keys[i:i + 37] for k in keys])
    assert all(bits.shared(shared))
    # a roomy bitmap lets few unique keys through; a tiny one many
    roomy = BandBits(24)
    roomy.add(flat)
    assert np.mean(roomy.shared(unique)) < 0.01 < np.mean(bits.shared(unique))


def _whole_and_parts(keys, bits, per_part):
    """One bitmap of all ``keys`` and one per ``per_part`` of them, as the bundles build them."""
    whole = BandBits(bits)
    whole.add(keys)
    parts = []
    for i in range(0, len(keys), per_part):
        b = BandBits(bits)
        b.add(keys[i:i + per_part])
        parts.append(b)
    return whole, parts


def test_per_bundle_bitmaps_merge_to_the_single_pass_bitmap(band_keys):
    flat = [k for keys in band_keys for k in keys]
    whole, parts = _whole_and_parts(flat, 14, 500)
    merged = BandBits.merged(parts, 14)
    assert (merged.once == whole.once).all() and (merged.twice == whole.twice).all()


def test_pickled_bitmaps_are_small_when_sparse_and_merge_like_the_originals(band_keys):
    """Bitmaps cross the runner pickled: a sparse one travels as its non-zero bytes, a full one
    dense, and either merges into the same bitmap as the unpickled originals would."""
    import pickle

    flat = [k for keys in band_keys for k in keys]
    whole, parts = _whole_and_parts(flat, 20, 700)
    shipped = [pickle.loads(pickle.dumps(b)) for b in parts]
    assert len(pickle.dumps(parts[0])) < len(parts[0].once) // 4     # 2**17 bytes each, dense
    for original, copy in zip(parts, shipped):
        assert (copy.once == original.once).all() and (copy.twice == original.twice).all()
    # merged in an order that has shipped copies on both sides of merge(), and a dense one among them
    dense = BandBits(12)
    dense.add(flat)                      # 2**9 bytes, ~all set: pickled dense
    assert "once" in dense.__getstate__() and "sparse" in parts[0].__getstate__()
    merged = BandBits.merged(shipped[::-1], 20)
    assert (merged.once == whole.once).all() and (merged.twice == whole.twice).all()
    again = shipped[0]
    for b in shipped[1:]:
        again = again.merge(pickle.loads(pickle.dumps(b)))
    assert (again.once == whole.once).all() and (again.twice == whole.twice).all()
    small = pickle.loads(pickle.dumps(dense))
    assert (small.once == dense.once).all() and (small.twice == dense.twice).all()
    small.add(flat[:10])                 # a changed copy no longer merges through its stale index
    assert small._nonzero is None


def test_tracked_nonzero_bytes_equal_a_full_scan(band_keys):
    """Pickling finds the non-zero bytes from the indices it has set, not by scanning 2**bits:
    through adds, merges of shipped and local bitmaps, and past the tracking limit."""
    import pickle

    flat = [k for keys in band_keys for k in keys]
    whole, parts = _whole_and_parts(flat, 20, 700)

    def same_as_scan(b):
        assert b._nonzero_once().tolist() == np.flatnonzero(b.once).tolist()
        state = b.__getstate__()
        if "sparse" in state:
            once_at, once_val, twice_at, twice_val = state["sparse"]
            assert once_at.tolist() == np.flatnonzero(b.once).tolist()
            assert twice_at.tolist() == np.flatnonzero(b.twice).tolist()
            assert (once_val == b.once[once_at]).all() and (twice_val == b.twice[twice_at]).all()

    assert BandBits(20)._nonzero_once().tolist() == []
    for b in [whole, *parts]:
        assert b._touched is not None
        same_as_scan(b)
    merged = BandBits(20)
    for i, b in enumerate(parts):       # shipped (sparse) and local (dense path) parts alternate
        merged.merge(pickle.loads(pickle.dumps(b)) if i % 2 else b)
        same_as_scan(merged)
    assert merged._touched is not None
    # a tiny bitmap outgrows its index and falls back to the scan, with the same result
    small = BandBits(12)
    small.add(flat)
    assert small._touched is None
    same_as_scan(small)
    tracked = BandBits(12)
    tracked.add(flat[:5])
    assert tracked._touched is not None
    tracked.merge(small)                # merging an untracked bitmap makes the result untracked
    assert tracked._touched is None
    same_as_scan(tracked)


def test_unique_keys_pass_at_about_the_fill_ratio():
    rng = np.random.default_rng(7)
    keys = [bytes(rng.integers(0, 256, 12, dtype=np.uint8)) for _ in range(50_000)]
    bits = BandBits(18)
    bits.add(keys)
    passed = float(np.mean(bits.shared(keys)))
    assert abs(passed - len(keys) / 2**18) < 0.05
    with pytest.raises(ValueError):
        BandBits(4)
    with pytest.raises(ValueError):
        BandBits(12).merge(BandBits(13))
