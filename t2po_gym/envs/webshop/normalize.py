"""WebShop's colour normalisation of option values (``web_agent_site/engine/normalize.py``).

Before fuzzy-matching options, WebShop replaces each option by the first entry of its
colour list contained in it (``normalize_color``, ``normalize.py:L57-62``). The list is
ordered alphabetically, and ``in`` is a substring test, so the first hit is not always the
colour a reader sees: ``"light wash"`` becomes ``"ash"``, ``"day cream"`` becomes
``"cream"``, ``"black leather"`` stays ``"black"``.

When the goal's options are a dict (synthetic goals), ``get_reward`` passes
``goal_options.items()`` (``goal.py:L240``), so ``normalize_color`` receives a
``(name, value)`` tuple; ``in`` on a tuple is an *equality* test against its two elements,
so such a goal option is only replaced when its name or value *is* a colour word, and is
otherwise kept as the tuple. :func:`normalize_color` reproduces both behaviours.
"""

from __future__ import annotations

from typing import Any

__all__ = ["COLOR_SET", "normalize_color"]

#: WebShop's colour words, in its order (``normalize.py:L4-19``); the order decides ties.
COLOR_SET: tuple[str, ...] = tuple(
    """alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze
    brown burgundy camel camo caramel champagne charcoal cheetah chestnut chocolate christmas
    coffee cognac copper coral cranberry cream crystal dark denim eggplant elephant espresso
    fuchsia gold granite grape graphite grass gray green grey heather indigo ivory ivy khaki
    lavender lemon leopard light lilac lime magenta maroon mauve merlot midnight mint mocha
    multicolor mushroom mustard natural navy nude olive orange peach pewter pink plum purple
    rainbow red rose royal rust sand sapphire seashell silver skull slate steel stone stonewash
    sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow""".split()
)


def normalize_color(value: Any) -> Any:
    """The first colour word ``c`` of :data:`COLOR_SET` with ``c in value``, else ``value``.

    For a ``str`` that is a substring test; for a tuple (a dict-form goal option) it is
    membership, as in WebShop. The input is returned unchanged (same object) when nothing matches.
    """
    for color in COLOR_SET:
        if color in value:
            return color
    return value
