"""The dedup decisions on real Korean articles (pure in-memory reference, no runner).

Near-duplicates are made from real kowiki articles (tests/fixtures/dedup_kowiki.jsonl.gz) with
the recipes in dedup/recipes.py; each cluster must keep exactly one survivor, and documents that
share only a template block (≤ 30 % of their text) must all survive.
"""
import gzip
import json
from collections import defaultdict
from pathlib import Path

import pytest

from dedup.recipes import NEAR_RECIPES, labelled_set, truncate, typos, header_footer
from dedup.reference import dedup_in_memory
from filters.base import Document
from pipeline.config import load_defaults

FIXTURE = Path(__file__).parent / "fixtures" / "dedup_kowiki.jsonl.gz"


@pytest.fixture(scope="module")
def articles():
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def section():
    return load_defaults()["dedup"]


@pytest.fixture(scope="module")
def labelled(articles):
    return labelled_set(articles, seed=11, recipes=("exact",) + NEAR_RECIPES, variants_of=120,
                        boilerplate_docs=20)


def test_recipes_change_the_text_within_their_budget(articles):
    import random
    rng = random.Random(0)
    text = articles[0]["text"]
    assert typos(text, rng) != text
    cut = truncate(text, rng)
    assert text.startswith(cut) and 0.89 * len(text) <= len(cut) <= 0.96 * len(text)
    hf = header_footer(text, articles[1]["text"], rng)
    assert text in hf and len(hf) - len(text) <= 0.1 * len(hf) + 2


def test_every_cluster_keeps_exactly_one_survivor(labelled, section):
    docs, truth = labelled
    result = dedup_in_memory([Document(i, t, s) for i, t, s in docs], section)
    kept = {d.id for d in result.kept}
    cluster_of = {i: (truth[i] or i) for i, _, _ in docs}
    per_cluster = defaultdict(list)
    for i in kept:
        per_cluster[cluster_of[i]].append(i)
    clusters = set(cluster_of.values())
    # one survivor per cluster: no cluster lost entirely, none kept twice
    assert set(per_cluster) == clusters
    assert {c: len(v) for c, v in per_cluster.items() if len(v) != 1} == {}
    # each recipe really produced a removed duplicate
    removed = {r["id"]: r for r in result.rejected}
    assert len(removed) == sum(1 for v in truth.values() if v is not None)
    by_reason = defaultdict(int)
    for r in removed.values():
        by_reason[r["reason"]] += 1
        assert r["duplicate_of"] in kept
        assert cluster_of[r["duplicate_of"]] == cluster_of[r["id"]]
        assert r["stage"] == "dedup"
    assert by_reason["exact"] == 20 and by_reason["near"] == 100


def test_documents_sharing_only_boilerplate_survive(labelled, section, articles):
    docs, truth = labelled
    boiler_ids = {a["id"] for a in articles[-20:]}
    result = dedup_in_memory([Document(i, t, s) for i, t, s in docs], section)
    kept = {d.id for d in result.kept}
    assert boiler_ids <= kept


def test_survivor_is_the_longest_text_then_smallest_id(articles, section):
    text = articles[5]["text"]
    docs = [Document("b", text, "s"), Document("a", text, "s"),
            Document("c", text + " 추가 문장입니다.", "s"), Document("d", text[: len(text) - 40], "s")]
    result = dedup_in_memory(docs, section)
    assert [d.id for d in result.kept] == ["c"]
    reasons = {r["id"]: (r["reason"], r["duplicate_of"]) for r in result.rejected}
    # exact copies "a"/"b" collapse onto "a" (smallest id), which is itself a near-dup of "c":
    # duplicate_of names the final survivor, never a removed document
    assert reasons == {"a": ("near", "c"), "b": ("exact", "c"), "d": ("near", "c")}


def test_distinct_articles_are_not_removed(articles, section):
    result = dedup_in_memory([Document(a["id"], a["text"], a["source"]) for a in articles], section)
    assert len(result.kept) == len(articles) and result.rejected == []
