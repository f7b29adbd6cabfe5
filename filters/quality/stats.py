"""Per-document statistics computed ONCE and shared by every quality filter.

Splitting a document into lines and words, counting letter classes and building word n-grams
dominates the cost of heuristic filters, so every filter asks :func:`doc_stats` for a
:class:`DocStats` instead of re-splitting the text.  Each statistic is computed on first use
(and kept): a filter that needs only the character counts never pays for n-grams.

Words are whitespace units (Korean eojeol).  A morphological analyser (Kiwi, as datatrove uses
for Korean) splits each eojeol into ~2.3 morphemes but runs ~20 kowiki articles/s on one core,
over 20x slower than this whole chain (docs/benchmarks.md), so it is not used.

The cache holds the statistics of the last document seen per thread, keyed by the identity of
the ``Document`` *and* of its ``text`` string: a filter that rewrites ``doc.text`` (boilerplate
removal, emoticon collapse) assigns a new string object, so the next filter recomputes.
Nothing is stored on the document itself, so nothing leaks into Beam's encoded elements.
"""
from __future__ import annotations

import re
import threading
from collections import Counter
from itertools import compress
from operator import eq
from typing import Any, Callable, NamedTuple

from filters.base import Document
# The character classes are filters.text_stats' own patterns (language ID uses them too), so the
# quality stage's Hangul share is exactly filters.text_stats.hangul_letter_ratio: syllables and the
# assigned jamo code points; letters are alphabetic characters without numerals such as ① or ².
from filters.text_stats import _JAMO_RUN as _JAMO
from filters.text_stats import _LETTER_RUN as _LETTER
from filters.text_stats import _SYLLABLE_RUN as _SYLLABLE
from filters.text_stats import hangul_letter_digit_counts

# A run of one repeated symbol ("......", "!!!!", "❤️❤️❤️", "😂😂😂"): a character that is not a
# letter, digit, "_" or space, with an optional emoji variation selector, repeated.
_SYMBOL_REPEAT = re.compile("([^\\w\\s]\ufe0f?)\\1+")


def _count(pattern: re.Pattern[str], text: str) -> int:
    """Characters matched by ``pattern`` (a run pattern). Deleting the matches and comparing
    lengths is ~1.5x faster than summing the lengths of ``findall``'s strings."""
    return len(text) - len(pattern.sub("", text))


class _lazy:
    """A statistic computed on first access and then stored in the instance ``__dict__``, which
    shadows this (non-data) descriptor from then on.  ``functools.cached_property`` does the same
    but, before Python 3.12, takes a lock on every first access; a DocStats is never shared
    between threads (see :func:`doc_stats`), so no lock is needed."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


class _Repeats(NamedTuple):
    """The repeated word n-grams of a text, for one n."""

    positions: list[int]             # start of every n-gram that occurs more than once, ascending
    grams: list[tuple[str, ...]]     # the n-gram at each of those positions
    top: tuple[tuple[str, ...], int] | None  # most frequent n-gram and its count (None: no repeat)


class DocStats:
    """Lazily computed statistics of one text. Build through :func:`doc_stats`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.n_chars = len(text)
        self._repeats_by_n: dict[int, _Repeats] = {}

    # --- characters -------------------------------------------------------------------
    @_lazy
    def n_nonspace(self) -> int:
        # str.split() splits on exactly the characters re's \s matches (str.isspace), so the
        # eojeol already hold every non-space character: no second scan of the text.
        return self.n_word_chars

    @_lazy
    def n_space(self) -> int:
        return self.n_chars - self.n_nonspace

    @_lazy
    def _class_counts(self) -> tuple[int, int, int]:
        """(Hangul, letters, digits), counted together: see text_stats.hangul_letter_digit_counts."""
        return hangul_letter_digit_counts(self.text)

    @_lazy
    def n_letters(self) -> int:
        # Every jamo filters.text_stats counts is also a letter there ("ㅋㅋㅋ" is 100 % Hangul).
        return self._class_counts[1]

    @_lazy
    def n_syllables(self) -> int:
        return _count(_SYLLABLE, self.text)

    @_lazy
    def n_jamo(self) -> int:
        return _count(_JAMO, self.text)

    @_lazy
    def n_hangul(self) -> int:
        """Syllables + jamo (one scan of both classes; the filters never need them apart)."""
        return self._class_counts[0]

    @_lazy
    def n_digits(self) -> int:
        return self._class_counts[2]

    @_lazy
    def n_symbols(self) -> int:
        """Non-space characters that are neither letters nor digits (punctuation, emoji …)."""
        return max(0, self.n_nonspace - self.n_letters - self.n_digits)

    @_lazy
    def n_symbol_repeats(self) -> int:
        """Characters that only repeat the symbol before them: 7 in "........" (8 dots), 4 in
        "❤️❤️❤️" (two code points per heart). A run of one symbol is one mark of punctuation or
        one emoticon however long it is typed."""
        return sum(len(m.group(0)) - len(m.group(1)) for m in _SYMBOL_REPEAT.finditer(self.text))

    @_lazy
    def hangul_letter_ratio(self) -> float:
        return self.n_hangul / self.n_letters if self.n_letters else 0.0

    # --- lines and words ----------------------------------------------------------------
    @_lazy
    def lines(self) -> list[str]:
        """Non-empty lines, stripped. Blank lines carry no content and are not counted."""
        return list(filter(None, map(str.strip, self.text.split("\n"))))

    @_lazy
    def n_newlines(self) -> int:
        return self.text.count("\n")

    @_lazy
    def words(self) -> list[str]:
        """Whitespace units (eojeol)."""
        return self.text.split()

    @_lazy
    def n_word_chars(self) -> int:
        return sum(map(len, self.words))

    def ngrams(self, n: int) -> list[tuple[str, ...]]:
        """All word n-grams as tuples (built in C by zip)."""
        w = self.words
        return list(zip(*(w[i:] for i in range(n)))) if len(w) >= n else []

    def _repeats(self, n: int) -> _Repeats:
        """The n-grams that occur more than once (cached per n).

        An n-gram that occurs twice starts with an (n-1)-gram that occurs twice and is followed,
        one word on, by another: a repeated n-gram can only start at a position i where the
        (n-1)-grams at i and i+1 are both repeated.  So only bigrams are counted over the whole
        text, and each longer n only at those positions (a few percent of a clean article's,
        none once nothing repeats).  Every occurrence of a repeated n-gram is among them, in
        text order, so its count, and which of the most frequent comes first, are those of a
        count over all n-grams.
        """
        found = self._repeats_by_n.get(n)
        if found is not None:
            return found
        w = self.words
        if n <= 2:
            grams = self.ngrams(n)
            positions: range | list[int] = range(len(grams))
        else:
            prev = self._repeats(n - 1).positions
            # i and i + 1 both repeated: in the ascending list, i is followed by i + 1.
            positions = list(compress(prev, map(eq, map((1).__add__, prev), prev[1:])))
            grams = [tuple(w[i:i + n]) for i in positions]
        counts = Counter(grams) if len(grams) > 1 else None
        if counts is None or len(counts) == len(grams):  # all distinct (or fewer than two)
            found = _Repeats([], [], None)
        else:
            # count > 1 for each n-gram, mapped in C: a Python loop over every bigram of the
            # text cost as much as counting them.
            repeated = list(map((1).__lt__, map(counts.__getitem__, grams)))
            found = _Repeats(list(compress(positions, repeated)), list(compress(grams, repeated)),
                             counts.most_common(1)[0])
        self._repeats_by_n[n] = found
        return found

    def has_duplicate_ngram(self, n: int) -> bool:
        return bool(self._repeats(n).positions)

    def top_ngram_char_frac(self, n: int) -> float:
        """Characters covered by the most frequent word n-gram (Gopher), over all characters.

        Only an n-gram that occurs at least twice counts: one occurrence is not a repetition,
        and without this rule every short comment would exceed the threshold.
        """
        top = self._repeats(n).top
        if top is None:
            return 0.0
        gram, count = top
        return (sum(map(len, gram)) + n - 1) * count / self.n_chars

    def dup_ngram_char_frac(self, n: int) -> float:
        """Characters in repeated word n-grams over all characters (Gopher; datatrove's scan:
        each later occurrence of an already seen n-gram counts once and the scan jumps past it).
        """
        rep = self._repeats(n)
        # Only n-grams that occur more than once can ever be "seen again", so the sequential
        # scan visits just their positions.
        seen: set[tuple[str, ...]] = set()
        repeated = 0
        resume_at = 0  # positions inside a counted duplicate are skipped, as in datatrove
        for i, g in zip(rep.positions, rep.grams):
            if i < resume_at:
                continue
            if g in seen:
                repeated += sum(map(len, g)) + n - 1
                resume_at = i + n
            else:
                seen.add(g)
        return min(1.0, repeated / self.n_chars) if repeated else 0.0

    @_lazy
    def text_lines(self) -> list[str]:
        """Non-empty lines with at least one letter. Rules ("-----"), page numbers ("- 3 -") and
        table cells of numbers are layout: a form or a table repeats them by construction."""
        return list(filter(_LETTER.search, self.lines))

    @_lazy
    def dup_line_counts(self) -> tuple[int, int]:
        """(number of text lines that repeat an earlier one, characters in those lines)."""
        seen: set[str] = set()
        dup = dup_chars = 0
        for ln in self.text_lines:
            if ln in seen:
                dup += 1
                dup_chars += len(ln)
            else:
                seen.add(ln)
        return dup, dup_chars


_local = threading.local()


def doc_stats(doc: Document) -> DocStats:
    """The shared :class:`DocStats` of ``doc``'s current text (recomputed after a rewrite)."""
    entry = getattr(_local, "entry", None)
    if entry is not None and entry[0] is doc and entry[1] is doc.text:
        return entry[2]
    stats = DocStats(doc.text)
    _local.entry = (doc, doc.text, stats)
    return stats
