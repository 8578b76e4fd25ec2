"""Native ALFWorld engine vs TextWorld's PDDL engine, on the same games and commands.

Usage: python benchmarks/alfworld_engine.py [--quick]

Each game is played by both engines with the same command sequence (a random prefix
of admissible commands, then the expert). Prints a table, then a last line of JSON
with native_step_us, native_env_step_us, native_reset_ms, textworld_step_us,
textworld_reset_ms and speedup (textworld step time / native step time).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from t2po_gym.envs.alfworld import ALFWorldEnv
from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.generator import generate_game
from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine, export_game
from t2po_gym.envs.alfworld.world import World


def command_sequence(game, seed: int, n_random: int = 10) -> list[str]:
    w = World(game)
    w.reset()
    rng = random.Random(seed)
    cmds = []
    for _ in range(n_random):
        cmds.append(rng.choice(w.admissible_commands()))
        w.step(cmds[-1])
    while (a := expert_action(w)) is not None and len(cmds) < 60:
        cmds.append(a)
        w.step(a)
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 games instead of 30 (under 40 s)")
    args = ap.parse_args()
    n_games = 6 if args.quick else 30
    games = [generate_game("train", i) for i in range(n_games)]
    seqs = [command_sequence(g, i) for i, g in enumerate(games)]
    n_steps = sum(len(s) for s in seqs)

    # native engine: World.step returns the feedback; admissible commands are listed each step
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        for g, seq in zip(games, seqs):
            w = World(g)
            w.reset()
            for c in seq:
                w.step(c)
                w.admissible_commands()
    native_step_us = (time.perf_counter() - t0) / (reps * n_steps) * 1e6

    # native env: the full Gymnasium reset/step (generation, parsing, prompt rendering)
    env = ALFWorldEnv()
    resets, steps = [], []
    for i, seq in enumerate(seqs):
        t = time.perf_counter()
        env.reset(options={"game": i})
        resets.append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in seq:
            env.step(f"<think>t</think><action>{c}</action>")
        steps.append((time.perf_counter() - t) / len(seq))
    native_reset_ms = statistics.mean(resets) * 1e3
    native_env_step_us = statistics.mean(steps) * 1e6

    tw_steps, tw_resets = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (g, seq) in enumerate(tqdm(list(zip(games, seqs)), desc="textworld", leave=False)):
            path = export_game(g, Path(tmp) / str(i))
            t = time.perf_counter()
            eng = TextWorldEngine(path)
            eng.reset()
            tw_resets.append(time.perf_counter() - t)
            t = time.perf_counter()
            for c in seq:
                eng.step(c)
            tw_steps.append((time.perf_counter() - t) / len(seq))
            eng.close()
    textworld_step_us = statistics.mean(tw_steps) * 1e6
    textworld_reset_ms = statistics.mean(tw_resets) * 1e3

    speedup = textworld_step_us / native_step_us
    print(f"{n_games} games, {n_steps} commands each engine")
    print(f"{'engine':<22}{'step (us)':>12}{'reset (ms)':>12}")
    print(f"{'native engine':<22}{native_step_us:>12.1f}{'':>12}")
    print(f"{'native Gymnasium env':<22}{native_env_step_us:>12.1f}{native_reset_ms:>12.2f}")
    print(f"{'textworld (PDDL)':<22}{textworld_step_us:>12.1f}{textworld_reset_ms:>12.2f}")
    print(f"speedup (textworld / native engine step): {speedup:.0f}x")
    print(json.dumps({
        "games": n_games,
        "commands": n_steps,
        "native_step_us": round(native_step_us, 2),
        "native_env_step_us": round(native_env_step_us, 2),
        "native_reset_ms": round(native_reset_ms, 3),
        "textworld_step_us": round(textworld_step_us, 1),
        "textworld_reset_ms": round(textworld_reset_ms, 1),
        "speedup": round(speedup, 1),
    }))


if __name__ == "__main__":
    main()
