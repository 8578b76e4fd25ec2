"""A scripted ALFWorld expert that replans from the current state at every step.

It has privileged knowledge of where every object is, so from any reachable state
it returns a command that makes progress: fetch a target object (open the
receptacle first if needed), change its state with the right appliance (heat with
a microwave, cool with a fridge, clean in a sink basin), then put it in the goal
receptacle or carry it to the lamp and switch the lamp on. Anything else in the
agent's hands is put down first.
"""

from __future__ import annotations

from t2po_gym.envs.alfworld.world import World

__all__ = ["expert_action", "expert_walkthrough"]

_STATE_APPLIANCE = {
    "pick_heat_then_place_in_recep": ("Microwave", "heat", "hot"),
    "pick_cool_then_place_in_recep": ("Fridge", "cool", "cool"),
    "pick_clean_then_place_in_recep": ("SinkBasin", "clean", "clean"),
}


def _goto_and_open(w: World, r: int) -> str:
    rec = w.recs[r]
    if w.agent_at != r:
        return f"go to {rec.name}"
    if rec.openable and r not in w.opened:
        return f"open {rec.name}"
    return ""


def _first(w: World, rtype: str) -> int:
    cands = sorted((k for k, r in enumerate(w.recs) if r.rtype == rtype), key=lambda k: w.recs[k].name)
    if not cands:
        raise RuntimeError(f"no {rtype} in this room: the game is unsolvable")
    return cands[0]


def _goal_receptacle(w: World) -> int:
    """The goal receptacle: the one of the goal type already holding most targets (ties: by name)."""
    task = w.game.task
    best, best_key = -1, None
    for k, rec in enumerate(w.recs):
        if rec.rtype != task.parent_target:
            continue
        n = sum(1 for i, it in enumerate(w.items) if w.item_in[i] == k and it.otype == task.object_target)
        key = (-n, rec.name)
        if best_key is None or key < best_key:
            best, best_key = k, key
    if best < 0:
        raise RuntimeError(f"no {task.parent_target} in this room: the game is unsolvable")
    return best


def _state_ok(w: World, i: int) -> bool:
    spec = _STATE_APPLIANCE.get(w.game.task.task_type)
    if spec is None:
        return True
    return i in {"hot": w.hot, "cool": w.cool, "clean": w.clean}[spec[2]]


def _drop(w: World) -> str:
    """Put down what is held: here if possible, else on the nearest surface that takes it."""
    held = w.items[w.held]
    cmds = w.admissible()
    if w.agent_at >= 0:
        c = f"move {held.name} to {w.recs[w.agent_at].name}"
        if c in cmds:
            return c
    from t2po_gym.envs.alfworld.world import _CAN_CONTAIN

    for k in sorted(range(len(w.recs)), key=lambda k: (w.recs[k].openable, w.recs[k].name)):
        if held.otype in _CAN_CONTAIN.get(w.recs[k].rtype, frozenset()):
            step = _goto_and_open(w, k)
            if step:
                return step
    raise RuntimeError(f"nowhere to put {held.name}")


def _fetch(w: World, targets: list[int]) -> str:
    """Go to, open and take the first target item (by name)."""
    i = min(targets, key=lambda i: w.items[i].name)
    r = w.item_in[i]
    step = _goto_and_open(w, r)
    if step:
        return step
    return f"take {w.items[i].name} from {w.recs[r].name}"


def expert_action(w: World) -> str | None:
    """The expert's next command, or ``None`` when the task is already solved."""
    if w.won():
        return None
    task = w.game.task
    otype = task.object_target
    held = w.held
    is_target = held >= 0 and w.items[held].otype == otype

    if task.task_type == "look_at_obj_in_light":
        if not is_target:
            if held >= 0:
                return _drop(w)
            return _fetch(w, [i for i, it in enumerate(w.items) if it.otype == otype and w.item_in[i] >= 0])
        lamps = sorted(
            (i for i, it in enumerate(w.items) if it.otype == task.toggle_target),
            key=lambda i: w.items[i].name,
        )
        lamp = lamps[0]
        r = w.item_in[lamp]
        if w.agent_at != r:
            return f"go to {w.recs[r].name}"
        return f"use {w.items[lamp].name}"

    goal = _goal_receptacle(w)
    if is_target:
        spec = _STATE_APPLIANCE.get(task.task_type)
        if spec is not None and not _state_ok(w, held):
            appliance = _first(w, spec[0])
            if w.agent_at != appliance:
                return f"go to {w.recs[appliance].name}"
            return f"{spec[1]} {w.items[held].name} with {w.recs[appliance].name}"
        step = _goto_and_open(w, goal)
        if step:
            return step
        return f"move {w.items[held].name} to {w.recs[goal].name}"
    if held >= 0:
        return _drop(w)
    # Targets not yet in the goal receptacle (or placed without the required state).
    targets = [
        i
        for i, it in enumerate(w.items)
        if it.otype == otype and w.item_in[i] >= 0 and not (w.item_in[i] == goal and _state_ok(w, i))
    ]
    if not targets:
        raise RuntimeError("no target object left to fetch: the game is unsolvable")
    return _fetch(w, targets)


def expert_walkthrough(w: World, max_steps: int = 100) -> list[str] | None:
    """Play the expert from the world's current state; the commands, or None if it fails."""
    cmds = []
    for _ in range(max_steps):
        a = expert_action(w)
        if a is None:
            return cmds
        if a not in w.admissible():
            return None
        w.step(a)
        cmds.append(a)
    return cmds if w.won() else None
