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
after the thought ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from t2po_gym.policies.base import FORCED_CLOSE_TEXT, Generation, LLMPolicy, SamplingConfig
from t2po_gym import _fused

__all__ = ["ThinkingIntervention", "ThinkController", "TTIConfig"]


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

    def __post_init__(self) -> None:
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

    def make_controller(self) -> ThinkController:
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
        return self.policy.generate(
            prompts, sampling, episode_ids=episode_ids, controller=self.make_controller(), signal=signal
        )
