"""ALFWorld as a Gymnasium text environment."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.game import Game
from t2po_gym.envs.alfworld.generator import SPLIT_SIZES, generate_game
from t2po_gym.envs.alfworld.world import World
from t2po_gym.protocol import sanitize_text
from t2po_gym.text_env import TextEnv, Transition

__all__ = ["ALFWorldEnv"]


def _real_games(split: str) -> list[str]:
    """Real ALFWorld games of ``split`` under ``$ALFWORLD_DATA`` (json_2.1.1/<split> or <split>)."""
    import os

    from t2po_gym.envs.alfworld.textworld_engine import find_alfworld_games

    root = os.environ.get("ALFWORLD_DATA")
    if not root:
        return []
    for sub in (Path(root) / "json_2.1.1" / split, Path(root) / split):
        games = find_alfworld_games(sub)
        if games:
            return [str(g) for g in games]
    return []


class ALFWorldEnv(TextEnv):
    """Household tasks in ALFWorld's text world, played by an LLM agent.

    ## Description
    The agent is in a room (one of ALFWorld's 120 layouts) with receptacles (cabinets,
    countertops, a fridge ...) holding objects, and must solve one of ALFWorld's six
    task types: ``pick_and_place_simple``, ``look_at_obj_in_light``,
    ``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep``,
    ``pick_cool_then_place_in_recep``, ``pick_two_obj_and_place``. Games are generated
    offline from the layouts shipped by the ``alfworld`` package; every game is
    solvable by the built-in expert. The native engine (default) is pure Python with
    ALFWorld's rules and text; ``engine="textworld"`` plays the same game (or real
    ALFWorld games from ``$ALFWORLD_DATA``) with TextWorld's PDDL engine.

    ## Action Space
    ``UnicodeText``: the raw LLM response. The command is the text inside the last
    ``<action>...</action>``; with ``strict_format=True`` a single ``<think>...</think>``
    must come first. Commands are ALFWorld's (``go to fridge 1``, ``open fridge 1``,
    ``take apple 1 from countertop 1``, ``move apple 1 to fridge 1``, ``heat/cool/clean
    X with Y``, ``use desklamp 1``, ``examine``, ``inventory``, ``look``, ``help``). A
    command that is not admissible is a no-op (``action_valid=False``).

    ## Observation Space
    ``UnicodeText``: in ``observation_mode="prompt"`` the agent prompt (task, the last
    ``history_length`` observation/action pairs, admissible actions, format
    instructions); in ``"raw"`` mode ALFWorld's text only.

    ## Rewards
    1.0 on the step that solves the task, else 0.0.

    ## Starting State
    The agent stands in the middle of the room; all openable receptacles are closed.
    ``reset(seed=s)`` picks a game of the split reproducibly;
    ``reset(options={"split": "valid_seen", "game": 7})`` picks one explicitly, and
    ``reset(seed=s, options={"game": "seed"})`` picks game ``s % n``, so seeds ``0..n-1`` of a
    vector env play every game of the split once.

    ## Episode End
    Terminated when the task is solved; truncated after ``max_turns`` (50) steps.

    ## Arguments
    >>> import gymnasium as gym
    >>> import t2po_gym
    >>> env = gym.make("T2PO/ALFWorld-v0", split="train", observation_mode="raw")
    >>> obs, info = env.reset(seed=123)
    >>> obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    True
    >>> obs, reward, terminated, truncated, info = env.step("<think>look around</think><action>look</action>")
    >>> info["action_valid"]
    True

    * ``split``: ``"train"`` (3553 games), ``"valid_seen"`` (140), ``"valid_unseen"`` (134,
      unseen rooms).
    * ``engine``: ``"native"`` (default, fast) or ``"textworld"`` (reference).
    * ``num_games``: use only the first ``num_games`` games of the split.
    * ``task_types``: only these task types (e.g. ``["pick_and_place_simple"]``); default all six.
    * ``max_receptacles``: cap on receptacles per room (default 18); small rooms are easier.
    * ``game_files``: real ALFWorld ``game.tw-pddl`` files (implies ``engine="textworld"``).
      With ``engine="textworld"`` and no ``game_files``, the games of the split under
      ``$ALFWORLD_DATA/json_2.1.1/<split>`` (ALFWorld's layout) are used when present,
      generated games otherwise.
    * ``protocol`` (``"released"`` | ``"strict"``), ``prompt_template``: see :class:`~t2po_gym.text_env.TextEnv`.
    * ``observation_mode``, ``history_length``, ``strict_format``, ``max_turns``,
      ``render_mode``: see :class:`~t2po_gym.text_env.TextEnv`.

    ## Vectorized environment
    >>> envs = gym.make_vec("T2PO/ALFWorld-v0", num_envs=2)
    >>> obs, infos = envs.reset(seed=[5, 5])
    >>> obs[0] == obs[1]
    True
    """

    default_max_turns = 50
    prompt_intro = "You are an expert agent operating in the ALFRED embodied household environment."

    def __init__(
        self,
        *,
        split: str = "train",
        engine: str = "native",
        num_games: int | None = None,
        game_files: list[str] | None = None,
        task_types: str | list[str] | tuple[str, ...] | None = None,
        max_receptacles: int | None = None,
        observation_mode: str = "prompt",
        history_length: int | None = None,
        strict_format: bool = True,
        max_turns: int | None = None,
        render_mode: str | None = None,
        protocol: str = "released",
        prompt_template: str | tuple[str, str] | None = None,
    ):
        super().__init__(
            observation_mode=observation_mode,
            history_length=history_length,
            strict_format=strict_format,
            max_turns=max_turns,
            render_mode=render_mode,
            protocol=protocol,
            prompt_template=prompt_template,
        )
        if split not in SPLIT_SIZES:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SIZES)}")
        if engine not in ("native", "textworld"):
            raise ValueError(f"engine must be 'native' or 'textworld', got {engine!r}")
        if game_files is not None:
            engine = "textworld"
            if not game_files:
                raise ValueError("game_files is empty")
        elif engine == "textworld":
            # Real ALFWorld games under $ALFWORLD_DATA take precedence over generated ones.
            game_files = _real_games(split) or None
        self.split = split
        self.engine = engine
        self._gen_kwargs = {
            # one type as a plain string (``--env-arg task_types=pick_and_place_simple``), not its letters
            "task_types": (task_types,) if isinstance(task_types, str) else tuple(task_types) if task_types is not None else None,
            "max_receptacles": max_receptacles,
        }
        generate_game(split, 0, **self._gen_kwargs)  # validates the options early
        self.game_files = [str(p) for p in game_files] if game_files else None
        size = len(self.game_files) if self.game_files else SPLIT_SIZES[split]
        self.num_games = min(size, num_games) if num_games else size
        if self.num_games < 1:
            raise ValueError(f"num_games must be >= 1, got {num_games}")
        self._world: World | None = None
        self._tw = None
        self._tw_admissible: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.game: Game | None = None
        self.game_index = -1

    # ------------------------------------------------------------------ hooks
    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        split = options.get("split", self.split)
        if split not in SPLIT_SIZES:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SIZES)}")
        n = self.num_games if split == self.split else SPLIT_SIZES[split]
        if options.get("game") == "seed":
            # every game of the split exactly once over seeds 0..n-1 (a vector env passes
            # one options dict to all sub-envs, but a seed to each)
            if seed is None:
                raise ValueError('options {"game": "seed"} needs a reset seed: the game is seed % n')
            index = int(seed) % n
        elif "game" in options:
            index = int(options["game"])
            if not 0 <= index < n:
                raise IndexError(f"game {index} out of range for split {split!r} (0..{n - 1})")
        else:
            index = int(self.np_random.integers(n))
        self.game_index = index
        if self.engine == "native":
            self.game = generate_game(split, index, **self._gen_kwargs)
            self._world = World(self.game)
            text = self._world.reset()
            return text, self.game.task.description
        return self._reset_textworld(split, index)

    def _reset_textworld(self, split: str, index: int) -> tuple[str, str]:
        from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine, export_game

        if self._tw is not None:
            self._tw.close()
        self._world = None
        if self.game_files:
            path = self.game_files[index]
            self.game = None
        else:
            self.game = generate_game(split, index, **self._gen_kwargs)
            # A shadow native world follows the same commands so the expert can plan.
            self._world = World(self.game)
            self._world.reset()
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="t2po_alfworld_")
            path = export_game(self.game, Path(self._tmp.name) / f"{split}_{index}")
        self._tw = TextWorldEngine(path)
        text = self._tw.reset()
        self._tw_admissible = self._tw.admissible_commands()
        return text, self._tw.task_description()

    def _admissible_actions(self) -> list[str]:
        if self.engine == "native":
            return self._world.admissible_commands() if self._world else []
        return list(self._tw_admissible)

    def _check_command(self, command: str) -> str | None:
        if self.engine == "native":
            ok = self._world is not None and command in self._world.admissible()
        else:
            ok = command in self._tw_admissible
        if ok:
            return None
        return f"'{sanitize_text(command, 200)}' is not an admissible action here"

    def _apply_command(self, command: str) -> Transition:
        if self.engine == "native":
            text, won = self._world.step(command)
        else:
            text, won = self._tw.step(command)
            self._tw_admissible = self._tw.admissible_commands()
            if self._world is not None:
                self._world.step(command)
        return Transition(observation=text, reward=1.0 if won else 0.0, terminated=won, won=won, task_score=float(won))

    def oracle_action(self) -> str | None:
        """The expert's next command (``None`` once solved); generated games only."""
        if self._world is None:
            raise NotImplementedError("no expert for real ALFWorld game files")
        return expert_action(self._world)

    def close(self) -> None:
        if self._tw is not None:
            self._tw.close()
            self._tw = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()
