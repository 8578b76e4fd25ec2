"""OpenAIPolicy: any OpenAI-compatible ``/v1/completions`` server, streamed, with top-k logprobs.

Works with ``vllm serve``, the llama.cpp server (``python -m llama_cpp.server``) and
SGLang. Each prompt is one streamed completion (the prompts of a batch run in
parallel threads); the uncertainty signal is computed per token from the returned
``top_logprobs`` (see :mod:`t2po_gym.uncertainty`: H from the renormalised
top-k).

TTI through a server: when the controller fires, the stream is closed and a new
completion continues from ``prompt + text so far + "</think>\\n<action>"``. The forced
text gets log-probability 0 and ``forced_mask`` 1 (one entry per token when the server
can tokenize, ``/tokenize`` or ``/extras/tokenize``, else one entry). Servers do not
return token ids through this API, so ``Generation.token_ids`` is empty; ``logprobs``,
``signal`` and ``forced_mask`` have one entry per streamed token. Stop strings are
matched client-side (the stop string is kept in the text, as with HFPolicy).

**Same prompt, same distribution as HFPolicy.** Give ``tokenizer=`` (the model's tokenizer
or its path) and the prompt is rendered client-side with the same chat template, system
prompt, template kwargs and prefill as ``HFPolicy`` (:class:`~t2po_gym.policies.chat.ChatFormat`);
without one the env prompt is sent raw. Every sampling parameter is sent explicitly:
``temperature``, ``top_p``, ``top_k`` (0 when unset: disabled) and, for the servers' own
extensions, neutral values (``min_p=0``, ``repeat_penalty=repetition_penalty=1``,
``presence_penalty=frequency_penalty=0``, ``typical_p=1``, ``tfs_z=1``, ``mirostat_mode=0``),
so a server's defaults (llama.cpp: ``top_k=40``, ``min_p=0.05``, ``repeat_penalty=1.1``) never
apply silently. ``extra_body`` overrides or adds fields (e.g. ``{"top_k": -1}`` for vLLM
< 0.9, which rejects 0); ``server_extensions=False`` sends the OpenAI fields only (for
api.openai.com, which rejects the others).

**Context overflow** raises :class:`~t2po_gym.policies.base.ContextOverflowError`: when the
server answers an HTTP error about the context, sends an error in the stream, or ends a
request with ``finish_reason="length"`` without a single token (llama-cpp-python's answer
to a prompt longer than its ``n_ctx``); and before sending, when ``max_context`` is known
(given, or the ``max_model_len`` that vLLM lists in ``/v1/models``) and the prompt can be
counted.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import warnings
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np

from t2po_gym.policies.base import (
    ContextOverflowError,
    DecodeController,
    Generation,
    SamplingConfig,
    check_prompts,
)
from t2po_gym.policies.chat import ChatFormat
from t2po_gym.policies.think_state import ThinkPhase, ThinkState, find_stop

__all__ = ["OpenAIPolicy", "NEUTRAL_SAMPLING"]

#: Server-specific sampling fields and their neutral (disabled) values: llama.cpp /
#: llama-cpp-python (``min_p``, ``repeat_penalty``, ``typical_p``, ``tfs_z``, ``mirostat_mode``),
#: vLLM / SGLang (``min_p``, ``repetition_penalty``), both (``top_k``: 0 disables it).
NEUTRAL_SAMPLING: dict[str, Any] = {
    "top_k": 0,
    "min_p": 0.0,
    "repeat_penalty": 1.0,
    "repetition_penalty": 1.0,
    "typical_p": 1.0,
    "tfs_z": 1.0,
    "mirostat_mode": 0,
}

# what servers say when a prompt does not fit (vLLM, llama.cpp, llama-cpp-python, SGLang, TGI)
_CONTEXT_WORDS = re.compile(r"context|too long|maximum.*length|exceed|n_ctx|too many tokens", re.I)


class ServerError(RuntimeError):
    """An HTTP error answered by the server (``status``, ``body``)."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"{url} answered HTTP {status}: {body}")
        self.status, self.body = status, body


class OpenAIPolicy:
    """Sample from an OpenAI-compatible completions server.

    ## Arguments
    - ``base_url``: e.g. ``http://127.0.0.1:8000/v1`` (``/v1`` is added when missing).
    - ``model``: the model name the server expects (``None``: the first of ``/v1/models``).
    - ``top_logprobs``: k, how many alternatives per token to ask for (servers cap it:
      OpenAI 5/20, vLLM ``--max-logprobs``, llama.cpp any).
    - ``signal``: ``None``, ``"paper"`` or ``"reference"`` (as in HFPolicy).
    - ``vocab_size``: |V| for the reference signal; default k.
    - ``api_key``: sent as a bearer token when given.
    - ``timeout``: seconds per HTTP request; ``max_workers``: parallel streams.
    - ``tokenizer``: the model's ``transformers`` tokenizer, or a path/name to load one;
      renders the chat template client-side (and counts prompt tokens).
    - ``chat_template``: use the tokenizer's template; ``None`` (default): when a tokenizer
      with a template was given. ``system_prompt``, ``chat_template_kwargs``,
      ``assistant_prefill``: as in ``HFPolicy``.
    - ``max_context``: the server's context in tokens; ``None``: what ``/v1/models`` lists, if any.
    - ``server_extensions``: send the neutral values of :data:`NEUTRAL_SAMPLING` (default True).
    - ``extra_body``: extra or overriding request fields.
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        top_logprobs: int = 20,
        signal: str | None = None,
        vocab_size: int | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_workers: int = 8,
        tokenizer: Any = None,
        chat_template: bool | None = None,
        system_prompt: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        assistant_prefill: str = "",
        max_context: int | None = None,
        server_extensions: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        url = base_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"base_url {base_url!r} must start with http:// or https://")
        self.base_url = url if url.endswith("/v1") else url + "/v1"
        self.root_url = self.base_url[: -len("/v1")]
        if signal not in (None, "paper", "reference"):
            raise ValueError(f"unknown signal {signal!r}: use None, 'paper' or 'reference'")
        self.signal = signal
        self.top_logprobs = int(top_logprobs)
        self.vocab_size = vocab_size or self.top_logprobs
        self.api_key = api_key
        self.timeout = timeout
        self.max_workers = max_workers
        if isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.tokenizer = tokenizer
        has_template = getattr(tokenizer, "chat_template", None) is not None
        if chat_template and tokenizer is None:
            raise ValueError("chat_template=True needs tokenizer=... (the model's tokenizer or its path)")
        self.use_chat_template = has_template if chat_template is None else bool(chat_template)
        if chat_template is None and tokenizer is None:
            warnings.warn(
                "OpenAIPolicy without tokenizer=: prompts go to /v1/completions without the model's chat "
                "template (HFPolicy applies it). Pass tokenizer=<the model's tokenizer or path> to apply it, "
                "or chat_template=False to send raw prompts on purpose (base models).",
                UserWarning,
                stacklevel=2,
            )
        self.chat = ChatFormat(tokenizer, self.use_chat_template, system_prompt,
                               dict(chat_template_kwargs or {}), assistant_prefill)
        self.server_extensions = bool(server_extensions)
        self.extra_body = dict(extra_body or {})
        self.max_context = int(max_context) if max_context else None
        self.model = model or self._first_model()

    # ------------------------------------------------------------------ HTTP
    def _request(self, url: str, payload: dict | None = None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
        req.add_header("Content-Type", "application/json")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")[:500]
            raise ServerError(url, e.code, body) from e
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach {url}: {e.reason}; is the server running?") from e

    def _first_model(self) -> str:
        with self._request(self.base_url + "/models") as r:
            data = json.load(r).get("data") or []
        if not data:
            raise RuntimeError(f"{self.base_url}/models lists no model: pass model=...")
        if self.max_context is None and isinstance(data[0].get("max_model_len"), int):
            self.max_context = int(data[0]["max_model_len"])  # vLLM lists its context here
        return data[0]["id"]

    def request_body(self, prompt: str, sampling: SamplingConfig, max_tokens: int, seed: int | None) -> dict:
        """The JSON body of one streamed completion request: every sampling parameter explicit."""
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
            "n": 1,
            "echo": False,
            "logprobs": self.top_logprobs,
            "stream": True,
        }
        if self.server_extensions:
            payload.update(NEUTRAL_SAMPLING)
            payload["top_k"] = int(sampling.top_k) if sampling.top_k and sampling.top_k > 0 else 0
        elif sampling.top_k:
            raise ValueError("top_k is not an OpenAI field: use server_extensions=True (the default) to send it")
        if seed is not None:
            payload["seed"] = seed
        payload.update(self.extra_body)
        return payload

    def _prompt_tokens(self, text: str) -> int | None:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return self.count_tokens(text)

    def _overflow(self, index: int, n_tokens: int | None, max_new: int, why: str) -> ContextOverflowError:
        size = f"{n_tokens} tokens" if n_tokens is not None else "too many tokens"
        ctx = f" of {self.max_context} tokens" if self.max_context else ""
        return ContextOverflowError(
            f"prompt {index} ({size}) plus max_new_tokens ({max_new}) does not fit the server's "
            f"context{ctx} ({why}): shorten the history (history_length), lower max_new_tokens, "
            "or serve the model with a longer context"
        )

    def count_tokens(self, text: str) -> int | None:
        """Tokens in ``text`` by the server's tokenizer, or None when it has no tokenize route."""
        for url, payload in (
            (self.root_url + "/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False}),
            (self.root_url + "/extras/tokenize", {"input": text}),
        ):
            try:
                with self._request(url, payload) as r:
                    toks = json.load(r).get("tokens")
                if isinstance(toks, list):
                    return len(toks)
            except (RuntimeError, ConnectionError, ValueError):
                continue
        return None

    def _stream(self, index: int, prompt: str, sampling: SamplingConfig, max_tokens: int,
                seed: int | None) -> Iterator[dict]:
        try:
            resp = self._request(self.base_url + "/completions", self.request_body(prompt, sampling, max_tokens, seed))
        except ServerError as e:
            if e.status in (400, 413, 422, 500) and _CONTEXT_WORDS.search(e.body):
                raise self._overflow(index, None, sampling.max_new_tokens, f"the server said: {e.body[:300]}") from e
            raise
        try:
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                body = line[5:].strip()
                if body == "[DONE]":
                    return
                chunk = json.loads(body)
                if chunk.get("error"):
                    msg = json.dumps(chunk["error"])[:300]
                    if _CONTEXT_WORDS.search(msg):
                        raise self._overflow(index, None, sampling.max_new_tokens, f"the server said: {msg}")
                    raise RuntimeError(f"{self.base_url}/completions streamed an error for prompt {index}: {msg}")
                yield chunk["choices"][0]
        finally:
            resp.close()

    # ------------------------------------------------------------------ generate
    def generate(
        self,
        prompts: Sequence[str],
        sampling: SamplingConfig | None = None,
        *,
        episode_ids: Sequence[str] | None = None,
        controller: DecodeController | None = None,
        signal: str | None = None,
    ) -> list[Generation]:
        prompts = check_prompts(prompts)
        sampling = sampling or SamplingConfig()
        if controller is not None:
            if signal is not None and signal != controller.signal_kind:
                raise ValueError("the controller and the outer wrapper ask for different signals")
            signal = controller.signal_kind
        kind = signal if signal is not None else self.signal

        def one(i: int) -> Generation:
            seed = None if sampling.seed is None else sampling.seed + i
            ctrl = None
            if controller is not None:
                ctrl = copy.deepcopy(controller)  # per-sequence state
                ctrl.begin(1)
            return self._generate_one(i, prompts[i], sampling, seed, kind, ctrl)

        if len(prompts) <= 1:
            return [one(i) for i in range(len(prompts))]
        with ThreadPoolExecutor(min(self.max_workers, len(prompts))) as pool:
            return list(pool.map(one, range(len(prompts))))

    def _generate_one(self, index, prompt, sampling, seed, kind, ctrl) -> Generation:
        import torch

        from t2po_gym.uncertainty import SignalTracker, topk_token_stats

        stop = tuple(sampling.stop or ())
        tracker = SignalTracker(kind, 1, self.vocab_size) if kind else None
        prompt, prefix = self.chat.render(prompt)
        if self.max_context is not None:
            n = self._prompt_tokens(prompt)
            if n is not None and n + sampling.max_new_tokens > self.max_context:
                raise self._overflow(index, n, sampling.max_new_tokens, "counted before sending")
        think = ThinkState.for_prompt(prompt, prefix)
        text, lps, sigs, fmask = "", [], [], []
        think_count, fired_at, finish, cut = 0, -1, "length", -1
        budget = sampling.max_new_tokens
        m = np.zeros(1)
        while budget > 0:
            fire, got = False, 0
            for choice in self._stream(index, prompt + text, sampling, budget, seed):
                lp = choice.get("logprobs") or {}
                tokens = lp.get("tokens") or ([choice["text"]] if choice.get("text") else [])
                token_lps = lp.get("token_logprobs") or [0.0] * len(tokens)
                tops = lp.get("top_logprobs") or [None] * len(tokens)
                for tok, tlp, top in zip(tokens, token_lps, tops):
                    if tracker is not None:
                        vals = list(top.values()) if isinstance(top, dict) and top else [tlp or 0.0]
                        h, c, mx = topk_token_stats(torch.tensor([vals], dtype=torch.float64))
                        m = tracker.update(h.numpy(), c.numpy(), mx.numpy())
                    thinking = think.inside
                    if thinking:
                        think_count += 1
                    if ctrl is not None and thinking and fired_at < 0:
                        if bool(ctrl.step(m, np.array([True]), np.array([think_count]))[0]):
                            think_count -= 1
                            fired_at, fire = len(lps), True
                            break
                    elif ctrl is not None and fired_at < 0 and getattr(ctrl, "steps_every_token", False):
                        ctrl.step(m, np.array([False]), np.array([think_count]))  # released TTI: its counter runs on every token
                    got += 1
                    text += tok
                    lps.append(float(tlp) if tlp is not None else math.nan)
                    sigs.append(float(m[0])) if tracker is not None else None
                    fmask.append(0)
                    budget -= 1
                    before = think.phase
                    if think.update(text) != before and before == ThinkPhase.INSIDE:
                        think_count -= 1
                    j = find_stop(text, stop) if stop else -1
                    if j >= 0:
                        finish, cut, budget = "stop", j, 0
                        break
                    if budget <= 0:
                        break
                if fire or finish == "stop" or budget <= 0:
                    break
                if choice.get("finish_reason"):
                    if choice["finish_reason"] == "length" and got == 0:
                        # no token at all although tokens were left: the prompt filled the context
                        raise self._overflow(index, self._prompt_tokens(prompt + text), sampling.max_new_tokens,
                                             "the server returned no token with finish_reason='length'")
                    finish = "eos" if choice["finish_reason"] == "stop" else "length"
                    budget = 0
                    break
            if not fire:
                break
            forced = ctrl.forced_text
            n = min(self._prompt_tokens(forced) or 1, budget)
            text += forced
            lps.extend([0.0] * n)
            fmask.extend([1] * n)
            if tracker is not None:
                sigs.extend([float(m[0])] * n)
            budget -= n
            think.update(text)
        if cut >= 0:
            text = text[:cut]
        return Generation(
            text=prefix + text,
            prefix=prefix,
            token_ids=[],
            logprobs=lps,
            signal=sigs,
            forced_mask=fmask,
            think_tokens=think_count,
            intervened=fired_at >= 0,
            intervention_position=fired_at,
            finish_reason=finish,
        )
