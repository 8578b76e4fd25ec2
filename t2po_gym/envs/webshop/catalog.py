"""WebShop product catalog: records in WebShop's product schema, the loader for the real
WebShop files, and the process-wide catalog cache.

A :class:`Product` holds the fields that WebShop's engine derives from ``items_shuffle*.json``
(``asin``, ``name``/``Title``, ``category``, ``query``, ``product_category``, ``pricing``,
``Price``, ``options``, ``Attributes``, ``Description``, ``BulletPoints``, ``Reviews``,
``Rating``); :meth:`Product.to_webshop_dict` gives the dict form WebShop's own code uses.

Catalogs are big (100k products) and immutable, so :func:`~t2po_gym.envs.webshop.catalogs.get_catalog` keeps one per source
in the process and every env shares it.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable, Sequence

from t2po_gym.search.base import Document, corpus_fingerprint

__all__ = [
    "Review",
    "Product",
    "Goal",
    "Catalog",
    "CatalogError",
    "load_webshop_catalog",
    "find_webshop_files",
    "PRICE_RANGE",
    "TEST_GOALS",
    "GOAL_SHUFFLE_SEED",
]

#: WebShop's price limits: 10, 20, ..., 990 dollars.
PRICE_RANGE = tuple(10.0 * i for i in range(1, 100))
#: WebShop's split: goals [0, 500) are the test split, the rest train.
TEST_GOALS = 500
#: WebShop shuffles the goal list with this seed before splitting.
GOAL_SHUFFLE_SEED = 233


class CatalogError(ValueError):
    """A catalog file is missing, unreadable or not in WebShop's format."""


@dataclass(frozen=True, slots=True)
class Review:
    """One review: ``title``, star ``score`` (1-5) and ``body``."""

    title: str
    score: int
    body: str


@dataclass(frozen=True, slots=True)
class Product:
    """One product in WebShop's schema (field names mapped to snake case).

    Attributes:
        asin: the 10-character product id (upper case, e.g. ``B07ZKZ7X1K``).
        name: the title (WebShop's ``name`` and ``Title``).
        category: top-level category (``beauty``, ``food``, ``fashion``, ``furniture``, ``electronics``).
        query: the search query the product was collected with (lower case).
        product_category: the category path joined by `` › ``.
        pricing: one price, or a ``(low, high)`` range, in dollars.
        price_tag: the price as shown (``$12.99`` or ``$10.0 to $14.0``).
        options: option group name (lower case) -> option values (lower case).
        attributes: attribute phrases (WebShop's ``Attributes``).
        description: the long description.
        bullet_points: the feature bullets.
        reviews: the reviews.
        rating: the average rating, or ``"N.A."``.
        instruction_text: WebShop's synthetic instruction for this product, if any.
        instruction_attributes: the attributes that instruction asks for.
    """

    asin: str
    name: str
    category: str
    query: str
    product_category: str
    pricing: tuple[float, ...]
    price_tag: str
    options: dict[str, tuple[str, ...]]
    attributes: tuple[str, ...]
    description: str
    bullet_points: tuple[str, ...]
    reviews: tuple[Review, ...] = ()
    rating: str = "N.A."
    instruction_text: str | None = None
    instruction_attributes: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.name

    def to_webshop_dict(self) -> dict[str, Any]:
        """The product as the dict WebShop's engine builds (``Title``, ``BulletPoints`` ...)."""
        return {
            "asin": self.asin,
            "name": self.name,
            "Title": self.name,
            "category": self.category,
            "query": self.query,
            "product_category": self.product_category,
            "pricing": list(self.pricing),
            "Price": self.price_tag,
            "options": {k: list(v) for k, v in self.options.items()},
            "Attributes": list(self.attributes),
            "Description": self.description,
            "BulletPoints": list(self.bullet_points),
            "Reviews": [{"title": r.title, "score": r.score, "body": r.body} for r in self.reviews],
            "Rating": self.rating,
        }

    def search_document(self) -> Document:
        """What the search engine indexes: the title, and the product's other visible text."""
        text = " ".join(
            (
                self.product_category.replace("›", " "),
                self.query,
                " ".join(self.attributes),
                " ".join(v for vs in self.options.values() for v in vs),
                " ".join(self.bullet_points),
                self.description,
            )
        )
        return Document(self.asin, self.name, text)


@dataclass(frozen=True, slots=True)
class Goal:
    """One instruction (WebShop's goal dict).

    Attributes:
        asin: the product the goal was made from.
        category, query, name, product_category: copied from that product (``name`` = its title).
        instruction_text: what the agent reads.
        attributes: the attributes the instruction asks for.
        goal_options: option group -> wanted value (human goals may give a list without groups;
            then the keys are ``"0"``, ``"1"`` ... and ``option_list`` is True).
        price_upper: the price limit in dollars (1e6 when none).
        weight: WebShop's sampling weight.
        option_list: the goal's options were a list in the source file (WebShop's human goals)
            rather than a dict; WebShop's reward treats the two forms differently
            (``web_agent_site/engine/goal.py:L240``).
    """

    asin: str
    category: str
    query: str
    name: str
    product_category: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: dict[str, str]
    price_upper: float
    weight: float = 1.0
    option_list: bool = False

    def to_webshop_dict(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "category": self.category,
            "query": self.query,
            "name": self.name,
            "product_category": self.product_category,
            "instruction_text": self.instruction_text,
            "attributes": list(self.attributes),
            "goal_options": list(self.goal_options.values()) if self.option_list else dict(self.goal_options),
            "price_upper": self.price_upper,
            "weight": self.weight,
        }


@dataclass(eq=False)
class Catalog:
    """An immutable product catalog with its goals and per-product prices.

    Attributes:
        products: the products, in catalog order (the search index's document order).
        goals: the instructions, already in WebShop's shuffled order (test = first 500).
        prices: asin -> the price used for the reward's price check.
        source: where the catalog came from (``synthetic:10000:seed0`` or a path).
    """

    products: list[Product]
    goals: list[Goal]
    prices: dict[str, float]
    source: str
    by_asin: dict[str, Product] = field(init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_asin = {p.asin: p for p in self.products}

    def __len__(self) -> int:
        return len(self.products)

    def documents(self) -> list[Document]:
        """The search documents, one per product, in catalog order."""
        return [p.search_document() for p in self.products]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the indexed content (computed once)."""
        with self._lock:
            if self._fingerprint is None:
                self._fingerprint = corpus_fingerprint(self.documents())
            return self._fingerprint

    def split(self, name: str) -> range:
        """Goal indices of a split: ``test`` = [0, 500), ``train`` = [500, n), ``all`` = [0, n).

        Catalogs with at most 500 goals use the same goals for both splits.
        """
        n = len(self.goals)
        if name == "all":
            return range(n)
        if n <= TEST_GOALS:
            if name in ("train", "test"):
                return range(n)
        elif name == "test":
            return range(TEST_GOALS)
        elif name == "train":
            return range(TEST_GOALS, n)
        raise ValueError(f"split must be 'train', 'test' or 'all', got {name!r}")


# --------------------------------------------------------------------- prices / goals
def product_price(pricing: Sequence[float], rng: random.Random) -> float:
    """WebShop's price of a product: 100 when unknown, the single price, or uniform in the range."""
    if not pricing:
        return 100.0
    if len(pricing) == 1:
        return float(pricing[0])
    return rng.uniform(float(pricing[0]), float(pricing[1]))


def price_limit(price: float, rng: random.Random) -> tuple[float, str]:
    """WebShop's price limit for a goal: of the first four values of PRICE_RANGE above ``price``,
    two are drawn and the larger is the limit. Returns ``(limit, text appended to the instruction)``;
    ``(1e6, "")`` when fewer than two values remain."""
    above = [p for p in PRICE_RANGE if p > price][:4]
    if len(above) < 2:
        return 1_000_000.0, ""
    upper = max(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def option_text(goal_options: dict[str, str]) -> str:
    """`` with size: m, and color: red`` (WebShop's wording), or ``""``."""
    text = ", and ".join(f"{k}: {v}" for k, v in goal_options.items())
    return " with " + text if text else ""


def shuffle_goals(goals: list[Goal]) -> list[Goal]:
    """WebShop's fixed shuffle of the goal list (seed 233), which defines the splits."""
    goals = list(goals)
    random.Random(GOAL_SHUFFLE_SEED).shuffle(goals)
    return goals


# --------------------------------------------------------------------- real WebShop files
_FILE_PATTERNS = {
    "products": ("items_shuffle_1000.json", "items_shuffle.json"),
    "attributes": ("items_ins_v2_1000.json", "items_ins_v2.json"),
    "human": ("items_human_ins.json",),
    "reviews": ("reviews.json",),
}


def find_webshop_files(path: str | os.PathLike | None = None) -> dict[str, Path]:
    """Locate WebShop's data files in ``path`` (a folder or the products file) or ``$WEBSHOP_DATA``.

    Returns a dict with ``products`` (required), ``attributes``, ``human`` and ``reviews`` when found.
    """
    root = path if path is not None else os.environ.get("WEBSHOP_DATA")
    if not root:
        raise CatalogError(
            "no WebShop data given: pass data_path=... or set WEBSHOP_DATA to the folder holding "
            "items_shuffle*.json (or use catalog='synthetic')"
        )
    root = Path(root)
    found: dict[str, Path] = {}
    if root.is_file():
        found["products"] = root
        root = root.parent
    if not root.is_dir():
        raise CatalogError(f"WebShop data folder not found: {root} (pass data_path=... or set WEBSHOP_DATA)")
    for kind, names in _FILE_PATTERNS.items():
        if kind in found:
            continue
        for name in names:
            if (root / name).is_file():
                found[kind] = root / name
                break
        else:
            matches = sorted(root.glob(names[-1].replace(".json", "*.json")))
            if matches:
                found[kind] = matches[0]
    if "products" not in found:
        raise CatalogError(f"no items_shuffle*.json in {root}: point WEBSHOP_DATA at WebShop's data folder")
    return found


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise CatalogError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CatalogError(f"{path}: not valid JSON ({e}); re-download this WebShop file") from None


def _parse_pricing(text: Any) -> tuple[tuple[float, ...], str]:
    if not text or not isinstance(text, str):
        return (100.0,), "$100.0"
    values = []
    for part in text.split("$")[1:]:
        digits = re.sub(r"[^\d.]", "", part)
        try:
            values.append(float(Decimal(digits)))
        except InvalidOperation:
            continue
    if not values:
        return (100.0,), "$100.0"
    if len(values) == 1:
        return (values[0],), f"${values[0]}"
    return (values[0], values[1]), f"${values[0]} to ${values[1]}"


def load_webshop_catalog(
    path: str | os.PathLike | None = None,
    *,
    num_products: int | None = None,
    human_goals: bool = True,
    seed: int = 0,
) -> Catalog:
    """Load the real WebShop catalog (``items_shuffle*.json`` + ``items_ins_v2*.json``
    [+ ``items_human_ins.json``, ``reviews.json``]) the way WebShop's engine does.

    Args:
        path: a folder holding the files, or the products file; default ``$WEBSHOP_DATA``.
        num_products: keep the first N products (WebShop's files are pre-shuffled).
        human_goals: goals from ``items_human_ins.json`` (WebShop's default) instead of the
            synthetic goals of ``items_ins_v2``.
        seed: seeds the price draws of ranged prices and the goals' price limits.

    Raises:
        CatalogError: a file is missing or corrupt (the message names the file).
    """
    files = find_webshop_files(path)
    raw = _read_json(files["products"])
    if not isinstance(raw, list):
        raise CatalogError(f"{files['products']}: expected a JSON list of products")
    attrs = _read_json(files["attributes"]) if "attributes" in files else {}
    human = _read_json(files["human"]) if human_goals and "human" in files else {}
    reviews: dict[str, tuple[list, Any]] = {}
    if "reviews" in files:
        for r in _read_json(files["reviews"]):
            reviews[r.get("asin")] = (r.get("reviews") or [], r.get("average_rating", "N.A."))
    if num_products is not None:
        raw = raw[:num_products]
    rng = random.Random(seed)
    products: list[Product] = []
    seen: set[str] = set()
    try:
        for p in raw:
            asin = str(p.get("asin", "nan"))
            if asin == "nan" or len(asin) > 10 or asin in seen:
                continue
            seen.add(asin)
            pricing, tag = _parse_pricing(p.get("pricing"))
            options: dict[str, tuple[str, ...]] = {}
            for oname, contents in (p.get("customization_options") or {}).items():
                if contents is None:
                    continue
                options[oname.lower()] = tuple(
                    str(c["value"]).strip().replace("/", " | ").lower() for c in contents
                )
            small = p.get("small_description") or []
            bullets = tuple(small) if isinstance(small, list) else (str(small),)
            revs, rating = reviews.get(asin, ([], "N.A."))
            a = attrs.get(asin, {}) if isinstance(attrs, dict) else {}
            products.append(
                Product(
                    asin=asin,
                    name=str(p.get("name", "")),
                    category=str(p.get("category", "")),
                    query=str(p.get("query", "")).lower().strip(),
                    product_category=str(p.get("product_category", "")),
                    pricing=pricing,
                    price_tag=tag,
                    options=options,
                    attributes=tuple(a.get("attributes") or ["DUMMY_ATTR"]),
                    description=str(p.get("full_description") or ""),
                    bullet_points=bullets,
                    reviews=tuple(
                        Review(str(r.get("title", "")), int(r.get("score", r.get("stars", 0)) or 0),
                               str(r.get("body", r.get("review", ""))))
                        for r in revs
                    ),
                    rating=str(rating),
                    instruction_text=a.get("instruction"),
                    instruction_attributes=tuple(a.get("instruction_attributes") or ()),
                )
            )
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise CatalogError(f"{files['products']}: a product is not in WebShop's format ({e!r})") from None
    prices = {p.asin: product_price(p.pricing, rng) for p in products}
    goals: list[Goal] = []
    if human_goals:
        for p in products:
            for ins in human.get(p.asin, []) or []:
                ga = tuple(ins.get("instruction_attributes") or ())
                if not ga:
                    continue
                upper, ptext = price_limit(prices[p.asin], rng)
                opts = ins.get("instruction_options") or []
                as_list = not isinstance(opts, dict)
                gopts = {str(i): str(v) for i, v in enumerate(opts)} if as_list else dict(opts)
                goals.append(Goal(p.asin, p.category, p.query, p.name, p.product_category,
                                  str(ins.get("instruction", "")).strip(".") + ptext, ga, gopts, upper,
                                  option_list=as_list))
    else:
        goals = synthetic_goals(products, prices, rng)
    return Catalog(products, shuffle_goals(goals), prices, source=str(files["products"]))


def synthetic_goals(products: Iterable[Product], prices: dict[str, float], rng: random.Random,
                    max_per_product: int | None = None) -> list[Goal]:
    """WebShop's synthetic goals: for each product with an instruction, one goal per option
    combination (at most ``max_per_product``, drawn at random), each with a price limit; the
    weight is the mean inverse frequency of the goal's attributes."""
    import itertools

    goals: list[Goal] = []
    for p in products:
        if not p.instruction_text or not p.instruction_attributes:
            continue
        names = sorted(p.options)
        combos: list[tuple[str, ...]]
        if max_per_product is None:
            combos = list(itertools.product(*(p.options[n] for n in names)))
        else:
            combos = [tuple(rng.choice(p.options[n]) for n in names) for _ in range(max_per_product)]
        upper, ptext = price_limit(prices[p.asin], rng)
        for combo in combos:
            gopts = dict(zip(names, combo))
            goals.append(Goal(p.asin, p.category, p.query, p.name, p.product_category,
                              f"{p.instruction_text}{option_text(gopts)}{ptext}",
                              p.instruction_attributes, gopts, upper))
    counts: dict[str, int] = {}
    for g in goals:
        for a in g.attributes:
            counts[a] = counts.get(a, 0) + 1
    return [
        Goal(g.asin, g.category, g.query, g.name, g.product_category, g.instruction_text, g.attributes,
             g.goal_options, g.price_upper, sum(1.0 / counts[a] for a in g.attributes) / len(g.attributes))
        for g in goals
    ]


# --------------------------------------------------------------------- process cache
