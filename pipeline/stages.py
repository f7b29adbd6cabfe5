"""Generic Beam stage: a list of ``DocumentFilter`` objects as one composite PTransform.

``FilterStage(stage, filters)`` applied to ``PCollection[Document]`` returns
``{"kept": PCollection[Document], "rejected": PCollection[dict]}``.  Counters (namespace
``polyko``, names per docs/architecture.md) are counted per document and handed to Beam once per
bundle (``BundleCounters``):

* ``<stage>.in``, ``<stage>.kept``, ``<stage>.drop.<reason>``, ``<stage>.bytes_in``,
  ``<stage>.bytes_out`` (UTF-8 bytes of ``doc.text`` before / after the stage, kept docs only
  for bytes_out),
* ``<stage>.count.<name>`` drained from the filters after each document,
* per source: ``<stage>.source.<source>.in``, ``.drop.<reason>``, ``.count.<name>``.

The filters are pickled into the DoFn and ``ensure_setup()`` runs once per worker in
``DoFn.setup``, so models load once per process, not per bundle or element.
"""
from __future__ import annotations

import importlib
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.base import Document, DocumentFilter, run_filters
from pipeline.staging import global_value

NAMESPACE = "polyko"
REJECTED_TAG = "rejected"

# Stage name -> Beam label.  Labels are part of the job graph (Dataflow update compatibility,
# metric step names), so they never change with config.
STAGE_LABELS = {
    "normalize": "Normalize",
    "langid": "LangID",
    "quality": "Quality",
    "dedup": "Dedup",
    "pii": "PII",
    "tokenize": "Tokenize",
}

# Stages built from a ``filters.<module>.build_filters(section)`` function.
FILTER_MODULES = {
    "normalize": "filters.normalize",
    "langid": "filters.langid",
    "quality": "filters.quality",
    "pii": "filters.pii",
}


_measured: dict[int, tuple[str, int]] = {}
MEASURED_MAX = 2048


def text_bytes(text: str) -> int:
    """UTF-8 length of ``text``.

    Every stage counts the bytes of a document's text in and out, and from one stage to the next
    that is mostly the same ``str`` object.  Encoding it each time took ~1 s of the workers' ~90
    CPU-s at 100k documents (py-spy), so the lengths of the last ``MEASURED_MAX`` texts are kept,
    keyed by object identity.  The entry holds the text itself, so its id cannot be reused while
    it is there; more than one filter stage's batch (``_FilterStageFn.BATCH``) lies between two
    measurements of one text.  Under the GIL a concurrent ``clear`` only costs a recount.
    """
    hit = _measured.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1]
    n = len(text.encode("utf-8"))
    if len(_measured) >= MEASURED_MAX:
        _measured.clear()
    _measured[id(text)] = (text, n)
    return n


class BundleCounters:
    """The polyko counters of one DoFn, summed per bundle and added to Beam's once per name.

    The stages make ~30 increments per document; each Beam ``inc`` finds the bundle's metrics
    container and cell again: ~1.3 of the workers' ~90 CPU-s at 100k documents (py-spy).  A dict
    takes the increments; ``flush`` (in ``finish_bundle``, still inside the bundle, so a failed
    bundle's counts go with it) hands the sums to Beam, and ``start`` drops what a failed bundle
    left behind.  Anything with ``inc(name, n)`` serves ``apply_stage``, so tests pass a Counter.
    """

    def __init__(self) -> None:
        self._pending: defaultdict[str, int] = defaultdict(int)
        self._beam: dict[str, Any] = {}

    def inc(self, name: str, n: int = 1) -> None:
        self._pending[name] += n

    def start(self) -> None:
        self._pending.clear()

    def flush(self) -> None:
        for name, n in self._pending.items():
            c = self._beam.get(name)
            if c is None:
                c = self._beam[name] = Metrics.counter(NAMESPACE, name)
            c.inc(n)
        self._pending.clear()


def apply_stage(stage: str, filters: Sequence[DocumentFilter], doc: Document,
                counters: Any) -> tuple[bool, dict | None]:
    """Run the filters on ``doc`` and count; returns ``(kept, rejected_record_or_None)``.

    Plain Python (``counters`` is anything with ``inc(name, n)``) so tests can check the counting
    without a runner.
    """
    source = doc.source
    counters.inc(f"{stage}.in")
    counters.inc(f"{stage}.source.{source}.in")
    counters.inc(f"{stage}.bytes_in", text_bytes(doc.text))
    result = run_filters(filters, doc)
    for f in filters:
        for name, n in f.drain_counts().items():
            counters.inc(f"{stage}.count.{name}", n)
            if f.counts_per_source:
                counters.inc(f"{stage}.source.{source}.count.{name}", n)
    if result.kept:
        counters.inc(f"{stage}.kept")
        counters.inc(f"{stage}.bytes_out", text_bytes(doc.text))
        return True, None
    reason = result.reason or "unspecified"
    counters.inc(f"{stage}.drop.{reason}")
    counters.inc(f"{stage}.source.{source}.drop.{reason}")
    return False, doc.to_record() | {"stage": stage, "reason": reason}


class _FilterStageFn(beam.DoFn):
    """Runs ``apply_stage`` on ``BATCH`` documents at a time.

    The filter stages are fused into one step, so one document at a time would pass normalize,
    language ID and quality before the next one starts, and every stage would find its tables and
    the fastText model pushed out of the CPU cache by the others.  Holding ``BATCH`` documents
    per stage lets each stage run over them back to back, as the kernels do: at 100k documents
    (``time.thread_time`` around the filters in both workers) language ID took 71 instead of
    84 µs a document and normalize 28 instead of 31; quality did not change.  Documents are in
    the global window (batch pipelines), as ``finish_bundle``'s outputs assume.
    """

    BATCH = 256

    def __init__(self, stage: str, filters: Sequence[DocumentFilter]) -> None:
        self.stage = stage
        self.filters = list(filters)

    def setup(self) -> None:
        self._counters = BundleCounters()
        for f in self.filters:
            f.ensure_setup()

    def start_bundle(self) -> None:
        self._counters.start()
        self._batch: list[Document] = []

    def finish_bundle(self):
        yield from self._apply_batch(wrap=global_value)
        self._counters.flush()

    def process(self, doc: Document):
        self._batch.append(doc)
        if len(self._batch) >= self.BATCH:
            yield from self._apply_batch()

    def _apply_batch(self, wrap=lambda x: x):
        batch, self._batch = self._batch, []
        for doc in batch:
            kept, rejected = apply_stage(self.stage, self.filters, doc, self._counters)
            if kept:
                yield wrap(doc)
            else:
                yield beam.pvalue.TaggedOutput(REJECTED_TAG, wrap(rejected))


class FilterStage(beam.PTransform):
    """``PCollection[Document] -> {"kept": ..., "rejected": ...}`` for one stage's filters."""

    def __init__(self, stage: str, filters: Iterable[DocumentFilter]) -> None:
        super().__init__()
        self.stage = stage
        self.filters = list(filters)
        for f in self.filters:
            if f.stage and f.stage != stage:
                raise ValueError(f"filter {type(f).__name__} belongs to stage {f.stage!r}, not {stage!r}")

    def expand(self, docs):
        out = docs | "Apply" >> beam.ParDo(_FilterStageFn(self.stage, self.filters)).with_outputs(
            REJECTED_TAG, main="kept")
        return {"kept": out.kept, "rejected": out[REJECTED_TAG]}


def build_stage_filters(stage: str, section: Mapping[str, Any]) -> list[DocumentFilter]:
    """Import ``filters.<stage>`` lazily (only for enabled stages) and build its filters."""
    module_name = FILTER_MODULES[stage]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RuntimeError(f"stage {stage!r} is enabled but {module_name} cannot be imported ({exc}); "
                           f"disable it with --set {stage}.enabled=false") from exc
    filters = module.build_filters(dict(section))
    if not isinstance(filters, list) or not all(isinstance(f, DocumentFilter) for f in filters):
        raise TypeError(f"{module_name}.build_filters must return list[DocumentFilter]")
    return filters


class CountOutput(beam.DoFn):
    """Counts the final kept set: ``output.kept``, ``output.bytes`` and per source
    ``output.source.<source>.kept|bytes`` (stats.json ``documents.kept`` and ``sources``)."""

    def setup(self) -> None:
        self._counters = BundleCounters()

    def start_bundle(self) -> None:
        self._counters.start()

    def finish_bundle(self) -> None:
        self._counters.flush()

    def process(self, doc: Document):
        n = text_bytes(doc.text)
        self._counters.inc("output.kept")
        self._counters.inc("output.bytes", n)
        self._counters.inc(f"output.source.{doc.source}.kept")
        self._counters.inc(f"output.source.{doc.source}.bytes", n)
        yield doc
