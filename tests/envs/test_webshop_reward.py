"""The project's corrected WebShop reward (``reward="fixed"``) on hand-computed cases.

WebShop's own ``get_reward`` (the default, ``reward="webshop"``) is tested in
``test_webshop_reward_original.py``.
"""

from __future__ import annotations

from functools import partial

import pytest

from t2po_gym.envs.webshop.catalog import Goal, Product
from t2po_gym.envs.webshop.reward import fuzzy_score, type_reward, type_words
from t2po_gym.envs.webshop.reward import purchase_reward as _purchase_reward

purchase_reward = partial(_purchase_reward, reward="fixed")


def _product(**kw) -> Product:
    base = dict(
        asin="B000000001",
        name="Acme Sulfate Free Shampoo",
        category="beauty",
        query="shampoo",
        product_category="Beauty › Hair Care › Shampoos",
        pricing=(12.0,),
        price_tag="$12.00",
        options={"size": ("8 oz", "16 oz"), "scent": ("lavender", "coconut")},
        attributes=("sulfate free", "argan oil"),
        description="A gentle shampoo.",
        bullet_points=("Great for dry hair",),
    )
    base.update(kw)
    return Product(**base)


def _goal(**kw) -> Goal:
    base = dict(
        asin="B000000001",
        category="beauty",
        query="shampoo",
        name="Acme Sulfate Free Shampoo",
        product_category="Beauty › Hair Care › Shampoos",
        instruction_text="i need a sulfate free shampoo for dry hair that is paraben free",
        attributes=("sulfate free", "dry hair", "paraben free"),
        goal_options={"size": "16 oz", "scent": "lavender"},
        price_upper=20.0,
    )
    base.update(kw)
    return Goal(**base)


def test_full_match_is_one():
    g = _goal(attributes=("sulfate free", "dry hair"))
    r = purchase_reward(_product(), g, 12.0, {"size": "16 oz", "scent": "lavender"})
    # (2 attrs + 2 options + price) / (2 + 2 + 1)
    assert r.reward == 1.0 and r.r_type == 1.0


def test_partial_attributes():
    # sulfate free: fuzzy on attributes; dry hair: in the features; paraben free: nowhere
    r = purchase_reward(_product(), _goal(), 12.0, {"size": "16 oz", "scent": "lavender"})
    assert r.n_attributes == 2 and r.n_options == 2 and r.price_ok
    assert r.reward == pytest.approx(5 / 6)


def test_wrong_size_option_is_exact_match_only():
    r = purchase_reward(_product(), _goal(), 12.0, {"size": "8 oz", "scent": "lavender"})
    assert r.n_options == 1
    assert r.reward == pytest.approx(4 / 6)


def test_unselected_option_counts_nothing():
    r = purchase_reward(_product(), _goal(), 12.0, {"scent": "lavender"})
    assert r.reward == pytest.approx(4 / 6)


def test_over_price():
    r = purchase_reward(_product(), _goal(), 25.0, {"size": "16 oz", "scent": "lavender"})
    assert not r.price_ok
    assert r.reward == pytest.approx(4 / 6)


def test_wrong_type_zero():
    wallet = _product(name="Zeta Leather Wallet", query="wallet", product_category="Fashion › Accessories › Wallets")
    r = purchase_reward(wallet, _goal(), 12.0, {"size": "16 oz", "scent": "lavender"})
    assert r.r_type == 0.0 and r.reward == 0.0


def test_type_half_when_only_weak_title_overlap():
    # goal title words: acme, sulfate, free, argan, shampoo, bottle -> 1/6 shared, no query/category match
    g = _goal(name="Acme Sulfate Free Argan Shampoo Bottle")
    other = _product(name="Acme Leather Wallet", query="wallet", product_category="Fashion › Accessories › Wallets")
    r_type, qm, cm, ts = type_reward(other, g)
    assert (qm, cm) == (False, False)
    assert ts == pytest.approx(1 / 6)
    assert r_type == 0.5
    r = purchase_reward(other, g, 12.0, {"size": "16 oz", "scent": "lavender"})
    # sulfate free (attr), dry hair (features), size + scent exact/fuzzy, price: 5/6, halved
    assert r.reward == pytest.approx(0.5 * 5 / 6)


def test_type_tenth_when_title_score_below_0_1():
    g = _goal(name="Acme Sulfate Free Argan Oil Shampoo For Dry Damaged Curly Hair Bottle")
    other = _product(name="Acme Leather Wallet", query="wallet", product_category="Fashion › Accessories › Wallets")
    r_type, _, _, ts = type_reward(other, g)
    assert 0 < ts < 0.1 and r_type == 0.1


def test_category_match_keeps_type_one():
    g = _goal(name="Acme Sulfate Free Argan Shampoo Bottle")
    other = _product(name="Acme Leather Comb", query="comb")  # same category path
    assert type_reward(other, g)[0] == 1.0


def test_fuzzy_attribute_and_option():
    p = _product(attributes=("long-lasting", "argan oil"), options={"color": ("navy blue",)})
    g = _goal(attributes=("long lasting",), goal_options={"color": "Navy Blue"})
    r = purchase_reward(p, g, 12.0, {"color": "navy blue"})
    assert r.reward == 1.0
    assert fuzzy_score("long-lasting", "long lasting") == 100


def test_type_words_fallback_drops_stop_words_and_units():
    assert type_words("Acme Shampoo for Dry Hair, 16 fl oz (Pack of 2)") == ["acme", "shampoo", "dry", "hair"]


def test_spacy_mode_without_model_names_the_fix():
    from t2po_gym.envs.webshop import reward

    if reward._spacy_nlp() is not None:
        pytest.skip("a spaCy model is installed")
    with pytest.raises(RuntimeError, match=r"t2po-gym\[webshop\]"):
        type_words("Acme Shampoo", mode="spacy")
    assert type_words("Acme Shampoo", mode="auto") == ["acme", "shampoo"]
