"""Environment registration: data, not code paths.

``register_envs()`` is idempotent. It runs when ``t2po_gym`` is imported and, through
the ``t2po_gym_autoregister.pth`` hook installed with the package, as soon as
``gymnasium.envs`` is imported, so ``gym.make("T2PO/ALFWorld-v0")`` works after
``import gymnasium`` alone. Importing this module imports nothing heavy.
"""

from __future__ import annotations

__all__ = ["ENV_SPECS", "register_envs"]

#: (id, entry point, default kwargs). The env classes document their kwargs.
ENV_SPECS: list[tuple[str, str, dict]] = [
    ("T2PO/ALFWorld-v0", "t2po_gym.envs.alfworld.env:ALFWorldEnv", {}),
    ("T2PO/SearchQA-v0", "t2po_gym.envs.searchqa.env:SearchQAEnv", {}),
    ("T2PO/WebShop-v0", "t2po_gym.envs.webshop.env:WebShopEnv", {}),
    ("T2PO/WebShopBrowser-v0", "t2po_gym.envs.webshop.browser_env:WebShopBrowserEnv", {}),
]


def register_envs() -> None:
    """Register every t2po-gym env id with Gymnasium (no-op for ids already registered)."""
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point, kwargs in ENV_SPECS:
        if env_id in registry:
            continue
        register(
            id=env_id,
            entry_point=entry_point,
            kwargs=dict(kwargs),
            disable_env_checker=False,
            order_enforce=True,
        )
