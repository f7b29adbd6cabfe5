"""Near-duplicate recipes applied to real documents, for tests and ``bench/eval_dedup.py``.

Each recipe takes a real text (and, where it adds text, real sentences from *other* documents)
and returns a variant that a web crawl would plausibly contain twice: a typo'd copy, a
re-spaced/re-punctuated copy, a copy with a site header/footer (≤ 10 % of the text), a copy
truncated by 5-10 %, a copy with two paragraphs swapped.  ``with_shared_boilerplate`` builds the
negative case: distinct documents sharing a template block (≤ 30 % of each text), which must *not*
be removed.  Deterministic for a given ``random.Random``.
"""
from __future__ import annotations

import random
import re

_SENT = re.compile(r"(?<=[.!?])\s+")
_PUNCT_SWAPS = {".": "。", ",": "、", "(": "[", ")": "]", "\"": "'"}


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7a3"


def typos(text: str, rng: random.Random, rate: float = 0.01) -> str:
    """About ``rate`` of the characters mistyped: a Hangul syllable replaced by a nearby one,
    a character dropped, or doubled (what fat fingers and OCR do)."""
    chars = list(text)
    n = max(1, int(len(chars) * rate))
    for pos in rng.sample(range(len(chars)), min(n, len(chars))):
        ch = chars[pos]
        op = rng.random()
        if op < 0.5 and _is_hangul(ch):
            chars[pos] = chr(0xAC00 + (ord(ch) - 0xAC00 + rng.choice([-28, -1, 1, 28])) % 11172)
        elif op < 0.75:
            chars[pos] = ""
        else:
            chars[pos] = ch + ch
    return "".join(chars)


def whitespace_punct(text: str, rng: random.Random) -> str:
    """Spacing and punctuation noise: doubled spaces, newlines turned into spaces (or the reverse),
    punctuation swapped for look-alikes or dropped, ellipses appended."""
    out = []
    for ch in text:
        r = rng.random()
        if ch == " " and r < 0.15:
            out.append(rng.choice(["  ", "\n", " \t"]))
        elif ch == "\n" and r < 0.5:
            out.append(rng.choice([" ", "\n\n"]))
        elif ch in _PUNCT_SWAPS and r < 0.4:
            out.append(_PUNCT_SWAPS[ch] if r < 0.25 else "")
        elif ch == "." and r < 0.5:
            out.append("...")
        else:
            out.append(ch)
    return "".join(out)


def _sentences_from(donor: str, budget: int, rng: random.Random) -> str:
    sents = [s for s in _SENT.split(donor.replace("\n", " ")) if s.strip()]
    start = rng.randrange(len(sents))
    taken = []
    for s in sents[start:] + sents[:start]:
        if sum(len(t) + 1 for t in taken) + len(s) > budget:
            break
        taken.append(s)
    return " ".join(taken) if taken else donor[:budget]


def header_footer(text: str, donor: str, rng: random.Random, max_frac: float = 0.10) -> str:
    """A header and/or footer made of real sentences from ``donor``, ≤ ``max_frac`` of the result."""
    budget = int(len(text) * max_frac / (1 - max_frac))
    extra = _sentences_from(donor, budget, rng)
    where = rng.choice(["header", "footer", "both"])
    if where == "header":
        return extra + "\n" + text
    if where == "footer":
        return text + "\n" + extra
    cut = len(extra) // 2
    cut = extra.rfind(" ", 0, cut) + 1 or cut
    return extra[:cut].strip() + "\n" + text + "\n" + extra[cut:].strip()


def truncate(text: str, rng: random.Random, lo: float = 0.05, hi: float = 0.10) -> str:
    """The last 5-10 % of the text cut off (a crawl that stopped early, a "read more" teaser)."""
    keep = int(len(text) * (1 - rng.uniform(lo, hi)))
    return text[:keep]


def swap_paragraphs(text: str, rng: random.Random) -> str:
    """Two paragraphs exchanged (same content, different layout)."""
    paras = text.split("\n")
    idx = [i for i, p in enumerate(paras) if p.strip()]
    if len(idx) < 2:
        return text
    i, j = rng.sample(idx, 2)
    paras[i], paras[j] = paras[j], paras[i]
    return "\n".join(paras)


def with_shared_boilerplate(text: str, boilerplate: str, rng: random.Random, max_frac: float = 0.30) -> str:
    """``text`` plus a shared template block trimmed so it is ≤ ``max_frac`` of the result."""
    budget = int(len(text) * max_frac / (1 - max_frac))
    block = boilerplate[:budget]
    return (block + "\n" + text) if rng.random() < 0.5 else (text + "\n" + block)


NEAR_RECIPES = ("typos", "whitespace_punct", "header_footer", "truncate", "swap_paragraphs")


def apply_recipe(name: str, text: str, donor: str, rng: random.Random) -> str:
    if name == "exact":
        return text
    if name == "typos":
        return typos(text, rng)
    if name == "whitespace_punct":
        return whitespace_punct(text, rng)
    if name == "header_footer":
        return header_footer(text, donor, rng)
    if name == "truncate":
        return truncate(text, rng)
    if name == "swap_paragraphs":
        return swap_paragraphs(text, rng)
    raise ValueError(f"unknown recipe {name!r}")


def labelled_set(records: list[dict], seed: int = 0, recipes: tuple = ("exact",) + NEAR_RECIPES,
                 variants_of: int | None = None, boilerplate_docs: int = 0):
    """Real records plus labelled variants: ``(docs, truth)``.

    ``docs`` are ``(id, text, source)`` triples; ``truth[id]`` names the original a variant was
    made from (``None`` for originals and for boilerplate-sharing documents, which are distinct).
    The first ``variants_of`` records (default: all) get one variant per recipe, cycling through
    ``recipes``; donors for added text are other records.  The last ``boilerplate_docs`` records are
    rewritten to share one template block (≤ 30 % of each text) taken from a record that is not
    otherwise in the set, and get no variants.
    """
    rng = random.Random(seed)
    n = len(records)
    plain = records[:n - boilerplate_docs] if boilerplate_docs else records
    docs, truth = [], {}
    for r in plain:
        docs.append((r["id"], r["text"], r.get("source", "")))
        truth[r["id"]] = None
    if boilerplate_docs:
        template_source = plain[-1]["text"]  # a real article's paragraphs as the shared block
        for r in records[n - boilerplate_docs:]:
            text = with_shared_boilerplate(r["text"], template_source, rng)
            docs.append((r["id"], text, r.get("source", "")))
            truth[r["id"]] = None
    count = len(plain) if variants_of is None else min(variants_of, len(plain))
    for i, r in enumerate(plain[:count]):
        name = recipes[i % len(recipes)]
        donor = plain[(i * 7 + 13) % len(plain)]["text"]
        if donor == r["text"]:
            donor = plain[(i + 1) % len(plain)]["text"]
        vid = f"{r['id']}~{name}"
        docs.append((vid, apply_recipe(name, r["text"], donor, rng), "variant"))
        truth[vid] = r["id"]
    return docs, truth
