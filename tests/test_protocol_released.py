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


def _released_action_rule(text: str) -> tuple[str, bool]:
    """The released rule written as its regexes (projection.py:L76-120), for short inputs."""
    import re

    flags = re.IGNORECASE | re.DOTALL
    m = re.match(r"^\s*<think>(.*?)</think>\s*<action>(.*?)</action>\s*$", text, flags)
    count = lambda pat: len(re.findall(pat, text, flags=re.IGNORECASE))  # noqa: E731
    ok = (bool(m) and not re.search(r"[\u4e00-\u9fff]", text)
          and count(r"<\s*think\s*>") == count(r"</\s*think\s*>") == 1
          and count(r"<\s*action\s*>") == count(r"</\s*action\s*>") == 1)
    if ok:
        return m.group(2).strip().lower(), True
    m2 = re.search(r"<\s*action\s*>(.*?)</\s*action\s*>", text, flags)
    if m2:
        return m2.group(1).strip().lower(), False
    return (text[-30:] if len(text) > 30 else text), False


def _released_search_rule(text: str) -> tuple[str, bool]:
    import re

    cut = text
    if "</search>" in cut:
        cut = cut.split("</search>", 1)[0] + "</search>"
    elif "</answer>" in cut:
        cut = cut.split("</answer>", 1)[0] + "</answer>"
    flags = re.IGNORECASE | re.DOTALL
    m = re.search(r"<search>(.*?)</search>", cut, flags)
    valid = True
    if m:
        out = f"<search>{m.group(1).strip()}</search>"
    else:
        m = re.search(r"<answer>(.*?)</answer>", cut, flags)
        out, valid = (f"<answer>{m.group(1).strip()}</answer>", True) if m else ("", False)
    ns, na = len(re.findall("<search>", text, re.IGNORECASE)), len(re.findall("<answer>", text, re.IGNORECASE))
    if (ns and na) or ns > 1 or na > 1:
        valid = False
    return out, valid


def test_linear_projections_agree_with_the_released_regexes():
    import random

    rng = random.Random(0)
    pieces = ["<think>", "</think>", "<action>", "</action>", "< action >", "</ACTION >", "<Think>",
              "<search>", "</search>", "<answer>", "</Answer>", " ", "\n", "go", "LOOK", "中", "x"]
    for _ in range(4000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        p = project_action_response(text)
        assert (p.command, p.valid) == _released_action_rule(text), text
        q = project_search_response(text)
        assert (q.command, q.valid) == _released_search_rule(text), text


@pytest.mark.parametrize("text", [
    "<think>" + "</think><action>" * 20000,   # quadratic for the released regex order
    "<action>" * 100000,                      # quadratic for a lazy block regex without a close tag
    "<search>" * 100000 + "</answer>",
])
def test_adversarial_responses_are_handled(text):
    assert project_action_response(text).valid is False
    assert project_search_response(text).valid is False
