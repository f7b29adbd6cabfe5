"""Context words matched the way Korean writes them, plus a presidio enhancer that uses them.

presidio's ``LemmaContextAwareEnhancer`` compares whole tokens (spaCy lemmas) with the context
list.  Korean attaches particles and endings to the noun (연락처는, 주민번호를, 메일로, 계좌로) and
writes compounds without spaces (휴대폰번호, 입금계좌), so whole-token comparison misses most
real context; with the no-op NLP engine it sees no tokens at all.  Here a context word counts when
it occurs in a character window around the candidate:

* a Hangul word counts at the start of a Hangul run, whatever follows (연락처는, 주민번호를,
  메일로): a prefix match, so 문의 fires in 문의는 but not inside 가문의 or 전문의;
* a word written ``*word`` also counts inside a compound (대표전화, 입금계좌, 신용카드, 이메일);
  only distinctive nouns are marked so;
* a Latin word (tel, fax, email) counts as a whole Latin-letter word that may touch Hangul,
  digits or punctuation: "Tel.", "TEL:", "KB국민", "email로", but not "hotel" or "KBS".
"""
from __future__ import annotations

import re
from typing import Iterable, List, Optional

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.nlp_engine import NlpArtifacts


def _is_hangul_word(word: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" for c in word)


class KoreanContextMatcher:
    """Finds context words in a character window before and after a span.

    ``near_words`` are words too common in ordinary prose to count anywhere in the window (the
    bank names 우리 "we", 하나 "one", 국민 "people", 기업 "company"); they count only within
    ``near_chars`` characters of the span, as in "우리 1002-…" or "…-456789(우리)".
    """

    def __init__(self, words: Iterable[str], chars_before: int = 40, chars_after: int = 30,
                 near_words: Iterable[str] = (), near_chars: int = 6):
        self.words = tuple(sorted({w.strip() for w in words if w and w.strip()}))
        self.near_words = tuple(sorted({w.strip() for w in near_words if w and w.strip()}))
        if not self.words and not self.near_words:
            raise ValueError("KoreanContextMatcher needs at least one context word")
        self.pattern = _alternation(self.words)
        self.near_pattern = _alternation(self.near_words)
        self.chars_before = chars_before
        self.chars_after = chars_after
        self.near_chars = near_chars

    def find(self, text: str, start: int, end: int) -> Optional[str]:
        """The first context word found near ``text[start:end]``, or None."""
        for pattern, before, after in ((self.near_pattern, self.near_chars, self.near_chars),
                                       (self.pattern, self.chars_before, self.chars_after)):
            if pattern is None:
                continue
            m = pattern.search(text, max(0, start - before), start)
            if m is None:
                m = pattern.search(text, end, min(len(text), end + after))
            if m is not None:
                return m.group(0)
        return None


def _alternation(words: tuple[str, ...]) -> Optional[re.Pattern]:
    if not words:
        return None
    parts = []
    for w in sorted(words, key=lambda x: len(x.lstrip("*")), reverse=True):  # 주민등록 before 주민
        if w.startswith("*"):
            parts.append(re.escape(w[1:]))  # compound tail allowed: 대표전화, 입금계좌, 신용카드
        elif _is_hangul_word(w):
            # start of a Hangul word; particles and endings may follow (연락처는, 문의드립니다),
            # but no Hangul before it, so 문의 does not fire inside 가문의 / 전문의 / 질문의
            parts.append(r"(?<![\uac00-\ud7a3])" + re.escape(w))
        else:
            # Latin: a whole Latin-letter word; Hangul/digits/punctuation may touch it
            parts.append(r"(?<![A-Za-z])" + re.escape(w) + r"(?![A-Za-z])")
    return re.compile("|".join(parts), re.IGNORECASE)


class KoreanContextEnhancer(ContextAwareEnhancer):
    """presidio context enhancer for Korean: raises a result's score when a context word is near.

    Each recognizer exposes ``context_matcher`` (a ``KoreanContextMatcher``); a result whose
    recognizer has one and whose window holds a context word gets ``+context_similarity_factor``
    (presidio's semantics: then at least ``min_score_with_context_similarity``, at most 1.0), and
    its explanation records the word.
    """

    def __init__(self, context_similarity_factor: float = 0.35,
                 min_score_with_context_similarity: float = 0.0):
        # prefix/suffix counts are characters here, and live on each matcher
        super().__init__(context_similarity_factor, min_score_with_context_similarity, 0, 0)

    def enhance_using_context(self, text: str, raw_results: List[RecognizerResult],
                              nlp_artifacts: NlpArtifacts, recognizers: List[EntityRecognizer],
                              context: Optional[List[str]] = None) -> List[RecognizerResult]:
        matchers = {r.id: getattr(r, "context_matcher", None) for r in recognizers}
        for result in raw_results:
            rec_id = (result.recognition_metadata or {}).get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY)
            matcher = matchers.get(rec_id)
            if matcher is None or result.score <= 0:
                continue
            word = matcher.find(text, result.start, result.end)
            if word is None:
                continue
            score = min(self.MAX_SCORE, max(result.score + self.context_similarity_factor,
                                            self.min_score_with_context_similarity))
            result.score = score
            if result.analysis_explanation is not None:
                result.analysis_explanation.set_supportive_context_word(word)
                result.analysis_explanation.set_improved_score(score)
        return raw_results
