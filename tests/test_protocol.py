"""Response parsing (protocol.py) and registration."""

from __future__ import annotations

import subprocess
import sys

import pytest

from t2po_gym.protocol import parse_response, sanitize_text


@pytest.mark.parametrize(
    "text,strict,action,valid",
    [
        ("<think>plan</think><action>go to fridge 1</action>", True, "go to fridge 1", True),
        ("  <think>plan</think>\n<action> look </action>\n", True, "look", True),
        ("<think>a</think><action>x</action><action>y</action>", True, "y", False),
        ("<action>look</action>", True, "look", False),  # no think block
        ("look", True, None, False),
        ("look", False, "look", True),
        ("<think>a</think><action>look", True, None, False),  # unclosed
        ("<think>a</think><action>a<action>b</action></action>", True, None, False),  # nested
        ("<think>a</think><action>look</action> trailing", True, "look", False),
        ("</think><think><action>look</action>", True, "look", False),
        ("<think>a</think><think>b</think><action>look</action>", True, "look", False),
        ("noise <action>look</action>", False, "look", True),
    ],
)
def test_parse_response(text, strict, action, valid):
    p = parse_response(text, strict=strict)
    assert p.action == action
    assert p.format_valid is valid
    if not valid:
        assert p.error


def test_parse_is_linear_on_huge_input_and_rejects_non_str():
    p = parse_response("<think>" + "a" * 2_000_000 + "</think><action>look</action>")
    assert p.action == "look" and p.format_valid
    with pytest.raises(TypeError):
        parse_response(b"<action>look</action>")  # type: ignore[arg-type]


def test_sanitize_replaces_surrogates_and_cuts():
    assert sanitize_text("ok\udcff") == "ok\ufffd"
    assert sanitize_text("abcdef", limit=3) == "abc..."
    assert sanitize_text("tab\tnew\nline") == "tab\tnew\nline"


def test_ids_registered_after_import_gymnasium_alone(tmp_path):
    """The installed package's .pth hook registers the ids; no `import t2po_gym` needed."""
    code = "import gymnasium as gym; env = gym.make('T2PO/ALFWorld-v0'); print(env.reset(seed=0)[1]['turn'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"
