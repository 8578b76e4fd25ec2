"""Token-level losses: log-probabilities, the clipped policy loss, KL, entropy, value loss.

Shapes: ``B`` sequences (one per turn: prompt + response), ``L`` padded length, ``V`` vocab.
A ``mask`` is 1 on the tokens that get gradient: response tokens sampled by the policy.
Prompt tokens, padding and tokens forced by TTI are 0 (see :func:`response_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "masked_mean",
    "token_logprobs",
    "entropy_from_logits",
    "response_mask",
    "PolicyLossStats",
    "clipped_policy_loss",
    "kl_low_var",
    "value_loss",
]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``sum(x * mask) / max(sum(mask), 1)``: the token mean over masked-in tokens."""
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """Log-probability of each token given the tokens before it.

    ``out[b, p] = log softmax(logits[b, p - 1])[input_ids[b, p]]`` for ``p >= 1``; ``out[b, 0] = 0``
    (the first token has no prediction). Computed in float32 whatever the model dtype.

    Args:
        logits: ``[B, L, V]`` causal-LM logits.
        input_ids: ``[B, L]``.

    Returns:
        ``[B, L]`` float32.
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    return F.pad(picked, (1, 0), value=0.0)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the next-token distribution at every position, aligned like :func:`token_logprobs`.

    ``out[b, p] = H(softmax(logits[b, p - 1]))``, ``out[b, 0] = 0``. ``[B, L]`` float32.
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    ent = -(logp.exp() * logp).sum(-1)
    return F.pad(ent, (1, 0), value=0.0)


def response_mask(
    prompt_lengths: torch.Tensor,
    response_lengths: torch.Tensor,
    total_length: int,
    forced: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mask of the tokens that get gradient, for right-padded ``prompt + response`` rows.

    ``mask[b, p] = 1`` iff ``P_b <= p < P_b + R_b`` and the token was sampled (not forced).

    Args:
        prompt_lengths: ``[B]`` prompt lengths ``P_b``.
        response_lengths: ``[B]`` response lengths ``R_b``.
        total_length: padded length ``L``.
        forced: optional ``[B, L]`` with 1 where TTI inserted the token.

    Returns:
        float ``[B, L]``.
    """
    pos = torch.arange(total_length).unsqueeze(0)
    start = prompt_lengths.unsqueeze(1)
    end = start + response_lengths.unsqueeze(1)
    mask = ((pos >= start) & (pos < end)).float()
    if forced is not None:
        mask = mask * (1.0 - forced.float())
    return mask


@dataclass
class PolicyLossStats:
    """Diagnostics of one policy-loss evaluation (floats, no grad)."""

    policy_loss: float
    approx_kl: float
    clipfrac: float
    ratio_mean: float
    ratio_max: float


def clipped_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    *,
    dual_clip_c: float | None = None,
) -> tuple[torch.Tensor, PolicyLossStats]:
    """PPO's clipped surrogate, token-mean over masked-in tokens (with optional dual clip).

    ::

        ratio     = exp(logp - logp_old)
        pg_loss1  = -A * ratio
        pg_loss2  = -A * clip(ratio, 1 - eps, 1 + eps_high)
        clipped   = max(pg_loss1, pg_loss2)
        pg_loss   = min(-A * c, clipped)  where A < 0, else clipped      (dual clip, c > 1)
        loss      = token_mean(pg_loss)
        approx_kl = token_mean((ratio - 1) - log ratio)         (k3 estimator, >= 0)
        clipfrac  = token_mean(|ratio - 1| > eps)

    Args:
        logprobs: ``[B, L]`` current log-probs (with grad).
        old_logprobs: ``[B, L]`` log-probs at rollout time.
        advantages: ``[B, L]``, or ``[B]`` broadcast over the row's tokens.
        mask: ``[B, L]`` 1 on response tokens.
        clip_eps: lower clip; ``clip_eps_high`` defaults to it (set higher for "clip-higher").
        dual_clip_c: the dual-clip bound c (Ye et al. 2020, arXiv:1912.09729): a token with a
            negative advantage loses at most ``-A * c`` however large its ratio, as verl's
            ``compute_policy_loss`` with ``clip_ratio_c=3.0`` does in the released code
            (``recipe/world_agent/ppo/core_algos.py:L671-732``). ``None``: plain PPO.
    """
    if dual_clip_c is not None and not dual_clip_c > 1.0:
        raise ValueError(f"dual_clip_c must be > 1, got {dual_clip_c}")
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1)
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    log_ratio = logprobs - old_logprobs
    # Masked-out positions may hold anything (padding): zero them before exp.
    log_ratio = torch.where(mask > 0, log_ratio, torch.zeros_like(log_ratio))
    ratio = torch.exp(log_ratio)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + eps_high)
    clipped = torch.maximum(pg_loss1, pg_loss2)
    if dual_clip_c is not None:
        clipped = torch.where(advantages < 0, torch.minimum(-advantages * dual_clip_c, clipped), clipped)
    loss = masked_mean(clipped, mask)
    with torch.no_grad():
        approx_kl = masked_mean((ratio - 1.0) - log_ratio, mask)
        clipfrac = masked_mean(((ratio - 1.0).abs() > clip_eps).float(), mask)
        masked_ratio = ratio[mask > 0]
        stats = PolicyLossStats(
            policy_loss=float(loss.detach()),
            approx_kl=float(approx_kl),
            clipfrac=float(clipfrac),
            ratio_mean=float(masked_ratio.mean()) if masked_ratio.numel() else 1.0,
            ratio_max=float(masked_ratio.max()) if masked_ratio.numel() else 1.0,
        )
    return loss, stats


def kl_low_var(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Low-variance KL estimate to a frozen reference (Schulman's k3), token-mean.

    ``kl_t = exp(ref_t - logp_t) - (ref_t - logp_t) - 1 >= 0``; the log-ratio is clamped to
    [-20, 20] so one outlier token cannot overflow.
    """
    d = torch.clamp(ref_logprobs - logprobs, -20.0, 20.0)
    d = torch.where(mask > 0, d, torch.zeros_like(d))
    return masked_mean(torch.exp(d) - d - 1.0, mask)


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip_eps: float = 0.2
) -> torch.Tensor:
    """PPO's clipped value loss over turns: ``0.5 * mean(max((V - R)^2, (V_clip - R)^2))``.

    ``V_clip = V_old + clip(V - V_old, -eps, eps)``. All tensors ``[N]``.
    """
    v_clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    return 0.5 * torch.maximum((values - returns) ** 2, (v_clipped - returns) ** 2).mean()
