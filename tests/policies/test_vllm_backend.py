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


# ---------------------------------------------------------------- Model Runner V2: the slot table
def closes_at(a, close, step_close):
    return lambda row, step: (close if step == step_close else a, 8.0 if step == step_close else 3.0)


def test_v2_slot_table_with_reordered_rows_prefill_chunks_replays_and_gaps_decides_like_hfpolicy(scripted, tiny):
    """Three TTI requests in recycled slots, one plain request, rows shuffled every engine step,
    a prefill chunk, a replayed step and a skipped step (preemption refill): each request's
    tokens, fire position, think tokens and M_t equal HFPolicy's on the same logits."""
    from t2po_gym.policies.vllm_backend import TTISlotTable

    _, tok = tiny
    a, close = tok.encode("a")[0], tok.convert_tokens_to_ids("</think>")
    scripts = [varying_then_flat(a, 12), closes_at(a, close, 4), varying_then_flat(a, 40)]
    script = lambda row, step: scripts[row](row, step)  # noqa: E731
    cfg = TTIConfig(rule="window", window=4, epsilon=0.01, min_think_tokens=3, max_think_tokens=None)
    steps = 30
    want = ThinkingIntervention(scripted(script, signal="paper"), cfg).generate(
        [PROMPT] * 3, SamplingConfig(temperature=0, max_new_tokens=steps, stop=()))
    assert want[0].intervened and not want[1].intervened and not want[2].intervened

    registry = {}
    table = TTISlotTable(registry)
    slots, prompt_lens = [5, 2, 7], [9, 6, 11]
    states = []
    for i, slot in enumerate(slots):
        registry[f"k{i}"] = make_state(tok, cfg, full_signal=True)
        states.append(registry[f"k{i}"])
        assert table.add_request(slot, {"t2po_tti": f"k{i}"})
    assert table.add_request(0, None) is False and table.add_request(3, {"t2po_tti": "gone"}) is False
    assert not table.active_in([0, 3]) and table.active_in([0, 7])

    out = [[] for _ in slots]
    rng = np.random.default_rng(0)
    V = len(tok)
    engine_step = 0
    while any(len(o) < steps for o in out):
        batch = [i for i in range(3) if len(out[i]) < steps] + [-1]  # -1: the plain request in slot 0
        rng.shuffle(batch)
        rows_slots, seq_lens, plens, fed, rows = [], [], [], [], []
        for i in batch:
            if i == -1:
                rows_slots.append(0), seq_lens.append(4), plens.append(4), fed.append(1)
                rows.append(torch.full((V,), 0.5))
                continue
            n = len(out[i])
            # request 2's prompt arrives in two chunks: the first ends before the prompt does
            chunk = i == 2 and engine_step == 0
            rows_slots.append(slots[i])
            seq_lens.append(prompt_lens[i] - 3 if chunk else prompt_lens[i] + n)
            plens.append(prompt_lens[i])
            fed.append(out[i][-1] if n else 99)
            t, sharp = script(i, n)
            row = torch.zeros(V)
            row[t] = sharp
            rows.append(row)
        logits = torch.stack(rows)
        plain_before = logits[batch.index(-1)].clone()
        fetch = lambda slot, s0, s1: out[slots.index(slot)][s0:s1]  # noqa: E731
        table.apply(logits, rows_slots, seq_lens, plens, torch.tensor(fed), fetch=fetch)
        if engine_step == 17:  # the same step replayed: same decisions, TTI not advanced twice
            again = torch.stack(rows)
            table.apply(again, rows_slots, seq_lens, plens, torch.tensor(fed), fetch=fetch)
            assert torch.equal(again.argmax(-1), logits.argmax(-1))
        assert torch.equal(logits[batch.index(-1)], plain_before)  # declined request untouched
        for r, i in enumerate(batch):
            if i == -1 or (i == 2 and engine_step == 0):
                continue
            out[i].append(int(logits[r].argmax()))
        if engine_step == 8:
            # request 1 is preempted and refilled: one of its tokens is committed without the
            # processor seeing that step (it catches up through fetch on the next call)
            n = len(out[1])
            t, sharp = script(1, n)
            row = torch.zeros(V)
            row[t] = sharp
            out[1].append(int(states[1](out[1], row).argmax()))
        engine_step += 1
    for i in range(3):
        assert out[i] == want[i].token_ids, i
        assert states[i].fired_at == want[i].intervention_position
        assert states[i].think_tokens == want[i].think_tokens
        np.testing.assert_allclose(states[i].signal, want[i].signal, atol=1e-6)


def test_v2_slot_table_recycles_slots_and_refuses_speculative_rows(tiny):
    from t2po_gym.policies.vllm_backend import TTISlotTable

    _, tok = tiny
    cfg = TTIConfig(window=2, epsilon=0.01, min_think_tokens=5, max_think_tokens=None)
    reg = {"old": make_state(tok, cfg), "new": make_state(tok, cfg)}
    table = TTISlotTable(reg)
    table.add_request(4, {"t2po_tti": "old"})
    table.apply(torch.zeros(1, len(tok)), [4], [3], [3], [0])
    assert table.slots[4].state is reg["old"] and table.slots[4].applied == 0
    table.add_request(4, {"t2po_tti": "new"})  # a new request takes the slot: fresh bookkeeping
    assert table.slots[4].state is reg["new"] and table.slots[4].applied == -1 and table.slots[4].out_ids == []
    table.add_request(4, None)
    assert 4 not in table.slots
    table.add_request(1, {"t2po_tti": "new"})
    with pytest.raises(RuntimeError, match="speculative"):
        table.apply(torch.zeros(2, len(tok)), [1, 1], [5, 5], [3, 3], [0, 0])
    with pytest.raises(RuntimeError, match="speculative"):
        table.apply(torch.zeros(3, len(tok)), [1, 1], [5, 5], [3, 3], [0, 0])


def test_vllm_policy_rejects_an_unknown_interface():
    with pytest.raises(ValueError, match="interface"):
        VLLMPolicy("Qwen/Qwen3-0.6B", interface="v3")


# ---------------------------------------------------------------- VLLMPolicy's own glue, on a fake engine
def _fake_vllm(monkeypatch, tok, script):
    """A stand-in for the few vLLM names VLLMPolicy uses, stepping like Model Runner V2.

    Not vLLM: it checks VLLMPolicy's Python (SamplingParams.extra_args, the registry, the
    processor's add_request/apply calls, Generation records), never vLLM's behaviour.
    """
    import sys
    import types
    from types import SimpleNamespace

    class LogitsProcessor:  # the base class the V2 loader demands
        pass

    class SamplingParams(SimpleNamespace):
        pass

    class LLM:
        def __init__(self, model, logits_processors=(), **kw):
            self.kw = kw
            self.req = SimpleNamespace(prompt_len=SimpleNamespace(np=np.zeros(64, dtype=np.int64)))
            self.procs = [cls(None, self.req) for cls in logits_processors]

        def get_tokenizer(self):
            return tok

        def generate(self, texts, params, use_tqdm=False):
            slots = list(range(10, 10 + len(texts)))[::-1]  # recycled, out of order
            plen = [len(tok.encode(t, add_special_tokens=False)) for t in texts]
            active = []
            for i, (slot, p) in enumerate(zip(slots, params)):
                self.req.prompt_len.np[slot] = plen[i]
                active.append(all(pr.add_request(slot, p) for pr in self.procs))
            out = [[] for _ in texts]
            lps = [[] for _ in texts]
            for step in range(params[0].max_tokens):
                order = list(range(len(texts)))[::-1] if step % 2 else list(range(len(texts)))
                rows = []
                for i in order:
                    t, sharp = script(i, step)
                    row = torch.zeros(len(tok))
                    row[t] = sharp
                    rows.append(row)
                raw = torch.stack(rows)
                logits = raw.clone()
                ctx = SimpleNamespace(
                    idx_mapping_np=np.array([slots[i] for i in order]),
                    seq_lens_upper_bound_np=np.array([plen[i] + len(out[i]) for i in order]),
                    input_ids=torch.tensor([out[i][-1] if out[i] else 0 for i in order]),
                )
                for pr in self.procs:
                    logits = pr.apply(logits, ctx)
                for r, i in enumerate(order):
                    t = int(logits[r].argmax())
                    out[i].append(t)
                    lp = torch.log_softmax(raw[r], -1)  # raw log-probs, as logprobs_mode="raw_logprobs"
                    lps[i].append({t: SimpleNamespace(logprob=float(lp[t]))})
            return [SimpleNamespace(outputs=[SimpleNamespace(
                token_ids=o, text=tok.decode(o), logprobs=lp, finish_reason="length", stop_reason=None)])
                for o, lp in zip(out, lps)]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    names = ["vllm.v1", "vllm.v1.worker", "vllm.v1.worker.gpu", "vllm.v1.worker.gpu.sample",
             "vllm.v1.worker.gpu.sample.logits_processor"]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    for n in names:
        monkeypatch.setitem(sys.modules, n, types.ModuleType(n))
    sys.modules["vllm.v1.worker.gpu.sample.logits_processor"].LogitsProcessor = LogitsProcessor


def test_vllm_policy_glue_on_a_fake_v2_engine_matches_hfpolicy(monkeypatch, scripted, tiny):
    _, tok = tiny
    a, close = tok.encode("a")[0], tok.convert_tokens_to_ids("</think>")
    scripts = [varying_then_flat(a, 12), closes_at(a, close, 4)]
    script = lambda row, step: scripts[row](row, step)  # noqa: E731
    cfg = TTIConfig(rule="window", window=4, epsilon=0.01, min_think_tokens=3, max_think_tokens=None)
    sc = SamplingConfig(temperature=0, max_new_tokens=30, stop=())
    want = ThinkingIntervention(scripted(script, signal="paper"), cfg).generate([PROMPT] * 2, sc)
    _fake_vllm(monkeypatch, tok, script)
    monkeypatch.delenv("VLLM_USE_V2_MODEL_RUNNER", raising=False)
    engine = VLLMPolicy("fake", chat_template=False, signal="paper")
    got = ThinkingIntervention(engine, cfg).generate([PROMPT] * 2, sc)
    for g, w in zip(got, want):
        assert g.token_ids == w.token_ids
        assert (g.intervened, g.intervention_position, g.think_tokens) == (w.intervened, w.intervention_position,
                                                                          w.think_tokens)
        assert g.forced_mask == w.forced_mask
        np.testing.assert_allclose(g.signal, w.signal, atol=1e-6)
        np.testing.assert_allclose(g.logprobs, w.logprobs, atol=1e-5)
    assert got[0].intervened and not got[1].intervened
    from t2po_gym.policies import vllm_backend

    assert not vllm_backend._REGISTRY  # per-request states are dropped after generate
    # the entry point's attribute resolves to the V2 class (V1 when VLLM_USE_V2_MODEL_RUNNER=0)
    cls = vllm_backend.T2POTTILogitsProcessor
    assert issubclass(cls, sys_modules_lp()) and not cls(None, None).add_request(3, SamplingConfig())


def sys_modules_lp():
    import sys

    return sys.modules["vllm.v1.worker.gpu.sample.logits_processor"].LogitsProcessor
