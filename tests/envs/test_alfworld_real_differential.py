"""Differential test on real ALFWorld games: the native engine against TextWorld's PDDL engine.

Each of the six real games (``../shared/data/alfworld-real``, one per task type) is played
in both data versions (2.1.1 as released, 2.1.2 after ALFWorld's grammar patch) by both
engines with the same commands: a random walk over the admissible commands (with ``help``
and an inadmissible command mixed in), then the expert's plan to the end. The intro, every
observation (exactly, no normalisation), the sorted admissible commands, the reward and
``won`` must be identical at every step. TextWorld takes seconds to load a real game, so
the walks are short; the kitchen games (30-36 receptacles) are marked slow.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.real_game import load_game_file
from t2po_gym.envs.alfworld.world import World

pytest.importorskip("textworld")
pytest.importorskip("alfworld")

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "alfworld-real"
GAMES = sorted(DATA.rglob("game.tw-pddl")) if DATA.is_dir() else []
KITCHEN = ("pick_heat", "pick_cool")
N_RANDOM = 12


def _param(p: Path):
    marks = [pytest.mark.slow] if p.parts[-3].startswith(KITCHEN) else []
    return pytest.param(p, marks=marks, id=f"{p.parts[-5][5:]}-{p.parts[-3].split('-')[0]}")


@pytest.mark.skipif(not GAMES, reason=f"real ALFWorld test games not found at {DATA} (../shared/data/alfworld-real)")
@pytest.mark.parametrize("path", [_param(p) for p in GAMES])
def test_native_matches_textworld_on_real_games(path):
    from t2po_gym.envs.alfworld.textworld_engine import TextWorldEngine

    tw = TextWorldEngine(path)
    native = World(load_game_file(path))
    assert native.reset() == tw.reset()
    rng = random.Random(path.parts[-3])
    played = []
    for step in range(N_RANDOM + 40):
        assert native.admissible_commands() == tw.admissible_commands(), f"after {played[-3:]}"
        if step < N_RANDOM:
            cmd = rng.choice(native.admissible_commands() + ["help", "fly to the moon"])
        else:
            cmd = expert_action(native)
            if cmd is None:
                break
        played.append(cmd)
        a, b = native.step(cmd), tw.step(cmd)
        assert a == b, f"after {played[-3:]}"
    assert native.won() and tw.won()
    tw.close()
