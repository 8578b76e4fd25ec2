"""A scripted ALFWorld expert that replans from the current state at every step.

It has privileged knowledge of where every object is, so from any reachable state
it returns a command that makes progress: fetch a target object (open the
receptacle first if needed), change its state with the right appliance (heat with
a microwave, cool with a fridge, clean in a sink basin), then put it in the goal
receptacle or carry it to the lamp and switch the lamp on. Anything else in the
agent's hands is put down first. It plans from the task (ALFWorld's ``pddl_params``,
as ALFWorld's hand-coded expert does, ``alfworld/agents/expert``) and the world's
facts, so it plays generated and real games alike; where several receptacles share a
location (real games) it walks to the location once.
"""

from __future__ import annotations

from t2po_gym.envs.alfworld.world import World

__all__ = ["expert_action", "expert_walkthrough"]

_STATE_APPLIANCE = {
    "pick_heat_then_place_in_recep": ("heat_rtypes", "heat", "hot"),
    "pick_cool_then_place_in_recep": ("cool_rtypes", "cool", "cool"),
    "pick_clean_then_place_in_recep": ("clean_rtypes", "clean", "clean"),
}


def _goto_and_open(w: World, r: int) -> str:
    rec = w.recs[r]
    if w.at != rec.loc:
        return f"go to {rec.name}"
    if rec.openable and r not in w.opened:
        return f"open {rec.name}"
    return ""


def _appliance(w: World, rtypes: tuple[str, ...]) -> int:
    for rtype in rtypes:
        cands = sorted((k for k, r in enumerate(w.recs) if r.rtype.lower() == rtype), key=lambda k: w.recs[k].name)
        if cands:
            return cands[0]
    raise RuntimeError(f"no {' or '.join(rtypes)} in this room: the game is unsolvable")


def _goal_receptacle(w: World) -> int:
    """The goal receptacle: the one of the goal type already holding most targets (ties: by name)."""
    task = w.task
    best, best_key = -1, None
    for k, rec in enumerate(w.recs):
        if rec.rtype != task.parent_target:
            continue
        n = sum(1 for i in w.rec_objs[k] if w.objs[i].otype == task.object_target)
        key = (-n, rec.name)
        if best_key is None or key < best_key:
            best, best_key = k, key
    if best < 0:
        raise RuntimeError(f"no {task.parent_target} in this room: the game is unsolvable")
    return best


def _state_ok(w: World, i: int) -> bool:
    spec = _STATE_APPLIANCE.get(w.task.task_type)
    if spec is None:
        return True
    return i in {"hot": w.hot, "cool": w.cool, "clean": w.clean}[spec[2]]


def _drop(w: World) -> str:
    """Put down what is held: here if possible, else on the nearest surface that takes it."""
    held = w.held
    cmds = w.admissible()
    for r in w.loc_recs[w.at]:
        c = w.put_command(held, r)
        if c in cmds:
            return c
    for k in sorted(range(len(w.recs)), key=lambda k: (w.recs[k].openable, w.recs[k].name)):
        if w.can_contain(k, held):
            step = _goto_and_open(w, k)
            if step:
                return step
    raise RuntimeError(f"nowhere to put {w.objs[held].name}")


def _fetch(w: World, targets: list[int]) -> str:
    """Go to, open and take the first target object (by name)."""
    i = min(targets, key=lambda i: w.objs[i].name)
    # an object may be in several receptacles (real games): prefer one here, then by name
    r = min(w.obj_recs[i], key=lambda r: (w.recs[r].loc != w.at, w.recs[r].name))
    step = _goto_and_open(w, r)
    if step:
        return step
    return f"take {w.objs[i].name} from {w.recs[r].name}"


def _takeable(w: World, otype: str) -> list[int]:
    return [i for i, o in enumerate(w.objs) if o.otype == otype and o.pickupable and w.obj_recs[i] and i != w.held]


def expert_action(w: World) -> str | None:
    """The expert's next command, or ``None`` when the task is already solved."""
    if w.won():
        return None
    task = w.task
    otype = task.object_target
    held = w.held
    is_target = held >= 0 and w.objs[held].otype == otype

    if task.task_type == "look_at_obj_in_light":
        if not is_target:
            if held >= 0:
                return _drop(w)
            targets = _takeable(w, otype)
            if not targets:
                raise RuntimeError(f"no {otype} to pick up: the game is unsolvable")
            return _fetch(w, targets)
        lamps = sorted(
            (i for i, o in enumerate(w.objs) if o.otype == task.toggle_target and o.toggleable and w.obj_recs[i]),
            key=lambda i: w.objs[i].name,
        )
        if not lamps:
            raise RuntimeError(f"no {task.toggle_target} in a receptacle: the game is unsolvable")
        lamp = lamps[0]
        r = min(w.obj_recs[lamp], key=lambda r: (w.recs[r].loc != w.at, w.recs[r].name))
        if w.at != w.recs[r].loc:
            return f"go to {w.recs[r].name}"
        return f"use {w.objs[lamp].name}"

    goal = _goal_receptacle(w)
    if is_target:
        spec = _STATE_APPLIANCE.get(task.task_type)
        if spec is not None and not _state_ok(w, held):
            appliance = _appliance(w, getattr(w.spec, spec[0]))
            if w.at != w.recs[appliance].loc:
                return f"go to {w.recs[appliance].name}"
            return f"{spec[1]} {w.objs[held].name} with {w.recs[appliance].name}"
        step = _goto_and_open(w, goal)
        if step:
            return step
        return w.put_command(held, goal)
    if held >= 0:
        return _drop(w)
    # Targets not yet in the goal receptacle (or placed without the required state).
    targets = [i for i in _takeable(w, otype) if not (goal in w.obj_recs[i] and _state_ok(w, i))]
    if not targets:
        raise RuntimeError("no target object left to fetch: the game is unsolvable")
    return _fetch(w, targets)


def expert_walkthrough(w: World, max_steps: int = 100) -> list[str] | None:
    """Play the expert from the world's current state; the commands, or None if it fails."""
    cmds = []
    for _ in range(max_steps):
        try:
            a = expert_action(w)
        except RuntimeError:
            return None
        if a is None:
            return cmds
        if a not in w.admissible():
            return None
        w.step(a)
        cmds.append(a)
    return cmds if w.won() else None
