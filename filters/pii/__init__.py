"""Korean PII masking (stage ``pii``): phone numbers, RRNs, emails, bank accounts, card numbers.

Detection runs on presidio's ``AnalyzerEngine`` for language ``ko`` with no NLP model
(``NoOpNlpEngine``: nothing to download), a registry holding only the recognizers in
``filters.pii.recognizers``, and ``KoreanContextEnhancer`` for context words.  Found spans are
replaced by fixed tokens (``REPLACEMENT_TOKENS``) that the tokenizer keeps as special tokens.

Speed: most documents hold no candidate at all; ``prescreen`` (one compiled regex: a run of
>= 7 digits with separators between them, or an '@') skips the analyzer for them.  The analyzer
is built once per worker process (``setup()``, cached at module level by configuration).

    filters = build_filters(config["pii"])
    run_filters(filters, doc)      # doc.text masked, doc.signals["pii.spans"] etc. set
"""
from __future__ import annotations

import bisect
import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from filters.base import KEEP, Document, DocumentFilter, Verdict, drop


STAGE = "pii"
# Token name -> replacement written into the text (configurable under pii.tokens).
REPLACEMENT_TOKENS: dict[str, str] = {
    "tel": "<|tel|>",
    "rrn": "<|rrn|>",
    "email": "<|email|>",
    "acc": "<|acc|>",
    "crd": "<|crd|>",
}
ENTITY_NAMES = tuple(REPLACEMENT_TOKENS)

# Every format any recognizer accepts has 8+ digits with at most 3 separator characters
# (-, ., space, parentheses, '+') between consecutive digits, or an '@'.  This is a superset
# test (tests/test_pii.py checks it on every positive of the fixture set), not a detector.
PRESCREEN = re.compile(r"@|[0-9](?:[-. ()+*xX●]{0,3}[0-9*xX●]){6}")


def prescreen(text: str) -> bool:
    """True when ``text`` may hold PII, i.e. the analyzer must look at it."""
    return PRESCREEN.search(text) is not None


@dataclass(frozen=True)
class PiiSpan:
    start: int
    end: int
    name: str  # token name: tel, rrn, email, acc, crd
    score: float
    fmt: str


@dataclass(frozen=True)
class AnalyzerSettings:
    entities: tuple[str, ...] = ENTITY_NAMES
    score_threshold: float = 0.5
    context_chars_before: int = 40
    context_chars_after: int = 30
    context_boost: float = 0.35


_ANALYZERS: dict[AnalyzerSettings, Any] = {}
_ANALYZERS_LOCK = threading.Lock()


def get_analyzer(settings: AnalyzerSettings = AnalyzerSettings()):
    """The presidio ``AnalyzerEngine`` for ``settings``, built once per process."""
    with _ANALYZERS_LOCK:
        engine = _ANALYZERS.get(settings)
        if engine is None:
            engine = _ANALYZERS[settings] = _build_analyzer(settings)
        return engine


def _check_entities(entities: Iterable[str]) -> None:
    unknown = set(entities) - set(ENTITY_NAMES)
    if unknown:
        raise ValueError(f"pii.entities: unknown entity names {sorted(unknown)}; known: {sorted(ENTITY_NAMES)}")


def _build_analyzer(settings: AnalyzerSettings):
    # presidio (~1.3 CPU-s to import) is imported here, where the analyzer is built (once per
    # worker process), not with this module: the process that only builds the Beam graph never
    # pays for it. filters.pii.recognizers imports it first, with torch hidden.
    from filters.pii.recognizers import RECOGNIZERS
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine

    from filters.pii.context import KoreanContextEnhancer

    _check_entities(settings.entities)
    recognizers = [RECOGNIZERS[name](settings.context_chars_before, settings.context_chars_after)
                   for name in settings.entities]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["ko"])
    nlp_engine = NoOpNlpEngine(models=[{"lang_code": "ko", "model_name": "none"}])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["ko"],
                          default_score_threshold=settings.score_threshold,
                          context_aware_enhancer=KoreanContextEnhancer(settings.context_boost))


def resolve_overlaps(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Keep non-overlapping spans: highest score first, then the longer span; sorted by start.

    presidio drops contained results of the *same* entity only; a phone-shaped account candidate
    and the phone itself are different entities, so the weaker one is removed here.
    """
    starts: list[int] = []  # chosen spans, kept sorted by start (they never overlap)
    chosen: list[PiiSpan] = []
    for span in sorted(spans, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        i = bisect.bisect_left(starts, span.start)
        if i < len(chosen) and chosen[i].start < span.end:
            continue  # overlaps the next chosen span
        if i > 0 and chosen[i - 1].end > span.start:
            continue  # overlaps the previous one
        starts.insert(i, span.start)
        chosen.insert(i, span)
    return chosen


def find_pii(text: str, settings: AnalyzerSettings = AnalyzerSettings(),
             use_prescreen: bool = True) -> list[PiiSpan]:
    """Non-overlapping PII spans in ``text``, sorted by position."""
    if use_prescreen and not prescreen(text):
        return []
    results = get_analyzer(settings).analyze(text=text, language="ko",
                                             score_threshold=settings.score_threshold)
    from filters.pii.recognizers import ENTITY_TO_NAME   # loaded with the analyzer above

    spans = [PiiSpan(r.start, r.end, ENTITY_TO_NAME[r.entity_type], round(float(r.score), 4),
                     (r.recognition_metadata or {}).get("format", ""))
             for r in results]
    return resolve_overlaps(spans)


def mask_text(text: str, spans: Sequence[PiiSpan], tokens: Mapping[str, str] = REPLACEMENT_TOKENS) -> str:
    """``text`` with each (non-overlapping, sorted) span replaced by its token."""
    out, pos = [], 0
    for s in spans:
        out.append(text[pos:s.start])
        out.append(tokens[s.name])
        pos = s.end
    out.append(text[pos:])
    return "".join(out)


class PiiMaskFilter(DocumentFilter):
    """Replaces PII with tokens; optionally drops documents with more than ``max_spans`` spans.

    Signals: ``pii.spans`` (total) and ``pii.spans.<name>`` for each entity enabled.  Counts:
    ``masked.<name>`` (the Beam wrapper turns them into ``pii.count.masked.<name>`` counters).
    """

    stage = STAGE
    name = "pii_mask"

    def __init__(self, settings: AnalyzerSettings = AnalyzerSettings(),
                 tokens: Mapping[str, str] | None = None, use_prescreen: bool = True,
                 max_spans: int = 0) -> None:
        super().__init__()
        _check_entities(settings.entities)   # a config error, found where the graph is built
        self.settings = settings
        self.tokens = dict(REPLACEMENT_TOKENS if tokens is None else tokens)
        missing = set(settings.entities) - set(self.tokens)
        if missing:
            raise ValueError(f"pii.tokens: no replacement token for {sorted(missing)}")
        self.use_prescreen = use_prescreen
        self.max_spans = max_spans

    def setup(self) -> None:
        get_analyzer(self.settings)  # build (or reuse) the per-process analyzer now, not per doc

    def filter(self, doc: Document) -> Verdict:
        spans = find_pii(doc.text, self.settings, self.use_prescreen)
        per_type = {name: 0 for name in self.settings.entities}
        for s in spans:
            per_type[s.name] += 1
        doc.signals[f"{STAGE}.spans"] = len(spans)
        for name, n in per_type.items():
            doc.signals[f"{STAGE}.spans.{name}"] = n
            self.count(f"masked.{name}", n)
        if spans:
            doc.text = mask_text(doc.text, spans, self.tokens)
        if self.max_spans and len(spans) > self.max_spans:
            return drop("too_many_pii")
        return KEEP


def settings_from_section(section: Mapping[str, Any]) -> AnalyzerSettings:
    return AnalyzerSettings(
        entities=tuple(section.get("entities", ENTITY_NAMES)),
        score_threshold=float(section.get("score_threshold", 0.5)),
        context_chars_before=int(section.get("context_chars_before", 40)),
        context_chars_after=int(section.get("context_chars_after", 30)),
        context_boost=float(section.get("context_boost", 0.35)),
    )


def build_filters(section: Mapping[str, Any]) -> list[DocumentFilter]:
    """The ``pii`` stage's filters from its config section (``pii:`` in configs/default.yaml)."""
    if not section.get("enabled", True):
        return []
    tokens = dict(REPLACEMENT_TOKENS)
    tokens.update(section.get("tokens") or {})
    return [PiiMaskFilter(settings_from_section(section), tokens=tokens,
                          use_prescreen=bool(section.get("prescreen", True)),
                          max_spans=int(section.get("max_spans", 0)))]


__all__ = ["REPLACEMENT_TOKENS", "PiiMaskFilter", "PiiSpan", "AnalyzerSettings", "build_filters",
           "find_pii", "mask_text", "prescreen", "get_analyzer", "resolve_overlaps"]
