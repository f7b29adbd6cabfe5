"""polyko report / inspect: bounded summaries, the threshold table, and the HTML page of a real run.

The page tests run `polyko run` on a few hundred real documents from the development data (with a
near-copy pair carrying script/onerror payloads injected into a real Wikipedia article), render
the report, and open it in headless Chromium.
"""
from __future__ import annotations

import copy
import gzip
import html
import itertools
import json
import math
import os
import random
import shutil
from pathlib import Path

import pytest

from filters.base import Document, run_filters
from pipeline import report
from pipeline.report import (THRESHOLD_RULES, HashSample, Reservoir, StreamingHistogram, collect, config_value,
                             parse_set, render_html, terminal_safe)

PAYLOAD = ("<svg/onload=window.__pwned=1> <img/src=x/onerror=window.__pwned=2> "
           "<script/x>window.__pwned=3</script ")


def _read_jsonl(path: Path, n: int | None = None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in itertools.islice(fh, n)]


# ------------------------------------------------------------------------------ pure pieces

def test_streaming_histogram_counts_are_exact_and_bounded(shared_data):
    texts = [r["text"] for r in _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 3000)]
    values = [float(len(t)) for t in texts] + [len(t) / 997.0 for t in texts[:500]]
    hist = StreamingHistogram(max_bins=40)
    for i, v in enumerate(values):
        hist.add(v, i % 3)
    rows = hist.rows()
    assert len(rows) <= 40
    assert sum(sum(c) for _, _, c in rows) == len(values)
    assert hist.min == min(values) and hist.max == max(values)
    # Every value lies in exactly the bin the histogram counted it in.
    recount = [[0, 0, 0] for _ in rows]
    for i, v in enumerate(values):
        k = next(j for j, (lo, hi, _) in enumerate(rows) if lo <= v < hi)
        recount[k][i % 3] += 1
    assert recount == [c for _, _, c in rows]
    med = hist.quantile(0.5)
    true_med = sorted(values)[len(values) // 2]
    width = rows[0][1] - rows[0][0]
    assert abs(med - true_med) <= width


def _sequential_histogram(values, classes, max_bins=40):
    """The per-value algorithm the buffered histogram must reproduce: double the width whenever
    the span of bins seen so far exceeds ``max_bins``."""
    width, bins, lo, hi = 2.0 ** -20, {}, None, None
    for x, c in zip(values, classes):
        k = math.floor(x / width)
        lo, hi = (k, k) if lo is None else (min(lo, k), max(hi, k))
        while hi - lo + 1 > max_bins:
            merged = {}
            for kk, counts in bins.items():
                tgt = merged.setdefault(kk // 2, [0, 0, 0])
                for i, n in enumerate(counts):
                    tgt[i] += n
            bins, width = merged, width * 2
            k, lo, hi = math.floor(x / width), lo // 2, hi // 2
        bins.setdefault(k, [0, 0, 0])[c] += 1
    return width, bins


def test_buffered_histogram_equals_the_per_value_algorithm_in_any_order(shared_data):
    texts = [r["text"] for r in _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 2000)]
    values = [float(len(t)) for t in texts] + [-len(t) / 7.0 for t in texts[:300]] + [1e-7, 3e6]
    classes = [i % 3 for i in range(len(values))]
    rng = random.Random(5)
    for trial in range(4):
        order = list(range(len(values)))
        rng.shuffle(order)
        vals, cls = [values[i] for i in order], [classes[i] for i in order]
        hist = StreamingHistogram(max_bins=40)
        hist.BATCH = 97 + trial * 500           # flushes mid-stream, at different points
        for v, c in zip(vals, cls):
            hist.add(v, c)
        width, bins = _sequential_histogram(vals, cls)
        assert hist.width == width
        assert {k: v for k, v in hist.bins.items() if any(v)} == bins
        assert hist.n == len(values) and hist.min == min(values) and hist.max == max(values)


def test_signal_summary_buffered_numbers_equal_the_per_value_path(shared_data):
    """SignalSummary buffers ints and floats and bins them a batch at a time: the linear and log10
    histograms, non-positive counts and categories equal the plain per-value definition."""
    from pipeline.report import SignalSummary

    texts = [r["text"] for r in _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 1500)]
    values: list = []
    for i, t in enumerate(texts):
        values += [len(t), round(t.count(" ") / max(len(t), 1), 4), -i, 0, 0.0, i % 2 == 0,
                   "fasttext" if i % 3 else "script", None]
    values += [float("nan"), float("inf"), -float("inf"), 1e-7, 2 ** 60, 3e6, [1, 2]]
    classes = [i % 3 for i in range(len(values))]

    linear, log10, nonpositive, categories = StreamingHistogram(), StreamingHistogram(), [0, 0, 0], {}
    for v, c in zip(values, classes):           # the per-value definition
        if isinstance(v, (bool, str)):
            key = str(v).lower() if isinstance(v, bool) else v
            categories.setdefault(key, [0, 0, 0])[c] += 1
        elif isinstance(v, (int, float)) and math.isfinite(v):
            linear.add(float(v), c)
            if v > 0:
                log10.add(math.log10(v), c)
            else:
                nonpositive[c] += 1
    summ = SignalSummary("x")
    old_batch = StreamingHistogram.BATCH
    StreamingHistogram.BATCH = 1000              # flushes mid-stream too
    try:
        for v, c in zip(values, classes):
            summ.add(v, c)
    finally:
        StreamingHistogram.BATCH = old_batch
    summ.flush()
    for got, want in ((summ.linear, linear), (summ.log10, log10)):
        assert (got.width, got.bins, got.n, got.min, got.max, got.all_integer) == (
            want.width, want.bins, want.n, want.min, want.max, want.all_integer)
    assert summ.nonpositive == nonpositive and summ.categories == categories
    assert sum(summ.class_totals()) == linear.n + sum(map(sum, categories.values()))


def test_integer_histogram_bins_never_split_integers():
    hist = StreamingHistogram(max_bins=40)
    for v in [0, 1, 1, 2, 3, 3, 3, 7]:
        hist.add(v)
    rows = hist.rows()
    assert all(hi - lo >= 1 for lo, hi, _ in rows)
    assert [sum(c) for _, _, c in rows if sum(c)] == [1, 2, 1, 3, 1]


def test_reservoir_is_bounded_and_uniform():
    hits = [0] * 100
    for seed in range(400):
        res = Reservoir(5, seed=seed)
        for i in range(100):
            res.add(i)
        assert len(res.items) == 5 and res.seen == 100 and len(set(res.items)) == 5
        for i in res.items:
            hits[i] += 1
    # each item is expected 400 * 5/100 = 20 times; the first and last halves are alike
    assert abs(sum(hits[:50]) - sum(hits[50:])) < 200
    assert max(hits) < 45


def test_merged_histograms_equal_the_histogram_of_all_values(shared_data):
    """Histograms of parts of a stream (as parallel scans make them), merged in any order, equal
    the histogram of the whole stream: bins, width, range and counts."""
    texts = [r["text"] for r in _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 3000)]
    for values in ([float(len(t)) for t in texts],                                  # lengths: wide range
                   [round(t.count(" ") / max(len(t), 1), 4) for t in texts],        # ratios in [0, 1]
                   [float(i % 7 - 3) for i in range(len(texts))]):                  # a few integers
        classes = [i % 3 for i in range(len(values))]
        whole = StreamingHistogram()
        for v, c in zip(values, classes):
            whole.add(v, c)
        rng = random.Random(len(values))
        cuts = sorted(rng.sample(range(1, len(values)), 4))
        parts = []
        for lo, hi in zip([0] + cuts, cuts + [len(values)]):
            h = StreamingHistogram()
            for v, c in zip(values[lo:hi], classes[lo:hi]):
                h.add(v, c)
            parts.append(h)
        parts.insert(2, StreamingHistogram())                                      # an empty part too
        for order in (parts, parts[::-1]):
            merged = StreamingHistogram()
            for h in order:
                merged.merge(h)
            assert (merged.width, merged.bins, merged.n, merged.min, merged.max, merged.all_integer) == (
                whole.width, whole.bins, whole.n, whole.min, whole.max, whole.all_integer)
            assert merged.rows() == whole.rows()


def test_category_counts_of_merged_parts_equal_one_scan(shared_data):
    """With more categories than a summary keeps, parts merged in order and then capped count
    each category as one scan does, also a category an earlier part kept and a later part sees
    only after its own first 60 (it must not be folded into "other" there)."""
    from pipeline.report import PART_MAX_CATEGORIES, SignalSummary

    words = [w for r in _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 400) for w in r["text"].split()]
    values = ["첫째"] + words[:3000] + ["첫째"] * 5         # "첫째" comes first, then again late
    assert len(set(values)) > 200
    whole = SignalSummary("x")
    for i, v in enumerate(values):
        whole.add(v, i % 3)
    parts = [SignalSummary("x", max_categories=PART_MAX_CATEGORIES) for _ in range(3)]
    bounds = [0, 1000, 2000, len(values)]
    for p, lo, hi in zip(parts, bounds, bounds[1:]):
        for i in range(lo, hi):
            p.add(values[i], i % 3)
    for p in parts[1:]:
        parts[0].merge(p)
    parts[0].cap_categories(SignalSummary.max_categories)
    assert parts[0].categories == whole.categories and len(whole.categories) == 60
    assert parts[0].other_categories == whole.other_categories
    assert sum(whole.categories["첫째"]) == 6


def test_hash_sample_is_bounded_uniform_and_independent_of_order_and_parts():
    hits = [0] * 100
    for salt in range(400):
        res = HashSample(5, salt=str(salt))
        for i in range(100):
            res.add(f"doc-{i}", i)
        assert len(res.items) == 5 and res.seen == 100 and len(set(res.items)) == 5
        for i in res.items:
            hits[i] += 1
        # the same items in another order, or in three parts merged, give the same sample
        shuffled = HashSample(5, salt=str(salt))
        order = list(range(100))
        random.Random(salt).shuffle(order)
        for i in order:
            shuffled.add(f"doc-{i}", i)
        parts = [HashSample(5, salt=str(salt)) for _ in range(3)]
        for i in range(100):
            parts[i % 3].add(f"doc-{i}", i)
        for p in parts[1:]:
            parts[0].merge(p)
        assert shuffled.items == res.items == parts[0].items and parts[0].seen == 100
    assert abs(sum(hits[:50]) - sum(hits[50:])) < 200
    assert max(hits) < 45


def test_kept_parquet_records_decode_like_jsonl(shared_data, tmp_path):
    """output.kept_format=parquet stores metadata/signals as JSON strings (docs/output-format.md)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.io import parquet_schema

    recs = _read_jsonl(shared_data / "ko_nsmc_single.jsonl.gz", 20)
    rows = [{"id": r["id"], "text": r["text"], "source": r["source"],
             "metadata": json.dumps({"rating": r["rating"]}), "signals": json.dumps({"quality.chars": len(r["text"])})}
            for r in recs]
    pq.write_table(pa.Table.from_pylist(rows, schema=parquet_schema()), tmp_path / "part-00000-of-00001.parquet")
    got = list(report.iter_records(str(tmp_path / "part-00000-of-00001.parquet")))
    assert [g["id"] for g in got] == [r["id"] for r in recs]
    assert got[3]["signals"] == {"quality.chars": len(recs[3]["text"])} and got[3]["metadata"]["rating"] == recs[3]["rating"]


def test_parse_set_rejects_unknown_keys_and_non_numbers():
    assert parse_set(["quality.length.min_chars=80"]) == [("quality.length.min_chars", 80.0)]
    with pytest.raises(ValueError, match="not a threshold"):
        parse_set(["quality.nonexistent.key=3"])
    with pytest.raises(ValueError, match="number"):
        parse_set(["langid.threshold=high"])


def test_terminal_safe_neutralises_escape_sequences():
    assert terminal_safe("a\x1b]0;pwned\x07b\n\tc") == "a\\x1b]0;pwned\\x07b\n\tc"
    assert "\x9b" not in terminal_safe("x\x9b31m")


# ------------------------------------------------------- the threshold table vs. the real filters

def _real_documents(shared_data, n_each: int = 40) -> list[Document]:
    """Varied real text: articles, stubs, reviews, comments, Korean python-docs strings with code."""
    recs = []
    for name in ("ko_wiki.jsonl.gz", "ko_wiki_stubs.jsonl.gz", "ko_nsmc_reviews.jsonl.gz",
                 "ko_nsmc_single.jsonl.gz", "ko_comments.jsonl.gz"):
        recs += _read_jsonl(shared_data / name, n_each)
    recs += [r for r in _read_jsonl(shared_data / "other_lang.jsonl.gz", 4000)
             if r.get("source") == "python_docs" and r.get("lang") in ("ko", "ja")][:n_each]
    # Lines of several reviews as one text: repetition and line-structure signals vary more.
    reviews = _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 10)
    recs.append({"id": "rep", "source": "nsmc", "text": "\n".join([reviews[0]["text"]] * 3)})
    return [Document(id=r["id"], text=r["text"], source=r["source"]) for r in recs]


def _section_with(section: dict, key: str, value) -> dict:
    out = copy.deepcopy(section)
    node = out
    parts = key.split(".")[1:]
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = type(node.get(parts[-1], value))(value) if parts[-1] in node else value
    return out


def _stage_filters(stage: str, section: dict):
    if stage == "quality":
        from filters.quality import build_filters
    else:
        from filters.langid import build_filters
    return build_filters(section)


@pytest.mark.parametrize("stage,score_all", [("langid", False), ("langid", True), ("quality", False)])
def test_threshold_table_predicts_the_real_filters(shared_data, stage, score_all):
    """For every threshold key: replaying a new value from the stored signals (what the report
    does) gives the same keep/drop as re-running the real filter with that value.  Without
    ``langid.score_all`` the documents the Hangul rule decided carry no fastText score: a higher
    ``hangul_keep_ratio`` must then say "unknown" for them, never guess."""
    from pipeline.config import load_config

    config = load_config(overrides=[f"langid.score_all={str(score_all).lower()}"])
    docs = _real_documents(shared_data, n_each=20)
    base_filters = _stage_filters(stage, config[stage])
    base = []
    for d in docs:
        doc = copy.deepcopy(d)
        res = run_filters(base_filters, doc)
        base.append((d, doc.signals, res, doc.text))
    keys = [k for k in THRESHOLD_RULES if k.startswith(stage + ".")]
    checked_keys, changed, unknown = 0, 0, 0
    for key in keys:
        rule = THRESHOLD_RULES[key]
        current = config_value(config, key)
        assert current is not None, f"{key}: no value in the config or the filter's defaults"
        values = sorted({s[rule.signal] for _, s, _, _ in base if isinstance(s.get(rule.signal), (int, float))})
        assert values, f"{key}: no document carries {rule.signal}"
        # Signals are stored rounded to 4 decimals, so replay is exact between stored values:
        # take midpoints between neighbouring distinct values (a third and two thirds up).
        mids = [(a + b) / 2 for a, b in zip(values, values[1:])] or values
        candidates = {mids[len(mids) // 3], mids[(2 * len(mids)) // 3]}
        for new in sorted(candidates):
            new_config = copy.deepcopy(config)
            node = new_config
            for p in key.split(".")[:-1]:
                node = node.setdefault(p, {})
            node[key.split(".")[-1]] = type(current)(new) if isinstance(current, int) and float(new).is_integer() \
                else float(new)
            new_filters = _stage_filters(stage, new_config[stage])
            for d, signals, res, text in base:
                in_scope = res.kept or res.reason in rule.reasons
                if not in_scope:
                    continue
                # the run's own value must agree with what happened
                assert rule.decides_removal(signals, config, current, text) is (not res.kept), (key, d.id, signals)
                predicted = rule.decides_removal(signals, new_config, new, text)
                if predicted is None:
                    assert not score_all and signals.get("langid.method") == "script", (key, d.id, signals)
                    unknown += 1
                    continue
                doc = copy.deepcopy(d)
                actual = run_filters(new_filters, doc)
                removed_here = (not actual.kept) and actual.reason in rule.reasons
                assert predicted is removed_here, (key, new, d.id, signals, actual)
                changed += predicted != (not res.kept)
        checked_keys += 1
    assert checked_keys == len(keys) and checked_keys >= 2
    assert changed > 0, "no threshold change altered any decision: the check tested nothing"
    assert (unknown > 0) is (stage == "langid" and not score_all)


def test_every_threshold_key_names_a_config_default():
    from pipeline.config import load_config

    config = load_config()
    for key, rule in THRESHOLD_RULES.items():
        assert isinstance(config_value(config, key), (int, float)), key
        assert rule.removes_when in ("<", "<=", ">", ">=")
        assert rule.signal.split(".", 1)[0] == key.split(".", 1)[0]


# ----------------------------------------------------------------- a real run, rendered

def _build_input(shared_data: Path, out: Path) -> dict:
    recs = []
    for name, n in (("ko_wiki.jsonl.gz", 40), ("ko_wiki_stubs.jsonl.gz", 25), ("ko_nsmc_single.jsonl.gz", 60),
                    ("ko_comments.jsonl.gz", 40), ("ko_nsmc_reviews.jsonl.gz", 12)):
        recs += _read_jsonl(shared_data / name, n)
    recs += [r for r in _read_jsonl(shared_data / "other_lang.jsonl.gz", 400)
             if r.get("source") == "python_docs"][:25]
    # Near-duplicates built from real text: a review block and a copy with one line changed.
    review = _read_jsonl(shared_data / "ko_nsmc_reviews.jsonl.gz", 30)[20]
    lines = review["text"].split("\n")
    recs.append(dict(review, id="near-copy", text="\n".join(lines[:-1] + ["다시 봐도 좋은 영화."])))
    # The hostile pair: a real article with script/onerror payloads on a line of their own,
    # twice (the second is an exact duplicate, so the report shows a removed copy and survivor).
    article = _read_jsonl(shared_data / "ko_wiki.jsonl.gz", 60)[50]
    parts = article["text"].split("\n")
    hostile = parts[0] + "\n" + PAYLOAD + "\n" + "\n".join(parts[1:])
    recs.append(dict(article, id="hostile-a", text=hostile))
    recs.append(dict(article, id="hostile-b", text=hostile))
    # PII added to real articles (the pii section and masks in kept text have something to show).
    for i, a in enumerate(_read_jsonl(shared_data / "ko_wiki.jsonl.gz", 70)[62:64]):
        contact = f"\n문의는 전화 010-{2345 + i}-6789 또는 이메일 editor{i}@example.org 로 해 주시기 바랍니다."
        recs.append(dict(a, id=f"pii-{i}", text=a["text"] + contact))
    # One broken line: the errors section has something to show.
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.write('{"id": "broken", "text": "끝나지 않은 줄\n')
    return {"n": len(recs) + 1, "hostile": hostile}


def make_real_run(shared_data: Path, tmp_path_factory) -> tuple[Path, dict]:
    """`polyko run` on ~250 real documents (+ the hostile pair and a broken line), once per
    pytest session and worker: tests/test_stats_view.py reuses the same run directory."""
    import fcntl

    from pipeline.cli import main

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent          # shared by the xdist workers of this session
    base = root / "polyko_report_real_run"
    run_dir = base / "run"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "polyko_report_real_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)        # one worker runs the pipeline, the others wait
        if (run_dir / "stats.json").exists() and (base / "info.json").exists():
            return run_dir, json.loads((base / "info.json").read_text(encoding="utf-8"))
        if base.exists():
            shutil.rmtree(base)
        base.mkdir(parents=True)
        info = _build_input(shared_data, base / "input.jsonl.gz")
        rc = main(["run", str(base / "input.jsonl.gz"), "--output", str(run_dir), "--quiet"])
        assert rc == 0 and (run_dir / "stats.json").exists()
        (base / "info.json").write_text(json.dumps(info), encoding="utf-8")
        return run_dir, info


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    return make_real_run(shared_data, tmp_path_factory)


def test_report_sections_and_numbers_for_a_real_run(real_run):
    run_dir, info = real_run
    path = report.write_report(run_dir, samples_per_reason=50)
    page = Path(path).read_text(encoding="utf-8")
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    for sid in ("summary", "funnel", "removals", "signals", "dedup", "pii", "tokens", "samples", "errors"):
        assert f'<section id="{sid}">' in page, sid
    assert stats["documents"]["in"] == info["n"]
    assert f"in {info['n']:,} = kept {stats['documents']['kept']:,}" in page
    # Every removal reason of the run has a sample block, and its count.
    for stage, sec in stats["stages"].items():
        for reason, n in sec.get("drop", {}).items():
            assert f'id="sample-{html.escape(stage)}-{html.escape(reason)}"' in page
            assert f"{n:,} removed" in page
    # The payloads only ever appear escaped.
    assert "<svg/onload" not in page and "<img/src" not in page and "<script" not in page
    assert html.escape(PAYLOAD.strip()) in page
    assert f'<meta http-equiv="Content-Security-Policy" content="{html.escape(report.CSP)}">' in page
    # PII counts by type
    pii = stats["stages"]["pii"]["counts"]
    assert pii.get("masked.tel", 0) >= 2 and pii.get("masked.email", 0) >= 2, pii
    assert "<td>tel</td>" in page and "<td>email</td>" in page
    # No external resource of any kind: no links, sources, imports or CSS urls.
    for needle in ("<link", " src=", " href=\"http", "@import", "url("):
        assert needle not in page, needle


def test_report_reads_the_same_counts_as_the_documents(real_run):
    run_dir, _ = real_run
    s = collect(str(run_dir))
    stats = s.stats
    assert s.docs_scanned == {"kept": stats["documents"]["kept"], "rejected": stats["documents"]["rejected"]}
    for name, summ in s.signals.items():
        tot = summ.class_totals()
        assert sum(tot) <= s.docs_scanned["kept"] + s.docs_scanned["rejected"], name
    # every document that reached langid says how it was judged; fastText's label is stored on
    # exactly those the Hangul rule did not decide
    reached_langid = stats["stages"]["langid"]["in"]
    assert sum(s.signals["langid.method"].class_totals()) == reached_langid
    by_script = stats["stages"]["langid"]["counts"]["decided_by_script"]
    assert 0 < by_script < reached_langid
    assert sum(s.signals["langid.label"].class_totals()) == reached_langid - by_script
    # the threshold of this run is the one drawn
    key, rule, value = s.thresholds["quality.chars"]
    assert key == "quality.length.min_chars" and value == config_value(s.config, key)
    # dedup: the hostile pair is one removed copy whose survivor is shown
    dedup_samples = [d for (stage, _), res in s.samples.items() if stage == "dedup" for d in res.items]
    hostile = [d for d in dedup_samples if d["id"] in ("hostile-a", "hostile-b")]
    assert len(hostile) == 1 and hostile[0]["duplicate_of"] in s.survivors


def test_parallel_scan_gives_the_one_process_summary(real_run, monkeypatch):
    """collect() scans part files in worker processes and merges their summaries: signals,
    samples, what-ifs, counts and the rendered page are those of a scan in one process."""
    run_dir, _ = real_run
    files = report._output_files(str(run_dir), "kept") + report._output_files(str(run_dir), "rejected")
    assert len(files) >= 3
    monkeypatch.setattr(report, "PARALLEL_MIN_BYTES", 0)
    spawned = []
    real_pool = report.concurrent.futures.ProcessPoolExecutor

    def counting_pool(*args, **kwargs):
        spawned.append(args)
        return real_pool(*args, **kwargs)

    monkeypatch.setattr(report.concurrent.futures, "ProcessPoolExecutor", counting_pool)
    sets = ["quality.length.min_chars=400", "quality.repetition.dup_line_frac=0.2"]
    one, two = (collect(str(run_dir), set_items=sets, workers=w) for w in (1, 2))
    assert len(spawned) == 1                      # only workers=2 used processes
    assert one.docs_scanned == two.docs_scanned
    assert set(one.signals) == set(two.signals)
    for name, a in one.signals.items():
        b = two.signals[name]
        assert (a.linear.rows(), a.log10.rows(), a.nonpositive, a.categories, a.other_categories) == (
            b.linear.rows(), b.log10.rows(), b.nonpositive, b.categories, b.other_categories), name
    assert {k: (r.seen, r.items) for k, r in one.samples.items()} == {k: (r.seen, r.items) for k, r in two.samples.items()}
    for a, b in zip(one.whatifs, two.whatifs):
        assert [getattr(a, c) for c in a.COUNTERS] == [getattr(b, c) for c in b.COUNTERS]
        assert a.samples_newly_removed.items == b.samples_newly_removed.items
        assert a.samples_newly_kept.items == b.samples_newly_kept.items
    assert one.whatifs[0].kept_would_be_removed > 0
    assert render_html(one) == render_html(two)


def test_records_are_looked_up_by_id_whatever_the_id_or_key_order(tmp_path):
    """The survivor pass pre-screens lines by their leading id; ids with quotes, backslashes and
    Hangul, and lines whose keys come in another order, are still found, others never are."""
    from pipeline.io import to_json_line

    records = [{"id": i, "text": f"문서 {n}", "source": "t", "metadata": {}, "signals": {}}
               for n, i in enumerate(['plain', 'q"uote', 'back\\slash', '한국어-7', 'x' * 300])]
    lines = [to_json_line(r) for r in records]
    lines.append(json.dumps({"text": "키가 뒤에", "id": "late-id"}, ensure_ascii=False))
    path = tmp_path / "part-00000.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n\n")
    wanted = {'q"uote', 'back\\slash', '한국어-7', 'late-id', 'absent'}
    found = {r["id"]: r for r in report.iter_records_with_ids(str(path), wanted)}
    assert set(found) == wanted - {"absent"}
    assert found["한국어-7"]["text"] == "문서 3" and found["late-id"]["text"] == "키가 뒤에"
    assert [r["id"] for r in report.iter_records(str(path))] == [r["id"] for r in records] + ["late-id"]


def test_whatif_matches_a_rerun_of_the_filter(real_run):
    """`--set quality.length.min_chars=V` predicts what re-running the filter with V removes."""
    from filters.quality import build_filters

    run_dir, _ = real_run
    base = collect(str(run_dir))
    chars = sorted(v for v in (d.get("signals", {}).get("quality.chars") for d in
                               report.iter_output(str(run_dir), "kept")) if v is not None)
    new = chars[len(chars) // 3]        # a third of the kept documents fall below it
    s = collect(str(run_dir), set_items=[f"quality.length.min_chars={new}"])
    w = s.whatifs[0]
    assert w.kept_fail_current == 0
    section = dict(base.config["quality"])
    section["length"] = dict(section.get("length") or {}, min_chars=int(new))
    filters = build_filters(section)
    expected = 0
    for rec in report.iter_output(str(run_dir), "kept"):
        doc = Document.from_record(rec)
        length = next(f for f in filters if f.name == "length")
        length.ensure_setup()
        verdict = length.filter(doc)
        expected += (not verdict.keep and verdict.reason == "too_short_chars")
    assert w.kept_would_be_removed == expected > 0
    page = render_html(s)
    assert '<section id="whatif">' in page and f"{expected:,}" in page


def test_report_cli_and_inspect(real_run, capsys):
    from pipeline.cli import main

    run_dir, _ = real_run
    out = run_dir / "alt.html"
    assert main(["report", str(run_dir), "--output", str(out), "--set", "langid.threshold=0.9"]) == 0
    assert "langid.threshold: 0.5 -> 0.9" in capsys.readouterr().out and out.exists()
    assert main(["report", str(run_dir), "--set", "quality.bogus=1"]) == 2
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    reason, n = max(stats["stages"]["quality"]["drop"].items(), key=lambda kv: kv[1])
    capsys.readouterr()
    assert main(["inspect", str(run_dir), "--stage", "quality", "--reason", reason, "--n", "3"]) == 0
    text = capsys.readouterr().out
    assert f"{n:,} removed documents match stage=quality reason={reason}; showing {min(3, n)}" in text
    assert main(["inspect", str(run_dir), "--stage", "quality", "--reason", "no-such-reason"]) == 1


def test_report_opens_in_headless_chromium_and_runs_nothing(real_run, repo_root):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Chromium not installed: run `make chromium` (Debian package `chromium`)")
    run_dir, info = real_run
    path = report.write_report(run_dir, samples_per_reason=50, output=str(run_dir / "report-chromium.html"))
    errors, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(Path(path).as_uri())
        page.wait_for_load_state("load")
        for sid in ("summary", "funnel", "removals", "signals", "dedup", "pii", "tokens", "samples", "errors"):
            assert page.locator(f"section#{sid}").count() == 1, sid
        assert page.locator("section#signals svg").count() >= 5
        # open every sample block so the hostile text is rendered
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("document.querySelector('meta[http-equiv]').content") == report.CSP
        assert page.evaluate("document.querySelectorAll('script, [onload], [onerror], iframe, object').length") == 0
        body_text = page.inner_text("body")
        assert "<svg/onload=window.__pwned=1>" in body_text
        assert "<img/src=x/onerror=window.__pwned=2>" in body_text
        shot = run_dir / "report.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert errors == [] and requests == []
    assert shot.stat().st_size > 20_000


def test_disabled_stages_render_gracefully(shared_data, tmp_path):
    from pipeline.cli import main

    recs = _read_jsonl(shared_data / "ko_nsmc_single.jsonl.gz", 30) + _read_jsonl(shared_data / "ko_wiki.jsonl.gz", 5)
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    run_dir = tmp_path / "run"
    sets = ["langid.enabled=false", "dedup.enabled=false", "pii.enabled=false", "tokenize.enabled=false"]
    argv = ["run", str(src), "--output", str(run_dir), "--quiet"]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    page = Path(report.write_report(run_dir)).read_text(encoding="utf-8")
    for stage in ("dedup", "pii", "tokenize"):
        assert f"The {stage} stage was disabled in this run" in page
    assert '<section id="signals">' in page and "quality.chars" in page
    assert "langid.score" not in page   # no langid signals without a langid stage
