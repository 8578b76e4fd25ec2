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

The [B, V] reductions run where the logits live: on CUDA as torch ops with one small
device->host copy (:func:`packed_token_stats`); on CPU on a zero-copy numpy view of the
log-probs the decode step already computed, because for a small vocabulary torch's
per-op dispatch cost dominates. With numba installed (the ``train`` extra) one compiled
kernel per step does H, C, the running min-max and the mix (:mod:`._fused`; the top-j
comes from numpy's SIMD sort, and at temperature 1 the entropy reuses the sampler's
probabilities); without it, :func:`numpy_token_stats` (one exp, one dot product, one
sort) and small ``[B]`` numpy operations do the same. Running min/max and the
normalisation are float64 (the stats themselves come from float32 log-probs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from t2po_gym import _fused

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
    "numpy_token_stats",
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


def _vecdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot product (``np.vecdot``, a single ufunc call, on numpy >= 2)."""
    vd = getattr(np, "vecdot", None)
    return vd(a, b) if vd is not None else np.einsum("ij,ij->i", a, b)


def numpy_token_stats(logprobs: np.ndarray, j: int = DEEPCONF_J, out: np.ndarray | None = None) -> np.ndarray:
    """``[3, B]`` float64 rows (H, C, log p_max) from normalised log-probs ``[B, V]`` (numpy).

    The CPU fast path of the decode loop; same values as :func:`token_stats` up to float
    summation order. H = -sum exp(lp) * lp (a -inf log-prob contributes 0);
    C = -mean of the top-j log-probs and log p_max, from one row sort. ``out`` (``[3, B]`` float64) is reused when given.
    """
    V = logprobs.shape[-1]
    j = min(j, V)
    if out is None:
        out = np.empty((3, logprobs.shape[0]))
    p = np.exp(logprobs)
    with np.errstate(invalid="ignore"):
        out[0] = _vecdot(p, logprobs)
    if math.isnan(out[0].sum()):  # 0 * -inf: masked tokens; recompute with those terms set to 0
        out[0] = _vecdot(p, np.where(p > 0, logprobs, 0.0))
    # a full sort, not a partition: numpy's SIMD sort (x86-simd-sort) is branch-free and
    # several times faster than introselect (np.partition with two kth, torch.topk) on
    # fresh rows of log-probs
    srt = np.sort(logprobs, axis=1)
    out[1] = srt[:, V - j :].sum(axis=1)
    out[2] = srt[:, V - 1]
    out[:2] *= ((-1.0,), (-1.0 / j,))  # H = -sum p log p, C = -mean(top-j)
    return out


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
    """The paper signal for one trajectory at once: log-probs ``[T, V]`` -> M ``[T]`` (torch float64).

    Uses running (causal) min/max over t, so ``paper_signal(lp)[:t]`` equals
    ``paper_signal(lp[:t])``; it matches :class:`SignalTracker` step by step.
    """
    import torch

    h, c, _ = token_stats(logprobs, j)
    h, c = h.double(), c.double()  # float64 normalisation, like SignalTracker

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
        fused: use the compiled kernel of :mod:`t2po_gym._fused` for CPU
            tensors (``None`` or ``True``: when numba is installed; ``False``: never). Same values as the numpy path
            up to float summation order, in one call per step instead of about twenty.
    """

    kind: SignalKind
    batch_size: int
    vocab_size: int
    alpha: float = PAPER_ALPHA
    a: float = REFERENCE_A
    fused: bool | None = None
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in ("paper", "reference"):
            raise ValueError(f"unknown signal {self.kind!r}: use 'paper' or 'reference'")
        self.lo = np.full((2, self.batch_size), np.inf)
        self.hi = np.full((2, self.batch_size), -np.inf)
        self._stats = np.empty((3, self.batch_size))
        self._host: bool | None = None
        self._w = np.array([self.alpha, -(1.0 - self.alpha)])
        self._m = np.empty(self.batch_size)
        self._buf: np.ndarray | None = None
        self._views: list = [None, None]
        self._log_v = math.log(max(self.vocab_size, 2))
        self._kernel = _fused.kernels()[0] if self.fused is not False and _fused.kernels() else None
        self.fused = self._kernel is not None

    def update_from_logprobs(self, logprobs, probs=None, excluded: int = -1) -> np.ndarray:
        """M_t ``[B]`` from this step's normalised log-probs ``[B, V]`` (a torch tensor, any device).

        Float32/64 CPU tensors go through the compiled kernel (``fused``) or
        :func:`numpy_token_stats` on a zero-copy view; others through
        :func:`packed_token_stats` and one small copy to the host.

        ``probs`` (optional, same shape and device): the sampling distribution the decode
        step already computed at temperature 1, equal to ``exp(logprobs)`` except that
        token ``excluded`` (``-1``: none) was masked out and the rest renormalised. The
        kernel then takes p_i = probs_i * (1 - p_excluded) instead of a second ``exp``
        over the vocabulary; the numpy path ignores it.
        """
        if self._host is None:  # decided once: CPU float tensors have a zero-copy numpy view
            import torch

            self._host = logprobs.device.type == "cpu" and logprobs.dtype in (torch.float32, torch.float64)
        if self._host and self.fused:
            lp = self._view(0, logprobs)
            if lp.shape[1] >= DEEPCONF_J and lp.shape[0] == self.batch_size:
                paper = self.kind == "paper"
                if self._buf is None or self._buf.shape[1:] != lp.shape or self._buf.dtype != lp.dtype:
                    self._buf = np.empty((2, *lp.shape), dtype=lp.dtype)  # exp(lp), sorted lp
                p, srt = self._buf
                if probs is not None and probs.dtype == logprobs.dtype:
                    p = self._view(1, probs)
                else:
                    np.exp(lp, out=p)
                    excluded = -1
                if paper:
                    np.copyto(srt, lp)
                    srt.sort(axis=1)
                self._kernel(lp, p, srt, paper, DEEPCONF_J, self.lo, self.hi, self.alpha, self.a, self._log_v,
                             int(excluded), self._m)
                return self._m.copy()
        if self._host:
            st = numpy_token_stats(logprobs.numpy(), DEEPCONF_J, self._stats)
        else:
            packed = packed_token_stats(logprobs.float()).cpu().numpy().astype(np.float64)
            st = np.stack(unpack_token_stats(packed))
        if self.kind == "reference":
            return reference_combine(st[0], st[2], self.vocab_size, self.a)
        return self._paper(st[:2])

    def _view(self, slot: int, t) -> np.ndarray:
        """numpy view of CPU tensor ``t``, reused while the caller passes the same buffer.

        A decode loop that writes every step into one preallocated tensor pays for
        ``Tensor.numpy()`` once. Safe: the cached view keeps its storage alive, so no other
        tensor can be allocated at that address while it is cached.
        """
        ptr, stride = t.data_ptr(), t.stride()
        cached = self._views[slot]
        if cached is not None and cached[0] == ptr and cached[1] == stride and cached[2].shape == t.shape:
            return cached[2]
        view = t.numpy()
        self._views[slot] = (ptr, stride, view)
        return view

    def update(self, h: np.ndarray, c: np.ndarray, logp_max: np.ndarray) -> np.ndarray:
        """M_t ``[B]`` from this step's (H, C, log p_max), each ``[B]``."""
        if self.kind == "reference":
            return reference_combine(h, logp_max, self.vocab_size, self.a)
        return self._paper(np.stack((np.asarray(h, np.float64), np.asarray(c, np.float64))))

    def _paper(self, x: np.ndarray) -> np.ndarray:
        """Running min-max of x = [H; C] ``[2, B]`` (float64), then alpha-mix."""
        np.minimum(self.lo, x, out=self.lo)
        np.maximum(self.hi, x, out=self.hi)
        xn = (x - self.lo) / np.maximum(self.hi - self.lo, _TINY)
        # alpha * H~ + (1 - alpha) * (1 - C~) = (1 - alpha) + [alpha, -(1 - alpha)] . [H~, C~]
        return np.dot(self._w, xn) + (1.0 - self.alpha)
