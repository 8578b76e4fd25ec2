"""The clipped loss, the masks and KL against hand-computed values."""

import math

import pytest

import torch

from optim.loss import (
    clipped_policy_loss,
    entropy_from_logits,
    kl_low_var,
    masked_mean,
    response_mask,
    token_logprobs,
    value_loss,
)


def test_clipped_surrogate_hand_example():
    ratio = torch.tensor([[1.5, 0.5, 1.1]])
    logp = ratio.log()
    old = torch.zeros(1, 3)
    a = torch.tensor([[1.0, 1.0, -1.0]])
    # token 0: max(-1.5, -1.2) = -1.2 ; token 1: max(-0.5, -0.8) = -0.5 ; token 2: max(1.1, 1.1) = 1.1
    loss, st = clipped_policy_loss(logp, old, a, torch.ones(1, 3), clip_eps=0.2)
    assert math.isclose(float(loss), (-1.2 - 0.5 + 1.1) / 3, abs_tol=1e-6)
    assert math.isclose(st.clipfrac, 2 / 3, abs_tol=1e-6)
    # approx_kl (k3): mean((r - 1) - log r)
    exp = sum((r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)) / 3
    assert math.isclose(st.approx_kl, exp, rel_tol=1e-5)


def test_ratio_one_gives_minus_mean_advantage_and_masked_tokens_are_ignored():
    logp = torch.tensor([[-1.0, -2.0, 5.0]])
    old = torch.tensor([[-1.0, -2.0, float("nan")]])  # garbage where masked out
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, st = clipped_policy_loss(logp, old, torch.tensor([2.0]), mask)
    assert math.isclose(float(loss), -2.0, abs_tol=1e-6) and st.clipfrac == 0.0


def test_response_mask_and_forced_tokens():
    m = response_mask(torch.tensor([2, 1]), torch.tensor([3, 1]), 6, forced=torch.tensor([[0, 0, 0, 1, 0, 0], [0] * 6]))
    assert m.tolist() == [[0, 0, 1, 0, 1, 0], [0, 1, 0, 0, 0, 0]]


def test_tokens_outside_the_response_never_get_gradient():
    torch.manual_seed(0)
    B, L, V = 2, 7, 11
    logits = torch.randn(B, L, V, requires_grad=True)
    ids = torch.randint(0, V, (B, L))
    mask = response_mask(torch.tensor([3, 2]), torch.tensor([2, 4]), L, forced=torch.tensor([[0] * 7, [0, 0, 0, 1, 0, 0, 0]]))
    logp = token_logprobs(logits, ids)
    old = logp.detach() + 0.05 * torch.randn(B, L)
    loss, _ = clipped_policy_loss(logp, old, torch.tensor([1.0, -2.0]), mask)
    loss = loss + 0.1 * kl_low_var(logp, old, mask) - 0.01 * masked_mean(entropy_from_logits(logits), mask)
    loss.backward()
    # the prediction of token p comes from logits[:, p - 1]
    g = logits.grad.abs().sum(-1)
    for b in range(B):
        for p in range(1, L):
            if mask[b, p] == 0:
                assert g[b, p - 1] == 0, (b, p)
            else:
                assert g[b, p - 1] > 0, (b, p)
        assert g[b, L - 1] == 0  # the last position predicts nothing


def test_token_logprobs_alignment():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 2] = 10.0  # position 0 predicts token 2 at position 1
    lp = token_logprobs(logits, torch.tensor([[1, 2, 3]]))
    assert lp[0, 0] == 0 and lp[0, 1] > -1e-3 and math.isclose(float(lp[0, 2]), math.log(0.25), abs_tol=1e-6)


def test_kl_low_var_hand_value():
    logp = torch.zeros(1, 2)
    ref = torch.tensor([[math.log(2.0), 0.0]])
    # token 0: 2 - ln 2 - 1 = 0.30685 ; token 1: 0
    assert math.isclose(float(kl_low_var(logp, ref, torch.ones(1, 2))), (1 - math.log(2)) / 2, rel_tol=1e-5)
    assert float(kl_low_var(logp, logp, torch.ones(1, 2))) == 0.0


def test_value_loss_clips():
    v = torch.tensor([1.0])
    # unclipped (1 - 0)^2 = 1 ; clipped v = 0.2 -> 0.04 ; max -> 1 ; times 0.5
    assert math.isclose(float(value_loss(v, torch.zeros(1), torch.zeros(1), 0.2)), 0.5)
    # target 1: unclipped 0, clipped (0.2 - 1)^2 = 0.64 -> 0.32
    assert math.isclose(float(value_loss(v, torch.zeros(1), torch.ones(1), 0.2)), 0.32, rel_tol=1e-6)


def test_dual_clip_bounds_the_loss_of_negative_advantages():
    """verl's compute_policy_loss with clip_ratio_c = 3 (released core_algos.py:L671-732):
    A = -1 at ratio 5 loses min(3, max(5, 1.2)) = 3; A = +1 at ratio 5 is unaffected (-1.2)."""
    import math

    import torch

    from optim.loss import clipped_policy_loss

    logp = torch.tensor([[math.log(5.0)]])
    old = torch.zeros(1, 1)
    mask = torch.ones(1, 1)
    neg, _ = clipped_policy_loss(logp, old, torch.tensor([-1.0]), mask, 0.2, dual_clip_c=3.0)
    plain, _ = clipped_policy_loss(logp, old, torch.tensor([-1.0]), mask, 0.2)
    pos, _ = clipped_policy_loss(logp, old, torch.tensor([1.0]), mask, 0.2, dual_clip_c=3.0)
    assert float(neg) == pytest.approx(3.0) and float(plain) == pytest.approx(5.0)
    assert float(pos) == pytest.approx(-1.2)
    with pytest.raises(ValueError, match="dual_clip_c"):
        clipped_policy_loss(logp, old, torch.tensor([1.0]), mask, 0.2, dual_clip_c=1.0)
