"""Answer metrics of Search-QA: SQuAD-style normalisation, exact match and token F1.

These follow the definitions used by SQuAD and Search-R1:

* ``normalize_answer(s)``: lowercase, drop punctuation, drop the articles
  ``a``/``an``/``the`` (as whole words), collapse whitespace.
* ``exact_match(pred, golds) = max_g 1[normalize(pred) == normalize(g)]``.
* token F1 against one golden answer, with tokens counted as a multiset
  (a token repeated in both strings matches ``min(count_pred, count_gold)`` times)::

      common    = sum_t min(c_pred(t), c_gold(t))
      precision = common / |pred tokens|,  recall = common / |gold tokens|
      F1        = 2 * precision * recall / (precision + recall)   (0 when common == 0)

  and ``f1_score(pred, golds) = max_g F1(pred, g)``.

Yes/no answers get no partial credit: when either side normalises to ``yes``,
``no`` or ``noanswer``, F1 is exact match (the SQuAD/HotpotQA convention).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable

__all__ = ["normalize_answer", "exact_match", "f1_score", "token_f1", "answer_in_text"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)
_SPECIAL = frozenset({"yes", "no", "noanswer"})


def normalize_answer(s: str) -> str:
    """Lowercase, remove punctuation, remove the articles a/an/the, collapse whitespace."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _as_list(golds: str | Iterable[str]) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    return [str(g) for g in golds]


def exact_match(prediction: str, golds: str | Iterable[str]) -> float:
    """1.0 if the normalised prediction equals any normalised golden answer, else 0.0."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(g) for g in _as_list(golds)))


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 between one prediction and one golden answer (multiset overlap)."""
    p_norm, g_norm = normalize_answer(prediction), normalize_answer(gold)
    if (p_norm in _SPECIAL or g_norm in _SPECIAL) and p_norm != g_norm:
        return 0.0
    p_toks, g_toks = p_norm.split(), g_norm.split()
    if not p_toks or not g_toks:
        return float(p_toks == g_toks)
    common = sum((Counter(p_toks) & Counter(g_toks)).values())
    if common == 0:
        return 0.0
    precision = common / len(p_toks)
    recall = common / len(g_toks)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: str | Iterable[str]) -> float:
    """The best token F1 of ``prediction`` over the golden answers (0.0 if there are none)."""
    return max((token_f1(prediction, g) for g in _as_list(golds)), default=0.0)


def answer_in_text(answer: str, text: str) -> bool:
    """Whether the normalised ``answer`` occurs in the normalised ``text`` as a whole-token span."""
    a = normalize_answer(answer).split()
    t = normalize_answer(text).split()
    if not a:
        return False
    n = len(a)
    return any(t[i : i + n] == a for i in range(len(t) - n + 1))
