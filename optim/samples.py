"""The record the update consumes: one turn with its ids, old log-probs and advantage.

It lives below both :mod:`optim.trainer` (which builds it) and :mod:`optim.distributed`
(which pads ranks with zero-weight samples), so neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TurnSample"]


@dataclass
class TurnSample:
    """One turn ready for the update: ids, old log-probs, advantage (and PPO's value targets)."""

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    forced_mask: list[int]
    advantage: float
    ret: float = 0.0
    old_value: float = 0.0
