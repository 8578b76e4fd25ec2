"""TextEnv: the Gymnasium base class that every t2po-gym environment shares.

A TextEnv owns everything that is the same across games:

* Text observation and action spaces over printable Unicode;
* parsing the raw LLM response into a command (:mod:`t2po_gym.protocol`);
* the rule that an invalid or unparsable response is a no-op with an explanation;
* the ``info`` dict with the same keys in every env;
* the agent prompt (``observation_mode="prompt"``) with a window of history;
* the turn limit (truncation) and the error on stepping a finished episode.

A concrete game implements five hooks: :meth:`_reset_game`, :meth:`_admissible_actions`,
:meth:`_check_command`, :meth:`_apply_command` and :meth:`_render_text`.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from t2po_gym.protocol import (
    MAX_COMMAND_CHARS,
    PROTOCOLS,
    ParsedResponse,
    Projection,
    parse_response,
    project_action_response,
    sanitize_text,
)
from t2po_gym.spaces import UnicodeText

__all__ = [
    "TextEnv",
    "Transition",
    "EpisodeEndedError",
    "INFO_KEYS",
    "MAX_OBSERVATION_CHARS",
    "ResponseSpec",
    "PROMPT_PLACEHOLDERS",
    "option_index",
]

#: Upper bound on the length of any observation (characters).
MAX_OBSERVATION_CHARS = 100_000
#: Upper bound on what the action space samples; longer actions are still handled.
MAX_ACTION_CHARS = 8192
#: Each history entry shown in a prompt is cut to this many characters.
HISTORY_ENTRY_CHARS = 2000

#: Keys present in ``info`` after every ``reset`` and ``step`` of every env.
INFO_KEYS = (
    "admissible_actions",
    "won",
    "task_score",
    "format_valid",
    "action_valid",
    "task",
    "turn",
    "anchor",
)


@dataclass(frozen=True)
class ResponseSpec:
    """How a response to an env is written, for whoever generates one (policies, TTI, trainer).

    Attributes:
        action_tags: the tags that may hold the command (one of them per response).
        stop: stop strings: generation ends after the first one (it is kept in the text).
        forced_text: what TTI forces when it ends a thought early; the model then writes
            the rest of the response itself.
    """

    action_tags: tuple[str, ...] = ("action",)
    stop: tuple[str, ...] = ("</action>",)
    forced_text: str = "</think>\n<action>"


class EpisodeEndedError(RuntimeError):
    """Raised by :meth:`TextEnv.step` after the episode terminated or was truncated."""


@dataclass
class Transition:
    """What a game returns for one valid command.

    Attributes:
        observation: the game's text answer (raw, without prompt or history).
        reward: the reward for this step.
        terminated: whether the episode reached a terminal state.
        won: whether the task is solved.
        task_score: the task score in [0, 1] (1.0 when won).
        anchor: the GiGPO anchor-state key after the step; ``None`` means the observation.
    """

    observation: str
    reward: float = 0.0
    terminated: bool = False
    won: bool = False
    task_score: float = 0.0
    anchor: str | None = None


class TextEnv(gym.Env[str, str]):
    """Base class for multi-turn text environments driven by LLM responses.

    Args:
        observation_mode: ``"prompt"`` (default) returns the full agent prompt with task,
            history window, admissible actions and format instructions; ``"raw"`` returns
            the game's text only.
        history_length: how many past (observation, action) pairs the prompt shows; ``None``:
            the env's window for the protocol (released: ALFWorld 2, WebShop 2, Search 4).
        strict_format: (``protocol="strict"`` only) require ``<think>...</think><action>...</action>``;
            when False a bare command is accepted too.
        max_turns: turn limit (truncation); ``None`` uses the env's default.
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the current page/room text).
        protocol: ``"released"`` (default) plays a response as the released T2PO code does
            (see :mod:`t2po_gym.protocol`): the projected command is lower-cased (ALFWorld,
            WebShop) and executed even when the response is invalid, the env's own reply is the
            observation and the anchor, and the prompt follows the released templates' fields.
            ``"strict"``: an invalid response is a no-op with an explanation, and the prompt is
            this project's.
        prompt_template: (``observation_mode="prompt"``) a ``str.format`` template for every
            turn, or a pair ``(first_turn, later_turns)``; ``None`` uses the protocol's own.
            Placeholders (see :data:`PROMPT_PLACEHOLDERS`): ``{task_description}``,
            ``{current_observation}``, ``{admissible_actions}`` (alias ``{available_actions}``),
            ``{step_count}`` (turns taken), ``{history_length}`` (entries in the history),
            ``{action_history}`` (alias ``{memory_context}``), ``{current_step}`` (step_count + 1).
            The released templates themselves (``agent_system/environments/prompts/*.py``) can
            be passed as they are.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    #: default turn limit of the env (truncation after this many steps)
    default_max_turns: ClassVar[int] = 50
    #: the tag holding the command in a response
    action_tag: ClassVar[str] = "action"
    #: the response protocol for generators: action tags, stop strings, TTI's forced text
    response_spec: ClassVar[ResponseSpec] = ResponseSpec()
    #: first line of the agent prompt
    prompt_intro: ClassVar[str] = "You are an expert agent in a text environment."
    #: whether the prompt lists the admissible actions
    prompt_lists_actions: ClassVar[bool] = True
    #: how the prompt asks for the answer
    prompt_instruction: ClassVar[str] = (
        "Now it is your turn. First reason step by step about the situation inside "
        "<think> </think> tags. Then write exactly one admissible action inside "
        "<action> </action> tags."
    )
    #: history window of ``protocol="strict"`` when ``history_length`` is None
    strict_history_length: ClassVar[int] = 2
    #: history window of the released code (``env.history_length``, 2 unless the example sets it)
    released_history_length: ClassVar[int] = 2
    #: released validity also needs the command to be admissible (ALFWorld's projection.py:L60-62)
    released_needs_admissible: ClassVar[bool] = True
    #: GiGPO anchor similarity threshold of the released recipe (None: exact anchors)
    anchor_similarity: ClassVar[float | None] = None
    #: the released prompt, as ``(first turn, later turns)`` templates (our wording, the fields of
    #: ``agent_system/environments/prompts/alfworld.py`` in its order); ``{intro}`` is ``prompt_intro``
    released_prompt: ClassVar[tuple[str, str]] = (
        "{intro}\n"
        "Your current observation is: {current_observation}\n"
        "Your admissible actions of the current situation are: [{admissible_actions}].\n\n"
        "Now it's your turn to take an action. First reason step by step about the current "
        "situation; this reasoning MUST be enclosed within <think> </think> tags. Then choose "
        "an admissible action for the current step and write it within <action> </action> tags.\n",
        "{intro} Your task is to: {task_description}\n"
        "Before this step you have taken {step_count} step(s). Your most recent {history_length} "
        "observations and the actions you took: {action_history}\n"
        "You are now at step {current_step} and your current observation is: {current_observation}\n"
        "Your admissible actions of the current situation are: [{admissible_actions}].\n\n"
        "Now it's your turn to take an action. First reason step by step about the current "
        "situation; this reasoning MUST be enclosed within <think> </think> tags. Then choose "
        "an admissible action for the current step and write it within <action> </action> tags.\n",
    )
    #: a released prompt longer than this falls back to the first-turn template (None: never)
    released_prompt_max_chars: ClassVar[int | None] = None

    def __init__(
        self,
        *,
        observation_mode: str = "prompt",
        history_length: int | None = None,
        strict_format: bool = True,
        max_turns: int | None = None,
        render_mode: str | None = None,
        protocol: str = "released",
        prompt_template: str | tuple[str, str] | list[str] | None = None,
    ):
        if observation_mode not in ("prompt", "raw"):
            raise ValueError(f"observation_mode must be 'prompt' or 'raw', got {observation_mode!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        self.protocol = protocol
        if protocol == "released" and not strict_format:
            # a silent switch to the released rule would cut long bare commands to 30 characters
            warnings.warn(
                "strict_format=False has no effect with protocol='released' (the default): a response "
                "without <action> tags executes only its last 30 characters, as the released T2PO code "
                "does. Pass protocol='strict' to accept bare commands.",
                UserWarning,
                stacklevel=2,
            )
        if history_length is None:
            history_length = self.released_history_length if protocol == "released" else self.strict_history_length
        if history_length < 0:
            raise ValueError(f"history_length must be >= 0, got {history_length}")
        self.prompt_template = _check_template(prompt_template)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.observation_mode = observation_mode
        self.history_length = int(history_length)
        self.strict_format = bool(strict_format)
        self.max_turns = int(max_turns if max_turns is not None else self.default_max_turns)
        if self.max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {self.max_turns}")
        self.render_mode = render_mode
        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS, min_length=1)
        self.action_space = UnicodeText(MAX_ACTION_CHARS)

        self._started = False
        self._ended = False
        self._turn = 0
        self._task = ""
        self._raw_obs = ""
        self._anchor = ""
        self._won = False
        self._score = 0.0
        self._history: list[tuple[str, str]] = []
        # released memory: (observation before, executed command, observation after) per step
        self._memory: list[tuple[str, str, str]] = []

    # ------------------------------------------------------------------ hooks
    def _reset_game(self, seed: int | None, options: dict[str, Any]) -> tuple[str, str]:
        """Start a new game. Returns ``(first raw observation, task description)``.

        Use ``self.np_random`` for any randomness so that ``reset(seed=s)`` is reproducible.
        """
        raise NotImplementedError

    def _admissible_actions(self) -> list[str]:
        """The commands that are valid in the current state."""
        raise NotImplementedError

    def _check_command(self, command: str) -> str | None:
        """Return ``None`` if ``command`` can be executed now, else the reason it cannot."""
        if command in self._admissible_actions():
            return None
        return f"'{sanitize_text(command, 200)}' is not an admissible action"

    def _apply_command(self, command: str) -> Transition:
        """Execute a valid command and return the transition."""
        raise NotImplementedError

    def _render_text(self) -> str:
        """The current page or room as text (``render_mode="ansi"``)."""
        return self._raw_obs

    def oracle_action(self) -> str | None:
        """The expert's next command for the current state (``None`` when it has none).

        Used by the ``expert``/``oracle`` agents of ``t2po play`` and by ``sft`` data collection.
        """
        raise NotImplementedError(f"{type(self).__name__} has no expert")

    def _parse(self, response: str) -> ParsedResponse:
        """Turn the raw response into a command. Envs with other tags override this."""
        return parse_response(response, strict=self.strict_format, action_tag=self.action_tag)

    # ---------------------------------------------------------- released-protocol hooks
    def _project(self, response: str) -> Projection:
        """``protocol="released"``: the released projection of a response (ALFWorld/WebShop rule)."""
        return project_action_response(response)

    def _released_reply(self, command: str) -> Transition:
        """``protocol="released"``: the env's own reply to a command it cannot execute.
        Default: ALFWorld's (TextWorld's) ``Nothing happens.``"""
        return Transition("Nothing happens.")

    def _released_view(self, raw: str) -> str:
        """``protocol="released"``: the env text as the released manager shows it (and uses as
        the anchor). Default: unchanged."""
        return raw

    def _released_actions_text(self, actions: list[str]) -> str:
        """The admissible actions as the released prompt lists them, without ``help``
        (``env_manager.py:L197-198``)."""
        return "\n ".join(f"'{a}'" for a in actions if a != "help")

    def _released_history_text(self, first_step: int, window: list[tuple[str, str, str]]) -> str:
        """The released history block (``agent_system/memory/memory.py`` ``SimpleMemory.fetch``):
        one ``[Observation k: '...', Action k: '...']`` line per step, the observation *before* the action."""
        return "\n".join(
            f"[Observation {k}: '{before}', Action {k}: '{act}']"
            for k, (before, act, _after) in enumerate(window, start=first_step)
        )

    # ------------------------------------------------------------- Gymnasium
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = dict(options or {})
        raw, task = self._reset_game(seed, options)
        self._started = True
        self._ended = False
        self._turn = 0
        self._task = task
        self._raw_obs = sanitize_text(raw)
        self._anchor = self._raw_obs
        self._won = False
        self._score = 0.0
        self._history = []
        self._memory = []
        if self.protocol == "released":
            self._anchor = self._released_view(self._raw_obs)
        return self._observation(), self._info(format_valid=True, action_valid=True)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._started:
            raise gym.error.ResetNeeded("Cannot call step() before reset().")
        if self._ended:
            raise EpisodeEndedError(
                "This episode has ended (terminated or truncated); call reset() before step()."
            )
        if not isinstance(action, str):
            raise TypeError(
                f"{type(self).__name__}.step expects the LLM response as a str, "
                f"got {type(action).__name__}"
            )
        if self.protocol == "released":
            return self._step_released(action)
        parsed = self._parse(action)
        command = parsed.action
        reward, terminated = 0.0, False
        if command is None or (self.strict_format and not parsed.format_valid):
            action_valid = False
            raw = f"Invalid response: {parsed.error}. Nothing happens."
            shown = sanitize_text(action.strip(), 200)
        elif len(command) > MAX_COMMAND_CHARS:
            action_valid = False
            raw = f"Invalid action: longer than {MAX_COMMAND_CHARS} characters. Nothing happens."
            shown = sanitize_text(command, 200)
        else:
            error = self._check_command(command)
            shown = sanitize_text(command, 200)
            if error is not None:
                action_valid = False
                raw = f"Invalid action: {error}. Nothing happens."
            else:
                action_valid = True
                tr = self._apply_command(command)
                raw = sanitize_text(tr.observation)
                reward, terminated = float(tr.reward), bool(tr.terminated)
                self._won = self._won or tr.won
                self._score = float(tr.task_score)
                self._anchor = tr.anchor if tr.anchor is not None else raw
        self._history.append((self._raw_obs, shown))
        self._raw_obs = raw
        self._turn += 1
        truncated = (not terminated) and self._turn >= self.max_turns
        self._ended = terminated or truncated
        info = self._info(format_valid=parsed.format_valid, action_valid=action_valid)
        return self._observation(), reward, terminated, truncated, info

    def _step_released(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """One step as the released code plays it: project, execute whatever came out, report validity."""
        proj = self._project(action)
        command = proj.command
        reward, terminated = 0.0, False
        error = "too long" if len(command) > MAX_COMMAND_CHARS else self._check_command(command)
        if error is None:
            tr = self._apply_command(command)
        else:
            tr = self._released_reply(command)
        raw = sanitize_text(tr.observation)
        reward, terminated = float(tr.reward), bool(tr.terminated)
        if error is None:
            self._won = self._won or tr.won
            self._score = float(tr.task_score)
        view = self._released_view(raw)
        self._anchor = tr.anchor if tr.anchor is not None else view
        valid = proj.valid and (error is None or not self.released_needs_admissible)
        shown = sanitize_text(command, HISTORY_ENTRY_CHARS)
        self._memory.append((self._released_view(self._raw_obs), shown, view))
        self._history.append((self._raw_obs, shown))
        self._raw_obs = raw
        self._turn += 1
        truncated = (not terminated) and self._turn >= self.max_turns
        self._ended = terminated or truncated
        info = self._info(format_valid=proj.format_valid, action_valid=valid)
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._render_text() if self._started else ""
        return None

    # ------------------------------------------------------------- internals
    @property
    def turn(self) -> int:
        """Number of steps taken in the current episode."""
        return self._turn

    @property
    def task(self) -> str:
        """The task description of the current episode."""
        return self._task

    def _info(self, *, format_valid: bool, action_valid: bool) -> dict[str, Any]:
        return {
            "admissible_actions": [] if self._ended else list(self._admissible_actions()),
            "won": bool(self._won),
            "task_score": float(self._score),
            "format_valid": bool(format_valid),
            "action_valid": bool(action_valid),
            "task": self._task,
            "turn": self._turn,
            "anchor": self._anchor,
        }

    def _observation(self) -> str:
        if self.observation_mode == "raw":
            text = self._raw_obs or " "
        else:
            text = self.render_prompt()
        return sanitize_text(text[: MAX_OBSERVATION_CHARS - 3]) if len(text) > MAX_OBSERVATION_CHARS else text

    def prompt_fields(self) -> dict[str, Any]:
        """The values of the prompt placeholders for the current state (see ``prompt_template``)."""
        window = self._memory[-self.history_length :] if self.history_length else []
        acts = [] if self._ended else self._admissible_actions()
        actions = self._released_actions_text(acts)
        history = self._released_history_text(len(self._memory) - len(window) + 1, window)
        return {
            "task_description": self._task,
            "current_observation": self._released_view(self._raw_obs),
            "admissible_actions": actions,
            "available_actions": actions,
            "step_count": self._turn,
            "history_length": len(window),
            "action_history": history,
            "memory_context": history,
            "current_step": self._turn + 1,
        }

    def render_prompt(self) -> str:
        """The agent prompt for the current state: the released templates' fields
        (``protocol="released"`` or a ``prompt_template``), else this project's format."""
        if self.protocol == "released" or self.prompt_template is not None:
            first, later = self.prompt_template or tuple(
                t.replace("{intro}", self.prompt_intro.replace("{", "{{").replace("}", "}}"))
                for t in self.released_prompt
            )
            fields = self.prompt_fields()
            if self._turn == 0 or self.history_length == 0:
                return first.format_map(fields)
            text = later.format_map(fields)
            limit = self.released_prompt_max_chars
            if limit is not None and len(text) > limit:  # the released manager's fallback
                text = first.format_map(fields)
            return text
        return self._render_strict_prompt()

    def _render_strict_prompt(self) -> str:
        """This project's prompt (``protocol="strict"``)."""
        lines = [self.prompt_intro, f"Your task is to: {self._task}"]
        window = self._history[-self.history_length :] if self.history_length else []
        if self._turn and window:
            lines.append(
                f"Before this turn you took {self._turn} action(s). "
                f"Your last {len(window)} observation(s) and action(s):"
            )
            first = self._turn - len(window) + 1
            for k, (obs, act) in enumerate(window, start=first):
                lines.append(f"[Observation {k}: '{_clip(obs)}', Action {k}: '{act}']")
        lines.append(f"You are now at turn {self._turn + 1}. Your current observation is: {self._raw_obs}")
        if self.prompt_lists_actions:
            acts = [] if self._ended else self._admissible_actions()
            lines.append("Your admissible actions are: [" + ", ".join(f"'{a}'" for a in acts) + "]")
        lines.append("")
        lines.append(self.prompt_instruction)
        return "\n".join(lines)


def option_index(value: Any, name: str, n: int) -> int:
    """A reset option that picks an item by index (``goal_index``, ``question_index``): an integer
    (Python or numpy, not bool) in ``[0, n)``; a ``ValueError`` naming the option otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"options[{name!r}]: {name} must be an integer in [0, {n}), got {value!r} "
                         f"({type(value).__name__})")
    idx = int(value)
    if not 0 <= idx < n:
        raise ValueError(f"{name} must be in [0, {n}), got {idx}")
    return idx


#: the placeholders a ``prompt_template`` may use
PROMPT_PLACEHOLDERS = (
    "task_description",
    "current_observation",
    "admissible_actions",
    "available_actions",
    "step_count",
    "history_length",
    "action_history",
    "memory_context",
    "current_step",
)


def _check_template(template: str | tuple[str, str] | list[str] | None) -> tuple[str, str] | None:
    """Validate ``prompt_template`` now (a typo in a placeholder should fail at construction,
    not at the first prompt) and return it as a ``(first turn, later turns)`` pair."""
    if template is None:
        return None
    if isinstance(template, str):
        pair = (template, template)
    elif isinstance(template, (tuple, list)) and len(template) == 2 and all(isinstance(t, str) for t in template):
        pair = (template[0], template[1])
    else:
        raise TypeError("prompt_template must be a str or a (first_turn, later_turns) pair of str")
    dummy = {k: "" for k in PROMPT_PLACEHOLDERS}
    for t in pair:
        try:
            t.format_map(dummy)
        except KeyError as e:
            raise ValueError(
                f"prompt_template has an unknown placeholder {{{e.args[0]}}}; known: "
                + ", ".join("{" + k + "}" for k in PROMPT_PLACEHOLDERS)
            ) from None
        except (ValueError, IndexError) as e:
            raise ValueError(f"prompt_template is not a valid str.format template: {e}") from None
    return pair


def _clip(text: str) -> str:
    if len(text) <= HISTORY_ENTRY_CHARS:
        return text
    return text[:HISTORY_ENTRY_CHARS] + "..."
