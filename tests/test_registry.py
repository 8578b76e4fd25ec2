"""Registry: our ids are listed by gym.pprint_registry() and their kwargs are documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.envs.registration import load_env_creator

from t2po_gym.registration import ENV_SPECS
from t2po_gym.text_env import TextEnv

IDS = [spec[0] for spec in ENV_SPECS]
SECTIONS = ("## Description", "## Action Space", "## Observation Space", "## Rewards",
            "## Starting State", "## Episode End", "## Arguments", "## Vectorized environment")


def test_pprint_registry_lists_our_ids_without_importing_t2po_gym():
    code = ("import gymnasium as gym; s = gym.pprint_registry(disable_print=True); "
            "print(s.split('===== T2PO =====')[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split()
    assert set(IDS) <= set(listed)
    assert {"T2PO/ALFWorld-v0", "T2PO/WebShop-v0", "T2PO/SearchQA-v0"} <= set(listed)


def test_autoregister_pth_is_silent_when_the_hook_module_is_gone(tmp_path):
    """An editable install whose source tree moved or was deleted must not print a traceback
    at every interpreter start: site.py executes the .pth line; without the hook module on
    the path (``-S``, an empty cwd) it does nothing, and with it on the path it installs the hook."""
    pth = Path(__file__).resolve().parents[1] / "t2po_gym_autoregister.pth"
    line = pth.read_text().strip()
    assert line.startswith("import ") and "\n" not in line  # site.py runs only lines starting with "import"
    missing = subprocess.run([sys.executable, "-S", "-c", line + "; import sys; print('ok')"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert missing.returncode == 0 and missing.stdout.strip() == "ok" and missing.stderr == "", missing.stderr
    present = subprocess.run(
        [sys.executable, "-S", "-c",
         line + "; import sys; print(any(type(f).__name__ == '_RegisterAfterGymnasium' for f in sys.meta_path))"],
        capture_output=True, text=True, timeout=60, cwd=pth.parent)
    assert present.returncode == 0 and present.stdout.strip() == "True", present.stderr


def test_pprint_registry_in_process_has_a_t2po_section():
    text = gym.pprint_registry(disable_print=True)
    section = text.split("===== T2PO =====")[1].split("=====")[0]
    assert sorted(section.split()) == sorted(IDS)


def _init_params(cls) -> list[str]:
    names: list[str] = []
    for c in cls.__mro__:
        if "__init__" in c.__dict__:
            for p in inspect.signature(c.__init__).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in names:
                    names.append(p.name)
        if c is TextEnv:
            break
    return names


@pytest.mark.parametrize("env_id", IDS)
def test_every_kwarg_is_documented_in_the_env_docstring(env_id):
    spec = gym.spec(env_id)
    cls = load_env_creator(spec.entry_point)
    doc = inspect.getdoc(cls) or ""
    for section in SECTIONS:
        assert section in doc, f"{cls.__name__} docstring lacks {section}"
    # an env may document its kwargs as "those of <parent env>": the docstrings up the MRO count
    docs = "\n".join(inspect.getdoc(c) or "" for c in cls.__mro__ if issubclass(c, TextEnv))
    undocumented = [n for n in _init_params(cls) if f"``{n}``" not in docs]
    assert not undocumented, f"{env_id}: kwargs not in the docstring: {undocumented}"
    # the registered default kwargs are real arguments
    assert set(spec.kwargs) <= set(_init_params(cls))
