"""In-memory reference of the whole dedup stage (exact + MinHash LSH + union-find).

Same decisions as ``pipeline.dedup.Dedup`` (same keys, signatures, buckets, caps and survivor
order) but with a union-find instead of distributed star rounds.  Used by the tests (the Beam
graph must agree with it) and by ``bench/eval_dedup.py`` to sweep shingle settings quickly.
Everything is held in memory: not for production-size inputs.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from filters.base import Document

from .components import UnionFind, capped_members, node_key, verified_bucket_star
from .minhash import MinHasher, MinHashParams, bbit_jaccard, bbit_sketch, exact_key


@dataclass
class DedupResult:
    kept: list[Document]
    rejected: list[dict]
    candidate_pairs: set = field(default_factory=set)  # LSH star edges (node, node)


def dedup_in_memory(docs: Iterable[Document], section: dict) -> DedupResult:
    docs = list(docs)
    # exact: group by normalised-text hash; survivor = smallest node key
    exact_survivor: dict[str, Document] = {}
    survivors: list[Document] = []
    if section.get("exact", True):
        groups: dict[bytes, list[Document]] = defaultdict(list)
        for d in docs:
            groups[exact_key(d.text)].append(d)
        for members in groups.values():
            best = min(members, key=lambda d: node_key(d.id, d.text))
            survivors.append(best)
            for d in members:
                if d is not best:
                    exact_survivor[d.id] = best
    else:
        survivors = docs

    final_of: dict[str, str] = {}  # near-removed id -> survivor id
    pairs: set = set()
    if section.get("near", True):
        params = MinHashParams.from_section(section["minhash"])
        hasher = MinHasher(params)
        shingles = [hasher.shingles(d.text) for d in survivors]
        sigs = hasher.signatures(shingles)
        buckets: dict[bytes, list] = defaultdict(list)
        for d, sh, sig in zip(survivors, shingles, sigs):
            if len(sh) == 0:
                continue
            sketch = bbit_sketch(sig)
            for key in hasher.band_keys(sig):
                buckets[key].append((node_key(d.id, d.text), sketch))
        uf = UnionFind()
        cap = int(section["max_bucket_size"])
        for key, members in buckets.items():
            if len(members) < 2:
                continue
            kept, _ = capped_members(members, cap, key, node_of=lambda x: x[0])
            edges, _ = verified_bucket_star(kept, params.verify_threshold, bbit_jaccard)
            for v, m in edges:
                pairs.add((v, m))
                uf.union(v, m)
        for comp in uf.components():
            centre = min(comp)
            for node in comp:
                if node != centre:
                    final_of[node[1]] = centre[1]

    kept, rejected = [], []
    for d in survivors:
        if d.id in final_of:
            rejected.append(d.to_record() | {"stage": "dedup", "reason": "near", "duplicate_of": final_of[d.id]})
        else:
            kept.append(d)
    for d in docs:
        if d.id in exact_survivor:
            s = exact_survivor[d.id].id
            rejected.append(d.to_record() | {"stage": "dedup", "reason": "exact",
                                             "duplicate_of": final_of.get(s, s)})
    return DedupResult(kept, rejected, pairs)
