"""Optional compiled (numba) kernels for the per-step work of the signal and of TTI's rule.

The decode loop of :class:`~t2po_gym.policies.hf.HFPolicy` calls the signal tracker and
the TTI controller once per generated token. Written with numpy, that is about forty
calls on small arrays per step, each with a fixed dispatch cost of ~0.5-1 us: 30-60 us
per step, 5-15% of a decode step of a tiny model on CPU. These kernels do the same
arithmetic in one compiled call each (about 1 us of call overhead). The one ``[B, V]``
operation numpy does better (the SIMD ``sort`` behind the top-j confidence) stays in
numpy, and at temperature 1 the entropy reuses the sampler's probabilities instead of a
second ``exp`` over the vocabulary (see ``SignalTracker.update_from_logprobs``).

They compute exactly what the numpy path computes (:func:`numpy_token_stats`,
``SignalTracker._paper``, ``ThinkController.step``): same formulas, same state
updates, the same junk writes for rows that are not thinking; only the order of
floating-point summation differs (differences of ~1e-7, tested).

numba is optional (it ships with the ``train`` extra). Without it, or with
``T2PO_NO_NUMBA=1`` in the environment, everything runs on the numpy path. Compiled
code is cached on disk (numba's ``cache=True``), so only the first process on a machine
pays the compile time (a few seconds).
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["kernels", "signal_step", "rule_step"]


def signal_step(lp, p, srt, paper, j, lo, hi, alpha, a, log_v, excluded, out):
    """M_t for every row of one decode step, written into ``out`` ``[B]`` (float64).

    ``lp``: normalised log-probs ``[B, V]``; ``p = exp(lp)``, or, when ``excluded >= 0``,
    that distribution with token ``excluded`` masked out and renormalised (then
    exp(lp_i) = p_i * (1 - exp(lp_excluded)) for the other tokens); ``srt``: ``lp``
    sorted ascending along rows (only read when ``paper``). ``paper``: running min-max
    over (H, C) in ``lo``/``hi`` ``[2, B]`` then ``alpha``-mix; else the reference signal
    ``a * log p_max + (1 - a) * (1 - H / log_v)``. Tokens with p = 0 add nothing to H.
    """
    B, V = lp.shape
    for b in range(B):
        h = 0.0
        for i in range(V):  # branch-free, so that it vectorises
            h += p[b, i] * lp[b, i] if p[b, i] > 0.0 else 0.0
        if excluded >= 0:
            pe = math.exp(lp[b, excluded])
            h = h * (1.0 - pe) + (pe * lp[b, excluded] if pe > 0.0 else 0.0)
        h = -h
        if not paper:
            mx = -np.inf
            for i in range(V):
                mx = max(mx, lp[b, i])
            out[b] = a * mx + (1.0 - a) * (1.0 - h / log_v)
            continue
        s = 0.0
        for k in range(V - j, V):
            s += srt[b, k]
        c = -s / j
        if h < lo[0, b]:
            lo[0, b] = h
        if h > hi[0, b]:
            hi[0, b] = h
        if c < lo[1, b]:
            lo[1, b] = c
        if c > hi[1, b]:
            hi[1, b] = c
        hn = (h - lo[0, b]) / max(hi[0, b] - lo[0, b], 1e-12)
        cn = (c - lo[1, b]) / max(hi[1, b] - lo[1, b], 1e-12)
        out[b] = alpha * hn + (1.0 - alpha) * (1.0 - cn)


def rule_step(m, thinking, think_count, prev, buf, streak, fired, window_rule, flat_sum, patience,
              patience_threshold, min_think, cap, fire):
    """One step of TTI's rule for every row (the arithmetic of ``ThinkController.step``).

    Updates ``prev``, ``buf`` (window rule) or ``streak`` (patience rule) and ``fired``
    in place, writes the rows that fire into ``fire`` ``[B]`` and returns how many fired.
    """
    B = m.shape[0]
    w = buf.shape[1]
    n = 0
    for b in range(B):
        active = thinking[b] and not fired[b]
        d = abs(m[b] - prev[b])  # NaN while prev is NaN
        if thinking[b]:
            prev[b] = m[b]
        if window_rule:
            buf[b, think_count[b] % w] = d
            s = 0.0
            for k in range(w):
                s += buf[b, k]
            flat = s < flat_sum  # False for NaN and inf
        else:
            if active and d <= patience_threshold:
                streak[b] += 1
            else:
                streak[b] = 0
            flat = streak[b] >= patience
        f = ((flat and think_count[b] > min_think) or think_count[b] >= cap) and active
        fire[b] = f
        if f:
            fired[b] = True
            n += 1
    return n


_KERNELS: tuple | None = None
_TRIED = False


def kernels() -> tuple | None:
    """``(signal_step, rule_step)`` compiled by numba, or ``None`` (no numba, or ``T2PO_NO_NUMBA=1``).

    numba is imported and the kernels compiled (or loaded from numba's disk cache) on the
    first call only, so importing the package stays cheap.
    """
    global _KERNELS, _TRIED
    if _TRIED:
        return _KERNELS
    _TRIED = True
    if os.environ.get("T2PO_NO_NUMBA", "") not in ("", "0"):
        return None
    try:
        import numba
    except Exception:  # not installed, or built for another numpy
        return None
    # reassociation lets the H reduction vectorise; no "nnan"/"ninf": -inf log-probs are real
    fast = {"reassoc", "contract", "nsz", "arcp"}
    sig = numba.njit(cache=True, nogil=True, fastmath=fast)(signal_step)
    rule = numba.njit(cache=True, nogil=True)(rule_step)
    try:  # compile now (or load numba's cache) for the dtypes of the decode loop
        lp = np.log(np.full((1, 4), 0.25, dtype=np.float32))
        state = np.zeros((2, 1))
        sig(lp, np.exp(lp), lp, True, 2, state.copy(), state.copy(), 0.4, 0.6, 1.0, -1, np.empty(1))
        b = np.zeros(1, dtype=bool)
        rule(np.zeros(1), b, np.ones(1, np.int64), np.zeros(1), np.zeros((1, 2)), np.zeros(1, np.int64), b.copy(),
             True, 0.1, 1, 0.0, 0, np.inf, b.copy())
    except Exception as exc:  # a numba that cannot compile here: stay on numpy, say why once
        import warnings

        warnings.warn(f"t2po_gym: numba kernels unavailable ({exc!r}); using the numpy path", RuntimeWarning)
        return None
    _KERNELS = (sig, rule)
    return _KERNELS
