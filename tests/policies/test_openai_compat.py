"""OpenAIPolicy against a small local completions server on 127.0.0.1 (this file's own).

The server streams a fixed response token by token with logprobs, records every request
body, and answers a prompt longer than its context the way real servers do: llama-cpp-python
streams an empty completion with ``finish_reason="length"``; vLLM answers HTTP 400.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from t2po_gym.policies.base import ContextOverflowError, SamplingConfig
from t2po_gym.policies.openai_compat import NEUTRAL_SAMPLING, OpenAIPolicy

RESPONSE = [" a", " b", "</think>", "<action>", " look", "</action>", " junk"]
SEARCH_TAIL = ["<search>", " capital", " of X", "</search>", " junk"]
CONTEXT_WORDS = 40  # the fake server's context, in whitespace-separated words


class FakeServer:
    """``mode``: ``"llamacpp"`` (empty stream on overflow) or ``"vllm"`` (HTTP 400 on overflow)."""

    def __init__(self, mode: str = "llamacpp", max_model_len: int | None = None):
        self.mode, self.max_model_len = mode, max_model_len
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep pytest's output clean
                pass

            def _json(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                model = {"id": "fake-model"}
                if outer.max_model_len:
                    model["max_model_len"] = outer.max_model_len
                self._json(200, {"data": [model]})

            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("tokenize"):
                    return self._json(200, {"tokens": list(range(len(req.get("prompt", req.get("input", "")).split())))})
                outer.requests.append(req)
                n_words = len(req["prompt"].split())
                if n_words + req["max_tokens"] > CONTEXT_WORDS and outer.mode == "vllm":
                    return self._json(400, {"object": "error", "message": (
                        f"This model's maximum context length is {CONTEXT_WORDS} tokens. However, you requested "
                        f"{n_words + req['max_tokens']} tokens."), "code": 400})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                chunks = []
                if n_words > CONTEXT_WORDS:  # llama-cpp-python: no token, finish_reason "length"
                    chunks.append({"choices": [{"text": "", "logprobs": None, "finish_reason": "length"}]})
                else:
                    # a continuation after TTI's forced "</think>\n" (Search-QA) picks <search>
                    toks = SEARCH_TAIL if req["prompt"].endswith("</think>\n") else RESPONSE
                    for t in toks[: req["max_tokens"]]:
                        lp = {"tokens": [t], "token_logprobs": [-0.5], "top_logprobs": [{t: -0.5, " x": -1.5}]}
                        chunks.append({"choices": [{"text": t, "logprobs": lp, "finish_reason": None}]})
                    chunks.append({"choices": [{"text": "", "logprobs": None, "finish_reason": "length"}]})
                for c in chunks:
                    self.wfile.write(f"data: {json.dumps(c)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_streams_tokens_and_stops_client_side():
    with FakeServer() as srv:
        p = OpenAIPolicy(srv.url, chat_template=False, max_workers=1)
        g = p.generate(["go <think>"], SamplingConfig(max_new_tokens=20))[0]
    assert g.text == " a b</think><action> look</action>" and g.finish_reason == "stop"
    assert g.logprobs == [-0.5] * 6 and g.think_tokens == 2 and g.prefix == ""


@pytest.mark.parametrize("mode", ["llamacpp", "vllm"])
def test_context_overflow_raises_a_clear_error(mode):
    long = "word " * (CONTEXT_WORDS + 5)
    with FakeServer(mode) as srv:
        p = OpenAIPolicy(srv.url, chat_template=False, max_workers=1)
        with pytest.raises(ContextOverflowError) as e:
            p.generate(["short prompt", long], SamplingConfig(max_new_tokens=8))
        msg = str(e.value)
        assert "prompt 1" in msg and "max_new_tokens (8)" in msg and "shorten the history" in msg
        if mode == "llamacpp":
            # the server's own tokenizer counted the prompt
            assert "finish_reason='length'" in msg and f"({CONTEXT_WORDS + 5} tokens)" in msg
        else:
            assert f"maximum context length is {CONTEXT_WORDS}" in msg
        assert isinstance(e.value, ValueError)


def test_context_checked_before_sending_when_the_server_lists_it(tiny):
    _, tok = tiny
    with FakeServer(max_model_len=30) as srv:
        p = OpenAIPolicy(srv.url, tokenizer=tok, chat_template=False, max_workers=1)
        assert p.max_context == 30
        with pytest.raises(ContextOverflowError, match=r"prompt 0 \(\d+ tokens\).*context of 30 tokens"):
            p.generate(["look " * 40], SamplingConfig(max_new_tokens=8))
        assert srv.requests == []  # refused before any completion request


def test_every_sampling_parameter_is_sent_explicitly():
    with FakeServer() as srv:
        p = OpenAIPolicy(srv.url, chat_template=False, max_workers=1, top_logprobs=7)
        p.generate(["go <think>"], SamplingConfig(temperature=0.7, top_p=0.9, max_new_tokens=3, seed=11))
        p.generate(["go <think>"], SamplingConfig(top_k=5, max_new_tokens=3))
        short = SamplingConfig(max_new_tokens=2)
        OpenAIPolicy(srv.url, chat_template=False, extra_body={"top_k": -1, "min_p": 0.1}).generate(["go"], short)
        plain = OpenAIPolicy(srv.url, chat_template=False, server_extensions=False)
        plain.generate(["go"], short)
        with pytest.raises(ValueError, match="top_k is not an OpenAI field"):
            plain.generate(["go"], SamplingConfig(top_k=3))
    first, second, extra, plain = srv.requests[:4]
    assert first["temperature"] == 0.7 and first["top_p"] == 0.9 and first["seed"] == 11
    assert first["logprobs"] == 7 and first["max_tokens"] == 3 and first["stream"] is True
    # llama.cpp's defaults (top_k 40, min_p 0.05, repeat_penalty 1.1) must not apply silently
    assert first["top_k"] == 0 and first["min_p"] == 0.0 and first["repeat_penalty"] == 1.0
    assert first["repetition_penalty"] == 1.0 and first["presence_penalty"] == 0.0 and first["frequency_penalty"] == 0.0
    assert all(first[k] == v for k, v in NEUTRAL_SAMPLING.items() if k != "top_k")
    assert second["top_k"] == 5 and second["temperature"] == 1.0 and "seed" not in second
    assert extra["top_k"] == -1 and extra["min_p"] == 0.1
    assert not set(NEUTRAL_SAMPLING) & set(plain) and plain["temperature"] == 1.0


def test_same_chat_template_as_hfpolicy_and_template_opened_think(tiny):
    from t2po_gym.policies.hf import HFPolicy

    model, tok = tiny
    think_tok = copy.deepcopy(tok)
    think_tok.chat_template = tok.chat_template.replace("'<|im_start|>assistant\n'", "'<|im_start|>assistant\n<think>\n'")
    kw = dict(system_prompt="You act.", assistant_prefill=" I")
    with FakeServer() as srv:
        g = OpenAIPolicy(srv.url, tokenizer=think_tok, max_workers=1, **kw).generate(
            ["go to the fridge"], SamplingConfig(max_new_tokens=20))[0]
    sent = srv.requests[0]["prompt"]
    assert sent == HFPolicy(model, think_tok, **kw).render_prompt("go to the fridge")
    assert sent.endswith("<|im_start|>assistant\n<think>\n I")
    # the env judges the template's "<think>\n" and the prefill too
    assert g.prefix == "<think>\n I" and g.text == "<think>\n I a b</think><action> look</action>"
    assert g.think_tokens == 2


def test_tti_through_the_server_follows_the_searchqa_protocol():
    """TTI fires on the server's stream; the continuation after Search-QA's "</think>\\n" is a valid turn."""
    from t2po_gym.factory import response_spec_of, sampling_for_env
    from t2po_gym.protocol import parse_response
    from t2po_gym.wrappers.tti import ThinkingIntervention

    spec = response_spec_of("T2PO/SearchQA-v0")
    with FakeServer() as srv:
        backend = OpenAIPolicy(srv.url, chat_template=False, max_workers=1)
        tti = ThinkingIntervention(backend, min_think_tokens=0, max_think_tokens=1, forced_text=spec.forced_text)
        g = tti.generate(["question <think>"], sampling_for_env("T2PO/SearchQA-v0", max_new_tokens=20))[0]
    assert srv.requests[1]["prompt"] == "question <think> a</think>\n"  # the continuation request
    assert g.intervened and g.text == " a</think>\n<search> capital of X</search>" and g.finish_reason == "stop"
    assert g.forced_mask == [0, 1, 0, 0, 0, 0] and g.think_tokens == 1
    p = parse_response("<think>" + g.text, action_tag="search")
    assert p.format_valid and p.action == "capital of X"


def test_warns_when_no_template_can_be_applied():
    with FakeServer() as srv:
        with pytest.warns(UserWarning, match="without the model's chat template"):
            OpenAIPolicy(srv.url)
