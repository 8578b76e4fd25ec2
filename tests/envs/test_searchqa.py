"""T2PO/SearchQA-v0: Gymnasium conformance, protocol, oracle, bad input."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import t2po_gym  # noqa: F401  (registers the ids)
from t2po_gym.envs.searchqa.env import SearchQAEnv
from t2po_gym.search.base import clear_shared_retrievers

# these tests pin this project's strict protocol; the released one is in test_searchqa_released.py
WORLD = dict(world_passages=1500, world_questions=300, world_seed=3, protocol="strict")
THINK = "<think>I need to look this up.</think>"


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("T2PO_CACHE", str(tmp_path_factory.mktemp("t2po_cache")))
    clear_shared_retrievers()
    yield
    clear_shared_retrievers()
    mp.undo()


@pytest.fixture
def env():
    e = SearchQAEnv(**WORLD)
    yield e
    e.close()


def test_check_env_passes():
    e = gym.make("T2PO/SearchQA-v0", **WORLD)
    check_env(e.unwrapped, skip_render_check=True)


def test_same_seed_same_question(env):
    q1 = env.reset(seed=11)[1]["task"]
    env.reset(seed=99)
    q2 = env.reset(seed=11)[1]["task"]
    assert q1 == q2
    other = SearchQAEnv(**WORLD)
    assert other.reset(seed=11)[1]["task"] == q1


def test_make_vec_shares_one_retriever():
    vec = gym.make_vec("T2PO/SearchQA-v0", num_envs=3, vectorization_mode="sync", **WORLD)
    obs, infos = vec.reset(seed=[5, 5, 5])
    assert len(set(infos["task"])) == 1
    envs = [e.unwrapped for e in vec.envs]
    retrievers = {id(e.retriever) for e in envs}
    assert len(retrievers) == 1
    assert len({id(e.data) for e in envs}) == 1
    vec.close()


def test_search_returns_information_with_titles(env):
    env.reset(seed=0, options={"question_index": 0})
    obs, r, term, trunc, info = env.step(THINK + "<search>" + env.question.hop_queries[0] + "</search>")
    raw = env._raw_obs
    assert raw.startswith("<information>Doc 1(Title: ") and raw.endswith("</information>")
    assert raw.count("Doc ") == 3 and "Doc 3(Title: " in raw
    assert r == 0.0 and not term and not trunc and info["action_valid"]
    assert "<information>" in obs  # the prompt shows it


def test_topk_argument(env):
    e = SearchQAEnv(topk=1, **WORLD)
    e.reset(seed=1)
    e.step(THINK + "<search>city</search>")
    assert e._raw_obs.count("Doc ") == 1


def test_oracle_reaches_em_095_and_finds_supports():
    env = SearchQAEnv(split="test", **WORLD)
    n = len(env._questions)
    ems, found, hops = [], 0, 0
    for i in range(n):
        env.reset(options={"question_index": i})
        supports = env.question.supports
        docs = env.data.doc_by_id
        while True:
            act = env.oracle_action()
            obs, r, term, trunc, info = env.step(THINK + act)
            assert info["action_valid"] and info["format_valid"]
            if act.startswith("<search>"):
                want = docs[supports[env._n_searches - 1]]
                hops += 1
                found += want.text in env._raw_obs
            if term or trunc:
                break
        ems.append(info["em"])
        assert info["task_score"] == info["f1"]
        assert info["won"] == (info["em"] == 1.0) == (r == 1.0)
    assert sum(ems) / n >= 0.95
    assert found / hops >= 0.9  # the oracle's searches really reach the supporting passages


def test_answer_scoring_em_and_f1(env):
    env.reset(seed=0)
    gold = env.question.golden_answers
    obs, r, term, trunc, info = env.step(THINK + f"<answer>the {gold[-1]}!</answer>")
    assert term and not trunc and r == 1.0 and info["em"] == 1.0 and info["f1"] == 1.0
    with pytest.raises(RuntimeError, match="reset"):
        env.step(THINK + "<answer>x</answer>")
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step(THINK + "<answer>completely wrong words</answer>")
    assert term and r == 0.0 and info["em"] == 0.0 and not info["won"]


def test_truncated_after_four_turns(env):
    env.reset(seed=2)
    for t in range(4):
        obs, r, term, trunc, info = env.step(THINK + f"<search>query {t}</search>")
    assert trunc and not term and info["turn"] == 4 and r == 0.0


@pytest.mark.parametrize(
    "response, why",
    [
        (THINK + "<search></search>", "empty search"),
        (THINK + "<search>   </search>", "empty search"),
        (THINK + "<answer></answer>", "empty answer"),
        (THINK + "just words", "no <search>"),
        ("plain text without tags", "no <search>"),
        (THINK + "<search>a</search><answer>b</answer>", "both <search> and <answer>"),
        ("<search>q</search>" + THINK, "text after </search>"),
        ("<search>q</search>", "expected exactly one <think>"),
        (THINK + "</search>q<search>", "not closed"),
        (THINK + "q</search>", "without a matching"),
        (THINK + "<search>q", "not closed"),
        (THINK + "<search>" + "x" * 1_000_000 + "</search>", "longer than 2048"),
    ],
)
def test_invalid_turns_are_noops(env, response, why):
    env.reset(seed=4)
    obs, r, term, trunc, info = env.step(response)
    assert not info["action_valid"] and r == 0.0 and not term and not trunc
    assert why in env._raw_obs and "Nothing happens" in env._raw_obs
    assert info["turn"] == 1 and env._n_searches == 0


def test_non_strict_format_needs_no_think(env):
    e = SearchQAEnv(strict_format=False, **WORLD)
    e.reset(seed=4)
    _, _, _, _, info = e.step("<search>city</search>")
    assert info["action_valid"] and e._raw_obs.startswith("<information>")
    _, _, _, _, info = e.step("city")  # still needs a tag
    assert not info["action_valid"]


def test_raw_mode_and_render(env):
    e = SearchQAEnv(observation_mode="raw", render_mode="ansi", **WORLD)
    obs, info = e.reset(seed=8)
    assert obs == f"Question: {info['task']}" == info["anchor"] == e.render()
    assert info["admissible_actions"] == ["<search> query </search>", "<answer> answer </answer>"]


def test_loaded_data_files(tmp_path):
    (tmp_path / "corpus.jsonl").write_text(
        '{"id": "0", "contents": "Zorvath\\nZorvath is the capital of Quelmar."}\n'
        '{"id": "1", "contents": "Blent\\nBlent is a river."}\n')
    (tmp_path / "test.jsonl").write_text(
        '{"question": "What is the capital of Quelmar?", "golden_answers": ["Zorvath"]}\n')
    e = SearchQAEnv(split="test", data_dir=tmp_path)
    e.reset(seed=0)
    act = e.oracle_action()
    assert act == "<search>What is the capital of Quelmar?</search>"
    e.step(THINK + act)
    assert "Doc 1(Title: Zorvath) Zorvath is the capital" in e._raw_obs
    _, r, term, _, _ = e.step(THINK + e.oracle_action())
    assert term and r == 1.0


def test_env_var_and_bad_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHQA_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="not a directory"):
        SearchQAEnv()
    monkeypatch.delenv("SEARCHQA_DATA")
    with pytest.raises(ValueError, match="unknown retriever"):
        SearchQAEnv(retriever="magic", **WORLD)
    with pytest.raises(ValueError, match="unknown split"):
        SearchQAEnv(split="dev", **WORLD)
    bad = tmp_path / "qa.csv"
    bad.write_text("x")
    with pytest.raises(ValueError, match="unknown QA format"):
        SearchQAEnv(corpus_path=tmp_path / "c.jsonl", qa_path=bad)


def test_cli_play_agents(capsys):
    from t2po_gym.cli import play_scripted

    kw = dict(WORLD, split="test")
    oracle = play_scripted("T2PO/SearchQA-v0", "oracle", 20, env_kwargs=kw)
    assert oracle["success_rate"] >= 0.95 and oracle["mean_turns"] >= 2
    rand = play_scripted("T2PO/SearchQA-v0", "random", 20, env_kwargs=kw)
    assert rand["success_rate"] <= 0.2 and rand["mean_turns"] >= 1
