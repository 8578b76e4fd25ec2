"""VLLMPolicy without vLLM: the lazy-import error, and its TTI logits-processor state machine.

vLLM cannot be installed here, so VLLMPolicy itself is untested; the state machine it
runs inside vLLM's sampler is driven here with fake logits, step by step the way the
engine calls a request-level logits processor, and must decide exactly like HFPolicy.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from t2po_gym.policies.base import FORCED_CLOSE_TEXT, SamplingConfig  # noqa: E402
from t2po_gym.policies.vllm_backend import VLLM_MISSING, TTILogitsState, VLLMPolicy  # noqa: E402
from t2po_gym.wrappers.tti import ThinkingIntervention, TTIConfig  # noqa: E402

PROMPT = "task: go to the fridge <think>"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_missing_vllm_names_the_alternatives():
    with pytest.raises(ImportError) as e:
        VLLMPolicy("Qwen/Qwen3-0.6B")
    assert str(e.value) == VLLM_MISSING and "OpenAIPolicy" in VLLM_MISSING


def drive(state: TTILogitsState, script, steps: int, vocab: int) -> list[int]:
    """The engine's loop for one request: processor on the raw logits, then greedy."""
    ids: list[int] = []
    for s in range(steps):
        logits = torch.zeros(vocab)
        tok, sharp = script(0, s)
        logits[tok] = sharp
        out = state(ids, logits)
        ids.append(int(out.argmax()))
    return ids


def make_state(tok, cfg, inside=True, full_signal=False):
    from t2po_gym.wrappers.tti import ThinkController

    enc = lambda t: tok.encode(t, add_special_tokens=False)  # noqa: E731
    return TTILogitsState(ThinkController(cfg), enc(FORCED_CLOSE_TEXT), enc("<think>"), enc("</think>"),
                          inside=inside, vocab_size=len(tok), full_signal=full_signal)


def varying_then_flat(a, n_vary):
    pattern = [0.5, 6.0, 1.0, 5.0, 2.0, 4.0]
    return lambda row, step: (a, pattern[step % 6] if step < n_vary else 3.0)


@pytest.mark.parametrize("rule", ["window", "patience"])
def test_state_machine_decides_like_hfpolicy(scripted, tiny, rule):
    _, tok = tiny
    a = tok.encode("a")[0]
    script = varying_then_flat(a, 12)
    cfg = TTIConfig(rule=rule, window=4, epsilon=0.01, patience=5, patience_threshold=1e-3,
                    min_think_tokens=3, max_think_tokens=None)
    want = ThinkingIntervention(scripted(script, signal="paper"), cfg).generate(
        [PROMPT], SamplingConfig(temperature=0, max_new_tokens=40, stop=()))[0]
    state = make_state(tok, cfg, full_signal=True)
    ids = drive(state, script, 40, len(tok))
    assert want.intervened and state.fired_at == want.intervention_position > 12
    assert ids == want.token_ids
    assert state.think_tokens == want.think_tokens
    np.testing.assert_allclose(state.signal, want.signal, atol=1e-6)


def test_forces_the_tag_once_then_samples_and_leaves_closed_thoughts_alone(tiny):
    _, tok = tiny
    a, close = tok.encode("a")[0], tok.convert_tokens_to_ids("</think>")
    flat = lambda row, step: (a, 3.0)  # noqa: E731
    cfg = TTIConfig(window=2, epsilon=0.01, min_think_tokens=5, max_think_tokens=None)
    state = make_state(tok, cfg)
    ids = drive(state, flat, 30, len(tok))
    forced = tok.encode(FORCED_CLOSE_TEXT, add_special_tokens=False)
    assert state.fired_at == 5 and ids[5 : 5 + len(forced)] == forced
    assert ids[5 + len(forced) :] == [a] * (30 - 5 - len(forced))  # normal sampling resumed
    assert state.think_tokens == 5 and state.closed
    assert len(state.signal) == 6  # TTI alone: M_t only while the thought was open
    # a model that closes its thought itself at step 3 is never forced
    closes = lambda row, step: (close if step == 3 else a, 8.0 if step == 3 else 3.0)  # noqa: E731
    state = make_state(tok, TTIConfig(window=1, epsilon=0.5, min_think_tokens=4, max_think_tokens=None))
    ids = drive(state, closes, 20, len(tok))
    assert state.fired_at == -1 and state.closed and state.think_tokens == 3 and ids[3] == close


def test_thought_opened_by_the_model_and_the_cap(tiny):
    _, tok = tiny
    a, open_ = tok.encode("a")[0], tok.convert_tokens_to_ids("<think>")
    vary = lambda row, step: (open_ if step == 0 else a, 9.0 if step == 0 else (6.0 if step % 2 else 0.5))  # noqa: E731
    state = make_state(tok, TTIConfig(window=2, epsilon=1e-9, min_think_tokens=0, max_think_tokens=7), inside=False)
    ids = drive(state, vary, 25, len(tok))
    assert ids[0] == open_ and state.fired_at == 1 + 7 and state.think_tokens == 7  # the cap fired


def test_bad_state_input(tiny):
    _, tok = tiny
    from t2po_gym.wrappers.tti import ThinkController

    with pytest.raises(ValueError, match="forced_ids"):
        TTILogitsState(ThinkController(TTIConfig()), [], [1], [2])
