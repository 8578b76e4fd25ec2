"""SFT and the trainer with a chat template that opens the response (reasoning models).

A template ending its generation prompt with ``<think>\\n`` already holds the opening tag, so
an expert response ``<think>...</think><action>...</action>`` must be trained without its own
``<think>``; ``TrainConfig.policy_kwargs`` gives the trainer's policy the same prompt side.
"""

from __future__ import annotations


import pytest

torch = pytest.importorskip("torch")

from optim.config import TrainConfig  # noqa: E402
from optim.models import HFPolicyModel  # noqa: E402
from optim.sft import SFTExample, _encode, strip_response_prefix  # noqa: E402

EXPERT = "<think>the key is on the sofa</think><action>go to sofa 1</action>"


def test_strip_response_prefix_cases():
    assert strip_response_prefix(EXPERT, "") == EXPERT
    # exact prefix
    assert strip_response_prefix("<think>\nx</think>", "<think>\n") == "x</think>"
    # same tag, other whitespace: the expert's own opening tag goes
    assert strip_response_prefix(EXPERT, "<think>\n") == "the key is on the sofa</think><action>go to sofa 1</action>"
    # a prefill that the expert text continues
    assert strip_response_prefix(EXPERT, "<think>the key") == " is on the sofa</think><action>go to sofa 1</action>"
    # a closed empty thought (Qwen3, enable_thinking=False) contradicts a thinking expert
    with pytest.raises(ValueError, match="enable_thinking"):
        strip_response_prefix(EXPERT, "<think>\n\n</think>\n\n")


def test_sft_encoding_has_one_think_tag_with_an_opening_template(tiny, think_tok):
    model, tok = tiny[0], think_tok
    pm = HFPolicyModel(model, tok)
    pm.set_policy_kwargs(chat_template=True)
    prompt_ids, response_ids = _encode(pm, SFTExample(prompt="You are in a room.", response=EXPERT))
    think = tok.convert_tokens_to_ids("<think>")
    # the prompt ends with the template's <think>; the trained response holds none
    assert think in prompt_ids[-3:]
    assert think not in response_ids
    assert tok.decode(prompt_ids + response_ids).count("<think>") == 1
    # without the template the response keeps its own tag
    plain = HFPolicyModel(model, tok)
    plain.set_policy_kwargs(chat_template=False)
    p2, r2 = _encode(plain, SFTExample(prompt="You are in a room.", response=EXPERT))
    assert think not in p2 and r2[0] == think


def test_policy_kwargs_reach_every_policy_of_the_model(tiny, think_tok):
    model, tok = tiny[0], think_tok
    pm = HFPolicyModel(model, tok)
    pm.set_policy_kwargs(chat_template=True, system_prompt="Be brief.")
    policy = pm.make_policy()
    assert policy.response_prefix("hi") == "<think>\n"
    assert "Be brief." in policy.render_prompt("hi")
    # an explicit argument still wins over the model's setting
    assert pm.make_policy(chat_template=False).response_prefix("hi") == ""
    assert TrainConfig().policy_kwargs == {}
