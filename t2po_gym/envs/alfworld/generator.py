"""Offline ALFWorld game generator.

Games are built from the 120 room layouts and the object/receptacle tables that the
``alfworld`` package ships (no game files are needed). Game ``i`` of a split is a
pure function of ``(split, i)``: it is regenerated on demand, so the 3553 training
games cost nothing until they are played. Every game is checked with the expert
before it is returned; a draw the expert cannot solve is redrawn.

Splits: ``train`` and ``valid_seen`` draw from ALFWorld's training rooms (distinct
seeds), ``valid_unseen`` from its test rooms, as in ALFWorld.
"""

from __future__ import annotations

import random
import zlib

from t2po_gym.envs.alfworld.assets import GOAL_TEMPLATES, TASK_TYPES, Assets, load_assets
from t2po_gym.envs.alfworld.game import Game, Item, Receptacle, Task, mangle
from t2po_gym.envs.alfworld.world import World

__all__ = ["SPLIT_SIZES", "generate_game", "split_size"]

#: Default number of games per split (ALFWorld's sizes).
SPLIT_SIZES = {"train": 3553, "valid_seen": 140, "valid_unseen": 134}
_SPLIT_SALT = {"train": 0x51A7, "valid_seen": 0x5EE4, "valid_unseen": 0x0715}

# How many kinds of movable object a room holds besides the targets.
_MAX_DISTRACTOR_TYPES = 8
_MAX_RECEPTACLES = 18


def split_size(split: str) -> int:
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SIZES)}")
    return SPLIT_SIZES[split]


def _coord(rng: random.Random) -> str:
    return f"{rng.uniform(-3, 3):+06.2f}"


def _alfred_id(rng: random.Random, otype: str, used: set) -> str:
    while True:
        aid = f"{otype}|{_coord(rng)}|{_coord(rng)}|{_coord(rng)}"
        mid = mangle(aid)
        if mid not in used:
            used.add(mid)
            return mid


def _receptacles(assets: Assets, scene: int, rng: random.Random, used: set, cap: int) -> list[Receptacle]:
    _, instances = assets.scene(scene)
    recs = []
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
        recs.append(Receptacle(id=mid, rtype=rtype, openable=rtype in assets.openable))
    if len(recs) > cap:
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
    assets: Assets, split: str, index: int, attempt: int, task_types: tuple[str, ...], cap: int
) -> Game | None:
    seed = zlib.crc32(f"{split}:{index}:{attempt}".encode()) ^ _SPLIT_SALT[split]
    rng = random.Random(seed)
    scenes = assets.test_scenes if split == "valid_unseen" else assets.train_scenes
    scene = rng.choice(scenes)
    used: set = set()
    recs = _receptacles(assets, scene, rng, used, cap)
    if len(recs) < 2:
        return None
    options = _task_options(assets, scene, recs)
    if not options:
        return None
    by_type: dict[str, list] = {}
    for opt in options:
        if opt[0] in task_types:
            by_type.setdefault(opt[0], []).append(opt)
    if not by_type:
        return None
    task_type = rng.choice(sorted(by_type))
    tt, otype, rtype, toggle = rng.choice(by_type[task_type])

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

    n_target = rng.randint(2, 3) if tt == "pick_two_obj_and_place" else rng.randint(1, 2)
    # Targets never start in a goal-type receptacle (the game would be won at reset).
    add(otype, n_target, forbid=rtype)
    if sum(1 for it in items if it.otype == otype) < (2 if tt == "pick_two_obj_and_place" else 1):
        return None
    if toggle:
        homes = [r for r in recs if r.rtype in ("Desk", "SideTable", "Dresser", "Shelf", "DiningTable", "CoffeeTable")]
        home = rng.choice(homes)
        items.append(
            Item(id=_alfred_id(rng, toggle, used), otype=toggle, receptacle=home.id, pickupable=False, toggleable=True)
        )
    others = [o for o in present if o in assets.pickupable and o != otype]
    rng.shuffle(others)
    for kind in others[:_MAX_DISTRACTOR_TYPES]:
        add(kind, rng.randint(1, 2), forbid=rtype if kind == otype else "")

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
        max_receptacles: at most this many receptacles per room (default 18; >= 2).
            Smaller rooms make easier games (curricula, small models).
    """
    size = split_size(split)
    if not 0 <= index < size:
        raise IndexError(f"game index {index} out of range for split {split!r} (0..{size - 1})")
    types = tuple(TASK_TYPES if task_types is None else task_types)
    unknown = sorted(set(types) - set(TASK_TYPES))
    if unknown or not types:
        raise ValueError(f"unknown or empty task_types {unknown or types}; choose from {list(TASK_TYPES)}")
    cap = _MAX_RECEPTACLES if max_receptacles is None else int(max_receptacles)
    if cap < 2:
        raise ValueError(f"max_receptacles must be >= 2, got {max_receptacles}")
    assets = load_assets()
    for attempt in range(200):
        game = _draw(assets, split, index, attempt, types, cap)
        if game is not None:
            return game
    raise RuntimeError(f"could not generate a solvable game for {split}:{index}")  # pragma: no cover
