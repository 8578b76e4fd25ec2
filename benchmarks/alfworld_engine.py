"""Native ALFWorld engine vs TextWorld's PDDL engine, on the same games and commands.

Usage: python benchmarks/alfworld_engine.py [--quick] [--real DIR | --no-real]
       python benchmarks/alfworld_engine.py --distribution 500   (generated-game statistics only)

Each game is played by both engines with the same command sequence (a random prefix
of admissible commands, then the expert). Two parts, in one run:

* generated games (``train`` split);
* real ALFWorld games (default ``../shared/data/alfworld-real`` beside the repository:
  every ``game.tw-pddl`` under it, both data versions): native step and reset against
  TextWorld's on the same files. Native reset is ``World(spec).reset()`` on a loaded
  game (what ``env.reset`` costs once a file is cached) and, separately, the first load
  of the file (parse + checks).

Prints tables, then a last line of JSON with the generated-game figures (native_step_us,
native_env_step_us, native_reset_ms, textworld_step_us, textworld_reset_ms, speedup) and
the real-game ones (real_native_step_us, real_native_reset_ms, real_native_load_ms,
real_native_env_step_us, real_textworld_step_us, real_textworld_reset_ms, real_step_speedup,
real_reset_speedup).
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

from t2po_gym.envs.alfworld.real_game import load_game_file

from t2po_gym.envs.alfworld import ALFWorldEnv
from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.generator import generate_game
from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine, export_game
from t2po_gym.envs.alfworld.world import World


def command_sequence(game, seed: int, n_random: int = 10) -> list[str]:
    """A random prefix of admissible commands, then the expert to the win (a generated game or a real one's spec)."""
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
    ap.add_argument("--quick", action="store_true", help="6 generated games instead of 30, 2.1.2 real games only")
    default_real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alfworld-real"
    ap.add_argument("--real", type=Path, default=default_real, help="folder of real ALFWorld games")
    ap.add_argument("--no-real", action="store_true", help="skip the real-game rows")
    ap.add_argument("--distribution", type=int, default=0, metavar="N",
                    help="print the statistics of the first N generated train games per task type, and exit")
    args = ap.parse_args()
    if args.distribution:
        distribution(args.distribution)
        return
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
    result = {
        "games": n_games,
        "commands": n_steps,
        "native_step_us": round(native_step_us, 2),
        "native_env_step_us": round(native_env_step_us, 2),
        "native_reset_ms": round(native_reset_ms, 3),
        "textworld_step_us": round(textworld_step_us, 1),
        "textworld_reset_ms": round(textworld_reset_ms, 1),
        "speedup": round(speedup, 1),
    }
    if not args.no_real:
        result.update(real_games(args.real, quick=args.quick))
    print(json.dumps(result))


def distribution(n: int, split: str = "train") -> None:
    """Receptacles, pickupable objects, their classes and scene objects per task type (means)."""
    from collections import Counter, defaultdict

    from t2po_gym.envs.alfworld.assets import TASK_TYPES
    from t2po_gym.envs.alfworld.generator import SPLIT_SIZES, task_type_of

    rows = defaultdict(list)
    for i in tqdm(range(n), desc=f"generating {split}", leave=False):
        g = generate_game(split, i)
        pick = [o for o in g.items if o.pickupable]
        rows[g.task.task_type].append(
            (len(g.receptacles), len(pick), len({o.otype for o in pick}), sum(not o.pickupable for o in g.items))
        )
    print(f"first {n} generated {split} games: means per task type")
    print(f"{'task type':<32}{'games':>6}{'recs':>7}{'pick':>7}{'classes':>8}{'scene':>7}")
    every = [r for t in TASK_TYPES for r in rows[t]]
    for t, rs in [(t, rows[t]) for t in TASK_TYPES] + [("all", every)]:
        m = [statistics.mean(r[k] for r in rs) for k in range(4)]
        print(f"{t:<32}{len(rs):>6}{m[0]:>7.1f}{m[1]:>7.1f}{m[2]:>8.1f}{m[3]:>7.1f}")
    print(f"receptacles {min(r[0] for r in every)}-{max(r[0] for r in every)}, "
          f"pickupable {min(r[1] for r in every)}-{max(r[1] for r in every)}")
    for sp, size in SPLIT_SIZES.items():
        c = Counter(task_type_of(sp, i) for i in range(size))
        print(f"task mix {sp} ({size}): " + ", ".join(f"{t} {c[t]}" for t in TASK_TYPES))


def real_games(root: Path, quick: bool) -> dict:
    """Native vs TextWorld on real ALFWorld game files (both engines, same commands)."""
    files = sorted(root.rglob("game.tw-pddl")) if root.is_dir() else []
    if quick:
        files = [f for f in files if "json_2.1.2" in str(f)]
    if not files:
        print(f"real-game rows skipped: no game.tw-pddl under {root}")
        return {}
    loads, specs = [], []
    for f in files:
        t = time.perf_counter()
        specs.append(load_game_file(f))
        loads.append(time.perf_counter() - t)
    seqs = [command_sequence(s, i) for i, s in enumerate(specs)]
    n_steps = sum(len(q) for q in seqs)

    reps = 20
    resets, t_steps = [], 0.0
    for _ in range(reps):
        for spec, seq in zip(specs, seqs):
            t = time.perf_counter()
            w = World(spec)
            w.reset()
            resets.append(time.perf_counter() - t)
            t = time.perf_counter()
            for c in seq:
                w.step(c)
                w.admissible_commands()
            t_steps += time.perf_counter() - t
    native_step_us = t_steps / (reps * n_steps) * 1e6
    native_reset_ms = statistics.mean(resets) * 1e3

    env = ALFWorldEnv(game_files=[str(f) for f in files])
    env_steps = []
    for i, seq in enumerate(seqs):
        env.reset(options={"game": i})
        t = time.perf_counter()
        for c in seq:
            env.step(f"<think>t</think><action>{c}</action>")
        env_steps.append((time.perf_counter() - t) / len(seq))
    env.close()

    tw_steps, tw_resets = [], []
    for f, seq in tqdm(list(zip(files, seqs)), desc="textworld (real games)", leave=False):
        t = time.perf_counter()
        eng = TextWorldEngine(f)
        eng.reset()
        tw_resets.append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in seq:
            eng.step(c)
        tw_steps.append((time.perf_counter() - t) / len(seq))
        eng.close()
    tw_step_us = statistics.mean(tw_steps) * 1e6
    tw_reset_ms = statistics.mean(tw_resets) * 1e3
    out = {
        "real_games": len(files),
        "real_commands": n_steps,
        "real_native_step_us": round(native_step_us, 2),
        "real_native_env_step_us": round(statistics.mean(env_steps) * 1e6, 2),
        "real_native_reset_ms": round(native_reset_ms, 3),
        "real_native_load_ms": round(statistics.mean(loads) * 1e3, 2),
        "real_textworld_step_us": round(tw_step_us, 1),
        "real_textworld_reset_ms": round(tw_reset_ms, 1),
        "real_step_speedup": round(tw_step_us / native_step_us, 1),
        "real_reset_speedup": round(tw_reset_ms / native_reset_ms, 1),
    }
    print(f"\nreal ALFWorld games: {len(files)} files under {root}, {n_steps} commands each engine")
    print(f"{'engine':<22}{'step (us)':>12}{'reset (ms)':>12}")
    print(f"{'native engine':<22}{native_step_us:>12.1f}{native_reset_ms:>12.3f}")
    print(f"{'native Gymnasium env':<22}{out['real_native_env_step_us']:>12.1f}{'':>12}")
    print(f"{'native first load':<22}{'':>12}{out['real_native_load_ms']:>12.2f}")
    print(f"{'textworld (PDDL)':<22}{tw_step_us:>12.1f}{tw_reset_ms:>12.1f}")
    print(f"speedup (textworld / native): step {out['real_step_speedup']:.0f}x, reset {out['real_reset_speedup']:.0f}x")
    return out


if __name__ == "__main__":
    main()
