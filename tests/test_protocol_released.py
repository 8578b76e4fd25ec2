"""The released T2PO code's projections (``protocol="released"``), case by case.

Each expectation follows the rule of WillDreamer/T2PO-ICML
``agent_system/environments/env_package/{alfworld,webshop}/projection.py`` (one rule for both)
and ``env_package/search/projection.py``.
"""

from __future__ import annotations

import pytest

from t2po_gym.protocol import project_action_response, project_search_response

T = "<think>reasoning</think>"


@pytest.mark.parametrize(
    "response, command, format_valid",
    [
        # valid: think then action, tags in any case, whitespace around (projection.py:L76, L100-106)
        (T + "<action>Go To Fridge 1</action>", "go to fridge 1", True),
        ("  <THINK>x</Think>\n<Action> click[Buy Now] </ACTION>\n", "click[buy now]", True),
        # no think: the action is still extracted and executed, lower-cased, but invalid (L109-116)
        ("<action>Look</action>", "look", False),
        # two action blocks: the first is executed, invalid (counts must be 1)
        (T + "<action>look</action><action>inventory</action>", "look", False),
        # CJK text makes a well-formed response invalid (L87, L95)
        ("<think>我想</think><action>look</action>", "look", False),
        # text after the action block breaks the whole-response shape
        (T + "<action>look</action> thanks", "look", False),
        # two think blocks
        (T + T + "<action>look</action>", "look", False),
        # no action block at all: the last 30 characters, unchanged (case kept), are executed (L85, L118)
        ("I would like to Go To The Fridge number 1 right now", " The Fridge number 1 right now", False),
        ("short", "short", False),
        # an unclosed action tag counts as no block
        (T + "<action>look", (T + "<action>look")[-30:], False),
    ],
)
def test_action_projection(response, command, format_valid):
    p = project_action_response(response)
    assert p.command == command
    assert p.format_valid is format_valid and p.valid is format_valid


def test_action_projection_tail_is_exactly_30_characters():
    text = "x" * 10 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
    assert project_action_response(text).command == "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"


@pytest.mark.parametrize(
    "response, command, valid",
    [
        # no <think> needed (search/projection.py:L60-88); the query keeps its case, stripped
        ("<search> Who founded Acme? </search>", "<search>Who founded Acme?</search>", True),
        (T + "<answer>Lisbon</answer>", "<answer>Lisbon</answer>", True),
        ("<SEARCH>q</SEARCH>", "<search>q</search>", True),
        # both tags: the search is executed, the response is invalid (L80-83)
        ("<search>q</search><answer>a</answer>", "<search>q</search>", False),
        # answer first then search: cut after the first </search>; the first search block wins
        ("<answer>a</answer><search>q</search>", "<search>q</search>", False),
        # the same tag twice: the first block, invalid (L85-86)
        ("<search>a</search><search>b</search>", "<search>a</search>", False),
        # neither block: nothing to execute, invalid (L72-74)
        ("I think the answer is Lisbon", "", False),
        ("<search>unclosed", "", False),
        # CJK is no concern of the search projection
        ("<search>里斯本</search>", "<search>里斯本</search>", True),
    ],
)
def test_search_projection(response, command, valid):
    p = project_search_response(response)
    assert p.command == command and p.valid is valid and p.format_valid is valid


def test_projections_reject_non_str():
    with pytest.raises(TypeError):
        project_action_response(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        project_search_response(None)  # type: ignore[arg-type]
