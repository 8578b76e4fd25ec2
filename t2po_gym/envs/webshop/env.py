"""``T2PO/WebShop-v0``: WebShop in text mode, on an embedded search engine."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import numpy as np

from t2po_gym.envs.webshop.catalog import Catalog, Goal
from t2po_gym.envs.webshop.catalogs import get_catalog
from t2po_gym.envs.webshop.reward import REWARD_VARIANTS, TYPE_WORD_MODES
from t2po_gym.envs.webshop.shop import BUY_NOW, NEXT_PAGE, PREV_PAGE, Shop
from t2po_gym.protocol import sanitize_text
from t2po_gym.search.base import Retriever
from t2po_gym.text_env import TextEnv, Transition, option_index

__all__ = ["WebShopEnv", "parse_webshop_command", "catalog_retriever"]

SEARCH_PLACEHOLDER = "search[<query>]"
#: the search entry of the released prompt's action list (``env_manager.py:L462-463``)
RELEASED_SEARCH_PLACEHOLDER = "search[<your query>]"
# WebShop's parse_action (engine.py:L117-128): greedy name, then the last "[...]" pair; text after
# the final "]" is ignored
_WEBSHOP_ACTION = re.compile(r"(.+)\[(.+)\]")


def parse_webshop_action(command: str) -> tuple[str, str | None]:
    """WebShop's own ``parse_action`` (``web_agent_site/engine/engine.py:L117-128``):
    ``(name, argument)``, the argument ``None`` when the command has no ``name[arg]`` shape."""
    m = _WEBSHOP_ACTION.match(command)
    if m is None:
        return command, None
    return m.group(1), m.group(2)


def parse_webshop_command(command: str) -> tuple[str, str] | str:
    """Split ``search[query]`` / ``click[target]`` into ``(verb, argument)``.

    Returns the reason as a ``str`` when the command is malformed. Linear time: the
    argument runs from the first ``[`` to the final ``]``.
    """
    cmd = command.strip()
    open_at = cmd.find("[")
    if open_at < 0 or not cmd.endswith("]"):
        return "expected search[...] or click[...]"
    verb = cmd[:open_at].strip().lower()
    if verb not in ("search", "click"):
        return f"unknown verb {sanitize_text(verb, 40)!r}: use search[...] or click[...]"
    return verb, cmd[open_at + 1 : -1].strip()


def catalog_retriever(catalog: Catalog, engine: str = "tantivy") -> Retriever:
    """The process-wide search engine over ``catalog`` (index built or opened once, cached on
    disk by the catalog's content hash). ``engine``: ``tantivy`` or ``lucene``."""
    from t2po_gym.search.base import shared_retriever

    if engine == "tantivy":
        from t2po_gym.search.tantivy_engine import TantivyRetriever

        fp = catalog.fingerprint
        return shared_retriever(("tantivy", fp, None),
                                lambda: TantivyRetriever(catalog.documents(), fingerprint=fp))
    if engine == "lucene":
        from t2po_gym.search.lucene_engine import LuceneRetriever

        fp = catalog.fingerprint
        return shared_retriever(("lucene", fp, None), lambda: LuceneRetriever(catalog.documents(), fingerprint=fp))
    raise ValueError(f"search_engine must be 'tantivy' or 'lucene', got {engine!r}")


class WebShopEnv(TextEnv):
    """WebShop (Yao et al., 2022) as a multi-turn text environment.

    ## Description
    The agent shops for a product described by an instruction ("i need a sulfate free shampoo
    with scent: lavender, and price lower than 30.00 dollars"). It searches the catalog,
    browses result pages (10 per page of at most 50), opens products, reads their
    description / features / reviews, selects options and buys. The shop, its pages and its
    reward follow WebShop; the catalog is WebShop's own files (``catalog="webshop"``) or a
    deterministic synthetic one (default) of 1k/10k/100k products in five categories.

    ## Action Space
    The raw LLM response (``Text``). The command inside ``<action>...</action>`` is
    ``search[<query>]`` (only on the search page) or ``click[<target>]`` where target is one
    of the page's clickables (``back to search``, ``< prev``, ``next >``, a product id, an
    option value, ``description``, ``features``, ``reviews``, ``buy now``), matched
    case-insensitively. Anything else is a no-op with an explanation (``action_valid=False``).

    ## Observation Space
    ``Text``: in ``observation_mode="prompt"`` the agent prompt (task, recent history,
    admissible actions, format instruction); in ``"raw"`` the page text, WebShop's visible
    strings joined with `` [SEP] ``. ``info["anchor"]`` is the page text.
    ``info["admissible_actions"]`` lists ``search[<query>]`` where a search box exists and
    ``click[...]`` for every clickable.

    ## Rewards
    0 until ``buy now``; then WebShop's
    ``r = r_type * (attribute matches + option matches + 1[price <= limit]) / (|attributes| + |options| + 1)``
    (see :mod:`t2po_gym.envs.webshop.reward`). ``info["won"]`` iff r == 1, ``task_score`` = r.

    ## Starting State
    The search page of a goal drawn uniformly from the split with ``np_random``
    (``reset(seed=s)`` is reproducible), or the goal ``options={"goal_index": i}``.

    ## Episode End
    Terminated at ``buy now``; truncated after ``max_turns`` (15) steps.

    ## Arguments
    ``catalog`` ("synthetic" | "webshop" | a ``Catalog``), ``num_products`` (synthetic size,
    default 1000), ``catalog_seed``, ``data_path`` (real files; default ``$WEBSHOP_DATA``),
    ``human_goals``, ``split`` ("train" | "test" | "all"; test = goals [0, 500)),
    ``search_engine`` ("tantivy" | "lucene"), ``show_attrs``, ``type_words``
    ("auto" | "spacy" | "tokens"; None: "auto" for the webshop reward, "tokens" for the fixed one),
    ``reward`` ("webshop": WebShop's ``get_reward`` with its quirks, the default; "fixed": the
    project's corrected variant; see :mod:`t2po_gym.envs.webshop.reward` and ``docs/webshop.md``),
    ``protocol`` ("released" | "strict") and ``prompt_template`` (see
    :class:`~t2po_gym.text_env.TextEnv`), plus TextEnv's ``observation_mode``, ``history_length``
    (None: 2), ``strict_format``, ``max_turns``, ``render_mode``.

    With ``protocol="released"`` (default) a response is played as the released T2PO code plays
    it: the first ``<action>`` block, lower-cased, is executed even when the response is invalid
    (no think block, CJK text...), a command WebShop cannot perform returns the unchanged page,
    ``info["action_valid"]`` is the released format check, the prompt and ``info["anchor"]`` show
    the page after the instruction with every part quoted, and the admissible actions are
    ``search[<your query>]`` (and ``click[search]``) on the search page plus ``click[...]`` for
    each clickable, in WebShop's order.

    >>> import gymnasium as gym
    >>> env = gym.make("T2PO/WebShop-v0", observation_mode="raw", protocol="strict", strict_format=False)
    >>> obs, info = env.reset(seed=123)
    >>> obs.startswith("WebShop [SEP] Instruction:")
    True

    ## Vectorized environment
    ``gym.make_vec("T2PO/WebShop-v0", num_envs=16)``: every env shares one catalog and one
    search index (process-wide caches keyed by the catalog's content hash).
    """

    default_max_turns: ClassVar[int] = 15
    released_needs_admissible: ClassVar[bool] = False  # webshop projection.py:L100-106: format only
    released_prompt_max_chars: ClassVar[int | None] = 13000  # env_manager.py:L502-508
    released_prompt: ClassVar[tuple[str, str]] = (
        "You are an expert autonomous agent operating in the WebShop e-commerce environment.\n"
        "Your task is to: {task_description}.\n"
        "Your current observation is: {current_observation}.\n"
        "Your admissible actions of the current situation are:\n[\n{available_actions}\n].\n\n"
        "Now it's your turn to take one action for the current step. First reason step by step "
        "about the current situation and about which admissible action best advances the shopping "
        "goal; this reasoning MUST be enclosed within <think> </think> tags. Then choose an "
        "admissible action for the current step and write it within <action> </action> tags.\n",
        "You are an expert autonomous agent operating in the WebShop e-commerce environment.\n"
        "Your task is to: {task_description}.\n"
        "Before this step you have taken {step_count} step(s). Your most recent {history_length} "
        "observations and the actions you took: {action_history}\n"
        "You are now at step {current_step} and your current observation is: {current_observation}.\n"
        "Your admissible actions of the current situation are:\n[\n{available_actions}\n].\n\n"
        "Now it's your turn to take one action for the current step. First reason step by step "
        "about the current situation and about which admissible action best advances the shopping "
        "goal; this reasoning MUST be enclosed within <think> </think> tags. Then choose an "
        "admissible action for the current step and write it within <action> </action> tags.\n",
    )
    prompt_intro: ClassVar[str] = (
        "You are an expert autonomous agent operating in the WebShop e-commerce platform."
    )
    prompt_instruction: ClassVar[str] = (
        "Now it's your turn to take one action for the current step. First reason step by step "
        "about the current situation inside <think> </think> tags. Then choose one admissible "
        "action and write it inside <action> </action> tags, e.g. <action>search[red running "
        "shoes]</action> or <action>click[buy now]</action>."
    )

    def __init__(
        self,
        *,
        catalog: str | Catalog = "synthetic",
        num_products: int | None = None,
        catalog_seed: int = 0,
        data_path: str | os.PathLike | None = None,
        human_goals: bool = True,
        split: str = "train",
        search_engine: str = "tantivy",
        show_attrs: bool = False,
        type_words: str | None = None,
        reward: str = "webshop",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if type_words is not None and type_words not in TYPE_WORD_MODES:
            raise ValueError(f"type_words must be one of {TYPE_WORD_MODES} or None, got {type_words!r}")
        if reward not in REWARD_VARIANTS:
            raise ValueError(f"reward must be one of {REWARD_VARIANTS}, got {reward!r}")
        self.reward_variant = reward
        self.catalog = get_catalog(catalog, num_products=num_products, seed=catalog_seed,
                                   data_path=data_path, human_goals=human_goals)
        self.goal_indices = self.catalog.split(split)
        if len(self.goal_indices) == 0:
            raise ValueError(_no_goals_message(self.catalog, split, human_goals, num_products))
        self.split = split
        self.retriever = catalog_retriever(self.catalog, search_engine)
        self.shop = Shop(self.catalog, self._search, show_attrs=show_attrs, type_mode=type_words,
                         reward_variant=reward)
        self.goal: Goal | None = None
        self.goal_index = -1
        self._n_searches = 0

    # ----------------------------------------------------------------- hooks
    def _search(self, query: str) -> list[str]:
        return [h.doc_id for h in self.retriever.search(query, 50)]

    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        if "goal_index" in options:
            idx = option_index(options["goal_index"], "goal_index", len(self.catalog.goals))
        else:
            idx = int(self.goal_indices[int(self.np_random.integers(len(self.goal_indices)))])
        self.goal_index = idx
        self._n_searches = 0
        self.goal = self.catalog.goals[idx]
        self.shop.start(self.goal)
        return self.shop.text(), self.goal.instruction_text

    def _page_text(self) -> str:
        return self.shop.text()

    def _admissible_actions(self) -> list[str]:
        if self.protocol == "released":
            # WebShop's get_available_actions lists the search page's "Search" button as a
            # clickable (web_agent_text_env.py:L138-141), though clicking it does nothing (L109)
            acts = [RELEASED_SEARCH_PLACEHOLDER, "click[search]"] if self.shop.has_search_box else []
            return acts + [f"click[{k}]" for k in self.shop.clickables()]
        acts = [SEARCH_PLACEHOLDER] if self.shop.has_search_box else []
        acts += [f"click[{k}]" for k in self.shop.clickables()]
        return acts

    def _check_command(self, command: str) -> str | None:
        if self.protocol == "released":
            # web_agent_text_env.py:L100-112: a search with a non-empty argument (on any page),
            # or a click on a clickable other than "search"; anything else leaves the page as it is
            name, arg = parse_webshop_action(command)
            arg = arg.lower() if arg is not None else None
            if name == "search" and arg:
                return None
            if name == "click" and arg is not None and arg in self.shop.clickables() and arg != "search":
                return None
            return "not a WebShop action on this page"
        parsed = parse_webshop_command(command)
        if isinstance(parsed, str):
            return parsed
        verb, arg = parsed
        if verb == "search":
            if not self.shop.has_search_box:
                return "there is no search box on this page (click[back to search] first)"
            if not arg:
                return "search[] needs a query, e.g. search[red running shoes]"
            return None
        if arg.lower() not in self.shop.clickables():
            return f"{sanitize_text(arg, 100)!r} is not clickable on this page"
        return None

    def _apply_command(self, command: str) -> Transition:
        if self.protocol == "released":
            name, arg = parse_webshop_action(command)
            verb, arg = name, (arg or "").lower()
        else:
            verb, arg = parse_webshop_command(command)  # type: ignore[misc]
        if verb == "search":
            self._n_searches += 1
            self.shop.search(arg)
            return Transition(self._page_text())
        outcome = self.shop.click(arg)
        text = self._page_text()
        if outcome is None:
            return Transition(text)
        r = float(outcome.reward)
        return Transition(text, reward=r, terminated=True, won=r == 1.0, task_score=r)

    # ------------------------------------------------------------ released protocol
    def _released_reply(self, command: str) -> Transition:
        # an action WebShop cannot perform returns the unchanged page (web_agent_text_env.py:L111-115)
        return Transition(self._page_text())

    def _released_view(self, raw: str) -> str:
        """The page as the released manager shows it (``env_manager.py:L440-453``): the parts
        after the instruction, each in single quotes, joined by `` [SEP] ``; a page without the
        instruction (the done page) is unchanged."""
        parts = raw.split(" [SEP] ")
        try:
            i = parts.index(self._task)
        except ValueError:
            return raw
        return " [SEP] ".join(f"'{p}'" for p in parts[i + 1 :])

    def _released_actions_text(self, actions: list[str]) -> str:
        return "\n".join(f"'{a}'," for a in actions)  # env_manager.py:L484

    def _render_text(self) -> str:
        return self._raw_obs

    # ----------------------------------------------------------------- oracle
    def oracle_action(self) -> str | None:
        """The oracle's next command: search the target's title, page to it, open it, select
        the goal's options (in group order) and buy. Returns ``None`` after the episode ended."""
        if self._ended or self.goal is None:
            return None
        shop, goal = self.shop, self.goal
        target = goal.asin
        if shop.page == "search":
            queries = [goal.name, f"{goal.query} {' '.join(goal.attributes)}", goal.query]
            return f"search[{queries[min(self._n_searches, 2)] or goal.query}]"
        if shop.page == "done":
            return None
        if shop.page == "sub":
            return f"click[{PREV_PAGE.lower()}]"
        if shop.page == "results":
            if target in shop.results:
                pos = shop.results.index(target) // 10 + 1
                if pos == shop.page_no:
                    return f"click[{target.lower()}]"
                return f"click[{(NEXT_PAGE if pos > shop.page_no else PREV_PAGE).lower()}]"
            if self._n_searches < 3:
                return "click[back to search]"
            return f"click[{shop.results[0].lower()}]" if shop.results else None
        if shop.page == "item":
            if shop.asin != target and self._n_searches < 3:
                return f"click[{PREV_PAGE.lower()}]"
            product = shop.product
            assert product is not None
            wanted = {v.lower() for v in goal.goal_options.values()}
            for group, values in product.options.items():
                if shop.options.get(group) in wanted:
                    continue
                for v in values:
                    if v in wanted and v != shop.options.get(group):
                        return f"click[{v}]"
            return f"click[{BUY_NOW.lower()}]"
        return None


def _no_goals_message(catalog: Catalog, split: str, human_goals: bool, num_products: int | None) -> str:
    """Why a split is empty, what the catalog does hold, and how to ask for it."""
    n = len(catalog.goals)
    per_split = {name: len(catalog.split(name)) for name in ("test", "train", "all")} if n else {}
    held = ", ".join(f"{k}: {v}" for k, v in per_split.items()) or "none in any split"
    with_ins = sum(1 for p in catalog.products if p.instruction_text and p.instruction_attributes)
    hints = []
    if n:
        hints.append("split='all' (or a split listed above)")
    if human_goals:
        hints.append(f"human_goals=False (synthetic goals from items_ins_v2: {with_ins} of the "
                     f"{len(catalog.products)} products have an instruction)")
    if num_products is not None:
        hints.append("num_products=None (the whole products file)")
    kind = "human goals (items_human_ins.json)" if human_goals else "synthetic goals"
    return (f"{catalog.source}: no goals in split {split!r}. The {len(catalog.products)} products loaded "
            f"give {n} {kind} ({held}; test = goals [0, 500), train = [500, n)). "
            + ("Ask for them with " + " or ".join(hints) + "." if hints else ""))


def goal_indices_array(env: WebShopEnv) -> np.ndarray:
    """The goal indices of the env's split as an array (handy for evaluation loops)."""
    return np.asarray(env.goal_indices)
