"""optim: the T2PO optimizer and its baselines (PPO, GRPO, GiGPO) for t2po-gym envs.

Public API: configs (:func:`preset`, :class:`TrainConfig`), the :class:`Trainer`, the
estimators in :mod:`optim.advantage`, the losses in :mod:`optim.loss`, rollouts in
:mod:`optim.rollout`, behaviour cloning in :mod:`optim.sft`.
"""

from __future__ import annotations

from optim.config import ALGOS, GiGPOConfig, GRPOConfig, PPOConfig, T2POConfig, TrainConfig, preset

__all__ = [
    "ALGOS",
    "TrainConfig",
    "T2POConfig",
    "GiGPOConfig",
    "GRPOConfig",
    "PPOConfig",
    "preset",
    "Trainer",
    "evaluate",
]


def __getattr__(name: str):
    # The trainer imports torch; keep `import optim` light.
    if name in ("Trainer", "evaluate"):
        from optim import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'optim' has no attribute {name!r}")
