"""The ``tokenize`` stage: kept documents -> Megatron MMIDIDX shards + ``shards/manifest.json``.

``WriteShards(section, output_dir)`` over ``PCollection[Document]``:

1. ``Encode``: documents are buffered and encoded ``batch_size`` at a time, by tiktoken when it
   gives the tokenizer's exact ids, else ``Tokenizer.encode_batch_fast`` (``tokenize.encoder``,
   :func:`choose_backend`; the tokenizer
   is built once per worker in ``DoFn.setup`` from the JSON text carried in the DoFn, or for the
   packaged default from the worker's package after checking its sha256, so workers never need
   the file and the manifest's sha256 is exactly what encoded the data); the
   end-of-document id is appended; each document's split is decided by a hash of its id
   (``tokenize.validation_fraction``).
2. ``CountTokens``: total tokens per split, used as a side input to derive the number of shards
   per split, ``ceil(tokens / tokenize.shard_tokens)``. A document goes to shard
   ``floor(hash(id) * num_shards)``: shard contents depend only on the ids, the texts and the
   config, never on bundle boundaries or worker order. (A fixed hash-bucket count would need the
   user to guess the corpus size; the extra aggregation is a cheap sum.)
3. ``GroupByShard`` + ``WriteShard``: each shard's documents are sorted by id and streamed through
   :class:`tokenizer.shards.IndexedDatasetWriter` (temp names, renamed when complete), so the
   same input and config give byte-identical shards, and a retried worker rewrites the same
   bytes under the same name. A shard holds about ``shard_tokens`` tokens, which bounds the
   memory of one ``WriteShard`` call (2 bytes per token for uint16 plus ids).
4. ``WriteManifest``: one record per shard -> ``manifest.json`` (atomic); stale shard files of an
   earlier run and temp files of failed attempts are removed; the manifest summary is returned.

Counters (namespace ``polyko``): ``tokenize.docs``, ``tokenize.tokens`` (the issue's names) and
``tokenize.in``/``tokenize.kept``/``tokenize.bytes_in`` (the stats.json stage table).
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter, defaultdict
from typing import Any, Iterable

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from filters.base import Document
from pipeline.staging import StagingWriter, global_value, read_staged
from tokenizer.loading import default_tokenizer_bytes, describe, read_tokenizer_bytes, tokenizer_from_bytes
from tokenizer.shards import (
    IndexedDatasetWriter, MANIFEST_VERSION, dtype_for_vocab, file_sha256, write_manifest,
)
from tokenizer.train import id_fraction

NAMESPACE = "polyko"
SHARDS_SUBDIR = "shards"
TRAIN, VALIDATION = "train", "validation"
_SHARD_NAME = re.compile(r"^(train|validation)-\d{5}\.(bin|idx)$")

# keys of the tokenize section recorded in the manifest (defaults live in configs/default.yaml)
RECORDED_KEYS = ("batch_size", "shard_tokens", "validation_fraction")

# tokenize.encoder values; the backends are the libraries' distribution names
AUTO, TIKTOKEN, TOKENIZERS = "auto", "tiktoken", "tokenizers"
BACKENDS = (TIKTOKEN, TOKENIZERS)


def split_of(doc_id: str, validation_fraction: float) -> str:
    """Train/validation by a hash of the id: stable across reruns, corpus growth and configs."""
    return VALIDATION if id_fraction(doc_id, "polyko-split") < validation_fraction else TRAIN


def shard_of(doc_id: str, num_shards: int) -> int:
    return min(int(id_fraction(doc_id, "polyko-shard") * num_shards), num_shards - 1)


def num_shards_for(total_tokens: int, shard_tokens: int) -> int:
    return max(1, math.ceil(total_tokens / max(1, shard_tokens)))


@functools.lru_cache(maxsize=1)
def _default_tokenizer_sha256() -> str:
    return hashlib.sha256(default_tokenizer_bytes()).hexdigest()


class DocumentEncoder:
    """The encode path, runner-free: ``encode(docs)`` -> ``[(split, id, source, token_bytes)]``.

    ``token_bytes`` is the document's ids plus the end-of-document id as raw ``dtype`` bytes
    (compact to shuffle: 2 bytes a token for uint16 instead of a pickled list of ints).
    ``backend`` is ``"tiktoken"`` (:mod:`tokenizer.fast_encode`: the same ids for a byte-level
    BPE file, ~3x less CPU) or ``"tokenizers"``; :func:`choose_backend` picks it.
    """

    def __init__(self, tokenizer_json: bytes, eod_id: int, dtype: str, validation_fraction: float,
                 backend: str = TOKENIZERS) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown encoder backend {backend!r}; expected one of {BACKENDS}")
        self.tokenizer_json = tokenizer_json
        self.eod_id = eod_id
        self.dtype = np.dtype(dtype)
        self.validation_fraction = validation_fraction
        self.backend = backend
        self.tokenizer = None

    def setup(self) -> None:
        if self.tokenizer is None:
            if self.backend == TIKTOKEN:
                from tokenizer.fast_encode import TiktokenEncoder

                self.tokenizer = TiktokenEncoder(self.tokenizer_json)
            else:
                self.tokenizer = tokenizer_from_bytes(self.tokenizer_json)

    # Beam pickles this encoder into the Encode step and compresses the step with bz2, and every
    # worker unpickles it once per bundle processor: the 1.3 MB tokenizer JSON cost ~0.15 CPU-s
    # each time, ~1.5 CPU-s a run.  The packaged default travels as its name and checksum (the
    # workers have the package), any other tokenizer zlib-compressed.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["tokenizer"] = None
        data = state.pop("tokenizer_json")
        sha = hashlib.sha256(data).hexdigest()
        state["_tokenizer"] = (("package", sha) if sha == _default_tokenizer_sha256()
                               else ("zlib", zlib.compress(data, 6)))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        kind, value = state.pop("_tokenizer")
        if kind == "zlib":
            state["tokenizer_json"] = zlib.decompress(value)
        else:
            if _default_tokenizer_sha256() != value:   # hashed once per process, not per unpickle
                raise RuntimeError("this worker's polyko package has another default tokenizer than "
                                   "the one the pipeline was built with: install the same polyko version")
            state["tokenizer_json"] = default_tokenizer_bytes()
        self.__dict__.update(state)

    def encode(self, docs: list[Document]) -> list[tuple[str, str, str, bytes]]:
        self.setup()
        eod = np.array([self.eod_id], dtype=self.dtype)
        if self.backend == TIKTOKEN:
            encode = self.tokenizer.encode
            token_ids: Iterable[Any] = (encode(d.text) for d in docs)
        else:
            # encode_batch_fast: the same ids without character offsets (~20% less CPU, tested equal)
            token_ids = (enc.ids for enc in
                         self.tokenizer.encode_batch_fast([d.text for d in docs], add_special_tokens=False))
        out = []
        for d, ids in zip(docs, token_ids):
            out.append((split_of(d.id, self.validation_fraction), d.id, d.source,
                        np.concatenate([np.asarray(ids, dtype=self.dtype), eod]).tobytes()))
        return out


def choose_backend(tokenizer_json: bytes, requested: str) -> str:
    """The encoder backend for ``tokenize.encoder``: ``auto`` is tiktoken whenever it gives the
    same ids as `tokenizers` for this file (:func:`tokenizer.fast_encode.fast_encoder_status`),
    ``tiktoken`` insists on it (an error says why it cannot), ``tokenizers`` never uses it."""
    from tokenizer.fast_encode import fast_encoder_status

    if requested == TOKENIZERS:
        return TOKENIZERS
    if requested not in (AUTO, TIKTOKEN):
        raise ValueError(f"tokenize.encoder must be one of auto, tiktoken, tokenizers; got {requested!r}")
    why_not = fast_encoder_status(tokenizer_json)
    if why_not is None:
        return TIKTOKEN
    if requested == TIKTOKEN:
        raise ValueError(f"tokenize.encoder=tiktoken cannot encode with this tokenizer: {why_not}")
    return TOKENIZERS


def backend_version(backend: str) -> str:
    from importlib.metadata import version

    return f"{backend} {version(backend)}"


class EncodeDocsFn(beam.DoFn):
    """Buffers documents and encodes them ``batch_size`` at a time with the encoder's backend
    (``tokenizers``' ``encode_batch_fast`` runs the batch on its native threads)."""

    def __init__(self, encoder: DocumentEncoder, batch_size: int) -> None:
        self.encoder = encoder
        self.batch_size = max(1, batch_size)
        self.docs = Metrics.counter(NAMESPACE, "tokenize.docs")
        self.tokens = Metrics.counter(NAMESPACE, "tokenize.tokens")
        self.n_in = Metrics.counter(NAMESPACE, "tokenize.in")
        self.n_kept = Metrics.counter(NAMESPACE, "tokenize.kept")
        self.bytes_in = Metrics.counter(NAMESPACE, "tokenize.bytes_in")

    def setup(self) -> None:
        self.encoder.setup()

    def start_bundle(self) -> None:
        self._buffer: list[Document] = []

    def process(self, doc: Document):
        self._buffer.append(doc)
        if len(self._buffer) >= self.batch_size:
            yield from self._flush()

    def finish_bundle(self):
        for item in self._flush():
            yield beam.transforms.window.GlobalWindows.windowed_value(item)

    def _flush(self):
        if not self._buffer:
            return
        docs, self._buffer = self._buffer, []
        encoded = self.encoder.encode(docs)
        n_tokens = sum(len(e[3]) for e in encoded) // self.encoder.dtype.itemsize
        self.docs.inc(len(docs))
        self.n_in.inc(len(docs))
        self.n_kept.inc(len(docs))
        self.tokens.inc(n_tokens)
        self.bytes_in.inc(sum(len(d.text.encode("utf-8")) for d in docs))
        yield from encoded


# -- file placement: local paths directly, other filesystems (gs://) through Beam --------------
def _is_local(path: str) -> bool:
    return "://" not in path


def _join(base: str, *parts: str) -> str:
    if _is_local(base):
        return os.path.join(base, *parts)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.join(base, *parts)


def _publish(local_file: str, dest: str) -> None:
    """Copy a finished local file to a remote destination under a temp name, then rename."""
    from apache_beam.io.filesystems import FileSystems

    tmp = f"{dest}.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    with open(local_file, "rb") as src, FileSystems.create(tmp) as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
    if FileSystems.exists(dest):
        FileSystems.delete([dest])
    FileSystems.rename([tmp], [dest])


def write_shard(key: tuple[str, int], values: Iterable[tuple[str, str, bytes]], shards_dir: str,
                dtype: str) -> dict[str, Any]:
    """Write one shard (documents sorted by id) and return its manifest record."""
    split, index = key
    name = f"{split}-{index:05d}"
    np_dtype = np.dtype(dtype)
    items = sorted(values)  # (id, source, token bytes): total order, so reruns are byte-identical
    per_source: Counter[str] = Counter()
    docs_per_source: Counter[str] = Counter()
    local_dir = shards_dir if _is_local(shards_dir) else tempfile.mkdtemp(prefix="polyko-shard-")
    prefix = os.path.join(local_dir, name)
    with IndexedDatasetWriter(prefix, np_dtype) as writer:
        for _doc_id, source, token_bytes in items:
            tokens = np.frombuffer(token_bytes, dtype=np_dtype)
            writer.add_document(tokens)
            per_source[source] += int(tokens.size)
            docs_per_source[source] += 1
        n_docs, n_tokens = writer.num_documents, writer.num_tokens
    record = {
        "path": name, "split": split, "documents": n_docs, "tokens": n_tokens,
        "sha256": {"bin": file_sha256(prefix + ".bin"), "idx": file_sha256(prefix + ".idx")},
        "tokens_per_source": dict(sorted(per_source.items())),
        "documents_per_source": dict(sorted(docs_per_source.items())),
    }
    if not _is_local(shards_dir):
        for ext in (".bin", ".idx"):
            _publish(prefix + ext, _join(shards_dir, name + ext))
        shutil.rmtree(local_dir, ignore_errors=True)
    return record


def build_manifest(records: list[dict[str, Any]], tokenizer_info: dict[str, Any], dtype: str,
                   section: dict[str, Any], encoder: str) -> dict[str, Any]:
    records = sorted(records, key=lambda r: (r["split"] != TRAIN, r["split"], r["path"]))
    per_split: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "tokens": 0, "shards": 0})
    per_source: dict[str, dict[str, int]] = defaultdict(lambda: {"documents": 0, "tokens": 0})
    per_split_source: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"documents": 0, "tokens": 0}))
    for r in records:
        ps = per_split[r["split"]]
        ps["documents"] += r["documents"]
        ps["tokens"] += r["tokens"]
        ps["shards"] += 1
        for src, toks in r["tokens_per_source"].items():
            docs = r["documents_per_source"].get(src, 0)
            per_source[src]["tokens"] += toks
            per_source[src]["documents"] += docs
            per_split_source[r["split"]][src]["tokens"] += toks
            per_split_source[r["split"]][src]["documents"] += docs
    return {
        "version": MANIFEST_VERSION,
        "format": "megatron-mmidx",
        "dtype": dtype,
        "documents_end_with_eod": True,
        "tokenizer": tokenizer_info,
        "config": {k: section[k] for k in RECORDED_KEYS},
        # the library that turned text into ids ("tiktoken 0.14.0"): the same ids either way
        # (tokenizer/fast_encode.py), recorded so a difference could be traced to it
        "encoder": encoder,
        "shards": records,
        "totals": {
            "shards": len(records),
            "documents": sum(r["documents"] for r in records),
            "tokens": sum(r["tokens"] for r in records),
            "per_split": {k: dict(v) for k, v in sorted(per_split.items())},
            "per_source": {k: dict(v) for k, v in sorted(per_source.items())},
            "per_split_source": {s: {k: dict(v) for k, v in sorted(d.items())}
                                 for s, d in sorted(per_split_source.items())},
        },
    }


def finish_manifest(records: list[dict[str, Any]], shards_dir: str, tokenizer_info: dict[str, Any],
                    dtype: str, section: dict[str, Any], encoder: str) -> dict[str, Any]:
    """Write manifest.json, remove files that are not part of this shard set, return a summary."""
    manifest = build_manifest(records, tokenizer_info, dtype, section, encoder)
    wanted = {r["path"] + ext for r in manifest["shards"] for ext in (".bin", ".idx")}
    if _is_local(shards_dir):
        os.makedirs(shards_dir, exist_ok=True)
        for name in os.listdir(shards_dir):
            stale_shard = _SHARD_NAME.match(name) and name not in wanted
            if stale_shard or ".tmp-" in name:
                os.remove(os.path.join(shards_dir, name))
        write_manifest(shards_dir, manifest)
    else:
        import json

        from apache_beam.io.filesystems import FileSystems

        dest = _join(shards_dir, "manifest.json")
        with FileSystems.create(dest + ".tmp") as f:
            f.write(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"))
        if FileSystems.exists(dest):
            FileSystems.delete([dest])
        FileSystems.rename([dest + ".tmp"], [dest])
    summary = {k: v for k, v in manifest.items() if k != "shards"}
    summary["manifest"] = _join(SHARDS_SUBDIR, "manifest.json")
    summary["shards"] = [{k: r[k] for k in ("path", "split", "documents", "tokens")} for r in manifest["shards"]]
    return summary


class _StageTokens(beam.DoFn):
    """Encoded documents → one staging file per bundle; emits ``(path, {split: tokens})``."""

    def __init__(self, staging_dir: str, itemsize: int) -> None:
        self.staging_dir = staging_dir
        self.itemsize = itemsize

    def start_bundle(self) -> None:
        self._writer = StagingWriter(self.staging_dir)
        self._tokens: Counter[str] = Counter()

    def process(self, encoded):
        self._writer.write(encoded)
        self._tokens[encoded[0]] += len(encoded[3]) // self.itemsize
        return ()

    def finish_bundle(self):
        path = self._writer.close()
        if path:
            yield global_value((path, dict(self._tokens)))


class _BucketByShard(beam.DoFn):
    """One staging file of encoded documents → one bucket file per shard it feeds; emits
    ``((split, shard), bucket path)``.  Each ``WriteShard`` then reads only its own buckets."""

    def __init__(self, staging_dir: str, shard_tokens: int) -> None:
        self.staging_dir = staging_dir
        self.shard_tokens = shard_tokens

    def process(self, staged, totals):
        path, _ = staged
        writers: dict[tuple[str, int], StagingWriter] = {}
        for split, doc_id, source, token_bytes in read_staged(path):
            key = (split, shard_of(doc_id, num_shards_for(totals[split], self.shard_tokens)))
            writer = writers.get(key)
            if writer is None:
                writer = writers[key] = StagingWriter(self.staging_dir, f"-{split}-{key[1]:05d}")
            writer.write((doc_id, source, token_bytes))
        for key, writer in sorted(writers.items()):
            yield key, writer.close()


def _staged_values(paths: Iterable[str]):
    for path in paths:
        yield from read_staged(path)


class WriteShards(beam.PTransform):
    """Kept ``PCollection[Document]`` -> ``output_dir/shards/``; returns ``PCollection[dict]``
    holding one manifest summary (merged into ``stats.json["shards"]``).

    ``staging_dir`` (local runners, see ``pipeline.staging``): encoded documents wait on disk
    while the token totals are summed, and reach their shard through per-shard bucket files, so
    only file names go through the runner's in-memory shuffle (same shards, byte for byte).
    """

    def __init__(self, section: dict[str, Any], output_dir: str, staging_dir: str | None = None) -> None:
        super().__init__()
        self.staging_dir = staging_dir
        from pipeline.config import load_defaults

        # a partial section (tests, library callers) gets the packaged defaults for the rest
        self.section = {**load_defaults()["tokenize"], **dict(section)}
        self.output_dir = str(output_dir)
        data, where = read_tokenizer_bytes(self.section.get("tokenizer_file"))
        self.info = describe(data, where)
        self.tokenizer_json = data
        self.dtype = dtype_for_vocab(self.info.vocab_size).name
        self.batch_size = int(self.section["batch_size"])
        self.shard_tokens = int(self.section["shard_tokens"])
        self.validation_fraction = float(self.section["validation_fraction"])
        self.backend = choose_backend(data, str(self.section["encoder"]))
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"tokenize.validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.shard_tokens < 1:
            raise ValueError(f"tokenize.shard_tokens must be >= 1, got {self.shard_tokens}")

    def expand(self, docs):
        shards_dir = _join(self.output_dir, SHARDS_SUBDIR)
        encoder = DocumentEncoder(self.tokenizer_json, self.info.eod_id, self.dtype, self.validation_fraction,
                                  self.backend)
        itemsize = np.dtype(self.dtype).itemsize
        shard_tokens, dtype = self.shard_tokens, self.dtype

        encoded = docs | "Encode" >> beam.ParDo(EncodeDocsFn(encoder, self.batch_size))
        if self.staging_dir:
            staged = encoded | "StageTokens" >> beam.ParDo(_StageTokens(self.staging_dir, itemsize))
            totals = (staged
                      | "SplitTokens" >> beam.FlatMap(lambda pc: pc[1].items())
                      | "CountTokens" >> beam.CombinePerKey(sum))
            records = (
                staged
                | "AssignShard" >> beam.ParDo(_BucketByShard(self.staging_dir, shard_tokens),
                                              totals=beam.pvalue.AsDict(totals))
                | "GroupByShard" >> beam.GroupByKey()
                | "WriteShard" >> beam.Map(lambda kv, d, t: write_shard(kv[0], _staged_values(kv[1]), d, t),
                                           shards_dir, dtype))
            return self._manifest(records, shards_dir)
        tokens_per_split = (
            encoded
            | "SplitTokens" >> beam.Map(lambda e: (e[0], len(e[3]) // itemsize))
            | "CountTokens" >> beam.CombinePerKey(sum))

        def assign(e, totals):
            split, doc_id, source, token_bytes = e
            n = num_shards_for(totals[split], shard_tokens)
            return (split, shard_of(doc_id, n)), (doc_id, source, token_bytes)

        records = (
            encoded
            | "AssignShard" >> beam.Map(assign, totals=beam.pvalue.AsDict(tokens_per_split))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.Map(lambda kv, d, t: write_shard(kv[0], kv[1], d, t), shards_dir, dtype))
        return self._manifest(records, shards_dir)

    def _manifest(self, records, shards_dir):
        return (
            records
            | "CollectShards" >> beam.combiners.ToList()
            | "WriteManifest" >> beam.Map(finish_manifest, shards_dir=shards_dir, tokenizer_info=self.info.to_dict(),
                                          dtype=self.dtype, section=self.section,
                                          encoder=backend_version(self.backend)))
