"""t2po-gym: multi-turn text environments for LLM-agent RL, with T2PO's exploration control.

Importing the package registers the env ids (``T2PO/ALFWorld-v0`` ...). Heavy parts
(torch policies, search engines) are imported lazily, on first use.
"""

from __future__ import annotations

from t2po_gym.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["register_envs", "__version__"]
