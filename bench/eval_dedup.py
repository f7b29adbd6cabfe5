"""Dedup quality on a labelled set built from the development data (../shared/data).

Distinct documents: Korean Wikipedia articles (ko_wiki) and per-movie review documents
(ko_nsmc_reviews), sampled deterministically.  Duplicates: for a subset of the articles, one
variant each, cycling through the recipes in dedup/recipes.py (exact copy, 1 % typos, spacing and
punctuation noise, header/footer ≤ 10 %, truncation 5-10 %, two paragraphs swapped).  A further
set of articles shares one template block (≤ 30 % of each text) and must survive.

Reports, per shingle configuration:
  * recall per recipe: the variant and its original ended in one cluster with one survivor;
  * false-removal rate: distinct documents removed; removals whose exact Jaccard with their
    survivor is ≥ the threshold are counted separately as *natural* near-duplicates already
    present in the source data (templated list/year articles), the rest are false removals;
  * audited false-positive estimate: exact Jaccard on a deterministic sample of the LSH candidate
    pairs (what the Beam stage reports in stats.json).

    .venv/bin/python -m bench.eval_dedup                    # sweep (in-memory reference)
    .venv/bin/python -m bench.eval_dedup --beam             # + the default config through Beam
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import time
from pathlib import Path

from datasketch.lsh import _optimal_param

from dedup.minhash import jaccard, shingle_hashes, stable_hash64
from dedup.recipes import NEAR_RECIPES, labelled_set
from dedup.reference import dedup_in_memory
from filters.base import Document
from pipeline.config import load_defaults

DATA = Path(os.environ.get("POLYKO_SHARED_DATA", Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
RECIPES = ("exact",) + NEAR_RECIPES


def _read(name: str):
    with gzip.open(DATA / name, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def build(n_wiki: int, n_reviews: int, n_variants: int, n_boiler: int, seed: int):
    rng = random.Random(seed)
    wiki = [r for r in _read("ko_wiki.jsonl.gz") if "\n" in r["text"]]
    wiki = rng.sample(wiki, min(n_wiki + n_boiler, len(wiki)))
    reviews = rng.sample(list(_read("ko_nsmc_reviews.jsonl.gz")), n_reviews)
    triples, truth = labelled_set(wiki, seed=seed, recipes=RECIPES, variants_of=n_variants,
                                  boilerplate_docs=n_boiler)
    boiler_ids = {r["id"] for r in wiki[len(wiki) - n_boiler:]}
    for r in reviews:
        triples.append((r["id"], r["text"], r["source"]))
        truth[r["id"]] = None
    docs = [Document(i, t, s) for i, t, s in triples]
    return docs, truth, boiler_ids


def evaluate(docs, truth, boiler_ids, section, kept_ids=None, rejected=None, candidate_pairs=None):
    if kept_ids is None:
        res = dedup_in_memory(docs, section)
        kept_ids = {d.id for d in res.kept}
        rejected = res.rejected
        candidate_pairs = res.candidate_pairs
    removed = {r["id"]: r for r in rejected}
    by_id = {d.id: d for d in docs}
    p = section["minhash"]
    thr = float(p["threshold"])
    sh = lambda i: shingle_hashes(by_id[i].text, p["shingle"], p["shingle_size"])  # noqa: E731

    recall = {}
    for recipe in RECIPES:
        vids = [i for i in truth if truth[i] is not None and i.endswith("~" + recipe)]
        # merged: both end at the same survivor (duplicate_of always names a kept document)
        final = lambda i: removed[i]["duplicate_of"] if i in removed else i  # noqa: E731
        ok = sum(final(v) == final(truth[v]) for v in vids)
        recall[recipe] = round(ok / len(vids), 4) if vids else None

    distinct = [i for i in truth if truth[i] is None and not any(truth.get(f"{i}~{r}") for r in RECIPES)]
    distinct_removed = [i for i in distinct if i in removed]
    natural, false = [], []
    for i in distinct_removed:
        j = jaccard(sh(i), sh(removed[i]["duplicate_of"]))
        (natural if j >= thr else false).append((i, removed[i]["duplicate_of"], round(j, 3)))
    boiler_removed = [i for i in boiler_ids if i in removed]

    pairs = sorted(candidate_pairs, key=lambda e: stable_hash64("audit", e[0][1], e[1][1]))[:1000]
    js = [jaccard(sh(a[1]), sh(b[1])) for a, b in pairs]
    return {
        "recall": recall,
        "distinct_docs": len(distinct),
        "distinct_removed": len(distinct_removed),
        "false_removal_rate": round(len(false) / len(distinct), 5),
        "natural_near_dups_removed": len(natural),
        "false_removals": false[:10],
        "natural_examples": natural[:5],
        "boilerplate_docs": len(boiler_ids), "boilerplate_removed": len(boiler_removed),
        "audit_pairs": len(js),
        "audit_fp_rate": round(sum(j < thr for j in js) / len(js), 5) if js else None,
    }


def variant_jaccards(docs, truth, shingle, size):
    """Exact Jaccard of each variant with its original, per recipe (mean and 5th percentile)."""
    by_id = {d.id: d for d in docs}
    out = {}
    for recipe in RECIPES:
        js = sorted(jaccard(shingle_hashes(by_id[v].text, shingle, size), shingle_hashes(by_id[o].text, shingle, size))
                    for v, o in truth.items() if o is not None and v.endswith("~" + recipe))
        out[recipe] = {"mean": round(sum(js) / len(js), 3), "p05": round(js[len(js) // 20], 3)}
    return out


def section_for(shingle: str, size: int, threshold: float, verify_margin: float, num_perm: int = 128) -> dict:
    section = load_defaults()["dedup"]
    bands, rows = _optimal_param(threshold, num_perm, 0.5, 0.5)
    verify = max(0.0, threshold - verify_margin) if verify_margin >= 0 else 0.0
    section["minhash"] = dict(section["minhash"], shingle=shingle, shingle_size=size, threshold=threshold,
                              num_perm=num_perm, bands=bands, rows=rows, verify_threshold=verify)
    return section


def run_beam(docs, section):
    import pickle
    import tempfile

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.dedup import Dedup

    out = Path(tempfile.mkdtemp())

    def dump(name):
        def write(v):
            with open(out / name, "wb") as f:
                pickle.dump(v, f)
        return write

    t0 = time.time()
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        res = p | beam.Create(docs, reshuffle=False) | Dedup(section)
        res["kept"] | "K" >> beam.Map(lambda d: d.id) | "KL" >> beam.combiners.ToList() | "KD" >> beam.Map(dump("kept"))
        res["rejected"] | "RL" >> beam.combiners.ToList() | "RD" >> beam.Map(dump("rejected"))
        res["stats"] | "SD" >> beam.Map(dump("stats"))
    load = lambda n: pickle.load(open(out / n, "rb"))  # noqa: E731
    return set(load("kept")), load("rejected"), load("stats"), time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wiki", type=int, default=4000)
    ap.add_argument("--reviews", type=int, default=1000)
    ap.add_argument("--variants", type=int, default=1200, help="articles that get one variant each")
    ap.add_argument("--boilerplate", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--beam", action="store_true", help="also run the default config through the Beam graph")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--shingles", nargs="*", default=["char3", "char4", "char5", "char7", "word3", "word5"])
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.6, 0.7, 0.8])
    ap.add_argument("--verify-margins", type=float, nargs="*", default=[0.05],
                    help="verify_threshold = threshold - margin; a negative margin turns verification off")
    ap.add_argument("--json", type=Path, help="write all results here")
    args = ap.parse_args()

    docs, truth, boiler = build(args.wiki, args.reviews, args.variants, args.boilerplate, args.seed)
    print(f"labelled set: {len(docs)} docs, {sum(v is not None for v in truth.values())} variants, "
          f"{len(boiler)} boilerplate-sharing, from {DATA}")
    results = {"set": {"docs": len(docs), "variants": sum(v is not None for v in truth.values()),
                       "boilerplate": len(boiler), "seed": args.seed}, "sweep": [], "variant_jaccard": {}}

    if not args.no_sweep:
        for spec in args.shingles:
            shingle, size = spec[:4], int(spec[4:])
            results["variant_jaccard"][spec] = variant_jaccards(docs, truth, shingle, size)
            for thr, margin in [(t, m) for t in args.thresholds for m in args.verify_margins]:
                sec = section_for(shingle, size, thr, margin)
                t0 = time.time()
                r = evaluate(docs, truth, boiler, sec)
                r.update(shingle=shingle, size=size, threshold=thr, bands=sec["minhash"]["bands"],
                         verify_threshold=sec["minhash"]["verify_threshold"],
                         rows=sec["minhash"]["rows"], seconds=round(time.time() - t0, 1))
                results["sweep"].append(r)
                print(f"{shingle}{size} t={thr} verify={r['verify_threshold']:.2f} b×r={r['bands']}×{r['rows']} recall={r['recall']} "
                      f"false_removal={r['false_removal_rate']} natural={r['natural_near_dups_removed']} "
                      f"boiler_removed={r['boilerplate_removed']} audit_fp={r['audit_fp_rate']}", flush=True)
        print(json.dumps(results["variant_jaccard"], indent=1))

    if args.beam:
        sec = load_defaults()["dedup"]
        kept, rejected, stats, secs = run_beam(docs, sec)
        ref = dedup_in_memory(docs, sec)
        r = evaluate(docs, truth, boiler, sec, kept, rejected, ref.candidate_pairs)
        r["beam_seconds"] = round(secs, 1)
        r["beam_matches_reference"] = kept == {d.id for d in ref.kept}
        r["beam_audit"] = stats["audit"]
        r["beam_cluster_size_histogram"] = stats["cluster_size_histogram"]
        r["beam_cc_unconverged_nodes"] = stats["cc_unconverged_nodes"]
        results["beam_default"] = r
        print("beam (default config):", json.dumps(r, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
