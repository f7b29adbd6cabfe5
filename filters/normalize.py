"""Text normalisation every later stage relies on: pure functions plus one filter.

Korean web text arrives in several Unicode spellings of the same syllable: precomposed
(U+AC00–U+D7A3), conjoining jamo sequences (U+1100–U+11FF, what macOS file systems and some
HWP/PDF exports produce) and, rarer, compatibility jamo.  Langid, quality signals, dedup hashes and
the tokenizer must all see one spelling, so this runs first:

1. leftover HTML (entities such as ``&nbsp;``/``&#44032;`` and tags such as ``<br>``) removed,
2. Unicode NFC, which composes conjoining jamo L+V(+T) into precomposed syllables,
3. control and format characters removed (NUL, C0/C1 controls, zero-width space, BOM, soft
   hyphen), except newline and tab which carry structure,
4. runs of horizontal whitespace collapsed to one space, line breaks kept (at most one blank line
   in a row), trailing spaces on each line and leading/trailing blank lines removed.

Documents that are empty afterwards are dropped with reason ``empty``.
"""
from __future__ import annotations

import html
import re
import sys
import unicodedata

from filters.base import KEEP, Document, DocumentFilter, Verdict, drop

# Tags are removed only when they look like real markup (a tag name after "<"), so Korean text
# using "<" as a bracket or math ("a < b", "<기생충>") survives.
_TAG_RE = re.compile(
    r"<\s*/?\s*[A-Za-z][A-Za-z0-9:-]*(?:\s+[^<>]*?)?\s*/?\s*>"
    r"|<!--.*?-->"
    r"|<!\[CDATA\[.*?\]\]>",
    re.DOTALL,
)
# Block-level tags become line breaks so paragraphs stay separate.
_BLOCK_TAG_RE = re.compile(
    r"<\s*(?:br|/p|p|/div|div|/li|li|/tr|tr|/h[1-6]|h[1-6]|hr|/blockquote|blockquote)\b[^<>]*>",
    re.IGNORECASE,
)
_SCRIPT_STYLE_RE = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
# An entity: named (&amp;), decimal (&#44032;) or hex (&#xAC00;), optionally missing the ';'
# for the common named ones ("&nbsp" appears that way in scraped text).
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7};?|#[xX][0-9a-fA-F]{1,6};?|[A-Za-z][A-Za-z0-9]{1,31};)"
                        r"|&(?:nbsp|amp|lt|gt|quot|apos)(?![A-Za-z0-9;])")

# Runs of whitespace other than newline (tab, NBSP, ideographic space…) that are not already one
# plain space: replacing every single " " between eojeol by itself was most of the cost.
_HSPACE_RE = re.compile(r"[^\S\n]{2,}|[^\S\n ]")
_SPACES_RE = re.compile(r" {2,}")
_BLANK_LINES_RE = re.compile(r"\n{3,}")

# Characters kept although their category is Cc/Cf: they carry structure or are needed for
# correct rendering of some scripts (ZWJ/ZWNJ in Indic/emoji sequences).
_KEEP_CONTROL = {"\n", "\t", "\u200c", "\u200d"}


def unescape_html(text: str, strip_tags: bool = True) -> str:
    """Remove script/style blocks and tags, turn block tags into newlines, decode entities.

    Entities are decoded repeatedly (at most 3 times) because double-escaped text such as
    ``&amp;nbsp;`` is common in scraped pages.
    """
    if strip_tags and "<" in text:
        text = _SCRIPT_STYLE_RE.sub(" ", text)
        text = _BLOCK_TAG_RE.sub("\n", text)
        text = _TAG_RE.sub(" ", text)
    for _ in range(3):
        if "&" not in text:
            break
        new = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), text)
        if new == text:
            break
        text = new
    if strip_tags and "<" in text:  # entities like &lt;br&gt; decoded into tags just now
        text = _BLOCK_TAG_RE.sub("\n", text)
        text = _TAG_RE.sub(" ", text)
    return text


def remove_control_chars(text: str) -> str:
    """Drop Unicode categories Cc/Cf/Cs/Co (controls, format chars, surrogates, private use)
    except newline, tab, ZWJ and ZWNJ; ``\\r\\n`` and ``\\r`` become ``\\n`` first."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Line/paragraph separators are Zl/Zp: make them ordinary newlines.
    text = text.replace("\u2028", "\n").replace("\u2029", "\n").replace("\x85", "\n")
    # str.isprintable() is False for every "Other" (C*) character, so a text that is printable
    # but for its newlines and tabs has nothing to remove: one C-level pass instead of the
    # character-class scan below (~40 ns a character), which most documents never need.
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return _control_chars_re().sub("", text)


_CONTROL_RE: "re.Pattern[str] | None" = None


def _control_chars_re() -> "re.Pattern[str]":
    """One character class of every Cc/Cf/Cs/Co code point except ``_KEEP_CONTROL``.

    Built once per process (~0.2 s over all of Unicode) so removal is one C-level ``re.sub``
    instead of a ``unicodedata.category`` call per character: 8x faster on the benchmark corpus
    (docs/benchmarks.md, End-to-end), identical output.
    """
    global _CONTROL_RE
    if _CONTROL_RE is None:
        ranges, start = [], None
        for cp in range(sys.maxunicode + 2):
            bad = (cp <= sys.maxunicode and chr(cp) not in _KEEP_CONTROL
                   and unicodedata.category(chr(cp)) in ("Cc", "Cf", "Cs", "Co"))
            if bad and start is None:
                start = cp
            elif not bad and start is not None:
                ranges.append((start, cp - 1))
                start = None
        _CONTROL_RE = re.compile("[" + "".join(f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}"
                                                for a, b in ranges) + "]")
    return _CONTROL_RE


def _build_lone_jamo_table() -> dict[int, str]:
    """Conjoining jamo (U+1100–U+11FF) -> the compatibility jamo with the same letter name."""
    table: dict[int, str] = {}
    for cp in range(0x1100, 0x1200):
        name = unicodedata.name(chr(cp), "")
        for prefix in ("HANGUL CHOSEONG ", "HANGUL JUNGSEONG ", "HANGUL JONGSEONG "):
            if name.startswith(prefix):
                try:
                    table[cp] = unicodedata.lookup("HANGUL LETTER " + name[len(prefix):])
                except KeyError:
                    pass  # archaic jamo without a compatibility twin: left as is
    return table


_LONE_JAMO = _build_lone_jamo_table()
_CONJOINING_RE = re.compile("[\u1100-\u11ff]")


def compose_jamo(text: str, form: str = "NFC") -> str:
    """Unicode normal form (NFC by default): conjoining jamo L+V(+T) become one syllable.

    Conjoining jamo left over after composition (a lone initial "ᄏᄏ" from decomposed "ㅋㅋ", a
    vowel without a consonant) render badly and split tokens, so they become the compatibility
    jamo of the same letter (U+3131–U+318E), which is how Korean normally writes them.
    Compatibility jamo already in the text ("ㅋㅋㅋ", "ㅠㅠ") are kept: under NFC they stay.
    """
    text = unicodedata.normalize(form, text)
    if form in ("NFC", "NFKC") and _CONJOINING_RE.search(text):
        text = text.translate(_LONE_JAMO)
    return text


def collapse_whitespace(text: str) -> str:
    """Collapse horizontal whitespace runs to one space; keep line breaks (max one blank line)."""
    # str.isprintable() is False for every whitespace character but the ASCII space (tested over
    # all code points), so when the text minus its newlines is printable its only whitespace is
    # " " and "\n": each step below then needs to run only if its target occurs at all, which a
    # C-level substring test finds ~10x faster than the regex scan.
    if text.replace("\n", "").isprintable():
        if "  " in text:
            text = _SPACES_RE.sub(" ", text)
        if " \n" in text or "\n " in text:
            text = "\n".join(line.strip(" ") for line in text.split("\n"))
    else:
        text = _HSPACE_RE.sub(" ", text)
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip("\n ")


def normalize_text(text: str, unicode_form: str = "NFC", strip_html: bool = True) -> str:
    """The full normalisation used by the pipeline (see module docstring for the order)."""
    if strip_html:
        text = unescape_html(text)
    text = remove_control_chars(text)
    text = compose_jamo(text, unicode_form)
    return collapse_whitespace(text)


class NormalizeFilter(DocumentFilter):
    """Rewrites ``doc.text`` to its normal form; drops documents that end up empty."""

    stage = "normalize"
    name = "normalize"

    def __init__(self, unicode_form: str = "NFC", strip_html: bool = True) -> None:
        super().__init__()
        if unicode_form not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"normalize.unicode_form must be NFC/NFKC/NFD/NFKD, got {unicode_form!r}")
        self.unicode_form = unicode_form
        self.strip_html = strip_html

    def filter(self, doc: Document) -> Verdict:
        before = doc.text
        after = normalize_text(before, self.unicode_form, self.strip_html)
        if after != before:
            self.count("changed_documents")
            doc.text = after
        if not after:
            return drop("empty")
        return KEEP


def build_filters(section: dict) -> list[DocumentFilter]:
    return [NormalizeFilter(unicode_form=section.get("unicode_form", "NFC"),
                            strip_html=bool(section.get("strip_html", True)))]
