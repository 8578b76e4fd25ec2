"""Read-only ALFWorld assets shipped by the ``alfworld`` package: constants and room layouts.

Only data is read (JSON layouts, the constant tables, the PDDL domain and grammar
text); nothing from TextWorld is imported, so the native engine stays pure Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["Assets", "load_assets", "alfworld_package_dir"]

TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

#: ALFWorld's own goal templates (alfworld/gen/goal_library.py), two per task type.
GOAL_TEMPLATES = {
    "pick_and_place_simple": ("put a {obj} in {recep}", "put some {obj} on {recep}"),
    "pick_clean_then_place_in_recep": ("put a clean {obj} in {recep}", "clean some {obj} and put it in {recep}"),
    "pick_heat_then_place_in_recep": ("put a hot {obj} in {recep}", "heat some {obj} and put it in {recep}"),
    "pick_cool_then_place_in_recep": ("put a cool {obj} in {recep}", "cool some {obj} and put it in {recep}"),
    "pick_two_obj_and_place": ("put two {obj} in {recep}", "find two {obj} and put them in {recep}"),
    "look_at_obj_in_light": ("look at {obj} under the {toggle}", "examine the {obj} with the {toggle}"),
}

# Fixtures that appear in layouts but are neither receptacles nor things to carry.
_NOT_PICKUPABLE = {"DeskLamp", "FloorLamp"}
# The receptacle types the native engine uses (sinks and bathtubs through their basins).
_SKIP_RECEPTACLES = {"Sink", "Bathtub"}


def alfworld_package_dir() -> Path:
    """The installed ``alfworld`` package directory (without importing alfworld)."""
    spec = importlib.util.find_spec("alfworld")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The ALFWorld env needs the room layouts and constants shipped by the 'alfworld' "
            "package: pip install 'alfworld==0.4.2' (or pip install t2po-gym, which requires it)."
        )
    return Path(list(spec.submodule_search_locations)[0])


@dataclass(frozen=True)
class Assets:
    """ALFWorld's tables, as plain Python sets and dicts.

    Attributes:
        can_contain: receptacle type -> object types it may hold.
        static_receptacles: ALFRED's receptacle classes that stay in place (``STATIC_RECEPTACLES``).
        openable: receptacle types that open and close.
        heatable, coolable, cleanable, sliceable, toggleable: object types with that property.
        pickupable: object types that can be carried.
        goals_valid: task type -> scene kinds it is valid in.
        train_scenes, test_scenes: FloorPlan numbers.
        domain_text, grammar_text: ``alfred.pddl`` and ``alfred.twl2``.
    """

    can_contain: dict
    static_receptacles: frozenset
    openable: frozenset
    heatable: frozenset
    coolable: frozenset
    cleanable: frozenset
    sliceable: frozenset
    toggleable: frozenset
    pickupable: frozenset
    goals_valid: dict
    train_scenes: tuple
    test_scenes: tuple
    scene_kinds: dict
    layout_dir: Path
    domain_text: str
    grammar_text: str

    def scene_kind(self, scene: int) -> str:
        for kind, rng in self.scene_kinds.items():
            if scene in rng:
                return kind
        raise KeyError(scene)

    def scene(self, scene: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(object types present, receptacle instance ids ``Type|x|y|z``) of FloorPlan ``scene``."""
        cached = _SCENES.get(scene)
        if cached is not None:
            return cached
        objs_path = self.layout_dir / f"FloorPlan{scene}-objects.json"
        recs_path = self.layout_dir / f"FloorPlan{scene}-openable.json"
        try:
            objects = json.loads(objs_path.read_text())
            receptacles = json.loads(recs_path.read_text())
        except (OSError, ValueError) as e:
            raise RuntimeError(f"cannot read ALFWorld layout for FloorPlan{scene}: {e}") from e
        result = tuple(sorted(set(objects))), tuple(sorted(receptacles))
        _SCENES[scene] = result
        return result


_SCENES: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}


@lru_cache(maxsize=1)
def load_assets() -> Assets:
    """Load the ALFWorld constant tables and layout locations once per process."""
    root = alfworld_package_dir()
    # The constants module has no side effects beyond defining tables, but importing the
    # alfworld package creates ~/.cache/alfworld unless ALFWORLD_DATA is set.
    os.environ.setdefault("ALFWORLD_DATA", str(Path.home() / ".cache" / "alfworld"))
    from alfworld.gen import constants as c  # noqa: PLC0415

    can_contain = {k: frozenset(v) for k, v in c.VAL_RECEPTACLE_OBJECTS.items()}
    receptacle_types = set(c.STATIC_RECEPTACLES) - _SKIP_RECEPTACLES
    pickupable = set()
    for rtype, objs in can_contain.items():
        pickupable |= {o for o in objs if "Sliced" not in o}
    pickupable -= _NOT_PICKUPABLE
    pickupable -= receptacle_types
    acts = c.VAL_ACTION_OBJECTS
    return Assets(
        can_contain=can_contain,
        static_receptacles=frozenset(c.STATIC_RECEPTACLES),
        openable=frozenset(c.OPENABLE_CLASS_SET),
        heatable=frozenset(acts["Heatable"]),
        coolable=frozenset(acts["Coolable"]),
        cleanable=frozenset(acts["Cleanable"]),
        sliceable=frozenset(acts["Sliceable"]),
        toggleable=frozenset(acts["Toggleable"]),
        pickupable=frozenset(pickupable),
        goals_valid={k: frozenset(v) for k, v in c.GOALS_VALID.items()},
        train_scenes=tuple(c.TRAIN_SCENE_NUMBERS),
        test_scenes=tuple(c.TEST_SCENE_NUMBERS),
        scene_kinds=dict(c.SCENE_TYPE),
        layout_dir=root / "gen" / "layouts",
        domain_text=(root / "data" / "alfred.pddl").read_text(),
        grammar_text=(root / "data" / "alfred.twl2").read_text(),
    )
