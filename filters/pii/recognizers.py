"""presidio recognizers for Korean PII: phone, RRN/foreigner number, email, bank account, card.

Each recognizer is a presidio ``LocalRecognizer`` with a few compiled regexes ("formats").  A
regex only proposes a candidate; ``score`` decides how sure the *format* alone is (validators:
dates, check digits, Luhn, known prefixes), and ``KoreanContextEnhancer`` adds
``context_boost`` when one of the recognizer's context words is near.  The analyzer keeps results
at or above the threshold (0.5 by default), so every format falls into one of three tiers:

* strong (>= 0.5 alone): masked without context, e.g. ``010-1234-5678``, ``02-123-4567``, a
  hyphenated RRN with a valid check digit, a separated Luhn-valid card, any valid email;
* weak (0.15-0.45): masked only with a context word, e.g. ``0212345678``, ``1588 1234``, an RRN
  whose check digit fails (issued since 2020-10), every bank account, an unseparated card;
* zero: rejected by a validator (impossible date, bad Luhn, unknown TLD, year ranges + 년).

Digit boundaries: a candidate must not touch another digit, an ASCII letter or a hyphen, so parts
of longer codes (order numbers, ISBNs, case numbers) never match, while Hangul may touch it
(``010-1234-5678로``, ``번호는010…``) because Korean attaches particles directly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence


def _import_presidio_without_torch() -> None:
    """Import presidio_analyzer with torch and transformers hidden from it.

    ``presidio_analyzer.nlp_engine`` eagerly imports every NLP back-end (spaCy -> thinc -> torch,
    the transformers token pipe, and a device detector that imports torch to look for CUDA) even
    though this stage only uses ``NoOpNlpEngine`` and regex recognizers.  In a Beam worker that
    cost 4.3 CPU-seconds and ~300 MB of resident memory per process (bench/stage_kernels.py /
    docs/benchmarks.md, "End-to-end").  presidio and thinc treat both packages as optional
    (``try: import … except ImportError``), so hiding them for the duration of this import makes
    them take their "not installed" paths; afterwards they are importable again as usual.  When
    either is already imported (e.g. in a training process) nothing is hidden.
    """
    import sys

    if "presidio_analyzer" in sys.modules:
        return
    hidden = [name for name in ("torch", "transformers") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        import presidio_analyzer  # noqa: F401
        import presidio_analyzer.nlp_engine  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


_import_presidio_without_torch()

from presidio_analyzer import AnalysisExplanation, LocalRecognizer, RecognizerResult  # noqa: E402

from filters.pii.context import KoreanContextMatcher  # noqa: E402
from filters.pii.validators import (card_number_ok, isbn13_ok, looks_like_year_range,  # noqa: E402
                                    only_digits, rrn_birth_date, rrn_check_digit_ok)

# Left: not after a digit, ASCII letter, '_', '-', '+', '@', '=' (URL query values), or "digit."
# (2019.010…).
# "Tel.02-…" still matches: the '.' there follows a letter.
LEFT = r"(?<![0-9A-Za-z_\-+@=])(?<![0-9]\.)"
# Right: not before a digit, ASCII letter or '_', nor "-digit"/".digit" (a longer code).
RIGHT = r"(?![0-9A-Za-z_]|[\-.][0-9])"

SEOUL = "02"
# Area codes since 2003 (Seoul 02; Gyeonggi 031, Incheon 032, Gangwon 033, Chungnam 041,
# Daejeon 042, Chungbuk 043, Sejong 044, Busan 051, Ulsan 052, Daegu 053, Gyeongbuk 054,
# Gyeongnam 055, Jeonnam 061, Gwangju 062, Jeonbuk 063, Jeju 064).
AREA_CODES = frozenset({"02", "031", "032", "033", "041", "042", "043", "044", "051", "052", "053",
                        "054", "055", "061", "062", "063", "064"})
# Non-geographic: 070 (internet phone), 0502-0508 (personal/safe numbers), 080 (toll free),
# 060 (premium).
SERVICE_CODES = frozenset({"070", "080", "060"} | {f"050{d}" for d in range(2, 9)})
MOBILE_CODES = frozenset({"010", "011", "016", "017", "018", "019"})


@dataclass(frozen=True)
class Format:
    """One regex of a recognizer and the function that scores its matches (0 = reject)."""

    name: str
    regex: re.Pattern
    score: Callable[[re.Match, str], float]


class KoreanPiiRecognizer(LocalRecognizer):
    """Shared machinery: run each format's regex, score, attach the Korean context matcher."""

    ENTITY = ""
    CONTEXT: Sequence[str] = ()
    NEAR_CONTEXT: Sequence[str] = ()  # common words that count only right next to the value

    def __init__(self, chars_before: int = 40, chars_after: int = 30):
        self.formats = self.build_formats()
        self.context_matcher = KoreanContextMatcher(self.CONTEXT, chars_before, chars_after,
                                                    near_words=self.NEAR_CONTEXT)
        super().__init__(supported_entities=[self.ENTITY], supported_language="ko",
                         context=list(self.CONTEXT))

    def build_formats(self) -> List[Format]:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self) -> None:
        pass

    def quick_reject(self, text: str) -> bool:
        """True when ``text`` cannot hold this entity (skips the regexes)."""
        return False

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        if self.ENTITY not in entities or self.quick_reject(text):
            return []
        results = []
        for fmt in self.formats:
            for m in fmt.regex.finditer(text):
                score = fmt.score(m, text)
                if score <= 0:
                    continue
                explanation = AnalysisExplanation(recognizer=self.name, original_score=score,
                                                  pattern_name=fmt.name, pattern=fmt.regex.pattern)
                results.append(RecognizerResult(
                    entity_type=self.ENTITY, start=m.start(), end=m.end(), score=score,
                    analysis_explanation=explanation,
                    recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                                          RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                                          "format": fmt.name}))
        return results


def _followed_by_year(m: re.Match, text: str) -> bool:
    """``1592-1598년`` / ``1600-1700년대``: a year span, never a phone number."""
    return text.startswith("년", m.end()) or text.startswith(" 년", m.end())


class KoreanPhoneRecognizer(KoreanPiiRecognizer):
    """Mobile, landline, internet/personal (070/050x/080), representative (15xx/16xx/18xx), +82."""

    ENTITY = "KR_PHONE_NUMBER"
    CONTEXT = ("*전화", "*연락", "*휴대폰", "*핸드폰", "*번호", "문의", "상담", "*고객센터", "*콜센터",
               "*팩스", "폰번호", "담당자", "예약", "접수", "*☎", "*✆", "*📞", "tel", "telephone", "phone",
               "mobile", "fax", "call", "hp", "contact")

    def build_formats(self) -> List[Format]:
        sep = r"(?P<s>[-. ]?)"
        return [
            Format("mobile", re.compile(
                LEFT + r"(?P<p>01[016789])" + sep + r"(?P<m>[0-9]{3,4})(?P=s)(?P<e>[0-9]{4})" + RIGHT),
                self._score_mobile),
            Format("area_paren", re.compile(
                LEFT + r"(?:\((?P<p1>0[0-9]{1,3})\)|(?P<p2>0[0-9]{1,3})\))[ ]?"
                r"(?P<m>[0-9]{3,4})[-. ]?(?P<e>[0-9]{4})" + RIGHT),
                self._score_paren),
            Format("landline", re.compile(
                LEFT + r"(?P<p>02|0[3-6][0-9]|070|080|050[0-9])" + sep
                + r"(?P<m>[0-9]{3,4})(?P=s)(?P<e>[0-9]{4})" + RIGHT),
                self._score_landline),
            Format("representative", re.compile(
                LEFT + r"(?P<p>1[568][0-9]{2})" + sep + r"(?P<e>[0-9]{4})" + RIGHT),
                self._score_representative),
            Format("intl", re.compile(
                r"(?<![0-9A-Za-z_])\+[ ]?82[-. ]?(?:\(0\)[ ]?)?0?"
                r"(?P<n>1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[2-8]|80)[-. )]?[ ]?"
                r"(?P<m>[0-9]{3,4})[-. ]?(?P<e>[0-9]{4})" + RIGHT),
                self._score_intl),
        ]

    @staticmethod
    def _score_mobile(m: re.Match, text: str) -> float:
        if m.group("p") == "010" and len(m.group("m")) != 4:
            return 0.0  # 010 numbers have had 8-digit subscriber parts since 2004
        if m.group("s"):
            return 0.85
        # 01012345678: 11 digits starting 010 is almost only ever a phone; 10 digits less so.
        return 0.6 if len(m.group(0)) == 11 else 0.4

    @staticmethod
    def _score_paren(m: re.Match, text: str) -> float:
        prefix = m.group("p1") or m.group("p2")
        if prefix in AREA_CODES or prefix in SERVICE_CODES or prefix in MOBILE_CODES:
            return 0.85
        return 0.0

    @staticmethod
    def _score_landline(m: re.Match, text: str) -> float:
        prefix = m.group("p")
        if prefix not in AREA_CODES and prefix not in SERVICE_CODES:
            return 0.0
        if _followed_by_year(m, text):
            return 0.0
        # '-' is how Korean numbers are written; '.' and spaces also separate other things
        # (dotted codes, tables of numbers); no separator is just a 9-11 digit number.
        return {"-": 0.8, ".": 0.6, " ": 0.4}.get(m.group("s"), 0.3)

    @staticmethod
    def _score_representative(m: re.Match, text: str) -> float:
        if _followed_by_year(m, text):
            return 0.0
        sep = m.group("s")
        if sep == "-":
            # (1519-1589): a year span.  Context cannot rescue it (상담, 문의 are everyday words
            # near lifespans in biographies); cost: representative numbers whose second group is
            # a "later year" (1588-1700 … 1588-2088, ~5% of them) are not masked.
            return 0.1 if looks_like_year_range(m.group("p"), m.group("e")) else 0.6
        return 0.3 if sep else 0.2  # 15881234 / 1588 1234: context needed

    @staticmethod
    def _score_intl(m: re.Match, text: str) -> float:
        return 0.9


class KoreanRrnRecognizer(KoreanPiiRecognizer):
    """Resident registration number (주민등록번호) and foreigner registration number (외국인등록번호).

    YYMMDD-GNNNNNC: the birth date must exist for the century the gender digit G gives (1-4
    citizens, 5-8 foreigners); the pre-2020-10 check digit C raises the score.  A partly masked
    ``900101-1******`` is masked whole: it still gives the birth date and sex.
    """

    ENTITY = "KR_RRN"
    CONTEXT = ("주민", "*주민등록", "*주민번호", "*등록번호", "*외국인등록", "생년월일", "실명",
               "*신분증", "*본인확인", "rrn", "ssn")

    def build_formats(self) -> List[Format]:
        return [Format("rrn", re.compile(
            LEFT + r"(?P<b>[0-9]{6})(?P<s>[-– ]?)(?P<g>[1-8])(?P<r>[0-9]{6}|[*xX●]{6})" + RIGHT),
            self._score)]

    @staticmethod
    def _score(m: re.Match, text: str) -> float:
        if rrn_birth_date(m.group("b"), m.group("g")) is None:
            return 0.0
        rest = m.group("r")
        if not rest.isdigit():
            return 0.8  # already partly masked; the date-valid shape is distinctive
        separated = bool(m.group("s"))
        if rrn_check_digit_ok(m.group("b") + m.group("g") + rest):
            return 0.9 if separated else 0.6
        # Valid date and gender digit, no valid check digit: numbers issued since 2020-10 (or
        # a random number).  Needs a context word (+0.35).
        return 0.4 if separated else 0.2


class EmailRecognizer(KoreanPiiRecognizer):
    """Email addresses whose public suffix is real (tldextract's bundled snapshot, no network).

    ASCII domains plus the Korean IDN TLD ``.한국``; the domain stops at the first Hangul letter
    after the TLD, so ``hong@naver.com으로`` yields ``hong@naver.com``.
    """

    ENTITY = "EMAIL_ADDRESS"
    CONTEXT = ("*메일", "*연락", "문의", "email", "mail", "e-mail")

    def __init__(self, chars_before: int = 40, chars_after: int = 30):
        self._tld = _offline_tld_extractor()
        super().__init__(chars_before, chars_after)

    def build_formats(self) -> List[Format]:
        label = r"[A-Za-z0-9가-힣](?:[A-Za-z0-9가-힣\-]{0,61}[A-Za-z0-9가-힣])?"
        return [Format("email", re.compile(
            r"(?<![A-Za-z0-9._%+\-])"
            r"(?P<local>[A-Za-z0-9_%+\-](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?)"
            r"@(?P<domain>(?:" + label + r"\.)+(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9\-]{1,59}|한국))"
            r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"), self._score)]

    def quick_reject(self, text: str) -> bool:
        return "@" not in text

    def _score(self, m: re.Match, text: str) -> float:
        if ".." in m.group("local"):
            return 0.0
        parts = self._tld(m.group("domain").lower())
        return 0.9 if parts.suffix and parts.domain else 0.0


def _offline_tld_extractor():
    """tldextract on its bundled public-suffix snapshot: no URLs to fetch, no cache dir to write."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class KoreanBankAccountRecognizer(KoreanPiiRecognizer):
    """Bank account numbers in Korean formats, only next to a banking context word.

    Formats seen in the wild: 국민 6-2-6 / 3-2-4-3, 신한 3-3-6 / 3-2-6, 우리 4-3-6, 하나 3-6-5,
    농협 3-4-4-2 / 6-2-6, 기업 3-6-2-3, 카카오뱅크 4-2-7, 토스뱅크 4-4-4, 케이뱅크 3-3-6, 우체국
    6-2-6, 새마을금고 4-2-6-1: 10-14 digits in 2-4 hyphenated groups of 2-7 digits (plus an
    optional final 1-digit group), or written without hyphens.  That
    shape is not distinctive (it fits phone numbers, business numbers, order numbers), so an
    account is never masked without a context word.
    """

    ENTITY = "KR_BANK_ACCOUNT"
    CONTEXT = ("*계좌", "*입금", "*예금주", "*은행", "*송금", "*이체", "*통장", "예금", "*뱅크", "신한",
               "*농협", "우체국", "새마을금고", "신협", "수협", "씨티", "SC제일", "account", "bank", "KB",
               "NH", "IBK")
    # Bank names that are also everyday words (우리 "we", 하나 "one", 국민 "people", 기업
    # "company"): only right next to the number.
    NEAR_CONTEXT = ("국민", "우리", "하나", "기업", "카카오", "토스", "제일")

    def build_formats(self) -> List[Format]:
        return [
            Format("account_hyphen", re.compile(
                LEFT + r"[0-9]{2,7}(?:-[0-9]{2,7}){1,3}(?:-[0-9])?" + RIGHT), self._score_hyphen),
            Format("account_plain", re.compile(LEFT + r"[0-9]{10,14}" + RIGHT), self._score_plain),
        ]

    @staticmethod
    def _score_hyphen(m: re.Match, text: str) -> float:
        groups = m.group(0).split("-")
        if [len(g) for g in groups] == [6, 7]:
            return 0.0  # the RRN shape; no bank numbers accounts 6-7, RRN rules decide it
        digits = "".join(groups)
        if isbn13_ok(digits):
            return 0.0  # 978-89-7055-123-4
        return 0.2 if 10 <= len(digits) <= 14 else 0.0

    @staticmethod
    def _score_plain(m: re.Match, text: str) -> float:
        return 0.0 if isbn13_ok(m.group(0)) else 0.2


class CardNumberRecognizer(KoreanPiiRecognizer):
    """Payment card numbers: 16 digits in fours, Amex 4-6-5, Diners 4-6-4; Luhn and prefix checked."""

    ENTITY = "CREDIT_CARD"
    CONTEXT = ("*카드", "*결제", "신용", "비자", "마스터", "유효기간", "할부", "card", "visa", "master",
               "mastercard", "amex", "cvc", "cvv", "jcb")

    def build_formats(self) -> List[Format]:
        s = r"(?P<s>[- ]?)"
        return [
            Format("card16", re.compile(
                LEFT + r"[0-9]{4}" + s + r"[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{4}" + RIGHT), self._score),
            Format("card15", re.compile(
                LEFT + r"3[47][0-9]{2}" + s + r"[0-9]{6}(?P=s)[0-9]{5}" + RIGHT), self._score),
            Format("card14", re.compile(
                LEFT + r"3[068][0-9]{2}" + s + r"[0-9]{6}(?P=s)[0-9]{4}" + RIGHT), self._score),
        ]

    @staticmethod
    def _score(m: re.Match, text: str) -> float:
        if not card_number_ok(only_digits(m.group(0))):
            return 0.0
        # Separated groups look like a card; a bare Luhn-valid 16-digit run is 1 in 10 of all
        # such runs (order/tracking numbers), so it needs a context word.
        return 0.8 if m.group("s") else 0.4


# token name -> recognizer class
RECOGNIZERS: dict[str, type[KoreanPiiRecognizer]] = {
    "tel": KoreanPhoneRecognizer,
    "rrn": KoreanRrnRecognizer,
    "email": EmailRecognizer,
    "acc": KoreanBankAccountRecognizer,
    "crd": CardNumberRecognizer,
}
ENTITY_TO_NAME = {cls.ENTITY: name for name, cls in RECOGNIZERS.items()}
