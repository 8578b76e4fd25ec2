"""WebShop's text observations as its original text env prints them, and the released protocol.

The golden pages below are written out by hand from princeton-nlp/WebShop's templates
(``web_agent_site/templates/*.html``) as ``WebAgentTextEnv`` in ``observation_mode="text"``
converts them: the visible, non-empty text nodes, stripped, joined by `` [SEP] ``
(``web_agent_site/envs/web_agent_text_env.py:L210-216``).
"""

from __future__ import annotations

import pytest

from t2po_gym.envs.webshop.catalog import Catalog, Goal, Product
from t2po_gym.envs.webshop.env import WebShopEnv, parse_webshop_action
from t2po_gym.envs.webshop.shop import Shop

INSTR = "i need a shampoo"
HEAD = f"Instruction: [SEP] {INSTR} [SEP] Back to Search"


def _product(i: int, **kw) -> Product:
    base = dict(
        asin=f"B{i:09d}",
        name=f"Acme Shampoo {i}",
        category="beauty",
        query="shampoo",
        product_category="Beauty › Hair Care",
        pricing=(11.8,),
        price_tag="$11.8",
        options={},
        attributes=("sulfate free",),
        description="Nice.",
        bullet_points=("Gentle", "Vegan"),
        rating="4.5",  # WebShop never loads ratings: the page must still say N.A.
    )
    base.update(kw)
    return Product(**base)


@pytest.fixture
def shop() -> Shop:
    products = [_product(1, name="Acme Shampoo", options={"size": ("8 oz", "16 oz"), "scent": ("lavender",)})]
    products += [_product(i) for i in range(2, 13)]
    goal = Goal(products[0].asin, "beauty", "shampoo", "Acme Shampoo", "Beauty › Hair Care", INSTR,
                ("sulfate free",), {"size": "16 oz"}, 20.0)
    cat = Catalog(products, [goal], {p.asin: 11.8 for p in products}, source="test")
    s = Shop(cat, lambda q: [p.asin for p in products])
    s.start(goal)
    return s


def test_search_page(shop):
    # search_page.html: logo, instruction, the search button's label
    assert shop.text() == f"WebShop [SEP] Instruction: [SEP] {INSTR} [SEP] Search"


def test_results_first_and_last_page(shop):
    shop.search("shampoo")
    # results_page.html: page 1 has no "< Prev" but "Next >"; prices as Python prints the float
    items = " [SEP] ".join(
        f"B{i:09d} [SEP] {'Acme Shampoo' if i == 1 else f'Acme Shampoo {i}'} [SEP] $11.8" for i in range(1, 11))
    assert shop.text() == f"{HEAD} [SEP] Page 1 (Total results: 12) [SEP] Next > [SEP] {items}"
    assert list(shop.clickables())[:2] == ["back to search", "next >"]
    shop.click("next >")
    # the last page still shows "Next >" (the template's else-branch only differs on page 1)
    assert shop.text() == (f"{HEAD} [SEP] Page 2 (Total results: 12) [SEP] < Prev [SEP] Next > [SEP] "
                           "B000000011 [SEP] Acme Shampoo 11 [SEP] $11.8 [SEP] B000000012 [SEP] Acme Shampoo 12 [SEP] $11.8")
    shop.click("next >")  # past the end: an empty page, as WebShop renders it
    assert shop.text() == f"{HEAD} [SEP] Page 3 (Total results: 12) [SEP] < Prev [SEP] Next >"


def test_item_page_and_sub_pages(shop):
    shop.search("shampoo")
    shop.click("b000000001")
    item = (f"{HEAD} [SEP] < Prev [SEP] size [SEP] 8 oz [SEP] 16 oz [SEP] scent [SEP] lavender [SEP] "
            "Acme Shampoo [SEP] Price: $11.8 [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] "
            "Reviews [SEP] Buy Now")
    assert shop.text() == item
    # the text env's clickables: buttons, then options (web_agent_text_env.py:L138-144)
    assert list(shop.clickables()) == ["back to search", "< prev", "description", "features", "reviews",
                                       "buy now", "8 oz", "16 oz", "lavender"]
    shop.click("description")
    assert shop.text() == f"{HEAD} [SEP] < Prev [SEP] Nice."
    shop.click("< prev")
    shop.click("features")
    assert shop.text() == f"{HEAD} [SEP] < Prev [SEP] Gentle [SEP] Vegan"
    shop.click("< prev")
    shop.click("reviews")  # WebShop never loads reviews: the page is empty
    assert shop.text() == f"{HEAD} [SEP] < Prev"
    shop.click("< prev")
    assert shop.text() == item


def test_attributes_page(shop):
    shop.show_attrs = True
    shop.search("shampoo")
    shop.click("b000000002")
    assert shop.text().endswith("Description [SEP] Features [SEP] Reviews [SEP] Attributes [SEP] Buy Now")
    shop.click("attributes")
    # attributes_page.html: the attributes, then category, query and product category
    assert shop.text() == f"{HEAD} [SEP] < Prev [SEP] sulfate free [SEP] beauty [SEP] shampoo [SEP] Beauty › Hair Care"


def test_webshop_parse_action():
    # engine.py:L117-128: greedy name, the last [...] pair, trailing text ignored
    assert parse_webshop_action("click[buy now]") == ("click", "buy now")
    assert parse_webshop_action("search[red [big] shoes]") == ("search[red ", "big] shoes")
    assert parse_webshop_action("search [shoes]") == ("search ", "shoes")
    assert parse_webshop_action("click[a] please") == ("click", "a")
    assert parse_webshop_action("look") == ("look", None)


# --------------------------------------------------------------------------- released protocol
@pytest.fixture(scope="module")
def env():
    e = WebShopEnv(num_products=300)
    yield e
    e.close()


def test_released_reset_view_and_actions(env):
    obs, info = env.reset(seed=0)
    # env_manager.py:L440-453: the parts after the instruction, quoted
    assert info["anchor"] == "'Search'"
    assert info["admissible_actions"] == ["search[<your query>]", "click[search]"]
    assert f"Your task is to: {info['task']}." in obs and "'search[<your query>]',\n'click[search]',\n]" in obs
    assert env.history_length == 2


def test_released_invalid_response_is_executed_and_flagged(env):
    env.reset(seed=0)
    # no think block: invalid, but the first action block is executed, lower-cased
    obs, r, term, trunc, info = env.step("<action>Search[Hair Shampoo]</action>")
    assert info["format_valid"] is False and info["action_valid"] is False
    assert info["anchor"].startswith("'Back to Search' [SEP] 'Page 1 (Total results: ")
    assert env.shop.keywords == "hair shampoo"
    page = info["anchor"]
    # well formed but not a clickable: valid (WebShop's validity is the format), page unchanged
    obs, r, term, trunc, info = env.step("<think>hm</think><action>click[no such button]</action>")
    assert info["format_valid"] and info["action_valid"] and info["anchor"] == page and r == 0.0
    # click[search] is listed on the search page but does nothing (web_agent_text_env.py:L109)
    env.step("<think>t</think><action>click[back to search]</action>")
    _, _, _, _, info = env.step("<think>t</think><action>click[search]</action>")
    assert info["anchor"] == "'Search'" and info["action_valid"]


def test_released_prompt_history_window(env):
    obs, info = env.reset(seed=0)
    env.step("<think>t</think><action>search[shampoo]</action>")
    env.step("<think>t</think><action>click[next >]</action>")
    obs, *_ = env.step("<think>t</think><action>click[< prev]</action>")
    # the last 2 steps, observation before the action, executed command (memory.py SimpleMemory.fetch)
    assert "Before this step you have taken 3 step(s). Your most recent 2 observations" in obs
    assert "[Observation 2: ''Back to Search' [SEP] 'Page 1 (Total" in obs
    assert "Action 2: 'click[next >]']\n[Observation 3: ''Back to Search' [SEP] 'Page 2 (Total" in obs
    assert "Action 1:" not in obs and "You are now at step 4" in obs


def test_prompt_template_placeholders():
    e = WebShopEnv(num_products=300, prompt_template=("T={task_description} O={current_observation}",
                                                      "S={step_count} H={history_length} C={current_step} A=[{available_actions}]"))
    obs, info = e.reset(seed=0)
    assert obs == f"T={info['task']} O='Search'"
    obs, *_ = e.step("<think>t</think><action>search[shampoo]</action>")
    assert obs.startswith("S=1 H=1 C=2 A=['click[back to search]',")
    with pytest.raises(ValueError, match=r"unknown placeholder \{task\}"):
        WebShopEnv(num_products=300, prompt_template="{task}")
    with pytest.raises(TypeError, match="prompt_template"):
        WebShopEnv(num_products=300, prompt_template=3)


def test_strict_protocol_keeps_the_project_rule():
    e = WebShopEnv(num_products=300, protocol="strict", observation_mode="raw")
    e.reset(seed=0)
    obs, _, _, _, info = e.step("<action>search[shampoo]</action>")
    assert obs.startswith("Invalid response") and not info["action_valid"]
    with pytest.raises(ValueError, match="protocol must be one of"):
        WebShopEnv(num_products=300, protocol="paper")


def test_lenient_format_under_released_protocol_warns():
    with pytest.warns(UserWarning, match="strict_format=False has no effect with protocol='released'"):
        e = WebShopEnv(num_products=300, strict_format=False, observation_mode="raw")
    e.reset(seed=0)
    # a bare command: the released rule executes its last 30 characters, and flags it invalid
    _, _, _, _, info = e.step("search[shampoo]")
    assert info["action_valid"] is False and e.shop.page == "results"
