"""The native ALFWorld engine: ALFWorld's PDDL semantics as explicit Python state.

It plays a :class:`~t2po_gym.envs.alfworld.spec.WorldSpec` (a generated game or a
real ALFWorld ``game.tw-pddl``) the way TextWorld's PDDL engine with ALFWorld's
demangler does (``textworld/envs/pddl/pddl.py``, ``alfworld/agents/environment/
alfred_tw_env.py:L24``):

* the actions and their preconditions/effects are those of ALFWorld's ``alfred.pddl``;
  Fast Downward drops, when it grounds them, operators whose effects are all implied by
  their preconditions, so "go to" a receptacle at the agent's own location is not
  admissible (receptacles can share a location in real games);
* facts are kept as PDDL has them, quirks included: an object can be ``inReceptacle``
  several receptacles, taking it removes only the one named, ``objectAtLocation`` is
  removed only at the agent's location, and a deleted ``inReceptacle`` leaves a
  ``not_inReceptacle`` fact that the grammar's "Next to it, you see ..." lists;
* the text is that of the ``alfred.twl2`` grammar (:mod:`.text`), with entity lists in
  id order and the admissible commands sorted and deduplicated, as TextWorld does.
"""

from __future__ import annotations

from t2po_gym.envs.alfworld import text as T
from t2po_gym.envs.alfworld.game import Game
from t2po_gym.envs.alfworld.pddl import compile_goal, formula_predicates
from t2po_gym.envs.alfworld.spec import OBJECT_PROPERTY_PREDICATES, WorldSpec, spec_from_game

__all__ = ["World", "StepResult"]

StepResult = tuple[str, bool]  # (feedback, won)

_KNIVES = ("Knife", "ButterKnife")  # alfred.pddl SliceObject
# The predicates each action can change: the goal is tested again only when one it uses changed.
_CHANGES = {
    "goto": frozenset(("atlocation",)),
    "open": frozenset(("opened",)),
    "close": frozenset(("opened",)),
    "take": frozenset(("inreceptacle", "objectatlocation", "holds", "holdsany")),
    "move": frozenset(("inreceptacle", "objectatlocation", "holds", "holdsany")),
    "heat": frozenset(("ishot", "iscool")),
    "cool": frozenset(("ishot", "iscool")),
    "clean": frozenset(("isclean",)),
    "use": frozenset(("ison", "istoggled")),
    "slice": frozenset(("issliced",)),
}
_STATE_CHANGING = frozenset(_CHANGES)


class World:
    """Mutable state of one ALFWorld game.

    ``World(game)`` takes a generated :class:`~t2po_gym.envs.alfworld.game.Game` or a
    :class:`~t2po_gym.envs.alfworld.spec.WorldSpec`. State: ``at`` (the agent's location
    index), ``held`` (object index or ``-1``), ``obj_recs``/``rec_objs`` (``inReceptacle``),
    ``obj_locs``/``loc_objs`` (``objectAtLocation``), ``opened`` and the object state sets.
    """

    def __init__(self, game: Game | WorldSpec):
        self.game = game if isinstance(game, Game) else None
        if isinstance(game, Game):
            # one spec per Game object (generated games are cached, so resets reuse it)
            spec = game.__dict__.get("_spec")
            if spec is None:
                spec = game.__dict__["_spec"] = spec_from_game(game)
            self.spec = spec
        else:
            self.spec = game
        sp = self.spec
        self.recs = sp.receptacles
        self.objs = sp.objects
        self.task = sp.task
        self.v211 = sp.grammar == "2.1.1"
        self.loc_recs: list[list[int]] = [[] for _ in sp.locations]
        for k, r in enumerate(self.recs):
            self.loc_recs[r.loc].append(k)
        self._rec_by_name = {r.name: k for k, r in enumerate(self.recs)}
        self._obj_by_name = {o.name: k for k, o in enumerate(self.objs)}
        self._can = sp.can_contain
        cache = sp.__dict__.setdefault("_engine_cache", {})
        if "goal" not in cache:
            # compiled once per game: the goal test and the facts no action changes
            cache["goal"] = compile_goal(sp.goal)
            cache["goal_predicates"] = formula_predicates(sp.goal)
            cache["static"] = {}
        self._goal_fn = cache["goal"]
        self._goal_predicates = cache["goal_predicates"]
        self._static_facts = cache["static"]
        self._rtype_lower = [r.rtype.lower() for r in self.recs]
        self._won = False
        self._base_by_loc: dict[int, dict[str, tuple]] = {}
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> str:
        """Back to the initial state; returns the intro text."""
        sp = self.spec
        self.at = sp.start
        self.held = -1
        self.obj_recs: list[set[int]] = [set() for _ in self.objs]
        self.rec_objs: list[set[int]] = [set() for _ in self.recs]
        for o, r in sp.init_in:
            self.obj_recs[o].add(r)
            self.rec_objs[r].add(o)
        self.obj_locs: list[set[int]] = [set() for _ in self.objs]
        self.loc_objs: list[set[int]] = [set() for _ in sp.locations]
        for o, l in sp.init_at:
            self.obj_locs[o].add(l)
            self.loc_objs[l].add(o)
        self.not_in: set[tuple[int, int]] = set()
        self.opened: set[int] = set(sp.init_opened)
        flags = sp.init_flags
        self.hot: set[int] = set(flags.get("ishot", ()))
        self.cool: set[int] = set(flags.get("iscool", ()))
        self.clean: set[int] = set(flags.get("isclean", ()))
        self.sliced: set[int] = set(flags.get("issliced", ()))
        self.toggled: set[int] = set(flags.get("istoggled", ()))
        self.on: set[int] = set(flags.get("ison", ()))
        self._admissible: dict[str, tuple] | None = None
        self._sorted: list[str] | None = None
        self._won = self._goal_test()
        # The intro derives "#look.feedback#" with no action bound: in the middle of the
        # room it lists every receptacle (alfred.twl2 "list_appliances").
        if self.loc_recs[self.at]:
            look = self._look()
        else:
            look = T.LOOK_MIDDLE.format(things=T.enumerate_things([r.name for r in self.recs]))
        return T.INTRO.format(look=look, task=self.task_sentence)

    @property
    def task_sentence(self) -> str:
        return self.spec.task_text or T.TASK.format(description=self.task.description)

    def snapshot(self) -> tuple:
        """A hashable copy of the mutable state (for tests and anchors)."""
        return (
            self.at,
            self.held,
            tuple(frozenset(s) for s in self.obj_recs),
            tuple(frozenset(s) for s in self.obj_locs),
            frozenset(self.not_in),
            frozenset(self.opened),
            frozenset(self.hot),
            frozenset(self.cool),
            frozenset(self.clean),
            frozenset(self.sliced),
            frozenset(self.toggled),
            frozenset(self.on),
        )

    @property
    def agent_at(self) -> int:
        """A receptacle at the agent's location (the first by id), or ``-1`` where there is none."""
        here = self.loc_recs[self.at]
        return here[0] if here else -1

    # ------------------------------------------------------------------ text
    def _accessible(self, r: int) -> bool:
        return not self.recs[r].openable or r in self.opened

    def _contents(self, r: int) -> list[str]:
        return [self.objs[o].name for o in sorted(self.rec_objs[r])]

    def describe(self, r: int) -> str:
        """alfred.twl2 "examineReceptacle.feedback"."""
        rec = self.recs[r]
        if rec.openable:
            if r in self.opened:
                return T.RECEPTACLE_OPEN.format(receptacle=rec.name, things=T.enumerate_things(self._contents(r)))
            return T.RECEPTACLE_CLOSED.format(receptacle=rec.name)
        return T.RECEPTACLE_SURFACE.format(receptacle=rec.name, things=T.enumerate_things(self._contents(r)))

    def _look(self) -> str:
        here = self.loc_recs[self.at]
        if not here:
            return T.LOOK_MIDDLE.format(things="nothing")
        # "list_objects_on_the_floor": objects at this location with a not_inReceptacle fact
        # for a receptacle here, one entry per (object, receptacle) pair, in that order.
        floor = [
            self.objs[o].name for o in sorted(self.loc_objs[self.at]) for r in here if (o, r) in self.not_in
        ]
        return T.LOOK_FACING.format(
            receptacle=T.join_names([self.recs[r].name for r in here]), things=T.enumerate_things(floor)
        )

    def _examine_obj(self, i: int) -> str:
        obj = self.objs[i]
        name = obj.name
        if obj.receptacle_object:
            inner = sorted(a for a, b in self.spec.in_receptacle_object if b == i)
            return T.RECEPTACLE_OBJECT.format(obj=name, things=T.enumerate_things([self.objs[a].name for a in inner]))
        flags = set()
        if i in self.clean:
            flags.add("clean")
        if i in self.hot:
            flags.add("hot")
        if i in self.cool:
            flags.add("cool")
        if i in self.sliced:
            flags.add("sliced")
        for need, line in T.EXAMINE_OBJECT:
            if flags.issuperset(need):
                return line.format(obj=name)
        if obj.toggleable and i in self.toggled:
            return T.LAMP_ON.format(obj=name)
        if obj.sliceable and i in self.sliced:
            return T.SLICED.format(obj=name)
        return T.PLAIN.format(obj=name)

    # ------------------------------------------------------------ commands
    def put_command(self, obj: int, rec: int) -> str:
        """The place command in this game's grammar version."""
        fmt = T.PUT_COMMAND_211 if self.v211 else T.MOVE_COMMAND
        return fmt.format(obj=self.objs[obj].name, receptacle=self.recs[rec].name)

    def can_contain(self, rec: int, obj: int) -> bool:
        return (self.recs[rec].rtype, self.objs[obj].otype) in self._can

    def admissible(self) -> dict[str, tuple]:
        """Map of every admissible command to the action it performs (cached per state)."""
        if self._admissible is not None:
            return self._admissible
        sp = self.spec
        at = self.at
        base = self._base_by_loc.get(at)
        if base is None:
            # the commands that depend on the location only (look, inventory, help, go to ...)
            base = {"look": ("look",), "inventory": ("inventory",)}
            if sp.has_help:
                base["help"] = ("help",)
            for k, rec in enumerate(self.recs):
                if rec.loc != at:
                    base[f"go to {rec.name}"] = ("goto", k)
            self._base_by_loc[at] = base
        cmds = dict(base)
        held = self.held
        hobj = self.objs[held] if held >= 0 else None
        if hobj is not None:
            cmds[f"examine {hobj.name}"] = ("examine_obj", held)
        for r in self.loc_recs[at]:
            rec = self.recs[r]
            cmds[f"examine {rec.name}"] = ("examine_rec", r)
            if rec.openable:
                if r in self.opened:
                    cmds[f"close {rec.name}"] = ("close", r)
                else:
                    cmds[f"open {rec.name}"] = ("open", r)
            accessible = self._accessible(r)
            for i in sorted(self.rec_objs[r]):
                obj = self.objs[i]
                if accessible and obj.pickupable and held < 0:
                    cmds[f"take {obj.name} from {rec.name}"] = ("take", i, r)
                if obj.toggleable:
                    cmds.setdefault(f"use {obj.name}", ("use", i))
            if hobj is not None:
                if accessible and (rec.rtype, hobj.otype) in self._can:
                    cmds[self.put_command(held, r)] = ("move", held, r)
                rt = self._rtype_lower[r]
                if hobj.heatable and rt in sp.heat_rtypes:
                    cmds[f"heat {hobj.name} with {rec.name}"] = ("heat", held, r)
                if hobj.coolable and rt in sp.cool_rtypes:
                    cmds[f"cool {hobj.name} with {rec.name}"] = ("cool", held, r)
                if hobj.cleanable and rt in sp.clean_rtypes:
                    cmds[f"clean {hobj.name} with {rec.name}"] = ("clean", held, r)
        if hobj is not None and hobj.otype in _KNIVES:
            for i in sorted(self.loc_objs[at]):
                if self.objs[i].sliceable:
                    cmds[f"slice {self.objs[i].name} with {hobj.name}"] = ("slice", i, held)
        self._admissible = cmds
        return cmds

    def admissible_commands(self) -> list[str]:
        """The admissible commands, sorted (as ALFWorld lists them)."""
        if self._sorted is None:
            self._sorted = sorted(self.admissible())
        return list(self._sorted)

    def step(self, command: str) -> StepResult:
        """Apply ``command``; an inadmissible one prints "Nothing happens." and changes nothing."""
        act = self.admissible().get(command.strip())
        if act is None:
            return T.NOTHING_HAPPENS, self._won
        kind = act[0]
        if kind in _STATE_CHANGING:
            self._admissible = None
            self._sorted = None
        if kind == "look":
            out = self._look()
        elif kind == "inventory":
            out = (
                T.CARRYING.format(things=T.enumerate_things([self.objs[self.held].name]))
                if self.held >= 0
                else T.CARRYING_NOTHING
            )
        elif kind == "help":
            out = T.HELP
        elif kind == "goto":
            r = act[1]
            self.at = self.recs[r].loc
            if self.v211:
                out = T.ARRIVE_211.format(location=self.spec.location_names[self.at], contents=self.describe(r))
            else:
                out = T.ARRIVE.format(receptacle=self.recs[r].name, contents=self.describe(r))
        elif kind == "open":
            self.opened.add(act[1])
            out = T.OPEN.format(receptacle=self.recs[act[1]].name, contents=self.describe(act[1]))
        elif kind == "close":
            self.opened.discard(act[1])
            out = T.CLOSE.format(receptacle=self.recs[act[1]].name)
        elif kind == "examine_rec":
            out = self.describe(act[1])
        elif kind == "examine_obj":
            out = self._examine_obj(act[1])
        elif kind == "take":
            _, i, r = act
            self.obj_recs[i].discard(r)
            self.rec_objs[r].discard(i)
            self.not_in.add((i, r))
            self.obj_locs[i].discard(self.at)
            self.loc_objs[self.at].discard(i)
            self.held = i
            out = T.TAKE.format(obj=self.objs[i].name, receptacle=self.recs[r].name)
        elif kind == "move":
            _, i, r = act
            self.obj_recs[i].add(r)
            self.rec_objs[r].add(i)
            self.not_in.discard((i, r))
            self.obj_locs[i].add(self.at)
            self.loc_objs[self.at].add(i)
            self.held = -1
            fmt = T.PUT_211 if self.v211 else T.MOVE
            out = fmt.format(obj=self.objs[i].name, receptacle=self.recs[r].name)
        elif kind == "heat":
            _, i, r = act
            self.hot.add(i)
            self.cool.discard(i)
            out = T.HEAT.format(obj=self.objs[i].name, receptacle=self.recs[r].name)
        elif kind == "cool":
            _, i, r = act
            self.cool.add(i)
            self.hot.discard(i)
            out = T.COOL.format(obj=self.objs[i].name, receptacle=self.recs[r].name)
        elif kind == "clean":
            _, i, r = act
            self.clean.add(i)
            out = T.CLEAN.format(obj=self.objs[i].name, receptacle=self.recs[r].name)
        elif kind == "use":
            i = act[1]
            self.on ^= {i}
            self.toggled.add(i)
            out = T.TOGGLE_ON.format(obj=self.objs[i].name)
        elif kind == "slice":
            _, i, k = act
            self.sliced.add(i)
            out = T.SLICE.format(obj=self.objs[i].name, knife=self.objs[k].name)
        else:  # pragma: no cover - every kind is listed above
            raise AssertionError(kind)
        if kind in _STATE_CHANGING and not self._goal_predicates.isdisjoint(_CHANGES[kind]):
            self._won = self._goal_test()
        return out, self._won

    # ---------------------------------------------------------------- goal
    def won(self) -> bool:
        """Whether the PDDL goal holds in the current state (TextWorld's ``check_goal``)."""
        return self._won

    def _goal_test(self) -> bool:
        return self._goal_fn(_Facts(self))

    # ------------------------------------------------------------- lookups
    def receptacle_named(self, name: str) -> int:
        return self._rec_by_name[name]

    def item_named(self, name: str) -> int:
        return self._obj_by_name[name]

    def loc_of(self, r: int) -> int:
        return self.recs[r].loc


_STATIC_PREDICATES = frozenset(
    (
        "objecttype",
        "receptacletype",
        "receptacleatlocation",
        "openable",
        "cancontain",
        "inreceptacleobject",
        "pickupable",
        "heatable",
        "coolable",
        "cleanable",
        "sliceable",
        "toggleable",
        "isreceptacleobject",
    )
)


class _Facts:
    """The world's current facts, by PDDL predicate (lower-cased), for the goal test."""

    __slots__ = ("w", "_cache", "_lists")

    def __init__(self, w: World):
        self.w = w
        self._cache: dict[str, set] = {}
        self._lists: dict[str, list] = {}

    def fact_set(self, pred: str) -> set:
        s = self._cache.get(pred)
        if s is None:
            s = self._cache[pred] = set(self.facts(pred))
        return s

    def size(self, pred: str) -> int:
        """How many facts ``pred`` has (an estimate for the big dynamic ones), to order the join."""
        w = self.w
        if pred in _STATIC_PREDICATES or pred in self._lists:
            return len(self.facts(pred))
        if pred in ("inreceptacle", "objectatlocation"):
            return len(w.objs)  # about one each; not worth building to count
        if pred in ("atlocation",):
            return 1
        if pred in ("holds", "holdsany"):
            return int(w.held >= 0)
        return len(self.facts(pred))

    def facts(self, pred: str):
        # static facts once per game, the others once per goal test (this object's life)
        store = self.w._static_facts if pred in _STATIC_PREDICATES else self._lists
        cached = store.get(pred)
        if cached is None:
            cached = store[pred] = self._facts(pred)
        return cached

    def objects_of_type(self, typ: str):
        sp = self.w.spec
        if typ == "object":
            return [o.id for o in sp.objects]
        if typ == "receptacle":
            return [r.id for r in sp.receptacles]
        if typ == "location":
            return list(sp.locations)
        if typ == "agent":
            return [sp.agent]
        if typ == "otype":
            return sorted({o.otype.lower() + "type" for o in sp.objects})
        if typ == "rtype":
            return sorted({r.rtype.lower() + "type" for r in sp.receptacles})
        return []

    def _facts(self, pred: str) -> list:
        w, sp = self.w, self.w.spec
        O, R, L = sp.objects, sp.receptacles, sp.locations
        if pred == "inreceptacle":
            return [(O[o].id, R[r].id) for o in range(len(O)) for r in w.obj_recs[o]]
        if pred == "objecttype":
            return [(o.id, o.otype.lower() + "type") for o in O]
        if pred == "receptacletype":
            return [(r.id, r.rtype.lower() + "type") for r in R]
        if pred == "receptacleatlocation":
            return [(r.id, L[r.loc]) for r in R]
        if pred == "objectatlocation":
            return [(O[o].id, L[l]) for o in range(len(O)) for l in w.obj_locs[o]]
        if pred == "atlocation":
            return [(sp.agent, L[w.at])]
        if pred == "holds":
            return [(sp.agent, O[w.held].id)] if w.held >= 0 else []
        if pred == "holdsany":
            return [(sp.agent,)] if w.held >= 0 else []
        if pred == "opened":
            return [(R[r].id,) for r in w.opened]
        if pred == "openable":
            return [(r.id,) for r in R if r.openable]
        if pred == "cancontain":
            return [(rt.lower() + "type", ot.lower() + "type") for rt, ot in sp.can_contain]
        if pred == "inreceptacleobject":
            return [(O[a].id, O[b].id) for a, b in sp.in_receptacle_object]
        dynamic = {
            "ishot": w.hot,
            "iscool": w.cool,
            "isclean": w.clean,
            "issliced": w.sliced,
            "istoggled": w.toggled,
            "ison": w.on,
        }.get(pred)
        if dynamic is not None:
            return [(O[o].id,) for o in dynamic]
        prop = OBJECT_PROPERTY_PREDICATES.get(pred)
        if prop is not None:
            return [(o.id,) for o in O if getattr(o, prop)]
        return list(sp.static_facts.get(pred, ()))
