"""The end-to-end benchmark's own pieces: corpus generator, stage kernels, report, runners.

The timings themselves are never asserted (benchmarks, not tests); what is checked is that the
generator is deterministic and mixes what it claims, that the kernels run the real stages on it
and account for every document, and that the report/runner plumbing does what it says.
"""
from __future__ import annotations

import gzip
import json

import pytest

from bench import corpus, report_e2e, run_all, stage_kernels
from bench.e2e import median_run, peer_limit


def _records(directory):
    out = []
    for path in sorted(directory.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh]
    return out


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("corpus") / "c600"
    labels = corpus.generate(600, out, seed=3, data_dir=shared_data)
    return out, labels


def test_corpus_is_deterministic_by_seed_and_mixes_real_kinds(small_corpus, shared_data, tmp_path):
    out, labels = small_corpus
    recs = _records(out)
    assert len(recs) == labels["documents"] == 600 == sum(labels["kinds"].values())
    again = tmp_path / "again"
    corpus.generate(600, again, seed=3, data_dir=shared_data)
    assert _records(again) == recs
    other = tmp_path / "other"
    corpus.generate(600, other, seed=4, data_dir=shared_data)
    assert [r["text"] for r in _records(other)] != [r["text"] for r in recs]
    kinds = {r["kind"] for r in recs}
    assert {"ko_wiki", "ko_reviews", "non_korean", "exact_dup", "near_dup"} <= kinds
    # shares follow MIX (loosely: 600 draws)
    assert abs(labels["kinds"]["ko_wiki"] / 600 - corpus.MIX["ko_wiki"]) < 0.08
    texts_before = set()
    for r in recs:  # an exact duplicate repeats a Korean document generated earlier
        if r["kind"] == "exact_dup":
            assert r["text"] in texts_before
        texts_before.add(r["text"])
    assert len({r["id"] for r in recs}) == 600
    assert labels["bytes"] == sum(len(r["text"].encode("utf-8")) for r in recs)


def test_stage_kernels_run_every_stage_and_account_for_documents(small_corpus):
    out, labels = small_corpus
    res = stage_kernels.measure(out)
    k = res["kernels"]
    assert list(k) == list(stage_kernels.STAGES)
    assert k["read"]["in"] == 600
    chain = ["normalize", "langid", "quality", "dedup", "pii", "tokenize"]
    for prev, cur in zip(chain, chain[1:]):
        assert k[cur]["in"] == k[prev]["kept"]
    assert k["langid"]["kept"] < k["langid"]["in"]  # the non-Korean documents go
    assert k["dedup"]["kept"] < k["dedup"]["in"]    # the injected duplicates go
    assert res["kept"] == k["tokenize"]["kept"] and res["tokens"] > res["kept"]
    assert k["write"]["in"] == 600                  # kept + every rejected record written
    assert res["stage_cpu_s"] == pytest.approx(
        sum(v["cpu_s"] for s, v in k.items() if s not in stage_kernels.IO_STAGES), abs=0.01)


def test_fit_exponent_recovers_a_power_law():
    xs = [1e4, 3e4, 1e5]
    assert report_e2e.fit_exponent(xs, [2 * x ** 1.1 for x in xs]) == pytest.approx(1.1)
    assert report_e2e.fit_exponent([10], [1]) is None


def _row(n, wall, cpu, rss):
    p = {"wall_s": wall, "cpu_s": cpu, "docs_per_s": n / wall, "docs_per_cpu_s": n / cpu, "mb_per_s": 1.0,
         "peak_rss_mb": rss, "kept": n // 2, "load_before": 1.0, "load_after": 1.0}
    return {"documents": n, "mb": n / 1000, "kinds": {}, "polyko": p,
            "datatrove_kiwi": {"wall_s": wall * 20, "cpu_s": cpu * 20, "docs_per_s": n / wall / 20,
                               "docs_per_cpu_s": n / cpu / 20, "peak_rss_mb": 100, "after_langid": n, "kept": n // 3},
            "speedup_vs_kiwi": 20.0, "cpu_speedup_vs_kiwi": 20.0}


def test_report_block_and_doc_update(tmp_path):
    meta = {"date": "2026-11-26T07:00:00+00:00", "command": "x",
            "machine": {"cpus": 2, "cpu_model": "m", "memory_gb": 8, "platform": "p", "python": "3.11"},
            "versions": {}, "runs": [_row(10_000, 10, 15, 1000), _row(100_000, 100, 150, 2000)]}
    path = tmp_path / "e2e-1.json"
    path.write_text(json.dumps(meta))
    m, rows = report_e2e.load([path])
    block = report_e2e.render(m, rows)
    assert block.startswith(report_e2e.BEGIN) and block.endswith(report_e2e.END)
    assert "| 100,000 | 100.0 |" in block and "**20.0×**" in block
    assert "documents^1.00" in block and "1M not measured" in block
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Other\nkeep me\n")
    report_e2e.update_doc(doc, block)
    report_e2e.update_doc(doc, block.replace("keep", "x"))  # second time: replaced, not appended
    text = doc.read_text()
    assert text.count(report_e2e.BEGIN) == 1 and "keep me" in text and "## End-to-end" in text


def test_peer_limits_and_missing_scripts_fail_loudly(capsys):
    assert peer_limit(["kiwi=10000", "whitespace=100000"], "kiwi") == 10_000
    assert peer_limit(["5000"], "whitespace") == 5000
    assert peer_limit(["kiwi=10"], "whitespace") == 0
    assert run_all.main(["--list"], required=("no_such_bench",)) == 2
    assert "no_such_bench" in capsys.readouterr().err
    assert run_all.main(["--only", "no_such_bench"]) == 2
    assert "stage_kernels" in run_all.discover() and "e2e" in run_all.discover()


def test_kernel_copies_measure_the_same_work_and_average_it(small_corpus):
    out, _ = small_corpus
    single = stage_kernels.measure(out)
    res = stage_kernels.measure_copies(out, 0, 2)
    assert res["copies"] == 2 and len(res["per_copy_stage_and_io_cpu_s"]) == 2
    assert res["stage_and_io_cpu_s"] == pytest.approx(sum(res["per_copy_stage_and_io_cpu_s"]) / 2, abs=0.01)
    # each copy did the whole chain on the same documents
    assert {s: (k["in"], k["kept"]) for s, k in res["kernels"].items()} == {
        s: (k["in"], k["kept"]) for s, k in single["kernels"].items()}
    assert res["kept"] == single["kept"] and res["tokens"] == single["tokens"]


def test_median_run_is_one_whole_run():
    runs = [{"wall_s": 60.0, "cpu_s": 100.0}, {"wall_s": 50.0, "cpu_s": 95.0}, {"wall_s": 70.0, "cpu_s": 90.0}]
    assert median_run(runs) is runs[0]                      # wall and CPU of the same run, not mixed
    assert median_run(runs[:2]) is runs[1]                  # even count: the lower middle
    assert median_run(runs[2:]) is runs[2]
