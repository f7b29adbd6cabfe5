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
from itertools import accumulate, compress, count
from operator import eq
from typing import Any, Callable, NamedTuple, Sequence

from filters.base import Document
# The character classes are filters.text_stats' own patterns (language ID uses them too), so the
# quality stage's Hangul share is exactly filters.text_stats.hangul_letter_ratio: syllables and the
# assigned jamo code points; letters are alphabetic characters without numerals such as ① or ².
from filters.text_stats import _DIGIT_RUN as _DIGIT
from filters.text_stats import _JAMO_RUN as _JAMO
from filters.text_stats import _LETTER_RUN as _LETTER
from filters.text_stats import _SYLLABLE_RUN as _SYLLABLE

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
    """The word n-grams of a text that occur more than once, for one n."""

    positions: Sequence[int]  # where each of their occurrences starts, ascending
    ids: Sequence[int]        # the n-gram at each of those positions, as an id: equal n-grams, equal ids
    top: tuple[int, int]      # (first position, occurrences) of the most frequent one


_NO_REPEATS = _Repeats((), (), (0, 0))


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
    def _no_syllables(self) -> str:
        """The text without its Hangul syllables. Deleting them is the costliest character scan
        (one match per eojeol), so the character counts and the per-line syllable counts
        (``line_syllables``) share it."""
        return _SYLLABLE.sub("", self.text)

    @_lazy
    def _class_counts(self) -> tuple[int, int, int]:
        """(Hangul, letters, digits), each class deleted from what the previous deletion left:
        ~2.5x faster than matching each class over the whole text.  Deleting characters does
        not change how the others are classed, and the classes nest: every Hangul character
        (syllable or jamo) is a letter in filters.text_stats, and a digit never is.  So the
        letters are the Hangul plus the letters left once Hangul is deleted, and the digits are
        among the rest, usually a fifth of a Korean text."""
        no_hangul = _JAMO.sub("", self._no_syllables)
        no_letters = _LETTER.sub("", no_hangul)
        n_digits = len(no_letters) - len(_DIGIT.sub("", no_letters))
        return self.n_chars - len(no_hangul), self.n_chars - len(no_letters), n_digits

    @_lazy
    def n_letters(self) -> int:
        # Every jamo filters.text_stats counts is also a letter there ("ㅋㅋㅋ" is 100 % Hangul).
        return self._class_counts[1]

    @_lazy
    def n_syllables(self) -> int:
        return self.n_chars - len(self._no_syllables)

    @_lazy
    def n_jamo(self) -> int:
        return _count(_JAMO, self.text)

    @_lazy
    def n_hangul(self) -> int:
        """Syllables + jamo."""
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
    def line_syllables(self) -> list[int]:
        """Hangul syllables in each of ``lines``."""
        # Deleting syllables leaves the "\n"s, so the text's raw lines and those of
        # _no_syllables pair up; stripping removes whitespace only, never a syllable.
        return [len(raw) - len(rest)
                for raw, rest in zip(self.text.split("\n"), self._no_syllables.split("\n")) if raw.strip()]

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

        Past bigrams an n-gram is not built: the n-gram at i is the pair (id of the (n-1)-gram
        at i, id of the one at i+1), which two n-grams share exactly when they are equal, and
        a pair of ints is hashed faster than a tuple of n words.  Everything here is mapped in
        C (map, compress, zip): a Python loop over every bigram cost as much as counting them.
        """
        found = self._repeats_by_n.get(n)
        if found is not None:
            return found
        if n <= 2:
            keys: list[Any] = self.ngrams(n)
            positions: Sequence[int] = range(len(keys))
        else:
            prev = self._repeats(n - 1)
            # i and i + 1 both repeated: in the ascending list, i is followed by i + 1.
            follows = list(map(eq, map((1).__add__, prev.positions), prev.positions[1:]))
            positions = list(compress(prev.positions, follows))
            keys = list(compress(zip(prev.ids, prev.ids[1:]), follows))
        # The id of an n-gram is the index of its first occurrence in ``keys`` (setdefault keeps
        # the first index it is given for a key); ints are then counted cheaper than the keys.
        first: dict[Any, int] = {}
        ids = list(map(first.setdefault, keys, count()))
        if len(first) == len(ids):  # all distinct
            found = _NO_REPEATS
        else:
            counts = Counter(ids)
            repeated = list(map((1).__lt__, map(counts.__getitem__, ids)))
            # Counted in order of first occurrence, so among equally frequent n-grams
            # most_common picks the first to occur, as it does counting the n-grams themselves.
            top_id, top_count = counts.most_common(1)[0]
            found = _Repeats(list(compress(positions, repeated)), list(compress(ids, repeated)),
                             (positions[top_id], top_count))
        self._repeats_by_n[n] = found
        return found

    @_lazy
    def _word_starts(self) -> list[int]:
        """Characters in the words before each word (and in all of them, last): the n-gram at
        i has ``_word_starts[i + n] - _word_starts[i]`` characters without its spaces."""
        return list(accumulate(map(len, self.words), initial=0))

    def has_duplicate_ngram(self, n: int) -> bool:
        return bool(self._repeats(n).positions)

    def top_ngram_char_frac(self, n: int) -> float:
        """Characters covered by the most frequent word n-gram (Gopher), over all characters.

        Only an n-gram that occurs at least twice counts: one occurrence is not a repetition,
        and without this rule every short comment would exceed the threshold.
        """
        rep = self._repeats(n)
        if not rep.positions:
            return 0.0
        i, top_count = rep.top
        starts = self._word_starts
        return (starts[i + n] - starts[i] + n - 1) * top_count / self.n_chars

    def dup_ngram_char_frac(self, n: int) -> float:
        """Characters in repeated word n-grams over all characters (Gopher; datatrove's scan:
        each later occurrence of an already seen n-gram counts once and the scan jumps past it).
        """
        rep = self._repeats(n)
        if not rep.positions:
            return 0.0
        # Only n-grams that occur more than once can ever be "seen again", so the sequential
        # scan visits just their positions.
        starts = self._word_starts
        seen: set[int] = set()
        repeated = 0
        resume_at = 0  # positions inside a counted duplicate are skipped, as in datatrove
        for i, gram_id in zip(rep.positions, rep.ids):
            if i < resume_at:
                continue
            if gram_id in seen:
                repeated += starts[i + n] - starts[i] + n - 1
                resume_at = i + n
            else:
                seen.add(gram_id)
        return min(1.0, repeated / self.n_chars)

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
