"""WebShop's own reward (``reward="webshop"``, the default) on hand-computed cases, one per
way it differs from the project's corrected variant, each with the line of
``web_agent_site/engine/goal.py`` / ``normalize.py`` (princeton-nlp/WebShop) that causes it.

Scores below are worked out by hand from thefuzz 0.19's steps (see
:mod:`t2po_gym.envs.webshop.fuzzy`): ``ratio(x, y) = round(100 * 2M / (len x + len y))`` with
``M`` the characters in difflib's matching blocks.
"""

from __future__ import annotations

import difflib
import random
import warnings

import pytest

from t2po_gym.envs.webshop import fuzzy
from t2po_gym.envs.webshop.catalog import Goal, Product
from t2po_gym.envs.webshop.normalize import normalize_color
from t2po_gym.envs.webshop.reward import (
    purchase_reward,
    spacy_available,
    type_words,
    webshop_option_matches,
)


def _product(**kw) -> Product:
    base = dict(
        asin="B000000001",
        name="Acme Sulfate Free Shampoo",
        category="beauty",
        query="shampoo",
        product_category="Beauty › Hair Care › Shampoos",
        pricing=(12.0,),
        price_tag="$12.0",
        options={"size": ("large", "x-large"), "color": ("light wash", "black")},
        attributes=("sulfate free",),
        description="A gentle shampoo.",
        bullet_points=("Great for dry hair",),
    )
    base.update(kw)
    return Product(**base)


def _goal(options: dict[str, str] | list[str], **kw) -> Goal:
    as_list = isinstance(options, list)
    base = dict(
        asin="B000000001",
        category="beauty",
        query="shampoo",
        name="Acme Sulfate Free Shampoo",
        product_category="Beauty › Hair Care › Shampoos",
        instruction_text="i need a sulfate free shampoo",
        attributes=("sulfate free",),
        goal_options={str(i): v for i, v in enumerate(options)} if as_list else dict(options),
        price_upper=20.0,
        option_list=as_list,
    )
    base.update(kw)
    return Goal(**base)


# --------------------------------------------------------------------------- fuzzy scores
def test_thefuzz_019_non_ascii_decision_differs_from_rapidfuzz():
    # thefuzz 0.19 deletes U+0080..U+00FF before scoring (utils.asciidammit): "café" -> "caf";
    # ratio("caf", "cafe") = round(100 * 2*3/7) = 86 > 85: a match. rapidfuzz keeps "é": 75.
    assert fuzzy.full_process("Café!") == "caf"
    assert fuzzy.token_set_ratio("café", "cafe") == 86
    p = _product(attributes=("café",), name="Acme Shampoo", bullet_points=(), description="")
    g = _goal([], attributes=("cafe",))
    assert purchase_reward(p, g, 12.0, {}).reward == pytest.approx(1.0)  # (1 attr + price) / 2
    assert purchase_reward(p, g, 12.0, {}, reward="fixed").reward == pytest.approx(0.5)


def test_tuple_is_scored_as_its_text():
    # A dict-form goal option reaches thefuzz as ('size', 'large'): str() of it, each non-word
    # character a space -> "size    large", tokens {size, large}.
    assert fuzzy.full_process(("size", "large")) == "size    large"
    assert fuzzy.token_set_ratio("large", ("size", "large")) == 100  # tokens {large} ⊂ {size, large}
    assert fuzzy.token_set_ratio(None, "x") == 0 and fuzzy.token_set_ratio("", "x") == 0


def test_matches_thefuzz_019_when_installed():
    thefuzz = pytest.importorskip("thefuzz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from thefuzz import fuzz
    if thefuzz.__version__ != "0.19.0" or fuzz.SequenceMatcher is not difflib.SequenceMatcher:
        pytest.skip("needs thefuzz 0.19.0 without python-Levenshtein (WebShop's setting)")
    rng = random.Random(0)
    alphabet = list("abcdef gh-_/.,'") + ["é", "ü", "ß", "中", "İ", "light wash", "x-large", "16 oz"]
    for k in range(3000):
        n1, n2 = (rng.randint(0, 260), rng.randint(0, 260)) if k % 20 == 0 else (rng.randint(0, 25), rng.randint(0, 25))
        a = "".join(rng.choice(alphabet) for _ in range(n1))
        b = "".join(rng.choice(alphabet) for _ in range(n2))
        if k % 7 == 0:
            b = ("color", b)
        assert fuzzy.token_set_ratio(a, b) == fuzz.token_set_ratio(a, b), (a, b)


# --------------------------------------------------------------------------- options
def test_size_is_fuzzy_matched_like_every_option():
    # goal.py:L216-221 fuzzy-matches every option. Purchased "x-large" -> tokens {x, large};
    # goal "large": sect = "large", combined_2to1 = "large" -> ratio 100 > 85: a match.
    # The fixed variant matches size exactly: "x-large" != "large".
    g = _goal(["large"])
    r = purchase_reward(_product(), g, 12.0, {"size": "x-large"})
    assert r.n_options == 1 and r.reward == pytest.approx(1.0)  # (1 + 1 + 1) / (1 + 1 + 1)
    fixed = purchase_reward(_product(), g, 12.0, {"size": "x-large"}, reward="fixed")
    assert fixed.n_options == 0 and fixed.reward == pytest.approx(2 / 3)


def test_colour_normalisation_of_purchased_options_list_goal():
    # normalize.py:L57-62: the first COLOR_SET word inside the value wins; "ash" comes before
    # "light", so "light wash" -> "ash" on both sides of a list-form goal: a match.
    assert normalize_color("light wash") == "ash"
    assert normalize_color("day cream") == "cream" and normalize_color("night cream") == "cream"
    g = _goal(["light wash"])
    assert webshop_option_matches(["light wash"], g) == 1
    # and "night cream" bought for "day cream": both become "cream", a match
    assert webshop_option_matches(["night cream"], _goal(["day cream"])) == 1
    fixed = purchase_reward(_product(options={"type": ("night cream", "day cream")}, description=""),
                            _goal(["day cream"]), 12.0, {"type": "night cream"}, reward="fixed")
    assert fixed.n_options == 0


def test_dict_goal_options_arrive_as_tuples_and_skip_colour_normalisation():
    # goal.py:L240 passes goal_options.items(): normalize_color(('color', 'light wash')) tests
    # tuple membership, finds no colour word equal to an element and keeps the tuple. The
    # purchased "light wash" became "ash": tokens {ash} vs {color, light, wash} share nothing;
    # the best ratio is ratio("ash", "color light wash") = round(100 * 2*3/19) = 32: no match,
    # although the wanted option was bought.
    g = _goal({"color": "light wash"})
    assert normalize_color(("color", "light wash")) == ("color", "light wash")
    assert fuzzy.token_set_ratio("ash", ("color", "light wash")) == 32
    r = purchase_reward(_product(), g, 12.0, {"color": "light wash"})
    assert r.n_options == 0 and r.reward == pytest.approx(2 / 3)  # (1 attr + 0 + price) / 3
    # the same goal in list form (human goals) gets the option
    assert purchase_reward(_product(), _goal(["light wash"]), 12.0, {"color": "light wash"}).reward == 1.0
    # a tuple element that *is* a colour word is normalised: ('color', 'black') -> 'black'
    assert normalize_color(("color", "black")) == "black"
    assert purchase_reward(_product(), _goal({"color": "black"}), 12.0, {"color": "black"}).reward == 1.0
    # the fixed variant compares values: a match
    assert purchase_reward(_product(), g, 12.0, {"color": "light wash"}, reward="fixed").n_options == 1


def test_dict_goal_name_token_makes_subset_values_match():
    # tokens of "night cream" -> "cream" ⊂ {type, day, cream}: sect = "cream" = combined_1to2, ratio 100
    g = _goal({"type": "day cream"})
    assert webshop_option_matches(["night cream"], g) == 1


def test_option_found_in_product_text_is_not_credited():
    # goal.py:L209-225 never looks at the product text; the fixed variant credits an option
    # value found in the title, features or description.
    p = _product(options={"scent": ("lavender", "coconut")}, description="Smells of lavender.")
    g = _goal({"scent": "coconut"})
    r = purchase_reward(p, g, 12.0, {"scent": "lavender"})
    assert r.n_options == 0 and r.reward == pytest.approx(2 / 3)
    assert purchase_reward(p, g, 12.0, {"scent": "lavender"}, reward="fixed").n_options == 1


def test_full_formula_not_clipped_and_price_counts():
    # (n_att + n_opt + price) / (|A| + |G| + 1) * r_type (goal.py:L245-250)
    g = _goal(["large", "black"], attributes=("sulfate free", "dry hair", "paraben free"), price_upper=10.0)
    r = purchase_reward(_product(), g, 12.0, {"size": "large", "color": "black"})
    # sulfate free (attribute), dry hair (features) -> 2 of 3; both options; price 12 > 10
    assert (r.n_attributes, r.n_options, r.price_ok, r.r_type) == (2, 2, False, 1.0)
    assert r.reward == pytest.approx(4 / 6)


# --------------------------------------------------------------------------- type words
def test_fallback_type_words_are_documented_tokens():
    assert type_words("Organic Green Tea Bags, 100 Count", "tokens") == ["organic", "green", "tea", "bags"]


@pytest.mark.skipif(not spacy_available(), reason="needs pip install 't2po-gym[webshop]'")
def test_spacy_keeps_nouns_the_fallback_drops():
    # goal.py:L143-147: tokens tagged NOUN/PROPN. en_core_web_sm tags the unit "Count" a noun
    # (the fallback's unit list drops it) and the adjective-like "Organic" a proper noun.
    words = type_words("Organic Green Tea Bags, 100 Count", "spacy")
    assert "count" in words and "tea" in words and "100" not in words
    assert type_words("Organic Green Tea Bags, 100 Count", "auto") == words


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="reward must be one of"):
        purchase_reward(_product(), _goal([]), 1.0, {}, reward="paper")
    with pytest.raises(ValueError, match="type_words must be one of"):
        type_words("x", "nltk")
