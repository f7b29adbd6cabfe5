"""Inspect a finished run: ``polyko report DIR`` (one self-contained HTML page) and
``polyko inspect DIR`` (removed documents for one reason, in the terminal).

Everything here reads only the run directory documented in ``docs/output-format.md``:
``stats.json`` (counts, per-source breakdowns, dedup and shard summaries), ``config.yaml``
(the thresholds the run used) and the documents in ``kept/`` and ``rejected/`` (their stored
``signals``).  Documents are streamed once (twice when dedup survivors must be looked up) and
only bounded summaries are kept: exact streaming histograms per signal, a hash-ranked sample per
removal reason, and what-if counters, so a run of any size is read in constant memory.  The part
files are scanned in parallel, one process per core, and the summaries merged: both kinds of
summary are independent of the order documents come in, so the page is the same either way.

The page must be safe to open on crawled text: every string from the data goes through
``html.escape`` (attributes are always double-quoted), the page carries no script at all, and a
Content-Security-Policy meta tag forbids scripts and network fetches even if something slipped.
"""
from __future__ import annotations

import argparse
import bisect
import concurrent.futures
import gzip
import hashlib
import html
import io
import json
import math
import multiprocessing
import os
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

import yaml

from pipeline.jsonl import parse_json_line

DEFAULT_STAGE_ORDER = ["read", "normalize", "langid", "quality", "dedup", "pii", "tokenize"]
FILTER_STAGES = ["normalize", "langid", "quality", "dedup", "pii"]

# ---------------------------------------------------------------------------------------------
# Threshold table: which stored signal a config threshold applies to, and in which direction.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigRef:
    """An operand read from the run's config (e.g. another threshold of the same filter)."""

    key: str


_OPS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b, "not_in": lambda a, b: a not in b,
}


@dataclass(frozen=True)
class Condition:
    """``signals[signal] <op> operand``; a missing signal makes the condition false."""

    signal: str
    op: str
    operand: Any

    def holds(self, signals: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
        if self.signal not in signals:
            return False
        operand = self.operand
        if isinstance(operand, ConfigRef):
            operand = config_value(config, operand.key)
            if operand is None:
                return False
        if isinstance(operand, list):
            operand = tuple(operand)
        try:
            return bool(_OPS[self.op](signals[self.signal], operand))
        except TypeError:
            return False


@dataclass(frozen=True)
class ThresholdRule:
    """A config key whose value is compared against one stored signal.

    The filter drops a document when ``signal <removes_when> value`` and the threshold is in
    play: every ``applies_if`` condition holds and, if given, at least one ``applies_if_any``
    does (e.g. langid's probability threshold only matters for documents fastText labels Korean
    that the Hangul-share rule does not keep anyway).  ``reasons`` are the drop reasons the
    filter emits for it (to tell "removed by this threshold" from "removed by something else").
    """

    signal: str
    removes_when: str
    reasons: tuple[str, ...]
    applies_if: tuple[Condition, ...] = ()
    applies_if_any: tuple[Condition, ...] = ()
    # Signals without which a removal cannot be decided (the filter skipped the computation that
    # stores them, e.g. fastText on documents the Hangul rule kept): removal is then unknown.
    needs: tuple[str, ...] = ()

    @property
    def stage(self) -> str:
        return self.signal.split(".", 1)[0]

    def removes(self, value: float, threshold: float) -> bool:
        if self.removes_when not in ("<", "<=", ">", ">="):
            raise ValueError(f"unknown comparison {self.removes_when!r}")
        return bool(_OPS[self.removes_when](value, threshold))

    def in_play(self, signals: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
        if not all(c.holds(signals, config) for c in self.applies_if):
            return False
        return not self.applies_if_any or any(c.holds(signals, config) for c in self.applies_if_any)

    def decides_removal(self, signals: Mapping[str, Any], config: Mapping[str, Any],
                        threshold: float, text: Optional[str] = None) -> Optional[bool]:
        """True/False: whether this threshold removes the document; None: signal missing.

        ``text`` (the stored text) supplies condition signals older runs did not store.
        """
        value = signals.get(self.signal)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            # A stored condition can still rule this threshold out (langid's score does not
            # matter for a document the Hangul rule keeps, whether or not it was scored).
            if any(c.signal in signals and not c.holds(signals, config) for c in self.applies_if):
                return False
            return None
        if text is not None:
            missing = {c.signal for c in (*self.applies_if, *self.applies_if_any)
                       if c.signal not in signals and c.signal in DERIVED_SIGNALS}
            if missing:
                signals = dict(signals, **{m: DERIVED_SIGNALS[m](text) for m in missing})
        if not self.removes(value, threshold):
            return False
        if any(s not in signals for s in self.needs):
            return None
        return self.in_play(signals, config)


def _quality_rules() -> dict[str, ThresholdRule]:
    """filters/quality/filters.py: strict comparisons (``<`` a minimum, ``>`` a maximum).

    Within one filter the checks run in order, but every document the what-if looks at (kept,
    removed by this very reason, or removed by a later stage) passed the earlier checks, so only
    conditions that exempt or combine need writing down: the line-fraction checks skip texts of
    fewer than ``min_lines`` lines, and the spam check needs hits, distinct terms AND density.
    """
    q = "quality."
    min_lines = Condition(q + "lines", ">=", ConfigRef(q + "line_structure.min_lines"))
    spam_hits = Condition(q + "spam_hits", ">=", ConfigRef(q + "spam_lexicon.min_hits"))
    spam_distinct = Condition(q + "spam_distinct_terms", ">=", ConfigRef(q + "spam_lexicon.min_distinct_terms"))
    spam_density = Condition(q + "spam_density", ">", ConfigRef(q + "spam_lexicon.max_hits_per_word"))
    rules = {
        "length.min_chars": ThresholdRule(q + "chars", "<", ("too_short_chars",)),
        "length.max_chars": ThresholdRule(q + "chars", ">", ("too_long_chars",)),
        "length.min_words": ThresholdRule(q + "words", "<", ("too_few_words",)),
        "length.max_words": ThresholdRule(q + "words", ">", ("too_many_words",)),
        "hangul_share.min_hangul_letter_ratio": ThresholdRule(q + "hangul_letter_ratio", "<", ("low_hangul_share",)),
        "mojibake.max_frac": ThresholdRule(q + "mojibake_frac", ">", ("mojibake",)),
        "symbols.max_symbol_ratio": ThresholdRule(q + "symbol_ratio", ">", ("symbol_ratio",)),
        "symbols.max_digit_ratio": ThresholdRule(q + "digit_ratio", ">", ("digit_ratio",)),
        "symbols.max_hash_word_ratio": ThresholdRule(q + "hash_word_ratio", ">", ("hash_ratio",)),
        "jamo_emoticon.max_frac": ThresholdRule(q + "jamo_emoticon_frac", ">", ("jamo_emoticon",)),
        "code_markup.max_code_line_frac": ThresholdRule(q + "code_line_frac", ">", ("code",)),
        "code_markup.max_markup_char_frac": ThresholdRule(q + "markup_char_frac", ">", ("markup",)),
        "line_structure.max_newline_word_ratio": ThresholdRule(q + "newline_word_ratio", ">", ("list_ratio",)),
        "line_structure.min_sentence_end_line_frac": ThresholdRule(
            q + "sentence_end_line_frac", "<", ("line_punct_ratio",), applies_if=(min_lines,)),
        "line_structure.max_short_line_frac": ThresholdRule(
            q + "short_line_frac", ">", ("short_line_ratio",), applies_if=(min_lines,)),
        "line_structure.max_bullet_line_frac": ThresholdRule(
            q + "bullet_line_frac", ">", ("bullet_lines",), applies_if=(min_lines,)),
        "line_structure.max_ellipsis_line_frac": ThresholdRule(
            q + "ellipsis_line_frac", ">", ("ellipsis_lines",), applies_if=(min_lines,)),
        "spam_lexicon.max_hits_per_word": ThresholdRule(
            q + "spam_density", ">", ("spam_lexicon",), applies_if=(spam_hits, spam_distinct)),
        "spam_lexicon.min_hits": ThresholdRule(
            q + "spam_hits", ">=", ("spam_lexicon",), applies_if=(spam_distinct, spam_density)),
        "spam_lexicon.min_distinct_terms": ThresholdRule(
            q + "spam_distinct_terms", ">=", ("spam_lexicon",), applies_if=(spam_hits, spam_density)),
        "repetition.dup_line_frac": ThresholdRule(q + "dup_line_frac", ">", ("dup_line_frac",)),
        "repetition.dup_line_char_frac": ThresholdRule(q + "dup_line_char_frac", ">", ("dup_line_char_frac",)),
    }
    for n in (2, 3, 4):
        rules[f"repetition.top_ngram_char_frac.{n}"] = ThresholdRule(
            f"{q}top_{n}gram_char_frac", ">", (f"top_{n}gram",))
    for n in range(5, 11):
        rules[f"repetition.dup_ngram_char_frac.{n}"] = ThresholdRule(
            f"{q}dup_{n}gram_char_frac", ">", (f"dup_{n}gram",))
    return {q + k: v for k, v in rules.items()}


# Config key (dotted, as in configs/default.yaml and `--set`) -> rule.  Each entry mirrors the
# comparison written in the filter's code (filters/langid.py, filters/quality/filters.py);
# tests run the real filters on both sides of each threshold to keep this table honest.
THRESHOLD_RULES: dict[str, ThresholdRule] = {
    # FastTextLanguageFilter keeps (label in keep_labels and score >= threshold) or
    # (hangul_ratio >= hangul_keep_ratio); otherwise drops no_letters / not_ko / low_score.
    "langid.threshold": ThresholdRule(
        "langid.score", "<", ("low_score",),
        applies_if=(Condition("langid.label", "in", ("ko",)),
                    Condition("langid.hangul_ratio", "<", ConfigRef("langid.hangul_keep_ratio")))),
    "langid.hangul_keep_ratio": ThresholdRule(
        "langid.hangul_ratio", "<", ("not_ko", "low_score"),
        needs=("langid.label",),  # absent when the Hangul rule decided without fastText
        applies_if=(Condition("langid.label", "not_in", ("und",)),),
        applies_if_any=(Condition("langid.label", "not_in", ("ko",)),
                        Condition("langid.score", "<", ConfigRef("langid.threshold")))),
    **_quality_rules(),
}


def _count_lines(text: str) -> int:
    """filters.quality.stats.DocStats.lines: non-empty stripped lines split on "\\n"."""
    return sum(1 for ln in text.split("\n") if ln.strip())


# Signals a condition needs that older runs may not store: derived from the stored text (the
# text as the deciding stage saw it for rejected documents; line structure survives PII masks).
DERIVED_SIGNALS: dict[str, Any] = {"quality.lines": _count_lines}


def rules_for_signal(signal: str, rules: Mapping[str, ThresholdRule] = THRESHOLD_RULES
                     ) -> list[tuple[str, ThresholdRule]]:
    return [(k, r) for k, r in rules.items() if r.signal == signal]


def _raw_config_value(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def filter_default(dotted: str) -> Any:
    """The default a filter class uses for a key its config section leaves out.

    ``quality.<sub>.<param>`` -> ``FILTER_ORDER[sub].__init__`` default of ``param``;
    ``langid.<param>`` -> ``FastTextLanguageFilter.__init__`` default.  None when unknown.
    """
    import inspect

    parts = dotted.split(".")
    try:
        if parts[0] == "quality" and len(parts) == 3:
            from filters.quality import FILTER_ORDER
            cls = FILTER_ORDER.get(parts[1])
            param = parts[2]
        elif parts[0] == "langid" and len(parts) == 2:
            from filters.langid import FastTextLanguageFilter as cls
            param = parts[1]
        else:
            return None
        if cls is None:
            return None
        p = inspect.signature(cls.__init__).parameters.get(param)
    except ImportError:
        return None
    if p is None or p.default is inspect.Parameter.empty:
        return None
    return p.default


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """A key of the run's resolved config, else the deciding filter's own default."""
    value = _raw_config_value(config, dotted)
    return filter_default(dotted) if value is None else value


def parse_set(items: Iterable[str], rules: Mapping[str, ThresholdRule] = THRESHOLD_RULES
              ) -> list[tuple[str, float]]:
    """``["quality.x.min=3"]`` -> ``[("quality.x.min", 3.0)]``; unknown keys are an error."""
    out = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected section.key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if key not in rules:
            known = ", ".join(sorted(rules))
            raise ValueError(f"--set {key}: not a threshold the report can replay "
                             f"(known: {known})")
        try:
            value = float(yaml.safe_load(raw))
        except (TypeError, ValueError, yaml.YAMLError):
            raise ValueError(f"--set {item!r}: value must be a number") from None
        out.append((key, value))
    return out


# ---------------------------------------------------------------------------------------------
# Run directory access (local paths, or any Beam filesystem such as gs://)
# ---------------------------------------------------------------------------------------------


def _is_remote(path: str) -> bool:
    return "://" in str(path)


def _join(base: str, *parts: str) -> str:
    if _is_remote(base):
        return "/".join([str(base).rstrip("/"), *parts])
    return str(Path(base, *parts))


def _list_files(run_dir: str, sub: str) -> list[str]:
    if _is_remote(run_dir):
        from apache_beam.io.filesystems import FileSystems
        pattern = _join(run_dir, sub, "*")
        res = FileSystems.match([pattern])[0]
        return sorted(m.path for m in res.metadata_list)
    d = Path(run_dir, sub)
    if not d.is_dir():
        return []
    return sorted(str(p) for p in d.iterdir() if p.is_file() and not p.name.startswith("."))


def _open_bytes(path: str):
    if _is_remote(path):
        from apache_beam.io.filesystems import CompressionTypes, FileSystems
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    return open(path, "rb")


def _exists(path: str) -> bool:
    if _is_remote(path):
        from apache_beam.io.filesystems import FileSystems
        return FileSystems.exists(path)
    return Path(path).exists()


def _read_text(path: str) -> str:
    with _open_bytes(path) as fh:
        return fh.read().decode("utf-8")


def _write_text(path: str, text: str) -> None:
    data = text.encode("utf-8")
    if _is_remote(path):
        from apache_beam.io.filesystems import FileSystems
        with FileSystems.create(path, mime_type="text/html") as fh:
            fh.write(data)
        return
    tmp = Path(f"{path}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def iter_records(path: str) -> Iterator[dict[str, Any]]:
    """Records of one output part file: gzip/plain JSONL or Parquet (JSON-encoded columns)."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq
        with _open_bytes(path) as fh:
            pf = pq.ParquetFile(io.BytesIO(fh.read()) if _is_remote(path) else fh)
            for batch in pf.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    for col in ("metadata", "signals"):
                        if isinstance(row.get(col), str):
                            row[col] = parse_json_line(row[col])
                    yield row
        return
    for line in _iter_lines(path):
        if line.strip():
            yield parse_json_line(line)


def _iter_lines(path: str) -> Iterator[bytes]:
    """Raw lines of a JSONL(.gz) part file (the parser decodes UTF-8 bytes itself: no text layer)."""
    with _open_bytes(path) as raw:
        fh = io.BufferedReader(gzip.GzipFile(fileobj=raw), 1 << 20) if path.endswith(".gz") else raw
        yield from fh


# polyko's JSON lines start with the id (pipeline.jsonl.to_json_line writes the record's keys in order)
_LEADING_ID = re.compile(rb'^\{"id":("(?:[^"\\]|\\.)*")')


def iter_records_with_ids(path: str, ids: set) -> Iterator[dict[str, Any]]:
    """The records of one part file whose id is in ``ids``: a JSON line is parsed only when its
    leading id matches, so looking up a few records does not decode every document again."""
    if path.endswith(".parquet"):
        yield from (rec for rec in iter_records(path) if rec.get("id") in ids)
        return
    for line in _iter_lines(path):
        m = _LEADING_ID.match(line)
        if m is not None and json.loads(m.group(1)) not in ids:
            continue
        if line.strip():
            rec = parse_json_line(line)
            if rec.get("id") in ids:
                yield rec


def _output_files(run_dir: str, sub: str) -> list[str]:
    return [p for p in _list_files(run_dir, sub) if p.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".parquet"))]


def iter_output(run_dir: str, sub: str) -> Iterator[dict[str, Any]]:
    for path in _output_files(run_dir, sub):
        yield from iter_records(path)


class RunDirError(RuntimeError):
    pass


def load_run_stats(run_dir: str) -> dict[str, Any]:
    """``stats.json`` of a finished run, with a clear error for unfinished / failed runs."""
    stats_path = _join(run_dir, "stats.json")
    if not _exists(stats_path):
        if _exists(_join(run_dir, "_FAILED.json")):
            raise RunDirError(f"{run_dir}: the run failed (see _FAILED.json); no stats.json")
        if _exists(_join(run_dir, "_polyko_tmp")):
            raise RunDirError(f"{run_dir}: the run is unfinished (no stats.json yet)")
        raise RunDirError(f"{run_dir}: not a polyko run directory (no stats.json)")
    return json.loads(_read_text(stats_path))


def load_run_config(run_dir: str) -> dict[str, Any]:
    path = _join(run_dir, "config.yaml")
    if not _exists(path):
        return {}
    return yaml.safe_load(_read_text(path)) or {}


def load_manifest(run_dir: str) -> Optional[dict[str, Any]]:
    path = _join(run_dir, "shards", "manifest.json")
    if not _exists(path):
        return None
    return json.loads(_read_text(path))


# ---------------------------------------------------------------------------------------------
# Bounded-memory summaries
# ---------------------------------------------------------------------------------------------

KEPT, REMOVED_HERE, REMOVED_ELSEWHERE = 0, 1, 2
# collect() bins buffered signal values every this many records (bounded buffers)
FLUSH_EVERY = 8192
CLASS_NAMES = ("kept", "removed by this filter/stage", "removed elsewhere")


def _flushed(attr: str) -> property:
    """A read-only attribute of StreamingHistogram that bins the buffered values first."""
    def get(self):
        self.flush()
        return getattr(self, attr)
    return property(get)


class StreamingHistogram:
    """Exact counts in at most ``max_bins`` equal-width bins, without knowing the range first.

    Bins are ``[k*w, (k+1)*w)`` with ``w`` a power of two anchored at 0, so when a new value
    falls outside the current span the width doubles and neighbouring bins merge exactly
    (``k // 2``).  Each bin holds one count per class (kept / removed here / removed elsewhere).

    The result depends only on the values, not on their order: the width is the smallest power
    of two (from ``2**-20``) at which ``[min, max]`` spans ``max_bins`` bins, since
    ``floor(x / 2w) == floor(x / w) // 2``.  So values are buffered and binned ``BATCH`` at a time
    with numpy (a report reads ~35 signals per document: one Python ``add`` each was most of
    ``polyko report``'s time), and every reader flushes the buffer first.
    """

    BATCH = 1 << 14  # ~70 histograms (two per signal) x 16k buffered floats: ~40 MB at most

    def __init__(self, max_bins: int = 40, n_classes: int = 3):
        self.max_bins = max_bins
        self.n_classes = n_classes
        self._width = 2.0 ** -20
        self._bins: dict[int, list[int]] = {}
        self._lo: Optional[int] = None
        self._hi: Optional[int] = None
        self._n = 0
        self._min = math.inf
        self._max = -math.inf
        self._all_integer = True
        self._values: list[float] = []
        self._classes: list[int] = []

    def add(self, x: float, cls: int = 0) -> None:
        self._values.append(x)
        self._classes.append(cls)
        if len(self._values) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if not self._values:
            return
        import numpy as np

        x = np.asarray(self._values, dtype=np.float64)
        cls = np.asarray(self._classes, dtype=np.int64)
        self._values, self._classes = [], []
        self._bin(x, cls)

    def add_array(self, x, cls) -> None:
        """``add`` for numpy arrays of values (float64) and classes (int64)."""
        if len(x):
            self._bin(x, cls)

    def _bin(self, x, cls) -> None:
        import numpy as np

        self._n += len(x)
        self._min = min(self._min, float(x.min()))
        self._max = max(self._max, float(x.max()))
        if self._all_integer and not bool(np.all(np.floor(x) == x)):
            self._all_integer = False
        lo = self._fit_span()
        # bin index relative to lo (small, exact in float64), then counts per (bin, class)
        rel = (np.floor(x / self._width) - float(lo)).astype(np.int64)
        keys, counts = np.unique(rel * self.n_classes + cls, return_counts=True)
        for key, c in zip(keys.tolist(), counts.tolist()):
            k, c_cls = lo + key // self.n_classes, key % self.n_classes
            row = self._bins.get(k)
            if row is None:
                row = self._bins[k] = [0] * self.n_classes
            row[c_cls] += c

    # Every reader flushes the buffer first, so no caller can see a half-binned state.
    width = _flushed("_width")
    bins = _flushed("_bins")
    n = _flushed("_n")
    min = _flushed("_min")
    max = _flushed("_max")
    all_integer = _flushed("_all_integer")

    def _double(self) -> None:
        merged: dict[int, list[int]] = {}
        for k, counts in self._bins.items():
            tgt = merged.setdefault(k // 2, [0] * self.n_classes)
            for i, c in enumerate(counts):
                tgt[i] += c
        self._bins = merged
        self._width *= 2

    def merge(self, other: "StreamingHistogram") -> None:
        """Add ``other``'s values (same ``max_bins``): the result is the histogram of all values
        together, exactly, since it depends on the values only. Both are brought to the wider
        of the two widths (each is at most the width the union needs), then widened together."""
        self.flush()
        other.flush()
        if not other._n:
            return
        theirs = StreamingHistogram(other.max_bins, other.n_classes)
        theirs._bins, theirs._width = {k: list(c) for k, c in other._bins.items()}, other._width
        while theirs._width < self._width:
            theirs._double()
        while self._width < theirs._width:
            self._double()
        for k, counts in theirs._bins.items():
            row = self._bins.setdefault(k, [0] * self.n_classes)
            for i, c in enumerate(counts):
                row[i] += c
        self._n += other._n
        self._min, self._max = min(self._min, other._min), max(self._max, other._max)
        self._all_integer = self._all_integer and other._all_integer
        self._fit_span()

    def _fit_span(self) -> int:
        """Double the width until ``[min, max]`` spans at most ``max_bins`` bins; returns ``lo``."""
        lo, hi = math.floor(self._min / self._width), math.floor(self._max / self._width)
        while hi - lo + 1 > self.max_bins:
            self._double()
            lo, hi = math.floor(self._min / self._width), math.floor(self._max / self._width)
        self._lo, self._hi = lo, hi
        return lo

    def quantile(self, q: float) -> Optional[float]:
        """Approximate quantile (linear interpolation inside the bin that holds it)."""
        if not self.n:
            return None
        target, seen = q * self.n, 0
        for left, right, counts in self.rows():
            c = sum(counts)
            if c and seen + c >= target:
                if self.all_integer and right - left <= 1:
                    return left         # an integer-valued signal: the bin is one integer
                frac = (target - seen) / c
                return min(max(left + frac * (right - left), self.min), self.max)
            seen += c
        return self.max

    def rows(self) -> list[tuple[float, float, list[int]]]:
        """Contiguous ``(left, right, counts)`` rows from ``lo`` to ``hi`` (empty bins included).

        Integer-valued signals get bins at least 1 wide so no bin falls between integers.
        """
        self.flush()
        if self._lo is None:
            return []
        bins, width, lo, hi = self._bins, self._width, self._lo, self._hi
        while self.all_integer and width < 1:
            merged: dict[int, list[int]] = {}
            for k, counts in bins.items():
                tgt = merged.setdefault(k // 2, [0] * self.n_classes)
                for i, c in enumerate(counts):
                    tgt[i] += c
            bins, width, lo, hi = merged, width * 2, lo // 2, hi // 2
        return [(k * width, (k + 1) * width, list(bins.get(k, [0] * self.n_classes)))
                for k in range(lo, hi + 1)]


class Reservoir:
    """Uniform sample of at most ``k`` items from a stream (Vitter's algorithm R), seeded."""

    def __init__(self, k: int, seed: int = 0):
        self.k = k
        self.seen = 0
        self.items: list[Any] = []
        self._rng = random.Random(seed)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.k:
                self.items[j] = item


class HashSample:
    """At most ``k`` items of a stream: those whose key hashes lowest under ``salt``.

    A uniform sample (the hash orders the keys at random) that does not depend on the order the
    items arrive in, so the samples of parts of a run, scanned in parallel, merge into the sample
    of the whole (``merge``): the same documents whichever process read which file."""

    def __init__(self, k: int, salt: str = ""):
        self.k = k
        self.salt = salt
        self.seen = 0
        self._ranked: list[tuple[bytes, Any]] = []   # (hash, item), ascending, at most k

    def add(self, key: str, item: Any) -> None:
        self.seen += 1
        rank = hashlib.blake2b(f"{self.salt}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        if len(self._ranked) >= self.k and rank >= self._ranked[-1][0]:
            return
        bisect.insort(self._ranked, (rank, item), key=lambda r: r[0])
        del self._ranked[self.k:]

    def merge(self, other: "HashSample") -> None:
        self.seen += other.seen
        self._ranked = sorted(self._ranked + other._ranked, key=lambda r: r[0])[:self.k]

    @property
    def items(self) -> list[Any]:
        return [item for _, item in self._ranked]


@dataclass
class SignalSummary:
    name: str
    linear: StreamingHistogram = field(default_factory=StreamingHistogram)
    log10: StreamingHistogram = field(default_factory=StreamingHistogram)
    nonpositive: list[int] = field(default_factory=lambda: [0, 0, 0])
    categories: dict[str, list[int]] = field(default_factory=dict)
    other_categories: list[int] = field(default_factory=lambda: [0, 0, 0])
    max_categories: int = 60

    # numbers waiting to be binned (see add): the values as read, and their classes
    _numbers: list = field(default_factory=list, repr=False)
    _number_classes: list = field(default_factory=list, repr=False)

    @property
    def is_numeric(self) -> bool:
        self.flush()
        return self.linear.n > 0 and self.linear.n >= sum(map(sum, self.categories.values()))

    def add(self, value: Any, cls: int) -> None:
        kind = type(value)
        if kind is not float and kind is not int:      # (the exact types first: the common case)
            if isinstance(value, bool) or isinstance(value, str):
                key = str(value).lower() if isinstance(value, bool) else value
                counts = self.categories.get(key)
                if counts is None:
                    if len(self.categories) >= self.max_categories:
                        self.other_categories[cls] += 1
                        return
                    counts = self.categories[key] = [0, 0, 0]
                counts[cls] += 1
                return
            if not isinstance(value, (int, float)):
                return
        # Numbers, ~34 per document, are buffered and binned by flush() a batch at a time.
        self._numbers.append(value)
        self._number_classes.append(cls)
        if len(self._numbers) >= StreamingHistogram.BATCH:
            self.flush()

    def flush(self) -> None:
        """Bin the buffered numbers: finite ones into ``linear``, positive ones as ``log10`` (with
        ``math.log10``, which numpy's log10 differs from by an ulp on ~6 % of values), the rest
        counted in ``nonpositive``.  Every reader calls this first (``collect`` for all signals)."""
        if not self._numbers:
            return
        import numpy as np

        x = np.asarray(self._numbers, dtype=np.float64)
        cls = np.asarray(self._number_classes, dtype=np.int64)
        self._numbers, self._number_classes = [], []
        finite = np.isfinite(x)
        if not finite.all():
            x, cls = x[finite], cls[finite]
        self.linear.add_array(x, cls)
        positive = x > 0
        logs = np.fromiter(map(math.log10, x[positive].tolist()), dtype=np.float64)
        self.log10.add_array(logs, cls[positive])
        for c, count in enumerate(np.bincount(cls[~positive], minlength=len(self.nonpositive)).tolist()):
            self.nonpositive[c] += count

    def cap_categories(self, limit: int) -> None:
        """Keep the first ``limit`` categories (in order of first appearance) and count the rest
        as other, as ``add`` with ``max_categories=limit`` would have."""
        for key in list(self.categories)[limit:]:
            for i, c in enumerate(self.categories.pop(key)):
                self.other_categories[i] += c
        self.max_categories = limit

    def merge(self, other: "SignalSummary") -> None:
        """Add a summary of later documents (a part of the run scanned by another process).
        Categories past ``max_categories`` go to ``other_categories`` in merge order."""
        self.flush()
        other.flush()
        self.linear.merge(other.linear)
        self.log10.merge(other.log10)
        for i, c in enumerate(other.nonpositive):
            self.nonpositive[i] += c
        for i, c in enumerate(other.other_categories):
            self.other_categories[i] += c
        for key, counts in other.categories.items():
            mine = self.categories.get(key)
            if mine is None:
                if len(self.categories) >= self.max_categories:
                    for i, c in enumerate(counts):
                        self.other_categories[i] += c
                    continue
                mine = self.categories[key] = [0] * len(counts)
            for i, c in enumerate(counts):
                mine[i] += c

    def class_totals(self) -> list[int]:
        self.flush()
        tot = [0, 0, 0]
        for _, _, counts in self.linear.rows():
            for i, c in enumerate(counts):
                tot[i] += c
        for counts in list(self.categories.values()) + [self.other_categories]:
            for i, c in enumerate(counts):
                tot[i] += c
        return tot

    def use_log_scale(self) -> bool:
        """Log x-axis when most values crowd one linear bin but the positive values span 2+
        decades (lengths, counts): a linear axis would show one bar and a long empty tail."""
        self.flush()
        rows = self.linear.rows()
        if not rows or self.linear.min < 0 or self.log10.n == 0:
            return False
        top = max(sum(c) for _, _, c in rows)
        # Only for counts and lengths (values past 100): ratios and probabilities live in
        # [0, 1], where a log axis would stretch rounding noise near 0 over most of the plot.
        return (self.linear.max >= 100 and top > 0.5 * self.linear.n
                and (self.log10.max - self.log10.min) >= 2)


@dataclass
class WhatIf:
    key: str
    rule: ThresholdRule
    old: Optional[float]
    new: float
    kept_would_be_removed: int = 0
    removed_would_be_kept: int = 0
    removed_still_removed: int = 0
    later_removed_also_fail: int = 0
    kept_fail_current: int = 0   # should be 0: kept docs that fail the run's own threshold
    evaluated: int = 0
    samples_newly_removed: HashSample = field(default_factory=lambda: HashSample(3, salt="newly removed"))
    samples_newly_kept: HashSample = field(default_factory=lambda: HashSample(3, salt="newly kept"))

    COUNTERS = ("kept_would_be_removed", "removed_would_be_kept", "removed_still_removed",
                "later_removed_also_fail", "kept_fail_current", "evaluated")

    def fresh(self) -> "WhatIf":
        """The same question with nothing counted yet (for a part of the run)."""
        return WhatIf(self.key, self.rule, self.old, self.new)

    def merge(self, other: "WhatIf") -> None:
        for name in self.COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.samples_newly_removed.merge(other.samples_newly_removed)
        self.samples_newly_kept.merge(other.samples_newly_kept)


def _fmt_num(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:
            return f"{int(x):,}"
        if abs(x) >= 100:
            return f"{x:,.1f}"
        return f"{x:.4g}"
    return str(x)


def excerpt(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + " …"


@dataclass
class RunSummary:
    """Everything the report and ``polyko stats`` show, gathered in bounded memory."""

    run_dir: str
    stats: dict[str, Any]
    config: dict[str, Any]
    manifest: Optional[dict[str, Any]]
    signals: dict[str, SignalSummary]
    samples: dict[tuple[str, str], HashSample]
    survivors: dict[str, dict[str, Any]]
    whatifs: list[WhatIf]
    thresholds: dict[str, tuple[str, ThresholdRule, Any]]   # signal -> (key, rule, value)
    docs_scanned: dict[str, int]
    error_samples: HashSample

    @property
    def stage_order(self) -> list[str]:
        return list(self.stats.get("stage_order") or DEFAULT_STAGE_ORDER)

    @property
    def stages_enabled(self) -> list[str]:
        if "stages_enabled" in self.stats:
            return list(self.stats["stages_enabled"])
        return [s for s in self.stage_order if s in (self.stats.get("stages") or {})]

    def stage_enabled(self, stage: str) -> bool:
        return stage in self.stages_enabled

    def removal_rows(self) -> list[tuple[str, str, int]]:
        rows = []
        for stage in self.stage_order:
            st = (self.stats.get("stages") or {}).get(stage) or {}
            for reason, n in sorted((st.get("drop") or {}).items(), key=lambda kv: -kv[1]):
                rows.append((stage, reason, int(n)))
        return rows

    def pii_counts(self) -> dict[str, int]:
        st = (self.stats.get("stages") or {}).get("pii") or {}
        return {k: int(v) for k, v in (st.get("counts") or {}).items()}

    def pii_by_source(self) -> dict[str, dict[str, int]]:
        out = {}
        for src, s in (self.stats.get("sources") or {}).items():
            c = ((s.get("counts") or {}).get("pii")) or {}
            if c:
                out[src] = {k: int(v) for k, v in c.items()}
        return out


# collect() scans the part files in this many processes when they hold at least
# PARALLEL_MIN_BYTES (compressed): below that, starting processes costs more than it saves.
PARALLEL_MIN_BYTES = 8 << 20
# Categories a part scan keeps per signal before the merged summary keeps the first
# SignalSummary.max_categories: a part must not fold into "other" a value an earlier part kept.
PART_MAX_CATEGORIES = 10_000


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))   # what this process may run on (affinity, cgroup cpusets)
    except AttributeError:                     # not on Linux
        return os.cpu_count() or 1


def collect(run_dir: str, set_items: Iterable[str] = (), samples_per_reason: int = 6,
            excerpt_chars: int = 700, max_docs: Optional[int] = None, seed: int = 0,
            rules: Mapping[str, ThresholdRule] = THRESHOLD_RULES, workers: Optional[int] = None) -> RunSummary:
    """Read a finished run directory once (plus a survivor look-up pass) into a RunSummary.

    The kept and rejected part files are scanned by ``workers`` processes (default: one per
    core; local runs of at least ``PARALLEL_MIN_BYTES`` without ``max_docs``), each file into a
    summary of its own, merged in file order. Histograms and samples do not depend on which
    process read what (``StreamingHistogram.merge``, ``HashSample``), so the summary is the one a
    single process makes (tested)."""
    run_dir = str(run_dir)
    stats = load_run_stats(run_dir)
    config = load_run_config(run_dir)
    stage_order = list(stats.get("stage_order") or DEFAULT_STAGE_ORDER)

    thresholds: dict[str, tuple[str, ThresholdRule, Any]] = {}
    for key, rule in rules.items():
        value = config_value(config, key)
        parts = key.split(".")
        disabled = any(_raw_config_value(config, ".".join(parts[:i] + ["enabled"])) is False
                       for i in range(1, len(parts)))
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not disabled:
            thresholds.setdefault(rule.signal, (key, rule, value))
    whatifs = []
    new_config = json.loads(json.dumps(config, default=str))   # the run's config with --set applied
    for key, new in parse_set(set_items, rules):
        node = new_config
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = new
        old = config_value(config, key)
        whatifs.append(WhatIf(key, rules[key], float(old) if isinstance(old, (int, float)) else None, new))

    scanner = _Scanner(config=config, new_config=new_config, whatifs=whatifs, rules=rules,
                       stage_order=stage_order, samples_per_reason=samples_per_reason,
                       excerpt_chars=excerpt_chars, seed=seed)
    files = [(status, path) for status in ("kept", "rejected") for path in _output_files(run_dir, status)]
    n_workers = min(workers or _usable_cpus(), len(files))
    if max_docs is not None or n_workers < 2 or _is_remote(run_dir) or sum(
            os.path.getsize(p) for _, p in files) < PARALLEL_MIN_BYTES:
        scan = scanner.scan(files, max_docs)
    else:
        # spawn, not fork: `polyko run` calls this after Beam, whose gRPC threads make fork unsafe.
        # Parts are merged in file order as they come, so at most a few are held at once.
        scan = None
        with concurrent.futures.ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            for part in ex.map(scanner.scan, [[f] for f in files]):
                if scan is None:
                    scan = part
                else:
                    scan.merge(part)
    for summ in scan.signals.values():
        summ.flush()
        summ.cap_categories(SignalSummary.max_categories)
    for mine, counted in zip(whatifs, scan.whatifs):
        mine.merge(counted)

    # Dedup: fetch the surviving copy of each sampled duplicate (a second, streaming pass).
    wanted = {s["duplicate_of"] for (stage, _), res in scan.samples.items() if stage == "dedup"
              for s in res.items if s.get("duplicate_of")}
    survivors: dict[str, dict[str, Any]] = {}
    if wanted:
        for status in ("kept", "rejected"):
            for path in _output_files(run_dir, status):
                for rec in iter_records_with_ids(path, wanted):
                    if rec["id"] not in survivors:
                        survivors[rec["id"]] = scanner.slim(rec) | {"status": status}
                if len(survivors) == len(wanted):
                    break
            if len(survivors) == len(wanted):
                break

    errors = HashSample(5, salt=f"{seed}\x00errors")
    for rec in iter_output(run_dir, "errors"):
        errors.add(str(rec.get("id") or json.dumps(rec, sort_keys=True, default=str)), rec)

    return RunSummary(run_dir=run_dir, stats=stats, config=config, manifest=load_manifest(run_dir),
                      signals=scan.signals, samples=scan.samples, survivors=survivors, whatifs=whatifs,
                      thresholds=thresholds, docs_scanned=scan.scanned, error_samples=errors)


@dataclass
class _Scan:
    """What a scan of some part files gathered; ``merge`` adds another scan's."""

    signals: dict[str, SignalSummary]
    samples: dict[tuple[str, str], HashSample]
    whatifs: list[WhatIf]
    scanned: dict[str, int]

    def merge(self, other: "_Scan") -> None:
        for mine, theirs in ((self.signals, other.signals), (self.samples, other.samples)):
            for key, summary in theirs.items():
                if key in mine:
                    mine[key].merge(summary)
                else:
                    mine[key] = summary
        for mine_w, w in zip(self.whatifs, other.whatifs):
            mine_w.merge(w)
        for status, n in other.scanned.items():
            self.scanned[status] = self.scanned.get(status, 0) + n


@dataclass
class _Scanner:
    """The per-record work of ``collect``; picklable, so worker processes can run ``scan``."""

    config: dict[str, Any]
    new_config: dict[str, Any]
    whatifs: list[WhatIf]
    rules: Mapping[str, ThresholdRule]
    stage_order: list[str]
    samples_per_reason: int
    excerpt_chars: int
    seed: int

    def slim(self, rec: dict[str, Any]) -> dict[str, Any]:
        text = rec.get("text") or ""
        return {"id": rec.get("id"), "source": rec.get("source"),
                "text": excerpt(text, self.excerpt_chars), "chars": len(text),
                "signals": rec.get("signals") or {}, "stage": rec.get("stage"),
                "reason": rec.get("reason"), "duplicate_of": rec.get("duplicate_of")}

    def scan(self, files: list[tuple[str, str]], max_docs: Optional[int] = None) -> _Scan:
        """Summarise the records of ``files`` (``(status, path)`` pairs), at most ``max_docs``
        of each status."""
        signals: dict[str, SignalSummary] = {}
        samples: dict[tuple[str, str], HashSample] = {}
        whatifs = [w.fresh() for w in self.whatifs]
        scanned = {"kept": 0, "rejected": 0}
        config, new_config, slim = self.config, self.new_config, self.slim
        stage_pos = {s: i for i, s in enumerate(self.stage_order)}
        rules = self.rules
        reasons_by_signal = {sig: {r for _, rule in rules_for_signal(sig, rules) for r in rule.reasons}
                             for sig in {r.signal for r in rules.values()}}

        def classify(signal: str, rec_stage: Optional[str], rec_reason: Optional[str]) -> int:
            if rec_stage is None:
                return KEPT
            if rec_stage != signal.split(".", 1)[0]:
                return REMOVED_ELSEWHERE
            reasons = reasons_by_signal.get(signal)
            if reasons and rec_reason not in reasons:
                return REMOVED_ELSEWHERE
            return REMOVED_HERE

        # (signal, stage, reason) -> class: a rejected record's ~35 signals share one stage and reason
        classes: dict[tuple[str, Optional[str], Optional[str]], int] = {}

        def visit(rec: dict[str, Any], status: str) -> None:
            stage = rec.get("stage") if status == "rejected" else None
            reason = rec.get("reason") if status == "rejected" else None
            sigs = rec.get("signals") or {}
            for name, value in sigs.items():
                summ = signals.get(name)
                if summ is None:
                    summ = signals[name] = SignalSummary(name, max_categories=PART_MAX_CATEGORIES)
                if stage is None:
                    cls = KEPT
                else:
                    cls = classes.get((name, stage, reason))
                    if cls is None:
                        cls = classes[(name, stage, reason)] = classify(name, stage, reason)
                kind = type(value)
                if kind is float or kind is int:
                    # SignalSummary.add's number path, inlined (~3.4M calls per 100k documents); the
                    # buffers are flushed every FLUSH_EVERY records below (binning is order-free)
                    summ._numbers.append(value)
                    summ._number_classes.append(cls)
                else:
                    summ.add(value, cls)
            doc_id = str(rec.get("id"))
            if status == "rejected":
                key = (str(stage), str(reason))
                res = samples.get(key)
                if res is None:
                    res = samples[key] = HashSample(self.samples_per_reason, salt=f"{self.seed}\x00{key}")
                res.add(doc_id, slim(rec))
            text = rec.get("text") or ""
            for w in whatifs:
                fails_new = w.rule.decides_removal(sigs, new_config, w.new, text)
                if fails_new is None:
                    continue
                if status == "kept":
                    w.evaluated += 1
                    if w.old is not None and w.rule.decides_removal(sigs, config, w.old, text):
                        w.kept_fail_current += 1
                    if fails_new:
                        w.kept_would_be_removed += 1
                        w.samples_newly_removed.add(doc_id, slim(rec))
                elif stage == w.rule.stage and reason in w.rule.reasons:
                    w.evaluated += 1
                    if fails_new:
                        w.removed_still_removed += 1
                    else:
                        w.removed_would_be_kept += 1
                        w.samples_newly_kept.add(doc_id, slim(rec))
                elif stage_pos.get(str(stage), -1) > stage_pos.get(w.rule.stage, 99):
                    w.evaluated += 1
                    if fails_new:
                        w.later_removed_also_fail += 1

        for status, path in files:
            if max_docs is not None and scanned[status] >= max_docs:
                continue                        # do not even open the file (a remote download)
            for rec in iter_records(path):
                if max_docs is not None and scanned[status] >= max_docs:
                    break
                scanned[status] += 1
                visit(rec, status)
                if not scanned[status] % FLUSH_EVERY:
                    for summ in signals.values():
                        summ.flush()
        for summ in signals.values():
            summ.flush()
        return _Scan(signals, samples, whatifs, scanned)


# ---------------------------------------------------------------------------------------------
# SVG plots (generated here; no JS, no external assets)
# ---------------------------------------------------------------------------------------------

COLORS = {"kept": "#2f6fb0", "here": "#e8772e", "elsewhere": "#b9b9b9",
          "threshold": "#c0262d", "whatif": "#7b3fb5", "bar": "#2f6fb0", "drop": "#e8772e"}


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def svg_histogram(summary: SignalSummary, threshold: Optional[float] = None,
                  threshold_label: str = "", whatif: Optional[float] = None,
                  width: int = 360, height: int = 170) -> str:
    """Stacked histogram (kept / removed here / removed elsewhere) with threshold lines."""
    log = summary.use_log_scale()
    rows = summary.log10.rows() if log else summary.linear.rows()
    if not rows:
        return ""
    ml, mr, mt, mb = 44, 10, 16, 30
    pw, ph = width - ml - mr, height - mt - mb
    x0, x1 = rows[0][0], rows[-1][1]
    marks = [t for t in (threshold, whatif) if t is not None]
    for t in marks:
        tv = math.log10(t) if (log and t > 0) else (None if log else t)
        if tv is not None:
            x0, x1 = min(x0, tv), max(x1, tv)
    span = (x1 - x0) or 1.0
    ymax = max(sum(c) for _, _, c in rows) or 1

    def sx(v: float) -> float:
        return ml + (v - x0) / span * pw

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(summary.name)} histogram">',
             f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#555"/>',
             f'<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{mt + ph}" stroke="#555"/>']
    fills = (COLORS["kept"], COLORS["here"], COLORS["elsewhere"])
    for left, right, counts in rows:
        y = mt + ph
        bx, bw = sx(left), max(sx(right) - sx(left) - 1, 1)
        for cls, c in enumerate(counts):
            if not c:
                continue
            h = c / ymax * ph
            y -= h
            parts.append(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                         f'fill="{fills[cls]}"><title>{esc(_axis(left, log))}–{esc(_axis(right, log))}: '
                         f'{esc(CLASS_NAMES[cls])} {c:,}</title></rect>')
    for i, (t, color, label) in enumerate(((threshold, COLORS["threshold"], threshold_label),
                                           (whatif, COLORS["whatif"], "what-if"))):
        if t is None or (log and t <= 0):
            continue
        tx = sx(math.log10(t) if log else t)
        parts.append(f'<line x1="{tx:.1f}" y1="{mt - 4}" x2="{tx:.1f}" y2="{mt + ph}" stroke="{color}" '
                     f'stroke-width="2" stroke-dasharray="5,3"/>')
        anchor = "end" if tx > ml + pw * 0.6 else "start"
        dx = -3 if anchor == "end" else 3
        parts.append(f'<text x="{tx + dx:.1f}" y="{mt + 6 + 11 * i}" font-size="10" fill="{color}" '
                     f'text-anchor="{anchor}">{esc(label)} {esc(_fmt_num(t))}</text>')
    for tv in _ticks(x0, x1, log):
        tx = sx(tv)
        parts.append(f'<line x1="{tx:.1f}" y1="{mt + ph}" x2="{tx:.1f}" y2="{mt + ph + 3}" stroke="#555"/>'
                     f'<text x="{tx:.1f}" y="{height - 16}" font-size="10" fill="#444" text-anchor="middle">'
                     f'{esc(_axis(tv, log))}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 3}" font-size="10" fill="#666" text-anchor="middle">'
                 f'{esc(summary.name)}{" (log scale)" if log else ""}</text>')
    parts.append(f'<text x="{ml - 4}" y="{mt + 4}" font-size="10" fill="#444" text-anchor="end">{ymax:,}</text>')
    parts.append(f'<text x="{ml - 4}" y="{mt + ph}" font-size="10" fill="#444" text-anchor="end">0</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ticks(lo: float, hi: float, log: bool, target: int = 5) -> list[float]:
    """Round tick positions inside [lo, hi]: 1-2-5 steps, or whole decades on a log axis."""
    if hi <= lo:
        return [lo]
    if log:
        first, last = math.ceil(lo), math.floor(hi)
        step = max(1, math.ceil((last - first + 1) / target))
        return [float(k) for k in range(first, last + 1, step)] or [lo, hi]
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    k = math.ceil(lo / step - 1e-9)
    out = []
    while k * step <= hi + 1e-9 * step:
        out.append(round(k * step, 12))
        k += 1
    return out


def _axis(v: float, log: bool) -> str:
    return _fmt_num(10 ** v) if log else _fmt_num(v)


def svg_hbars(rows: list[tuple[str, list[tuple[float, str, str]]]], width: int = 640,
              label_w: int = 150, bar_h: int = 18, value_w: int = 190) -> str:
    """Horizontal stacked bars: ``rows = [(label, [(value, colour, tooltip), ...]), ...]``."""
    if not rows:
        return ""
    total_max = max(sum(v for v, _, _ in segs) for _, segs in rows) or 1
    pw = width - label_w - value_w
    height = len(rows) * (bar_h + 6) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    for i, (label, segs) in enumerate(rows):
        y = 4 + i * (bar_h + 6)
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h - 5}" font-size="12" text-anchor="end" '
                     f'fill="#222">{esc(label)}</text>')
        x = float(label_w)
        for v, color, tip in segs:
            w = v / total_max * pw
            if w <= 0:
                continue
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                         f'<title>{esc(tip)}</title></rect>')
            x += w
        tips = " / ".join(t for _, _, t in segs if t)
        parts.append(f'<text x="{x + 6:.1f}" y="{y + bar_h - 5}" font-size="11" fill="#333">'
                     f'{esc(tips)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_vbars(points: list[tuple[str, float]], width: int = 560, height: int = 180,
              color: str = COLORS["bar"], log_y: bool = False, xlabel: str = "") -> str:
    """Vertical bars for small categorical histograms (e.g. dedup cluster sizes)."""
    if not points:
        return ""
    ml, mr, mt, mb = 50, 10, 12, 40
    pw, ph = width - ml - mr, height - mt - mb
    tr = (lambda v: math.log10(1 + v)) if log_y else (lambda v: v)
    ymax = max(tr(v) for _, v in points) or 1
    bw = min(pw / len(points), 56.0)     # a few bins stay bars, not slabs
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<line x1="{ml}" y1="{mt + ph}" x2="{ml + pw}" y2="{mt + ph}" stroke="#555"/>']
    for i, (label, v) in enumerate(points):
        h = tr(v) / ymax * ph
        x = ml + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{mt + ph - h:.1f}" width="{max(bw - 2, 1):.1f}" '
                     f'height="{h:.1f}" fill="{color}"><title>{esc(label)}: {esc(_fmt_num(v))}</title></rect>')
        if len(points) <= 24 or i % max(1, len(points) // 12) == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{mt + ph + 13}" font-size="10" '
                         f'text-anchor="middle" fill="#444">{esc(label)}</text>')
    top = max(v for _, v in points)
    parts.append(f'<text x="{ml - 4}" y="{mt + 8}" font-size="10" text-anchor="end" fill="#444">'
                 f'{esc(_fmt_num(top))}</text>')
    parts.append(f'<text x="{ml + pw / 2}" y="{height - 4}" font-size="10" text-anchor="middle" '
                 f'fill="#666">{esc(xlabel)}{" (log y)" if log_y else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# HTML page
# ---------------------------------------------------------------------------------------------

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --fg:#1d232b; --muted:#5b6570; --line:#dde2e8; --bg:#f6f7f9; --card:#fff; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans KR", "Apple SD Gothic Neo",
       "Malgun Gothic", sans-serif; color: var(--fg); background: var(--bg); margin: 0; }
header { background: #1f3b57; color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { color: #c9d6e3; font-size: 13px; }
nav { background: #fff; border-bottom: 1px solid var(--line); padding: 8px 28px; position: sticky; top: 0; z-index: 2; }
nav a { margin-right: 14px; color: #1f5f99; text-decoration: none; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
h2 { margin: 0 0 10px; font-size: 18px; }
h3 { margin: 14px 0 6px; font-size: 15px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #b42318; font-weight: 600; }
.muted { color: var(--muted); }
.disabled { color: var(--muted); font-style: italic; }
.col { max-width: 600px; }
.grid { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.grid.wide { gap: 12px 32px; }
.plot { border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; background: #fff; }
.plot .cap { font-size: 12px; color: var(--muted); max-width: 360px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
details { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 4px 10px; background: #fcfcfd; }
summary { cursor: pointer; font-weight: 600; }
.doc { border-top: 1px dashed var(--line); padding: 8px 0; }
.doc .head { font-size: 12px; color: var(--muted); }
pre.text { white-space: pre-wrap; word-break: break-word; background: #f7f7f4; border: 1px solid #ecece4;
           padding: 8px; margin: 4px 0; max-height: 240px; overflow: auto;
           font-family: inherit; font-size: 13px; line-height: 1.5; }
.sig { font-size: 12px; color: #374151; }
.sig code { background: #eef1f4; padding: 0 4px; border-radius: 3px; margin-right: 6px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.pair h4 { margin: 4px 0; font-size: 12px; color: var(--muted); }
"""


def _table(headers: list[str], rows: list[list[Any]], numeric: Iterable[int] = ()) -> str:
    numeric = set(numeric)
    head = "".join(f'<th class="n">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            text = _fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            cls = ' class="n"' if i in numeric else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f'<div class="scroll"><table>{thead}<tbody>{"".join(body)}</tbody></table></div>'


def _pct(n: float, d: float) -> str:
    return f"{100.0 * n / d:.1f}%" if d else "–"


def _human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000.0
    return str(n)


def funnel_rows(summary: RunSummary) -> list[dict[str, Any]]:
    """One row per stage in order: documents and bytes entering and leaving (None if disabled)."""
    stats = summary.stats
    out = []
    read = stats.get("read") or {}
    out.append({"stage": "read", "enabled": True, "in": read.get("records", (stats.get("documents") or {}).get("in")),
                "kept": read.get("documents"), "dropped": read.get("errors", 0),
                "bytes_in": None, "bytes_out": read.get("bytes_out"), "drop": {"errors": read.get("errors", 0)}})
    stages = stats.get("stages") or {}
    for stage in summary.stage_order:
        if stage == "read":
            continue
        st = stages.get(stage)
        if st is None or not summary.stage_enabled(stage):
            out.append({"stage": stage, "enabled": False})
            continue
        out.append({"stage": stage, "enabled": True, "in": st.get("in"), "kept": st.get("kept"),
                    "dropped": st.get("dropped", sum((st.get("drop") or {}).values())),
                    "bytes_in": st.get("bytes_in"), "bytes_out": st.get("bytes_out"),
                    "drop": st.get("drop") or {}})
    return out


def accounting_line(stats: Mapping[str, Any]) -> tuple[bool, str]:
    acc = stats.get("accounting") or {}
    docs = stats.get("documents") or {}
    n_in, kept = acc.get("in", docs.get("in", 0)), acc.get("kept", docs.get("kept", 0))
    rej, err = acc.get("rejected", docs.get("rejected", 0)), acc.get("errors", docs.get("errors", 0))
    ok = bool(acc.get("ok", n_in == kept + rej + err))
    line = (f"in {n_in:,} = kept {kept:,} + rejected {rej:,} + errors {err:,}"
            f" ({'balanced' if ok else 'MISMATCH'})")
    problems = acc.get("problems") or []
    if problems:
        line += "; " + "; ".join(str(p) for p in problems)
    return ok, line


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'


def _disabled(stage: str) -> str:
    return f'<p class="disabled">The {esc(stage)} stage was disabled in this run; nothing to show.</p>'


def render_summary(s: RunSummary) -> str:
    stats = s.stats
    docs, byts = stats.get("documents") or {}, stats.get("bytes") or {}
    ok, line = accounting_line(stats)
    rows = [["run id", stats.get("run_id", "")], ["runner", stats.get("runner", "")],
            ["inputs", ", ".join(map(str, stats.get("inputs") or []))],
            ["input files", stats.get("input_files", "")],
            ["finished", stats.get("finished_at", "")], ["elapsed", f"{stats.get('elapsed_s', 0):.1f} s"],
            ["stages enabled", ", ".join(s.stages_enabled)]]
    body = '<div class="grid wide"><div>' + _table(["", ""], rows) + "</div><div>"
    body += _table(["", "documents", "bytes"],
                   [["in", docs.get("in", 0), _human_bytes(byts.get("in", 0) or 0)],
                    ["kept", docs.get("kept", 0), _human_bytes(byts.get("kept", 0) or 0)],
                    ["kept %", _pct(docs.get("kept", 0), docs.get("in", 0)), _pct(byts.get("kept", 0), byts.get("in", 0))],
                    ["rejected", docs.get("rejected", 0), ""], ["errors", docs.get("errors", 0), ""]],
                   numeric=[1, 2]) + "</div></div>"
    body += f'<p>Accounting: <span class="{"ok" if ok else "bad"}">{esc(line)}</span></p>'
    return _section("summary", "Run summary", body)


def render_funnel(s: RunSummary) -> str:
    rows = funnel_rows(s)
    trows, drows, brows = [], [], []
    for r in rows:
        if not r["enabled"]:
            trows.append([r["stage"], "disabled", "", "", "", "", ""])
            continue
        n_in, kept, dropped = r["in"] or 0, r["kept"] or 0, r["dropped"] or 0
        bi, bo = r.get("bytes_in"), r.get("bytes_out")
        # Zero bytes out of a stage that passed documents on means "not counted" (tokenize
        # emits token shards, not text), not "all text removed": show a dash, draw no bar.
        if bo == 0 and kept > 0:
            bi = None if not bi else bi
            bo = None
        trows.append([r["stage"], n_in, kept, dropped, _pct(dropped, n_in),
                      _human_bytes(bi) if bi is not None else "–", _human_bytes(bo) if bo is not None else "–"])
        drows.append((r["stage"], [(kept, COLORS["kept"], f"{kept:,} out"),
                                   (dropped, COLORS["drop"], f"−{dropped:,} ({_pct(dropped, n_in)})")]))
        if bo is not None:
            lost = max((bi or bo) - bo, 0)
            brows.append((r["stage"], [(bo, COLORS["kept"], _human_bytes(bo) + " out"),
                                       (lost, COLORS["drop"], f"−{_human_bytes(lost)}")]))
    table = _table(["stage", "docs in", "docs out", "removed", "removed %", "bytes in", "bytes out"], trows,
                   numeric=[1, 2, 3, 4, 5, 6])
    charts = ('<div class="legend"><span><i style="background:%s"></i>leaves the stage</span>'
              '<span><i style="background:%s"></i>removed by the stage</span></div>'
              % (COLORS["kept"], COLORS["drop"]))
    charts += "<h3>Documents</h3>" + svg_hbars(drows, width=540, label_w=80, value_w=170)
    if brows:
        charts += "<h3>UTF-8 text bytes</h3>" + svg_hbars(brows, width=540, label_w=80, value_w=170)
    body = (f'<div class="grid wide"><div class="col">{table}<p class="muted">Stages that rewrite text (normalisation, '
            f'boilerplate removal, PII masks) change bytes without removing documents.</p></div>'
            f"<div>{charts}</div></div>")
    return _section("funnel", "Funnel", body)


def render_removals(s: RunSummary) -> str:
    n_in = (s.stats.get("documents") or {}).get("in", 0)
    rows = [[stage, reason, n, _pct(n, n_in)] for stage, reason, n in s.removal_rows()]
    body = _table(["stage", "reason", "documents", "% of input"], rows, numeric=[2, 3]) if rows else \
        '<p class="muted">No document was removed.</p>'
    sources = s.stats.get("sources") or {}
    if sources:
        reasons = [(st, r) for st, r, _ in s.removal_rows()]
        head = ["source", "in", "kept", "kept %", "bytes in", "bytes out"] + [f"{st}/{r}" for st, r in reasons]
        trows, bars = [], []
        palette = ["#e8772e", "#c0262d", "#7b3fb5", "#d4a72c", "#2a9d8f", "#8d6e63", "#e76f51", "#5c6bc0",
                   "#9e9d24", "#ad1457"]
        for src, d in sorted(sources.items(), key=lambda kv: -kv[1].get("in", 0)):
            drop = d.get("drop") or {}
            vals = [int((drop.get(st) or {}).get(r, 0)) for st, r in reasons]
            trows.append([src, d.get("in", 0), d.get("kept", 0), _pct(d.get("kept", 0), d.get("in", 0)),
                          _human_bytes(d.get("bytes_in", 0) or 0), _human_bytes(d.get("bytes_out", 0) or 0)] + vals)
            segs = [(d.get("kept", 0), COLORS["kept"], f"kept {d.get('kept', 0):,}")]
            segs += [(v, palette[i % len(palette)], "") for i, v in enumerate(vals) if v]
            bars.append((src, segs))
        body += "<h3>Per source</h3>" + _table(head, trows, numeric=range(1, len(head)))
        legend = "".join(f'<span><i style="background:{palette[i % len(palette)]}"></i>{esc(st)}/{esc(r)}</span>'
                         for i, (st, r) in enumerate(reasons))
        body += (f'<div class="legend"><span><i style="background:{COLORS["kept"]}"></i>kept</span>{legend}</div>'
                 + svg_hbars(bars, width=760, label_w=170))
    return _section("removals", "Removals per stage and reason", body)


def render_signals(s: RunSummary) -> str:
    if not s.signals:
        return _section("signals", "Filter signals", '<p class="muted">No document carries signals '
                        '(the filter stages were disabled or removed everything).</p>')
    legend = ('<div class="legend">'
              f'<span><i style="background:{COLORS["kept"]}"></i>kept</span>'
              f'<span><i style="background:{COLORS["here"]}"></i>removed by this filter (or stage)</span>'
              f'<span><i style="background:{COLORS["elsewhere"]}"></i>removed by another filter or stage</span>'
              f'<span><i style="background:{COLORS["threshold"]}"></i>threshold of this run</span>'
              f'<span><i style="background:{COLORS["whatif"]}"></i>what-if threshold</span></div>')
    whatif_by_signal = {w.rule.signal: w.new for w in s.whatifs}
    cards, cats, constant = [], [], []
    for name in sorted(s.signals):
        summ = s.signals[name]
        tot = summ.class_totals()
        if summ.is_numeric and summ.linear.min == summ.linear.max:
            constant.append([name, summ.linear.min, summ.linear.n, tot[0], tot[1], tot[2]])
        elif summ.is_numeric:
            thr = s.thresholds.get(name)
            svg = svg_histogram(summ, threshold=thr[2] if thr else None,
                                threshold_label=thr[0].split(".", 1)[1] if thr else "",
                                whatif=whatif_by_signal.get(name))
            cap = (f"n={summ.linear.n:,} · min {_fmt_num(summ.linear.min)} · max {_fmt_num(summ.linear.max)} · "
                   f"kept {tot[0]:,} · removed here {tot[1]:,} · elsewhere {tot[2]:,}")
            if thr:
                cap += f" · drops when {name} {thr[1].removes_when} {_fmt_num(thr[2])} ({thr[0]})"
            cards.append(f'<div class="plot" id="sig-{esc(name)}">{svg}<div class="cap">{esc(cap)}</div></div>')
        else:
            items = sorted(summ.categories.items(), key=lambda kv: -sum(kv[1]))[:15]
            rows = [[k, c[0], c[1], c[2]] for k, c in items]
            if sum(summ.other_categories):
                rows.append(["(other)"] + summ.other_categories)
            cats.append(f'<div class="plot" id="sig-{esc(name)}"><b>{esc(name)}</b>'
                        + _table(["value", "kept", "removed here", "elsewhere"], rows, numeric=[1, 2, 3]) + "</div>")
    scanned = s.docs_scanned
    body = (f'<p class="muted">From the <code>signals</code> stored on {scanned["kept"]:,} kept and '
            f'{scanned["rejected"]:,} rejected documents (exact streaming histograms). A filter stops at '
            'the first drop, so signals of later filters are missing on documents removed earlier.</p>')
    body += legend + '<div class="grid">' + "".join(cards) + "</div>"
    if constant:
        body += ("<h3>Signals with one value on every document</h3>"
                 + _table(["signal", "value", "documents", "kept", "removed here", "elsewhere"], constant,
                          numeric=[1, 2, 3, 4, 5]))
    if cats:
        body += "<h3>Categorical signals</h3>" + '<div class="grid">' + "".join(cats) + "</div>"
    return _section("signals", "Filter signals", body)


def render_whatif(s: RunSummary) -> str:
    if not s.whatifs:
        return ""
    body = ['<p class="muted">Replayed from stored signals without re-running. "Would be kept" counts '
            'documents this threshold removed that pass the new value; they may still be removed by '
            'a later filter or stage.</p>']
    rows = []
    for w in s.whatifs:
        rows.append([w.key, _fmt_num(w.old) if w.old is not None else "–", _fmt_num(w.new),
                     f"{w.rule.signal} {w.rule.removes_when} threshold", w.kept_would_be_removed,
                     w.removed_would_be_kept, w.removed_still_removed, w.later_removed_also_fail])
    body.append(_table(["key", "run value", "what-if value", "removes when", "kept → removed",
                        "removed → kept", "still removed", "removed later, also fails"], rows,
                       numeric=[4, 5, 6, 7]))
    for w in s.whatifs:
        summ = s.signals.get(w.rule.signal)
        if summ is not None and summ.is_numeric:
            body.append(f'<div class="plot">{svg_histogram(summ, w.old, w.key.split(".", 1)[1], w.new)}</div>')
        for title, res in (("kept now, removed with the new value", w.samples_newly_removed),
                           ("removed now, kept by this filter with the new value", w.samples_newly_kept)):
            if res.items:
                body.append(f"<details><summary>{esc(w.key)}: {esc(title)} ({res.seen:,})</summary>"
                            + "".join(_doc_html(d) for d in res.items) + "</details>")
    return _section("whatif", "What-if thresholds", "".join(body))


def _find_histogram(d: Mapping[str, Any]) -> Optional[tuple[str, dict[str, int]]]:
    """The cluster-size histogram of the dedup stats (``{"2": n, "3-4": n, ...}``), if any."""
    for k in ("cluster_size_histogram", *[k for k in d if "hist" in k.lower()]):
        v = d.get(k)
        if isinstance(v, Mapping) and v and all(isinstance(x, (int, float)) for x in v.values()):
            return k, dict(v)
    return None


def render_dedup(s: RunSummary) -> str:
    if not s.stage_enabled("dedup"):
        return _section("dedup", "Deduplication", _disabled("dedup"))
    d = s.stats.get("dedup") or {}
    st = (s.stats.get("stages") or {}).get("dedup") or {}
    body = [_table(["", "documents"], [["in", st.get("in", 0)], ["kept", st.get("kept", 0)]]
                   + [[f"removed: {r}", n] for r, n in (st.get("drop") or {}).items()], numeric=[1])]
    hist = _find_histogram(d)
    if hist:
        key, h = hist
        body.append(f"<h3>Cluster sizes (survivor + removed copies)</h3>")
        body.append(svg_vbars([(str(k), v) for k, v in h.items()], log_y=True, xlabel="cluster size (documents)"))
    largest = d.get("largest_clusters") or []
    if largest:
        rows = []
        for c in largest[:15]:
            removed = ", ".join(f"{r} {n}" for r, n in (c.get("removed") or {}).items())
            members = "; ".join(f"{m.get('id')}: {m.get('excerpt', '')}" for m in (c.get("members") or [])[:3])
            rows.append([c.get("size", ""), c.get("survivor", ""), removed,
                         excerpt(str(c.get("survivor_excerpt") or ""), 160), excerpt(members, 240)])
        body.append("<h3>Largest clusters</h3>" + _table(
            ["size", "survivor", "removed", "survivor text", "removed copies (first ids)"], rows, numeric=[0]))
    audit = d.get("audit") or {}
    if isinstance(audit, Mapping) and audit:
        arows = [[k, v] for k, v in audit.items() if not isinstance(v, (Mapping, list))]
        body.append("<h3>Near-duplicate audit (exact Jaccard of sampled candidate pairs)</h3>" + _table(["", ""], arows))
        jh = audit.get("jaccard_histogram")
        if isinstance(jh, Mapping) and jh:
            body.append(svg_vbars([(k, v) for k, v in jh.items()], width=460, height=150, xlabel="Jaccard"))
    counts = d.get("counts") or {}
    per_source = counts.get("per_source") if isinstance(counts, Mapping) else None
    if isinstance(per_source, Mapping) and per_source:
        cols = list(dict.fromkeys(c for v in per_source.values() if isinstance(v, Mapping) for c in v))
        body.append("<h3>Per source</h3>" + _table(
            ["source"] + cols, [[src] + [v.get(c, 0) for c in cols] for src, v in sorted(per_source.items())
                                if isinstance(v, Mapping)], numeric=range(1, len(cols) + 1)))
    # "config" repeats the run's dedup section (shown in config.yaml); not statistics.
    shown = {"largest_clusters", "audit", "config", hist[0] if hist else ""}
    other = []
    for k, v in d.items():
        if k in shown:
            continue
        if isinstance(v, Mapping):
            other += [[f"{k}.{k2}", _short(v2)] for k2, v2 in v.items() if k2 != "per_source"]
        else:
            other.append([k, _short(v)])
    if other:
        body.append("<h3>Other dedup statistics</h3>" + _table(["", ""], other))
    return _section("dedup", "Deduplication", "".join(body))


def _short(v: Any, n: int = 160) -> str:
    if isinstance(v, (list, dict)):
        v = json.dumps(v, ensure_ascii=False)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _fmt_num(v)
    return excerpt("" if v is None else str(v), n)


def pii_type_name(counter: str) -> str:
    """``masked.email`` (filters/pii count name) -> ``email``."""
    return counter[len("masked."):] if counter.startswith("masked.") else counter


def render_pii(s: RunSummary) -> str:
    if not s.stage_enabled("pii"):
        return _section("pii", "PII", _disabled("pii"))
    counts = s.pii_counts()
    if not counts:
        return _section("pii", "PII", '<p class="muted">No PII entity was found.</p>')
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    body = '<p class="muted">Entities masked by the pii stage, by type.</p>'
    body += _table(["type", "entities"], [[pii_type_name(k), v] for k, v in items], numeric=[1])
    body += svg_hbars([(pii_type_name(k), [(v, COLORS["bar"], f"{v:,}")]) for k, v in items], width=560, value_w=90)
    by_src = s.pii_by_source()
    if by_src:
        types = [k for k, _ in items]
        body += "<h3>Per source</h3>" + _table(["source"] + [pii_type_name(t) for t in types],
                                               [[src] + [c.get(t, 0) for t in types] for src, c in sorted(by_src.items())],
                                               numeric=range(1, len(types) + 1))
    return _section("pii", "PII by type", body)


def _split_tokens(v: Any) -> tuple[Any, Any]:
    if isinstance(v, Mapping):
        return v.get("documents"), v.get("tokens")
    return None, v


def render_tokens(s: RunSummary) -> str:
    if not s.stage_enabled("tokenize"):
        return _section("tokens", "Tokens", _disabled("tokenize"))
    m = s.manifest or s.stats.get("shards") or {}
    if not m:
        return _section("tokens", "Tokens", '<p class="muted">No shard manifest found.</p>')
    totals = m.get("totals") or {}
    body = [f'<p>Total: <b>{esc(_fmt_num(totals.get("tokens", 0)))}</b> tokens in '
            f'{esc(_fmt_num(totals.get("documents", 0)))} documents; dtype {esc(m.get("dtype", "?"))}, '
            f'vocabulary {esc(_fmt_num((m.get("tokenizer") or {}).get("vocab_size", "?")))}.</p>']
    per_source = totals.get("per_source") or {}
    if per_source:
        rows = []
        for src, v in sorted(per_source.items()):
            docs, toks = _split_tokens(v)
            rows.append([src, docs if docs is not None else "", toks])
        body.append("<h3>Per source</h3>" + _table(["source", "documents", "tokens"], rows, numeric=[1, 2]))
        body.append(svg_hbars([(r[0], [(float(r[2] or 0), COLORS["bar"], _fmt_num(r[2]))]) for r in rows],
                              width=560, value_w=110))
    per_split = totals.get("per_split") or {}
    if per_split:
        rows = [[sp, *(_split_tokens(v))] for sp, v in sorted(per_split.items())]
        body.append("<h3>Per split</h3>" + _table(["split", "documents", "tokens"],
                                                  [[r[0], r[1] if r[1] is not None else "", r[2]] for r in rows],
                                                  numeric=[1, 2]))
    per_split_source = totals.get("per_split_source") or {}
    if per_split_source:
        rows = [[sp, src, *_split_tokens(v)] for sp, srcs in sorted(per_split_source.items())
                for src, v in sorted(srcs.items())]
        body.append("<h3>Per split and source</h3>" + _table(
            ["split", "source", "documents", "tokens"], [[a, b, c if c is not None else "", d] for a, b, c, d in rows],
            numeric=[2, 3]))
    shards = m.get("shards") or []
    if shards:
        body.append("<h3>Per shard</h3>" + _table(
            ["shard", "split", "documents", "tokens"],
            [[sh.get("path", ""), sh.get("split", ""), sh.get("documents", 0), sh.get("tokens", 0)] for sh in shards],
            numeric=[2, 3]))
    return _section("tokens", "Tokens", "".join(body))


def _doc_html(d: Mapping[str, Any], title: str = "") -> str:
    sig = " ".join(f"<code>{esc(k)}={esc(_short(v, 40))}</code>" for k, v in sorted((d.get("signals") or {}).items()))
    head = f"{esc(title)} " if title else ""
    head += f'id <b>{esc(d.get("id"))}</b> · source <b>{esc(d.get("source"))}</b> · {esc(_fmt_num(d.get("chars", 0)))} chars'
    if d.get("stage"):
        head += f' · {esc(d.get("stage"))}/{esc(d.get("reason"))}'
    if d.get("duplicate_of"):
        head += f' · duplicate of <b>{esc(d.get("duplicate_of"))}</b>'
    return (f'<div class="doc"><div class="head">{head}</div>'
            f'<pre class="text">{esc(d.get("text", ""))}</pre><div class="sig">{sig}</div></div>')


def render_samples(s: RunSummary) -> str:
    if not s.samples:
        return _section("samples", "Removed documents", '<p class="muted">No document was removed.</p>')
    order = {st: i for i, st in enumerate(s.stage_order)}
    body = ['<p class="muted">A uniform random sample (reservoir) of the removed documents of every '
            'reason; text excerpts are shown as plain text.</p>']
    for i, ((stage, reason), res) in enumerate(sorted(s.samples.items(),
                                                      key=lambda kv: (order.get(kv[0][0], 99), -kv[1].seen))):
        inner = []
        for d in res.items:
            if stage == "dedup" and d.get("duplicate_of"):
                surv = s.survivors.get(d["duplicate_of"])
                right = (_doc_html(surv, f"survivor ({surv.get('status')})") if surv else
                         f'<p class="muted">survivor {esc(d["duplicate_of"])} not found in kept/ or rejected/</p>')
                inner.append(f'<div class="pair"><div><h4>removed copy</h4>{_doc_html(d)}</div>'
                             f'<div><h4>kept survivor</h4>{right}</div></div>')
            else:
                inner.append(_doc_html(d))
        body.append(f'<details id="sample-{esc(stage)}-{esc(reason)}"{" open" if i == 0 else ""}><summary>{esc(stage)} / {esc(reason)} — '
                    f'{res.seen:,} removed, {len(res.items)} shown</summary>{"".join(inner)}</details>')
    return _section("samples", "Removed documents by reason", "".join(body))


def render_errors(s: RunSummary) -> str:
    n = (s.stats.get("documents") or {}).get("errors", 0)
    if not n:
        return _section("errors", "Input errors", '<p class="muted">No input record failed to read.</p>')
    body = _table(["kind", "records"], sorted((s.stats.get("errors_by_kind") or {}).items()), numeric=[1])
    body += _table(["file", "records"], sorted((s.stats.get("errors_by_file") or {}).items()), numeric=[1])
    for e in s.error_samples.items:
        body += (f'<div class="doc"><div class="head">{esc(e.get("file"))} @ {esc(e.get("position"))}: '
                 f'{esc(e.get("error"))}</div><pre class="text">{esc(e.get("snippet", ""))}</pre></div>')
    return _section("errors", "Input errors", body)


SECTIONS = [("summary", "Summary"), ("funnel", "Funnel"), ("removals", "Removals"), ("signals", "Signals"),
            ("whatif", "What-if"), ("dedup", "Dedup"), ("pii", "PII"), ("tokens", "Tokens"),
            ("samples", "Samples"), ("errors", "Errors")]


def render_html(s: RunSummary) -> str:
    parts = [render_summary(s), render_funnel(s), render_removals(s), render_signals(s), render_whatif(s),
             render_dedup(s), render_pii(s), render_tokens(s), render_samples(s), render_errors(s)]
    nav = "".join(f'<a href="#{sid}">{esc(t)}</a>' for sid, t in SECTIONS if sid != "whatif" or s.whatifs)
    title = f"polyko report — {s.run_dir}"
    return ("<!DOCTYPE html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f'<header><h1>polyko run report</h1><div class="meta">{esc(s.run_dir)} · run '
            f'{esc(s.stats.get("run_id", ""))} · {esc(s.stats.get("finished_at", ""))}</div></header>'
            f"<nav>{nav}</nav><main>{''.join(parts)}</main></body></html>\n")


def write_report(run_dir: str | Path, set_items: Iterable[str] = (), output: Optional[str] = None,
                 samples_per_reason: int = 6) -> str:
    """Render ``DIR/report.html`` (or ``output``) for a finished run; returns the path written."""
    summary = collect(str(run_dir), set_items=set_items, samples_per_reason=samples_per_reason)
    path = output or _join(str(run_dir), "report.html")
    _write_text(path, render_html(summary))
    return path


# ---------------------------------------------------------------------------------------------
# Terminal output (shared with pipeline/stats_view.py)
# ---------------------------------------------------------------------------------------------

_CONTROL = {c: f"\\x{c:02x}" for c in list(range(0, 9)) + list(range(11, 32)) + [127]}
_CONTROL.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


def terminal_safe(text: str) -> str:
    """Crawled text may hold ANSI escape sequences; show control characters as ``\\xNN`` so
    printing a document can never move the cursor, retitle the window or hide lines."""
    return str(text).translate(_CONTROL)


def whatif_lines(s: RunSummary) -> list[str]:
    out = []
    for w in s.whatifs:
        old = _fmt_num(w.old) if w.old is not None else "unset"
        out.append(f"{w.key}: {old} -> {_fmt_num(w.new)} (drops when {w.rule.signal} {w.rule.removes_when} value)")
        out.append(f"  kept now, would be removed:          {w.kept_would_be_removed:,}")
        out.append(f"  removed now, would pass this filter: {w.removed_would_be_kept:,}")
        out.append(f"  removed now, still removed:          {w.removed_still_removed:,}")
        out.append(f"  removed by a later stage, also fail: {w.later_removed_also_fail:,}")
        if w.kept_fail_current:
            out.append(f"  warning: {w.kept_fail_current:,} kept documents fail the run's own value "
                       f"(the threshold table may not match the filter)")
    return out


def inspect_docs(run_dir: str, reason: Optional[str] = None, stage: Optional[str] = None,
                 source: Optional[str] = None, n: int = 5, seed: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Uniform sample of ``n`` rejected documents matching stage/reason/source; returns (matches, docs)."""
    res = Reservoir(n, seed=seed)
    for rec in iter_output(str(run_dir), "rejected"):
        if stage is not None and rec.get("stage") != stage:
            continue
        if reason is not None and rec.get("reason") != reason:
            continue
        if source is not None and rec.get("source") != source:
            continue
        res.add(rec)
    return res.seen, res.items


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        summary = collect(args.dir, set_items=args.set or [], samples_per_reason=args.samples)
    except (RunDirError, ValueError) as exc:
        print(f"polyko report: {exc}", file=sys.stderr)
        return 2
    path = args.output or _join(args.dir, "report.html")
    _write_text(path, render_html(summary))
    for line in whatif_lines(summary):
        print(line)
    print(f"wrote {path}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console()
    try:
        load_run_stats(args.dir)
    except RunDirError as exc:
        print(f"polyko inspect: {exc}", file=sys.stderr)
        return 2
    total, docs = inspect_docs(args.dir, reason=args.reason, stage=args.stage, source=args.source,
                               n=args.n, seed=args.seed)
    what = " ".join(f"{k}={v}" for k, v in (("stage", args.stage), ("reason", args.reason),
                                           ("source", args.source)) if v is not None)
    console.print(Text(terminal_safe(f"{total:,} removed documents match {what or '(all)'}; showing {len(docs)}"),
                       style="bold"))
    for d in docs:
        body = Text(terminal_safe(excerpt(d.get("text") or "", args.chars)))
        sig = ", ".join(f"{k}={v}" for k, v in sorted((d.get("signals") or {}).items()))
        if sig:
            body.append("\n\n" + terminal_safe(sig), style="dim")
        title = f"{d.get('id')} · {d.get('source')} · {d.get('stage')}/{d.get('reason')}"
        if d.get("duplicate_of"):
            title += f" · duplicate of {d.get('duplicate_of')}"
        console.print(Panel(body, title=Text(terminal_safe(title)), title_align="left"))
    return 0 if total else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("report", help="write DIR/report.html for a finished run",
                              description="Render a self-contained HTML report of a finished run; "
                                          "--set replays a different threshold from stored signals.")
    p.add_argument("dir", help="run directory (the --output of polyko run)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help=f"what-if threshold, repeatable; keys: {', '.join(sorted(THRESHOLD_RULES))}")
    p.add_argument("--output", help="where to write the HTML (default DIR/report.html)")
    p.add_argument("--samples", type=int, default=6, help="removed documents shown per reason (default 6)")
    p.set_defaults(func=_cmd_report)

    q = subparsers.add_parser("inspect", help="print removed documents for one reason",
                              description="Print a random sample of removed documents of one stage/reason.")
    q.add_argument("dir", help="run directory")
    q.add_argument("--stage", help="stage name, e.g. quality")
    q.add_argument("--reason", help="removal reason, e.g. too_short")
    q.add_argument("--source", help="only documents of this source")
    q.add_argument("--n", type=int, default=5, help="how many documents (default 5)")
    q.add_argument("--chars", type=int, default=600, help="text excerpt length (default 600)")
    q.add_argument("--seed", type=int, default=0, help="sampling seed")
    q.set_defaults(func=_cmd_inspect)
