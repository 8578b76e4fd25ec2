"""ALFWorld env: Gymnasium API, generator, expert, bad input."""

from __future__ import annotations

import random

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import t2po_gym  # noqa: F401
from t2po_gym.envs.alfworld import ALFWorldEnv
from t2po_gym.envs.alfworld.assets import TASK_TYPES
from t2po_gym.envs.alfworld.expert import expert_action
from t2po_gym.envs.alfworld.generator import SPLIT_SIZES, generate_game
from t2po_gym.envs.alfworld.world import World
from t2po_gym.text_env import INFO_KEYS, EpisodeEndedError


def wrap(cmd: str) -> str:
    return f"<think>I will act.</think><action>{cmd}</action>"


def test_check_env_passes_on_unwrapped_env():
    env = ALFWorldEnv()
    # with its spec the checker also re-makes it in each render mode (without: a UserWarning)
    env.spec = gym.spec("T2PO/ALFWorld-v0")
    check_env(env)
    env.close()


def test_registered_id_and_info_keys():
    env = gym.make("T2PO/ALFWorld-v0")
    obs, info = env.reset(seed=3)
    assert set(INFO_KEYS) <= set(info)
    assert env.observation_space.contains(obs)
    assert "<think>" in obs and "<action>" in obs and info["task"] in obs
    # the released prompt lists every admissible command but "help" (env_manager.py:L197-198)
    assert info["admissible_actions"] and all(a in obs for a in info["admissible_actions"] if a != "help")
    env.close()


def test_make_vec_steps_a_batch():
    envs = gym.make_vec("T2PO/ALFWorld-v0", num_envs=8, vectorization_mode="sync")
    obs, infos = envs.reset(seed=list(range(8)))
    assert len(obs) == 8
    actions = [wrap(a[0]) for a in infos["admissible_actions"]]
    obs, rew, term, trunc, infos = envs.step(actions)
    assert len(obs) == 8 and rew.shape == (8,)
    assert all(infos["action_valid"])
    envs.close()


def play(env, seed, policy):
    obs, info = env.reset(seed=seed)
    trace = [obs]
    done = False
    while not done:
        obs, r, term, trunc, info = env.step(wrap(policy(env, info)))
        trace.append((obs, r, term, trunc, info["won"]))
        done = term or trunc
    return trace


def test_same_seed_same_episode():
    rng1, rng2 = random.Random(0), random.Random(0)
    e1, e2 = ALFWorldEnv(), ALFWorldEnv()
    t1 = play(e1, 11, lambda env, info: rng1.choice(info["admissible_actions"]))
    t2 = play(e2, 11, lambda env, info: rng2.choice(info["admissible_actions"]))
    assert t1 == t2
    # a different seed gives a different game
    e1.reset(seed=12)
    assert e1.game_index != e2.game_index or e1.task != e2.task


@pytest.mark.parametrize("split", sorted(SPLIT_SIZES))
def test_expert_solves_200_games_and_random_does_not(split):
    # 200 games, or the whole split where it is smaller (valid_seen 140, valid_unseen 134)
    n = min(200, SPLIT_SIZES[split])
    rng = random.Random(1)
    expert_wins = random_wins = 0
    for i in range(n):
        game = generate_game(split, i)
        w = World(game)
        w.reset()
        for _ in range(50):
            a = expert_action(w)
            if a is None:
                break
            assert a in w.admissible()
            w.step(a)
        expert_wins += w.won()
        w = World(game)
        w.reset()
        for _ in range(50):
            w.step(rng.choice(w.admissible_commands()))
            if w.won():
                break
        random_wins += w.won()
    assert expert_wins == n
    assert random_wins < 0.3 * n


def test_generator_covers_all_task_types_and_is_deterministic():
    seen = {generate_game("train", i).task.task_type for i in range(300)}
    assert seen == set(TASK_TYPES)
    assert generate_game("valid_seen", 5).to_json() == generate_game("valid_seen", 5).to_json()
    assert generate_game("train", 5).to_json() != generate_game("valid_seen", 5).to_json()
    unseen_scenes = {generate_game("valid_unseen", i).scene for i in range(50)}
    train_scenes = {generate_game("train", i).scene for i in range(200)}
    assert not unseen_scenes & train_scenes


def test_reset_options_pick_split_and_game():
    env = ALFWorldEnv(observation_mode="raw")
    obs, info = env.reset(options={"split": "valid_unseen", "game": 7})
    assert env.game_index == 7 and env.game.split == "valid_unseen"
    assert obs.startswith("-= Welcome to TextWorld, ALFRED! =-")
    with pytest.raises(IndexError):
        env.reset(options={"split": "valid_seen", "game": 140})
    with pytest.raises(ValueError):
        env.reset(options={"split": "test"})
    # "seed": game seed % n, so seeds 0..139 play each valid_seen game once
    seen = set()
    for s in (0, 1, 139, 140, 281):
        env.reset(seed=s, options={"split": "valid_seen", "game": "seed"})
        seen.add(env.game_index)
        assert env.game_index == s % 140
    assert seen == {0, 1, 139}
    with pytest.raises(ValueError, match="needs a reset seed"):
        env.reset(options={"split": "valid_seen", "game": "seed"})


def test_expert_episode_wins_with_reward_one():
    env = ALFWorldEnv()
    obs, info = env.reset(seed=4)
    total, done = 0.0, False
    while not done:
        obs, r, term, trunc, info = env.step(wrap(env.oracle_action()))
        total += r
        done = term or trunc
    assert term and not trunc and info["won"] and total == 1.0 and info["task_score"] == 1.0
    with pytest.raises(EpisodeEndedError):
        env.step(wrap("look"))


def test_truncation_at_max_turns():
    env = ALFWorldEnv(max_turns=3)
    env.reset(seed=0)
    for k in range(3):
        _, _, term, trunc, info = env.step(wrap("look"))
    assert trunc and not term and info["turn"] == 3


@pytest.mark.parametrize(
    "response",
    [
        "",
        "x" * 1_000_000,
        "<think>a</think><action>" + "go to " * 200_000 + "</action>",
        "<think>\udcff\ud800</think><action>go to \udcff</action>",
        "<think>a</think><action>go <action>to</action> fridge 1</action>",
        "<think>a</think><action>look",
        "<think>a</think><action></action>",
        "<think>a</think><action>fly to the moon</action>",
        "look",  # bare command: invalid in strict mode
        "<think>a<think>b</think></think><action>look</action>",
    ],
)
def test_bad_input_is_a_noop(response):
    env = ALFWorldEnv(protocol="strict")  # the released protocol executes what it extracts
    env.reset(seed=2)
    before = env._world.snapshot()
    adm = env._world.admissible_commands()
    obs, r, term, trunc, info = env.step(response)
    assert info["action_valid"] is False
    assert r == 0.0 and not term
    assert env._world.snapshot() == before
    assert info["admissible_actions"] == adm
    assert env.observation_space.contains(obs)
    assert "Nothing happens." in env._raw_obs
    assert info["turn"] == 1


def test_non_str_action_raises_type_error():
    env = ALFWorldEnv()
    env.reset(seed=0)
    with pytest.raises(TypeError):
        env.step(42)


def test_lenient_format_accepts_bare_commands():
    env = ALFWorldEnv(strict_format=False, observation_mode="raw", protocol="strict")
    env.reset(seed=0)
    obs, _, _, _, info = env.step("look")
    assert info["action_valid"] and info["format_valid"]
    assert obs.startswith("You are in the middle of a room")


def test_history_window_in_prompt():
    env = ALFWorldEnv(history_length=1, protocol="strict")  # this project's prompt wording
    obs, info = env.reset(seed=0)
    a1, a2 = info["admissible_actions"][0], "look"
    env.step(wrap(a1))
    obs, _, _, _, info = env.step(wrap(a2))
    assert f"Action 2: '{a2}'" in obs and f"Action 1: '{a1}'" not in obs
    assert "turn 3" in obs


def test_render_ansi_shows_room_text():
    env = ALFWorldEnv(render_mode="ansi")
    env.reset(seed=0)
    env.step(wrap("inventory"))
    assert env.render() == "You are not carrying anything."


def test_task_type_and_room_size_options():
    env = ALFWorldEnv(task_types=["pick_heat_then_place_in_recep"], max_receptacles=6, observation_mode="raw")
    for seed in range(10):
        env.reset(seed=seed)
        assert env.game.task.task_type == "pick_heat_then_place_in_recep"
        assert len(env.game.receptacles) <= 6
        assert any(r.rtype == "Microwave" for r in env.game.receptacles)
        w = World(env.game)
        w.reset()
        while (a := expert_action(w)) is not None:
            w.step(a)
        assert w.won()
    with pytest.raises(ValueError):
        ALFWorldEnv(task_types=["fly"])
    with pytest.raises(ValueError):
        ALFWorldEnv(max_receptacles=1)
    # defaults are unchanged by the options' existence
    assert ALFWorldEnv().reset(seed=1)[0] == ALFWorldEnv(task_types=None).reset(seed=1)[0]
