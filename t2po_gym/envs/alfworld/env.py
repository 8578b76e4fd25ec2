"""ALFWorld as a Gymnasium text environment."""

from __future__ import annotations

import math
import numbers
import os
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.game import Game
from t2po_gym.envs.alfworld.generator import SPLIT_SIZES, generate_game
from t2po_gym.envs.alfworld.real_game import (
    GameFileError,
    check_game_file,
    find_alfworld_games,
    load_game_file,
)
from t2po_gym.envs.alfworld.spec import WorldSpec
from t2po_gym.envs.alfworld.world import World
from t2po_gym.protocol import sanitize_text
from t2po_gym.text_env import TextEnv, Transition

__all__ = ["ALFWorldEnv", "alfworld_data_games"]

ENGINES = ("native", "textworld", "auto")
GAME_SOURCES = ("auto", "alfworld", "generated")
RESET_OPTIONS = ("split", "game")


def alfworld_data_games(split: str, root: str | os.PathLike | None = None) -> list[str]:
    """Real ALFWorld games of ``split`` under ``root`` (default ``$ALFWORLD_DATA``).

    Looks in ``<root>/json_2.1.1/<split>`` (ALFWorld's layout, the ``data_path`` of its
    configs), then ``<root>/json_2.1.2/<split>`` and ``<root>/<split>``; games are picked
    as ALFWorld's loader does (:func:`~t2po_gym.envs.alfworld.real_game.find_alfworld_games`).
    The listing is read once per process and folder (games added later are not seen).
    """
    root = root or os.environ.get("ALFWORLD_DATA")
    if not root:
        return []
    return list(_data_games(str(Path(root).resolve()), split))


@lru_cache(maxsize=16)
def _data_games(root: str, split: str) -> tuple[str, ...]:
    # once per process: every env of a vector env would otherwise read all the game files again
    for sub in (Path(root) / "json_2.1.1" / split, Path(root) / "json_2.1.2" / split, Path(root) / split):
        games = find_alfworld_games(sub)
        if games:
            return tuple(str(g) for g in games)
    return ()


@lru_cache(maxsize=512)
def _cached_spec(path: str, mtime_ns: int, size: int) -> WorldSpec:
    # keyed by mtime and size too, so an edited file is read again
    return load_game_file(path)


def _load_spec(path: str) -> WorldSpec:
    st = os.stat(path)
    return _cached_spec(path, st.st_mtime_ns, st.st_size)


def _game_index(value: Any, n: int, split: str) -> int:
    """``options["game"]`` as an index in ``[0, n)``; a clear error for anything else."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not math.isfinite(float(value)):
            raise ValueError(f'options["game"] must be a finite integer game index, got {value!r}')
        raise ValueError(
            f'options["game"] must be an integer game index (or "seed"), got {value!r} ({type(value).__name__})'
        )
    index = int(value)
    if not 0 <= index < n:
        raise IndexError(f'options["game"]={index} out of range for split {split!r} (0..{n - 1})')
    return index


class ALFWorldEnv(TextEnv):
    """Household tasks in ALFWorld's text world, played by an LLM agent.

    ## Description
    The agent is in a room (one of ALFWorld's 120 layouts) with receptacles (cabinets,
    countertops, a fridge ...) holding objects, and must solve one of ALFWorld's six
    task types: ``pick_and_place_simple``, ``look_at_obj_in_light``,
    ``pick_clean_then_place_in_recep``, ``pick_heat_then_place_in_recep``,
    ``pick_cool_then_place_in_recep``, ``pick_two_obj_and_place``. The games are
    ALFWorld's own when you have them (``$ALFWORLD_DATA`` or ``game_files``), otherwise
    generated offline from the layouts shipped by the ``alfworld`` package (every
    generated game is solvable by the built-in expert). The native engine (default) is
    pure Python with ALFWorld's rules and text and plays both kinds, real game files of
    data versions 2.1.1 and 2.1.2 included, with the observations, admissible commands,
    rewards and ``won`` of TextWorld's PDDL engine; ``engine="textworld"`` plays the same
    games with TextWorld's PDDL engine (the slow reference).

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
    * ``engine``: ``"native"`` (default, fast), ``"textworld"`` (reference) or ``"auto"``
      (native; a real game whose file uses a construct the native engine does not implement
      falls back to TextWorld, with a warning and ``info["engine"] == "textworld"``). With
      ``"native"`` such a game raises an error that names the file and the construct.
    * ``games``: ``"auto"`` (default: the split's real games under ``$ALFWORLD_DATA``, in
      ALFWorld's layout ``json_2.1.1/<split>/<task>/<trial>/game.tw-pddl``, when there are
      any, generated games otherwise), ``"alfworld"`` (real games, an error without them) or
      ``"generated"``. Real games are picked and counted as ALFWorld's loader does
      (solvable ones, ``movable``/``Sliced`` tasks skipped).
    * ``num_games``: use only the first ``num_games`` games of the split.
    * ``task_types``: only these task types (e.g. ``["pick_and_place_simple"]``); default all six.
    * ``max_receptacles``: cap on receptacles per room (default 18); small rooms are easier.
    * ``game_files``: real ALFWorld ``game.tw-pddl`` files to play instead (each needs its
      ``traj_data.json`` beside it); a missing file, a directory or an empty file fails here.
    * ``info["engine"]``: the engine that plays the current game.
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
        game_files: str | os.PathLike | list[str | os.PathLike] | None = None,
        games: str = "auto",
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
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
        if games not in GAME_SOURCES:
            raise ValueError(f"games must be one of {GAME_SOURCES}, got {games!r}")
        self._files_given = game_files is not None
        if game_files is not None:
            if isinstance(game_files, (str, os.PathLike)):
                game_files = [game_files]
            game_files = [str(check_game_file(p, argument="game_files")) for p in game_files]
            if not game_files:
                raise ValueError("game_files is empty: give at least one game.tw-pddl file")
        elif games != "generated":
            game_files = alfworld_data_games(split) or None
            if game_files is None and games == "alfworld":
                raise FileNotFoundError(
                    f"games='alfworld': no ALFWorld games of split {split!r} under $ALFWORLD_DATA="
                    f"{os.environ.get('ALFWORLD_DATA')!r} (expected json_2.1.1/{split}/<task>/<trial>/game.tw-pddl; "
                    "alfworld-download fetches them)"
                )
        self.split = split
        self.engine = engine
        self.games = games
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
        self._split_files: dict[str, list[str] | None] = {split: self.game_files}
        self._world: World | None = None
        self._engine_now = "native"
        self._no_expert_reason = ""
        self._tw = None
        self._tw_admissible: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.game: Game | None = None
        self.world_spec: WorldSpec | None = None
        self.game_index = -1

    # ------------------------------------------------------------------ hooks
    def _files_for(self, split: str) -> list[str] | None:
        """The real game files of ``split`` (``None``: generated games)."""
        if split in self._split_files:
            return self._split_files[split]
        if self._files_given:
            raise ValueError(
                f'options["split"]={split!r}: this env plays the game_files it was given ({self.split!r}); '
                f"make another env for split {split!r}"
            )
        files = alfworld_data_games(split) or None if self.games != "generated" else None
        if files is None and self.games == "alfworld":
            raise FileNotFoundError(f"games='alfworld': no ALFWorld games of split {split!r} under $ALFWORLD_DATA")
        self._split_files[split] = files
        return files

    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        unknown = sorted(map(str, set(options) - set(RESET_OPTIONS)))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; ALFWorld accepts {list(RESET_OPTIONS)}")
        split = options.get("split", self.split)
        if split not in SPLIT_SIZES:
            raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_SIZES)}")
        files = self._files_for(split)
        n = self.num_games if split == self.split else (len(files) if files else SPLIT_SIZES[split])
        if options.get("game") == "seed":
            # every game of the split exactly once over seeds 0..n-1 (a vector env passes
            # one options dict to all sub-envs, but a seed to each)
            if seed is None:
                raise ValueError('options {"game": "seed"} needs a reset seed: the game is seed % n')
            index = int(seed) % n
        elif "game" in options:
            index = _game_index(options["game"], n, split)
        else:
            index = int(self.np_random.integers(n))
        self.game_index = index
        self._no_expert_reason = ""
        if files:
            return self._reset_file(files[index])
        self.game = generate_game(split, index, **self._gen_kwargs)
        if self.engine == "textworld":
            return self._reset_textworld_generated(split, index)
        self._close_textworld()
        self._engine_now = "native"
        self._world = World(self.game)
        self.world_spec = self._world.spec
        text = self._world.reset()
        return text, self.game.task.description

    def _close_textworld(self) -> None:
        if self._tw is not None:
            self._tw.close()
            self._tw = None

    def _reset_file(self, path: str) -> tuple[str, str]:
        """A real ALFWorld game: native when it can, TextWorld when asked (or as ``auto``'s fallback)."""
        self.game = None
        spec: WorldSpec | None = None
        error: GameFileError | None = None
        try:
            spec = _load_spec(path)
        except GameFileError as e:
            if self.engine == "native":
                raise
            error = e
        self._world = World(spec) if spec is not None else None
        self.world_spec = spec
        if spec is not None and self.engine != "textworld":
            self._close_textworld()
            self._engine_now = "native"
            return self._world.reset(), spec.task.description
        if self.engine == "auto":
            warnings.warn(f"engine='auto' plays {path} with TextWorld: {error}", RuntimeWarning, stacklevel=3)
        if self._world is not None:
            self._world.reset()  # a shadow of the TextWorld game, for the expert
        else:
            self._no_expert_reason = f"the native engine cannot read this game ({error})"
        return self._start_textworld(path)

    def _start_textworld(self, path: str | os.PathLike) -> tuple[str, str]:
        from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine

        self._close_textworld()
        self._engine_now = "textworld"
        self._tw = TextWorldEngine(path)
        text = self._tw.reset()
        self._tw_admissible = self._tw.admissible_commands()
        return text, self._tw.task_description()

    def _reset_textworld_generated(self, split: str, index: int) -> tuple[str, str]:
        from t2po_gym.envs.alfworld.textworld_engine import export_game

        # A shadow native world follows the same commands so the expert can plan.
        self._world = World(self.game)
        self._world.reset()
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="t2po_alfworld_")
        path = export_game(self.game, Path(self._tmp.name) / f"{split}_{index}")
        return self._start_textworld(path)

    def _info(self, **kwargs: Any) -> dict[str, Any]:
        info = super()._info(**kwargs)
        info["engine"] = self._engine_now
        return info

    def _admissible_actions(self) -> list[str]:
        if self._engine_now == "native":
            return self._world.admissible_commands() if self._world else []
        return list(self._tw_admissible)

    def _check_command(self, command: str) -> str | None:
        if self._engine_now == "native":
            ok = self._world is not None and command in self._world.admissible()
        else:
            ok = command in self._tw_admissible
        if ok:
            return None
        return f"'{sanitize_text(command, 200)}' is not an admissible action here"

    def _apply_command(self, command: str) -> Transition:
        if self._engine_now == "native":
            text, won = self._world.step(command)
        else:
            text, won = self._tw.step(command)
            self._tw_admissible = self._tw.admissible_commands()
            if self._world is not None:
                self._world.step(command)
        return Transition(observation=text, reward=1.0 if won else 0.0, terminated=won, won=won, task_score=float(won))

    def oracle_action(self) -> str | None:
        """The expert's next command (``None`` once solved), on generated and real games alike."""
        if self._world is None:
            raise NotImplementedError(f"no expert for this game: {self._no_expert_reason or 'reset() first'}")
        return expert_action(self._world)

    def close(self) -> None:
        self._close_textworld()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()
