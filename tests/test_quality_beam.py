"""The quality filters as a Beam stage (pipeline.stages.FilterStage on FnApiRunner): the same
decisions as plain Python, boilerplate counts and drop reasons as Beam counters, signals on
kept and rejected records."""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from filters.base import Document, run_filters
from filters.quality import build_filters
from pipeline.config import load_config
from pipeline.stages import FilterStage

FIXTURE = Path(__file__).parent / "fixtures" / "quality_ko.jsonl.gz"
FOOTER = "홍길동 기자 hong@yna.co.kr\n저작권자 © 연합뉴스 무단전재 및 재배포 금지"


def _docs() -> list[Document]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as f:
        recs = [json.loads(line) for line in f]
    docs = [Document(r["id"], r["text"], r["source"]) for r in recs]
    # three articles carry a news footer; one document is a line repeated (repetition junk)
    for d in docs[:3]:
        d.text = d.text + "\n" + FOOTER
    first_line = docs[5].text.split("\n")[0]
    docs.append(Document("junk-rep", "\n".join([first_line] * 15), "junk"))
    return docs


def test_quality_stage_in_beam_matches_plain_python():
    section = load_config()["quality"]
    expected = {}
    for d in _docs():
        res = run_filters(build_filters(section), d)
        expected[d.id] = None if res.kept else res.reason
    p = BeamTestPipeline(runner="FnApiRunner")
    out = p | beam.Create(_docs()) | "Quality" >> FilterStage("quality", build_filters(section))
    assert_that(out["kept"] | "K" >> beam.Map(lambda d: (d.id, "quality.dup_line_frac" in d.signals,
                                                          "무단전재" in d.text)),
                equal_to([(i, True, False) for i, r in expected.items() if r is None]), label="Kept")
    assert_that(out["rejected"] | "R" >> beam.Map(lambda r: (r["id"], r["reason"], "quality.chars" in r["signals"])),
                equal_to([(i, r, True) for i, r in expected.items() if r is not None]), label="Rejected")
    result = p.run()
    result.wait_until_finish()
    got = {r.key.metric.name: r.committed for r in
           result.metrics().query(MetricsFilter().with_namespace("polyko"))["counters"]}
    assert got["quality.count.boilerplate_lines"] == 6
    assert got["quality.drop.dup_line_frac"] == 1
    drops = Counter(r for r in expected.values() if r)
    assert drops["too_short_chars"] >= 30  # the kowiki stubs
    for reason, n in drops.items():
        assert got[f"quality.drop.{reason}"] == n
    assert got["quality.in"] == len(expected)
