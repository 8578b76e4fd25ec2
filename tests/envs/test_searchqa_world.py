"""The generated Search-QA world: sizes, determinism, question kinds, no answer leaks, loaders."""

import collections
import json

import pytest

from t2po_gym.envs.searchqa.data import DataFormatError, load_corpus_jsonl, load_data_dir, load_qa
from t2po_gym.envs.searchqa.metrics import answer_in_text, normalize_answer
from t2po_gym.envs.searchqa.world import WorldConfig, generate_world


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(n_passages=3000, n_questions=600, seed=7))


def test_sizes_and_splits(world):
    assert 2800 <= len(world.documents) <= 3400
    tr, te = world.questions("train"), world.questions("test")
    assert len(tr) + len(te) == 600
    assert len(te) == 120
    assert not {q.question for q in tr} & {q.question for q in te}
    assert len({d.doc_id for d in world.documents}) == len(world.documents)


def test_deterministic_in_seed(world):
    again = generate_world(WorldConfig(n_passages=3000, n_questions=600, seed=7))
    assert again.fingerprint == world.fingerprint
    assert again.questions("test") == world.questions("test")
    other = generate_world(WorldConfig(n_passages=3000, n_questions=600, seed=8))
    assert other.fingerprint != world.fingerprint


def test_all_four_kinds_with_balanced_yes_no(world):
    qs = world.questions("train") + world.questions("test")
    kinds = collections.Counter(q.kind for q in qs)
    assert set(kinds) == {"single", "bridge", "comparison", "yesno"}
    assert all(n >= 0.1 * len(qs) for n in kinds.values())
    yn = collections.Counter(q.golden_answers[0] for q in qs if q.kind == "yesno")
    assert set(yn) == {"yes", "no"} and min(yn.values()) > 0.3 * sum(yn.values())


def test_answer_never_in_question(world):
    for q in world.questions("train") + world.questions("test"):
        for a in q.golden_answers:
            assert not answer_in_text(a, q.question), (q.question, a)
            assert normalize_answer(a) not in normalize_answer(q.question).split() or " " in a


def test_supporting_passages_hold_the_answer(world):
    docs = world.doc_by_id
    for q in world.questions("test"):
        assert len(q.supports) == len(q.hop_queries) >= 1
        assert len(q.supports) <= 3  # an oracle needs at most 3 searches + 1 answer
        if q.kind == "yesno":
            continue
        text = " ".join(docs[s].title + " " + docs[s].text for s in q.supports)
        assert any(answer_in_text(a, text) for a in q.golden_answers), q


def test_distractors_share_names(world):
    titles = collections.Counter(d.title for d in world.documents)
    names = [d for d in world.documents if "may refer to" in d.text]
    assert names, "no disambiguation passages"
    # each shared name has at least two entity titles that start with it
    n = names[0].title
    assert sum(1 for t in titles if t.startswith(n + " (")) >= 2


# ------------------------------------------------------------------- loaders
def test_corpus_jsonl_roundtrip(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text('{"id": "0", "contents": "\\"Alpha\\"\\nAlpha is a letter."}\n\n'
                 '{"id": 1, "title": "Beta", "text": "Beta too."}\n')
    docs = load_corpus_jsonl(p)
    assert [(d.doc_id, d.title, d.text) for d in docs] == [
        ("0", '"Alpha"', "Alpha is a letter."), ("1", "Beta", "Beta too.")]


def test_corrupt_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "corpus.jsonl"
    p.write_text('{"id": "0", "contents": "A\\nB"}\n{"id": "1", "contents": \n')
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl:2: not valid JSON"):
        load_corpus_jsonl(p)
    q = tmp_path / "train.jsonl"
    q.write_text('{"question": "q?", "golden_answers": ["a"]}\n{"question": "r?"}\n')
    with pytest.raises(DataFormatError, match=r"train\.jsonl:2: no answers: expected a 'golden_answers' field"):
        load_qa(q)


def test_unknown_format_is_a_clear_error(tmp_path):
    p = tmp_path / "train.csv"
    p.write_text("question,answer\n")
    with pytest.raises(DataFormatError, match="unknown QA format '.csv'; use .jsonl or .parquet"):
        load_qa(p)
    with pytest.raises(DataFormatError, match="unknown corpus format"):
        load_corpus_jsonl(p)


def test_qa_jsonl_answers_string_and_reward_model(tmp_path):
    q = tmp_path / "test.jsonl"
    rows = [{"question": "Who?", "golden_answers": "Ann", "data_source": "nq"},
            {"id": "x9", "question": "Where?", "reward_model": {"ground_truth": {"target": ["Rome", "Roma"]}}}]
    q.write_text("\n".join(json.dumps(r) for r in rows))
    items = load_qa(q)
    assert items[0].golden_answers == ("Ann",) and items[0].data_source == "nq"
    assert items[1].golden_answers == ("Rome", "Roma") and items[1].qid == "x9"


def test_qa_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    t = pa.table({"question": ["Who?"], "golden_answers": [["Ann", "Anna"]], "data_source": ["hotpotqa"]})
    pq.write_table(t, tmp_path / "train.parquet")
    items = load_qa(tmp_path / "train.parquet")
    assert items[0].golden_answers == ("Ann", "Anna") and items[0].data_source == "hotpotqa"


def test_data_dir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"id": "0", "contents": "A\\nB"}\n')
    (tmp_path / "test.jsonl").write_text('{"question": "q?", "golden_answers": ["B"]}\n')
    data = load_data_dir(tmp_path)
    assert list(data.splits) == ["test"] and len(data.documents) == 1
    with pytest.raises(DataFormatError, match="not a directory"):
        load_data_dir(tmp_path / "missing")
