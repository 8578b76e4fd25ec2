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
"""

from __future__ import annotations

import copy
import json
import math
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np

from t2po_gym.policies.base import DecodeController, Generation, SamplingConfig, check_prompts
from t2po_gym.policies.think_state import ThinkPhase, ThinkState, find_stop

__all__ = ["OpenAIPolicy"]


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
            raise RuntimeError(f"{url} answered HTTP {e.code}: {body}") from e
        except urllib.error.URLError as e:
            raise ConnectionError(f"cannot reach {url}: {e.reason}; is the server running?") from e

    def _first_model(self) -> str:
        with self._request(self.base_url + "/models") as r:
            data = json.load(r).get("data") or []
        if not data:
            raise RuntimeError(f"{self.base_url}/models lists no model: pass model=...")
        return data[0]["id"]

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

    def _stream(self, prompt: str, sampling: SamplingConfig, max_tokens: int, seed: int | None) -> Iterator[dict]:
        payload: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "logprobs": self.top_logprobs,
            "stream": True,
        }
        if sampling.top_k:
            payload["top_k"] = sampling.top_k
        if seed is not None:
            payload["seed"] = seed
        resp = self._request(self.base_url + "/completions", payload)
        try:
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                body = line[5:].strip()
                if body == "[DONE]":
                    return
                yield json.loads(body)["choices"][0]
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
            return self._generate_one(prompts[i], sampling, seed, kind, ctrl)

        if len(prompts) <= 1:
            return [one(i) for i in range(len(prompts))]
        with ThreadPoolExecutor(min(self.max_workers, len(prompts))) as pool:
            return list(pool.map(one, range(len(prompts))))

    def _generate_one(self, prompt, sampling, seed, kind, ctrl) -> Generation:
        import torch

        from t2po_gym.uncertainty import SignalTracker, topk_token_stats

        stop = tuple(sampling.stop or ())
        tracker = SignalTracker(kind, 1, self.vocab_size) if kind else None
        think = ThinkState.for_prompt(prompt)
        text, lps, sigs, fmask = "", [], [], []
        think_count, fired_at, finish, cut = 0, -1, "length", -1
        budget = sampling.max_new_tokens
        m = np.zeros(1)
        while budget > 0:
            fire = False
            for choice in self._stream(prompt + text, sampling, budget, seed):
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
                    finish = "eos" if choice["finish_reason"] == "stop" else "length"
                    budget = 0
                    break
            if not fire:
                break
            forced = ctrl.forced_text
            n = min(self.count_tokens(forced) or 1, budget)
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
            text=text,
            token_ids=[],
            logprobs=lps,
            signal=sigs,
            forced_mask=fmask,
            think_tokens=think_count,
            intervened=fired_at >= 0,
            intervention_position=fired_at,
            finish_reason=finish,
        )
