"""WebShop's pages as a state machine: the single source of truth for the text env and the
Flask site.

A page is a list of :class:`Element` (text, buttons, product links, option radios, the
search box) in reading order. The text env joins the element texts with `` [SEP] ``; the
Flask site renders the same elements as HTML, and the browser env reads them back from
the DOM, so both envs see the same strings by construction.

Pages (WebShop's templates, ``web_agent_site/templates/*.html``): ``search`` (instruction and a
search box), ``results`` (10 of at most 50 hits per page; ``< Prev`` after page 1, ``Next >`` on
every page), ``item`` (option groups, title, price, ``Rating: N.A.``, ``Description`` /
``Features`` / ``Reviews`` [/ ``Attributes``] and ``Buy Now``), the four sub-pages (with
``< Prev`` back to the item; reviews are empty, as WebShop never loads them), and ``done`` (the
score). The text is what WebShop's text env prints in its ``text`` mode: blank strings dropped,
the rest stripped (see ``docs/webshop.md``).
Clicks are matched case-insensitively, as WebShop lower-cases its clickables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from t2po_gym.envs.webshop.catalog import Catalog, Goal, Product
from t2po_gym.envs.webshop.reward import RewardBreakdown, purchase_reward

__all__ = [
    "Element",
    "Shop",
    "SEP",
    "SEARCH_RETURN_N",
    "PRODUCT_WINDOW",
    "BACK_TO_SEARCH",
    "PREV_PAGE",
    "NEXT_PAGE",
    "BUY_NOW",
    "SUB_PAGES",
]

SEP = " [SEP] "
#: results kept per search
SEARCH_RETURN_N = 50
#: results shown per page
PRODUCT_WINDOW = 10
BACK_TO_SEARCH, PREV_PAGE, NEXT_PAGE, BUY_NOW = "Back to Search", "< Prev", "Next >", "Buy Now"
SUB_PAGES = ("Description", "Features", "Reviews", "Attributes")


@dataclass(frozen=True, slots=True)
class Element:
    """One visible string of a page.

    ``kind``: ``text`` (not clickable), ``button``, ``link`` (a product id), ``option`` (an
    option radio of group ``group``), ``search`` (the search button, used through ``search[...]``).
    """

    text: str
    kind: str = "text"
    group: str = ""
    selected: bool = False

    @property
    def clickable(self) -> bool:
        return self.kind in ("button", "link", "option")


@dataclass
class Shop:
    """One shopping session over a shared catalog.

    Args:
        catalog: the (shared, read-only) catalog.
        search_fn: ``query -> list of asins`` (best first, at most 50).
        show_attrs: show the ``Attributes`` button on item pages (WebShop's ``show_attrs``).
        type_mode: type-word extraction of the reward (see :mod:`reward`); ``None``: the
            variant's default.
        reward_variant: ``"webshop"`` (WebShop's ``get_reward``) or ``"fixed"`` (see :mod:`reward`).
    """

    catalog: Catalog
    search_fn: Callable[[str], list[str]]
    show_attrs: bool = False
    type_mode: str | None = None
    reward_variant: str = "webshop"
    goal: Goal | None = None
    page: str = "search"
    keywords: str = ""
    page_no: int = 1
    results: list[str] = field(default_factory=list)
    asin: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    sub_page: str = ""
    outcome: RewardBreakdown | None = None
    _elements: list[Element] | None = field(default=None, repr=False)
    _clickables: dict[str, Element] | None = field(default=None, repr=False)

    # ---------------------------------------------------------------- state changes
    def start(self, goal: Goal) -> None:
        """Begin a session for ``goal`` on the search page."""
        self.goal = goal
        self.outcome = None
        self._go_search_page()

    def _go_search_page(self) -> None:
        self.page, self.keywords, self.page_no, self.results = "search", "", 1, []
        self.asin, self.options, self.sub_page = None, {}, ""
        self._dirty()

    def _dirty(self) -> None:
        self._elements = None
        self._clickables = None

    def search(self, query: str) -> None:
        """Run ``query`` and show the first results page."""
        self.keywords = " ".join(query.lower().split())[:200]
        asins = [a for a in self.search_fn(query.lower()) if a in self.catalog.by_asin]
        self.results = asins[:SEARCH_RETURN_N]
        self.page, self.page_no, self.asin, self.options, self.sub_page = "results", 1, None, {}, ""
        self._dirty()

    def click(self, target: str) -> RewardBreakdown | None:
        """Click the element whose text is ``target`` (case-insensitive). Returns the reward
        breakdown when it was ``Buy Now``. Raises ``KeyError`` for a target not on the page."""
        el = self.clickables()[target.lower()]
        low = el.text.lower()
        if el.kind == "link":
            self.asin, self.options, self.page, self.sub_page = el.text.upper(), {}, "item", ""
        elif el.kind == "option":
            self.options[el.group] = el.text
            self.page = "item"
        elif low == BACK_TO_SEARCH.lower():
            self._go_search_page()
            return None
        elif low == NEXT_PAGE.lower():
            self.page_no += 1
        elif low == PREV_PAGE.lower():
            if self.page == "results":
                self.page_no -= 1
            elif self.page == "item":
                self.page, self.asin, self.options = "results", None, {}
            elif self.page == "sub":
                self.page, self.sub_page = "item", ""
        elif low in (s.lower() for s in SUB_PAGES):
            self.page, self.sub_page = "sub", next(s for s in SUB_PAGES if s.lower() == low)
        elif low == BUY_NOW.lower():
            self._dirty()
            return self.buy()
        self._dirty()
        return None

    def buy(self) -> RewardBreakdown:
        """Buy the current product with the selected options; ends the session."""
        assert self.goal is not None and self.asin is not None
        product = self.catalog.by_asin[self.asin]
        price = self.catalog.prices.get(self.asin, 100.0)
        self.outcome = purchase_reward(product, self.goal, price, self.options, type_mode=self.type_mode,
                                       reward=self.reward_variant)
        self.page = "done"
        self._dirty()
        return self.outcome

    # ---------------------------------------------------------------- views
    @property
    def product(self) -> Product | None:
        return self.catalog.by_asin.get(self.asin) if self.asin else None

    @property
    def has_search_box(self) -> bool:
        return self.page == "search"

    def elements(self) -> list[Element]:
        """The current page's visible strings, in reading order."""
        if self._elements is None:
            self._elements = self._build()
        return self._elements

    def clickables(self) -> dict[str, Element]:
        """Lower-cased text -> clickable element of the current page.

        Ordered as WebShop's text env builds its ``text_to_clickable``
        (``web_agent_site/envs/web_agent_text_env.py:L138-144``): buttons, then product links,
        then option values, each in page order; a repeated text keeps its first position and
        its last element.
        """
        if self._clickables is None:
            c: dict[str, Element] = {}
            els = self.elements()
            for kind in ("button", "link", "option"):
                for e in els:
                    if e.kind == kind:
                        c[e.text.lower()] = e
            self._clickables = c
        return self._clickables

    def text(self) -> str:
        """The page as WebShop's simple text observation (visible strings joined by `` [SEP] ``)."""
        return SEP.join(e.text for e in self.elements())

    def _build(self) -> list[Element]:
        assert self.goal is not None
        instr = [Element("Instruction:"), Element(self.goal.instruction_text)]
        back = Element(BACK_TO_SEARCH, "button")
        prev = Element(PREV_PAGE, "button")
        if self.page == "search":
            return [Element("WebShop"), *instr, Element("Search", "search")]
        if self.page == "results":
            # results_page.html: "< Prev" only after page 1, "Next >" on every page (even the last)
            out = [*instr, back, Element(f"Page {self.page_no} (Total results: {len(self.results)})")]
            if self.page_no > 1:
                out.append(prev)
            out.append(Element(NEXT_PAGE, "button"))
            start = (self.page_no - 1) * PRODUCT_WINDOW
            for asin in self.results[start : start + PRODUCT_WINDOW]:
                p = self.catalog.by_asin[asin]
                out += [Element(asin, "link"), Element(p.name), Element(p.price_tag)]
            return _visible(out)
        p = self.product
        if self.page == "item" and p is not None:
            out = [*instr, back, prev]
            for group, values in p.options.items():
                out.append(Element(group))
                sel = self.options.get(group)
                out += [Element(v, "option", group, v == sel) for v in values]
            # WebShop never loads reviews, so every rating reads N.A. (engine.py:L237-277)
            out += [Element(p.name), Element(f"Price: {p.price_tag}"), Element("Rating: N.A.")]
            subs = SUB_PAGES if self.show_attrs else SUB_PAGES[:3]
            out += [Element(s, "button") for s in subs]
            out.append(Element(BUY_NOW, "button"))
            return _visible(out)
        if self.page == "sub" and p is not None:
            out = [*instr, back, prev]
            if self.sub_page == "Description":
                out.append(Element(p.description))
            elif self.sub_page == "Features":
                out += [Element(b) for b in p.bullet_points]
            elif self.sub_page == "Reviews":
                pass  # review_page.html lists product_info.Reviews, always empty in WebShop
            else:
                # attributes_page.html shows the attributes, then category, query, product category
                out += [Element(a) for a in p.attributes]
                out += [Element(p.category), Element(p.query), Element(p.product_category)]
            return _visible(out)
        if self.page == "done":
            r = self.outcome.reward if self.outcome else 0.0
            return [Element("Thank you for shopping with us!"), Element("Your score (min 0.0, max 1.0)"),
                    Element(format_reward(r))]
        raise RuntimeError(f"unknown page {self.page!r}")


def _visible(elements: list[Element]) -> list[Element]:
    """Drop elements whose text is blank and strip the rest: WebShop's text mode joins
    ``t.strip()`` of the page's non-empty text nodes (``web_agent_text_env.py:L210-216``)."""
    out = []
    for e in elements:
        t = e.text.strip()
        if t:
            out.append(e if t == e.text else Element(t, e.kind, e.group, e.selected))
    return out


def format_reward(r: float) -> str:
    """The score as shown on the done page (``repr`` of the float: round-trips exactly)."""
    return repr(float(r))
