"""Search-R1 file quirks the loaders accept, and the messages for empty files."""

from __future__ import annotations

import json

import pytest

from t2po_gym.envs.searchqa.data import DataFormatError, load_data_dir, load_qa
from t2po_gym.envs.searchqa.env import SearchQAEnv


def test_reward_model_as_json_string(tmp_path):
    # some Search-R1 exports store reward_model as the JSON text of the object
    rm = json.dumps({"ground_truth": {"target": ["Rome", "Roma"]}, "style": "rule"})
    f = tmp_path / "nq_search" / "train.jsonl"
    f.parent.mkdir()
    f.write_text(json.dumps({"question": "Where?", "reward_model": rm}) + "\n")
    (item,) = load_qa(f)
    assert item.golden_answers == ("Rome", "Roma")


def test_reward_model_json_string_in_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rm = json.dumps({"ground_truth": {"target": ["Ann"]}})
    d = tmp_path / "hotpotqa"
    d.mkdir()
    pq.write_table(pa.table({"question": ["Who?"], "reward_model": [rm]}), d / "test.parquet")
    (item,) = load_qa(d / "test.parquet")
    assert item.golden_answers == ("Ann",) and item.data_source == "hotpotqa"


def test_bad_reward_model_string_names_the_line(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text(json.dumps({"question": "q?", "reward_model": "{not json"}) + "\n")
    with pytest.raises(DataFormatError, match=r"train\.jsonl:1: field 'reward_model' is a string but not JSON"):
        load_qa(f)


def test_data_source_from_record_else_folder(tmp_path):
    d = tmp_path / "triviaqa"
    d.mkdir()
    f = d / "test.jsonl"
    f.write_text(json.dumps({"question": "a?", "golden_answers": ["x"], "data_source": "nq"}) + "\n"
                 + json.dumps({"question": "b?", "golden_answers": ["y"]}) + "\n")
    a, b = load_qa(f)
    assert a.data_source == "nq" and b.data_source == "triviaqa"
    assert b.qid == "test-1"  # ids still count within the file


def test_empty_files_are_named(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    qa = tmp_path / "test.jsonl"
    corpus.write_text("")
    qa.write_text(json.dumps({"question": "q?", "golden_answers": ["a"]}) + "\n")
    with pytest.raises(ValueError, match=r"corpus\.jsonl: the corpus file holds no passages"):
        SearchQAEnv(corpus_path=corpus, qa_path=qa, split="test")
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl: the corpus file holds no passages"):
        load_data_dir(tmp_path)
    corpus.write_text(json.dumps({"id": "1", "contents": "T\ntext"}) + "\n")
    qa.write_text("\n")
    with pytest.raises(ValueError, match=r"test\.jsonl: the QA file holds no questions"):
        SearchQAEnv(corpus_path=corpus, qa_path=qa, split="test")
    with pytest.raises(DataFormatError, match=r"test\.jsonl: the QA file holds no questions"):
        load_data_dir(tmp_path)


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), 1.5, "3", True, None])
def test_bad_question_index_is_a_clear_error(bad):
    env = SearchQAEnv(world_passages=1500, world_questions=300, world_seed=3)
    with pytest.raises(ValueError, match=r"question_index must be an integer in \[0, 240\)"):
        env.reset(options={"question_index": bad})
