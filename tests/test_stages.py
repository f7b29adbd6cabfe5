"""The generic Beam stage: per-document counting, routing of drops, counters in Beam metrics."""
from __future__ import annotations

import gzip
import json
import unicodedata
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from filters.base import KEEP, Document, DocumentFilter, drop
from filters.normalize import NormalizeFilter
from pipeline.stages import FilterStage, apply_stage, build_stage_filters


class MinHangulChars(DocumentFilter):
    """A small real quality-style filter: at least ``n`` Hangul syllables; counts short lines."""

    stage = "quality"
    name = "min_hangul"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.setups = 0

    def setup(self) -> None:
        self.setups += 1

    def filter(self, doc: Document):
        hangul = sum("\uac00" <= c <= "\ud7a3" for c in doc.text)
        doc.signals["quality.hangul_chars"] = hangul
        self.count("short_lines", sum(1 for line in doc.text.split("\n") if len(line) < 10))
        return KEEP if hangul >= self.n else drop("too_few_hangul")


class CounterDict(Counter):
    def inc(self, name, n=1):
        self[name] += n


@pytest.fixture(scope="module")
def docs(shared_data):
    out = []
    with gzip.open(shared_data / "ko_nsmc_single.jsonl.gz", "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            r = json.loads(line)
            out.append(Document(r["id"], r["text"], r["source"]))
            if i == 199:
                break
    return out


def test_apply_stage_counts_and_builds_rejected_record(docs):
    f = MinHangulChars(10)
    counters = CounterDict()
    kept, rejected = [], []
    for d in docs:
        ok, rec = apply_stage("quality", [f], Document(d.id, d.text, d.source), counters)
        (kept if ok else rejected).append(rec if rec else d.id)
    expected_drop = sum(sum("\uac00" <= c <= "\ud7a3" for c in d.text) < 10 for d in docs)
    assert 0 < expected_drop < len(docs)
    assert counters["quality.in"] == len(docs) == counters["quality.source.nsmc.in"]
    assert counters["quality.drop.too_few_hangul"] == expected_drop == len(rejected)
    assert counters["quality.source.nsmc.drop.too_few_hangul"] == expected_drop
    assert counters["quality.kept"] == len(docs) - expected_drop
    assert counters["quality.bytes_in"] == sum(len(d.text.encode()) for d in docs)
    assert counters["quality.count.short_lines"] == counters["quality.source.nsmc.count.short_lines"] > 0
    rec = rejected[0]
    assert rec["stage"] == "quality" and rec["reason"] == "too_few_hangul"
    assert set(rec) >= {"id", "text", "source", "metadata", "signals"}
    assert "quality.hangul_chars" in rec["signals"]


@pytest.mark.parametrize("batch", [None, 7])
def test_filter_stage_in_beam_routes_drops_and_reports_metrics(docs, batch, monkeypatch):
    """Also with 7 documents a batch: documents leave the stage from ``process`` (full batches)
    and from ``finish_bundle`` (the rest), none lost or repeated."""
    if batch:
        from pipeline.stages import _FilterStageFn

        monkeypatch.setattr(_FilterStageFn, "BATCH", batch)
    # decomposed text: normalisation must run first and later stages see composed syllables
    inputs = [Document(d.id, unicodedata.normalize("NFD", d.text), d.source) for d in docs]
    inputs.append(Document("blank", " \u200b&nbsp; ", "nsmc"))
    expected_short = [d.id for d in docs if sum("\uac00" <= c <= "\ud7a3" for c in d.text) < 10]
    p = BeamTestPipeline(runner="FnApiRunner")
    pcoll = p | beam.Create(inputs)
    norm = pcoll | "Normalize" >> FilterStage("normalize", [NormalizeFilter()])
    qual = norm["kept"] | "Quality" >> FilterStage("quality", [MinHangulChars(10)])
    assert_that(norm["rejected"] | "NR" >> beam.Map(lambda r: (r["id"], r["stage"], r["reason"])),
                equal_to([("blank", "normalize", "empty")]), label="NormRejected")
    assert_that(qual["rejected"] | "QR" >> beam.Map(lambda r: r["id"]), equal_to(expected_short), label="QualRejected")
    assert_that(qual["kept"] | "QK" >> beam.Map(lambda d: d.text == unicodedata.normalize("NFC", d.text).strip()),
                equal_to([True] * (len(docs) - len(expected_short))), label="KeptNormalised")
    result = p.run()
    result.wait_until_finish()
    got = {r.key.metric.name: r.committed for r in
           result.metrics().query(MetricsFilter().with_namespace("polyko"))["counters"]}
    assert got["normalize.in"] == len(inputs) and got["normalize.drop.empty"] == 1
    assert got["normalize.source.nsmc.drop.empty"] == 1
    assert got["quality.in"] == len(docs) == got["normalize.kept"]
    assert got["quality.drop.too_few_hangul"] == len(expected_short)
    assert got["quality.kept"] + got["quality.drop.too_few_hangul"] == got["quality.in"]
    from filters.normalize import normalize_text

    assert got["normalize.count.changed_documents"] == sum(normalize_text(d.text) != d.text for d in inputs)


def test_filter_stage_rejects_filters_of_another_stage():
    with pytest.raises(ValueError, match="belongs to stage"):
        FilterStage("langid", [MinHangulChars(1)])


def test_build_stage_filters_imports_lazily_and_validates():
    (f,) = build_stage_filters("normalize", {"enabled": True, "unicode_form": "NFC", "strip_html": True})
    assert isinstance(f, NormalizeFilter)


def test_high_cardinality_counts_are_not_split_per_source():
    """A filter with counts_per_source=False (langid's labels) gets global counts only."""
    from collections import Counter

    from filters.base import KEEP, Document, DocumentFilter
    from pipeline.stages import apply_stage

    class LabelCounter(DocumentFilter):
        stage, name, counts_per_source = "langid", "labels", False

        def filter(self, doc):
            self.count("label.ko")
            return KEEP

    class MaskCounter(DocumentFilter):
        stage, name = "langid", "masks"

        def filter(self, doc):
            self.count("masked.tel")
            return KEEP

    class Sink:
        def __init__(self):
            self.c = Counter()

        def inc(self, name, n=1):
            self.c[name] += n

    sink = Sink()
    doc = Document(id="a", text="문의는 고객센터로 해 주세요.", source="nsmc")
    kept, _ = apply_stage("langid", [LabelCounter(), MaskCounter()], doc, sink)
    assert kept
    assert sink.c["langid.count.label.ko"] == 1
    assert "langid.source.nsmc.count.label.ko" not in sink.c
    assert sink.c["langid.source.nsmc.count.masked.tel"] == 1


def test_documents_survive_pickling_whole(docs):
    """Documents cross steps pickled (Beam's fallback coder, staging files): every field,
    including nested metadata and signals, comes back equal and unshared."""
    import pickle

    d = docs[0]
    doc = Document(d.id, d.text, d.source, metadata={"url": "https://example.kr/1", "tags": ["a"]},
                   signals={"langid.hangul_ratio": 0.98, "quality.lines": 3})
    back = pickle.loads(pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == doc and type(back) is Document
    back.signals["x"] = 1
    assert "x" not in doc.signals


def test_text_bytes_counts_utf8_of_each_text_it_is_given(docs):
    """``text_bytes`` keeps its last answer for the same str object: equal-looking and different
    texts, one after another, must each get their own UTF-8 length."""
    from pipeline.stages import MEASURED_MAX, text_bytes

    texts = [d.text for d in docs[:50]]
    texts += ["".join(list(texts[0])), texts[0] + "!", "", "abc", "한글"]
    # more texts than the cache keeps, so it is cleared on the way and ids of dropped texts recur
    texts += [f"{d.text[:20]} {i}" for i, d in zip(range(2 * MEASURED_MAX + 5), docs * 100)]
    for t in texts + texts[::-1]:
        assert text_bytes(t) == len(t.encode("utf-8"))
        assert text_bytes(t) == len(t.encode("utf-8"))


def test_bundle_counters_reach_beam_once_per_bundle_and_start_clears():
    """Increments are summed in the DoFn and handed to Beam's counters at ``flush``; ``start``
    drops what a failed bundle left behind."""
    from pipeline.stages import BundleCounters

    class CountFn(beam.DoFn):
        def setup(self):
            self.counters = BundleCounters()

        def start_bundle(self):
            self.counters.inc("test.leftover", 99)  # as if a failed bundle had left it
            self.counters.start()

        def finish_bundle(self):
            self.counters.flush()

        def process(self, text):
            self.counters.inc("test.docs")
            self.counters.inc("test.chars", len(text))
            yield text

    texts = ["가나다", "라마", "바사아자"]
    p = BeamTestPipeline(runner="FnApiRunner")
    _ = p | beam.Create(texts) | beam.ParDo(CountFn())
    res = p.run()
    res.wait_until_finish()
    got = {r.key.metric.name: r.committed for r in res.metrics().query(MetricsFilter())["counters"]}
    assert got["test.docs"] == 3 and got["test.chars"] == 9
    assert "test.leftover" not in got
