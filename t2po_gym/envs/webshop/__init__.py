"""WebShop: catalog (real files or synthetic), goals and reward, pages, text env, Flask site, browser env.

``T2PO/WebShop-v0`` is :class:`~t2po_gym.envs.webshop.env.WebShopEnv`;
``T2PO/WebShopBrowser-v0`` is :class:`~t2po_gym.envs.webshop.browser_env.WebShopBrowserEnv`
(needs the ``browser`` extra and Debian's ``chromium`` + ``chromium-driver``).
"""

from __future__ import annotations

from t2po_gym.envs.webshop.catalog import Catalog, CatalogError, Goal, Product, Review, load_webshop_catalog
from t2po_gym.envs.webshop.catalogs import get_catalog
from t2po_gym.envs.webshop.env import WebShopEnv
from t2po_gym.envs.webshop.reward import RewardBreakdown, fixed_reward, purchase_reward, webshop_reward
from t2po_gym.envs.webshop.synthetic import generate_catalog

__all__ = [
    "Catalog",
    "CatalogError",
    "Goal",
    "Product",
    "Review",
    "RewardBreakdown",
    "WebShopEnv",
    "generate_catalog",
    "get_catalog",
    "load_webshop_catalog",
    "purchase_reward",
    "webshop_reward",
    "fixed_reward",
]
