"""Offline ALFWorld game generator, with the size and task mix of ALFWorld's own games.

Games are built from the 120 room layouts and the object/receptacle tables that the
``alfworld`` package ships (no game files are needed). Game ``i`` of a split is a
pure function of ``(split, i)``: it is regenerated on demand, so the 3553 training
games cost nothing until they are played. Every game is checked with the expert
before it is returned; a draw the expert cannot solve is redrawn.

A generated game is built the way ALFWorld's are (``alfworld/gen``): the room keeps
every receptacle of its layout (the instances of ``FloorPlan*-openable.json``, plus one
or more of each receptacle class the layout lists without a position: garbage cans,
stove burners, toasters ...), every pickupable object class of the layout appears with
1-3 instances (``MAX_NUM_OF_OBJ_INSTANCES = 3``) placed where ALFWorld's
``VAL_RECEPTACLE_OBJECTS`` allows, and the layout's scene objects (windows, light
switches, stove knobs, paintings, lamps ...) are there too. The task type of game ``i``
follows ALFWorld's mix for the split (train: 790 pick, 308 look, 650 clean, 459 heat,
533 cool, 813 pick-two) through a low-discrepancy sequence, so every prefix of a split
has the mix too. ``docs/alfworld.md`` has the measured figures against real games.

Splits: ``train`` and ``valid_seen`` draw from ALFWorld's training rooms (distinct
seeds), ``valid_unseen`` from its test rooms, as in ALFWorld.

The easy options ``task_types`` and ``max_receptacles`` (curricula, small models) are
off by default; with ``max_receptacles`` set, a room also holds fewer objects (at most
8 distractor classes, 1-2 instances each, no scene objects), as before these figures.
"""

from __future__ import annotations

import math
import random
import zlib
from functools import lru_cache

from t2po_gym.envs.alfworld.assets import GOAL_TEMPLATES, TASK_TYPES, Assets, load_assets
from t2po_gym.envs.alfworld.game import Game, Item, Receptacle, Task, mangle
from t2po_gym.envs.alfworld.world import World

__all__ = ["SPLIT_SIZES", "TASK_MIX", "generate_game", "split_size", "task_type_of"]

#: Default number of games per split (ALFWorld's sizes).
SPLIT_SIZES = {"train": 3553, "valid_seen": 140, "valid_unseen": 134}
_SPLIT_SALT = {"train": 0x51A7, "valid_seen": 0x5EE4, "valid_unseen": 0x0715}

#: ALFWorld's games per task type and split (its README's table; json_2.1.1 after the
#: loader's filtering): pick, look, clean, heat, cool, pick-two.
TASK_MIX = {
    "train": dict(zip(TASK_TYPES, (790, 308, 650, 459, 533, 813))),
    "valid_seen": dict(zip(TASK_TYPES, (35, 13, 27, 16, 25, 24))),
    "valid_unseen": dict(zip(TASK_TYPES, (24, 18, 31, 23, 21, 17))),
}

# The easy rooms of max_receptacles: how many kinds of movable object besides the targets.
_MAX_DISTRACTOR_TYPES = 8
# Instances per pickupable class (1-3, ALFWorld's MAX_NUM_OF_OBJ_INSTANCES): about 1.7 on
# average, as in real games (32 objects of 18 classes).
_INSTANCE_WEIGHTS = (0.4, 0.4, 0.2)
# Scene objects: classes the layouts list that are neither receptacles nor pickupable.
# Faucets, "Lamp" and shower heads are declared in real PDDL problems but have no facts.
_NOT_SCENE_OBJECTS = {"Faucet", "Lamp", "ShowerHead"}
# How many of a scene object class a room has (default 1).
_SCENE_COUNTS = {"StoveKnob": (4, 6), "Window": (1, 3), "Painting": (1, 3), "Blinds": (1, 2)}
# Receptacle classes a layout lists without a position: how many a room gets (default 1).
_EXTRA_RECEPTACLES = {"StoveBurner": (2, 4)}
_LAMP_HOMES = ("Desk", "SideTable", "Dresser", "Shelf", "DiningTable", "CoffeeTable")
_PHI = (math.sqrt(5) - 1) / 2


def split_size(split: str) -> int:
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SIZES)}")
    return SPLIT_SIZES[split]


def task_type_of(split: str, index: int, task_types: tuple[str, ...] = TASK_TYPES) -> str:
    """The task type of game ``index``: ALFWorld's mix of ``split`` over ``task_types``.

    A golden-ratio sequence over the mix's cumulative weights: any run of ``n``
    consecutive games holds each type ``n * share`` times, give or take 2.
    """
    mix = TASK_MIX[split]
    weights = [(t, mix[t]) for t in TASK_TYPES if t in task_types]
    total = sum(w for _, w in weights)
    u = (_SPLIT_SALT[split] / 65536 + index * _PHI) % 1.0
    acc = 0.0
    for t, w in weights:
        acc += w / total
        if u < acc:
            return t
    return weights[-1][0]


def _coord(rng: random.Random) -> str:
    return f"{rng.uniform(-3, 3):+06.2f}"


def _alfred_id(rng: random.Random, otype: str, used: set) -> str:
    while True:
        aid = f"{otype}|{_coord(rng)}|{_coord(rng)}|{_coord(rng)}"
        mid = mangle(aid)
        if mid not in used:
            used.add(mid)
            return mid


def _receptacles(assets: Assets, scene: int, rng: random.Random, used: set, cap: int | None) -> list[Receptacle]:
    present, instances = assets.scene(scene)
    recs = []
    listed = set()
    for aid in instances:
        rtype = aid.split("|", 1)[0]
        if rtype in ("Sink", "SinkBasin"):
            rtype, aid = "SinkBasin", "Sink|" + aid.split("|", 1)[1] + "|SinkBasin"
        elif rtype in ("Bathtub", "BathtubBasin"):
            rtype, aid = "BathtubBasin", "Bathtub|" + aid.split("|", 1)[1] + "|BathtubBasin"
        if rtype not in assets.can_contain:
            continue
        mid = mangle(aid)
        if mid in used:
            continue
        used.add(mid)
        listed.add(rtype)
        recs.append(Receptacle(id=mid, rtype=rtype, openable=rtype in assets.openable))
    if cap is None:
        # receptacle classes the layout lists without a position (ALFWorld's games have them)
        for rtype in present:
            if rtype in ("Sink", "Bathtub"):
                rtype += "Basin"
            if rtype in listed or rtype not in assets.can_contain or rtype not in assets.static_receptacles:
                continue
            listed.add(rtype)
            lo, hi = _EXTRA_RECEPTACLES.get(rtype, (1, 1))
            for _ in range(rng.randint(lo, hi)):
                base = rtype[: -len("Basin")] if rtype.endswith("Basin") else rtype
                mid = _alfred_id(rng, base, used)
                if rtype.endswith("Basin"):
                    mid += "_bar_" + rtype
                recs.append(Receptacle(id=mid, rtype=rtype, openable=rtype in assets.openable))
    elif len(recs) > cap:
        # Keep rooms readable: drop surplus instances of the most repeated types first.
        rng.shuffle(recs)
        recs.sort(key=lambda r: sum(1 for x in recs if x.rtype == r.rtype))
        recs = recs[:cap]
    return sorted(recs, key=lambda r: r.id)


def _task_options(assets: Assets, scene: int, recs: list[Receptacle]) -> list[tuple]:
    """Every (task_type, object, receptacle, toggle) the room supports."""
    present, _ = assets.scene(scene)
    kind = assets.scene_kind(scene)
    rtypes = {r.rtype for r in recs}
    objs = [o for o in present if o in assets.pickupable]
    lamps = [o for o in present if o in ("DeskLamp", "FloorLamp")]
    out = []
    for tt in TASK_TYPES:
        if kind not in assets.goals_valid[tt]:
            continue
        if tt == "look_at_obj_in_light":
            lamp_homes = [r for r in rtypes if r in ("Desk", "SideTable", "Dresser", "Shelf", "DiningTable", "CoffeeTable")]
            if not lamp_homes:
                continue
            for lamp in lamps:
                for o in objs:
                    if any(o in assets.can_contain[r] for r in rtypes):
                        out.append((tt, o, "", lamp))
            continue
        need = {
            "pick_heat_then_place_in_recep": ("Microwave", assets.heatable),
            "pick_cool_then_place_in_recep": ("Fridge", assets.coolable),
            "pick_clean_then_place_in_recep": ("SinkBasin", assets.cleanable),
        }.get(tt)
        for o in objs:
            if need is not None and (need[0] not in rtypes or o not in need[1]):
                continue
            for r in sorted(rtypes):
                if o not in assets.can_contain.get(r, ()):
                    continue
                if need is not None and r == need[0]:
                    continue
                # the object must have somewhere else to start
                if not any(o in assets.can_contain[x] for x in rtypes if x != r):
                    continue
                out.append((tt, o, r, ""))
    return out


def _draw(
    assets: Assets, split: str, index: int, attempt: int, task_types: tuple[str, ...], cap: int | None
) -> Game | None:
    seed = zlib.crc32(f"{split}:{index}:{attempt}".encode()) ^ _SPLIT_SALT[split]
    rng = random.Random(seed)
    tt = task_type_of(split, index, task_types)
    pool = assets.test_scenes if split == "valid_unseen" else assets.train_scenes
    scenes = [s for s in pool if assets.scene_kind(s) in assets.goals_valid[tt]]
    scene = rng.choice(scenes)
    used: set = set()
    recs = _receptacles(assets, scene, rng, used, cap)
    if len(recs) < 2:
        return None
    options = [opt for opt in _task_options(assets, scene, recs) if opt[0] == tt]
    if not options:
        return None
    tt, otype, rtype, toggle = rng.choice(options)

    present, _ = assets.scene(scene)
    items: list[Item] = []

    def place(kind: str, forbid: str = "") -> str | None:
        homes = [r for r in recs if kind in assets.can_contain.get(r.rtype, ()) and r.rtype != forbid]
        if not homes:
            return None
        return rng.choice(homes).id

    def add(kind: str, count: int, forbid: str = "") -> None:
        for _ in range(count):
            home = place(kind, forbid)
            if home is None:
                return
            items.append(
                Item(
                    id=_alfred_id(rng, kind, used),
                    otype=kind,
                    receptacle=home,
                    heatable=kind in assets.heatable,
                    coolable=kind in assets.coolable,
                    cleanable=kind in assets.cleanable,
                    sliceable=kind in assets.sliceable,
                )
            )

    if cap is None:
        n_target = rng.choices((1, 2, 3), _INSTANCE_WEIGHTS)[0]
        if tt == "pick_two_obj_and_place":
            n_target = max(2, n_target)
    else:
        n_target = rng.randint(2, 3) if tt == "pick_two_obj_and_place" else rng.randint(1, 2)
    # Targets never start in a goal-type receptacle (the game would be won at reset).
    add(otype, n_target, forbid=rtype)
    if sum(1 for it in items if it.otype == otype) < (2 if tt == "pick_two_obj_and_place" else 1):
        return None
    if toggle:
        homes = [r for r in recs if r.rtype in _LAMP_HOMES]
        home = rng.choice(homes)
        items.append(
            Item(id=_alfred_id(rng, toggle, used), otype=toggle, receptacle=home.id, pickupable=False, toggleable=True)
        )
    others = [o for o in present if o in assets.pickupable and o != otype]
    rng.shuffle(others)
    if cap is None:
        for kind in others:
            add(kind, rng.choices((1, 2, 3), _INSTANCE_WEIGHTS)[0])
        _add_scene_objects(assets, present, recs, items, rng, used, skip=toggle)
    else:
        for kind in others[:_MAX_DISTRACTOR_TYPES]:
            add(kind, rng.randint(1, 2))

    template = rng.choice(GOAL_TEMPLATES[tt])
    desc = template.format(obj=otype.lower(), recep=rtype.lower(), toggle=toggle.lower(), mrecep="")
    task = Task(task_type=tt, object_target=otype, parent_target=rtype, toggle_target=toggle, description=desc)
    game = Game(scene=scene, split=split, index=index, receptacles=recs, items=items, task=task, seed=seed)
    world = World(game)
    if world.won():
        return None
    from t2po_gym.envs.alfworld.expert import expert_walkthrough

    walk = expert_walkthrough(world)
    if walk is None:
        return None
    game.walkthrough = walk
    return game


def _add_scene_objects(
    assets: Assets, present, recs: list[Receptacle], items: list[Item], rng: random.Random, used: set, skip: str
) -> None:
    """The layout's non-pickupable objects (windows, switches, lamps ...), mostly in no receptacle."""
    kinds = [
        o
        for o in present
        if o not in assets.pickupable and o not in assets.static_receptacles and o not in _NOT_SCENE_OBJECTS
    ]
    if any(r.rtype == "SinkBasin" for r in recs):
        kinds.append("Sink")  # real games hold the sink itself as an object beside its basin
    for kind in kinds:
        lo, hi = _SCENE_COUNTS.get(kind, (1, 1))
        n = rng.randint(lo, hi) - (1 if kind == skip else 0)
        for _ in range(n):
            lamp = kind in ("DeskLamp",)
            homes = [r for r in recs if r.rtype in _LAMP_HOMES] if lamp else []
            home = rng.choice(homes).id if homes else ""
            items.append(
                Item(
                    id=_alfred_id(rng, kind, used),
                    otype=kind,
                    receptacle=home,
                    near="" if home else rng.choice(recs).id,
                    pickupable=False,
                    toggleable=kind in assets.toggleable,
                )
            )


def generate_game(
    split: str,
    index: int,
    *,
    task_types: tuple[str, ...] | list[str] | None = None,
    max_receptacles: int | None = None,
) -> Game:
    """Game ``index`` of ``split`` (deterministic; solvable by the expert).

    Args:
        task_types: restrict to these of ALFWorld's six task types (default: all).
        max_receptacles: at most this many receptacles per room (default: the layout's
            all; >= 2), and fewer objects. Smaller rooms make easier games (curricula,
            small models).
    """
    size = split_size(split)
    if not 0 <= index < size:
        raise IndexError(f"game index {index} out of range for split {split!r} (0..{size - 1})")
    types = tuple(TASK_TYPES if task_types is None else task_types)
    unknown = sorted(set(types) - set(TASK_TYPES))
    if unknown or not types:
        raise ValueError(f"unknown or empty task_types {unknown or types}; choose from {list(TASK_TYPES)}")
    cap = None if max_receptacles is None else int(max_receptacles)
    if cap is not None and cap < 2:
        raise ValueError(f"max_receptacles must be >= 2, got {max_receptacles}")
    return _generate(split, index, types, cap)


@lru_cache(maxsize=1024)
def _generate(split: str, index: int, types: tuple[str, ...], cap: int | None) -> Game:
    # cached: an env resets to the same few games often (groups, evaluation sweeps); the
    # Game is never mutated by the engine
    assets = load_assets()
    for attempt in range(200):
        game = _draw(assets, split, index, attempt, types, cap)
        if game is not None:
            return game
    raise RuntimeError(f"could not generate a solvable game for {split}:{index}")  # pragma: no cover
