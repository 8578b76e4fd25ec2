"""The static description of one playable ALFWorld game, whatever its source.

A :class:`WorldSpec` is what the native engine (:class:`~t2po_gym.envs.alfworld.world.World`)
plays: locations, receptacles (each at one location), objects, the ``canContain``
table, the initial facts, the goal formula and the task. It comes from a generated
:class:`~t2po_gym.envs.alfworld.game.Game` (:func:`spec_from_game`) or from a real
ALFWorld ``game.tw-pddl`` (:mod:`t2po_gym.envs.alfworld.real_game`).

Entities are listed in the order of their lower-cased PDDL ids, the order in which
TextWorld lists them (it sorts facts, ``textworld/logic/__init__.py:L674``), so an
index order is a display order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from t2po_gym.envs.alfworld.game import Game, Task, pddl_goal

__all__ = ["RecSpec", "ObjSpec", "WorldSpec", "spec_from_game", "demangled_names", "GRAMMAR_VERSIONS",
           "OBJECT_PROPERTY_PREDICATES"]

#: The grammar versions the native engine speaks: ALFWorld's data as released (2.1.1)
#: and after its 2.1.1 -> 2.1.2 grammar patch (the ``alfworld`` package's ``alfred.twl2``).
GRAMMAR_VERSIONS = ("2.1.1", "2.1.2")


@dataclass(frozen=True)
class RecSpec:
    """A receptacle: lower-cased PDDL id, display name, ALFRED class, location index, openable."""

    id: str
    name: str
    rtype: str
    loc: int
    openable: bool


@dataclass(frozen=True)
class ObjSpec:
    """An object (``- object`` in PDDL): id, display name, ALFRED class and static properties."""

    id: str
    name: str
    otype: str
    pickupable: bool = False
    heatable: bool = False
    coolable: bool = False
    cleanable: bool = False
    sliceable: bool = False
    toggleable: bool = False
    receptacle_object: bool = False


#: The static PDDL object predicates (lower-cased, as in ``alfred.pddl``) and the
#: :class:`ObjSpec` field each one sets: read from real problems, written back for the goal test.
OBJECT_PROPERTY_PREDICATES = {
    "pickupable": "pickupable",
    "heatable": "heatable",
    "coolable": "coolable",
    "cleanable": "cleanable",
    "sliceable": "sliceable",
    "toggleable": "toggleable",
    "isreceptacleobject": "receptacle_object",
}


@dataclass
class WorldSpec:
    """Everything the native engine needs to play a game; immutable once built.

    Attributes:
        source: where it came from (a file path, or ``generated:<split>:<index>``).
        grammar: ``"2.1.1"`` or ``"2.1.2"`` (see :data:`GRAMMAR_VERSIONS`).
        agent: the agent's PDDL id (``agent1``).
        locations: lower-cased location ids; ``location_names`` their demangled names.
        start: index of the agent's start location.
        receptacles, objects: sorted by id.
        can_contain: ``(rtype, otype)`` pairs (ALFRED class names) that ``canContain``.
        init_in: ``(object, receptacle)`` index pairs of ``inReceptacle``.
        init_at: ``(object, location)`` index pairs of ``objectAtLocation``.
        init_opened: receptacle indices initially ``opened``.
        init_flags: ``ishot``/``iscool``/``isclean``/``issliced``/``istoggled``/``ison`` ->
            object indices initially true.
        in_receptacle_object: ``(inner, outer)`` object index pairs (static in ALFWorld's domain).
        goal: the PDDL goal formula (nested lists, lower-cased).
        task: the task (``pddl_params`` terms) and its sentence.
        has_help: whether the domain has the ``help`` action (2.1.2).
        static_facts: other initial facts (predicate -> argument tuples) no action changes.
        task_text: the grammar's task line ("Your task is to: ..."); empty: built from ``task``.
        clean_rtypes, heat_rtypes, cool_rtypes: receptacle classes (lower-cased) the domain's CleanObject,
            HeatObject and CoolObject accept (the released domain cleans in a Sink or a
            SinkBasin, the ``alfworld`` package's in a SinkBasin only).
    """

    source: str
    grammar: str
    agent: str
    locations: list[str]
    location_names: list[str]
    start: int
    receptacles: list[RecSpec]
    objects: list[ObjSpec]
    can_contain: frozenset
    init_in: list[tuple[int, int]]
    init_at: list[tuple[int, int]]
    init_opened: frozenset
    init_flags: dict[str, frozenset]
    in_receptacle_object: list[tuple[int, int]]
    goal: list
    task: Task
    has_help: bool = True
    static_facts: dict[str, frozenset] = field(default_factory=dict)
    task_text: str = ""
    clean_rtypes: tuple[str, ...] = ("sinkbasin",)
    heat_rtypes: tuple[str, ...] = ("microwave",)
    cool_rtypes: tuple[str, ...] = ("fridge",)

    def __post_init__(self) -> None:
        if self.grammar not in GRAMMAR_VERSIONS:
            raise ValueError(f"grammar must be one of {GRAMMAR_VERSIONS}, got {self.grammar!r}")


def demangled_names(ids: list[str]) -> dict[str, str]:
    """Display names as ALFWorld's ``Demangler`` gives them (``alfworld/agents/utils/misc.py:L17-L69``).

    ``ids`` are every entity id TextWorld knows (the arguments of the initial facts),
    lower-cased. The name is the part before the first ``_bar_`` (+ ``basin`` when the id
    mentions one); the ids are visited in sorted order and take the numbers of their
    name from the top (the first sorted id of ``n`` gets ``n``). Ids without ``_bar_``
    keep their text and get a trailing space, as ALFWorld's ``"{} {}".format(name, "")``.
    """
    ids = sorted(set(ids))
    counts: Counter = Counter()
    for i in ids:
        parts = i.split("_bar_", 1)
        if len(parts) > 1:
            counts[parts[0] + ("basin" if "basin" in i else "")] += 1
    pools = {name: list(range(1, n + 1)) for name, n in counts.items()}
    out = {}
    for i in ids:
        parts = i.split("_bar_", 1)
        if len(parts) == 1:
            out[i] = f"{i} "
        else:
            name = parts[0] + ("basin" if "basin" in i else "")
            out[i] = f"{name} {pools[name].pop()}"
    return out


def spec_from_game(game: Game) -> WorldSpec:
    """The spec of a generated game: one location per receptacle plus a start location.

    The goal is the PDDL goal :func:`~t2po_gym.envs.alfworld.textworld_engine.pddl_problem`
    writes for the TextWorld engine, read back, so both engines test the same formula.
    """
    from t2po_gym.envs.alfworld.assets import load_assets
    from t2po_gym.envs.alfworld.pddl import parse_sexpr

    assets = load_assets()
    recs = sorted(game.receptacles, key=lambda r: r.id.lower())
    items = sorted(game.items, key=lambda o: o.id.lower())
    # the exported problem names the locations loc_<k> in the game's receptacle order
    loc_of = {r.id: f"loc_{k}" for k, r in enumerate(game.receptacles)}
    locations = sorted(set(loc_of.values()) | {"loc_start"})
    loc_index = {l: k for k, l in enumerate(locations)}
    rec_index = {r.id: k for k, r in enumerate(recs)}
    rspecs = [
        RecSpec(id=r.id.lower(), name=r.name, rtype=r.rtype, loc=loc_index[loc_of[r.id]], openable=r.openable)
        for r in recs
    ]
    ospecs = [
        ObjSpec(
            id=o.id.lower(),
            name=o.name,
            otype=o.otype,
            pickupable=o.pickupable,
            heatable=o.heatable,
            coolable=o.coolable,
            cleanable=o.cleanable,
            sliceable=o.sliceable,
            toggleable=o.toggleable,
        )
        for o in items
    ]
    rtypes = {r.rtype for r in recs}
    can = frozenset((rt, ot) for rt in rtypes for ot in assets.can_contain.get(rt, ()))
    init_in = [(k, rec_index[o.receptacle]) for k, o in enumerate(items) if o.receptacle]
    init_at = [(k, rspecs[rec_index[o.place]].loc) for k, o in enumerate(items)]
    return WorldSpec(
        source=f"generated:{game.split}:{game.index}",
        grammar="2.1.2",
        agent="agent1",
        locations=locations,
        location_names=[f"{l} " for l in locations],
        start=loc_index["loc_start"],
        receptacles=rspecs,
        objects=ospecs,
        can_contain=can,
        init_in=init_in,
        init_at=init_at,
        init_opened=frozenset(),
        init_flags={},
        in_receptacle_object=[],
        goal=parse_sexpr(pddl_goal(game))[0][1],
        task=game.task,
        has_help=True,
    )
