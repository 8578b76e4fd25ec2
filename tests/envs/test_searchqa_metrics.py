"""EM / F1 / normalisation of Search-QA against hand-computed values."""

import pytest

from t2po_gym.envs.searchqa.metrics import (
    answer_in_text,
    exact_match,
    f1_score,
    normalize_answer,
    token_f1,
)


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("  a Tale of Two Cities. ", "tale of two cities"),
        ("An apple, an orange", "apple orange"),
        ("theater anatomy", "theater anatomy"),  # articles only as whole words
        ("U.S.A.", "usa"),
        ("", ""),
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_uses_any_alias():
    golds = ["Marek J. Tolvane", "Marek Tolvane"]
    assert exact_match("marek tolvane", golds) == 1.0
    assert exact_match("The Marek J. Tolvane.", golds) == 1.0
    assert exact_match("Tolvane", golds) == 0.0
    assert exact_match("Paris", "paris") == 1.0


def test_f1_hand_computed():
    # pred tokens: new york city (3); gold: new york (2); common 2 -> P=2/3, R=1 -> F1=0.8
    assert token_f1("New York City", "New York") == pytest.approx(0.8)
    assert f1_score("nothing", ["New York"]) == 0.0
    assert f1_score("york", ["New York", "York"]) == 1.0


def test_f1_repeated_tokens_count_as_multiset():
    # pred: red red red (3), gold: red blue red (3): common = min(3,2) = 2 -> P=R=2/3
    assert token_f1("red red red", "red blue red") == pytest.approx(2 / 3)
    # pred: red (1), gold: red red (2): common 1 -> P=1, R=0.5 -> F1=2/3
    assert token_f1("red", "red red") == pytest.approx(2 / 3)


def test_yes_no_get_no_partial_credit():
    assert token_f1("yes it is", "yes") == 0.0
    assert token_f1("no", "no") == 1.0
    assert f1_score("", ["x"]) == 0.0


def test_answer_in_text_matches_whole_tokens():
    assert answer_in_text("no", "Was Nolan born in Paris?") is False
    assert answer_in_text("Paris", "Was Nolan born in Paris?") is True
    assert answer_in_text("new york", "the New-York times") is False  # hyphen joins tokens
