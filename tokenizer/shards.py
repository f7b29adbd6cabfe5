"""Megatron ``MMIDIDX`` token shards: writer, reader and the shard manifest.

A shard is two files sharing a path prefix:

* ``PREFIX.bin``: the token ids of every document, back to back, in one numpy dtype;
* ``PREFIX.idx``: the index, byte-compatible with megatron-core's
  ``megatron.core.datasets.indexed_dataset`` (``_IndexWriter`` / ``_IndexReader``)::

      b"MMIDIDX\\x00\\x00"   9-byte magic
      <Q  version (1)
      <B  dtype code (megatron-core ``DType``: uint8=1 int8=2 int16=3 int32=4 int64=5
                        float64=6 float32=7 uint16=8)
      <Q  sequence count N
      <Q  document count D (= len(doc_idx))
      int32[N]  sizes      (tokens per sequence)
      int64[N]  pointers   (byte offset of each sequence in .bin)
      int64[D]  doc_idx    (sequence index where each document ends; starts with 0)

We write one sequence per document (as Megatron's ``preprocess_data.py`` does without sentence
splitting), so ``doc_idx == [0, 1, ..., N]``.

This module is shared by the pipeline (writing) and ``train/`` (reading); it imports neither
Beam nor torch.
"""
from __future__ import annotations

import json
import os
import struct
import uuid
from array import array
from pathlib import Path
from typing import Any, Iterable

import numpy as np

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
# fixed part of the .idx: magic + version + dtype code + sequence count + document count
_FIXED_HEADER_BYTES = len(INDEX_HEADER) + 8 + 1 + 8 + 8  # = 34

# megatron-core's DType enum, by numpy dtype name
DTYPE_CODES: dict[str, int] = {
    "uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5,
    "float64": 6, "float32": 7, "uint16": 8,
}
_CODE_TO_DTYPE = {code: np.dtype(name) for name, code in DTYPE_CODES.items()}

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


class ShardFormatError(ValueError):
    """A shard's ``.idx``/``.bin`` is corrupt, truncated or inconsistent with each other."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (halves the .bin), else int32 (Megatron's own rule, with margin)."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.int32)


def _bin_path(prefix: str | os.PathLike) -> str:
    return os.fspath(prefix) + ".bin"


def _idx_path(prefix: str | os.PathLike) -> str:
    return os.fspath(prefix) + ".idx"


class IndexedDatasetWriter:
    """Streams documents into ``PREFIX.bin`` and writes ``PREFIX.idx`` on :meth:`finalize`.

    Tokens go straight to a temporary ``.bin`` as they arrive; only the per-document sizes
    (4 bytes each) stay in memory. ``finalize`` writes the index to a temporary file too and
    then renames both into place (``.bin`` first, ``.idx`` last), so a reader never sees a
    half-written shard and a crashed or retried writer leaves at most ``*.tmp-*`` files behind,
    never a truncated ``PREFIX.bin`` next to a valid ``PREFIX.idx``.

    Use as a context manager to get the temporary files removed when an exception escapes.
    """

    def __init__(self, path_prefix: str | os.PathLike, dtype: Any = np.uint16) -> None:
        self.path_prefix = os.fspath(path_prefix)
        self.dtype = np.dtype(dtype)
        if self.dtype.name not in DTYPE_CODES:
            raise ValueError(f"dtype {self.dtype} has no MMIDIDX code; use one of {sorted(DTYPE_CODES)}")
        parent = os.path.dirname(self.path_prefix) or "."
        os.makedirs(parent, exist_ok=True)
        # unique per writer: two retried workers writing the same shard never share a temp file
        tag = f".tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._tmp_bin = _bin_path(self.path_prefix) + tag
        self._tmp_idx = _idx_path(self.path_prefix) + tag
        self._bin = open(self._tmp_bin, "wb")
        self._sizes = array("q")
        self._finalized = False
        if np.issubdtype(self.dtype, np.integer):
            info = np.iinfo(self.dtype)
            self._range: tuple[int, int] | None = (int(info.min), int(info.max))
        else:
            self._range = None

    # -- writing ------------------------------------------------------------------------
    def add_document(self, tokens: Iterable[int] | np.ndarray) -> None:
        """Append one document (one sequence). Ids outside the dtype's range are an error,
        not a silent wrap-around."""
        if self._finalized:
            raise RuntimeError("add_document after finalize")
        arr = np.asarray(tokens)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        if arr.size and self._range is not None and arr.dtype != self.dtype:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < self._range[0] or hi > self._range[1]:
                raise ValueError(f"token id range [{lo}, {hi}] does not fit {self.dtype}")
        if arr.size > np.iinfo(np.int32).max:
            raise ValueError("a sequence longer than 2**31-1 tokens cannot be indexed (int32 sizes)")
        self._bin.write(np.ascontiguousarray(arr, dtype=self.dtype).tobytes(order="C"))
        self._sizes.append(int(arr.size))

    @property
    def num_documents(self) -> int:
        return len(self._sizes)

    @property
    def num_tokens(self) -> int:
        return int(np.frombuffer(self._sizes, dtype=np.int64).sum()) if self._sizes else 0

    def finalize(self) -> None:
        """Close the data file, write the index, rename both into place."""
        if self._finalized:
            return
        self._bin.flush()
        os.fsync(self._bin.fileno())
        self._bin.close()
        sizes = np.frombuffer(self._sizes, dtype=np.int64) if self._sizes else np.zeros(0, np.int64)
        n = int(sizes.size)
        pointers = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(sizes[:-1] * self.dtype.itemsize, out=pointers[1:])
        doc_idx = np.arange(n + 1, dtype=np.int64)
        with open(self._tmp_idx, "wb") as f:
            f.write(INDEX_HEADER)
            f.write(struct.pack("<Q", INDEX_VERSION))
            f.write(struct.pack("<B", DTYPE_CODES[self.dtype.name]))
            f.write(struct.pack("<Q", n))
            f.write(struct.pack("<Q", int(doc_idx.size)))
            f.write(sizes.astype(np.int32).tobytes(order="C"))
            f.write(pointers.tobytes(order="C"))
            f.write(doc_idx.tobytes(order="C"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(self._tmp_bin, _bin_path(self.path_prefix))
        os.replace(self._tmp_idx, _idx_path(self.path_prefix))
        self._finalized = True

    def abort(self) -> None:
        """Drop the temporary files (called on error)."""
        if self._finalized:
            return
        try:
            self._bin.close()
        finally:
            for p in (self._tmp_bin, self._tmp_idx):
                try:
                    os.remove(p)
                except FileNotFoundError:
                    pass
        self._finalized = True

    def __enter__(self) -> "IndexedDatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()


class IndexedDatasetReader:
    """Memory-maps a shard written by :class:`IndexedDatasetWriter` or by megatron-core.

    ``len(reader)`` is the number of sequences (= documents for our shards); ``reader[i]`` is
    sequence ``i`` as a read-only ``np.ndarray`` view. Every structural inconsistency (bad magic,
    version, dtype code, truncated index, pointers that do not follow the sizes, a ``.bin`` whose
    size differs from what the index describes) raises :class:`ShardFormatError` naming the file.
    """

    def __init__(self, path_prefix: str | os.PathLike) -> None:
        self.path_prefix = os.fspath(path_prefix)
        idx_path, bin_path = _idx_path(self.path_prefix), _bin_path(self.path_prefix)
        for p in (idx_path, bin_path):
            if not os.path.exists(p):
                raise FileNotFoundError(f"shard file missing: {p}")
        idx_size = os.path.getsize(idx_path)
        if idx_size < _FIXED_HEADER_BYTES:
            raise ShardFormatError(
                f"{idx_path}: truncated index ({idx_size} bytes, the header alone is {_FIXED_HEADER_BYTES})")
        with open(idx_path, "rb") as f:
            head = f.read(_FIXED_HEADER_BYTES)
        if head[:9] != INDEX_HEADER:
            raise ShardFormatError(f"{idx_path}: not an MMIDIDX index (magic {head[:9]!r})")
        (version,) = struct.unpack_from("<Q", head, 9)
        if version != INDEX_VERSION:
            raise ShardFormatError(f"{idx_path}: unsupported index version {version}")
        (code,) = struct.unpack_from("<B", head, 17)
        if code not in _CODE_TO_DTYPE:
            raise ShardFormatError(f"{idx_path}: unknown dtype code {code}")
        self.dtype: np.dtype = _CODE_TO_DTYPE[code]
        n, d = struct.unpack_from("<QQ", head, 18)
        expected = _FIXED_HEADER_BYTES + 4 * n + 8 * n + 8 * d
        if idx_size != expected:
            raise ShardFormatError(
                f"{idx_path}: index is {idx_size} bytes but its header ({n} sequences, {d} document "
                f"boundaries) needs {expected}: truncated or corrupt")
        idx_map = np.memmap(idx_path, mode="r", dtype=np.uint8)
        off = _FIXED_HEADER_BYTES
        self.sizes: np.ndarray = np.frombuffer(idx_map, dtype=np.int32, count=n, offset=off)
        self.pointers: np.ndarray = np.frombuffer(idx_map, dtype=np.int64, count=n, offset=off + 4 * n)
        self.doc_idx: np.ndarray = np.frombuffer(idx_map, dtype=np.int64, count=d, offset=off + 12 * n)
        self._idx_map = idx_map

        itemsize = self.dtype.itemsize
        if n and (self.sizes < 0).any():
            raise ShardFormatError(f"{idx_path}: negative sequence size")
        expected_ptrs = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(self.sizes[:-1].astype(np.int64) * itemsize, out=expected_ptrs[1:])
        if n and not np.array_equal(expected_ptrs, self.pointers):
            raise ShardFormatError(f"{idx_path}: sequence pointers do not follow the sizes (corrupt index)")
        if d == 0 or self.doc_idx[0] != 0 or self.doc_idx[-1] != n or (np.diff(self.doc_idx) < 0).any():
            raise ShardFormatError(f"{idx_path}: document index is not a monotone 0..{n} boundary list")
        data_bytes = int(self.sizes.astype(np.int64).sum()) * itemsize
        bin_size = os.path.getsize(bin_path)
        if bin_size != data_bytes:
            raise ShardFormatError(
                f"{bin_path}: data file is {bin_size} bytes but {idx_path} describes {data_bytes} "
                f"bytes ({n} sequences of {self.dtype}): truncated or mismatched shard")
        # np.memmap refuses empty files; an empty shard simply has no data
        self._bin = (np.memmap(bin_path, mode="r", dtype=self.dtype) if bin_size
                     else np.zeros(0, dtype=self.dtype))

    def __len__(self) -> int:
        return int(self.sizes.size)

    @property
    def num_documents(self) -> int:
        return int(self.doc_idx.size) - 1

    @property
    def num_tokens(self) -> int:
        return int(self.sizes.astype(np.int64).sum())

    def __getitem__(self, i: int) -> np.ndarray:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sequence {i} out of range for {n} sequences")
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self._bin[start:start + int(self.sizes[i])]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]


# -- manifest ------------------------------------------------------------------------------
def write_manifest(shards_dir: str | os.PathLike, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` atomically (temp name + rename); returns its path."""
    path = os.path.join(os.fspath(shards_dir), MANIFEST_NAME)
    tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_manifest(shards_dir: str | os.PathLike) -> dict[str, Any]:
    """Load ``SHARDS_DIR/manifest.json``.

    Keys (written by ``pipeline.tokenize.WriteShards``): ``version``, ``dtype``, ``tokenizer``
    (``sha256``, ``vocab_size``, ``special_tokens`` name->id, ``eod_id``, ``pad_id``), ``shards``
    (list of ``{path, split, documents, tokens, sha256: {bin, idx}, tokens_per_source}`` where
    ``path`` is the prefix relative to ``shards_dir``), ``totals`` (``documents``/``tokens``
    overall, ``per_split`` and ``per_source``). Each shard also gets ``prefix``: the absolute
    path prefix to hand to :class:`IndexedDatasetReader` or megatron-core.
    """
    shards_dir = os.fspath(shards_dir)
    path = os.path.join(shards_dir, MANIFEST_NAME)
    with open(path, encoding="utf-8") as f:
        manifest = json.load(f)
    if manifest.get("version") != MANIFEST_VERSION or "shards" not in manifest:
        raise ShardFormatError(f"{path}: not a polyko shard manifest (version {manifest.get('version')!r})")
    for shard in manifest["shards"]:
        shard["prefix"] = os.path.join(os.path.abspath(shards_dir), shard["path"])
    return manifest


def shard_prefixes(shards_dir: str | os.PathLike, split: str | None = None) -> list[str]:
    """Absolute path prefixes of the manifest's shards (optionally one split), in manifest order."""
    return [s["prefix"] for s in read_manifest(shards_dir)["shards"] if split is None or s["split"] == split]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "IndexedDatasetWriter", "IndexedDatasetReader", "ShardFormatError", "read_manifest",
    "write_manifest", "shard_prefixes", "dtype_for_vocab", "file_sha256", "DTYPE_CODES",
    "INDEX_HEADER", "MANIFEST_NAME",
]
