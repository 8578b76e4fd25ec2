"""t2po-gym: multi-turn text environments for LLM-agent RL, with T2PO's exploration control.

Importing the package registers the env ids (``T2PO/ALFWorld-v0`` ...). Heavy parts
(torch policies, search engines) are imported lazily, on first use.
"""

from __future__ import annotations

from t2po_gym.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["register_envs", "make_policy", "__version__"]


def __getattr__(name: str):
    # make_policy composes policies and wrappers (torch, lazily): import it on first use
    if name == "make_policy":
        from t2po_gym.factory import make_policy

        return make_policy
    raise AttributeError(f"module 't2po_gym' has no attribute {name!r}")
