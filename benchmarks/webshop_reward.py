"""WebShop reward fidelity: how often the variants and the type-word fallback change the reward.

    python benchmarks/webshop_reward.py                 # 1,500 cases, synthetic 1k catalog
    python benchmarks/webshop_reward.py --webshop-src ~/WebShop   # also against WebShop's own code

Cases are (goal, product, selected options) triples drawn from the env's own goals: one in
three buys the goal's product, the rest a random one; each option group is selected with
probability 0.8 (the goal's value with probability 0.6 when the product has it); one case in
five turns the goal's options into WebShop's list form (human goals).

Prints, for each comparison, the share of cases whose reward differs by more than 1e-6 and the
largest difference, then one JSON line:

* ``fixed_vs_webshop``: ``reward="fixed"`` against ``reward="webshop"`` (same type words);
* ``tokens_vs_spacy``: the dependency-free type words against spaCy's (needs the ``webshop`` extra);
* ``ours_vs_original`` (with ``--webshop-src``, a checkout of princeton-nlp/WebShop, and
  ``thefuzz==0.19.0`` installed): ``reward="webshop"`` against the checkout's
  ``web_agent_site/engine/goal.py:get_reward`` run on the same inputs. This executes that file
  from the path you give, with spaCy's model (or the fallback, ``--type-words tokens``) injected.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import types
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2po_gym.envs.webshop import reward as R  # noqa: E402
from t2po_gym.envs.webshop.catalog import Goal  # noqa: E402
from t2po_gym.envs.webshop.catalogs import get_catalog  # noqa: E402


def cases(n: int, num_products: int, seed: int):
    """``n`` (product, goal, price, selected) cases from the synthetic catalog (see the module doc)."""
    cat = get_catalog("synthetic", num_products=num_products, seed=0)
    rng = random.Random(seed)
    for k in range(n):
        g = cat.goals[rng.randrange(len(cat.goals))]
        p = cat.by_asin[g.asin] if k % 3 == 0 else cat.products[rng.randrange(len(cat.products))]
        sel = {}
        for grp, vals in p.options.items():
            if rng.random() < 0.8:
                want = [v for v in vals if v in g.goal_options.values()]
                sel[grp] = want[0] if want and rng.random() < 0.6 else rng.choice(vals)
        if k % 5 == 4 and g.goal_options:
            kw = {f.name: getattr(g, f.name) for f in fields(Goal)}
            kw.update(goal_options={str(i): v for i, v in enumerate(g.goal_options.values())}, option_list=True)
            g = Goal(**kw)
        yield p, g, cat.prices[p.asin], sel


def load_original(src: Path, type_mode: str):
    """WebShop's ``get_reward`` from a checkout, with our spaCy model or fallback injected."""
    goal_py = src / "web_agent_site" / "engine" / "goal.py"
    norm_py = src / "web_agent_site" / "engine" / "normalize.py"
    for f in (goal_py, norm_py):
        if not f.is_file():
            sys.exit(f"--webshop-src: {f} not found (point it at a princeton-nlp/WebShop checkout)")

    class Tok:
        def __init__(self, text: str, pos: str):
            self.text, self.pos_ = text, pos

    if type_mode == "spacy":
        nlp = R._spacy_nlp()
        if nlp is None:
            sys.exit("--type-words spacy needs pip install 't2po-gym[webshop]'")
    else:
        def nlp(title: str):
            return [Tok(w, "NOUN") for w in R.type_words(title, "tokens")]
    saved = {m: sys.modules.get(m) for m in ("spacy", "web_agent_site", "web_agent_site.engine",
                                             "web_agent_site.engine.normalize")}
    try:
        sys.modules["spacy"] = types.SimpleNamespace(load=lambda name: nlp)  # type: ignore[assignment]
        for m in ("web_agent_site", "web_agent_site.engine"):
            sys.modules[m] = types.ModuleType(m)
        norm = types.ModuleType("web_agent_site.engine.normalize")
        exec(compile(norm_py.read_text(), str(norm_py), "exec"), norm.__dict__)  # noqa: S102
        sys.modules["web_agent_site.engine.normalize"] = norm
        ns: dict = {"__name__": "webshop_goal"}
        exec(compile(goal_py.read_text(), str(goal_py), "exec"), ns)  # noqa: S102
    finally:
        for m, mod in saved.items():
            if mod is None:
                sys.modules.pop(m, None)
            else:
                sys.modules[m] = mod
    return ns["get_reward"]


def compare(pairs) -> dict:
    diffs = [abs(a - b) for a, b in pairs]
    bad = sum(d > 1e-6 for d in diffs)
    return {"cases": len(diffs), "differ": bad, "differ_pct": round(100 * bad / max(1, len(diffs)), 2),
            "max_abs_diff": round(max(diffs, default=0.0), 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1500)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--type-words", choices=("auto", "spacy", "tokens"), default="auto")
    ap.add_argument("--webshop-src", type=Path, default=None, help="a princeton-nlp/WebShop checkout")
    args = ap.parse_args()
    mode = args.type_words
    if mode == "auto":
        mode = "spacy" if R.spacy_available() else "tokens"
    data = list(cases(args.cases, args.products, args.seed))
    out: dict = {"type_words": mode}
    web = [R.purchase_reward(p, g, pr, s, type_mode=mode).reward for p, g, pr, s in data]
    fixed = [R.purchase_reward(p, g, pr, s, type_mode=mode, reward="fixed").reward for p, g, pr, s in data]
    out["fixed_vs_webshop"] = compare(zip(fixed, web))
    if R.spacy_available():
        tok = [R.purchase_reward(p, g, pr, s, type_mode="tokens").reward for p, g, pr, s in data]
        spa = web if mode == "spacy" else [R.purchase_reward(p, g, pr, s, type_mode="spacy").reward
                                           for p, g, pr, s in data]
        out["tokens_vs_spacy"] = compare(zip(tok, spa))
    if args.webshop_src is not None:
        get_reward = load_original(args.webshop_src.expanduser(), mode)
        orig = [get_reward(p.to_webshop_dict(), g.to_webshop_dict(), pr, dict(s)) for p, g, pr, s in data]
        out["ours_vs_original"] = compare(zip(web, orig))
    for k, v in out.items():
        if isinstance(v, dict):
            print(f"{k:18s} {v['differ']:5d} of {v['cases']} cases differ ({v['differ_pct']}%), "
                  f"max |diff| {v['max_abs_diff']}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
