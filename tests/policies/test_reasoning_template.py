"""Reasoning-model chat templates that open ``<think>`` themselves, per-env response specs.

A template that ends its generation prompt with ``<think>\\n`` (R1-distill, Qwen3-Thinking)
puts the opening tag in the prompt, so the model's sampled text starts inside the thought.
The env must judge the whole response (``Generation.text`` = ``prefix`` + sampled text) and
the trainer must recompute the same log-probs from ``prompt_ids + token_ids``.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

import gymnasium as gym  # noqa: E402

import t2po_gym  # noqa: E402,F401  (registers the env ids)
from t2po_gym.agent import run_episode  # noqa: E402
from t2po_gym.factory import make_policy, response_spec_of, sampling_for_env  # noqa: E402
from t2po_gym.policies.base import FORCED_CLOSE_TEXT, SamplingConfig  # noqa: E402
from t2po_gym.policies.chat import ChatFormat  # noqa: E402
from t2po_gym.policies.hf import HFPolicy  # noqa: E402
from t2po_gym.text_env import ResponseSpec  # noqa: E402
from t2po_gym.wrappers.tti import ThinkingIntervention  # noqa: E402

#: Qwen3's switch, reduced to its generation prompt: thinking off renders an empty, closed thought.
QWEN3_LIKE_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% endif %}"
    "{% endif %}"
)


class ProtocolLM:
    """A stand-in causal LM that writes ``<think> a a ... </think><OPEN>command</CLOSE>`` from its own history.

    It looks at what it has emitted so far (forced tokens included), so it stays on the
    protocol whether the prompt opened ``<think>`` or not and whether TTI cut the thought.
    The next token gets logit 12, a second token a smaller logit that moves with the step,
    so the uncertainty signal is defined and varies.
    """

    def __init__(self, tok, command: str = "look", n_think: int = 10, tags: tuple[str, str] = ("<action>", "</action>")):
        self.config = SimpleNamespace(vocab_size=len(tok), max_position_embeddings=4096)
        self.generation_config = None
        self._param = torch.nn.Parameter(torch.zeros(1))
        ids = tok.convert_tokens_to_ids
        self.open_t, self.close_t = ids("<think>"), ids("</think>")
        self.act_open, self.act_close = ids(tags[0]), ids(tags[1])
        self.cmd = tok(" " + command, add_special_tokens=False)["input_ids"]
        self.filler = tok(" a", add_special_tokens=False)["input_ids"][0]
        self.eos = tok.eos_token_id
        self.n_think = n_think
        self.hist: list[list[int]] = []
        self.opened: list[bool] = []

    def parameters(self):
        return iter([self._param])

    def eval(self):
        return self

    def to(self, *a, **k):
        return self

    def _next(self, b: int) -> int:
        h = self.hist[b]
        if self.act_close in h:
            return self.eos
        if self.act_open in h:
            k = len(h) - 1 - h.index(self.act_open)
            return self.cmd[k] if k < len(self.cmd) else self.act_close
        if self.close_t in h:
            return self.act_open
        if not (self.opened[b] or self.open_t in h):
            return self.open_t
        thought = len(h) - (h.index(self.open_t) + 1 if self.open_t in h else 0)
        return self.filler if thought < self.n_think else self.close_t

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, use_cache=True, logits_to_keep=0, **kw):
        B = input_ids.shape[0]
        if kw.get("past_key_values") is None and kw.get("cache") is None:
            self.hist = [[] for _ in range(B)]
            self.opened = [self.open_t in input_ids[b, -3:].tolist() for b in range(B)]
        else:
            for b in range(B):
                self.hist[b].append(int(input_ids[b, 0]))
        logits = torch.zeros(B, 1, self.config.vocab_size)
        for b in range(B):
            logits[b, 0, self._next(b)] = 12.0
            logits[b, 0, self.filler if self._next(b) != self.filler else self.eos] += 2.0 + 0.5 * (len(self.hist[b]) % 3)
        return SimpleNamespace(logits=logits, past_key_values=("cache", len(self.hist[0])), cache=None)

    __call__ = forward


def test_chat_format_prefix_from_the_template(tiny, think_tok):
    _, tok = tiny
    text, prefix = ChatFormat(think_tok, True).render("go")
    assert prefix == "<think>\n" and text.endswith("<|im_start|>assistant\n<think>\n")
    # the user's own "<think>" (the env prompt names the tags) is not the template's
    assert ChatFormat(tok, True).render("reason inside <think> </think>")[1] == ""
    q = copy.deepcopy(tok)
    q.chat_template = QWEN3_LIKE_TEMPLATE
    assert ChatFormat(q, True, template_kwargs={"enable_thinking": False}).render("go")[1] == "<think>\n\n</think>\n\n"
    assert ChatFormat(q, True, template_kwargs={"enable_thinking": True}).render("go")[1] == ""
    text, prefix = ChatFormat(q, True, system_prompt="be brief", prefill="<think>\nOK,").render("go")
    assert prefix == "<think>\nOK," and text.startswith("<|im_start|>system\nbe brief") and text.endswith("<think>\nOK,")
    with pytest.raises(ValueError, match="add_generation_prompt"):
        ChatFormat(q, True, template_kwargs={"add_generation_prompt": False})
    with pytest.raises(ValueError, match="tokenizer has none"):
        ChatFormat(SimpleNamespace(chat_template=None), True)


@pytest.mark.parametrize("tti", [False, True])
def test_template_opened_think_plays_alfworld_with_valid_turns(tiny, think_tok, tti):
    policy = HFPolicy(ProtocolLM(think_tok), think_tok)
    if tti:
        policy = ThinkingIntervention(policy, min_think_tokens=0, max_think_tokens=4)
    env = gym.make("T2PO/ALFWorld-v0", max_turns=3)
    seen = []
    res = run_episode(env, policy, seed=0, sampling=sampling_for_env(env, temperature=0, max_new_tokens=40),
                      on_turn=lambda t, p, g, r, info: seen.append((g, info)))
    env.close()
    assert res.turns == 3 and len(seen) == 3
    for g, info in seen:
        assert g.prefix == "<think>\n" and g.text.startswith("<think>\n")
        # the sampled text starts inside the thought: without the prefix the env rejects it
        assert "<think>" not in g.text[len(g.prefix):]
        assert g.text.endswith("<action> look</action>") and g.finish_reason == "stop"
        assert info["format_valid"] and info["action_valid"], g.text
        assert g.intervened is tti
        if tti:
            assert FORCED_CLOSE_TEXT in g.text and g.think_tokens == 4
        else:
            assert g.think_tokens == 10


def test_rollout_turns_are_what_the_env_judged_and_logprobs_recompute(tiny, think_tok):
    """Real tiny model, template opening ``<think>``, TTI on: the trainer's forward matches the rollout."""
    from optim.loss import token_logprobs
    from optim.rollout import collect_rollouts, make_group_envs
    from optim.trainer import TurnSample, _collate, _forward

    model, _ = tiny
    policy = ThinkingIntervention(HFPolicy(model, think_tok), min_think_tokens=0, max_think_tokens=3)
    envs = make_group_envs("T2PO/ALFWorld-v0", 2, max_turns=2)
    try:
        rollout = collect_rollouts(envs, policy, n_tasks=1, group_size=2, seeds=[5],
                                   sampling=sampling_for_env("T2PO/ALFWorld-v0", max_new_tokens=24, seed=3))
    finally:
        envs.close()
    turns = [t for tr in rollout.trajectories for t in tr.turns]
    assert turns and any(t.intervened for t in turns)
    open_ids = think_tok("<think>\n", add_special_tokens=False)["input_ids"]
    for t in turns:
        # the opened "<think>\n" is the tail of the prompt ids and the head of the judged text
        assert t.prompt_ids[-len(open_ids):] == open_ids and t.text.startswith("<think>\n")
        body = t.response_ids[:-1] if t.finish_reason == "eos" else t.response_ids
        decoded = think_tok.decode(body, skip_special_tokens=False)
        assert t.text[len("<think>\n"):] == decoded[: len(t.text) - len("<think>\n")]
    samples = [TurnSample(t.prompt_ids, t.response_ids, t.old_logprobs, t.forced_mask, 0.0) for t in turns]
    batch = _collate(samples, think_tok.pad_token_id, "cpu")
    with torch.no_grad():
        logp = token_logprobs(_forward(model, batch, False, False).logits, batch["input_ids"])
    mask = batch["mask"]
    assert mask.sum() > 0
    assert float(((logp - batch["old_logprobs"]).abs() * mask).max()) < 1e-4


def test_prefill_and_template_kwargs_reach_the_prompt(tiny):
    model, tok = tiny
    q = copy.deepcopy(tok)
    q.chat_template = QWEN3_LIKE_TEMPLATE
    p = HFPolicy(model, q, chat_template_kwargs={"enable_thinking": False}, system_prompt="sys")
    g = p.generate(["go"], SamplingConfig(temperature=0, max_new_tokens=3, stop=()))[0]
    assert g.prefix == "<think>\n\n</think>\n\n" and g.text.startswith(g.prefix) and g.think_tokens == 0
    assert p.render_prompt("go").startswith("<|im_start|>system\nsys<|im_end|>")
    p = HFPolicy(model, tok, chat_template=False, assistant_prefill="<think>")
    g = p.generate(["go"], SamplingConfig(temperature=0, max_new_tokens=3, stop=()))[0]
    assert g.prefix == "<think>" and g.text.startswith("<think>")
    assert g.prompt_ids[-1] == tok.convert_tokens_to_ids("<think>")
    body = g.token_ids[:-1] if g.finish_reason == "eos" else g.token_ids
    if "</think>" not in g.text[len(g.prefix):]:  # the prefill opened the thought: every token is inside
        assert g.think_tokens == len(body)


def test_response_spec_declared_by_each_env():
    assert response_spec_of("T2PO/ALFWorld-v0") == ResponseSpec()
    assert response_spec_of("T2PO/WebShop-v0").stop == ("</action>",)
    sq = response_spec_of("T2PO/SearchQA-v0")
    assert sq.action_tags == ("search", "answer") and sq.stop == ("</search>", "</answer>")
    assert sq.forced_text == "</think>\n"
    assert sampling_for_env("T2PO/SearchQA-v0", temperature=0).stop == ("</search>", "</answer>")
    assert sampling_for_env("T2PO/SearchQA-v0", stop=()).stop == ()
    env = gym.make("T2PO/ALFWorld-v0")
    vec = gym.make_vec("T2PO/ALFWorld-v0", num_envs=2, vectorization_mode="sync")
    try:
        assert response_spec_of(env) == response_spec_of(vec) == ResponseSpec()
    finally:
        env.close()
        vec.close()
    with pytest.raises(ValueError, match="unknown env id"):
        response_spec_of("T2PO/Nope-v0")
    with pytest.raises(TypeError, match="temprature"):
        sampling_for_env(None, temprature=0)


def test_searchqa_tti_forces_its_own_protocol(tiny, tmp_path, monkeypatch):
    """Search-QA, scripted model, TTI firing: ``</think>\\n`` is forced, the model picks ``<search>``, valid turn."""
    from t2po_gym.search.base import clear_shared_retrievers

    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    clear_shared_retrievers()
    _, tok = tiny
    env = gym.make("T2PO/SearchQA-v0", world_passages=1500, world_questions=300, world_seed=3, max_turns=2)
    try:
        lm = ProtocolLM(tok, command="capital of X", n_think=30, tags=("<search>", "</search>"))
        policy = make_policy("hf:tiny", tti=True, env=env, tti_kwargs={"min_think_tokens": 2, "max_think_tokens": 5})
        # swap the tiny model for the scripted one, keeping make_policy's stack and forced text
        inner = policy.policy
        policy.policy = HFPolicy(lm, tok, chat_template=False, assistant_prefill="<think>", signal=inner.signal)
        assert policy.config.forced_text == "</think>\n"
        obs, _ = env.reset(seed=0)
        g = policy.generate([obs], sampling_for_env(env, temperature=0, max_new_tokens=40))[0]
        assert g.intervened and "</think>\n<search>" in g.text and "<action>" not in g.text
        assert g.text.startswith("<think>") and g.think_tokens == 5
        assert g.text.endswith("</search>") and g.finish_reason == "stop"  # the env's stop string
        _, _, _, _, info = env.step(g.text)
        assert info["format_valid"] and info["action_valid"], g.text
    finally:
        env.close()
        clear_shared_retrievers()
