"""The native ALFWorld engine: ALFWorld's PDDL semantics as explicit Python state.

One location per receptacle plus a start location in the middle of the room. The
rules are those of ALFWorld's ``alfred.pddl`` (the actions it enables), the text is
that of its ``alfred.twl2`` grammar (:mod:`.text`), lists are ordered by entity id
and admissible commands are sorted, as the TextWorld engine does.
"""

from __future__ import annotations

from t2po_gym.envs.alfworld import text as T
from t2po_gym.envs.alfworld.game import Game

__all__ = ["World", "StepResult"]

StepResult = tuple[str, bool]  # (feedback, won)


class World:
    """Mutable state of one ALFWorld game.

    ``agent_at`` is a receptacle index or ``-1`` for the start location. Every item
    is inside one receptacle (``item_in[i]``) or held (``item_in[i] == -1``).
    """

    def __init__(self, game: Game):
        self.game = game
        self.recs = game.receptacles
        self.items = game.items
        self._rec_index = {r.id: k for k, r in enumerate(self.recs)}
        # Display order of lists is entity-id order.
        self._rec_by_id = sorted(range(len(self.recs)), key=lambda k: self.recs[k].id.lower())
        self._item_by_id = sorted(range(len(self.items)), key=lambda k: self.items[k].id.lower())
        self._rec_by_name = {r.name: k for k, r in enumerate(self.recs)}
        self._item_by_name = {o.name: k for k, o in enumerate(self.items)}
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> str:
        self.agent_at = -1
        self.opened: set[int] = set()
        self.item_in = [self._rec_index[o.receptacle] for o in self.items]
        self.held = -1
        self.hot: set[int] = set()
        self.cool: set[int] = set()
        self.clean: set[int] = set()
        self.sliced: set[int] = set()
        self.toggled: set[int] = set()
        self._admissible: dict[str, tuple] | None = None
        # The intro lists every receptacle; "look" in the middle of the room lists those at the
        # start location, which holds none (ALFWorld's grammar binds the location there).
        everything = T.enumerate_things([self.recs[k].name for k in self._rec_by_id])
        return T.INTRO.format(look=T.LOOK_MIDDLE.format(things=everything), task=self.task_sentence)

    @property
    def task_sentence(self) -> str:
        return T.TASK.format(description=self.game.task.description)

    def snapshot(self) -> tuple:
        """A hashable copy of the mutable state (for tests and anchors)."""
        return (
            self.agent_at,
            frozenset(self.opened),
            tuple(self.item_in),
            self.held,
            frozenset(self.hot),
            frozenset(self.cool),
            frozenset(self.clean),
            frozenset(self.sliced),
            frozenset(self.toggled),
        )

    def _accessible(self, r: int) -> bool:
        return not self.recs[r].openable or r in self.opened

    def _contents(self, r: int) -> list[str]:
        return [self.items[i].name for i in self._item_by_id if self.item_in[i] == r]

    def _describe(self, r: int) -> str:
        rec = self.recs[r]
        if rec.openable:
            if r in self.opened:
                return T.RECEPTACLE_OPEN.format(receptacle=rec.name, things=T.enumerate_things(self._contents(r)))
            return T.RECEPTACLE_CLOSED.format(receptacle=rec.name)
        return T.RECEPTACLE_SURFACE.format(receptacle=rec.name, things=T.enumerate_things(self._contents(r)))

    def _look(self) -> str:
        if self.agent_at < 0:
            return T.LOOK_MIDDLE.format(things="nothing")
        return T.LOOK_FACING.format(receptacle=self.recs[self.agent_at].name, things="nothing")

    def _examine_item(self, i: int) -> str:
        name = self.items[i].name
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
        if self.items[i].toggleable:
            return (T.LAMP_ON if i in self.toggled else T.LAMP_OFF).format(obj=name)
        if self.items[i].sliceable and i in self.sliced:
            return T.SLICED.format(obj=name)
        return T.PLAIN.format(obj=name)

    # ------------------------------------------------------------ commands
    def admissible(self) -> dict[str, tuple]:
        """Map of every admissible command to the action it performs (cached per state)."""
        if self._admissible is not None:
            return self._admissible
        cmds: dict[str, tuple] = {"look": ("look",), "inventory": ("inventory",), "help": ("help",)}
        here = self.agent_at
        for k, rec in enumerate(self.recs):
            if k != here:
                cmds[f"go to {rec.name}"] = ("goto", k)
        held = self.held
        if held >= 0:
            cmds[f"examine {self.items[held].name}"] = ("examine_item", held)
        if here >= 0:
            rec = self.recs[here]
            cmds[f"examine {rec.name}"] = ("examine_rec", here)
            if rec.openable:
                if here in self.opened:
                    cmds[f"close {rec.name}"] = ("close", here)
                else:
                    cmds[f"open {rec.name}"] = ("open", here)
            accessible = self._accessible(here)
            can_contain = _CAN_CONTAIN.get(rec.rtype, frozenset())
            for i in self._item_by_id:
                if self.item_in[i] != here:
                    continue
                item = self.items[i]
                if accessible:
                    if item.pickupable and held < 0:
                        cmds[f"take {item.name} from {rec.name}"] = ("take", i, here)
                if item.toggleable:
                    cmds[f"use {item.name}"] = ("use", i)
                if item.sliceable and held >= 0 and self.items[held].otype in ("Knife", "ButterKnife"):
                    cmds[f"slice {item.name} with {self.items[held].name}"] = ("slice", i, held)
            if held >= 0:
                hitem = self.items[held]
                if accessible and hitem.otype in can_contain:
                    cmds[f"move {hitem.name} to {rec.name}"] = ("move", held, here)
                if rec.rtype == "Microwave" and hitem.heatable:
                    cmds[f"heat {hitem.name} with {rec.name}"] = ("heat", held, here)
                if rec.rtype == "Fridge" and hitem.coolable:
                    cmds[f"cool {hitem.name} with {rec.name}"] = ("cool", held, here)
                if rec.rtype == "SinkBasin" and hitem.cleanable:
                    cmds[f"clean {hitem.name} with {rec.name}"] = ("clean", held, here)
        self._admissible = cmds
        return cmds

    def admissible_commands(self) -> list[str]:
        """The admissible commands, sorted (as ALFWorld lists them)."""
        return sorted(self.admissible())

    def step(self, command: str) -> StepResult:
        """Apply ``command``; an inadmissible one prints "Nothing happens." and changes nothing."""
        act = self.admissible().get(command.strip())
        if act is None:
            return T.NOTHING_HAPPENS, self.won()
        kind = act[0]
        self._admissible = None
        if kind == "look":
            out = self._look()
        elif kind == "inventory":
            out = (
                T.CARRYING.format(things=T.enumerate_things([self.items[self.held].name]))
                if self.held >= 0
                else T.CARRYING_NOTHING
            )
        elif kind == "help":
            out = T.HELP
        elif kind == "goto":
            self.agent_at = act[1]
            out = T.ARRIVE.format(receptacle=self.recs[act[1]].name, contents=self._describe(act[1]))
        elif kind == "open":
            self.opened.add(act[1])
            out = T.OPEN.format(receptacle=self.recs[act[1]].name, contents=self._describe(act[1]))
        elif kind == "close":
            self.opened.discard(act[1])
            out = T.CLOSE.format(receptacle=self.recs[act[1]].name)
        elif kind == "examine_rec":
            out = self._describe(act[1])
        elif kind == "examine_item":
            out = self._examine_item(act[1])
        elif kind == "take":
            _, i, r = act
            self.item_in[i] = -1
            self.held = i
            out = T.TAKE.format(obj=self.items[i].name, receptacle=self.recs[r].name)
        elif kind == "move":
            _, i, r = act
            self.item_in[i] = r
            self.held = -1
            out = T.MOVE.format(obj=self.items[i].name, receptacle=self.recs[r].name)
        elif kind == "heat":
            _, i, r = act
            self.hot.add(i)
            self.cool.discard(i)
            out = T.HEAT.format(obj=self.items[i].name, receptacle=self.recs[r].name)
        elif kind == "cool":
            _, i, r = act
            self.cool.add(i)
            self.hot.discard(i)
            out = T.COOL.format(obj=self.items[i].name, receptacle=self.recs[r].name)
        elif kind == "clean":
            _, i, r = act
            self.clean.add(i)
            out = T.CLEAN.format(obj=self.items[i].name, receptacle=self.recs[r].name)
        elif kind == "use":
            self.toggled.add(act[1])
            out = T.TOGGLE_ON.format(obj=self.items[act[1]].name)
        elif kind == "slice":
            _, i, k = act
            self.sliced.add(i)
            out = T.SLICE.format(obj=self.items[i].name, knife=self.items[k].name)
        else:  # pragma: no cover - every kind is listed above
            raise AssertionError(kind)
        return out, self.won()

    # ---------------------------------------------------------------- goal
    def won(self) -> bool:
        """ALFWorld's goal test for the game's task (same predicates as the PDDL goal)."""
        task = self.game.task
        otype, rtype = task.object_target, task.parent_target
        if task.task_type == "look_at_obj_in_light":
            if self.held < 0 or self.items[self.held].otype != otype or self.agent_at < 0:
                return False
            return any(
                i in self.toggled and self.item_in[i] == self.agent_at and self.items[i].otype == task.toggle_target
                for i in range(len(self.items))
            )
        need = {
            "pick_clean_then_place_in_recep": self.clean,
            "pick_heat_then_place_in_recep": self.hot,
            "pick_cool_then_place_in_recep": self.cool,
        }.get(task.task_type)
        per_rec: dict[int, int] = {}
        for i, item in enumerate(self.items):
            r = self.item_in[i]
            if r < 0 or item.otype != otype or self.recs[r].rtype != rtype:
                continue
            if need is not None and i not in need:
                continue
            per_rec[r] = per_rec.get(r, 0) + 1
        if not per_rec:
            return False
        if task.task_type == "pick_two_obj_and_place":
            return max(per_rec.values()) >= 2
        return True

    # ------------------------------------------------------------- lookups
    def receptacle_named(self, name: str) -> int:
        return self._rec_by_name[name]

    def item_named(self, name: str) -> int:
        return self._item_by_name[name]


def _load_can_contain() -> dict:
    from t2po_gym.envs.alfworld.assets import load_assets

    return load_assets().can_contain


class _LazyCanContain(dict):
    """``can_contain`` loaded on first use, so importing this module stays cheap."""

    def get(self, key, default=None):  # type: ignore[override]
        if not self:
            self.update(_load_can_contain())
        return super().get(key, default)


_CAN_CONTAIN = _LazyCanContain()
