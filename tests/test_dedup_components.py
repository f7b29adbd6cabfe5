"""Pure tests of the connected-components rounds, bucket stars, caps and survivor order."""
import random
import zlib

import pytest

from dedup.components import (UnionFind, bucket_star, capped_members, components_by_label,
                              converged_check, large_star, node_key, run_star_rounds, small_star)


def n(i):
    return (0, f"d{i:06d}")


def _reference(edges):
    uf = UnionFind()
    for a, b in edges:
        uf.union(a, b)
    return sorted(sorted(c) for c in uf.components())


def _stars(edges, rounds=20):
    labels, unconverged = run_star_rounds(edges, rounds)
    comps = components_by_label(labels)
    # every component is labelled by its minimum: the survivor
    for comp in comps:
        assert {labels[x] for x in comp} == {min(comp)}
    return sorted(sorted(c) for c in comps), unconverged


def test_node_order_is_longest_text_then_smallest_id():
    nodes = [node_key("b", "x" * 10), node_key("a", "x" * 5), node_key("c", "x" * 10)]
    assert min(nodes) == node_key("b", "x" * 10)
    assert sorted(nodes)[1] == node_key("c", "x" * 10)


def test_large_star_links_larger_neighbours_to_neighbourhood_minimum():
    out = set(large_star(n(5), [n(2), n(7), n(9), n(7)]))
    assert out == {(n(7), n(2)), (n(9), n(2))}
    assert set(large_star(n(1), [n(3)])) == {(n(3), n(1))}
    assert set(large_star(n(4), [n(1)])) == set()


def test_small_star_links_node_and_smaller_neighbours_to_their_minimum():
    out = set(small_star(n(5), [n(2), n(3), n(9)]))
    assert out == {(n(5), n(2)), (n(3), n(2))}
    assert set(small_star(n(1), [n(4), n(6)])) == set()


def test_converged_check():
    assert converged_check(n(3), [n(1)]) == (True, n(1))
    assert converged_check(n(1), [n(3), n(4)]) == (True, n(1))
    assert converged_check(n(3), [n(1), n(2)]) == (False, n(1))
    assert converged_check(n(3), [n(1), n(5)]) == (False, n(1))


@pytest.mark.parametrize("shape", ["sorted_path", "reversed_path", "random_path", "star", "random_graph",
                                   "many_chains"])
def test_star_rounds_match_union_find(shape):
    rng = random.Random(zlib.crc32(shape.encode()))
    if shape in ("sorted_path", "reversed_path", "random_path"):
        nodes = [n(i) for i in range(2000)]
        if shape == "reversed_path":
            nodes.reverse()
        if shape == "random_path":
            rng.shuffle(nodes)
        edges = list(zip(nodes, nodes[1:]))
    elif shape == "star":
        centre = n(777)
        edges = [(n(i), centre) if rng.random() < 0.5 else (centre, n(i)) for i in range(1500) if i != 777]
    elif shape == "random_graph":  # sparse: many components of mixed sizes
        edges = [(n(rng.randrange(3000)), n(rng.randrange(3000))) for _ in range(2500)]
        edges = [e for e in edges if e[0] != e[1]]
    else:  # many chains of random lengths joined at random points
        edges, base = [], 0
        for _ in range(60):
            length = rng.randint(2, 80)
            chain = [n(base + i) for i in range(length)]
            rng.shuffle(chain)
            edges += list(zip(chain, chain[1:]))
            base += length
        for _ in range(20):
            edges.append((n(rng.randrange(base)), n(rng.randrange(base))))
    got, unconverged = _stars(edges)
    assert unconverged == 0
    assert got == _reference(edges)


def test_too_few_rounds_are_reported_not_hidden():
    nodes = [n(i) for i in range(500)]
    edges = list(zip(nodes, nodes[1:]))
    labels, unconverged = run_star_rounds(edges, 2)
    assert unconverged > 0
    # labels still only join nodes that are truly connected (never merges components)
    assert all(labels[x] <= x for x in labels)


def test_bucket_star_is_a_star_on_the_minimum():
    members = [n(5), n(3), n(9)]
    assert sorted(bucket_star(members)) == [(n(5), n(3)), (n(9), n(3))]
    assert bucket_star([n(1)]) == []


def test_capped_members_deterministic_whatever_the_order():
    members = [n(i) for i in range(1000)]
    kept, total = capped_members(members, 50, b"band-1")
    assert total == 1000 and len(kept) == 50
    shuffled = members[:]
    random.Random(3).shuffle(shuffled)
    kept2, _ = capped_members(shuffled, 50, b"band-1")
    assert sorted(kept) == sorted(kept2)
    other, _ = capped_members(members, 50, b"band-2")
    assert sorted(other) != sorted(kept)  # the salt spreads which members are linked
    small, total = capped_members(members[:10], 50, b"band-1")
    assert sorted(small) == members[:10] and total == 10


def test_verified_bucket_star_drops_pairs_below_the_estimate():
    from dedup.components import verified_bucket_star

    sketches = {n(1): b"a", n(2): b"b", n(3): b"c"}
    sims = {(b"b", b"a"): 0.9, (b"c", b"a"): 0.3}
    edges, rejected = verified_bucket_star([(k, v) for k, v in sketches.items()], 0.65,
                                           lambda x, y: sims[(x, y)])
    assert edges == [(n(2), n(1))] and rejected == 1
    # threshold 0 keeps every pair: plain LSH
    edges, rejected = verified_bucket_star([(k, v) for k, v in sketches.items()], 0.0,
                                           lambda x, y: sims[(x, y)])
    assert len(edges) == 2 and rejected == 0


def test_union_find_forests_of_parts_merge_into_the_forest_of_all_edges():
    """How the local runner's components step combines per-bundle forests: labels of the merged
    forest are those of one forest over every edge, each node labelled by its component minimum."""
    rng = random.Random(7)
    edges = [(n(rng.randrange(500)), n(rng.randrange(500))) for _ in range(400)]
    whole = UnionFind()
    for a, b in edges:
        whole.union(a, b)
    parts = [UnionFind() for _ in range(3)]
    for i, (a, b) in enumerate(edges):
        parts[i % 3].union(a, b)
    merged = parts[0]
    merged.merge(parts[1])
    merged.merge(parts[2])
    expected = {x: min(c) for c in whole.components() for x in c if x != min(c)}
    assert merged.labels() == expected == whole.labels()
    assert len(merged) == len(whole)
