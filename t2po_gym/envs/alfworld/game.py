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

__all__ = ["Receptacle", "Item", "Task", "Game", "mangle", "display_names"]


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
