"""The process-wide catalog cache: one :class:`Catalog` per source, shared by every env.

It sits above both :mod:`.catalog` (schema and the real-data loader) and :mod:`.synthetic`
(the generator, which builds on the schema), so neither of those imports the other's user.
"""

from __future__ import annotations

import os
import threading

from t2po_gym.envs.webshop.catalog import Catalog, find_webshop_files, load_webshop_catalog
from t2po_gym.envs.webshop.synthetic import generate_catalog

__all__ = ["get_catalog", "clear_catalog_cache"]

_CATALOGS: dict[tuple, Catalog] = {}
_CATALOG_LOCK = threading.Lock()


def get_catalog(
    catalog: str | Catalog = "synthetic",
    *,
    num_products: int | None = None,
    seed: int = 0,
    data_path: str | os.PathLike | None = None,
    human_goals: bool = True,
) -> Catalog:
    """The process-wide catalog for these arguments, built or loaded once and shared.

    Args:
        catalog: ``"synthetic"`` (offline default), ``"webshop"`` (the real files at
            ``data_path`` / ``$WEBSHOP_DATA``), or a :class:`Catalog` (returned as is).
        num_products: synthetic size (default 1000; 10000, 100000 ...) or a cut of the real
            catalog (default: all of it).
        seed: the synthetic generator's seed.
    """
    if isinstance(catalog, Catalog):
        return catalog
    if catalog == "synthetic":
        num_products = 1000 if num_products is None else int(num_products)
        key: tuple = ("synthetic", num_products, int(seed))
    elif catalog == "webshop":
        files = find_webshop_files(data_path)
        st = files["products"].stat()
        key = ("webshop", str(files["products"].resolve()), st.st_mtime_ns, st.st_size, num_products, human_goals, seed)
    else:
        raise ValueError(f"catalog must be 'synthetic', 'webshop' or a Catalog, got {catalog!r}")
    with _CATALOG_LOCK:
        cat = _CATALOGS.get(key)
        if cat is None:
            if catalog == "synthetic":
                cat = generate_catalog(int(num_products), seed=int(seed))
            else:
                cat = load_webshop_catalog(data_path, num_products=num_products, human_goals=human_goals, seed=seed)
            _CATALOGS[key] = cat
        return cat


def clear_catalog_cache() -> None:
    """Forget the cached catalogs (tests use this)."""
    with _CATALOG_LOCK:
        _CATALOGS.clear()
