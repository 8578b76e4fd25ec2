"""The ``t2po`` command.

``t2po play`` plays any registered env with a scripted agent (``expert``/``oracle``,
``random``, ``human``) or an LLM policy (``--policy hf:PATH|openai:URL``). Other
sub-commands (``train``, ``sft``, ``eval``, ``serve-retriever``) are contributed by
the modules listed in ``_PLUGINS`` through a ``register_cli(subparsers)`` function.

One vocabulary in every command: env options as ``--env-arg KEY=VALUE`` (repeatable;
VALUE is read as JSON when it parses, else as a string) or ``--env-kwargs JSON`` (one
object; ``--env-arg`` entries override its keys). Mistakes in what the user typed (an
unknown env id, a bad value) print one ``t2po <command>: error: ...`` line and exit 2,
without a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import random
import sys
import time
from typing import Any, Callable, Sequence

__all__ = [
    "main",
    "build_parser",
    "play_scripted",
    "UsageError",
    "parse_value",
    "add_env_arguments",
    "env_kwargs_from_args",
    "check_env_id",
    "HelpFormatter",
    "json_object",
]

# Modules that add sub-commands; each defines register_cli(subparsers).
_PLUGINS = ("t2po_gym.envs.searchqa.server", "optim.cli")

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default in ``--help``, except where the help already says what
    ``None`` means ("None: the preset's")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "None:" in text and action.default is None:
            return text
        return super()._get_help_string(action) or ""


class UsageError(Exception):
    """A mistake in what the user typed: printed as one line (no traceback), exit status 2."""


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (``3``, ``0.5``, ``true``, ``null``,
    ``["a", "b"]``, ``{"k": 1}``), else the text itself (``pick_and_place_simple``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(raw)


def json_object(text: str) -> dict[str, Any]:
    """An argparse ``type=`` for a JSON object argument (``--env-kwargs``, ``--reset-options``)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, e.g. \'{"history_length": 1}\'')
    return value


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """``--env-arg KEY=VALUE`` (repeatable) and ``--env-kwargs JSON``: the env's ``gym.make`` options."""
    parser.add_argument("--env-arg", dest="env_arg", type=_key_value, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a gym.make keyword argument, repeatable; VALUE is read as JSON when it parses "
                             "(3, true, '[\"a\",\"b\"]'), else as text (task_types=pick_and_place_simple)")
    parser.add_argument("--env-kwargs", type=json_object, default=None, metavar="JSON",
                        help="gym.make keyword arguments as one JSON object; --env-arg entries override its keys")


def env_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any] | None:
    """The merged env options of ``--env-kwargs`` and ``--env-arg`` (``None`` when neither was given)."""
    base = getattr(args, "env_kwargs", None)
    pairs = getattr(args, "env_arg", None) or []
    if base is None and not pairs:
        return None
    out = dict(base or {})
    out.update(dict(pairs))
    return out


def check_env_id(env_id: str) -> None:
    """Raise :class:`UsageError` naming the close matches when ``env_id`` is not registered."""
    import gymnasium as gym

    import t2po_gym  # noqa: F401  (registers the ids)

    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.75)
    ours = sorted(k for k in gym.registry if k.startswith("T2PO/"))
    hint = f"did you mean {' or '.join(close)}?" if close else f"registered T2PO ids: {', '.join(ours)}"
    raise UsageError(f"unknown env id {env_id!r}: {hint}")


class _EndOfInput(Exception):
    """The human player closed stdin: stop playing."""


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
            print("> ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if line == "":
                raise _EndOfInput
            return line.rstrip("\n")
    else:
        raise UsageError(f"unknown agent {name!r}: choose expert, oracle, random or human")
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
    out: Any = None,
) -> dict:
    """Play ``episodes`` episodes of ``env_id`` with a scripted agent; returns the summary.

    The ``human`` agent reads one command per line from stdin (a bare command is wrapped in
    the env's tags; a tagged response is sent as typed) and stops at end of input: the
    summary then covers the episodes finished so far (``episodes`` in it says how many).
    ``out``: where observations go (default: stdout).
    """
    import gymnasium as gym

    import t2po_gym  # noqa: F401  (registers the ids)

    out = out if out is not None else sys.stdout
    env = gym.make(env_id, **(env_kwargs or {}))
    rng = random.Random(seed)
    act = _agent(agent, env, rng)
    wins, scores, turns = 0, [], []
    human = agent == "human"
    if human:
        tag = getattr(env.unwrapped, "action_tag", "action")
        print(f"Type one command per line. Bare commands work (e.g. the admissible actions listed); they are "
              f"sent as <think>...</think><{tag}>COMMAND</{tag}>. End input (Ctrl-D) to stop.", file=out)
    try:
        for ep in range(episodes):
            obs, info = env.reset(seed=seed + ep)
            if verbose or human:
                print(env.unwrapped.render_prompt() if human else obs, file=out)
            done = False
            try:
                while not done:
                    command = act(info)
                    if command is None:
                        break
                    obs, reward, terminated, truncated, info = env.step(_wrap(env.unwrapped, command))
                    done = terminated or truncated
                    if verbose or human:
                        print(f"> {command}\n{env.unwrapped._raw_obs}", file=out)
            except _EndOfInput:
                print(f"end of input: stopped after {ep} finished episode(s)", file=out)
                break
            wins += int(info["won"])
            scores.append(info["task_score"])
            turns.append(info["turn"])
    finally:
        env.close()
    n = len(scores)
    return {
        "env": env_id,
        "agent": agent,
        "episodes": n,
        "success_rate": wins / max(n, 1),
        "mean_score": sum(scores) / max(n, 1),
        "mean_turns": sum(turns) / max(n, 1),
    }


def _cmd_play(args: argparse.Namespace) -> int:
    check_env_id(args.env)
    env_kwargs = env_kwargs_from_args(args) or {}
    if args.policy:
        try:
            from t2po_gym.agent import play_with_policy
        except ImportError as e:
            raise UsageError(f"--policy needs the train extra: pip install 't2po-gym[train]' ({e})") from e
        return int(play_with_policy(args, env_kwargs, out=sys.stdout) or 0)
    agents = [a.strip() for a in args.agent.split(",") if a.strip()]
    if not agents:
        raise UsageError("--agent is empty: choose expert, oracle, random or human")
    for a in agents:
        if a not in ("expert", "oracle", "random", "human"):
            raise UsageError(f"unknown agent {a!r}: choose expert, oracle, random or human")
    rows = [play_scripted(args.env, a, args.episodes, seed=args.seed, env_kwargs=env_kwargs, verbose=args.verbose)
            for a in agents]
    print(f"{'agent':<10} {'episodes':>8} {'success':>8} {'score':>7} {'turns':>6}")
    for r in rows:
        print(f"{r['agent']:<10} {r['episodes']:>8} {r['success_rate']:>8.1%} {r['mean_score']:>7.3f} {r['mean_turns']:>6.1f}")
    return 0


def _add_play(sub: argparse._SubParsersAction) -> None:
    play = sub.add_parser("play", help="play an env with a scripted agent or an LLM policy",
                          description="Play an env with a scripted agent (expert, random, human) or an LLM policy.",
                          formatter_class=HelpFormatter)
    play.add_argument("--env", default="T2PO/ALFWorld-v0", help="env id")
    play.add_argument("--agent", default="expert", help="expert|oracle|random|human, or a comma list (expert,random)")
    play.add_argument("--episodes", type=int, default=10, help="episodes per agent (seeds SEED .. SEED+EPISODES-1)")
    play.add_argument("--seed", type=int, default=0, help="reset seed of the first episode")
    add_env_arguments(play)
    play.add_argument("--verbose", action="store_true", help="print every observation (and, with --policy, response)")
    llm = play.add_argument_group("LLM policy (--policy)")
    llm.add_argument("--policy", default=None, help="hf:PATH, hf:tiny or openai:URL: an LLM policy instead of --agent")
    llm.add_argument("--max-new-tokens", type=int, default=None, help="tokens per response (None: 256)")
    llm.add_argument("--temperature", type=float, default=None,
                     help="sampling temperature; 0 is greedy (None: 1.0)")
    llm.add_argument("--top-p", type=float, default=None, help="nucleus mass in (0, 1] (None: 1.0, off)")
    llm.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens (None: 0, off)")
    llm.add_argument("--stop", action="append", default=None, metavar="TEXT",
                     help="a stop string, repeatable (None: the env's, e.g. </action>)")
    llm.add_argument("--system-prompt", default=None, help="system message for the chat template")
    llm.add_argument("--assistant-prefill", default=None, help="text the assistant's turn starts with")
    llm.add_argument("--chat-template-arg", dest="chat_template_kwargs", action="append", default=None,
                     metavar="KEY=VALUE", help="chat template option, repeatable, e.g. enable_thinking=true")
    llm.add_argument("--tti", action="store_true", help="wrap the policy with TTI (thinking intervention)")
    llm.add_argument("--tti-arg", dest="tti_kwargs", action="append", default=None, metavar="KEY=VALUE",
                     help="a TTIConfig field, repeatable, e.g. --tti-arg epsilon=0.05 --tti-arg rule=patience")
    llm.add_argument("--tds", action="store_true", help="wrap the policy with TDS (turn dedup)")
    llm.add_argument("--tds-arg", dest="tds_kwargs", action="append", default=None, metavar="KEY=VALUE",
                     help="a TDSConfig field, repeatable, e.g. --tds-arg eta=0.01")
    play.set_defaults(func=_cmd_play)


def build_parser() -> argparse.ArgumentParser:
    """The ``t2po`` parser with every sub-command (those of installed extras included)."""
    parser = argparse.ArgumentParser(prog="t2po", description="t2po-gym: text envs, TTI/TDS and T2PO training",
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_play(sub)
    for mod in _PLUGINS:
        try:
            module = importlib.import_module(mod)
        except ImportError:
            continue  # that part's extra is not installed
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    for p in sub.choices.values():
        p.formatter_class = HelpFormatter
    return parser


def run_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the parsed sub-command; a :class:`UsageError` becomes one line on stderr and exit 2."""
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    parser = build_parser()
    args = parser.parse_args(argv)
    args.started_at = started  # budgets (t2po train --budget-min) count from here
    return run_command(parser, args)


if __name__ == "__main__":  # pragma: no cover
    # ``python -m t2po_gym.cli``: run the imported module's main, so that the plugins'
    # UsageError is the class run_command catches (not a copy defined in __main__)
    from t2po_gym.cli import main as _main

    sys.exit(_main())
