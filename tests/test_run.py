"""`polyko run` end to end (FnApiRunner), output layout, stats.json, accounting, Dataflow graph."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.cli import main as polyko
from pipeline.io import read_jsonl_records
from pipeline.run import SAMPLE_GLOB, build_pipeline, pipeline_options
from pipeline.stats import StatsError, build_stats, load_stats

FIXTURES = Path(__file__).parent / "fixtures"
ONLY_SPINE = ["--set", "langid.enabled=false", "--set", "quality.enabled=false", "--set", "dedup.enabled=false",
              "--set", "pii.enabled=false", "--set", "tokenize.enabled=false"]


@pytest.fixture(scope="module")
def inputs(shared_data, tmp_path_factory):
    """Real records from four sources plus a junk record that normalises to nothing."""
    d = tmp_path_factory.mktemp("inputs")
    picked = {}
    for name, n in (("ko_wiki.jsonl.gz", 25), ("ko_nsmc_single.jsonl.gz", 40), ("ko_comments.jsonl.gz", 40),
                    ("other_lang.jsonl.gz", 15)):
        with gzip.open(shared_data / name, "rt", encoding="utf-8") as fh:
            picked[name] = [json.loads(next(fh)) for _ in range(n)]
    with gzip.open(d / "wiki.jsonl.gz", "wt", encoding="utf-8") as fh:
        for r in picked["ko_wiki.jsonl.gz"]:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(d / "mixed.jsonl", "w", encoding="utf-8") as fh:
        for name in ("ko_nsmc_single.jsonl.gz", "ko_comments.jsonl.gz", "other_lang.jsonl.gz"):
            for r in picked[name]:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        fh.write(json.dumps({"id": "junk-1", "text": "&nbsp;<br/>\u200b \x00"}) + "\n")
    n = sum(len(v) for v in picked.values()) + 1
    return {"dir": d, "n": n, "patterns": [str(d / "*.jsonl.gz"), str(d / "*.jsonl"), str(FIXTURES / "ko_pages.warc.gz")]}


def test_run_end_to_end_writes_contract_outputs(inputs, tmp_path, capsys):
    out = tmp_path / "run"
    rc = polyko(["run", *inputs["patterns"], "--output", str(out), "--runner=FnApiRunner", "-q", *ONLY_SPINE])
    assert rc == 0, capsys.readouterr().err
    stats = load_stats(str(out))
    n_in = inputs["n"] + 3  # + 3 HTML pages from the WARC
    assert stats["status"] == "ok" and stats["accounting"]["ok"]
    assert stats["documents"] == {"in": n_in, "kept": n_in - 1, "rejected": 1, "errors": 0}
    assert stats["stages"]["normalize"]["drop"] == {"empty": 1}
    assert stats["stages_enabled"] == ["normalize"] and stats["runner"] == "FnApiRunner"
    assert stats["input_files"] == 3 and stats["read"]["files"] == 3
    assert stats["sources"]["kowiki_20220916"]["in"] == 25 == stats["sources"]["kowiki_20220916"]["kept"]
    assert stats["sources"]["ko_pages.warc.gz"]["in"] == 3
    assert stats["counters"]["read.records"] == n_in
    assert stats["bytes"]["in"] >= stats["bytes"]["kept"] > 0
    assert stats["read"]["counts"]["warc_skipped_non_html"] == 1
    kept = read_jsonl_records(str(out / "kept"))
    rejected = read_jsonl_records(str(out / "rejected"))
    assert len(kept) == n_in - 1 and len({r["id"] for r in kept}) == len(kept)
    assert set(kept[0]) == {"id", "text", "source", "metadata", "signals"}
    assert [(r["id"], r["stage"], r["reason"]) for r in rejected] == [("junk-1", "normalize", "empty")]
    assert read_jsonl_records(str(out / "errors")) == []
    assert (out / "config.yaml").exists() and not (out / "_polyko_tmp").exists()
    printed = capsys.readouterr().out
    assert "accounting ok" in printed
    # output.write_report (on by default): the run ends with its report, rendered from this run
    report = (out / "report.html").read_text(encoding="utf-8")
    assert stats["run_id"] in report and f"report: {out / 'report.html'}" in printed


def test_parquet_output_and_num_files(inputs, tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    rc = polyko(["run", inputs["patterns"][0], "--output", str(out), "--runner=FnApiRunner", "-q", *ONLY_SPINE,
                 "--set", "output.kept_format=parquet", "--set", "output.num_kept_files=2"])
    assert rc == 0
    files = sorted((out / "kept").glob("*.parquet"))
    assert len(files) == 2
    table = pq.read_table(files[0]).to_pylist() + pq.read_table(files[1]).to_pylist()
    assert len(table) == 25 and all(json.loads(r["metadata"])["license"] for r in table)


def test_config_errors_fail_before_any_work(tmp_path, capsys):
    out = tmp_path / "never"
    rc = polyko(["run", "--output", str(out), "--set", "normalize.unicode_fom=NFC", "--runner=FnApiRunner"])
    assert rc == 2 and "normalize.unicode_fom" in capsys.readouterr().err
    rc = polyko(["run", "--output", str(out), "--set", "output.kept_format=csv", "--runner=FnApiRunner"])
    assert rc == 2 and "output.kept_format" in capsys.readouterr().err
    # a value only the stage itself can judge: the graph is built (filters constructed) before
    # the output directory is touched
    rc = polyko(["run", "--output", str(out), "--set", "normalize.unicode_form=NFX", "--runner=FnApiRunner"])
    assert rc == 2 and "NFX" in capsys.readouterr().err
    assert not out.exists()


def test_bundled_sample_is_the_default_input_and_is_real_licensed_text():
    from pipeline.io import check_inputs

    files = check_inputs([SAMPLE_GLOB])
    total = sum(Path(f).stat().st_size for f in files)
    assert 2_000_000 <= total <= 4_000_000
    sources, licenses = set(), set()
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                sources.add(r["source"])
                licenses.add(r["license"])
    assert {"kowiki_20220916", "nsmc", "kote", "chatbot_data", "curse_detection", "python_docs"} <= sources
    assert "lingua_testdata" not in sources and "konlpy_corpus" not in sources
    assert (Path(SAMPLE_GLOB).parent / "DATA_LICENSES.md").exists()


def test_default_runner_is_local_multiprocessing_fnapi_runner():
    """Not DirectRunner: Beam 2.77's DirectRunner tries to download the Prism binary first."""
    import os

    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

    opts = pipeline_options([])
    assert opts.view_as(StandardOptions).runner == "FnApiRunner"
    assert opts.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert opts.view_as(DirectOptions).direct_num_workers == (os.cpu_count() or 1)
    assert pipeline_options(["--runner=FnApiRunner"]).view_as(StandardOptions).runner == "FnApiRunner"


def test_dataflow_graph_builds_offline_with_dry_run():
    """DataflowRunner with --dry_run renders the job (proto graph, options) without submitting."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.config import load_config

    cfg = load_config(None, ["langid.enabled=false", "quality.enabled=false", "dedup.enabled=false",
                             "pii.enabled=false", "tokenize.enabled=false"])
    opts = PipelineOptions(["--runner=DataflowRunner", "--project=polyko-test", "--region=europe-west4",
                            "--temp_location=gs://polyko-test/tmp", "--no_auth", "--dry_run=True",
                            "--sdk_location=container", "--job_name=polyko-dry-run"])
    p = beam.Pipeline(options=opts)
    build_pipeline(p, ["gs://polyko-test/in/*.jsonl.gz", "gs://polyko-test/cc/*.warc.gz"],
                   "gs://polyko-test/out/_polyko_tmp/x", cfg)
    result = p.run()
    names = {t.unique_name for t in result.job.proto_pipeline.components.transforms.values()}
    for label in ("Read/MatchFiles", "Read/ReadFiles", "Read/SpreadDocuments", "Normalize/Apply",
                  "CountKept", "WriteKept/Write", "WriteRejected/Normalize/Write", "WriteErrors/Write"):
        assert label in names, label
    job = json.loads(str(result.job))
    assert job["name"] == "polyko-dry-run" and job["type"] == "JOB_TYPE_BATCH"
    # the sinks write under the gs:// work dir (file patterns from the steps' display data)
    patterns = [dd.payload for t in result.job.proto_pipeline.components.transforms.values()
                for dd in t.display_data if b"File Pattern" in dd.payload]
    for name in (b"kept/part-", b"rejected/normalize-part-", b"errors/part-"):
        assert any(b"gs://polyko-test/out/_polyko_tmp/x/" + name in pat for pat in patterns), name


def test_accounting_mismatch_is_detected(inputs, tmp_path):
    out = tmp_path / "acc"
    assert polyko(["run", inputs["patterns"][0], "--output", str(out), "--runner=FnApiRunner", "-q", *ONLY_SPINE]) == 0
    good = load_stats(str(out))
    counters = dict(good["counters"])
    assert build_stats(counters, stages_enabled=["normalize"])["accounting"]["ok"]
    lost = dict(counters, **{"output.kept": counters["output.kept"] - 1, "output.kept_written": counters["output.kept"] - 1})
    bad = build_stats(lost, stages_enabled=["normalize"])
    assert bad["status"] == "accounting_mismatch" and not bad["accounting"]["ok"]
    assert any("kept" in p for p in bad["accounting"]["problems"])
    with pytest.raises(StatsError, match="no stats.json"):
        load_stats(str(tmp_path))


def test_default_local_runner_runs_multiprocess_without_network(inputs, tmp_path, caplog):
    """The default (no --runner) path: SDK worker subprocesses, no Prism download attempt."""
    import logging

    from pipeline.run import run

    caplog.set_level(logging.INFO)
    stats = run([inputs["patterns"][0]], str(tmp_path / "mp"), overrides=[
        "langid.enabled=false", "quality.enabled=false", "dedup.enabled=false", "pii.enabled=false",
        "tokenize.enabled=false"], progress=False)
    assert stats["runner"] == "FnApiRunner" and stats["accounting"]["ok"]
    assert stats["documents"]["kept"] == 25
    assert not any("prism" in r.getMessage().lower() for r in caplog.records)
