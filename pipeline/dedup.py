"""The dedup stage as a Beam graph: fingerprints, exact hash groups, MinHash LSH buckets,
connected components (distributed large-star / small-star rounds, or one union-find on the local
runner), one join of the documents with their verdicts, audit and stats.

    docs ─┬─ Fingerprints (512 at a time): (exact key, (node, 8-bit sketch, band keys)) per document
          │            └─ ExactGroup (GBK) ─ ExactSurvivor ─┬─ survivors ─ Bands ─ BandGroup (GBK)
          │                                                 │    ─ BucketEdges (verified star, capped)
          │                                                 │    ─ DistinctEdges ─ CC/Round00..NN ─ CC/Converge
          │                                                 │                      (local runner: CC/UnionFind)
          │                                                 │                         │ near labels
          │                                                 └─ exact dups ─ FinalSurvivor (CoGBK) ─ verdicts
          └─ DocById ──────────────────────────────────────────────────────► JoinById (CoGBK) ─ Resolve
                                                                  kept / rejected (duplicate_of = final survivor)
                                                                  stats: clusters, audit, caps → one dict

The documents themselves cross one shuffle (``JoinById``; on a local runner they wait in
staging files and meet their verdicts as a side input instead, ``ResolveStaged``): everything
else moves only the fixed-size fingerprints computed next to the quality stage, so exact and near
dedup cost the runner a few hundred bytes per document, not the text (docs/benchmarks.md).  Apart
from the local runner's union-find (that runner holds every shuffle in memory anyway), no step
gathers all edges or signatures in one place: every grouping is keyed by a document, a band key
or an edge; the only global combines are bounded (counts, a size histogram, the top-k clusters, a
fixed-size audit sample).  The per-node logic lives in ``dedup.components``.
"""
from __future__ import annotations

import functools
import heapq
from collections import Counter
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from dedup.band_filter import BandBits
from dedup.components import (UnionFind, capped_members, converged_check, large_star, node_key,
                              small_star, verified_bucket_star)
from dedup.minhash import (MinHasher, MinHashParams, bbit_jaccard, bbit_sketch, exact_key, jaccard,
                           shingle_hashes, stable_hash64)
from filters.base import Document
from pipeline.staging import StageRecords, global_value, read_staged
from pipeline.stages import BundleCounters, text_bytes

NS = "polyko"
EXCERPT_CHARS = 120
CLUSTER_MEMBERS_SHOWN = 5


@functools.lru_cache(maxsize=None)
def _counter(name: str):
    # Beam's counter objects resolve the current bundle's metrics container on every inc(), so
    # one object per name serves every bundle and thread; creating one per document cost ~2 %
    # of the workers' time at 30k documents (py-spy)
    return Metrics.counter(NS, name)


# ---------------------------------------------------------------- fingerprints and exact groups

class _Fingerprints(beam.DoFn):
    """Documents → ``(exact key, (node, 8-bit sketch, band keys))`` per document.

    Everything dedup needs from the text, computed once where the text already is; the DoFn
    buffers ``BATCH`` documents so that their MinHash signatures are one matrix (a fixed size, as
    ``bench.stage_kernels`` measures it: ``beam.BatchElements`` re-fitted its batch size by least
    squares as it went, ~0.7 CPU-s of a 100k-document run by py-spy).  A document without
    shingles gets no band keys (it can still be an exact duplicate).  Counts ``dedup.in`` and
    ``dedup.bytes_in``.
    """

    BATCH = 512

    def __init__(self, params: MinHashParams, near: bool):
        self.params = params
        self.near = near
        # built here, in the graph-building process, and pickled with the DoFn: the workers get
        # the permutation parameters without importing datasketch and scipy
        self.hasher = MinHasher(params)

    def setup(self):
        self._counters = BundleCounters()

    def start_bundle(self):
        self._batch: list[Document] = []
        self._counters.start()

    def finish_bundle(self):
        for fingerprint in self._fingerprints():
            yield global_value(fingerprint)
        self._counters.flush()

    def process(self, doc: Document):
        self._counters.inc("dedup.in")
        self._counters.inc("dedup.bytes_in", text_bytes(doc.text))
        self._batch.append(doc)
        if len(self._batch) >= self.BATCH:
            yield from self._fingerprints()

    def _fingerprints(self):
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.near:
            shingles = [self.hasher.shingles(d.text) for d in batch]
            sigs = self.hasher.signatures(shingles)
        for i, d in enumerate(batch):
            sketch, bands = b"", ()
            if self.near:
                if len(shingles[i]):
                    sketch, bands = bbit_sketch(sigs[i]), tuple(self.hasher.band_keys(sigs[i]))
                else:
                    self._counters.inc("dedup.count.no_shingles")
            yield exact_key(d.text), (node_key(d.id, d.text), sketch, bands)


class _ExactSurvivor(beam.DoFn):
    """One exact-hash group of fingerprints → the survivor's fingerprint (main output) and
    ``(survivor id, duplicate id)`` for the others."""

    DUPS = "exact_dups"

    def process(self, element):
        _, members = element
        # two streaming passes over the grouped values (Beam's GBK results are re-iterable), so a
        # hot key -- a million copies of "굿" -- is never held in memory as a list
        best = min(m[0] for m in members)
        emitted = False
        for m in members:
            if not emitted and m[0] == best:
                emitted = True
                yield m
            else:
                yield beam.pvalue.TaggedOutput(self.DUPS, (best[1], m[0][1]))


class _SurvivorBandBits(beam.DoFn):
    """Exact survivors' fingerprints → one ``BandBits`` of their band keys per bundle.

    Built from the survivors, not from every document: an exact copy repeats all 14 band keys of
    its survivor, so a bitmap over every document let each key of a copied document through as
    "seen twice" into a bucket of one survivor (at 100k documents 124k of the 214k buckets).  The
    survivors cross one more step boundary for it (the side input must be complete before the
    first band is checked): 60k elements at 100k documents, against the 124k buckets removed.
    """

    FLUSH_KEYS = 8192

    def __init__(self, bits: int):
        self.bits = bits

    def start_bundle(self):
        self._bits = None
        self._keys: list[bytes] = []

    def process(self, fingerprint):
        bands = fingerprint[2]
        if bands:
            self._keys += bands
            if len(self._keys) >= self.FLUSH_KEYS:
                self._add()
        return ()

    def _add(self):
        if self._keys:
            if self._bits is None:
                self._bits = BandBits(self.bits)
            self._bits.add(self._keys)
            self._keys = []

    def finish_bundle(self):
        self._add()
        if self._bits is not None:
            yield global_value(self._bits)
        self._bits = None


class _MergeBandBits(beam.CombineFn):
    """Per-bundle ``BandBits`` → one (an all-empty bitmap when there were no documents)."""

    def __init__(self, bits: int):
        self.bits = bits

    def create_accumulator(self):
        return None  # allocated on first input: most accumulators of an empty bundle stay None

    def add_input(self, acc, bits):
        return bits if acc is None else acc.merge(bits)

    def merge_accumulators(self, accs):
        out = None
        for a in accs:
            if a is not None:
                out = a if out is None else out.merge(a)
        return out

    def extract_output(self, acc):
        return acc if acc is not None else BandBits(self.bits)


def _band_members(fingerprint, band_bits=None):
    """``(band key, (node, sketch))`` for the bands another document may share."""
    node, sketch, bands = fingerprint
    if not bands:
        return
    shared = band_bits.shared(bands) if band_bits is not None else [True] * len(bands)
    skipped = 0
    for key, keep in zip(bands, shared):
        if keep:
            yield key, (node, sketch)
        else:
            skipped += 1
    if skipped:
        _counter("dedup.count.unique_band_keys_skipped").inc(skipped)


def _verdicts(element):
    """Exact-group survivor id with its near label (if it was removed) and its exact duplicates →
    ``(doc id, (reason, final survivor id))`` for every removed document."""
    survivor_id, groups = element
    near = list(groups["near"])
    final = near[0] if near else survivor_id
    if near:
        yield survivor_id, ("near", final)
    for dup_id in groups["dups"]:
        yield dup_id, ("exact", final)


class _BucketEdges(beam.DoFn):
    """One LSH bucket → verified star edges to its smallest member; oversized buckets are capped.

    A near-duplicate pair shares several bands, so the buckets repeat most edges (at 100k
    documents 101k edges, 30k distinct).  Each bundle emits its edges once, from a set of at most
    ``DISTINCT_BUFFER`` edges, so that fewer copies cross the ``DistinctEdges`` shuffle; that
    step still removes the repeats between bundles.
    """

    CAPPED = "capped"
    UNVERIFIED = "unverified"
    DISTINCT_BUFFER = 100_000

    def __init__(self, cap: int, verify_threshold: float):
        self.cap = cap
        self.verify_threshold = verify_threshold

    def start_bundle(self):
        self._edges: set = set()

    def finish_bundle(self):
        for edge in self._edges:
            yield global_value(edge)
        self._edges = set()

    def process(self, element):
        key, members = element
        kept, total = capped_members(members, self.cap, key, node_of=lambda m: m[0])
        if total > self.cap:
            _counter("dedup.count.capped_buckets").inc()
            _counter("dedup.count.capped_members").inc(total - self.cap)
            yield beam.pvalue.TaggedOutput(self.CAPPED, {
                "band": int.from_bytes(key[:2], "big"), "size": total,
                "sample_ids": sorted(m[0][1] for m in kept)[:CLUSTER_MEMBERS_SHOWN]})
        edges, unverified = verified_bucket_star(kept, self.verify_threshold, bbit_jaccard)
        if unverified:
            _counter("dedup.count.unverified_pairs").inc(unverified)
            yield beam.pvalue.TaggedOutput(self.UNVERIFIED, unverified)
        self._edges.update(edges)
        if len(self._edges) >= self.DISTINCT_BUFFER:
            yield from self._edges
            self._edges = set()


# ---------------------------------------------------------------- connected components

def _both_directions(edge):
    a, b = edge
    if a != b:
        yield a, b
        yield b, a


class _StarStep(beam.PTransform):
    """One large-star or small-star step: edges → adjacency (GBK by node) → new edges."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def expand(self, edges):
        op = self.op
        return (edges
                | "Directed" >> beam.FlatMap(_both_directions)
                | "GroupByNode" >> beam.GroupByKey()
                | "Emit" >> beam.FlatMap(lambda kv: op(kv[0], kv[1])))


class _Converge(beam.DoFn):
    """Final labels: ``(doc id, survivor id)`` for every non-centre node; counts unconverged nodes."""

    def process(self, element):
        u, neighbours = element
        ok, label = converged_check(u, neighbours)
        if not ok:
            _counter("dedup.count.cc_unconverged").inc()
            yield beam.pvalue.TaggedOutput("unconverged", 1)
        if label != u:
            yield u[1], label[1]


class ConnectedComponents(beam.PTransform):
    """Edges between nodes → ``(node id, centre id)`` for every non-centre node.

    ``rounds`` alternating large-star/small-star steps are unrolled into the graph (bounded); the
    ``Converge`` step counts nodes not yet in a finished star (``dedup.count.cc_unconverged``),
    which keep the label of their smallest neighbour.  Returns ``(labels, unconverged)``.
    """

    def __init__(self, rounds: int):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        for i in range(self.rounds):
            edges = (edges
                     | f"Round{i:02d}/LargeStar" >> _StarStep(large_star)
                     | f"Round{i:02d}/SmallStar" >> _StarStep(small_star))
        out = (edges
               | "Converge/Directed" >> beam.FlatMap(_both_directions)
               | "Converge/GroupByNode" >> beam.GroupByKey()
               | "Converge/Label" >> beam.ParDo(_Converge()).with_outputs("unconverged", main="labels"))
        return out.labels, out.unconverged


class _UnionFindCombine(beam.CombineFn):
    """Edges → one union-find forest (each bundle builds its own; the forests merge) →
    ``[(node id, centre id)]`` for every node that is not its component's smallest."""

    def create_accumulator(self):
        return UnionFind()

    def add_input(self, forest, edge):
        forest.union(edge[0], edge[1])
        return forest

    def merge_accumulators(self, forests):
        forests = list(forests)
        merged = max(forests, key=len)
        for forest in forests:
            if forest is not merged:
                merged.merge(forest)
        return merged

    def extract_output(self, forest):
        return [(node[1], centre[1]) for node, centre in forest.labels().items()]


class InMemoryComponents(beam.PTransform):
    """Edges → ``(node id, centre id)`` for every non-centre node, exactly, in one place.

    For the local runner, which holds every shuffle in its own memory anyway: all edges end in
    one union-find, so there are no rounds to bound and nothing is left unconverged.  The star
    rounds need one ``GroupByKey`` pair per round, each a step of the runner whether or not
    anything is left to converge (at 100k documents: 24 steps, ~3.5 s of the run, after round 1
    had already converged).  Same labels as ``ConnectedComponents`` once that converges (tests).
    """

    def expand(self, edges):
        return (edges
                | "UnionFind" >> beam.CombineGlobally(_UnionFindCombine())
                | "Labels" >> beam.FlatMap(lambda pairs: pairs))


# ---------------------------------------------------------------- resolve

def _excerpt(text: str) -> str:
    """The first ``EXCERPT_CHARS`` characters with whitespace runs collapsed (+ "…" if cut).

    Collapses a prefix, not the whole text: it is taken for every removed and surviving
    document, and splitting whole texts took ~0.85 CPU-s of a 100k-document run (py-spy).
    Collapsing a prefix gives a prefix of the collapsed text; the whole text is used when the
    collapsed prefix is too short to decide."""
    head = text[:4 * EXCERPT_CHARS]
    collapsed = " ".join(head.split())
    if len(collapsed) <= EXCERPT_CHARS and len(head) < len(text):
        collapsed = " ".join(text.split())
    return collapsed if len(collapsed) <= EXCERPT_CHARS else collapsed[:EXCERPT_CHARS] + "…"


class _Resolve(beam.DoFn):
    """Per document id: the document and its verdict (none: kept).

    Outputs: main = kept Document; ``rejected`` records; ``member`` = ``(survivor id, member
    summary)`` for every removed doc; ``survivor`` = ``(id, excerpt)`` for kept docs; ``tally`` =
    ``{(reason, source): documents}`` once per bundle, for the stats counts (one element per
    document had been 77,658 elements through the stats' flatten at 100k documents); ``audit`` =
    ``(pair key, (id, text))`` for the documents in the audit sample (a side input of at most
    2 x audit_sample_size ids).
    """

    OUTPUTS = ("rejected", "member", "survivor", "tally", "audit")

    def setup(self):
        self._counters = BundleCounters()

    def start_bundle(self):
        self._counters.start()
        self._tally: Counter = Counter()

    def finish_bundle(self):
        if self._tally:
            yield beam.pvalue.TaggedOutput("tally", global_value(dict(self._tally)))
        self._counters.flush()

    def process(self, element, audit_ids):
        doc_id, groups = element
        docs = list(groups["doc"])
        if not docs:  # a verdict without its document cannot happen; keep ids honest
            return
        verdicts = list(groups["verdict"])
        yield from self.resolve(docs[0], verdicts[0] if verdicts else None, audit_ids)

    def resolve(self, doc: Document, verdict, audit_ids, cluster_survivors=None):
        """``cluster_survivors``: ids that survive a cluster, when known; only their excerpts are
        needed (for the cluster list), not one per kept document."""
        if verdict is not None:
            reason, final = verdict
            yield from self._reject(doc, reason, final)
        else:
            self._counters.inc("dedup.kept")
            self._counters.inc("dedup.bytes_out", text_bytes(doc.text))
            yield doc
            if cluster_survivors is None or doc.id in cluster_survivors:
                yield beam.pvalue.TaggedOutput("survivor", (doc.id, (len(doc.text), _excerpt(doc.text))))
            self._tally["kept", doc.source] += 1
        for pair_key in audit_ids.get(doc.id, ()):
            yield beam.pvalue.TaggedOutput("audit", (pair_key, (doc.id, doc.text)))

    def _reject(self, doc: Document, reason: str, survivor: str):
        self._counters.inc(f"dedup.drop.{reason}")
        self._counters.inc(f"dedup.source.{doc.source}.drop.{reason}")
        yield beam.pvalue.TaggedOutput("rejected", doc.to_record() | {
            "stage": "dedup", "reason": reason, "duplicate_of": survivor})
        yield beam.pvalue.TaggedOutput("member", (survivor, (doc.id, reason, len(doc.text), _excerpt(doc.text))))
        self._tally[reason, doc.source] += 1


# ---------------------------------------------------------------- staged documents (local runners)

class _ResolveStaged(_Resolve):
    """One staged file → every document resolved against the removal verdicts (a side input:
    only removed documents have one, so it holds the duplicates' ids, not the corpus)."""

    _survivors_of = None   # (the verdicts dict, its cluster survivors): one scan per side input

    def process(self, path, verdicts, audit_ids):
        # The file stays until the run's temp folder is removed: a retried bundle reads it again.
        # Every staged file sees the same verdicts: their survivors are collected once, not per file.
        if self._survivors_of is None or self._survivors_of[0] is not verdicts:
            self._survivors_of = (verdicts, {final for _, final in verdicts.values()})
        survivors = self._survivors_of[1]
        for doc in read_staged(path):
            yield from self.resolve(doc, verdicts.get(doc.id), audit_ids, survivors)


# ---------------------------------------------------------------- stats pieces

def _size_bin(size: int) -> str:
    """Cluster sizes in powers of two: "2", "3-4", "5-8", ..."""
    if size <= 2:
        return str(size)
    hi = 1 << (size - 1).bit_length()
    return f"{hi // 2 + 1}-{hi}"


def _cluster_summary(element):
    """One survivor with its removed members → a cluster record (one streaming pass, O(1) memory)."""
    survivor_id, groups = element
    n = 0
    reasons: Counter = Counter()
    shown: list = []  # max-heap (negated ids) of the members with the smallest ids
    for m in groups["member"]:
        n += 1
        reasons[m[1]] += 1
        item = (tuple(-b for b in m[0].encode("utf-8")) + (1,), m)
        if len(shown) < CLUSTER_MEMBERS_SHOWN:
            heapq.heappush(shown, item)
        elif item > shown[0]:
            heapq.heapreplace(shown, item)
    if n == 0:
        return
    surv = list(groups["survivor"])
    length, excerpt = surv[0] if surv else (None, None)
    members = sorted((m for _, m in shown), key=lambda m: m[0])
    yield {"survivor": survivor_id, "size": n + 1, "survivor_chars": length, "survivor_excerpt": excerpt,
           "removed": dict(sorted(reasons.items())),
           "members": [{"id": i, "reason": r, "chars": c, "excerpt": e} for i, r, c, e in members]}


def _tally_stats(counts: Counter) -> dict:
    totals = Counter()
    per_source: dict[str, Counter] = {}
    for (reason, source), n in counts.items():
        totals[reason] += n
        per_source.setdefault(source, Counter())[reason] += n
    docs_in = sum(totals.values())
    return {"in": docs_in, "kept": totals["kept"], "drop_exact": totals["exact"], "drop_near": totals["near"],
            "removed_fraction": round((totals["exact"] + totals["near"]) / docs_in, 6) if docs_in else 0.0,
            "per_source": {s: {"in": sum(c.values()), "drop_exact": c["exact"], "drop_near": c["near"]}
                           for s, c in sorted(per_source.items())}}


class _PairJaccard(beam.DoFn):
    def __init__(self, params: MinHashParams):
        self.params = params

    def process(self, element):
        pair_key, members = element
        members = sorted(members)
        if len(members) != 2:
            return
        (a, ta), (b, tb) = members
        sa = shingle_hashes(ta, self.params.shingle, self.params.shingle_size)
        sb = shingle_hashes(tb, self.params.shingle, self.params.shingle_size)
        yield {"a": a, "b": b, "jaccard": jaccard(sa, sb)}


def _audit_summary(results: list[dict], threshold: float) -> dict:
    if not results:
        return {"pairs": 0, "false_positive_rate": None, "threshold": threshold}
    js = sorted(r["jaccard"] for r in results)
    below = [r for r in results if r["jaccard"] < threshold]
    hist = Counter(min(int(j * 10), 9) for j in js)
    worst = sorted(results, key=lambda r: (r["jaccard"], r["a"], r["b"]))[:5]
    return {"pairs": len(js), "threshold": threshold,
            "false_positive_rate": round(len(below) / len(js), 6),
            "mean_jaccard": round(sum(js) / len(js), 6), "median_jaccard": round(js[len(js) // 2], 6),
            "jaccard_histogram": {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": hist[b] for b in range(10) if hist[b]},
            "lowest_pairs": [{"a": r["a"], "b": r["b"], "jaccard": round(r["jaccard"], 4)} for r in worst]}


class _DedupStats(beam.CombineFn):
    """Every stats piece, tagged ``(kind, value)``, → the one dict for stats.json["dedup"].

    One combine instead of one per piece: on the local runner every combine is a few steps of
    its own, each costing ~0.2 s of start-up however little data it sees.  Each kind is reduced to
    a bounded accumulator (counts, sums, a size histogram, top-k lists, the audit sample), so the
    merge is cheap and the result does not grow with the corpus.
    """

    def __init__(self, config: dict, near: bool, threshold: float, largest: int):
        self.config = config
        self.near = near
        self.threshold = threshold
        self.largest = largest

    def create_accumulator(self):
        return {"capped": 0, "capped_top": [], "unverified": 0, "unconverged": 0, "edges": 0,
                "tally": Counter(), "clusters": 0, "sizes": Counter(), "largest": [], "audit": []}

    @staticmethod
    def _capped_key(r):
        return (r["size"], r["sample_ids"])

    @staticmethod
    def _cluster_key(c):
        return (c["size"], c["survivor"])

    def add_input(self, acc, item):
        kind, value = item
        if kind == "capped":
            acc["capped"] += 1
            acc["capped_top"] = heapq.nlargest(CLUSTER_MEMBERS_SHOWN, acc["capped_top"] + [value],
                                               key=self._capped_key)
        elif kind == "unverified":
            acc["unverified"] += value
        elif kind == "unconverged":
            acc["unconverged"] += 1
        elif kind == "edges":
            acc["edges"] += value
        elif kind == "tally":
            acc["tally"].update(value)
        elif kind == "cluster":
            acc["clusters"] += 1
            acc["sizes"][_size_bin(value["size"])] += 1
            acc["largest"] = heapq.nlargest(self.largest, acc["largest"] + [value], key=self._cluster_key)
        elif kind == "audit":
            acc["audit"].append(value)  # bounded: at most audit_sample_size pairs
        else:
            raise ValueError(f"unknown dedup stats piece {kind!r}")
        return acc

    def merge_accumulators(self, accs):
        out = self.create_accumulator()
        for a in accs:
            for k in ("capped", "unverified", "unconverged", "edges", "clusters"):
                out[k] += a[k]
            out["tally"].update(a["tally"])
            out["sizes"].update(a["sizes"])
            out["audit"] += a["audit"]
            out["capped_top"] = heapq.nlargest(CLUSTER_MEMBERS_SHOWN, out["capped_top"] + a["capped_top"],
                                               key=self._capped_key)
            out["largest"] = heapq.nlargest(self.largest, out["largest"] + a["largest"], key=self._cluster_key)
        return out

    def extract_output(self, acc):
        stats = {"config": self.config, "counts": _tally_stats(acc["tally"]),
                 "clusters": acc["clusters"], "cluster_size_histogram": _sorted_bins(acc["sizes"]),
                 "largest_clusters": acc["largest"]}
        if self.near:
            stats |= {"capped_buckets": acc["capped"], "capped_buckets_largest": acc["capped_top"],
                      "unverified_bucket_pairs": acc["unverified"], "cc_unconverged_nodes": acc["unconverged"],
                      "lsh_candidate_pairs": acc["edges"],
                      "audit": _audit_summary(acc["audit"], self.threshold)}
        return stats


def _tag(kind):
    return lambda value: (kind, value)


class _CountPerBundle(beam.DoFn):
    """Elements → one ``(kind, n)`` per bundle (the edges are too many to tag one by one)."""

    def __init__(self, kind: str):
        self.kind = kind

    def start_bundle(self):
        self.n = 0

    def process(self, _):
        self.n += 1
        return ()

    def finish_bundle(self):
        if self.n:
            yield global_value((self.kind, self.n))


# ---------------------------------------------------------------- the stage

class Dedup(beam.PTransform):
    """``PCollection[Document]`` → ``{"kept", "rejected", "stats"}`` (see docs/dedup.md).

    ``staging_dir`` (local runners): documents wait on disk there while their fingerprints are
    deduplicated, and the verdicts reach them as a side input (``pipeline.staging``).  Without it
    they are joined with their verdicts by a ``CoGroupByKey`` on the document id, which scales on
    a distributed runner's shuffle but is held whole in memory by the local runner.
    """

    COMPONENTS = ("auto", "union_find", "star_rounds")

    def __init__(self, section: dict[str, Any], staging_dir: str | None = None, local_runner: bool = False):
        super().__init__()
        self.section = section
        self.staging_dir = staging_dir
        mode = section.get("components", "auto")
        if mode not in self.COMPONENTS:
            from pipeline.config import ConfigError

            raise ConfigError(f"config key 'dedup.components': expected one of {', '.join(self.COMPONENTS)}, "
                              f"got {mode!r}")
        # auto: in one place where the runner holds every shuffle in memory anyway
        self.components = ("union_find" if local_runner else "star_rounds") if mode == "auto" else mode
        self.params = MinHashParams.from_section(section["minhash"])
        self.threshold = float(section["minhash"]["threshold"])

    def expand(self, docs):
        p = docs.pipeline
        section = self.section
        if not section.get("enabled", True):
            return {"kept": docs, "rejected": p | "NoRejects" >> beam.Create([]),
                    "stats": p | "DisabledStats" >> beam.Create([{"enabled": False}])}

        near = bool(section.get("near", True))
        filter_bits = int(section.get("band_filter_bits", 0))
        prints = docs | "Fingerprints" >> beam.ParDo(_Fingerprints(self.params, near))
        if section.get("exact", True):
            exact = (prints
                     | "ExactGroup" >> beam.GroupByKey()
                     | "ExactSurvivor" >> beam.ParDo(_ExactSurvivor()).with_outputs(
                         _ExactSurvivor.DUPS, main="survivors"))
            survivors, exact_dups = exact.survivors, exact[_ExactSurvivor.DUPS]
        else:
            survivors = prints | "NoExactKey" >> beam.Values()
            exact_dups = p | "NoExactDups" >> beam.Create([])

        pieces = []
        if near:
            band_bits = None
            if filter_bits:
                band_bits = beam.pvalue.AsSingleton(
                    survivors
                    | "SurvivorBandBits" >> beam.ParDo(_SurvivorBandBits(filter_bits))
                    | "MergeBandBits" >> beam.CombineGlobally(_MergeBandBits(filter_bits)))
            buckets = (survivors
                       | "Bands" >> beam.FlatMap(_band_members, band_bits=band_bits)
                       | "BandGroup" >> beam.GroupByKey()
                       | "BucketEdges" >> beam.ParDo(_BucketEdges(int(section["max_bucket_size"]),
                                                                  self.params.verify_threshold))
                       .with_outputs(_BucketEdges.CAPPED, _BucketEdges.UNVERIFIED, main="edges"))
            edges = buckets.edges | "DistinctEdges" >> beam.Distinct()
            pieces += [buckets[_BucketEdges.CAPPED] | "CappedTag" >> beam.Map(_tag("capped")),
                       buckets[_BucketEdges.UNVERIFIED] | "UnverifiedTag" >> beam.Map(_tag("unverified")),
                       edges | "CandidatePairs" >> beam.ParDo(_CountPerBundle("edges"))]
            if self.components == "union_find":
                labels = edges | "CC" >> InMemoryComponents()
            else:
                labels, unconverged = edges | "CC" >> ConnectedComponents(int(section["cc_max_rounds"]))
                pieces.append(unconverged | "UnconvergedTag" >> beam.Map(_tag("unconverged")))
            audit_ends = self._audit_sample(edges)
        else:
            labels = p | "NoLabels" >> beam.Create([])
            audit_ends = p | "NoAudit" >> beam.Create([])

        verdicts = ({"near": labels, "dups": exact_dups}
                    | "FinalSurvivor" >> beam.CoGroupByKey()
                    | "Verdicts" >> beam.FlatMap(_verdicts))
        # AsDict of grouped ids, not AsMultiMap: the portable runner answers every multimap
        # lookup with a state request, one round trip per document.
        audit_ids = beam.pvalue.AsDict(
            audit_ends | "AuditIdsByDoc" >> beam.GroupByKey()
            | "AuditIdLists" >> beam.MapTuple(lambda doc_id, keys: (doc_id, sorted(keys))))
        if self.staging_dir:
            resolved = (docs
                        | "StageDocs" >> beam.ParDo(StageRecords(self.staging_dir))
                        | "ResolveStaged" >> beam.ParDo(
                            _ResolveStaged(), verdicts=beam.pvalue.AsDict(verdicts), audit_ids=audit_ids)
                        .with_outputs(*_Resolve.OUTPUTS, main="kept"))
        else:
            resolved = ({"doc": docs | "DocById" >> beam.Map(lambda d: (d.id, d)), "verdict": verdicts}
                        | "JoinById" >> beam.CoGroupByKey()
                        | "Resolve" >> beam.ParDo(_Resolve(), audit_ids=audit_ids)
                        .with_outputs(*_Resolve.OUTPUTS, main="kept"))
        if near:
            pieces.append(resolved.audit
                          | "AuditGroupPair" >> beam.GroupByKey()
                          | "AuditJaccard" >> beam.ParDo(_PairJaccard(self.params))
                          | "AuditTag" >> beam.Map(_tag("audit")))
        pieces.append(resolved.tally | "TallyTag" >> beam.Map(_tag("tally")))
        pieces.append({"member": resolved.member, "survivor": resolved.survivor}
                      | "JoinClusters" >> beam.CoGroupByKey()
                      | "ClusterSummary" >> beam.FlatMap(_cluster_summary)
                      | "ClusterTag" >> beam.Map(_tag("cluster")))
        params = self.section["minhash"]
        config = {
            "exact": bool(section.get("exact", True)), "near": near,
            "shingle": params["shingle"], "shingle_size": params["shingle_size"],
            "num_perm": params["num_perm"], "bands": params["bands"], "rows": params["rows"],
            "threshold": params["threshold"], "verify_threshold": params["verify_threshold"],
            "max_bucket_size": section["max_bucket_size"],
            "band_filter_bits": filter_bits,
            "components": self.components, "cc_max_rounds": section["cc_max_rounds"]}
        stats = (pieces
                 | "FlattenStats" >> beam.Flatten()
                 | "MergeStats" >> beam.CombineGlobally(_DedupStats(
                     config, near, self.threshold, int(section["largest_clusters"]))))
        return {"kept": resolved.kept, "rejected": resolved.rejected, "stats": stats}

    def _audit_sample(self, edges):
        """A deterministic sample of LSH candidate pairs → ``(doc id, pair key)`` for both ends;
        ``Resolve`` sends the texts of these (at most 2 x audit_sample_size) documents back."""
        n = int(self.section["audit_sample_size"])
        return (edges
                | "AuditKey" >> beam.Map(lambda e: (stable_hash64("audit", e[0][1], e[1][1]), e[0][1], e[1][1]))
                | "AuditSample" >> beam.combiners.Top.Smallest(n)
                | "AuditPairs" >> beam.FlatMap(lambda top: top)
                | "AuditEnds" >> beam.FlatMap(lambda t: [(t[1], t[0]), (t[2], t[0])]))


def _sorted_bins(counts: Counter) -> dict:
    return {k: counts[k] for k in sorted(counts, key=lambda b: int(b.split("-")[0]))}
