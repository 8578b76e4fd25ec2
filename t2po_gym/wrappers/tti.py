"""TTI (thinking intervention): end a thought that has stopped moving, then let the model act.

A generation wrapper: ``ThinkingIntervention(policy)`` is itself an ``LLMPolicy``. For
every sequence of a batch, separately, while it is inside ``<think>``:

- D_t = |M_t - M_{t-1}|, the change of the uncertainty signal between two think tokens
  (not defined for the first think token);
- ``rule="window"`` (paper): fire when mean(D over the last N+1 think tokens) < epsilon;
- ``rule="patience"`` (released code): fire when D_t <= ``patience_threshold`` for
  ``patience`` consecutive think tokens;
- never before ``min_think_tokens`` sampled think tokens; always once
  ``max_think_tokens`` were sampled (hard cap);
- at most once per generation.

Firing replaces the token about to be emitted with the tokens of ``</think>\\n<action>``
(marked in ``Generation.forced_mask``), after which the model samples normally. The
generation reports ``think_tokens`` (sampled think tokens), ``intervened`` and
``intervention_position``; ``Generation.signal`` only when the backend was asked for a
signal (``HFPolicy(signal=...)``, or TDS stacked on top), since TTI alone does not need it
after the thought ends. The rules above are the paper's description (``mode="paper"``).

## ``mode="released"``: the released code, step for step

``ThinkLogitsProcessor`` in WillDreamer/T2PO-ICML
``recipe/world_agent/workers/rollout/vllm_rollout_spmd.py`` (the same file in the shop and
search recipes), which produced the published numbers:

- the signal is the reference certainty s_t = 0.6 log p_max + 0.4 (1 - H/log|V|) of the
  unwarped logits (L176-184);
- a stagnation counter runs over **every generated token**, inside the thought or not:
  reset to 0 when |s_t - s_{t-1}| > 1e-4 or at the first token, else +1 (L201-206);
- inside ``<think>``, when the tokens since ``<think>`` reach ``max_think_tokens`` (450 in
  the ALFWorld / WebShop scripts) the token is forced to ``</think>`` (L212-216, the counter
  is left as it is); else when the counter reaches ``patience`` (20) the token is forced to
  ``</think>`` and the counter reset (L218-220); outside the thought a counter at
  ``patience`` is just reset (L221-226, no EOS token is configured);
- only ``</think>`` is forced, and it stays a trained-on response token: ``forced_mask`` is
  all 0 in this mode (``Generation.intervened`` / ``intervention_position`` still tell where),
  and its recorded log-prob is the model's own, as verl recomputes it.

Where the released code has a bug we keep per-sequence state instead (docs/presets.md):
vLLM calls the processor once per row with a batch of 1, so its ``_stagnation_count[0]`` /
``_last_max_logprob[0]`` are shared by all sequences and carried from one call to the next
(L136-143); here every sequence of every ``generate`` call has its own counter starting at
the first token. The processor sees generated ids only (vLLM V0), so a prompt that opens
``<think>`` would never be capped; Qwen3 writes ``<think>`` itself so the released runs never
met this case, and we count a prompt's ``<think>`` as opened just before the response.

## Calibrating ``epsilon`` on your own model

The window rule's ``epsilon`` (paper mode) is a threshold on |M_t - M_{t-1}| averaged over
N+1 think tokens, and its scale depends on the model and the signal. Record the think-token
signals of one rollout and pick the epsilon that fires on the share of thoughts you want::

    policy = HFPolicy(path, signal="paper")                 # returns Generation.signal
    gens = policy.generate(prompts, SamplingConfig(max_new_tokens=450))
    signals = [g.signal[: g.think_tokens] for g in gens]    # prompts that open <think>
    eps = epsilon_for_rate(signals, 0.2, TTIConfig())       # fires on ~20% of thoughts
    tti = ThinkingIntervention(policy, epsilon=eps)

(:func:`epsilon_for_rate`; the released mode has no epsilon: its ``patience_threshold``
1e-4 is the code's constant.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from t2po_gym.policies.base import FORCED_CLOSE_TEXT, Generation, LLMPolicy, SamplingConfig
from t2po_gym.protocol import THINK_CLOSE
from t2po_gym import _fused

__all__ = ["ThinkingIntervention", "ThinkController", "ReleasedThinkController", "TTIConfig", "epsilon_for_rate", "TTI_MODES"]

#: ``paper``: the rules as the paper describes them; ``released``: the released code's processor.
TTI_MODES = ("paper", "released")


@dataclass
class TTIConfig:
    """The knobs of TTI.

    Attributes:
        rule: ``"window"`` (paper) or ``"patience"`` (released code).
        window: N; the window rule averages D over the last N+1 think tokens.
        epsilon: window-rule threshold on mean(D).
        patience: patience-rule length (consecutive flat tokens), 20 in the code.
        patience_threshold: D_t <= this counts as flat, 1e-4 in the code.
        min_think_tokens: L_min, sampled think tokens before the rule may fire.
        max_think_tokens: hard cap on sampled think tokens (450 in the code); None: no cap.
        signal: ``"paper"`` or ``"reference"`` uncertainty signal.
        forced_text: what is forced when the rule fires.
        mode: ``"paper"`` (the rules above) or ``"released"`` (the released processor, see the
            module docstring). ``"released"`` sets ``rule="patience"``, ``signal="reference"``,
            ``min_think_tokens=0`` and ``forced_text="</think>"`` whatever was passed for them;
            ``patience``, ``patience_threshold`` and ``max_think_tokens`` keep their values.
    """

    rule: Literal["window", "patience"] = "window"
    window: int = 8
    epsilon: float = 0.02
    patience: int = 20
    patience_threshold: float = 1e-4
    min_think_tokens: int = 16
    max_think_tokens: int | None = 450
    signal: str = "paper"
    forced_text: str = FORCED_CLOSE_TEXT
    mode: str = "paper"

    def __post_init__(self) -> None:
        if self.mode not in TTI_MODES:
            raise ValueError(f"unknown TTI mode {self.mode!r}: use 'paper' or 'released'")
        if self.mode == "released":
            # vllm_rollout_spmd.py:L98-108 (defaults) and L212-220 (only </think> is forced)
            self.rule, self.signal, self.min_think_tokens, self.forced_text = "patience", "reference", 0, THINK_CLOSE
        if self.rule not in ("window", "patience"):
            raise ValueError(f"unknown TTI rule {self.rule!r}: use 'window' or 'patience'")
        if self.signal not in ("paper", "reference"):
            raise ValueError(f"unknown signal {self.signal!r}: use 'paper' or 'reference'")
        if self.window < 0 or self.patience < 1 or self.min_think_tokens < 0:
            raise ValueError("window >= 0, patience >= 1 and min_think_tokens >= 0 are required")
        if self.max_think_tokens is not None and self.max_think_tokens < self.min_think_tokens:
            raise ValueError("max_think_tokens must be >= min_think_tokens (or None)")


@dataclass
class ThinkController:
    """Per-sequence TTI state for one ``generate`` call (a :class:`DecodeController`).

    All state is ``[B]`` numpy arrays; ``step`` is a handful of vector operations.
    """

    config: TTIConfig
    fused: bool | None = None
    """Use the compiled rule of :mod:`t2po_gym._fused` (``None``: when numba is
    installed; ``False``: never). Same decisions as the numpy code below."""
    prev: np.ndarray = field(init=False, default=None)
    buf: np.ndarray = field(init=False, default=None)
    streak: np.ndarray = field(init=False, default=None)
    fired: np.ndarray = field(init=False, default=None)

    @property
    def signal_kind(self) -> str:
        return self.config.signal

    @property
    def forced_text(self) -> str:
        return self.config.forced_text

    def begin(self, batch_size: int) -> None:
        w = self.config.window + 1
        self.prev = np.full(batch_size, np.nan)
        self.buf = np.full((batch_size, w), np.inf)
        self.streak = np.zeros(batch_size, dtype=np.int64)
        self.fired = np.zeros(batch_size, dtype=bool)
        self._rows = np.arange(batch_size)
        cfg = self.config
        self._flat_sum = cfg.epsilon * w  # mean < epsilon  <=>  sum < epsilon * (N + 1)
        self._cap = np.inf if cfg.max_think_tokens is None else cfg.max_think_tokens + 1
        kernels = _fused.kernels() if self.fused is not False else None
        self._kernel = kernels[1] if kernels else None
        self._fire = np.zeros(batch_size, dtype=bool)

    def step(self, signal: np.ndarray, thinking: np.ndarray, think_count: np.ndarray) -> np.ndarray:
        """Update with this step's M_t; return the sequences whose token must be replaced.

        ``thinking``: the token is a sampled think token; ``think_count``: sampled think
        tokens so far, this one included (so firing keeps ``think_count - 1`` of them).
        About fifteen vector operations on ``[B]`` arrays, whatever B.

        Rows that are not ``thinking`` may write junk (NaN) into their own window slot:
        harmless, since they cannot fire this step, a row that has fired or closed its
        thought never thinks again, and a row before ``<think>`` has ``prev = NaN`` so
        its junk is non-finite (never "flat") like the initial ``inf``.
        """
        cfg = self.config
        if self._kernel is not None:  # the same arithmetic in one compiled call
            self._kernel(
                np.asarray(signal, np.float64), np.asarray(thinking, bool), np.asarray(think_count, np.int64),
                self.prev, self.buf, self.streak, self.fired, cfg.rule == "window", self._flat_sum, cfg.patience,
                cfg.patience_threshold, cfg.min_think_tokens, float(self._cap), self._fire,
            )
            return self._fire.copy()
        active = thinking & ~self.fired
        # D is undefined (NaN, never "flat") for the first think token: prev is NaN then
        d = np.abs(signal - self.prev)
        np.copyto(self.prev, signal, where=thinking)
        if cfg.rule == "window":
            self.buf[self._rows, think_count % (cfg.window + 1)] = d
            # NaN and inf in the window make the sum NaN/inf: not flat
            flat = self.buf.sum(axis=1) < self._flat_sum
        else:
            self.streak = np.where(active & (d <= cfg.patience_threshold), self.streak + 1, 0)
            flat = self.streak >= cfg.patience
        # kept think tokens (think_count - 1) >= min_think_tokens, or >= the cap
        fire = (flat & (think_count > cfg.min_think_tokens)) | (think_count >= self._cap)
        fire &= active
        self.fired |= fire
        return fire


@dataclass
class ReleasedThinkController:
    """Per-sequence state of the released ``ThinkLogitsProcessor`` (``TTIConfig(mode="released")``).

    ``step`` gets, for every row, this step's reference score s_t (computed from the unwarped
    logits before any forcing, as the processor does), whether the row samples this token
    inside the thought, and the think tokens so far including this one (so the tokens since
    ``<think>`` before this one are ``think_count - 1``). The counter advances on every call,
    i.e. on every generated token of the row (the backend calls ``step`` while any row's
    thought is open, which covers every token that could still be forced).
    """

    config: TTIConfig
    last: np.ndarray = field(init=False, default=None)
    count: np.ndarray = field(init=False, default=None)
    #: backends that step a controller only inside the thought (OpenAI, vLLM) also step this
    #: one on the tokens outside it (``thinking=False``): the released counter sees every token
    steps_every_token = True

    @property
    def signal_kind(self) -> str:
        return "reference"

    @property
    def forced_text(self) -> str:
        return THINK_CLOSE

    def begin(self, batch_size: int) -> None:
        # a fresh counter per sequence (the released one is shared and never reset: L136-143)
        self.last = np.full(batch_size, np.nan)
        self.count = np.zeros(batch_size, dtype=np.int64)
        cap = self.config.max_think_tokens
        self._cap = np.inf if cap is None else cap + 1

    def step(self, signal: np.ndarray, thinking: np.ndarray, think_count: np.ndarray) -> np.ndarray:
        cfg = self.config
        s = np.asarray(signal, dtype=np.float64)
        thinking = np.asarray(thinking, dtype=bool)
        # L201-206: reset when the score moved by more than eps (or at the first token: NaN)
        flat = np.abs(s - self.last) <= cfg.patience_threshold
        self.count = np.where(flat, self.count + 1, 0)
        self.last = s.copy()
        # L212-216: the length cap wins and leaves the counter alone
        cap = thinking & (np.asarray(think_count) >= self._cap)
        stalled = self.count >= cfg.patience
        fire = cap | (thinking & stalled)
        # L218-226: a stalled counter is reset whether it forced </think> (inside) or not (outside)
        self.count[stalled & ~cap] = 0
        return fire


class ThinkingIntervention:
    """Wrap an ``LLMPolicy`` backend so that stalled thoughts are closed early (TTI).

    The wrapped policy must accept ``controller=`` in ``generate`` (``HFPolicy``,
    ``OpenAIPolicy`` and ``VLLMPolicy`` do; ``TurnDedup`` forwards it).

    ## Arguments
    - ``policy``: the backend (or a wrapper around one).
    - ``config``: a :class:`TTIConfig`; keyword overrides are applied on top of it.
    - ``enabled``: ``False`` passes generation through untouched (handy for A/B runs).

    ## Example
    >>> tti = ThinkingIntervention(HFPolicy(path), min_think_tokens=32)   # doctest: +SKIP
    >>> g = tti.generate(["...prompt..."])[0]; g.intervened, g.think_tokens  # doctest: +SKIP
    """

    def __init__(self, policy: LLMPolicy, config: TTIConfig | None = None, *, enabled: bool = True, **overrides):
        if not hasattr(policy, "generate"):
            raise TypeError(f"{type(policy).__name__} is not an LLMPolicy (no generate method)")
        self.policy = policy
        base = config or TTIConfig()
        self.config = TTIConfig(**{**base.__dict__, **overrides}) if overrides else base
        self.enabled = enabled

    @property
    def signal_kind(self) -> str:
        return self.config.signal

    def make_controller(self) -> ThinkController | ReleasedThinkController:
        if self.config.mode == "released":
            return ReleasedThinkController(self.config)
        return ThinkController(self.config)

    def generate(
        self,
        prompts: Sequence[str],
        sampling: SamplingConfig | None = None,
        *,
        episode_ids: Sequence[str] | None = None,
        controller=None,
        signal: str | None = None,
    ) -> list[Generation]:
        if controller is not None:
            raise ValueError("two ThinkingIntervention wrappers are stacked: keep one")
        if not self.enabled:
            return self.policy.generate(prompts, sampling, episode_ids=episode_ids, signal=signal)
        if signal is not None and signal != self.config.signal:
            raise ValueError(
                f"TTI uses signal {self.config.signal!r} but the outer wrapper asked for {signal!r}: "
                "give both wrappers the same signal"
            )
        gens = self.policy.generate(
            prompts, sampling, episode_ids=episode_ids, controller=self.make_controller(), signal=signal
        )
        if self.config.mode == "released":
            # the forced </think> is an ordinary response token in the released pipeline: the
            # actor recomputes its log-prob and the loss covers it (response_mask from the
            # attention mask, ray_trainer.py compute_response_mask)
            for g in gens:
                g.forced_mask = [0] * len(g.token_ids)
        return gens


def _min_window_means(m: np.ndarray, window: int, min_think_tokens: int) -> float:
    """The smallest mean(D over N+1 think tokens) at which the window rule may fire, or inf.

    Same eligibility as :class:`ThinkController`: the think token of index t (0-based) may
    fire when ``t >= min_think_tokens`` and its window holds N+1 defined D's (``t >= N + 1``).
    """
    m = np.asarray(m, dtype=np.float64)
    if m.size < 2:
        return np.inf
    d = np.abs(np.diff(m))  # d[t-1] = D_t, defined for t >= 1
    w = window + 1
    if d.size < w:
        return np.inf
    means = np.convolve(d, np.ones(w) / w, mode="valid")  # means[k] = mean(D_{k+1} .. D_{k+w}): fires at t = k + w
    first = max(min_think_tokens - w, 0)
    means = means[first:]
    means = means[np.isfinite(means)]
    return float(means.min()) if means.size else np.inf


def epsilon_for_rate(signals: Sequence[Sequence[float]], rate: float, config: TTIConfig | None = None) -> float:
    """The window-rule epsilon at which TTI would fire on a share ``rate`` of these thoughts.

    ``signals``: per recorded generation, M_t of its think tokens in order (e.g.
    ``g.signal[:g.think_tokens]`` for prompts that open ``<think>``, from a backend asked for the
    ``config.signal``). A thought fires iff its smallest eligible window mean is below epsilon,
    so the answer sits between the ``k``-th and ``k+1``-th smallest of those minima,
    ``k = round(rate * n)`` (the midpoint; the cap ``max_think_tokens`` is not counted). The
    counterpart of :func:`t2po_gym.wrappers.tds.eta_for_rate`.

    Args:
        signals: at least one sequence of floats per generation.
        rate: the wanted fire rate in [0, 1].
        config: window and ``min_think_tokens`` to calibrate for (default :class:`TTIConfig`).

    Returns:
        epsilon (> 0; ``inf``-free: thoughts too short to fire are counted as never firing).
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    cfg = config or TTIConfig()
    if cfg.rule != "window":
        raise ValueError("epsilon_for_rate calibrates the window rule (mode='paper', rule='window')")
    mins = np.sort([_min_window_means(np.asarray(s, dtype=np.float64), cfg.window, cfg.min_think_tokens) for s in signals])
    if mins.size == 0:
        raise ValueError("epsilon_for_rate needs at least one recorded signal")
    finite = mins[np.isfinite(mins)]
    if finite.size == 0:
        raise ValueError("no recorded thought is long enough for the window rule to fire: record longer thoughts")
    k = int(round(rate * mins.size))
    if k <= 0:
        return float(max(finite[0], 1e-12))  # nothing is strictly below the smallest minimum
    if k > finite.size:
        k = finite.size  # the rest can never fire
    hi = mins[k] if k < mins.size and np.isfinite(mins[k]) else finite[-1] * 2 + 1e-12
    return float((mins[k - 1] + hi) / 2) if hi > mins[k - 1] else float(np.nextafter(mins[k - 1], np.inf))
