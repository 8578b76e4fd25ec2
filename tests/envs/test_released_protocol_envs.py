"""``protocol="released"`` in ALFWorld and Search-QA: invalid responses are executed and only
flagged, the env's own reply is the observation and the anchor, and the history windows and
prompt fields follow the released code (WillDreamer/T2PO-ICML ``env_manager.py``)."""

from __future__ import annotations

import pytest

from t2po_gym.envs.alfworld.env import ALFWorldEnv
from t2po_gym.envs.searchqa.env import SearchQAEnv


@pytest.fixture(scope="module")
def alf():
    e = ALFWorldEnv()
    yield e
    e.close()


def test_alfworld_released_executes_unformatted_action(alf):
    obs, info = alf.reset(seed=0)
    assert alf.history_length == 2 and "help" not in obs.split("admissible actions")[1]
    # no think block: "LOOK" is lower-cased and executed, but the response is invalid
    _, _, _, _, info = alf.step("<action>LOOK</action>")
    assert info["format_valid"] is False and info["action_valid"] is False
    assert alf._raw_obs.startswith("You are in the middle of a room") and info["anchor"] == alf._raw_obs


def test_alfworld_released_non_admissible_is_nothing_happens(alf):
    alf.reset(seed=0)
    _, _, _, _, info = alf.step("<think>t</think><action>fly to the moon</action>")
    # ALFWorld's validity also needs the command in the admissible list (alfworld projection.py:L60-62)
    assert info["format_valid"] is True and info["action_valid"] is False
    assert alf._raw_obs == "Nothing happens." and info["anchor"] == "Nothing happens."
    obs, _, _, _, info = alf.step("<think>t</think><action>look</action>")
    assert info["action_valid"] and "[Observation 1: '" in obs and "Action 1: 'fly to the moon']" in obs


@pytest.fixture(scope="module")
def sqa():
    return SearchQAEnv(world_passages=1500, world_questions=300, world_seed=3)


def test_search_released_no_think_needed_and_history(sqa):
    obs, info = sqa.reset(seed=1)
    assert sqa.history_length == 4 and sqa.anchor_similarity == 0.9
    assert f"Your question: {info['task']}" in obs
    _, _, _, _, info = sqa.step("<search>founded</search>")
    assert info["format_valid"] and info["action_valid"] and info["anchor"].startswith("<information>")
    # both tags: invalid, the search is still executed
    obs, _, term, _, info = sqa.step("<search>company</search><answer>x</answer>")
    assert not info["action_valid"] and not term and info["anchor"].startswith("<information>")
    assert "Step 1:<search>founded</search> <information>" in obs
    assert "Step 2:<search>company</search> <information>" in obs


def test_search_released_answer_ends_and_scores(sqa):
    sqa.reset(seed=1)
    gold = sqa.question.golden_answers[0]
    _, r, term, _, info = sqa.step(f"I know it. <answer>{gold}</answer>")
    assert term and r == 1.0 and info["won"] and info["action_valid"]


def test_search_released_no_block_does_nothing(sqa):
    sqa.reset(seed=1)
    obs, r, term, trunc, info = sqa.step("no idea")
    assert not info["action_valid"] and r == 0.0 and not term and info["anchor"] == "" and info["turn"] == 1
