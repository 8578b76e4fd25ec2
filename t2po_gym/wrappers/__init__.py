"""Wrappers: T2PO's exploration control around any LLM policy (TTI, TDS) and the signal they share.

``ThinkingIntervention`` and ``TurnDedup`` are ``LLMPolicy``s themselves, so they stack:
``TurnDedup(ThinkingIntervention(HFPolicy(path)))``. Torch is imported lazily.
"""

from t2po_gym.wrappers.tds import TDSConfig, TurnDedup, turn_signal
from t2po_gym.wrappers.tti import ThinkController, ThinkingIntervention, TTIConfig

__all__ = [
    "ThinkingIntervention",
    "ThinkController",
    "TTIConfig",
    "TurnDedup",
    "TDSConfig",
    "turn_signal",
]
from t2po_gym.wrappers.admissible_discrete import AdmissibleDiscrete  # noqa: E402,F401
