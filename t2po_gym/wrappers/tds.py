"""TDS (turn-level dedup sampling): resample a turn whose uncertainty repeats the previous one.

A turn wrapper: ``TurnDedup(policy)`` is itself an ``LLMPolicy``. Per episode (keyed by
the ``episode_ids`` the caller passes to ``generate``) it keeps the turn signal of the
last accepted turn and, for a new turn k:

    Phi_k   = geometric mean of M_t over the turn's sampled tokens   (paper)
              (or the arithmetic mean of M_t after the first ``skip_tokens`` = 32: released code)
    Gamma_k = |Phi_k - Phi_{k-1}|
    while Gamma_k < eta and tries < max_tries: sample the turn again from the same prompt

The last sample is kept (it replaces the stuck one whatever its Gamma), and
``Generation.resampled`` says how many were thrown away. Tokens forced by TTI are left
out of Phi. The first turn of an episode, and every prompt given without an episode id,
is never resampled. Call ``reset_episode(id)`` when an episode ends.

## The default eta depends on the signal

eta = 0.3 is the released code's value and goes with *its* signal (``"reference"``:
s_t = a log p_max + (1 - a)(1 - H/log|V|), unnormalised, turn means spread over a wide
range). It does not carry over to the paper signal: M_t is min-max normalised within
each generation (one turn), so every turn's M_t spans [0, 1] and its mean lands near the
middle whatever the turn says. Phi then varies little between turns (standard deviation
about 0.1 for the geometric mean, 0.02-0.05 for the arithmetic one, measured on the tiny
model, rambling or not, 128 turns), and |Phi_k - Phi_{k-1}| < 0.3 holds for 93-97% of
pairs of *unrelated* turns with the geometric mean and for all of them with the
arithmetic one: TDS would resample nearly every turn (96% was measured in ALFWorld
training). A turn that repeats the previous one (same thought, same action, a
near-identical distribution at every token) gives Gamma close to 0, so eta for the paper
signal is set near the 5% quantile of Gamma between unrelated turns (measured as above:
0.0025-0.0063 geometric, 0.0005-0.0043 arithmetic): 0.005 for the geometric mean, 0.001
for the arithmetic one. Then about 1 unrelated turn
in 20 is resampled by chance, while repeated turns still are. These are calibrated on
a tiny model; :func:`eta_for_rate` computes the same quantile from your own policy's
turn signals (one rollout, ``TurnDedup.history``), which is the better default.

## ``mode="released"``: the released code, step for step

What WillDreamer/T2PO-ICML runs (``agent_system/multi_turn_rollout/rollout_loop.py``
``T2PO_multi_turn_loop`` and the recorder of ``recipe/world_agent/workers/rollout/
vllm_rollout_spmd.py``):

- the turn score is the arithmetic mean of the reference certainty s_t over the turn's
  tokens after the first 33: the processor records s_t only when more than 32 tokens were
  generated before it (L190), i.e. for token indices 33, 34, ...; a turn of at most 33
  tokens has no record and scores 0 (``turn_level_score`` starts at zeros, L504, L559);
  every generated token counts, the one TTI forced included (its score is taken before
  forcing, L176-184);
- from the second turn on (``_step > 0``, L719), a turn is resampled while
  ``0 < |score_k - score_{k-1}| < eta`` with eta = 0.3 (``eta_threshold``, L636, L723): a
  delta of exactly 0 (e.g. two short turns) is never resampled; up to ``max_try`` = 2
  times; the last sample is kept and becomes ``score_{k-1}`` for the next turn (L743).

The released recorder is keyed by a hash of the first 32 generated tokens, never cleared,
and read back for the first ``batch_size`` keys ever recorded (L72-75, L504-570), so after
the first call most turns read 0; here each turn's score comes from its own signal and the
previous score is kept per episode (docs/presets.md lists this among the places we do not
follow).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

from t2po_gym.policies.base import Generation, LLMPolicy, SamplingConfig

__all__ = ["TurnDedup", "TDSConfig", "turn_signal", "released_turn_score", "eta_for_rate", "DEFAULT_ETA", "TDS_MODES"]

#: ``paper``: the paper's description; ``released``: the released rollout loop.
TDS_MODES = ("paper", "released")
#: Tokens whose score the released recorder skips at the start of a turn (L190: > 32 generated).
RELEASED_SKIP_TOKENS = 33

#: Resamples use seed + RESAMPLE_SEED_STRIDE * try, so that a seeded turn can change.
RESAMPLE_SEED_STRIDE = 1_000_003


#: eta when none is given, by (signal, turn_mean); see the module docstring.
DEFAULT_ETA = {
    ("paper", "geometric"): 0.005,
    ("paper", "arithmetic"): 0.001,
    ("reference", "arithmetic"): 0.3,
}


@dataclass
class TDSConfig:
    """The knobs of TDS.

    Attributes:
        eta: resample while |Phi_k - Phi_{k-1}| < eta. ``None`` (default): by signal and
            turn mean from :data:`DEFAULT_ETA` (0.3 for the reference signal as in the
            released code; 0.005 / 0.001 for the paper signal, see the module docstring).
        max_tries: B_max, resamples allowed per turn (2).
        turn_mean: ``"geometric"`` (paper) or ``"arithmetic"`` (code).
        skip_tokens: tokens skipped at the start of a turn by the arithmetic mean (32);
            a turn no longer than that uses all its tokens.
        signal: ``"paper"`` or ``"reference"``. The geometric mean needs M_t > 0, so
            the reference signal (which can be negative) requires ``turn_mean="arithmetic"``.
        mode: ``"paper"`` or ``"released"`` (module docstring). ``"released"`` sets
            ``signal="reference"``, ``turn_mean="arithmetic"``, ``skip_tokens=33`` (a shorter
            turn scores 0), eta 0.3 when none is given, resamples only when
            ``0 < |delta| < eta``, and counts forced tokens in the score.
    """

    eta: float | None = None
    max_tries: int = 2
    turn_mean: Literal["geometric", "arithmetic"] = "geometric"
    skip_tokens: int = 32
    signal: str = "paper"
    mode: str = "paper"
    eta_auto: bool = field(default=False, repr=False, compare=False)
    """Set when ``eta`` came from :data:`DEFAULT_ETA`, so a copy with another mode or signal
    picks that one's default again."""

    def __post_init__(self) -> None:
        if self.mode not in TDS_MODES:
            raise ValueError(f"unknown TDS mode {self.mode!r}: use 'paper' or 'released'")
        if self.mode == "released":
            self.signal, self.turn_mean, self.skip_tokens = "reference", "arithmetic", RELEASED_SKIP_TOKENS
        if self.turn_mean not in ("geometric", "arithmetic"):
            raise ValueError(f"unknown turn_mean {self.turn_mean!r}: use 'geometric' or 'arithmetic'")
        if self.signal not in ("paper", "reference"):
            raise ValueError(f"unknown signal {self.signal!r}: use 'paper' or 'reference'")
        if self.signal == "reference" and self.turn_mean == "geometric":
            raise ValueError("the reference signal can be negative: use turn_mean='arithmetic' with it")
        if self.eta is None or self.eta_auto:
            self.eta, self.eta_auto = DEFAULT_ETA[(self.signal, self.turn_mean)], True
        if self.max_tries < 0 or self.eta < 0:
            raise ValueError("max_tries and eta must be >= 0")


def turn_signal(
    signal: Sequence[float],
    forced_mask: Sequence[int] | None = None,
    mean: str = "geometric",
    skip_tokens: int = 32,
) -> float:
    """Phi of one turn from its per-token signal; NaN when the turn has no sampled token.

    geometric: exp(mean(log max(M_t, 1e-12))); arithmetic: mean(M_t[skip_tokens:]), or
    mean(M_t) when the turn has at most ``skip_tokens`` tokens.
    """
    vals = [float(s) for i, s in enumerate(signal) if not (forced_mask and i < len(forced_mask) and forced_mask[i])]
    if not vals:
        return math.nan
    if mean == "geometric":
        return math.exp(sum(math.log(max(v, 1e-12)) for v in vals) / len(vals))
    tail = vals[skip_tokens:] if len(vals) > skip_tokens else vals
    return sum(tail) / len(tail)


def released_turn_score(signal: Sequence[float], skip_tokens: int = RELEASED_SKIP_TOKENS) -> float:
    """The released turn score: mean of s_t over token indices >= ``skip_tokens``; 0 when none.

    Every token counts (forced ones too): the released recorder sees every decode step.
    """
    tail = [float(v) for v in list(signal)[skip_tokens:]]
    return sum(tail) / len(tail) if tail else 0.0


def eta_for_rate(phis: Sequence[float], rate: float = 0.05) -> float:
    """The eta at which a fraction ``rate`` of pairs of unrelated turns would count as stuck.

    ``phis``: turn signals of turns that are *not* repeats of one another (e.g. first
    turns of different episodes, or one rollout's turns). Returns the ``rate`` quantile
    of |Phi_a - Phi_b| over all pairs a < b (NaNs ignored).
    """
    import numpy as np

    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1), got {rate}")
    x = np.asarray([p for p in phis if not math.isnan(p)], dtype=np.float64)
    if len(x) < 2:
        raise ValueError("eta_for_rate needs at least two turn signals")
    d = np.abs(x[:, None] - x[None, :])[np.triu_indices(len(x), 1)]
    return float(np.quantile(d, rate))


class TurnDedup:
    """Wrap an ``LLMPolicy`` so that a turn that repeats the last one's uncertainty is resampled (TDS).

    The wrapped policy must fill ``Generation.signal`` when ``generate`` gets
    ``signal=...`` (``HFPolicy``, ``OpenAIPolicy`` and ``ThinkingIntervention`` do).

    ## Arguments
    - ``policy``: the backend or wrapper to sample from.
    - ``config``: a :class:`TDSConfig`; keyword overrides are applied on top of it.

    ## Attributes
    - ``last_phi``: {episode id: Phi of its last accepted turn}.
    - ``stats``: counters ``turns``, ``resampled_turns``, ``resamples``.
    """

    def __init__(self, policy: LLMPolicy, config: TDSConfig | None = None, **overrides):
        if not hasattr(policy, "generate"):
            raise TypeError(f"{type(policy).__name__} is not an LLMPolicy (no generate method)")
        self.policy = policy
        base = config or TDSConfig()
        if overrides:
            merged = {**base.__dict__, **overrides}
            if "eta" in overrides:
                merged["eta_auto"] = False  # an explicit eta wins
            self.config = TDSConfig(**merged)
        else:
            self.config = base
        inner = getattr(policy, "signal_kind", None)
        if inner is not None and inner != self.config.signal:
            raise ValueError(
                f"the wrapped policy uses signal {inner!r} but TDS is set to {self.config.signal!r}: "
                "give both wrappers the same signal"
            )
        self.last_phi: dict[str, float] = {}
        #: Phi of every accepted turn, in order (feed it to :func:`eta_for_rate`)
        self.history: list[float] = []
        self.stats = {"turns": 0, "resampled_turns": 0, "resamples": 0}

    @property
    def signal_kind(self) -> str:
        return self.config.signal

    def reset_episode(self, episode_id: str) -> None:
        """Forget an episode (no-op for an unknown id)."""
        self.last_phi.pop(episode_id, None)

    def reset(self) -> None:
        """Forget every episode."""
        self.last_phi.clear()

    def phi(self, g: Generation) -> float:
        if not g.signal:
            raise ValueError(
                "the wrapped policy returned no signal: TDS needs a backend that fills "
                "Generation.signal (HFPolicy, OpenAIPolicy with logprobs)"
            )
        if self.config.mode == "released":
            return released_turn_score(g.signal, self.config.skip_tokens)
        return turn_signal(g.signal, g.forced_mask, self.config.turn_mean, self.config.skip_tokens)

    def _stuck(self, episode_id: str | None, phi: float) -> bool:
        if episode_id is None or episode_id not in self.last_phi or math.isnan(phi):
            return False
        prev = self.last_phi[episode_id]
        if math.isnan(prev):
            return False
        delta = abs(phi - prev)
        if self.config.mode == "released":
            return 0.0 < delta < self.config.eta  # rollout_loop.py:L723
        return delta < self.config.eta

    def generate(
        self,
        prompts: Sequence[str],
        sampling: SamplingConfig | None = None,
        *,
        episode_ids: Sequence[str] | None = None,
        controller=None,
        signal: str | None = None,
    ) -> list[Generation]:
        if signal is not None and signal != self.config.signal:
            raise ValueError(f"TDS uses signal {self.config.signal!r}, the outer wrapper asked for {signal!r}")
        prompts = list(prompts)
        if episode_ids is not None and len(episode_ids) != len(prompts):
            raise ValueError(f"{len(episode_ids)} episode_ids for {len(prompts)} prompts: pass one per prompt")
        ids = list(episode_ids) if episode_ids is not None else [None] * len(prompts)
        sampling = sampling or SamplingConfig()
        kw = {"controller": controller} if controller is not None else {}
        gens = self.policy.generate(prompts, sampling, episode_ids=episode_ids, signal=self.config.signal, **kw)
        phis = [self.phi(g) for g in gens]
        tries = [0] * len(prompts)
        for attempt in range(1, self.config.max_tries + 1):
            todo = [i for i in range(len(prompts)) if self._stuck(ids[i], phis[i])]
            if not todo:
                break
            again = sampling
            if sampling.seed is not None:
                again = SamplingConfig(**{**sampling.__dict__, "seed": sampling.seed + RESAMPLE_SEED_STRIDE * attempt})
            new = self.policy.generate(
                [prompts[i] for i in todo],
                again,
                episode_ids=[ids[i] for i in todo],
                signal=self.config.signal,
                **({"controller": controller} if controller is not None else {}),
            )
            for i, g in zip(todo, new):
                gens[i], phis[i] = g, self.phi(g)
                tries[i] += 1
        for i, g in enumerate(gens):
            g.resampled = tries[i]
            if ids[i] is not None:
                self.last_phi[ids[i]] = phis[i]
            self.history.append(phis[i])
        self.stats["turns"] += len(gens)
        self.stats["resampled_turns"] += sum(1 for t in tries if t)
        self.stats["resamples"] += sum(tries)
        return gens
