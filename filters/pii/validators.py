"""Pure validators for Korean PII values: no regexes over documents, no presidio, no I/O.

Each function takes the digits (or the parts) of one candidate and answers a yes/no question,
so the recognizers can combine them into a score and the tests can check them one by one.
"""
from __future__ import annotations

import calendar
import datetime

# Resident registration number (주민등록번호) weights for the first 12 digits.
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

# 7th digit (gender/century) -> (century, is_foreigner).  1/2 and 3/4 are Korean citizens born
# in the 1900s / 2000s, 5/6 and 7/8 foreigners (외국인등록번호) likewise.  9/0 (born in the
# 1800s) are left out on purpose: nobody alive carries one, and accepting them would let more
# random 13-digit numbers through.
GENDER_DIGITS: dict[str, tuple[int, bool]] = {
    "1": (1900, False), "2": (1900, False), "3": (2000, False), "4": (2000, False),
    "5": (1900, True), "6": (1900, True), "7": (2000, True), "8": (2000, True),
}


def only_digits(text: str) -> str:
    return "".join(c for c in text if "0" <= c <= "9")


def rrn_birth_date(yymmdd: str, gender_digit: str, today: datetime.date | None = None) -> datetime.date | None:
    """The birth date an RRN encodes, or None if the date is impossible.

    Impossible: bad month/day (Feb 29 only in leap years), an unknown gender digit, or a date in
    the future (``990101-3…`` would be 2099).
    """
    if len(yymmdd) != 6 or not yymmdd.isdigit() or gender_digit not in GENDER_DIGITS:
        return None
    century, _ = GENDER_DIGITS[gender_digit]
    year, month, day = century + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    born = datetime.date(year, month, day)
    if born > (today or datetime.date.today()):
        return None
    return born


def rrn_check_digit_ok(digits: str) -> bool:
    """The pre-October-2020 check digit of a 13-digit RRN or foreigner number.

    Citizens: ``(11 - sum(d_i * w_i) % 11) % 10``; foreigners (gender digit 5-8):
    ``(13 - sum % 11) % 10``.  Numbers issued since 2020-10 have a random last digit, so a
    failing check digit lowers confidence but does not rule a number out.
    """
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS))
    foreigner = GENDER_DIGITS.get(digits[6], (0, False))[1]
    expected = ((13 if foreigner else 11) - total % 11) % 10
    return expected == int(digits[12])


def rrn_format_ok(digits: str, today: datetime.date | None = None) -> bool:
    """13 digits whose first 7 encode a possible birth date and a known gender/century digit."""
    return len(digits) == 13 and rrn_birth_date(digits[:6], digits[6], today) is not None


def luhn_ok(digits: str) -> bool:
    """ISO/IEC 7812 Luhn checksum (card numbers)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_prefix_ok(digits: str) -> bool:
    """Issuer prefixes seen on cards used in Korea.

    3 (Amex 34/37, JCB 35, Diners 36/38), 4 (Visa), 5 (Mastercard), 6 (UnionPay 62, Discover),
    2221-2720 (Mastercard 2-series), 9 (domestic BC/local cards).  Numbers starting 0, 1, 7, 8
    are never payment cards, which removes many order and tracking numbers.
    """
    if not digits:
        return False
    if digits[0] in "34569":
        return True
    if digits[0] == "2":
        return 2221 <= int(digits[:4]) <= 2720
    return False


def card_number_ok(digits: str) -> bool:
    """Length 14-16, a known issuer prefix, all digits not identical, and a valid Luhn sum."""
    return (14 <= len(digits) <= 16 and card_prefix_ok(digits) and len(set(digits)) > 1
            and luhn_ok(digits))


def looks_like_year_range(first: str, second: str) -> bool:
    """``1592-1598`` (a span of years) rather than a representative number ``1588-1234``.

    Representative numbers start 15xx/16xx/18xx, which are also years; a second group that is a
    later year up to five centuries on (periods such as 1500-1900) reads as a range, so it needs
    a context word to count.
    """
    if len(first) != 4 or len(second) != 4:
        return False
    a, b = int(first), int(second)
    return 0 < b - a <= 500


def isbn13_ok(digits: str) -> bool:
    """A valid ISBN-13 (978/979 prefix, EAN-13 check digit): a book number, never an account."""
    if len(digits) != 13 or not digits.isdigit() or digits[:3] not in ("978", "979"):
        return False
    total = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])
