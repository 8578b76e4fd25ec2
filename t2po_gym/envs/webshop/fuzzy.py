"""``token_set_ratio`` with the decisions of thefuzz 0.19, the version WebShop pins.

WebShop (``requirements.txt``: ``thefuzz==0.19.0``, no ``python-Levenshtein``) scores
attribute and option matches with ``fuzz.token_set_ratio`` (``web_agent_site/engine/goal.py:L188``
and ``L218``). In 0.19 that function is pure Python on top of :class:`difflib.SequenceMatcher`;
later releases (and rapidfuzz) compute an Indel ratio instead, which differs from difflib's
greedy matching blocks and treats non-ASCII text differently. This module re-implements the
0.19 behaviour from its documented steps, so no pinned old package is needed:

1. ``None`` on either side scores 0.
2. Each side is forced to text: a non-``str`` value (WebShop passes ``(name, value)`` tuples
   for dict-form goal options) becomes ``str(value)``; then the characters U+0080..U+00FF are
   *deleted* (``force_ascii``: ``"café"`` becomes ``"caf"``), every non-word character
   (``\\W``, Unicode-aware, so ``_`` is kept) becomes a space, the text is lower-cased and stripped.
3. Either side empty after that scores 0.
4. Tokens are split on whitespace into sets; ``sect`` = sorted intersection joined by spaces,
   ``a`` = ``sect + " " + sorted(tokens1 - tokens2)``, ``b`` likewise, all stripped.
5. The score is the maximum of ``ratio(sect, a)``, ``ratio(sect, b)`` and ``ratio(a, b)``
   where ``ratio(x, y)`` is 100 when ``x == y``, 0 when either is empty, else
   ``int(round(100 * SequenceMatcher(None, x, y).ratio()))`` (difflib with its default
   ``autojunk=True``, which matters for strings of 200+ characters).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

__all__ = ["token_set_ratio", "full_process", "ratio"]

# chr(128)..chr(255) are deleted by thefuzz 0.19's ``asciidammit`` before processing
_LATIN1_DELETE = {c: None for c in range(128, 256)}
_NON_WORD = re.compile(r"(?ui)\W")


def full_process(value: Any) -> str:
    """thefuzz 0.19's ``full_process(value, force_ascii=True)`` (step 2 of the module doc)."""
    text = value if type(value) is str else str(value)
    text = text.translate(_LATIN1_DELETE)
    return _NON_WORD.sub(" ", text).lower().strip()


def ratio(a: str, b: str) -> int:
    """thefuzz 0.19's ``fuzz.ratio`` on already processed strings: 0-100, rounded half to even
    as Python's ``round`` does."""
    if a == b:
        return 100
    if not a or not b:
        return 0
    return int(round(100 * SequenceMatcher(None, a, b).ratio()))


@lru_cache(maxsize=65536)
def _token_set_processed(p1: str, p2: str) -> int:
    if not p1 or not p2:
        return 0
    t1, t2 = set(p1.split()), set(p2.split())
    sect = " ".join(sorted(t1 & t2))
    a = (sect + " " + " ".join(sorted(t1 - t2))).strip()
    b = (sect + " " + " ".join(sorted(t2 - t1))).strip()
    sect = sect.strip()
    return max(ratio(sect, a), ratio(sect, b), ratio(a, b))


def token_set_ratio(s1: Any, s2: Any) -> int:
    """``thefuzz.fuzz.token_set_ratio(s1, s2)`` as thefuzz 0.19.0 computes it without
    python-Levenshtein: an ``int`` in [0, 100]. Any value is accepted (``str()`` of non-strings)."""
    if s1 is None or s2 is None:
        return 0
    return _token_set_processed(full_process(s1), full_process(s2))
