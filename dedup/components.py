"""Connected components by alternating large-star / small-star rounds, as pure per-node functions.

Kiveris et al., "Connected Components in MapReduce and Beyond" (SoCC 2014).  Each round sees one
node ``u`` with its neighbour list (what a ``GroupByKey`` on the node yields) and emits new edges:

* large-star: ``m = min(N(u) + {u})``; link every *larger* neighbour ``v > u`` to ``m``.
* small-star: ``m = min({v in N(u): v <= u} + {u})``; link ``u`` and its smaller neighbours to ``m``.

Both keep each component connected and its minimum fixed, and together they turn every component
into a star centred on its minimum in O(log n) rounds.  Node order is the survivor order
(``node_key``), so a converged component's centre *is* its survivor.

Nothing here imports Beam: ``pipeline/dedup.py`` calls these functions inside DoFns, and
``run_star_rounds`` runs the same rounds in memory for tests and the evaluation.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Iterable, Iterator, Sequence

Node = tuple  # (-len(text), id): smallest = longest text, ties -> smallest id
Edge = tuple


def node_key(doc_id: str, text: str) -> Node:
    """Survivor order: the longest text wins, ties broken by the smallest id (deterministic)."""
    return (-len(text), doc_id)


def node_id(node: Node) -> str:
    return node[1]


def large_star(u: Node, neighbours: Iterable[Node]) -> Iterator[Edge]:
    nbrs = set(neighbours)
    nbrs.discard(u)
    if not nbrs:
        return
    m = min(min(nbrs), u)
    for v in nbrs:
        if v > u and v != m:
            yield (v, m)


def small_star(u: Node, neighbours: Iterable[Node]) -> Iterator[Edge]:
    smaller = {v for v in neighbours if v < u}
    if not smaller:
        return
    m = min(smaller)
    yield (u, m)
    for v in smaller:
        if v != m:
            yield (v, m)


def converged_check(u: Node, neighbours: Iterable[Node]) -> tuple[bool, Node]:
    """Whether ``u`` sits in a finished star, and its label (smallest neighbour or itself).

    A graph is a forest of stars centred on their minima iff no node has two different smaller
    neighbours and no node has both a smaller and a larger neighbour.  Both conditions are local.
    """
    nbrs = set(neighbours)
    nbrs.discard(u)
    smaller = [v for v in nbrs if v < u]
    larger = any(v > u for v in nbrs)
    label = min(smaller) if smaller else u
    ok = len(smaller) <= 1 and not (smaller and larger)
    return ok, label


def _adjacency(edges: Iterable[Edge]) -> dict:
    adj: dict = defaultdict(list)
    for a, b in edges:
        if a == b:
            continue
        adj[a].append(b)
        adj[b].append(a)
    return adj


def star_round(edges: Iterable[Edge]) -> list[Edge]:
    """One large-star step followed by one small-star step, in memory."""
    large = [e for u, n in _adjacency(edges).items() for e in large_star(u, n)]
    return [e for u, n in _adjacency(large).items() for e in small_star(u, n)]


def run_star_rounds(edges: Iterable[Edge], max_rounds: int) -> tuple[dict, int]:
    """In-memory twin of the Beam graph: ``(label per node, number of unconverged nodes)``.

    Labels map every node that has an edge to its component centre (itself for the centre).
    """
    edges = list(edges)
    for _ in range(max_rounds):
        edges = star_round(edges)
    labels = {}
    unconverged = 0
    for u, n in _adjacency(edges).items():
        ok, label = converged_check(u, n)
        labels[u] = label
        unconverged += not ok
    return labels, unconverged


class UnionFind:
    """Connected components by union-find (path halving + union by size).

    The reference for tests and the evaluation, and the local runner's components step
    (``pipeline.dedup.InMemoryComponents``): forests built from parts of the edges ``merge`` into
    the forest of all of them, and ``labels`` names each component by its smallest node, the
    centre the star rounds converge to.
    """

    def __init__(self) -> None:
        self.parent: dict = {}
        self.size: dict = {}

    def __len__(self) -> int:
        return len(self.parent)

    def find(self, x: Hashable) -> Hashable:
        self.parent.setdefault(x, x)
        self.size.setdefault(x, 1)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: Hashable, b: Hashable) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def merge(self, other: "UnionFind") -> None:
        """Add every edge ``other`` was built from (each of its nodes is linked to its parent)."""
        for x, parent in other.parent.items():
            self.union(x, parent)

    def components(self) -> list[set]:
        groups: dict = defaultdict(set)
        for x in self.parent:
            groups[self.find(x)].add(x)
        return list(groups.values())

    def labels(self) -> dict:
        """``{node: centre}`` for every node that is not its component's smallest node."""
        centre: dict = {}
        for x in self.parent:
            root = self.find(x)
            c = centre.get(root)
            if c is None or x < c:
                centre[root] = x
        out = {}
        for x in self.parent:
            c = centre[self.find(x)]
            if x != c:
                out[x] = c
        return out


def components_by_label(labels: dict) -> list[set]:
    groups: dict = defaultdict(set)
    for node, label in labels.items():
        groups[label].add(node)
    return list(groups.values())


def verified_bucket_star(members: Sequence[tuple], threshold: float, estimate) -> tuple[list[Edge], int]:
    """Star edges of a bucket of ``(node, sketch)`` members, keeping only the pairs whose estimated
    Jaccard (``estimate(sketch_v, sketch_m)``) reaches ``threshold``.

    Sharing one band only says "probably similar": a pair at J = 0.6 still collides in one of 14
    bands 13 % of the time with 14 x 9 banding.  Checking the pair's own sketches stops such
    pairs (and the transitive chains they start) from removing documents.  Returns
    ``(edges, number of candidate pairs rejected)``.
    """
    if len(members) < 2:
        return [], 0
    m_node, m_sketch = min(members, key=lambda x: x[0])
    edges, rejected = [], 0
    for node, sketch in members:
        if node == m_node:
            continue
        if estimate(sketch, m_sketch) >= threshold:
            edges.append((node, m_node))
        else:
            rejected += 1
    return edges, rejected


def bucket_star(members: Sequence[Node]) -> list[Edge]:
    """Edges of one LSH bucket: every member to the bucket's smallest member (a star, not all pairs)."""
    if len(members) < 2:
        return []
    m = min(members)
    return [(v, m) for v in members if v != m]


def capped_members(members: Iterable, cap: int, salt: bytes, node_of=lambda m: m) -> tuple[list, int]:
    """At most ``cap`` members of a bucket, chosen independently of arrival order.

    Keeps the ``cap`` members with the smallest salted hash of their id (one pass, O(cap) memory),
    so every runner and worker count picks the same subset.  Salting with the band key makes a
    document that is left out of one giant bucket likely to be kept in its other bands' buckets.
    ``node_of`` maps a member to its node when members carry more (e.g. ``(node, sketch)``).
    Returns ``(kept members, total bucket size)``.
    """
    import hashlib
    import heapq

    heap: list = []  # max-heap on hash via negation
    total = 0
    for member in members:
        total += 1
        node = node_of(member)
        h = int.from_bytes(hashlib.blake2b(salt + node[1].encode("utf-8"), digest_size=8).digest(), "big")
        item = (-h, node, member)
        if len(heap) < cap:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [member for _, _, member in heap], total
