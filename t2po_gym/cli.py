"""The ``t2po`` command.

``t2po play`` plays any registered env with a scripted agent (``expert``/``oracle``,
``random``, ``human``) or an LLM policy (``--policy hf:PATH|openai:URL``). Other
sub-commands (``train``, ``sft``, ``eval``, ``serve-retriever``) are contributed by
the modules listed in ``_PLUGINS`` through a ``register_cli(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
from typing import Callable, Sequence

__all__ = ["main", "play_scripted"]

# Modules that add sub-commands; each defines register_cli(subparsers).
_PLUGINS = ("t2po_gym.envs.searchqa.server", "optim.cli")


def _agent(name: str, env, rng: random.Random) -> Callable[[dict], str | None]:
    base = env.unwrapped
    if name in ("expert", "oracle"):
        def act(info: dict) -> str | None:
            return base.oracle_action()
    elif name == "random":
        def act(info: dict) -> str | None:
            acts = info.get("admissible_actions") or []
            return rng.choice(acts) if acts else None
    elif name == "human":
        def act(info: dict) -> str | None:
            line = sys.stdin.readline()
            return None if line == "" else line.rstrip("\n")
    else:
        raise SystemExit(f"unknown agent {name!r}: choose expert, oracle, random or human")
    return act


def _wrap(base_env, command: str) -> str:
    """Put a bare command into the env's response format."""
    if command.lstrip().startswith("<"):
        inner = command  # already tagged (e.g. Search-QA's <search>/<answer>)
    else:
        inner = f"<{base_env.action_tag}>{command}</{base_env.action_tag}>"
    if "<think>" in inner:
        return inner
    return f"<think>scripted agent</think>{inner}"


def play_scripted(
    env_id: str,
    agent: str,
    episodes: int,
    *,
    seed: int = 0,
    env_kwargs: dict | None = None,
    verbose: bool = False,
    out=sys.stdout,
) -> dict:
    """Play ``episodes`` episodes of ``env_id`` with a scripted agent; returns the summary."""
    import gymnasium as gym

    import t2po_gym  # noqa: F401  (registers the ids)

    env = gym.make(env_id, **(env_kwargs or {}))
    rng = random.Random(seed)
    act = _agent(agent, env, rng)
    wins, scores, turns = 0, [], []
    try:
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep)
            if verbose or agent == "human":
                print(env.unwrapped.render_prompt() if agent == "human" else obs, file=out)
            done = False
            while not done:
                command = act(info)
                if command is None:
                    break
                obs, reward, terminated, truncated, info = env.step(_wrap(env.unwrapped, command))
                done = terminated or truncated
                if verbose or agent == "human":
                    print(f"> {command}\n{env.unwrapped._raw_obs}", file=out)
            wins += int(info["won"])
            scores.append(info["task_score"])
            turns.append(info["turn"])
    finally:
        env.close()
    summary = {
        "env": env_id,
        "agent": agent,
        "episodes": episodes,
        "success_rate": wins / max(episodes, 1),
        "mean_score": sum(scores) / max(len(scores), 1),
        "mean_turns": sum(turns) / max(len(turns), 1),
    }
    return summary


def _cmd_play(args: argparse.Namespace) -> int:
    env_kwargs = {}
    for kv in args.env_arg or []:
        if "=" not in kv:
            raise SystemExit(f"--env-arg expects KEY=VALUE, got {kv!r}")
        k, v = kv.split("=", 1)
        env_kwargs[k] = _parse_value(v)
    if args.policy:
        try:
            from t2po_gym.agent import play_with_policy
        except ImportError as e:
            raise SystemExit(f"--policy needs the train extra: pip install 't2po-gym[train]' ({e})") from e
        return int(play_with_policy(args, env_kwargs) or 0)
    agents = args.agent.split(",")
    rows = [play_scripted(args.env, a, args.episodes, seed=args.seed, env_kwargs=env_kwargs, verbose=args.verbose)
            for a in agents]
    print(f"{'agent':<10} {'episodes':>8} {'success':>8} {'score':>7} {'turns':>6}")
    for r in rows:
        print(f"{r['agent']:<10} {r['episodes']:>8} {r['success_rate']:>8.1%} {r['mean_score']:>7.3f} {r['mean_turns']:>6.1f}")
    return 0


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t2po", description="t2po-gym: text envs, TTI/TDS and T2PO training")
    sub = parser.add_subparsers(dest="command", required=True)
    play = sub.add_parser("play", help="play an env with a scripted agent or an LLM policy")
    play.add_argument("--env", default="T2PO/ALFWorld-v0", help="env id (default: T2PO/ALFWorld-v0)")
    play.add_argument("--agent", default="expert", help="expert|oracle|random|human, or a comma list")
    play.add_argument("--episodes", type=int, default=10)
    play.add_argument("--seed", type=int, default=0)
    play.add_argument("--env-arg", action="append", metavar="KEY=VALUE", help="keyword argument for gym.make")
    play.add_argument("--policy", default=None, help="hf:PATH or openai:URL (LLM policy instead of --agent)")
    play.add_argument("--tti", action="store_true", help="wrap the policy with thinking intervention")
    play.add_argument("--tds", action="store_true", help="wrap the policy with turn dedup")
    play.add_argument("--verbose", action="store_true", help="print every observation")
    play.set_defaults(func=_cmd_play)
    for mod in _PLUGINS:
        try:
            module = importlib.import_module(mod)
        except ImportError:
            continue  # that part's extra is not installed
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
