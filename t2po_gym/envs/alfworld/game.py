"""The ALFWorld game record: a room's receptacles, objects and the task, as plain data.

A :class:`Game` is what the generator produces, what the native engine plays and
what :mod:`t2po_gym.envs.alfworld.textworld_engine` compiles to ALFWorld's
``game.tw-pddl``. Entity ids follow ALFWorld's mangled style
(``Apple_bar__plus_01_dot_00_bar_...``) and display names follow ALFWorld's
demangler ("apple 1"), so both engines print the same text.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

__all__ = ["Receptacle", "Item", "Task", "Game", "mangle", "display_names", "pddl_goal"]


def mangle(alfred_id: str) -> str:
    """ALFRED id (``Cabinet|+00.68|+00.50|-02.20``) -> PDDL-safe id (``Cabinet_bar__plus_00_dot_68...``)."""
    return (
        alfred_id.replace("|", "_bar_")
        .replace("+", "_plus_")
        .replace("-", "_minus_")
        .replace(".", "_dot_")
        .replace(",", "_comma_")
    )


def display_names(ids: list[str]) -> dict[str, str]:
    """Names as ALFWorld's demangler assigns them.

    The base name is the lower-cased part before the first ``_bar_`` (plus "basin" when
    the id mentions a basin); instances of a base name are numbered 1..n, and
    the ids are visited in sorted order taking numbers from the top (the first id in
    sorted order gets n).
    """
    # TextWorld's PDDL parser lower-cases identifiers before ALFWorld's demangler sees them.
    def base(i: str) -> str:
        low = i.lower()
        name = low.split("_bar_", 1)[0]
        if "basin" in low:
            name += "basin"
        return name

    counts = Counter(base(i) for i in ids)
    pools = {b: list(range(1, n + 1)) for b, n in counts.items()}
    names = {}
    for i in sorted(ids, key=str.lower):
        b = base(i)
        names[i] = f"{b} {pools[b].pop()}"
    return names


@dataclass
class Receptacle:
    """A static receptacle (one per location). ``rtype`` is ALFRED's class ("Cabinet")."""

    id: str
    rtype: str
    openable: bool
    name: str = ""


@dataclass
class Item:
    """An object, initially inside ``receptacle`` (a receptacle id).

    Scene objects (windows, light switches ...) that sit in no receptacle have
    ``receptacle == ""`` and stand at the location of the receptacle ``near``.
    """

    id: str
    otype: str
    receptacle: str
    pickupable: bool = True
    heatable: bool = False
    coolable: bool = False
    cleanable: bool = False
    sliceable: bool = False
    toggleable: bool = False
    name: str = ""
    near: str = ""

    @property
    def place(self) -> str:
        """The receptacle whose location the object shares."""
        return self.receptacle or self.near


@dataclass
class Task:
    """The goal, in ALFWorld's ``pddl_params`` terms (ALFRED class names)."""

    task_type: str
    object_target: str
    parent_target: str = ""
    toggle_target: str = ""
    mrecep_target: str = ""
    object_sliced: bool = False
    description: str = ""


@dataclass
class Game:
    """One generated (or loaded) ALFWorld game."""

    scene: int
    split: str
    index: int
    receptacles: list[Receptacle]
    items: list[Item]
    task: Task
    seed: int = 0
    walkthrough: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        names = display_names([r.id for r in self.receptacles] + [o.id for o in self.items])
        for r in self.receptacles:
            r.name = names[r.id]
        for o in self.items:
            o.name = names[o.id]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Game":
        d = json.loads(text)
        return cls(
            scene=d["scene"],
            split=d["split"],
            index=d["index"],
            receptacles=[Receptacle(**r) for r in d["receptacles"]],
            items=[Item(**o) for o in d["items"]],
            task=Task(**d["task"]),
            seed=d.get("seed", 0),
            walkthrough=list(d.get("walkthrough", [])),
        )


def pddl_goal(game: Game) -> str:
    """The ``(:goal ...)`` section of ``game``'s PDDL problem (ALFWorld's goal forms per task type)."""
    t = game.task
    o, r = f"{t.object_target}Type", f"{t.parent_target}Type"
    if t.task_type == "look_at_obj_in_light":
        return (
            "(:goal (and "
            f"(exists (?ot - object ?r - receptacle ?a - agent ?l - location) (and (objectType ?ot {t.toggle_target}Type) "
            "(toggleable ?ot) (isToggled ?ot) (receptacleAtLocation ?r ?l) (atLocation ?a ?l) (inReceptacle ?ot ?r))) "
            f"(exists (?o - object ?a - agent) (and (objectType ?o {o}) (holds ?a ?o)))))"
        )
    if t.task_type == "pick_two_obj_and_place":
        return (
            "(:goal (and (exists (?r - receptacle) (exists (?o1 - object) (and "
            f"(objectType ?o1 {o}) (receptacleType ?r {r}) (inReceptacle ?o1 ?r) "
            "(exists (?o2 - object) (and (not (= ?o1 ?o2)) "
            f"(objectType ?o2 {o}) (receptacleType ?r {r}) (inReceptacle ?o2 ?r))))))))"
        )
    state = {
        "pick_clean_then_place_in_recep": "(cleanable ?o) (isClean ?o) ",
        "pick_heat_then_place_in_recep": "(heatable ?o) (isHot ?o) ",
        "pick_cool_then_place_in_recep": "(coolable ?o) (isCool ?o) ",
    }.get(t.task_type, "")
    return (
        "(:goal (and (exists (?r - receptacle) (exists (?o - object) (and "
        f"{state}(inReceptacle ?o ?r) (objectType ?o {o}) (receptacleType ?r {r}))))))"
    )
