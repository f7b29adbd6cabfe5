"""Generic Beam stage: a list of ``DocumentFilter`` objects as one composite PTransform.

``FilterStage(stage, filters)`` applied to ``PCollection[Document]`` returns
``{"kept": PCollection[Document], "rejected": PCollection[dict]}``.  Counters (namespace
``polyko``, names per docs/architecture.md) are incremented per document:

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
from typing import Any, Iterable, Mapping, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.base import Document, DocumentFilter, run_filters

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


def text_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


class CounterCache:
    """Beam counters are cheap to create but not free; cache them by name per worker."""

    def __init__(self) -> None:
        self._counters: dict[str, Any] = {}

    def inc(self, name: str, n: int = 1) -> None:
        c = self._counters.get(name)
        if c is None:
            c = self._counters[name] = Metrics.counter(NAMESPACE, name)
        c.inc(n)


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
    def __init__(self, stage: str, filters: Sequence[DocumentFilter]) -> None:
        self.stage = stage
        self.filters = list(filters)

    def setup(self) -> None:
        self._counters = CounterCache()
        for f in self.filters:
            f.ensure_setup()

    def process(self, doc: Document):
        kept, rejected = apply_stage(self.stage, self.filters, doc, self._counters)
        if kept:
            yield doc
        else:
            yield beam.pvalue.TaggedOutput(REJECTED_TAG, rejected)


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
        self._counters = CounterCache()

    def process(self, doc: Document):
        n = text_bytes(doc.text)
        self._counters.inc("output.kept")
        self._counters.inc("output.bytes", n)
        self._counters.inc(f"output.source.{doc.source}.kept")
        self._counters.inc(f"output.source.{doc.source}.bytes", n)
        yield doc
