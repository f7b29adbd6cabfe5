"""Per-document statistics computed ONCE and shared by every quality filter.

Splitting a document into lines and words, counting letter classes and building word n-grams
dominates the cost of heuristic filters, so every filter asks :func:`doc_stats` for a
:class:`DocStats` instead of re-splitting the text.  Each statistic is a lazily computed
``cached_property``: a filter that needs only the character counts never pays for n-grams.

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
from functools import cached_property
from itertools import compress

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
    """Characters matched by ``pattern`` (a run pattern: matching runs is ~1.5x faster than
    matching single characters, measured on kowiki)."""
    return sum(map(len, pattern.findall(text)))


class DocStats:
    """Lazily computed statistics of one text. Build through :func:`doc_stats`."""

    def __init__(self, text: str) -> None:
        self.text = text

    # --- characters -------------------------------------------------------------------
    @cached_property
    def n_chars(self) -> int:
        return len(self.text)

    @cached_property
    def n_nonspace(self) -> int:
        # str.split() splits on exactly the characters re's \s matches (str.isspace), so the
        # eojeol already hold every non-space character: no second scan of the text.
        return self.n_word_chars

    @cached_property
    def n_space(self) -> int:
        return self.n_chars - self.n_nonspace

    @cached_property
    def n_letters(self) -> int:
        # Every jamo filters.text_stats counts is also a letter there ("ㅋㅋㅋ" is 100 % Hangul).
        return _count(_LETTER, self.text)

    @cached_property
    def n_syllables(self) -> int:
        return _count(_SYLLABLE, self.text)

    @cached_property
    def n_jamo(self) -> int:
        return _count(_JAMO, self.text)

    @cached_property
    def n_hangul(self) -> int:
        return self.n_syllables + self.n_jamo

    @cached_property
    def n_digits(self) -> int:
        return _count(_DIGIT, self.text)

    @cached_property
    def n_symbols(self) -> int:
        """Non-space characters that are neither letters nor digits (punctuation, emoji …)."""
        return max(0, self.n_nonspace - self.n_letters - self.n_digits)

    @cached_property
    def n_symbol_repeats(self) -> int:
        """Characters that only repeat the symbol before them: 7 in "........" (8 dots), 4 in
        "❤️❤️❤️" (two code points per heart). A run of one symbol is one mark of punctuation or
        one emoticon however long it is typed."""
        return sum(len(m.group(0)) - len(m.group(1)) for m in _SYMBOL_REPEAT.finditer(self.text))

    @cached_property
    def hangul_letter_ratio(self) -> float:
        return self.n_hangul / self.n_letters if self.n_letters else 0.0

    # --- lines and words ----------------------------------------------------------------
    @cached_property
    def lines(self) -> list[str]:
        """Non-empty lines, stripped. Blank lines carry no content and are not counted."""
        return [s for s in (ln.strip() for ln in self.text.split("\n")) if s]

    @cached_property
    def n_newlines(self) -> int:
        return self.text.count("\n")

    @cached_property
    def words(self) -> list[str]:
        """Whitespace units (eojeol)."""
        return self.text.split()

    @cached_property
    def n_word_chars(self) -> int:
        return sum(map(len, self.words))

    def ngrams(self, n: int) -> list[tuple[str, ...]]:
        """Word n-grams as tuples (built in C by zip; cached per n)."""
        cache = self.__dict__.setdefault("_ngrams", {})
        if n not in cache:
            w = self.words
            cache[n] = list(zip(*(w[i:] for i in range(n)))) if len(w) >= n else []
        return cache[n]

    def has_duplicate_ngram(self, n: int) -> bool:
        grams = self.ngrams(n)
        return len(set(grams)) < len(grams)

    def _drop_ngrams(self, n: int) -> None:
        # Long n-gram lists are used once; on a 1 MB document keeping all nine would hold
        # ~150 MB of tuples for nothing.
        self.__dict__.get("_ngrams", {}).pop(n, None)

    def top_ngram_char_frac(self, n: int) -> float:
        """Characters covered by the most frequent word n-gram (Gopher), over all characters.

        Only an n-gram that occurs at least twice counts: one occurrence is not a repetition,
        and without this rule every short comment would exceed the threshold.
        """
        grams = self.ngrams(n)
        if not grams or self.n_chars == 0:
            return 0.0
        gram, count = Counter(grams).most_common(1)[0]
        if count < 2:
            return 0.0
        return (sum(map(len, gram)) + n - 1) * count / self.n_chars

    def dup_ngram_char_frac(self, n: int) -> float:
        """Characters in repeated word n-grams over all characters (Gopher; datatrove's scan:
        each later occurrence of an already seen n-gram counts once and the scan jumps past it).
        """
        grams = self.ngrams(n)
        if not grams or self.n_chars == 0 or not self.has_duplicate_ngram(n):
            self._drop_ngrams(n)
            return 0.0
        # Only n-grams that occur more than once can ever be "seen again", so the sequential
        # scan visits just their positions (a few percent of a clean article's n-grams).
        repeated_grams = {g for g, c in Counter(grams).items() if c > 1}
        positions = compress(range(len(grams)), map(repeated_grams.__contains__, grams))
        seen: set[tuple[str, ...]] = set()
        repeated = 0
        resume_at = 0  # positions inside a counted duplicate are skipped, as in datatrove
        for i in positions:
            if i < resume_at:
                continue
            g = grams[i]
            if g in seen:
                repeated += sum(map(len, g)) + n - 1
                resume_at = i + n
            else:
                seen.add(g)
        self._drop_ngrams(n)
        return min(1.0, repeated / self.n_chars)

    @cached_property
    def text_lines(self) -> list[str]:
        """Non-empty lines with at least one letter. Rules ("-----"), page numbers ("- 3 -") and
        table cells of numbers are layout: a form or a table repeats them by construction."""
        has_letter = _LETTER.search
        return [ln for ln in self.lines if has_letter(ln)]

    @cached_property
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
