"""The TextWorld reference engine: ALFWorld's own PDDL engine through ``textworld``.

:func:`export_game` compiles a generated :class:`~t2po_gym.envs.alfworld.game.Game`
to ALFWorld's on-disk format (``game.tw-pddl`` + ``traj_data.json``);
:class:`TextWorldEngine` plays such a file (generated, or a real ALFWorld game from
``$ALFWORLD_DATA``) with TextWorld's ``PddlEnv`` and ALFWorld's name demangler,
exactly as ALFWorld's ``AlfredTWEnv`` does. It is the slow, authoritative engine the
native one is tested against.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from t2po_gym.envs.alfworld.assets import load_assets
from t2po_gym.envs.alfworld.game import Game, pddl_goal
from t2po_gym.envs.alfworld.real_game import find_alfworld_games  # noqa: F401  (kept importable from here)

__all__ = ["export_game", "pddl_problem", "pddl_goal", "TextWorldEngine", "find_alfworld_games"]


def pddl_problem(game: Game) -> str:
    """The PDDL problem text of ``game`` for ALFWorld's ``alfred.pddl`` domain."""
    assets = load_assets()
    loc = {r.id: f"loc_{k}" for k, r in enumerate(game.receptacles)}
    rtypes = sorted({r.rtype for r in game.receptacles} | {"SinkBasin", "Microwave", "Fridge"})
    otypes = sorted({o.otype for o in game.items} | {"Knife", "ButterKnife"})
    objects = ["agent1 - agent", "loc_start - location"]
    objects += [f"{t}Type - rtype" for t in rtypes]
    objects += [f"{t}Type - otype" for t in otypes]
    objects += [f"{l} - location" for l in loc.values()]
    objects += [f"{r.id} - receptacle" for r in game.receptacles]
    objects += [f"{o.id} - object" for o in game.items]
    init = ["(atLocation agent1 loc_start)"]
    for r in game.receptacles:
        init.append(f"(receptacleType {r.id} {r.rtype}Type)")
        init.append(f"(receptacleAtLocation {r.id} {loc[r.id]})")
        if r.openable:
            init.append(f"(openable {r.id})")
    for o in game.items:
        init.append(f"(objectType {o.id} {o.otype}Type)")
        if o.receptacle:
            init.append(f"(inReceptacle {o.id} {o.receptacle})")
        init.append(f"(objectAtLocation {o.id} {loc[o.place]})")
        for prop in ("pickupable", "heatable", "coolable", "cleanable", "sliceable", "toggleable"):
            if getattr(o, prop):
                init.append(f"({prop} {o.id})")
    room_rtypes = sorted({r.rtype for r in game.receptacles})
    for rt in room_rtypes:
        for ot in otypes:
            if ot in assets.can_contain.get(rt, ()):
                init.append(f"(canContain {rt}Type {ot}Type)")
    return (
        f"(define (problem t2po_{game.split}_{game.index})\n(:domain alfred)\n(:objects\n"
        + "\n".join(objects)
        + "\n)\n(:init\n"
        + "\n".join(init)
        + "\n)\n"
        + pddl_goal(game)
        + "\n)\n"
    )


def export_game(game: Game, directory: str | os.PathLike) -> Path:
    """Write ``game`` as ALFWorld's ``game.tw-pddl`` + ``traj_data.json`` in ``directory``.

    Returns the path of ``game.tw-pddl``. The task sentence is written into the grammar
    the way ALFWorld's ``add_task_to_grammar`` does.
    """
    assets = load_assets()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    t = game.task
    traj = {
        "task_type": t.task_type,
        "pddl_params": {
            "object_target": t.object_target,
            "parent_target": t.parent_target,
            "toggle_target": t.toggle_target,
            "mrecep_target": t.mrecep_target,
            "object_sliced": t.object_sliced,
        },
    }
    data = {
        "pddl_domain": assets.domain_text,
        "grammar": assets.grammar_text.replace("UNKNOWN GOAL", t.description),
        "pddl_problem": pddl_problem(game),
        "solvable": True,
        "walkthrough": list(game.walkthrough),
    }
    (d / "traj_data.json").write_text(json.dumps(traj))
    path = d / "game.tw-pddl"
    path.write_text(json.dumps(data))
    return path


class TextWorldEngine:
    """Plays an ALFWorld ``game.tw-pddl`` with TextWorld's PDDL engine.

    Needs ``textworld`` and ``alfworld`` (with Fast Downward). ``reset()`` returns the
    intro text; ``step(cmd)`` returns ``(feedback, won)``.
    """

    def __init__(self, game_file: str | os.PathLike):
        os.environ.setdefault("ALFWORLD_DATA", str(Path.home() / ".cache" / "alfworld"))
        try:
            import textworld
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
        except ImportError as e:  # pragma: no cover - both are base dependencies
            raise ImportError(
                "engine='textworld' needs textworld and alfworld: pip install 'textworld==1.7.0' 'alfworld==0.4.2'"
            ) from e
        self.game_file = str(game_file)
        infos = textworld.EnvInfos(won=True, admissible_commands=True, extras=["gamefile"])
        self._env = textworld.start(self.game_file, request_infos=infos, wrappers=[AlfredDemangler(), AlfredInfos])
        self._state = None

    def reset(self) -> str:
        self._state = self._env.reset()
        return self._state.feedback

    def step(self, command: str) -> tuple[str, bool]:
        self._state, _, _ = self._env.step(command)
        return self._state.feedback, bool(self._state["won"])

    def admissible_commands(self) -> list[str]:
        return list(self._state["admissible_commands"])

    def won(self) -> bool:
        return bool(self._state["won"])

    def task_description(self) -> str:
        text = self._state.feedback if self._state is not None else ""
        marker = "Your task is to: "
        return text.split(marker, 1)[1].rstrip(".") if marker in text else ""

    def close(self) -> None:
        self._env.close()
