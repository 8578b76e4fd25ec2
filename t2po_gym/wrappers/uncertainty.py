"""The per-token uncertainty signal M_t that drives TTI and TDS: pure functions.

Two signals are offered (DESIGN §3):

``"paper"`` (T2PO paper, default). At token t with next-token distribution p_t over
the vocabulary V::

    H_t = -sum_i p_t(i) log p_t(i)                       (entropy, nats)
    C_t = -(1/j) sum_{i <= j} log p_t(i)   over the top-j tokens (DeepConf confidence, j = 20)
    X~_t = (X_t - min_{s<=t} X_s) / (max_{s<=t} X_s - min_{s<=t} X_s)   (running, causal)
    M_t = alpha * H~_t + (1 - alpha) * (1 - C~_t),      alpha = 0.4

Before the running range opens (``max == min``, e.g. at the first token) X~_t is 0, so
M_1 = 1 - alpha. M_t lies in [0, 1]; high means uncertain.

``"reference"`` (the released code), a certainty score with no running state::

    s_t = a * log p_max + (1 - a) * (1 - H_t / log|V|),   a = 0.6

in (-inf, 1]; high means certain.

API servers only return the top-k log-probabilities. Then H_t is estimated from the
top-k renormalised to sum to one (:func:`topk_entropy`), C_t uses the top-min(j, k), and
``log p_max`` is the returned top-1 log-probability.

The [B, V] reductions are torch functions (they run where the logits live, CPU or
CUDA); the per-step combination works on small ``[B]`` numpy arrays, because a decode
loop synchronises every step anyway and numpy's per-call cost on 8 numbers is a few
hundred nanoseconds, far below a torch op's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "SignalKind",
    "PAPER_ALPHA",
    "REFERENCE_A",
    "DEEPCONF_J",
    "entropy",
    "topj_confidence",
    "token_stats",
    "packed_token_stats",
    "unpack_token_stats",
    "topk_entropy",
    "topk_token_stats",
    "minmax_normalise",
    "paper_combine",
    "reference_combine",
    "paper_signal",
    "reference_signal",
    "SignalTracker",
]

SignalKind = Literal["paper", "reference"]
PAPER_ALPHA = 0.4
REFERENCE_A = 0.6
DEEPCONF_J = 20
_TINY = 1e-12


def entropy(logprobs):
    """H = -sum_i p(i) log p(i) over the last axis of normalised log-probs ``[..., V]`` (nats).

    Tokens with p = 0 (log p = -inf, e.g. after masking) contribute 0.
    """
    import torch

    p = logprobs.exp()
    # p * logp is nan where logp = -inf; those terms are 0 by convention.
    return -torch.linalg.vecdot(p, torch.nan_to_num(logprobs, neginf=0.0))


def topj_confidence(logprobs, j: int = DEEPCONF_J):
    """C = -(1/j) sum of the j largest log-probs over the last axis ``[..., V]`` (DeepConf).

    ``j`` is clipped to the vocabulary size. C >= 0; a peaked distribution has a large C
    (its runner-up tokens have very negative log-probs), a flat one a small C.
    """
    j = min(j, logprobs.shape[-1])
    return -logprobs.topk(j, dim=-1).values.mean(-1)


def token_stats(logprobs, j: int = DEEPCONF_J):
    """(H, C, log p_max) for normalised log-probs ``[B, V]`` in one pass, each ``[B]``."""
    top = logprobs.topk(min(j, logprobs.shape[-1]), dim=-1).values
    return entropy(logprobs), -top.mean(-1), top[..., 0]


def packed_token_stats(logprobs, j: int = DEEPCONF_J):
    """``[B, 1 + j]``: column 0 is H, the rest the top-j log-probs (unsorted).

    The decode loop's fast path: four small torch ops, one device->host copy; the
    host then takes C = -mean(top-j) and log p_max = max(top-j) with numpy
    (:func:`unpack_token_stats`).
    """
    import torch

    top = logprobs.topk(min(j, logprobs.shape[-1]), dim=-1, sorted=False).values
    return torch.cat((entropy(logprobs)[:, None], top), dim=1)


def unpack_token_stats(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, C, log p_max) ``[B]`` each, from :func:`packed_token_stats` moved to numpy."""
    top = packed[:, 1:]
    return packed[:, 0], -top.mean(axis=1), top.max(axis=1)


def topk_entropy(top_logprobs):
    """Entropy estimate from the top-k log-probs only ``[..., k]``: renormalise, then H."""
    import torch

    return entropy(torch.log_softmax(top_logprobs, dim=-1))


def topk_token_stats(top_logprobs, j: int = DEEPCONF_J):
    """(H, C, log p_max) from top-k log-probs ``[B, k]`` (unsorted is fine), each ``[B]``."""
    import torch

    srt = torch.sort(top_logprobs, dim=-1, descending=True).values
    jj = min(j, srt.shape[-1])
    return topk_entropy(srt), -srt[..., :jj].mean(-1), srt[..., 0]


def minmax_normalise(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(x - lo) / (hi - lo), and 0 where hi == lo. ``lo <= x <= hi`` must already hold."""
    return (x - lo) / np.maximum(hi - lo, _TINY)


def paper_combine(h_norm, c_norm, alpha: float = PAPER_ALPHA):
    """M = alpha * H~ + (1 - alpha) * (1 - C~) (works on numpy arrays and torch tensors)."""
    return alpha * h_norm + (1.0 - alpha) * (1.0 - c_norm)


def reference_combine(h, logp_max, vocab_size: int, a: float = REFERENCE_A):
    """s = a * log p_max + (1 - a) * (1 - H / log|V|) (numpy arrays or torch tensors)."""
    return a * logp_max + (1.0 - a) * (1.0 - h / math.log(max(vocab_size, 2)))


def paper_signal(logprobs, alpha: float = PAPER_ALPHA, j: int = DEEPCONF_J):
    """The paper signal for one trajectory at once: log-probs ``[T, V]`` -> M ``[T]`` (torch).

    Uses running (causal) min/max over t, so ``paper_signal(lp)[:t]`` equals
    ``paper_signal(lp[:t])``; it matches :class:`SignalTracker` step by step.
    """
    import torch

    h, c, _ = token_stats(logprobs, j)

    def norm(x):
        lo = torch.cummin(x, 0).values
        hi = torch.cummax(x, 0).values
        return (x - lo) / (hi - lo).clamp_min(_TINY)

    return paper_combine(norm(h), norm(c), alpha)


def reference_signal(logprobs, a: float = REFERENCE_A):
    """The reference certainty for log-probs ``[T, V]`` -> s ``[T]`` (torch)."""
    h, _, lpmax = token_stats(logprobs, 1)
    return reference_combine(h, lpmax, logprobs.shape[-1], a)


@dataclass
class SignalTracker:
    """Running per-sequence state of the signal for a batch of B sequences.

    ``update(h, c, logp_max)`` takes this step's ``[B]`` numpy stats and returns M_t
    ``[B]``. The min/max of the paper signal run over every token the sequence has
    produced so far in this generation (prompt tokens excluded).

    Attributes:
        kind: ``"paper"`` or ``"reference"``.
        batch_size: B.
        vocab_size: |V| for the reference signal's entropy normaliser.
        alpha: paper mixing weight; a: reference mixing weight.
    """

    kind: SignalKind
    batch_size: int
    vocab_size: int
    alpha: float = PAPER_ALPHA
    a: float = REFERENCE_A
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("paper", "reference"):
            raise ValueError(f"unknown signal {self.kind!r}: use 'paper' or 'reference'")
        self.lo = np.full((2, self.batch_size), np.inf)
        self.hi = np.full((2, self.batch_size), -np.inf)
        self._w = np.array([self.alpha, -(1.0 - self.alpha)])

    def update(self, h: np.ndarray, c: np.ndarray, logp_max: np.ndarray) -> np.ndarray:
        if self.kind == "reference":
            return reference_combine(h, logp_max, self.vocab_size, self.a)
        x = np.stack((h, c))
        np.minimum(self.lo, x, out=self.lo)
        np.maximum(self.hi, x, out=self.hi)
        xn = (x - self.lo) / np.maximum(self.hi - self.lo, _TINY)
        # alpha * H~ + (1 - alpha) * (1 - C~) as one dot product
        return self._w @ xn + (1.0 - self.alpha)
