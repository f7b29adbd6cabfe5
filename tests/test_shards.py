"""MMIDIDX writer/reader: our files read back by our reader and by megatron-core, identically;
corrupt or truncated files reported clearly; atomic finalize."""
from __future__ import annotations

import os
import struct
import warnings

import numpy as np
import pytest

from tokenizer.shards import (
    IndexedDatasetReader, IndexedDatasetWriter, ShardFormatError, dtype_for_vocab,
    read_manifest, write_manifest,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # megatron-core builder + numpy 2


def _docs(n: int = 57, vocab: int = 30_000, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    # varied lengths, including an empty document and one longer than a page
    lengths = [0, 1, 5000] + list(rng.integers(1, 400, size=n - 3))
    return [rng.integers(0, vocab, size=int(k)) for k in lengths]


def _write(prefix, docs, dtype):
    w = IndexedDatasetWriter(prefix, dtype)
    for d in docs:
        w.add_document(d)
    w.finalize()


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_roundtrip_our_reader(tmp_path, dtype):
    docs = _docs()
    prefix = tmp_path / "shard"
    _write(prefix, docs, dtype)
    r = IndexedDatasetReader(prefix)
    assert len(r) == len(docs) == r.num_documents
    assert r.dtype == np.dtype(dtype)
    assert list(r.doc_idx) == list(range(len(docs) + 1))
    assert r.sizes.tolist() == [len(d) for d in docs]
    for i, d in enumerate(docs):
        assert np.array_equal(r[i], d)
    assert np.array_equal(r[-1], docs[-1])
    with pytest.raises(IndexError):
        r[len(docs)]
    # no temp files left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.bin", "shard.idx"]


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_megatron_core_reads_identical_tokens(tmp_path, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder
        import torch
    docs = _docs(seed=1)
    prefix = str(tmp_path / "ours")
    _write(prefix, docs, dtype)
    ds = IndexedDataset(prefix)
    assert len(ds) == len(docs)
    assert ds.index.dtype == np.dtype(dtype)
    assert ds.document_indices.tolist() == list(range(len(docs) + 1))
    for i, d in enumerate(docs):
        assert np.array_equal(ds[i], d)
    # and megatron-core's own builder produces a byte-identical pair of files
    ref = str(tmp_path / "ref")
    b = IndexedDatasetBuilder(ref + ".bin", dtype=dtype)
    for d in docs:
        b.add_document(torch.from_numpy(d.astype(np.int64)), [len(d)])
    b.finalize(ref + ".idx")
    for ext in (".bin", ".idx"):
        with open(prefix + ext, "rb") as a, open(ref + ext, "rb") as c:
            assert a.read() == c.read(), ext


def test_out_of_range_ids_rejected(tmp_path):
    w = IndexedDatasetWriter(tmp_path / "s", np.uint16)
    with pytest.raises(ValueError, match="does not fit"):
        w.add_document([1, 70_000])
    w.abort()
    assert list(tmp_path.iterdir()) == []


def test_context_manager_aborts_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with IndexedDatasetWriter(tmp_path / "s", np.uint16) as w:
            w.add_document([1, 2, 3])
            raise RuntimeError("worker died")
    assert list(tmp_path.iterdir()) == []  # neither final nor temp files


def test_truncated_idx_reported(tmp_path):
    prefix = tmp_path / "s"
    _write(prefix, _docs(), np.uint16)
    idx = str(prefix) + ".idx"
    data = open(idx, "rb").read()
    open(idx, "wb").write(data[:-10])
    with pytest.raises(ShardFormatError, match="truncated or corrupt"):
        IndexedDatasetReader(prefix)
    open(idx, "wb").write(data[:20])
    with pytest.raises(ShardFormatError, match="truncated index"):
        IndexedDatasetReader(prefix)


def test_bad_magic_and_dtype_reported(tmp_path):
    prefix = tmp_path / "s"
    _write(prefix, _docs(), np.uint16)
    idx = str(prefix) + ".idx"
    data = bytearray(open(idx, "rb").read())
    bad = bytes(data)
    open(idx, "wb").write(b"XXIDIDX\x00\x00" + bad[9:])
    with pytest.raises(ShardFormatError, match="not an MMIDIDX"):
        IndexedDatasetReader(prefix)
    data[17] = 99
    open(idx, "wb").write(bytes(data))
    with pytest.raises(ShardFormatError, match="unknown dtype code 99"):
        IndexedDatasetReader(prefix)


def test_corrupt_pointers_reported(tmp_path):
    prefix = tmp_path / "s"
    docs = _docs()
    _write(prefix, docs, np.uint16)
    idx = str(prefix) + ".idx"
    data = bytearray(open(idx, "rb").read())
    n = len(docs)
    ptr_off = 34 + 4 * n + 8 * 2  # third pointer
    data[ptr_off:ptr_off + 8] = struct.pack("<q", 12345)
    open(idx, "wb").write(bytes(data))
    with pytest.raises(ShardFormatError, match="pointers do not follow"):
        IndexedDatasetReader(prefix)


def test_bin_size_mismatch_reported(tmp_path):
    prefix = tmp_path / "s"
    _write(prefix, _docs(), np.uint16)
    binp = str(prefix) + ".bin"
    size = os.path.getsize(binp)
    with open(binp, "r+b") as f:
        f.truncate(size - 2)
    with pytest.raises(ShardFormatError, match="truncated or mismatched"):
        IndexedDatasetReader(prefix)


def test_empty_shard(tmp_path):
    _write(tmp_path / "e", [], np.uint16)
    r = IndexedDatasetReader(tmp_path / "e")
    assert len(r) == 0 and r.num_documents == 0 and r.num_tokens == 0


def test_dtype_for_vocab():
    assert dtype_for_vocab(30_008) == np.uint16
    assert dtype_for_vocab(65_535) == np.uint16
    assert dtype_for_vocab(65_536) == np.int32


def test_manifest_roundtrip(tmp_path):
    m = {"version": 1, "dtype": "uint16", "tokenizer": {}, "totals": {},
         "shards": [{"path": "train-00000", "split": "train", "documents": 1, "tokens": 2}]}
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path)
    assert back["shards"][0]["prefix"] == os.path.join(str(tmp_path), "train-00000")
    (tmp_path / "manifest.json").write_text('{"version": 7, "shards": []}')
    with pytest.raises(ShardFormatError):
        read_manifest(tmp_path)
