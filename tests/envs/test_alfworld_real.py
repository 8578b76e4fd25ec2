"""Real ALFWorld game files in the native engine: reader, expert, loader defaults, bad input.

The six real games (one per task type, ALFWorld's train split, data versions 2.1.1 and
2.1.2) live in ``../shared/data/alfworld-real`` relative to the repository root (see its
README.md); the tests skip, saying so, where that folder is absent. The differential test
against TextWorld's engine is in ``test_alfworld_real_differential.py``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import pytest

import t2po_gym  # noqa: F401
from t2po_gym.envs.alfworld import ALFWorldEnv
from t2po_gym.envs.alfworld.assets import TASK_TYPES
from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.real_game import (
    GameFileError,
    UnsupportedGameError,
    find_alfworld_games,
    load_game_file,
)
from t2po_gym.envs.alfworld.world import World

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "alfworld-real"
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=f"real ALFWorld test games not found at {DATA} (../shared/data/alfworld-real)"
)


def real_games(version: str) -> list[Path]:
    return sorted((DATA / f"json_{version}").rglob("game.tw-pddl")) if DATA.is_dir() else []


ALL = [(v, p) for v in ("2.1.1", "2.1.2") for p in real_games(v)]


def wrap(cmd: str) -> str:
    return f"<think>t</think><action>{cmd}</action>"


@needs_data
def test_six_task_types_in_both_versions():
    for version in ("2.1.1", "2.1.2"):
        games = real_games(version)
        assert len(games) == 6
        specs = [load_game_file(g) for g in games]
        assert {s.task.task_type for s in specs} == set(TASK_TYPES)
        assert {s.grammar for s in specs} == {version}
        assert all(s.has_help == (version == "2.1.2") for s in specs)


@needs_data
@pytest.mark.parametrize("version,path", ALL, ids=[f"{v}-{p.parts[-3][:24]}" for v, p in ALL])
def test_expert_wins_every_real_game(version, path):
    spec = load_game_file(path)
    w = World(spec)
    intro = w.reset()
    assert intro.startswith("-= Welcome to TextWorld, ALFRED! =-")
    assert spec.task_text in intro
    assert not w.won()
    for _ in range(50):
        a = expert_action(w)
        if a is None:
            break
        assert a in w.admissible(), a
        w.step(a)
    assert w.won()


@needs_data
def test_real_games_are_real_sized():
    # the README's figures: 20.9 receptacles (7-36) and 32 pickupable objects on average
    specs = [load_game_file(p) for p in real_games("2.1.1")]
    recs = [len(s.receptacles) for s in specs]
    pick = [sum(o.pickupable for o in s.objects) for s in specs]
    assert max(recs) == 36 and min(recs) == 9
    assert sum(pick) / len(pick) > 20
    # scene objects (windows, lamps ...) are objects too, some of them in receptacles
    assert all(any(not o.pickupable for o in s.objects) for s in specs)


@needs_data
def test_grammar_versions_differ_only_in_arrival_put_and_help():
    a = World(load_game_file(real_games("2.1.1")[4]))  # heat: 36 receptacles, shared locations
    b = World(load_game_file(real_games("2.1.2")[4]))
    assert a.reset() == b.reset()
    assert set(b.admissible_commands()) - set(a.admissible_commands()) == {"help"}
    for w in (a, b):
        w.step("go to countertop 1")
        w.step("take pan 1 from countertop 1")
    assert "put pan 1 in/on countertop 1" in a.admissible() and "move pan 1 to countertop 1" in b.admissible()
    ta, _ = a.step("go to stoveburner 1")
    tb, _ = b.step("go to stoveburner 1")
    assert ta.startswith("You arrive at loc ") and tb.startswith("You arrive at stoveburner 1. ")
    assert ta.split(". ", 1)[1] == tb.split(". ", 1)[1]
    # PDDL quirk kept: the pan was in four receptacles; taking it removes only one
    assert "a pan 1" in tb
    assert a.step("put pan 1 in/on stoveburner 1")[0] == "You put the pan 1 in/on the stoveburner 1."
    assert b.step("move pan 1 to stoveburner 1")[0] == "You move the pan 1 to the stoveburner 1."


@needs_data
def test_shared_location_receptacles():
    w = World(load_game_file(real_games("2.1.2")[4]))
    w.reset()
    w.step("go to cabinet 1")
    # cabinet 1 and cabinet 2 share a location: no "go to" between them, both open from here
    adm = w.admissible()
    assert "go to cabinet 2" not in adm and "go to cabinet 1" not in adm
    assert "open cabinet 1" in adm and "open cabinet 2" in adm
    assert w.step("look")[0] == "You are facing the cabinet 2, and cabinet 1. Next to it, you see nothing."


@needs_data
def test_env_plays_real_games_natively_with_the_expert():
    files = [str(p) for p in real_games("2.1.2")]
    env = gym.make("T2PO/ALFWorld-v0", game_files=files, observation_mode="raw")
    assert env.unwrapped.num_games == 6
    for i in range(6):
        obs, info = env.reset(options={"game": i})
        assert info["engine"] == "native"
        done = False
        while not done:
            obs, r, term, trunc, info = env.step(wrap(env.unwrapped.oracle_action()))
            done = term or trunc
        assert term and info["won"] and r == 1.0
    env.close()


@needs_data
def test_alfworld_data_defaults_to_native(monkeypatch):
    monkeypatch.setenv("ALFWORLD_DATA", str(DATA))
    assert len(find_alfworld_games(DATA / "json_2.1.1" / "train")) == 6
    env = gym.make("T2PO/ALFWorld-v0", observation_mode="raw")
    assert env.unwrapped.num_games == 6 and env.unwrapped.engine == "native"
    obs, info = env.reset(seed=0)
    assert info["engine"] == "native" and env.unwrapped.world_spec.grammar == "2.1.1"
    assert any(a.startswith("go to ") for a in info["admissible_actions"])
    # splits without real games, or games="generated", fall back to generated games
    gen = gym.make("T2PO/ALFWorld-v0", games="generated")
    assert gen.unwrapped.num_games == 3553
    with pytest.raises(FileNotFoundError, match="valid_seen"):
        gym.make("T2PO/ALFWorld-v0", split="valid_seen", games="alfworld")


@needs_data
def test_loader_filters_like_alfworld(tmp_path):
    src = real_games("2.1.1")[1].parent
    root = tmp_path / "json_2.1.1" / "train"
    for name in ("a_ok", "b_unsolvable", "c_movable_x", "d_no_traj"):
        shutil.copytree(src, root / name / "trial_0")
    game = json.loads((root / "b_unsolvable" / "trial_0" / "game.tw-pddl").read_text())
    game["solvable"] = False
    (root / "b_unsolvable" / "trial_0" / "game.tw-pddl").write_text(json.dumps(game))
    (root / "d_no_traj" / "trial_0" / "traj_data.json").unlink()
    found = find_alfworld_games(root)
    assert [p.parts[-3] for p in found] == ["a_ok"]
    assert find_alfworld_games(root, task_types=("look_at_obj_in_light",)) == []


# ----------------------------------------------------------------------------- bad input
def _copy_game(tmp_path: Path, k: int = 1, version: str = "2.1.2") -> Path:
    dst = tmp_path / "game"
    shutil.copytree(real_games(version)[k].parent, dst)
    return dst / "game.tw-pddl"


def _edit(path: Path, key: str, old: str, new: str) -> None:
    data = json.loads(path.read_text())
    assert old in data[key]
    data[key] = data[key].replace(old, new, 1)
    path.write_text(json.dumps(data))


@needs_data
def test_truncated_game_file_names_the_file(tmp_path):
    p = _copy_game(tmp_path)
    p.write_text(p.read_text()[:5000])
    with pytest.raises(GameFileError, match="game.tw-pddl.*not valid JSON"):
        load_game_file(p)


@needs_data
def test_missing_traj_data_names_the_folder(tmp_path):
    p = _copy_game(tmp_path)
    (p.parent / "traj_data.json").unlink()
    with pytest.raises(GameFileError, match=r"game\.tw-pddl: no traj_data\.json"):
        load_game_file(p)


@needs_data
@pytest.mark.parametrize(
    "key,old,new,match",
    [
        ("grammar", '"rhs": "You close the {r.name}."', '"rhs": "You shut the {r.name}."', "grammar rule 'CloseObject.feedback'"),
        ("grammar", 'template :: "inventory";', 'template :: "inv";', "grammar action 'inventory'"),
        ("grammar", "action look {", "action peek {", "grammar action"),
        ("pddl_domain", "(isHot ?o)\n", "(isHot ?o)\n                (isClean ?o)\n", "domain action 'heatobject'"),
        ("pddl_problem", "(:init", "(:init\n(isOn DeskLamp_bar_x)", "init predicate 'ison'|not declared"),
        ("pddl_problem", "(:init", "(:init\n(fancy agent1)", "init predicate 'fancy'"),
        ("pddl_problem", "(inReceptacle ?o ?r)\n", "(inReceptacle ?o ?r) (checked ?r)\n", r"goal predicates \['checked'\]"),
        ("pddl_problem", "(:goal", "(:constraints (x))\n(:goal", "unsupported section ':constraints'"),
    ],
)
def test_unknown_constructs_name_the_file_and_the_construct(tmp_path, key, old, new, match):
    p = _copy_game(tmp_path)
    _edit(p, key, old, new)
    with pytest.raises(GameFileError, match=match) as e:
        load_game_file(p)
    assert str(p) in str(e.value)


@needs_data
@pytest.mark.slow  # TextWorld loads the game (several seconds)
def test_engine_native_raises_and_auto_falls_back(tmp_path):
    p = _copy_game(tmp_path, k=2)  # clean game: the smallest room, quick for TextWorld
    _edit(p, "grammar", '"rhs": "You close the {r.name}."', '"rhs": "You shut the {r.name}."')
    env = ALFWorldEnv(game_files=[str(p)], observation_mode="raw")
    with pytest.raises(UnsupportedGameError, match="CloseObject.feedback"):
        env.reset(options={"game": 0})
    pytest.importorskip("textworld")
    auto = ALFWorldEnv(game_files=[str(p)], engine="auto", observation_mode="raw")
    with pytest.warns(RuntimeWarning, match="TextWorld"):
        obs, info = auto.reset(options={"game": 0})
    assert info["engine"] == "textworld" and obs.startswith("-= Welcome to TextWorld")
    with pytest.raises(NotImplementedError, match="cannot read this game"):
        auto.unwrapped.oracle_action()
    auto.close()


def test_game_files_are_checked_at_make(tmp_path):
    with pytest.raises(FileNotFoundError, match="game_files.*does not exist"):
        gym.make("T2PO/ALFWorld-v0", game_files=[str(tmp_path / "nope.tw-pddl")])
    with pytest.raises(IsADirectoryError, match="game_files.*is a directory"):
        gym.make("T2PO/ALFWorld-v0", game_files=[str(tmp_path)])
    empty = tmp_path / "game.tw-pddl"
    empty.write_text("")
    with pytest.raises(GameFileError, match="game_files.*game.tw-pddl.*is empty"):
        gym.make("T2PO/ALFWorld-v0", game_files=[str(empty)])
    with pytest.raises(ValueError, match="game_files is empty"):
        gym.make("T2PO/ALFWorld-v0", game_files=[])
    with pytest.raises(ValueError, match="engine must be"):
        gym.make("T2PO/ALFWorld-v0", engine="fast")
    with pytest.raises(ValueError, match="games must be"):
        gym.make("T2PO/ALFWorld-v0", games="real")


@pytest.mark.parametrize("bad", [2.7, 2.0, math.inf, -math.inf, math.nan, "2", True, None, [1]])
def test_bad_game_option_is_a_clear_error(bad):
    env = ALFWorldEnv(games="generated")
    with pytest.raises(ValueError, match=r'options\["game"\]'):
        env.reset(options={"game": bad})


def test_unknown_reset_option_is_a_clear_error():
    env = ALFWorldEnv(games="generated")
    with pytest.raises(ValueError, match="unknown reset option.*goal_index"):
        env.reset(options={"goal_index": math.inf})
    with pytest.raises(IndexError, match="out of range"):
        env.reset(options={"game": 10**30})
