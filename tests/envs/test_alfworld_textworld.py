"""Differential test: the native engine against TextWorld's PDDL engine (ALFWorld's own).

For 12 generated games (2 of each task type, from the train and valid_unseen splits; real-sized
rooms, so TextWorld takes seconds to load each; real ALFWorld games are in
``test_alfworld_real_differential.py``),
a random prefix of admissible commands followed by the expert's commands must give
the same observations, admissible commands, rewards and `won` in both engines.
Only whitespace is normalised. No deliberate differences exist.
"""

from __future__ import annotations

import random

import pytest

from t2po_gym.envs.alfworld.assets import TASK_TYPES
from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.generator import generate_game
from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine, export_game
from t2po_gym.envs.alfworld.world import World

pytest.importorskip("textworld")


def _games_by_type(per_type: int = 2):
    picked = {t: [] for t in TASK_TYPES}
    for split in ("train", "valid_unseen"):
        for i in range(134):
            g = generate_game(split, i)
            bucket = picked[g.task.task_type]
            if len(bucket) < per_type and (split == "valid_unseen" or len(bucket) < per_type - 1):
                bucket.append((split, i))
    out = [x for t in TASK_TYPES for x in picked[t]]
    return out


GAMES = _games_by_type()


def norm(s: str) -> str:
    return " ".join(s.split())


def test_selection_covers_every_task_type():
    assert len(GAMES) >= 12
    assert {generate_game(s, i).task.task_type for s, i in GAMES} == set(TASK_TYPES)


@pytest.mark.parametrize("split,index", GAMES)
def test_same_observations_in_both_engines(split, index, tmp_path):
    game = generate_game(split, index)
    tw = TextWorldEngine(export_game(game, tmp_path / "game"))
    native = World(game)
    assert norm(native.reset()) == norm(tw.reset())
    rng = random.Random(index)
    n_random = 12
    for step in range(80):
        assert native.admissible_commands() == tw.admissible_commands(), f"step {step}"
        if step < n_random:
            cmd = rng.choice(native.admissible_commands())
        else:
            cmd = expert_action(native)
            if cmd is None:
                break
        (a, won_a), (b, won_b) = native.step(cmd), tw.step(cmd)
        assert norm(a) == norm(b), f"{cmd!r}"
        assert won_a == won_b
        if won_a:
            break
    assert native.won() and tw.won()
    # an inadmissible command does nothing in both
    assert native.step("fly to the moon")[0] == tw.step("fly to the moon")[0] == "Nothing happens."
    tw.close()


def test_textworld_engine_through_the_env():
    import gymnasium as gym

    import t2po_gym  # noqa: F401

    env = gym.make("T2PO/ALFWorld-v0", engine="textworld", observation_mode="raw")
    ref = gym.make("T2PO/ALFWorld-v0", observation_mode="raw")
    o1, i1 = env.reset(seed=9)
    o2, i2 = ref.reset(seed=9)
    assert o1 == o2 and i1["admissible_actions"] == i2["admissible_actions"]
    done = False
    while not done:
        cmd = env.unwrapped.oracle_action()
        a = env.step(f"<think>t</think><action>{cmd}</action>")
        b = ref.step(f"<think>t</think><action>{cmd}</action>")
        assert a[:4] == b[:4]
        done = a[2] or a[3]
    assert a[4]["won"] and a[1] == 1.0
    env.close()
    ref.close()


def test_real_game_files_from_alfworld_data(tmp_path, monkeypatch):
    """ALFWorld's on-disk layout under $ALFWORLD_DATA is picked up by engine='textworld'."""
    from t2po_gym.envs.alfworld import ALFWorldEnv

    root = tmp_path / "alfworld"
    games = [generate_game("valid_seen", i) for i in range(3)]
    for i, g in enumerate(games):
        export_game(g, root / "json_2.1.1" / "valid_seen" / f"task_{i}" / "trial_0")
    # an unsolvable file and a corrupt file are skipped, as ALFWorld does
    bad = root / "json_2.1.1" / "valid_seen" / "task_bad" / "trial_0"
    bad.mkdir(parents=True)
    (bad / "game.tw-pddl").write_text("{not json")
    monkeypatch.setenv("ALFWORLD_DATA", str(root))
    env = ALFWorldEnv(engine="textworld", split="valid_seen", observation_mode="raw")
    assert env.num_games == 3
    obs, info = env.reset(options={"game": 1})
    assert info["task"] == games[1].task.description
    for cmd in games[1].walkthrough:
        obs, r, term, trunc, info = env.step(f"<think>t</think><action>{cmd}</action>")
    assert term and info["won"] and r == 1.0
    env.close()
