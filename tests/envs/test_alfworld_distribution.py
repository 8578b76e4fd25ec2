"""Generated ALFWorld games follow ALFWorld's own distribution.

Reference figures (issue 13 and ``../shared/data/README.md``, measured on 24 real games of
all six task types): 20.9 receptacles, 32 pickupable objects of 18 classes and about 10
scene objects per game; kitchen tasks (heat, cool) 27-29 receptacles and 42-47 pickupable
objects. Task mix: ALFWorld's split tables (train 790 pick, 308 look, 650 clean, 459 heat,
533 cool, 813 pick-two). Each figure must hold within 15% over 500 generated train games.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import pytest

from t2po_gym.envs.alfworld.assets import TASK_TYPES
from t2po_gym.envs.alfworld.generator import SPLIT_SIZES, TASK_MIX, generate_game, task_type_of

TOL = 0.15
REAL = {"receptacles": 20.9, "pickupable": 32.0, "classes": 18.0, "scene": 10.0}
REAL_KITCHEN = {"receptacles": 28.0, "pickupable": 44.5}  # midpoints of 27-29 and 42-47


def _stats(game) -> dict[str, int]:
    pick = [o for o in game.items if o.pickupable]
    return {
        "receptacles": len(game.receptacles),
        "pickupable": len(pick),
        "classes": len({o.otype for o in pick}),
        "scene": sum(not o.pickupable for o in game.items),
    }


@pytest.fixture(scope="module")
def train500():
    return [generate_game("train", i) for i in range(500)]


def _close(value: float, target: float) -> bool:
    return abs(value - target) <= TOL * target


@pytest.mark.slow
def test_sizes_match_real_games(train500):
    rows = [_stats(g) for g in train500]
    means = {k: statistics.mean(r[k] for r in rows) for k in REAL}
    assert all(_close(means[k], REAL[k]) for k in REAL), means
    kitchen = [
        _stats(g) for g in train500 if g.task.task_type in ("pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep")
    ]
    for k, target in REAL_KITCHEN.items():
        assert _close(statistics.mean(r[k] for r in kitchen), target), (k, statistics.mean(r[k] for r in kitchen))
    # every task type has scene objects and real-sized rooms, kitchens the largest
    by_type = defaultdict(list)
    for g in train500:
        by_type[g.task.task_type].append(_stats(g))
    assert set(by_type) == set(TASK_TYPES)
    recs = {t: statistics.mean(r["receptacles"] for r in v) for t, v in by_type.items()}
    assert min(recs, key=recs.get) in ("look_at_obj_in_light", "pick_two_obj_and_place", "pick_and_place_simple")
    assert max(recs, key=recs.get) in ("pick_heat_then_place_in_recep", "pick_cool_then_place_in_recep")
    assert all(statistics.mean(r["scene"] for r in v) > 5 for v in by_type.values())


@pytest.mark.slow
def test_task_mix_of_500_train_games(train500):
    got = Counter(g.task.task_type for g in train500)
    total = sum(TASK_MIX["train"].values())
    for t in TASK_TYPES:
        assert _close(got[t], 500 * TASK_MIX["train"][t] / total), (t, got[t])


@pytest.mark.parametrize("split", sorted(SPLIT_SIZES))
def test_task_mix_of_every_split(split):
    got = Counter(task_type_of(split, i) for i in range(SPLIT_SIZES[split]))
    for t in TASK_TYPES:
        want = TASK_MIX[split][t]
        assert abs(got[t] - want) <= max(2, TOL * want), (split, t, got[t], want)


def test_task_types_option_restricts_the_mix():
    assert {task_type_of("train", i, ("pick_heat_then_place_in_recep",)) for i in range(50)} == {
        "pick_heat_then_place_in_recep"
    }
    two = Counter(task_type_of("train", i, ("pick_and_place_simple", "look_at_obj_in_light")) for i in range(1000))
    assert abs(two["pick_and_place_simple"] / 1000 - 790 / (790 + 308)) < 0.01


def test_easy_options_stay_small():
    for i in range(20):
        g = generate_game("train", i, task_types=("pick_and_place_simple",), max_receptacles=3)
        assert g.task.task_type == "pick_and_place_simple"
        assert len(g.receptacles) <= 3
        assert all(o.pickupable or o.toggleable for o in g.items)  # no scene objects in easy rooms
