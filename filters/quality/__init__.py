"""Korean quality heuristics (stage ``quality``).

``build_filters(section)`` turns the ``quality:`` config section into the ordered filter list:
text rewriting first (boilerplate removal, emoticon collapse) so that every later statistic
describes the text that is kept, then cheap character-count filters, then line/lexicon
filters, and the n-gram repetition filter last (the most expensive).  All filters share one
lazily computed :class:`~filters.quality.stats.DocStats` per document.
"""
from __future__ import annotations

from typing import Any, Callable

from filters.base import DocumentFilter
from filters.quality.boilerplate import BoilerplateRemover, EmoticonCollapser
from filters.quality.filters import (CodeMarkupFilter, HangulShareFilter, JamoEmoticonFilter, LengthFilter,
                                     LineStructureFilter, MojibakeFilter, RepetitionFilter,
                                     SpamLexiconFilter, SymbolDigitFilter)
from filters.quality.stats import DocStats, doc_stats

__all__ = ["build_filters", "FILTER_ORDER", "DocStats", "doc_stats", "BoilerplateRemover",
           "EmoticonCollapser", "LengthFilter", "HangulShareFilter", "MojibakeFilter",
           "SymbolDigitFilter", "JamoEmoticonFilter", "CodeMarkupFilter", "LineStructureFilter",
           "SpamLexiconFilter", "RepetitionFilter"]

# config sub-section name -> filter class, in the order the stage applies them.
FILTER_ORDER: dict[str, Callable[..., DocumentFilter]] = {
    "boilerplate": BoilerplateRemover,
    "emoticon_collapse": EmoticonCollapser,
    "length": LengthFilter,
    "hangul_share": HangulShareFilter,
    "mojibake": MojibakeFilter,
    "symbols": SymbolDigitFilter,
    "jamo_emoticon": JamoEmoticonFilter,
    "code_markup": CodeMarkupFilter,
    "line_structure": LineStructureFilter,
    "spam_lexicon": SpamLexiconFilter,
    "repetition": RepetitionFilter,
}


def build_filters(section: dict[str, Any]) -> list[DocumentFilter]:
    """Filters for the ``quality:`` section; a sub-section with ``enabled: false`` is skipped.

    A sub-section missing from ``section`` uses the class defaults (which mirror
    ``configs/default.yaml``); the top-level ``enabled: false`` returns no filters.
    """
    section = dict(section or {})
    if not section.get("enabled", True):
        return []
    filters = []
    for name, cls in FILTER_ORDER.items():
        params = dict(section.get(name) or {})
        if not params.pop("enabled", True):
            continue
        filters.append(cls(**params))
    return filters
