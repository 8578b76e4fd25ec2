"""T2PO/WebShop-v0: pages, actions, oracle, sharing, bad input, catalogs."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import t2po_gym  # noqa: F401  (registers the ids)
from t2po_gym.envs.webshop.catalog import CatalogError, load_webshop_catalog
from t2po_gym.envs.webshop.catalogs import get_catalog
from t2po_gym.envs.webshop.env import WebShopEnv
from t2po_gym.envs.webshop.synthetic import CATEGORIES, generate_catalog


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("T2PO_CACHE", str(tmp_path_factory.mktemp("t2po_cache")))
    yield
    mp.undo()


def _env(**kw) -> WebShopEnv:
    # these tests pin this project's strict protocol; the released one is in test_webshop_released.py
    kw.setdefault("protocol", "strict")
    kw.setdefault("observation_mode", "raw")
    kw.setdefault("strict_format", False)
    return WebShopEnv(**kw)


def _run_oracle(env: WebShopEnv, goal_index: int) -> dict:
    env.reset(options={"goal_index": goal_index})
    info: dict = {}
    for _ in range(env.max_turns):
        a = env.oracle_action()
        if a is None:
            break
        _, _, term, trunc, info = env.step(a)
        if term or trunc:
            break
    return info


def test_check_env_passes():
    check_env(_env(observation_mode="prompt", strict_format=True), skip_render_check=True)
    env = gym.make("T2PO/WebShop-v0")
    check_env(env.unwrapped, skip_render_check=True)


def test_synthetic_catalog_is_deterministic_and_shaped():
    a, b = generate_catalog(300, seed=3), generate_catalog(300, seed=3)
    assert [p.to_webshop_dict() for p in a.products] == [p.to_webshop_dict() for p in b.products]
    assert [g.instruction_text for g in a.goals] == [g.instruction_text for g in b.goals]
    assert generate_catalog(300, seed=4).products[0].asin != a.products[0].asin
    assert {p.category for p in a.products} == set(CATEGORIES) and len(CATEGORIES) >= 5
    for p in a.products[:50]:
        d = p.to_webshop_dict()
        assert d["Title"] and d["Description"] and d["BulletPoints"] and d["Attributes"] and d["options"]
        assert len(p.asin) == 10 and p.pricing[0] > 0
    g = a.goals[0]
    assert g.asin in a.by_asin and g.attributes and g.price_upper > a.prices[g.asin]
    assert "price lower than" in g.instruction_text


def test_splits_follow_webshop():
    cat = get_catalog("synthetic", num_products=1000)
    assert list(cat.split("test")) == list(range(500))
    assert list(cat.split("train")) == list(range(500, len(cat.goals)))
    with pytest.raises(ValueError):
        cat.split("dev")


def test_pages_and_actions():
    env = _env(show_attrs=True)
    obs, info = env.reset(seed=0)
    assert obs.startswith("WebShop [SEP] Instruction: [SEP] ")
    assert info["admissible_actions"] == ["search[<query>]"]
    assert info["anchor"] == obs
    obs, r, term, trunc, info = env.step("search[black free long lasting]")
    assert info["action_valid"] and r == 0 and not term
    assert "Page 1 (Total results: 50)" in obs
    assert "click[next >]" in info["admissible_actions"] and "click[< prev]" not in info["admissible_actions"]
    assert "click[back to search]" in info["admissible_actions"]
    links = [a for a in info["admissible_actions"] if a.startswith("click[b0")]
    assert len(links) == 10 and "search[<query>]" not in info["admissible_actions"]
    page1 = obs
    obs, *_, info = env.step("click[next >]")
    assert "Page 2 (Total results: 50)" in obs and "click[< prev]" in info["admissible_actions"]
    obs, *_ = env.step("click[< prev]")
    assert obs == page1
    asin = links[0][len("click[") : -1]
    obs, *_, info = env.step(f"click[{asin.upper()}]")  # case-insensitive
    p = env.catalog.by_asin[asin.upper()]
    assert p.name in obs and f"Price: {p.price_tag}" in obs
    for sub in ("description", "features", "reviews", "attributes", "buy now"):
        assert f"click[{sub}]" in info["admissible_actions"]
    obs, *_, info = env.step("click[features]")
    assert p.bullet_points[0] in obs and info["admissible_actions"] == ["click[back to search]", "click[< prev]"]
    obs, *_ = env.step("click[< prev]")
    value = next(iter(p.options.values()))[0]
    obs, *_, info = env.step(f"click[{value}]")
    assert env.shop.options[next(iter(p.options))] == value
    obs, r, term, trunc, info = env.step("click[buy now]")
    assert term and not trunc and 0 <= r <= 1 and info["task_score"] == r
    assert info["won"] == (r == 1.0) and info["admissible_actions"] == []
    assert "Your score (min 0.0, max 1.0)" in obs


def test_oracle_solves_test_goals():
    env = _env(split="test")
    rewards = [_run_oracle(env, i)["task_score"] for i in env.goal_indices]
    wins = sum(r == 1.0 for r in rewards)
    assert len(rewards) == 500 and wins / len(rewards) >= 0.95


def test_same_seed_same_episode_and_turn_limit():
    a, b = _env(), _env()
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    assert oa == ob and a.goal_index == b.goal_index
    for _ in range(15):
        oa, _, term, trunc, _ = a.step("click[nothing]")
    assert trunc and not term and a.max_turns == 15


@pytest.mark.parametrize(
    "command, reason",
    [
        ("click[nonexistent]", "not clickable"),
        ("search[]", "needs a query"),
        ("search[   ]", "needs a query"),
        ("search[shoes", "expected search"),
        ("click]x[", "expected search"),
        ("[x]", "unknown verb"),
        ("buy now", "expected search"),
        ("jump[x]", "unknown verb"),
    ],
)
def test_bad_commands_are_noops(command, reason):
    env = _env()
    obs0, _ = env.reset(seed=1)
    obs, r, term, trunc, info = env.step(command)
    assert not info["action_valid"] and r == 0 and not term
    assert reason in obs and env.shop.page == "search"


def test_huge_query_and_odd_text():
    env = _env()
    env.reset(seed=1)
    obs, r, term, trunc, info = env.step("search[" + "shampoo " * 131072 + "]")  # 1 MB
    assert not info["action_valid"]  # longer than the command limit: a no-op
    obs, *_, info = env.step('search[AND OR ( title:x " \\ \ud800 ~~ ]')
    assert info["action_valid"] and "Total results" in obs
    env.step("click[back to search]")
    obs, *_, info = env.step("search[" + "red shoes " * 150 + "]")
    assert info["action_valid"] and "Total results: " in obs


def test_strict_format_prompt():
    env = _env(observation_mode="prompt", strict_format=True)
    obs, info = env.reset(seed=2)
    assert "WebShop" in obs and "search[<query>]" in obs and "<action>" in obs
    obs, _, _, _, info = env.step("search[shoes]")
    assert not info["format_valid"] and not info["action_valid"]
    obs, _, _, _, info = env.step("<think>look</think><action>search[shampoo]</action>")
    assert info["action_valid"] and "Total results" in info["anchor"]


def test_make_vec_shares_catalog_and_index():
    vec = gym.make_vec("T2PO/WebShop-v0", num_envs=16, vectorization_mode="sync",
                       observation_mode="raw", strict_format=False, protocol="strict")
    try:
        obs, info = vec.reset(seed=[5] * 16)
        assert len(set(obs)) == 1  # same seed -> same start
        envs = vec.unwrapped.envs if hasattr(vec.unwrapped, "envs") else vec.envs
        cats = {id(e.unwrapped.catalog) for e in envs}
        rets = {id(e.unwrapped.retriever) for e in envs}
        assert len(cats) == 1 and len(rets) == 1
        obs, r, term, trunc, info = vec.step(["search[coffee]"] * 16)
        assert all("Total results" in o for o in obs)
    finally:
        vec.close()


# ---------------------------------------------------------------- real WebShop files
def _write_webshop(tmp_path):
    products = [
        {
            "asin": "B0TEST0001", "name": "Acme Sulfate Free Shampoo 16 oz", "category": "beauty",
            "query": "Shampoo ", "product_category": "Beauty & Personal Care › Hair Care › Shampoos",
            "full_description": "A gentle shampoo.", "small_description": ["Great for dry hair"],
            "pricing": "$12.99", "images": ["x.jpg"],
            "customization_options": {"Size": [{"value": "8 oz", "image": None}, {"value": "16 oz/1 pack", "image": None}]},
        },
        {
            "asin": "B0TEST0002", "name": "Zeta Leather Wallet", "category": "fashion", "query": "wallet",
            "product_category": "Clothing › Accessories › Wallets", "full_description": "Brown wallet.",
            "small_description": "Genuine leather", "pricing": "$20.00 - $30.00", "images": [],
            "customization_options": None,
        },
        {"asin": "nan", "name": "skipped"},
    ]
    attrs = {
        "B0TEST0001": {"attributes": ["sulfate free", "dry hair"], "instruction": "i need a sulfate free shampoo",
                       "instruction_attributes": ["sulfate free"]},
        "B0TEST0002": {"attributes": ["leather"], "instruction": "i want a leather wallet",
                       "instruction_attributes": ["leather"]},
    }
    human = {"B0TEST0001": [{"instruction": "i need shampoo for dry hair.", "instruction_attributes": ["dry hair"],
                             "instruction_options": ["16 oz | 1 pack"]}]}
    (tmp_path / "items_shuffle_1000.json").write_text(json.dumps(products))
    (tmp_path / "items_ins_v2_1000.json").write_text(json.dumps(attrs))
    (tmp_path / "items_human_ins.json").write_text(json.dumps(human))
    return tmp_path


def test_real_webshop_loader(tmp_path, monkeypatch):
    root = _write_webshop(tmp_path)
    cat = load_webshop_catalog(root)
    assert [p.asin for p in cat.products] == ["B0TEST0001", "B0TEST0002"]
    p = cat.by_asin["B0TEST0001"]
    assert p.options == {"size": ("8 oz", "16 oz | 1 pack")} and p.query == "shampoo"
    assert p.price_tag == "$12.99" and cat.prices["B0TEST0001"] == 12.99
    assert 20 <= cat.prices["B0TEST0002"] <= 30
    assert len(cat.goals) == 1 and cat.goals[0].instruction_text.startswith("i need shampoo for dry hair")
    syn = load_webshop_catalog(root, human_goals=False)
    assert {g.asin for g in syn.goals} == {"B0TEST0001", "B0TEST0002"}
    assert len(syn.goals) == 3  # one goal per option combination
    monkeypatch.setenv("WEBSHOP_DATA", str(root))
    env = _env(catalog="webshop", split="all")
    info = _run_oracle(env, 0)
    assert info["won"]


def test_corrupt_catalog_file_names_the_file(tmp_path):
    root = _write_webshop(tmp_path)
    (root / "items_ins_v2_1000.json").write_text('{"B0TEST0001": [')
    with pytest.raises(CatalogError, match="items_ins_v2_1000.json"):
        load_webshop_catalog(root)
    (root / "items_shuffle_1000.json").write_text("\x00\x01 not json")
    with pytest.raises(CatalogError, match="items_shuffle_1000.json"):
        _env(catalog="webshop", data_path=root)
    with pytest.raises(CatalogError, match="WEBSHOP_DATA"):
        load_webshop_catalog(tmp_path / "missing")


def test_products_without_goals_in_the_split_say_what_they_hold(tmp_path):
    root = _write_webshop(tmp_path)
    (root / "items_human_ins.json").write_text(json.dumps({"B0NOTLOADED": [
        {"instruction": "x", "instruction_attributes": ["y"], "instruction_options": []}]}))
    with pytest.raises(ValueError) as e:
        _env(catalog="webshop", data_path=root, num_products=2)
    msg = str(e.value)
    assert "no goals in split 'train'" in msg and "2 products loaded give 0 human goals" in msg
    assert "human_goals=False" in msg and "2 of the 2 products have an instruction" in msg
    assert "num_products=None" in msg
    # the hint works
    assert len(_env(catalog="webshop", data_path=root, human_goals=False).goal_indices) == 3


def test_human_goal_options_keep_their_list_form(tmp_path):
    cat = load_webshop_catalog(_write_webshop(tmp_path))
    (g,) = cat.goals
    assert g.option_list and g.to_webshop_dict()["goal_options"] == ["16 oz | 1 pack"]


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 2.7, "1", True])
def test_bad_goal_index_is_a_clear_error(bad):
    env = _env(num_products=300)
    with pytest.raises(ValueError, match=r"goal_index must be an integer in \[0, "):
        env.reset(options={"goal_index": bad})
