"""Korean quality filters (stage ``quality``): one small class per heuristic.

Every filter writes its signals (``quality.<name>``) into ``doc.signals`` BEFORE deciding, so
kept and dropped documents carry the same numbers and the report can replay thresholds.
All statistics come from the shared :func:`filters.quality.stats.doc_stats`.
Comparisons are strict (``>`` a maximum, ``<`` a minimum): a value equal to its threshold
passes, and a maximum fraction of 1.0 disables a check.
Where each default comes from: docs/quality.md.
"""
from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from filters.base import KEEP, Document, DocumentFilter, Verdict, drop
from filters.quality.stats import doc_stats


def _r(x: float) -> float:
    return round(x, 4)


class LengthFilter(DocumentFilter):
    """Character and eojeol (whitespace word) bounds."""

    stage = "quality"
    name = "length"

    def __init__(self, min_chars: int = 50, max_chars: int = 1_000_000,
                 min_words: int = 1, max_words: int = 100_000) -> None:
        super().__init__()
        self.min_chars, self.max_chars = min_chars, max_chars
        self.min_words, self.max_words = min_words, max_words

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        n_chars, n_words = s.n_nonspace, len(s.words)
        doc.signals["quality.chars"] = n_chars
        doc.signals["quality.words"] = n_words
        if n_chars < self.min_chars:
            return drop("too_short_chars")
        if n_chars > self.max_chars:
            return drop("too_long_chars")
        if n_words < self.min_words:
            return drop("too_few_words")
        if n_words > self.max_words:
            return drop("too_many_words")
        return KEEP


class HangulShareFilter(DocumentFilter):
    """Minimum share of letters that are Hangul (Polyglot-Ko: 0.25)."""

    stage = "quality"
    name = "hangul_share"

    def __init__(self, min_hangul_letter_ratio: float = 0.25) -> None:
        super().__init__()
        self.min_ratio = min_hangul_letter_ratio

    def filter(self, doc: Document) -> Verdict:
        ratio = doc_stats(doc).hangul_letter_ratio
        doc.signals["quality.hangul_letter_ratio"] = _r(ratio)
        return drop("low_hangul_share") if ratio < self.min_ratio else KEEP


# --- mojibake ---------------------------------------------------------------------------
# UTF-8 Korean read as cp1252/latin-1: a lead byte shown as Ã-ô then continuation bytes shown
# as cp1252 punctuation or Latin-1 symbols: "íŠ¹ë³„" (특별), "ì•ˆë…•" (안녕).
_CP1252_CONT = ("\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                "\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122")
_UTF8_AS_CP1252 = re.compile(f"[\u00c2-\u00f4][{_CP1252_CONT}]+")
# EUC-KR/CP949 Korean read as latin-1: lead 0xB0-0xC8, trail 0xA1-0xFE ("ÇÑ±Û" = 한글).
_EUCKR_AS_LATIN1 = re.compile("(?:[\u00b0-\u00c8][\u00a1-\u00fe]){2,}")
# Replacement char, C0/C1 controls (not tab/newline), private use, halfwidth katakana
# (Korean read as Shift-JIS) and squared katakana words of CJK Compatibility (U+3300-3357).
# Unit squares such as ㎞ ㎏ (U+3380-33DF) are used in Korean text and are not counted.
_BAD_CHARS = re.compile("[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\uff61-\uff9f\u3300-\u3357]")


# Both mis-decoded sequences above start with a character in U+00B0-U+00F4, absent from nearly
# all Korean text: one fast scan for it spares the two sequence scans (the EUC-KR one, with no
# single first character class, is tried at every position and cost as much as both others).
_MOJIBAKE_LEAD = re.compile("[\u00b0-\u00f4]")


def mojibake_chars(text: str) -> int:
    """Number of characters that belong to mis-decoded sequences or garbage code points."""
    n = len(_BAD_CHARS.findall(text))
    if _MOJIBAKE_LEAD.search(text) is None:
        return n
    n += sum(len(m) for m in _UTF8_AS_CP1252.findall(text))
    # Only runs that are mostly letters ("ÇÑ±Û"); a row of middle dots "······" is punctuation.
    n += sum(len(m) for m in _EUCKR_AS_LATIN1.findall(text) if 2 * sum(c.isalpha() for c in m) >= len(m))
    return n


class MojibakeFilter(DocumentFilter):
    stage = "quality"
    name = "mojibake"

    def __init__(self, max_frac: float = 0.01) -> None:
        super().__init__()
        self.max_frac = max_frac

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        n = mojibake_chars(doc.text)
        frac = n / s.n_nonspace if s.n_nonspace else 0.0
        doc.signals["quality.mojibake_frac"] = _r(frac)
        return drop("mojibake") if frac > self.max_frac else KEEP


# --- symbols and digits -----------------------------------------------------------------
class SymbolDigitFilter(DocumentFilter):
    """Symbol and digit shares of non-space characters; Gopher's hash-per-word ratio.

    The symbol share counts a run of one repeated symbol once, in the numerator and in the
    denominator: "음...어...아..." and "좋다😂😂😂" type one mark per pause or emotion, however many
    dots or emoji the writer holds down, while divider rows, ASCII art and tables mix different
    symbols ("★☆★☆", "| ▲ 12 |") and keep their full weight.

    Gopher counts "#" and ellipses per word. Only "#" is counted here: in Korean informal
    writing "..." separates sentences (docs/quality.md), and ellipsis-terminated teaser pages are
    the ``line_structure`` filter's ``ellipsis_lines`` rule.
    """

    stage = "quality"
    name = "symbols"

    def __init__(self, max_symbol_ratio: float = 0.3, max_digit_ratio: float = 0.4,
                 max_hash_word_ratio: float = 0.1) -> None:
        super().__init__()
        self.max_symbol_ratio = max_symbol_ratio
        self.max_digit_ratio = max_digit_ratio
        self.max_hash = max_hash_word_ratio

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        denom = s.n_nonspace or 1
        repeats = s.n_symbol_repeats if s.n_symbols else 0
        sym = (s.n_symbols - repeats) / max(1, s.n_nonspace - repeats)
        dig = s.n_digits / denom
        hashes = doc.text.count("#") / max(1, len(s.words))
        doc.signals["quality.symbol_ratio"] = _r(sym)
        doc.signals["quality.digit_ratio"] = _r(dig)
        doc.signals["quality.hash_word_ratio"] = _r(hashes)
        if sym > self.max_symbol_ratio:
            return drop("symbol_ratio")
        if dig > self.max_digit_ratio:
            return drop("digit_ratio")
        if hashes > self.max_hash:
            return drop("hash_ratio")
        return KEEP


# --- jamo and emoticons -----------------------------------------------------------------
# Bare jamo (ㅋ ㅎ ㅠ ㅜ ㄷ ㅇ ㅡ …), emoji and pictographs, and the ASCII/CJK pieces of
# Korean emoticons (^^, ;;, ~, ♥, ☆, ㅡㅡ, *^^*, ^_^, -_-, T_T is letters and not counted).
_EMOTICON_CHARS = re.compile(
    "[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff\uffa0-\uffdc"
    "\U0001f000-\U0001faff\u2600-\u27bf\u2b50\u2b55\u2665\u2661\u2764\ufe0f\u200d"
    "^;~♥♡☆★♪♬]")


class JamoEmoticonFilter(DocumentFilter):
    """Documents that are mostly bare jamo or emoticons (ㅋㅋ, ㅎㅎ, ㅠㅠ, ^^, emoji)."""

    stage = "quality"
    name = "jamo_emoticon"

    def __init__(self, max_frac: float = 0.4) -> None:
        super().__init__()
        self.max_frac = max_frac

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        frac = len(_EMOTICON_CHARS.findall(doc.text)) / s.n_nonspace if s.n_nonspace else 0.0
        doc.signals["quality.jamo_emoticon_frac"] = _r(frac)
        return drop("jamo_emoticon") if frac > self.max_frac else KEEP


# --- code and markup --------------------------------------------------------------------
_CODE_LINE = re.compile(
    r"(?:^(?:def|class|import|from\s+[\w.]+\s+import|return|elif|else:|try:|except|raise|"
    r"function|var|let|const|public|private|protected|static|void|int|fn|pub|impl|use|"
    r"#include|#define|#!|using\s+namespace|package|struct|enum|typedef|template)\b"
    r"|^(?:if|for|while|with|elif|try|except|finally|async|await)\b.*:\s*$"
    r"|^[A-Za-z_][\w.\[\]'\"]*\s*[-+*/%|&]?=\s*\S|^[A-Za-z_][\w.]*\(.*\)\s*$|^[\"'][^\"']*[\"']\s*:\s*\S"
    r"|[(\[,]\s*$|^\(.*\),?\s*$"
    r"|[{}]\s*$|^\s*[{}\])]+[;,]?\s*$|[^;]\s*\)?;\s*$|=>|::|\+\+|&&|\|\||!=|==|"
    r"\b\w+\s*\([^()]*\)\s*[{:]\s*$|^\s*(?://|/\*|\*/|<!--)|^\s*\$\s|</?[a-zA-Z][\w-]*(?:\s[^<>]*)?/?>"
    # Python docstrings and signatures: triple-quote delimiters, doctest prompts, Google-style
    # sections ("Args:", "Returns:") and their entries ("text (Union[str, List[str]]): …",
    # "List[str]: …"), return annotations ("-> List[str]:"), method bodies ("self._sf()").
    r"|^[rbuf]?(?:\"\"\"|\'\'\')|^>>>|^(?:Args|Arguments|Parameters|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Attributes|References|Todo|Warnings?):\s*$|^\*{0,2}\w+\s+\((?:int|str|bool|float|dict|list|tuple|"
    r"bytes|Any|[A-Z]\w*\[[\w\[\], .|]*\])(?:,\s*optional)?\)\s*:\s|"
    r"^[A-Z]\w*\[[\w\[\], .]*\]\s*:\s|^(?:bool|int|str|float|bytes|dict|list|tuple|None)\s*:\s|"
    r"\)\s*->\s*[^:]+:\s*$|^self\b|\bself\.\w)")
# A parenthesised import list: the lines up to the closing parenthesis are code whatever they are
# ("    _check_text," but also a last name without a comma).
_IMPORT_LIST_OPEN = re.compile(r"^(?:from\s+[\w.]+\s+)?import\s*\(\s*$")
# Quotes and parentheses are left out: Korean prose quotes titles with them ('아나콘다(Anaconda)').
_SYNTAX = re.compile(r"[{}\[\];=<>_\\|$@^`]")
_SYLLABLE_RUN = re.compile("[\uac00-\ud7a3]+")
_MARKUP = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]{0,200})?/?>|&(?:[a-zA-Z]{2,8}|#\d{2,6});|"
                     r"\{\{|\}\}|\[\[|\]\]|\[/?(?:url|img|b|i|quote)[^\]]*\]")


class CodeMarkupFilter(DocumentFilter):
    """Source code or HTML/wiki markup left in the text.

    A line counts as code when it matches a code pattern or is more than 15 % syntax characters,
    AND fewer than half of its non-space characters are Hangul syllables: Korean prose that
    happens to end in ";;" or contain "==" is not code, code with Korean strings still is.
    """

    stage = "quality"
    name = "code_markup"

    def __init__(self, max_code_line_frac: float = 0.3, max_markup_char_frac: float = 0.05) -> None:
        super().__init__()
        self.max_code_line_frac = max_code_line_frac
        self.max_markup_char_frac = max_markup_char_frac

    @staticmethod
    def is_code_line(line: str) -> bool:
        return CodeMarkupFilter._is_code_line(line, len(line) - len(_SYLLABLE_RUN.sub("", line)))

    @staticmethod
    def _is_code_line(line: str, n_syllables: int) -> bool:
        """``is_code_line`` given the number of Hangul syllables in ``line``."""
        nonspace = len(line) - line.count(" ")
        if n_syllables * 2 >= nonspace:
            return False
        # Syntax characters are rare in prose of any language but make up a large part of
        # code lines that match no keyword (rule tables, dict literals, call arguments).
        return bool(_CODE_LINE.search(line)) or len(_SYNTAX.findall(line)) > 0.15 * nonspace

    @classmethod
    def count_code_lines(cls, lines: list[str], syllables: list[int] | None = None) -> int:
        """Code lines among stripped non-empty ``lines``, counting parenthesised import lists
        ("from kss._utils.sanity_checks import (" … ")") as code to their closing parenthesis.
        ``syllables``: the Hangul syllables in each line, when already counted (DocStats)."""
        if syllables is None:
            syllables = [len(ln) - len(_SYLLABLE_RUN.sub("", ln)) for ln in lines]
        n = 0
        in_import_list = False
        for ln, n_syllables in zip(lines, syllables):
            if in_import_list:
                n += 1
                in_import_list = ")" not in ln
            elif cls._is_code_line(ln, n_syllables):
                n += 1
                in_import_list = ln.endswith("(") and bool(_IMPORT_LIST_OPEN.match(ln))
        return n

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        lines = s.lines
        code = self.count_code_lines(lines, s.line_syllables) / len(lines) if lines else 0.0
        markup = sum(len(m) for m in _MARKUP.findall(doc.text)) / s.n_chars if s.n_chars else 0.0
        doc.signals["quality.code_line_frac"] = _r(code)
        doc.signals["quality.markup_char_frac"] = _r(markup)
        if code > self.max_code_line_frac:
            return drop("code")
        if markup > self.max_markup_char_frac:
            return drop("markup")
        return KEEP


# --- line structure ---------------------------------------------------------------------
# FineWeb's stop characters plus CJK/fullwidth ones and closing quotes/brackets.
TERMINAL_PUNCT = frozenset(".!?'\"…。！？”’」』")
# Final syllables of Korean sentence endings: declarative -다, polite -요, -죠, questions -까,
# exclamative -네/-군, and the nominal endings of web writing -음/-함/-임/-됨/-셈/-듯/-걸.
KOREAN_SENTENCE_ENDINGS = frozenset("다요죠까네군음함임됨셈듯걸")
# Trailing decoration that does not end a sentence: jamo laughter, emoticons, closing brackets.
_TRAILING_DECOR = re.compile("[\\s\u3130-\u318f^;~♥♡☆★)\\]>〉》】\U0001f000-\U0001faff]+$")
BULLETS = ("•", "●", "○", "◦", "·", "∙", "▪", "■", "□", "◆", "◇", "▶", "▷", "►", "-", "*", "※", "✓", "✔", "➤", "→")
# A stripped line ends in an ellipsis: "..." (three dots or more), "…" or "⋯".
_ELLIPSES = ("...", "…", "⋯")


def ends_sentence(line: str) -> bool:
    """True when a (stripped) line ends in terminal punctuation or a Korean sentence ending."""
    if not line:
        return False
    # Neither punctuation nor a Hangul ending is decoration, so a line ending in one has nothing
    # to strip; a line whose last character is not decoration has nothing to strip either, and
    # ends no sentence (the two cases, then the regex, in the order of their frequency).
    if line[-1] in TERMINAL_PUNCT or line[-1] in KOREAN_SENTENCE_ENDINGS:
        return True
    if _TRAILING_DECOR.match(line, len(line) - 1) is None:
        return False
    core = _TRAILING_DECOR.sub("", line)
    return bool(core) and (core[-1] in TERMINAL_PUNCT or core[-1] in KOREAN_SENTENCE_ENDINGS)


class LineStructureFilter(DocumentFilter):
    """FineWeb/Gopher line heuristics adapted to Korean (see docs/quality.md)."""

    stage = "quality"
    name = "line_structure"

    def __init__(self, min_sentence_end_line_frac: float = 0.062, max_newline_word_ratio: float = 0.44,
                 short_line_chars: int = 10, max_short_line_frac: float = 1.0,
                 max_bullet_line_frac: float = 0.9, max_ellipsis_line_frac: float = 0.5,
                 min_lines: int = 3) -> None:
        super().__init__()
        self.min_lines = min_lines
        self.min_end = min_sentence_end_line_frac
        self.max_newline_word = max_newline_word_ratio
        self.short_line_chars = short_line_chars
        self.max_short = max_short_line_frac
        self.max_bullet = max_bullet_line_frac
        self.max_ellipsis = max_ellipsis_line_frac

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        lines = s.lines
        n = len(lines) or 1
        end = sum(map(ends_sentence, lines)) / n
        # Line breaks between non-empty lines, per eojeol. FineWeb-2 counts every "\n", but its
        # trafilatura text separates paragraphs with one newline; text extracted from PDFs and
        # wiki dumps separates every line or paragraph with a blank line, which doubled the ratio
        # of hard-wrapped prose (National Assembly bills: 0.43-0.49 raw, 0.21-0.26 counted here).
        # A list stays a list: one or two eojeol per line is 0.5-1.0 however it is spaced.
        nl = max(0, len(lines) - 1) / max(1, len(s.words))
        short = sum(1 for ln in lines if len(ln) <= self.short_line_chars) / n
        bullet = sum(1 for ln in lines if ln.startswith(BULLETS)) / n
        ellipsis = sum(1 for ln in lines if ln.endswith(_ELLIPSES)) / n
        sig = doc.signals
        sig["quality.lines"] = len(lines)  # non-empty lines; min_lines gates the fractions below
        sig["quality.sentence_end_line_frac"] = _r(end)
        sig["quality.newline_word_ratio"] = _r(nl)
        sig["quality.short_line_frac"] = _r(short)
        sig["quality.bullet_line_frac"] = _r(bullet)
        sig["quality.ellipsis_line_frac"] = _r(ellipsis)
        if nl > self.max_newline_word:
            return drop("list_ratio")
        # Line fractions describe page layout (menus, lists, teasers); on a one- or two-line
        # text (a comment, a paragraph) they are 0 or 1 and say nothing about quality.
        if len(lines) < self.min_lines:
            return KEEP
        if end < self.min_end:
            return drop("line_punct_ratio")
        if short > self.max_short:
            return drop("short_line_ratio")
        if bullet > self.max_bullet:
            return drop("bullet_lines")
        if ellipsis > self.max_ellipsis:
            return drop("ellipsis_lines")
        return KEEP


# --- spam lexicon -----------------------------------------------------------------------
def load_lexicon(path: str | Path | None = None) -> list[tuple[str, str]]:
    """``(category, regex)`` pairs from a lexicon file: ``category<TAB>term`` per line.

    A term starting with ``re:`` is a regular expression (e.g. ``토토(?!로)`` so that the film
    "이웃집 토토로" is not gambling spam); any other term is matched literally.
    """
    if path is None:
        text = resources.files("filters.quality").joinpath("data/spam_ko.tsv").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        category, term = line.split("\t", 1)
        term = term.strip()
        out.append((category.strip(), term[3:] if term.startswith("re:") else re.escape(term)))
    return out


class SpamLexiconFilter(DocumentFilter):
    """Gambling / adult / loan advertising scored by density of lexicon hits per eojeol.

    A single mention (a news story about a casino) never drops a document: it takes at least
    ``min_hits`` hits of at least ``min_distinct_terms`` different terms (an encyclopedia
    article on poker repeats "홀덤"; an advertisement mixes 카지노, 토토, 먹튀, 가입코드 …)
    AND a density above ``max_hits_per_word``.
    """

    stage = "quality"
    name = "spam_lexicon"

    def __init__(self, lexicon_path: str | None = None, min_hits: int = 3,
                 max_hits_per_word: float = 0.05, min_distinct_terms: int = 2) -> None:
        super().__init__()
        self.min_distinct = min_distinct_terms
        self.lexicon_path = lexicon_path
        self.min_hits = min_hits
        self.max_density = max_hits_per_word
        self._pattern: re.Pattern[str] | None = None

    def setup(self) -> None:
        terms = load_lexicon(self.lexicon_path)
        # Longest first so "스포츠토토" is one hit, not "토토" inside it.
        alternation = "|".join(sorted({t for _, t in terms}, key=len, reverse=True))
        self._pattern = re.compile(alternation, re.IGNORECASE)

    def filter(self, doc: Document) -> Verdict:
        if self._pattern is None:
            self.setup()
        s = doc_stats(doc)
        found = self._pattern.findall(doc.text)
        hits, distinct = len(found), len({f.lower() for f in found})
        density = hits / max(1, len(s.words))
        doc.signals["quality.spam_hits"] = hits
        doc.signals["quality.spam_distinct_terms"] = distinct
        doc.signals["quality.spam_density"] = _r(density)
        if hits >= self.min_hits and distinct >= self.min_distinct and density > self.max_density:
            return drop("spam_lexicon")
        return KEEP


# --- repetition -------------------------------------------------------------------------
class RepetitionFilter(DocumentFilter):
    """Gopher repetition (duplicate lines, top n-grams, duplicate n-grams) on eojeol, with
    FineWeb-2's ``kor_Hang`` thresholds and FineWeb's duplicate-line character ratio."""

    stage = "quality"
    name = "repetition"

    def __init__(self, dup_line_frac: float = 0.374, dup_line_char_frac: float = 0.1,
                 top_ngram_char_frac: dict[str, float] | None = None,
                 dup_ngram_char_frac: dict[str, float] | None = None) -> None:
        super().__init__()
        self.dup_line_frac = dup_line_frac
        self.dup_line_char_frac = dup_line_char_frac
        top = top_ngram_char_frac or {"2": 0.282, "3": 0.228, "4": 0.185}
        dup = dup_ngram_char_frac or {"5": 0.201, "6": 0.184, "7": 0.168, "8": 0.154, "9": 0.14, "10": 0.127}
        self.top = sorted((int(k), float(v)) for k, v in top.items())
        self.dup = sorted((int(k), float(v)) for k, v in dup.items())

    def filter(self, doc: Document) -> Verdict:
        s = doc_stats(doc)
        sig = doc.signals
        # Over lines with letters (DocStats.text_lines): a repeated rule or number cell is layout.
        n_lines = len(s.text_lines)
        dup_lines, dup_line_chars = s.dup_line_counts
        line_frac = dup_lines / n_lines if n_lines else 0.0
        line_chars = sum(map(len, s.text_lines))
        line_char_frac = dup_line_chars / line_chars if line_chars else 0.0
        sig["quality.dup_line_frac"] = _r(line_frac)
        sig["quality.dup_line_char_frac"] = _r(line_char_frac)
        top = {n: s.top_ngram_char_frac(n) for n, _ in self.top}
        # A repeated n-gram implies a repeated (n-1)-gram: stop computing once none repeats.
        dup: dict[int, float] = {}
        for n, _ in self.dup:
            dup[n] = s.dup_ngram_char_frac(n) if not dup or dup[max(dup)] > 0 else 0.0
        for n, v in top.items():
            sig[f"quality.top_{n}gram_char_frac"] = _r(v)
        for n, v in dup.items():
            sig[f"quality.dup_{n}gram_char_frac"] = _r(v)
        if line_frac > self.dup_line_frac:
            return drop("dup_line_frac")
        if line_char_frac > self.dup_line_char_frac:
            return drop("dup_line_char_frac")
        for n, thr in self.top:
            if top[n] > thr:
                return drop(f"top_{n}gram")
        for n, thr in self.dup:
            if dup[n] > thr:
                return drop(f"dup_{n}gram")
        return KEEP
