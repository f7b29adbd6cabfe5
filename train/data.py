"""Packed, shuffled, mixed training samples from polyko token shards (GPT-NeoX / Megatron style).

Reads ONLY the shard format (``tokenizer.shards``: manifest + ``.bin``/``.idx``).

For every shard we build, once, three index arrays (as Megatron's ``GPTDataset`` does):

* ``doc_idx``: the shard's documents in a seeded random order, one permutation per epoch, as
  many epochs as the requested number of samples needs;
* ``sample_idx``: where each sample starts, as ``(position in doc_idx, token offset)``. Sample k
  covers global tokens ``[k*seq, (k+1)*seq + 1)`` of the concatenated documents, so samples
  cross document boundaries (the EOD token the tokenizer appends separates them) and
  consecutive samples overlap by the one token that is both the last label and the next input;
* ``shuffle_idx``: a seeded permutation of the samples.

Shards are then blended by weight: each shard's weight is the sum over its sources of
``source_weight * tokens_per_source`` from the manifest (source weights default to 1.0, i.e.
natural proportions). Mixing is exact per source when shards hold one source each, and per shard
otherwise. Blending places shard d's j-th sample at fractional position ``(j + 0.5) / frac_d``
and sorts: a deterministic low-discrepancy interleave, fully vectorised.

The global sample order depends only on (shards, seq length, sample count, weights, seed), not
on the number of data-parallel ranks, and step t's global batch is samples
``[t*G, (t+1)*G)``. Restarting at step t therefore neither replays nor skips data, even with a
different number of ranks.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenizer.shards import IndexedDatasetReader, read_manifest

INDEX_VERSION = 1


def _stable_seed(*parts) -> int:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def build_shard_indices(sizes: np.ndarray, seq_len: int, num_samples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """doc_idx, sample_idx [num_samples+1, 2], shuffle_idx for one shard (pure function)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    tokens_per_epoch = int(sizes.sum())
    if tokens_per_epoch <= 1:
        raise ValueError("shard has no tokens to sample from")
    rng = np.random.default_rng(seed)
    # +1: the last sample reads one token past its end (the label of its last position)
    num_epochs = math.ceil((num_samples * seq_len + 1) / tokens_per_epoch)
    doc_idx = np.concatenate([rng.permutation(sizes.size) for _ in range(num_epochs)]).astype(np.int64)
    ends = np.cumsum(sizes[doc_idx])                 # exclusive end position of each doc_idx entry
    starts = ends - sizes[doc_idx]
    positions = np.arange(num_samples + 1, dtype=np.int64) * seq_len
    where = np.searchsorted(ends, positions, side="right")   # first entry whose end is past pos
    sample_idx = np.stack([where, positions - starts[where]], axis=1).astype(np.int64)
    shuffle_idx = rng.permutation(num_samples).astype(np.int64)
    return doc_idx, sample_idx, shuffle_idx


def build_blend_indices(weights: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """(dataset_index, dataset_sample_index) for num_samples draws from datasets by weight."""
    weights = np.asarray(weights, dtype=np.float64)
    fracs = weights / weights.sum()
    per = [int(math.ceil(num_samples * f)) + 1 if f > 0 else 0 for f in fracs]
    ds = np.concatenate([np.full(n, d, dtype=np.int32) for d, n in enumerate(per)])
    js = np.concatenate([np.arange(n, dtype=np.int64) for n in per])
    pos = np.concatenate([(np.arange(n) + 0.5) / f for n, f in zip(per, fracs) if n])
    order = np.lexsort((ds, pos))[:num_samples]      # ties broken by dataset number: deterministic
    return ds[order], js[order]


@dataclass
class _Shard:
    reader: IndexedDatasetReader
    doc_idx: np.ndarray
    sample_idx: np.ndarray
    shuffle_idx: np.ndarray

    def sample(self, j: int, seq_len: int) -> np.ndarray:
        k = int(self.shuffle_idx[j])
        (d0, off0), (d1, off1) = self.sample_idx[k], self.sample_idx[k + 1]
        if d0 == d1:
            return np.asarray(self.reader[int(self.doc_idx[d0])][off0:off1 + 1], dtype=np.int64)
        parts = [self.reader[int(self.doc_idx[d0])][off0:]]
        parts += [self.reader[int(self.doc_idx[d])] for d in range(d0 + 1, d1)]
        parts.append(self.reader[int(self.doc_idx[d1])][:off1 + 1])
        out = np.concatenate(parts).astype(np.int64)
        assert out.size == seq_len + 1, (out.size, seq_len)
        return out


class PackedDataset:
    """``num_samples`` packed samples of ``seq_len + 1`` tokens from one split of a shard dir."""

    def __init__(self, shards_dir: str | os.PathLike, split: str, seq_len: int, num_samples: int,
                 seed: int, cache_dir: str | os.PathLike, source_weights: dict[str, float] | None = None,
                 build: bool = True):
        self.manifest = read_manifest(shards_dir)
        self.seq_len = int(seq_len)
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        source_weights = dict(source_weights or {})
        shards = [s for s in self.manifest["shards"] if s["split"] == split and int(s["tokens"]) > 1]
        if not shards:
            raise ValueError(f"{shards_dir}: no non-empty {split!r} shards in the manifest")
        unknown = set(source_weights) - {src for s in shards for src in s.get("tokens_per_source", {})}
        if unknown:
            raise ValueError(f"source_weights name sources absent from the {split} shards: {sorted(unknown)}")
        weights = []
        for s in shards:
            per_source = s.get("tokens_per_source") or {"": s["tokens"]}
            weights.append(sum(source_weights.get(src, 1.0) * n for src, n in per_source.items()))
        self.weights = np.asarray(weights, dtype=np.float64)
        if not (self.weights > 0).any():
            raise ValueError("all mixing weights are zero")
        # everything the indices depend on; the cache key is its hash
        self.fingerprint = {
            "version": INDEX_VERSION, "split": split, "seq_len": self.seq_len,
            "num_samples": self.num_samples, "seed": self.seed,
            "shards": [[s["path"], s.get("sha256", {}).get("bin"), s["tokens"]] for s in shards],
            "weights": [float(w) for w in self.weights],
        }
        key = hashlib.sha256(json.dumps(self.fingerprint, sort_keys=True).encode()).hexdigest()[:16]
        self.cache_dir = Path(cache_dir) / f"{split}-{key}"
        self.shard_specs = shards
        if build:
            self.build_indices()
        self._load()

    def build_indices(self) -> None:
        """Write the index files unless present (idempotent; call on one rank, then barrier)."""
        done = self.cache_dir / "done.json"
        if done.exists():
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        ds_index, ds_sample = build_blend_indices(self.weights, self.num_samples)
        _save_npy_atomic(self.cache_dir / "dataset_index.npy", ds_index)
        _save_npy_atomic(self.cache_dir / "dataset_sample_index.npy", ds_sample)
        counts = np.bincount(ds_index, minlength=len(self.shard_specs))
        for d, spec in enumerate(self.shard_specs):
            reader = IndexedDatasetReader(spec["prefix"])
            # +1 so a shard with no draws still has valid (tiny) indices
            n = int(counts[d]) + 1
            doc_idx, sample_idx, shuffle_idx = build_shard_indices(
                reader.sizes, self.seq_len, n, _stable_seed(self.seed, spec["path"]))
            _save_npy_atomic(self.cache_dir / f"{d:05d}_doc_idx.npy", doc_idx)
            _save_npy_atomic(self.cache_dir / f"{d:05d}_sample_idx.npy", sample_idx)
            _save_npy_atomic(self.cache_dir / f"{d:05d}_shuffle_idx.npy", shuffle_idx)
        tmp = done.with_name(f"done.json.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.fingerprint, indent=1))
        os.replace(tmp, done)

    def _load(self) -> None:
        if not (self.cache_dir / "done.json").exists():
            raise FileNotFoundError(f"data indices not built in {self.cache_dir}")
        load = lambda name: np.load(self.cache_dir / name, mmap_mode="r")  # noqa: E731
        self.dataset_index = load("dataset_index.npy")
        self.dataset_sample_index = load("dataset_sample_index.npy")
        self.shards = [
            _Shard(IndexedDatasetReader(spec["prefix"]), load(f"{d:05d}_doc_idx.npy"),
                   load(f"{d:05d}_sample_idx.npy"), load(f"{d:05d}_shuffle_idx.npy"))
            for d, spec in enumerate(self.shard_specs)
        ]

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, i: int) -> np.ndarray:
        if not 0 <= i < self.num_samples:
            raise IndexError(f"sample {i} out of range for {self.num_samples}")
        d = int(self.dataset_index[i])
        return self.shards[d].sample(int(self.dataset_sample_index[i]), self.seq_len)

    def batch(self, indices) -> np.ndarray:
        return np.stack([self[int(i)] for i in indices])


class DistributedBatches:
    """Micro-batches for one data-parallel rank, addressed by (step, micro step).

    Global step t uses samples [t*G, (t+1)*G) with G = micro * accumulation * world; within it,
    micro step m of rank r takes the slice starting at (m * world + r) * micro. The position is
    just the step number, which is what a checkpoint stores.
    """

    def __init__(self, dataset: PackedDataset, micro_batch_size: int, grad_accum: int,
                 rank: int = 0, world_size: int = 1):
        self.dataset = dataset
        self.micro = micro_batch_size
        self.accum = grad_accum
        self.rank = rank
        self.world = world_size
        self.global_batch = micro_batch_size * grad_accum * world_size

    @property
    def num_steps(self) -> int:
        return len(self.dataset) // self.global_batch

    def indices(self, step: int, micro_step: int) -> np.ndarray:
        start = step * self.global_batch + (micro_step * self.world + self.rank) * self.micro
        return np.arange(start, start + self.micro)

    def micro_batch(self, step: int, micro_step: int) -> np.ndarray:
        """int64 array [micro, seq_len + 1]."""
        return self.dataset.batch(self.indices(step, micro_step))

    def consumed_samples(self, steps_done: int) -> int:
        return steps_done * self.global_batch
