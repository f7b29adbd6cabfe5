"""The Beam dedup graph (pipeline/dedup.py) on real Korean articles: same decisions as the
in-memory reference, counters and stats, distributed connected components vs union-find, and
identical results whatever the runner / number of workers."""
import gzip
import json
import pickle
import random
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from dedup.components import UnionFind, run_star_rounds
from dedup.recipes import NEAR_RECIPES, labelled_set
from dedup.reference import dedup_in_memory
from filters.base import Document
from pipeline.config import load_defaults
from pipeline.dedup import ConnectedComponents, Dedup, InMemoryComponents

FIXTURE = Path(__file__).parent / "fixtures" / "dedup_kowiki.jsonl.gz"


@pytest.fixture(scope="module")
def section():
    return load_defaults()["dedup"]


@pytest.fixture(scope="module")
def docs():
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        articles = [json.loads(line) for line in f]
    triples, _ = labelled_set(articles, seed=5, recipes=("exact",) + NEAR_RECIPES, variants_of=60,
                              boilerplate_docs=10)
    # a three-way exact group and a near-dup of an exact survivor, to exercise the join
    extra = [("copy-1", triples[100][1], "mirror"), ("copy-2", triples[100][1] + "\n", "mirror")]
    return [Document(i, t, s, metadata={"n": k}) for k, (i, t, s) in enumerate(triples + extra)]


def _run_dedup(docs, section, tmp_path, options, staging_dir=None, local_runner=False):
    """Run Dedup and return (kept ids, rejected triples, stats, polyko counters)."""
    out = tmp_path / f"out-{random.random()}"
    out.mkdir()

    def dump(name):
        def write(values):
            with open(out / name, "wb") as f:
                pickle.dump(values, f)
        return write

    p = beam.Pipeline(options=PipelineOptions(options))
    res = p | beam.Create(docs, reshuffle=False) | "Dedup" >> Dedup(section, staging_dir=staging_dir,
                                                                       local_runner=local_runner)
    (res["kept"] | "KeptIds" >> beam.Map(lambda d: d.id) | "KeptList" >> beam.combiners.ToList()
     | "KeptDump" >> beam.Map(dump("kept")))
    (res["rejected"] | "RejTriples" >> beam.Map(lambda r: (r["id"], r["reason"], r["duplicate_of"], r["stage"]))
     | "RejList" >> beam.combiners.ToList() | "RejDump" >> beam.Map(dump("rejected")))
    res["stats"] | "StatsList" >> beam.combiners.ToList() | "StatsDump" >> beam.Map(dump("stats"))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(MetricsFilter().with_namespace("polyko"))["counters"]}
    load = lambda name: pickle.load(open(out / name, "rb"))  # noqa: E731
    return sorted(load("kept")), sorted(load("rejected")), load("stats"), counters


@pytest.fixture(scope="module")
def fnapi_run(docs, section, tmp_path_factory):
    return _run_dedup(docs, section, tmp_path_factory.mktemp("fnapi"), ["--runner=FnApiRunner"])


def test_beam_matches_reference_and_removes_each_recipe(docs, section, fnapi_run):
    kept, rejected, _, _ = fnapi_run
    ref = dedup_in_memory(docs, section)
    assert kept == sorted(d.id for d in ref.kept)
    assert rejected == sorted((r["id"], r["reason"], r["duplicate_of"], "dedup") for r in ref.rejected)
    removed = {r[0] for r in rejected}
    for recipe in ("exact",) + NEAR_RECIPES:
        variants = [d.id for d in docs if d.id.endswith("~" + recipe)]
        assert variants
        # each variant or its original was removed (the longer one survives)
        for v in variants:
            assert (v in removed) != (v.split("~")[0] in removed)
    assert {"copy-1", "copy-2"} & removed
    kept_set = set(kept)
    assert all(r[2] in kept_set for r in rejected)


def test_counters_and_stats(docs, fnapi_run):
    kept, rejected, stats, counters = fnapi_run
    assert len(stats) == 1
    s = stats[0]
    n_exact = sum(1 for r in rejected if r[1] == "exact")
    n_near = sum(1 for r in rejected if r[1] == "near")
    assert counters["dedup.in"] == len(docs)
    assert counters["dedup.kept"] == len(kept)
    assert counters["dedup.drop.exact"] == n_exact and counters["dedup.drop.near"] == n_near
    assert counters["dedup.source.mirror.drop.exact"] >= 1
    assert s["counts"]["in"] == len(docs) and s["counts"]["kept"] == len(kept)
    assert s["counts"]["drop_exact"] == n_exact and s["counts"]["drop_near"] == n_near
    # histogram covers every cluster; the three-way exact group is the largest cluster
    assert sum(s["cluster_size_histogram"].values()) == s["clusters"]
    top = s["largest_clusters"][0]
    assert top["size"] >= 3 and len(top["members"]) == top["size"] - 1 and top["survivor_excerpt"]
    assert s["audit"]["pairs"] == s["lsh_candidate_pairs"] > 0
    assert s["audit"]["false_positive_rate"] is not None and s["audit"]["false_positive_rate"] <= 0.05
    assert s["cc_unconverged_nodes"] == 0 and s["capped_buckets"] == 0
    json.dumps(s)  # stats.json-ready


@pytest.mark.parametrize("staged", [False, True], ids=["join-by-id", "staged-on-disk-union-find"])
def test_same_result_with_two_workers_multiprocessing(docs, section, tmp_path, fnapi_run, staged):
    """Two worker processes, and what `polyko run` does on the local runner (documents staged on
    disk instead of the CoGroupByKey join, components by one union-find instead of star rounds):
    the same decisions, clusters, audit and counters."""
    staging = tmp_path / "staging" if staged else None
    multi = _run_dedup(docs, section, tmp_path, [
        "--runner=FnApiRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        staging_dir=str(staging) if staged else None, local_runner=staged)
    assert fnapi_run[2][0]["config"]["components"] == "star_rounds"
    assert multi[2][0]["config"]["components"] == ("union_find" if staged else "star_rounds")
    assert multi[0] == fnapi_run[0] and multi[1] == fnapi_run[1]
    assert multi[2][0]["largest_clusters"] == fnapi_run[2][0]["largest_clusters"]
    assert multi[2][0]["audit"] == fnapi_run[2][0]["audit"]
    assert multi[2][0]["counts"] == fnapi_run[2][0]["counts"]
    for name in ("dedup.in", "dedup.kept", "dedup.drop.exact", "dedup.drop.near"):
        assert multi[3][name] == fnapi_run[3][name], name
    if staged:
        assert any(staging.iterdir())  # the documents really went through staged files


def test_giant_buckets_are_capped_counted_and_reported(docs, section, tmp_path):
    # 40 exact-text-different copies of one article (a few words appended) form one cluster
    base = docs[0].text
    words = base.split()
    many = [Document(f"mirror-{i:03d}", base + " " + " ".join(words[i:i + 3]), "mirror") for i in range(40)]
    capped = dict(section, max_bucket_size=8)
    kept, rejected, stats, counters = _run_dedup(many, capped, tmp_path, ["--runner=FnApiRunner"])
    s = stats[0]
    assert s["capped_buckets"] > 0 and counters["dedup.count.capped_buckets"] == s["capped_buckets"]
    assert s["capped_buckets_largest"][0]["size"] == 40
    ref = dedup_in_memory(many, capped)
    assert kept == sorted(d.id for d in ref.kept)
    assert len(kept) < 40  # capping limits, but does not stop, removal


@pytest.mark.parametrize("transform", ["star_rounds", "in_memory"])
@pytest.mark.parametrize("shape", ["sorted_path", "random_graph"])
def test_components_transforms_match_union_find(shape, transform, tmp_path):
    rng = random.Random(1 if shape == "sorted_path" else 2)
    node = lambda i: (-(i % 7), f"n{i:05d}")  # noqa: E731  (length ties exercise id order)
    if shape == "sorted_path":
        nodes = sorted(node(i) for i in range(300))
        edges = list(zip(nodes, nodes[1:]))
    else:
        edges = [(node(rng.randrange(400)), node(rng.randrange(400))) for _ in range(350)]
        edges = [e for e in edges if e[0] != e[1]]
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    expected = sorted((x[1], min(c)[1]) for c in uf.components() for x in c if x != min(c))
    path = tmp_path / "labels.pkl"

    def dump(values):
        with open(path, "wb") as f:
            pickle.dump(values, f)

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        edges_pc = p | beam.Create(edges)
        if transform == "star_rounds":
            labels, unconverged = edges_pc | ConnectedComponents(rounds=10)
        else:
            labels = edges_pc | InMemoryComponents()
        labels | beam.combiners.ToList() | beam.Map(dump)
    assert sorted(pickle.load(open(path, "rb"))) == expected


def test_in_memory_components_need_no_rounds(tmp_path):
    """A sorted path of 2,000 nodes needs more than 3 star rounds (unconverged, labels split);
    the union-find labels every node with the path's first node."""
    nodes = [(-1, f"n{i:05d}") for i in range(2000)]
    edges = list(zip(nodes, nodes[1:]))
    assert run_star_rounds(edges, 3)[1] > 0
    path = tmp_path / "labels.pkl"

    def dump(values):
        with open(path, "wb") as f:
            pickle.dump(values, f)

    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        p | beam.Create(edges) | InMemoryComponents() | beam.combiners.ToList() | beam.Map(dump)
    labels = dict(pickle.load(open(path, "rb")))
    assert len(labels) == 1999 and set(labels.values()) == {"n00000"}


def test_unknown_components_mode_is_a_config_error(section):
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="dedup.components"):
        Dedup(dict(section, components="pregel"))


def test_exact_only_and_disabled_configs(docs, section, tmp_path):
    exact_only = dict(section, near=False)
    kept, rejected, stats, counters = _run_dedup(docs, exact_only, tmp_path, ["--runner=FnApiRunner"])
    assert rejected and {r[1] for r in rejected} == {"exact"}
    assert counters.get("dedup.drop.near", 0) == 0
    assert stats[0]["counts"]["drop_near"] == 0 and "audit" not in stats[0]
    off = dict(section, enabled=False)
    kept, rejected, stats, _ = _run_dedup(docs, off, tmp_path, ["--runner=FnApiRunner"])
    assert len(kept) == len(docs) and rejected == [] and stats == [{"enabled": False}]


def test_fingerprint_step_carries_its_permutations_so_workers_skip_datasketch(tmp_path):
    """The DoFn pickled in the graph-building process brings the MinHash permutation parameters:
    a worker unpickling it computes datasketch's signatures without importing datasketch/scipy."""
    import subprocess
    import sys

    from dedup.minhash import MinHasher, MinHashParams
    from pipeline.dedup import _Fingerprints

    params = MinHashParams.from_section(load_defaults()["dedup"]["minhash"])
    (tmp_path / "fn.pkl").write_bytes(pickle.dumps(_Fingerprints(params, near=True)))
    text = "대한민국의 수도는 서울특별시이며, 가장 큰 도시이기도 하다. 서울은 한강을 끼고 있다."
    expected = MinHasher(params).signatures([MinHasher(params).shingles(text)])[0].tolist()
    code = (
        "import pickle, sys, json\n"
        f"fn = pickle.loads(open({str(tmp_path / 'fn.pkl')!r}, 'rb').read())\n"
        "fn.setup()\n"
        f"sig = fn.hasher.signatures([fn.hasher.shingles({text!r})])[0].tolist()\n"
        "print(json.dumps({'sig': sig, 'datasketch': 'datasketch' in sys.modules, 'scipy': 'scipy' in sys.modules}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["sig"] == expected
    assert out["datasketch"] is False and out["scipy"] is False


def test_excerpts_collapse_a_prefix_exactly_as_the_whole_text(docs):
    """``_excerpt`` collapses whitespace in a prefix only; whatever the spacing (runs of blanks
    and newlines around the prefix's end, texts just longer than it, blank-padded texts), it
    must equal collapsing the whole text and cutting that."""
    from pipeline.dedup import EXCERPT_CHARS, _excerpt

    def whole(text):
        text = " ".join(text.split())
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"

    rng = random.Random(3)
    texts = [d.text for d in docs[:200]]
    sentence = docs[0].text[:60]
    texts += [" " * 500 + sentence, "\n" * (4 * EXCERPT_CHARS - 5) + sentence * 3,
              sentence + " " * 1000 + sentence, "가" * (4 * EXCERPT_CHARS) + " 나", "", "  \n "]
    for d in docs[:100]:  # random whitespace runs spliced into real text
        chars = list(d.text[:600])
        for _ in range(40):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice([" " * rng.randint(1, 80), "\n\n", "\t"]))
        texts.append("".join(chars))
    for text in texts:
        assert _excerpt(text) == whole(text)
