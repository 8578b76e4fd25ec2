"""TTI driven by a scripted model: it fires exactly when its rule says, per sequence."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from t2po_gym.policies.base import FORCED_CLOSE_TEXT, SamplingConfig  # noqa: E402
from t2po_gym import _fused  # noqa: E402
from t2po_gym.wrappers.tti import ThinkController, ThinkingIntervention, TTIConfig  # noqa: E402
from t2po_gym.uncertainty import paper_signal  # noqa: E402

GREEDY = SamplingConfig(temperature=0.0, max_new_tokens=60, stop=("</action>",))
PROMPT = "task: go to the fridge <think>"  # the prompt opens the thought


@pytest.fixture(autouse=True, params=["numpy", "numba"])
def kernel_path(request, monkeypatch):
    """Every test runs on both per-step paths: numpy, and the compiled kernels (when numba is installed)."""
    if request.param == "numba":
        if _fused.kernels() is None:
            pytest.skip("numba is not installed")
    else:
        monkeypatch.setattr(_fused, "kernels", lambda: None)
    return request.param


def word(tok) -> int:
    return tok.encode("a")[0]


def varying_then_flat(n_vary: int, a: int):
    pattern = [0.5, 6.0, 1.0, 5.0, 2.0, 4.0]

    def script(row, step):
        return a, (pattern[step % len(pattern)] if step < n_vary else 3.0)

    return script


def always_varying(a: int):
    return lambda row, step: (a, 6.0 if step % 2 else 0.5)


def expected_window_fire(m: np.ndarray, window: int, eps: float, lmin: int) -> int:
    """Reference loop: index (0-based think token) where the window rule fires, or -1."""
    d = [np.inf] + [abs(m[t] - m[t - 1]) for t in range(1, len(m))]
    for t in range(len(m)):
        count = t + 1
        if count - 1 < lmin or count < window + 2:
            continue
        if np.mean(d[t - window : t + 1]) < eps:
            return t
    return -1


def scripted_signal(model_script, steps: int, vocab: int) -> np.ndarray:
    logits = torch.zeros(steps, vocab)
    for s in range(steps):
        tok, sharp = model_script(0, s)
        logits[s, tok] = sharp
    return paper_signal(torch.log_softmax(logits, -1)).numpy()


def test_window_rule_fires_exactly_when_rule_says(scripted, tiny):
    _, tok = tiny
    script = varying_then_flat(12, word(tok))
    cfg = TTIConfig(window=4, epsilon=0.01, min_think_tokens=3, max_think_tokens=None)
    g = ThinkingIntervention(scripted(script, signal="paper"), cfg).generate([PROMPT], GREEDY)[0]
    m = scripted_signal(script, 60, len(tok))
    want = expected_window_fire(m, 4, 0.01, 3)
    assert want > 12  # the flat part is what triggers it
    assert g.intervened and g.intervention_position == want
    assert g.think_tokens == want
    forced = tok.encode(FORCED_CLOSE_TEXT, add_special_tokens=False)
    assert g.token_ids[want : want + len(forced)] == forced
    assert g.forced_mask == [0] * want + [1] * len(forced) + [0] * (len(g.token_ids) - want - len(forced))
    assert "</think>\n<action>" in g.text
    assert len(g.signal) == len(g.token_ids) == 60
    np.testing.assert_allclose(g.signal, m, atol=1e-5)  # float32 stats, float64 min-max
    # TTI alone (no signal asked for): the same decision, the signal is not returned
    g2 = ThinkingIntervention(scripted(script), cfg).generate([PROMPT], GREEDY)[0]
    assert g2.token_ids == g.token_ids and g2.intervention_position == want and g2.signal == []


def test_not_before_min_think_tokens(scripted, tiny):
    _, tok = tiny
    flat = lambda row, step: (word(tok), 3.0)  # noqa: E731
    g = ThinkingIntervention(scripted(flat), window=2, epsilon=0.01, min_think_tokens=20).generate([PROMPT], GREEDY)[0]
    assert g.intervened and g.intervention_position == 20 and g.think_tokens == 20


def test_cap_fires_when_the_rule_never_does(scripted, tiny):
    _, tok = tiny
    cfg = TTIConfig(window=2, epsilon=1e-6, min_think_tokens=0, max_think_tokens=10)
    g = ThinkingIntervention(scripted(always_varying(word(tok))), cfg).generate([PROMPT], GREEDY)[0]
    assert g.intervened and g.intervention_position == 10 and g.think_tokens == 10
    off = ThinkingIntervention(scripted(always_varying(word(tok))), cfg, max_think_tokens=None)
    assert not off.generate([PROMPT], GREEDY)[0].intervened


def test_patience_rule(scripted, tiny):
    _, tok = tiny
    flat = lambda row, step: (word(tok), 3.0)  # noqa: E731
    cfg = TTIConfig(rule="patience", patience=5, min_think_tokens=0, max_think_tokens=None)
    g = ThinkingIntervention(scripted(flat), cfg).generate([PROMPT], GREEDY)[0]
    # D is defined from the 2nd think token; 5 flat D's -> the 6th think token is replaced
    assert g.intervention_position == 5


def test_only_the_stalled_sequence_fires_others_untouched(scripted, tiny):
    _, tok = tiny
    a = word(tok)
    flat_then = varying_then_flat(0, a)
    vary = always_varying(a)

    def script(row, step):
        return flat_then(row, step) if row == 1 else vary(row, step)

    cfg = TTIConfig(window=3, epsilon=0.01, min_think_tokens=4, max_think_tokens=None)
    prompts = [PROMPT, PROMPT, "another task, longer prompt <think>"]
    with_tti = ThinkingIntervention(scripted(script), cfg).generate(prompts, GREEDY)
    plain = scripted(script).generate(prompts, GREEDY)
    assert [g.intervened for g in with_tti] == [False, True, False]
    for b in (0, 2):
        assert with_tti[b].token_ids == plain[b].token_ids
        assert with_tti[b].logprobs == plain[b].logprobs
        assert with_tti[b].think_tokens == plain[b].think_tokens == 60
        assert sum(with_tti[b].forced_mask) == 0


def test_rows_skipped_after_their_thought_match_full_signal(scripted, tiny):
    """TTI alone computes M_t only for rows still thinking: the decisions equal the full-signal run."""
    _, tok = tiny
    a, close = word(tok), tok.convert_tokens_to_ids("</think>")
    vary = always_varying(a)
    late = varying_then_flat(20, a)

    def script(row, step):
        if row == 0 and step == 3:  # row 0 closes its thought early by itself
            return close, 8.0
        return late(row, step) if row == 1 else vary(row, step)

    cfg = TTIConfig(window=3, epsilon=0.01, min_think_tokens=4, max_think_tokens=None)
    prompts = [PROMPT, PROMPT, "no thought yet"]
    lean = ThinkingIntervention(scripted(script), cfg).generate(prompts, GREEDY)
    full = ThinkingIntervention(scripted(script, signal="paper"), cfg).generate(prompts, GREEDY)
    assert [g.intervened for g in lean] == [False, True, False]
    assert lean[0].think_tokens == 3
    for x, y in zip(lean, full):
        assert (x.token_ids, x.intervention_position, x.logprobs) == (y.token_ids, y.intervention_position, y.logprobs)
    assert all(len(g.signal) == len(g.token_ids) for g in full) and not any(g.signal for g in lean)


def test_fires_at_most_once(scripted, tiny):
    _, tok = tiny
    flat = lambda row, step: (word(tok), 3.0)  # noqa: E731
    g = ThinkingIntervention(scripted(flat), window=1, epsilon=0.5, min_think_tokens=2).generate([PROMPT], GREEDY)[0]
    n_forced = len(tok.encode(FORCED_CLOSE_TEXT, add_special_tokens=False))
    assert sum(g.forced_mask) == n_forced
    assert len(g.token_ids) == 60  # sampling resumed after the forced tokens


def test_no_intervention_outside_think(scripted, tiny):
    _, tok = tiny
    flat = lambda row, step: (word(tok), 3.0)  # noqa: E731
    g = ThinkingIntervention(scripted(flat), window=1, epsilon=0.5, min_think_tokens=0).generate(["no thought here"], GREEDY)[0]
    assert not g.intervened and g.think_tokens == 0


def test_tag_without_special_token_is_forced_as_token_sequence(tiny_plain_tags):
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.policies.scripted import ScriptedLM

    _, tok = tiny_plain_tags
    assert "</think>" not in tok.get_vocab()
    forced = tok.encode(FORCED_CLOSE_TEXT, add_special_tokens=False)
    assert len(forced) > 3
    flat = lambda row, step: (word(tok), 3.0)  # noqa: E731
    policy = HFPolicy(ScriptedLM(flat, len(tok)), tok, chat_template=False)
    g = ThinkingIntervention(policy, window=2, epsilon=0.01, min_think_tokens=6).generate([PROMPT], GREEDY)[0]
    assert g.intervened and g.intervention_position == 6
    assert g.token_ids[6 : 6 + len(forced)] == forced
    assert sum(g.forced_mask) == len(forced)
    assert g.text.count("</think>\n<action>") == 1
    assert g.think_tokens == 6


def test_controller_is_per_sequence_state():
    c = ThinkController(TTIConfig(window=1, epsilon=0.1, min_think_tokens=0, max_think_tokens=None))
    c.begin(2)
    thinking = np.array([True, True])
    out = [c.step(np.array([0.5, 0.5]), thinking, np.array([1, 1]))]
    out.append(c.step(np.array([0.5, 0.9]), thinking, np.array([2, 2])))
    out.append(c.step(np.array([0.5, 0.1]), thinking, np.array([3, 3])))
    assert [o.tolist() for o in out] == [[False, False], [False, False], [True, False]]
    # once fired, never again
    assert not c.step(np.array([0.5, 0.1]), thinking, np.array([4, 4]))[0]


def test_bad_config():
    with pytest.raises(ValueError, match="rule"):
        TTIConfig(rule="sometimes")
    with pytest.raises(ValueError, match="max_think_tokens"):
        TTIConfig(min_think_tokens=50, max_think_tokens=10)


@pytest.mark.parametrize("rule", ["window", "patience"])
def test_compiled_rule_decides_like_numpy_rule(rule, kernel_path):
    if kernel_path == "numpy":
        pytest.skip("compares the two paths once")
    rng = np.random.default_rng(0)
    cfg = TTIConfig(rule=rule, window=3, epsilon=0.05, min_think_tokens=3, max_think_tokens=40, patience=3,
                    patience_threshold=0.02)
    fast, slow = ThinkController(cfg, fused=True), ThinkController(cfg, fused=False)
    fast.begin(16)
    slow.begin(16)
    assert fast._kernel is not None and slow._kernel is None
    count = np.zeros(16, np.int64)
    thinking = np.ones(16, bool)
    thinking[:3] = False  # rows that open their thought later
    fired = 0
    for t in range(60):
        m = np.round(rng.random(16) * (0.1 if t > 10 else 1.0), 3)  # flat enough to fire after t = 10
        count += thinking
        a, b = fast.step(m, thinking.copy(), count), slow.step(m, thinking.copy(), count)
        np.testing.assert_array_equal(a, b)
        fired += int(a.sum())
        thinking &= ~a
        if t == 5:
            thinking[:3] = True
    assert fired == 16  # every row fired once (some by the rule, the rest at the cap)
    np.testing.assert_array_equal(fast.fired, slow.fired)
    np.testing.assert_allclose(fast.prev, slow.prev)


# ------------------------------------------------------------------ mode="released"
# ThinkLogitsProcessor, WillDreamer/T2PO-ICML recipe/world_agent/workers/rollout/vllm_rollout_spmd.py


def released_fire_step(tokens, scores, think_open, think_close, prompt_opens=False, patience=20, eps=1e-4, cap=450):
    """The released processor transcribed as a loop over decode steps: the step it forces, or -1.

    ``tokens[t]`` is what the model emits at step t (greedy, scripted), ``scores[t]`` the
    reference certainty of step t's logits. Per-sequence state, fresh at step 0.
    """
    count, last = 0, None
    for t in range(len(tokens)):
        ids = list(tokens[:t])  # vLLM V0 passes the generated ids only
        if last is None or abs(scores[t] - last) > eps:  # L202-205
            count = 0
        else:
            count += 1
        last = scores[t]
        opens = [i for i, x in enumerate(ids) if x == think_open]
        closes = [i for i, x in enumerate(ids) if x == think_close]
        pos_open = opens[-1] if opens else (-1 if prompt_opens else None)
        pos_close = closes[-1] if closes else -2
        in_think = pos_open is not None and pos_close < pos_open
        if in_think and cap is not None and len(ids) - pos_open - 1 >= cap:  # L212-216
            return t
        if count >= patience:  # L218-226
            if in_think:
                return t
            count = 0
    return -1


def reference_scores(script, steps, vocab):
    from t2po_gym.uncertainty import reference_signal

    logits = torch.zeros(steps, vocab)
    for s in range(steps):
        tok, sharp = script(0, s)
        logits[s, tok] = sharp
    return reference_signal(torch.log_softmax(logits, -1)).numpy()


@pytest.mark.parametrize("open_at", [10, 25])
def test_released_counter_runs_over_all_generated_tokens(scripted, tiny, open_at):
    """The model writes <think> itself at step ``open_at`` while its certainty is flat: the
    released counter has been running since step 1 (and was reset at 20 outside the thought
    when open_at = 25), so it fires at step 20 / 40, not 20 think tokens after <think>."""
    _, tok = tiny
    a, open_id, close_id = word(tok), tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")

    def script(row, step):
        return (open_id if step == open_at else a), 3.0

    n = 60
    toks = [script(0, s)[0] for s in range(n)]
    want = released_fire_step(toks, reference_scores(script, n, len(tok)), open_id, close_id)
    assert want == {10: 20, 25: 40}[open_at]
    g = ThinkingIntervention(scripted(script), mode="released").generate(["task: go to the fridge"], GREEDY)[0]
    assert g.intervened and g.intervention_position == want
    assert g.token_ids[want] == close_id and g.token_ids[want + 1] == a  # </think> alone, then the model
    assert g.forced_mask == [0] * len(g.token_ids)  # trained on
    assert g.logprobs[want] < -5  # the model's own log-prob of the forced token (it never picks it)
    # the project's patience rule counts think tokens only: later
    old = ThinkingIntervention(scripted(script), rule="patience", patience=20, min_think_tokens=0, max_think_tokens=None,
                               signal="reference").generate(["task: go to the fridge"], GREEDY)[0]
    assert old.intervention_position > want


def test_released_with_the_prompt_opening_think(scripted, tiny):
    _, tok = tiny
    a, open_id, close_id = word(tok), tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")
    flat = lambda row, step: (a, 3.0)  # noqa: E731
    toks = [a] * 60
    want = released_fire_step(toks, reference_scores(flat, 60, len(tok)), open_id, close_id, prompt_opens=True)
    g = ThinkingIntervention(scripted(flat), mode="released").generate([PROMPT], GREEDY)[0]
    assert want == 20 and g.intervention_position == want and g.token_ids[want] == close_id


def test_released_cap_counts_tokens_since_think(scripted, tiny):
    """L212-216: forced once the tokens after <think> reach num_think_tokens, however varied."""
    _, tok = tiny
    a, open_id, close_id = word(tok), tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")
    vary = always_varying(a)

    def script(row, step):
        return (open_id, 6.0) if step == 3 else vary(row, step)

    toks = [script(0, s)[0] for s in range(60)]
    want = released_fire_step(toks, reference_scores(script, 60, len(tok)), open_id, close_id, cap=10)
    g = ThinkingIntervention(scripted(script), mode="released", max_think_tokens=10).generate(["task"], GREEDY)[0]
    assert want == 14 and g.intervention_position == 14 and g.token_ids[14] == close_id


def test_released_state_is_per_sequence_and_per_call(scripted, tiny):
    """The released processor shares one counter (vLLM calls it per row with batch 1); ours is
    per sequence: a varying row never fires because its neighbour stalls, and a second call
    starts from 0."""
    _, tok = tiny
    a = word(tok)
    vary = always_varying(a)

    def script(row, step):
        return (a, 3.0) if row == 0 else vary(row, step)

    tti = ThinkingIntervention(scripted(script), mode="released", max_think_tokens=None)
    for _ in range(2):
        gens = tti.generate([PROMPT, PROMPT], GREEDY)
        assert [g.intervened for g in gens] == [True, False]
        assert gens[0].intervention_position == 20


def test_released_config_and_controller_unit():
    from t2po_gym.wrappers.tti import ReleasedThinkController

    cfg = TTIConfig(mode="released", signal="paper", rule="window", min_think_tokens=9, forced_text="x")
    assert (cfg.rule, cfg.signal, cfg.min_think_tokens, cfg.forced_text) == ("patience", "reference", 0, "</think>")
    c = ReleasedThinkController(TTIConfig(mode="released", patience=2, max_think_tokens=None))
    c.begin(1)
    out = [bool(c.step(np.array([0.5]), np.array([th]), np.array([1]))[0]) for th in (False, False, False, True, True)]
    # counts 0, 1, 2 (reset outside the thought), 0+1 = 1, 2 -> fires inside
    assert out == [False, False, False, False, True]
    with pytest.raises(ValueError, match="mode"):
        TTIConfig(mode="vllm")


def test_epsilon_for_rate_gives_the_asked_fire_rate_on_recorded_signals(tiny, kernel_path):
    """Calibrate on think-token signals recorded from the tiny model, then replay the window
    rule's own controller over them: it fires on the asked share (within one thought + 5%)."""
    if kernel_path == "numba":
        pytest.skip("the calibration is numpy only")
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.wrappers.tti import epsilon_for_rate

    model, tok = tiny
    policy = HFPolicy(model, tok, chat_template=False, signal="paper")
    prompts = [f"task {i}: find the {w} <think>" for i, w in enumerate(["apple", "mug", "key", "lamp"] * 4)]
    gens = policy.generate(prompts, SamplingConfig(temperature=1.0, max_new_tokens=48, seed=3, stop=()))
    signals = [g.signal[: g.think_tokens] for g in gens]
    cfg = TTIConfig(window=4, min_think_tokens=4, max_think_tokens=None)
    for rate in (0.2, 0.5, 0.8):
        eps = epsilon_for_rate(signals, rate, cfg)
        c = ThinkController(TTIConfig(**{**cfg.__dict__, "epsilon": eps}), fused=False)
        fired = 0
        for sig in signals:
            c.begin(1)
            fired += any(
                bool(c.step(np.array([m]), np.array([True]), np.array([t + 1]))[0]) for t, m in enumerate(sig)
            )
        assert abs(fired / len(signals) - rate) <= 1 / len(signals) + 0.05, (rate, eps, fired)
    with pytest.raises(ValueError, match="rate"):
        epsilon_for_rate(signals, 1.5, cfg)
    with pytest.raises(ValueError, match="long enough"):
        epsilon_for_rate([[0.1, 0.2]], 0.5, cfg)


def test_released_mode_in_the_vllm_logits_processor_state(tiny):
    """The vLLM backend's per-request state (no vLLM needed) steps the released controller on
    the tokens before <think> too, so it fires at the same step as HFPolicy and the loop above."""
    from t2po_gym.policies.vllm_backend import TTILogitsState
    from t2po_gym.wrappers.tti import ReleasedThinkController

    _, tok = tiny
    a, open_id, close_id = word(tok), tok.convert_tokens_to_ids("<think>"), tok.convert_tokens_to_ids("</think>")

    def script(row, step):
        return (open_id if step == 10 else a), 3.0

    enc = lambda t: tok.encode(t, add_special_tokens=False)  # noqa: E731
    cfg = TTIConfig(mode="released")
    state = TTILogitsState(ReleasedThinkController(cfg), enc(cfg.forced_text), enc("<think>"), enc("</think>"),
                           inside=False, vocab_size=len(tok))
    ids: list[int] = []
    for s in range(40):
        logits = torch.zeros(len(tok))
        t, sharp = script(0, s)
        logits[t] = sharp
        ids.append(int(state(ids, logits).argmax()))
    assert state.fired_at == 20 and ids[20] == close_id
