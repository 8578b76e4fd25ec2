"""``t2po play`` and the CLI vocabulary every command shares (``t2po_gym/cli.py``)."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys

import pytest

from t2po_gym.cli import build_parser, env_kwargs_from_args, main, parse_value

EASY = ["--env-arg", "max_receptacles=3", "--env-kwargs", '{"task_types": ["pick_and_place_simple"]}']


def test_values_are_json_when_they_parse_else_text():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value('["a", "b"]') == ["a", "b"] and parse_value("null") is None
    assert parse_value("pick_and_place_simple") == "pick_and_place_simple"
    assert parse_value("a=b") == "a=b"


@pytest.mark.parametrize("command", ["play", "train", "sft", "eval"])
def test_every_command_takes_env_arg_and_env_kwargs(command):
    parser = build_parser()
    extra = ["--checkpoint", "x"] if command == "eval" else ["--out", "x"] if command == "sft" else []
    args = parser.parse_args([command, *extra, "--env-kwargs", '{"history_length": 1, "max_turns": 9}',
                              "--env-arg", "task_types=pick_and_place_simple", "--env-arg", "max_turns=5",
                              "--env-arg", 'split_sizes=["a", "b"]'])
    assert env_kwargs_from_args(args) == {"history_length": 1, "max_turns": 5,
                                          "task_types": "pick_and_place_simple", "split_sizes": ["a", "b"]}
    assert env_kwargs_from_args(parser.parse_args([command, *extra])) is None


@pytest.mark.parametrize("bad", [["--env-arg", "no_equals_sign"], ["--env-kwargs", "[1, 2]"], ["--env-kwargs", "{bad"]])
def test_malformed_env_options_are_usage_errors(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["play", *bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("KEY=VALUE" in err or "JSON" in err)


def _actions(parser: argparse.ArgumentParser):
    for a in parser._actions:
        if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction)):
            yield a


@pytest.mark.parametrize("command", ["play", "train", "sft", "eval", "serve-retriever"])
def test_every_flag_has_help_and_shows_its_default(command):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    missing = [a.option_strings for a in _actions(sub) if not (a.help or "").strip()]
    assert not missing, f"t2po {command}: flags without help: {missing}"
    text = sub.format_help()
    assert "(default: " in text
    for a in _actions(sub):
        if a.default not in (None, argparse.SUPPRESS) and a.option_strings and not a.required:
            # the default appears in the flag's own help entry
            assert f"(default: {a.default}" in " ".join(text.split()), (command, a.option_strings)


def test_play_with_both_env_option_forms_plays(capsys):
    assert main(["play", "--agent", "expert,random", "--episodes", "2", *EASY]) == 0
    out = capsys.readouterr().out
    lines = [l.split() for l in out.splitlines() if l.startswith(("expert", "random"))]
    assert [l[0] for l in lines] == ["expert", "random"] and lines[0][2] == "100.0%"


def test_one_task_type_as_a_string_is_not_split_into_letters(capsys):
    # the env then only plays that type: the expert's task text names a pick-and-place goal
    assert main(["play", "--episodes", "2", "--env-arg", "task_types=pick_and_place_simple"]) == 0
    assert "100.0%" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["play", "--env", "T2PO/ALFWrld-v0"], "did you mean T2PO/ALFWorld-v0"),
    (["play", "--env", "Nope-v0"], "registered T2PO ids"),
    (["play", "--agent", "expret"], "unknown agent 'expret'"),
])
def test_user_mistakes_print_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("t2po play: error: ")


@pytest.mark.parametrize("argv, needle", [
    (["play", "--env", "T2PO/ALFWorld-v9"], "unknown env id 'T2PO/ALFWorld-v9'"),
    (["eval", "--checkpoint", "runs/nope-does-not-exist"], "no such file or directory"),
])
def test_the_command_line_prints_no_traceback_for_a_typo(argv, needle):
    out = subprocess.run([sys.executable, "-m", "t2po_gym.cli", *argv], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and needle in out.stderr


def test_human_play_says_bare_commands_work_and_stops_at_end_of_input(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("look\ninventory\n"))
    assert main(["play", "--agent", "human", "--episodes", "5", *EASY]) == 0
    out = capsys.readouterr().out
    assert "Bare commands work" in out
    assert "> look" in out and "> inventory" in out
    assert "end of input: stopped after 0 finished episode(s)" in out
    # the summary counts the episodes actually played, not the 5 asked for
    row = next(l for l in out.splitlines() if l.startswith("human"))
    assert row.split()[1] == "0"


def test_play_llm_flags_reach_the_sampler():
    """--temperature 0 stays 0 (greedy), stop strings and TTI/TDS settings are passed on."""
    agent = pytest.importorskip("t2po_gym.agent")
    if not hasattr(agent, "sampling_options"):
        pytest.skip("t2po_gym.agent has no sampling_options yet")
    args = build_parser().parse_args(["play", "--policy", "hf:tiny", "--temperature", "0", "--max-new-tokens", "7",
                                      "--stop", "</action>", "--stop", "STOP", "--tti", "--tti-arg", "epsilon=0.05",
                                      "--tds-arg", "eta=0.01", "--chat-template-arg", "enable_thinking=true"])
    s = agent.sampling_options(args)
    assert s["temperature"] == 0.0 and s["max_new_tokens"] == 7 and tuple(s["stop"]) == ("</action>", "STOP")
    p = agent.policy_options(args)
    assert p["tti_kwargs"] == {"epsilon": 0.05} and p["tds_kwargs"] == {"eta": 0.01}
    assert p["chat_template_kwargs"] == {"enable_thinking": True}


def test_play_with_a_greedy_llm_policy_runs(capsys):
    pytest.importorskip("transformers")
    rc = main(["play", "--policy", "hf:tiny", "--temperature", "0", "--max-new-tokens", "4", "--episodes", "1",
               "--env-arg", "max_turns=2", *EASY])
    assert rc == 0
    out = capsys.readouterr().out
    assert "episode 0:" in out and "turns=2" in out
    json.dumps(out)  # printable
