"""VLLMPolicy: in-process vLLM with TTI as a per-request logits processor. UNTESTED HERE.

vLLM has no CPU wheel and cannot be installed on the development machines (NOTES.md),
so :class:`VLLMPolicy` was written against vLLM's documented API and has never run.
What *is* tested here is the part that does not need vLLM: :class:`TTILogitsState`,
the per-sequence state machine that the logits processor runs, driven with fake torch
logits (``tests/policies/test_vllm_backend.py``).

## vLLM API used (one documented path)

The V1 engine's *request-level* logits processors through
``vllm.v1.sample.logits_processor.AdapterLogitsProcessor`` (documented with examples
``examples/offline_inference/logits_processor/custom_req.py`` from vLLM 0.10.2 on):

- a subclass of ``AdapterLogitsProcessor`` implements ``is_argmax_invariant()`` (False:
  it forces tokens) and ``new_req_logits_processor(params)``, which returns, for a
  request whose ``SamplingParams.extra_args`` carry ``"t2po_tti"``, a callable
  ``fn(output_token_ids: list[int], logits: Tensor[V]) -> Tensor[V]``;
- the class is passed to ``vllm.LLM(model, logits_processors=[cls])``;
- the engine calls ``fn`` once per decoding step of that request with the raw float32
  logits of its next token (before temperature/top-k/top-p), so the signal is computed
  from the full distribution, exactly like :class:`~t2po_gym.policies.hf.HFPolicy`.

Targets vLLM 0.10.2 up to the 0.3x series that still runs the V1 model runner. vLLM 0.32
documents a different interface for its "Model Runner V2"; there, set
``VLLM_USE_V2_MODEL_RUNNER=0`` (the docs say the legacy runner keeps this interface).
The older per-request ``SamplingParams(logits_processors=[fn])`` of the V0 engine is not
used: it was removed with V0.

## Where the per-request state lives

The processor runs in the engine's worker. With ``VLLM_ENABLE_V1_MULTIPROCESSING=0``
(what :class:`VLLMPolicy` sets by default, ``in_process=True``) that is this process,
and each request's :class:`TTILogitsState` is found in a registry by the key passed in
``extra_args``: the generation then reports ``think_tokens``, ``intervened``,
``intervention_position`` and the full-distribution ``signal``. With a multiprocess
engine the state stays in the worker: the report is rebuilt from the returned token ids
(the forced ``</think>\\n<action>`` ids inside the thought) and the signal from the
returned top-k log-probabilities (``SamplingParams(logprobs=k)``, as in
:class:`~t2po_gym.policies.openai_compat.OpenAIPolicy`).

Think tags are tracked on token ids: the thought opens/closes when the output ends
with the tag's own encoding (``tokenizer.encode("<think>")``). That is exact for models
whose tags are single special tokens (Qwen3, DeepSeek-R1 distills); a tokenizer that
merges a tag with its neighbours is not seen.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from t2po_gym.policies.base import DecodeController, Generation, SamplingConfig, check_prompts

__all__ = ["VLLMPolicy", "TTILogitsState", "VLLM_MISSING"]

VLLM_MISSING = (
    "VLLMPolicy needs vLLM (GPU machines only; `pip install vllm` with a CUDA torch). "
    "Without it, run `vllm serve MODEL` elsewhere and use OpenAIPolicy('http://HOST:8000/v1') "
    "(--policy openai:URL), or HFPolicy on this machine"
)

#: extra_args key of a request that carries TTI/signal state
EXTRA_KEY = "t2po_tti"

_REGISTRY: dict[str, "TTILogitsState"] = {}
_REGISTRY_LOCK = threading.Lock()
_KEYS = itertools.count()


def _ends_with(ids: Sequence[int], tail: Sequence[int]) -> bool:
    n = len(tail)
    return n > 0 and len(ids) >= n and list(ids[-n:]) == list(tail)


@dataclass
class TTILogitsState:
    """One request's TTI state, driven by the engine one step at a time (pure torch + numpy).

    ``__call__(output_ids, logits)`` is the request-level logits processor: it sees the
    tokens generated so far and the raw next-token logits ``[V]``, updates the think
    phase from the last token(s), computes M_t from ``logits`` when the signal is needed,
    asks the :class:`~t2po_gym.policies.base.DecodeController` (TTI's ``ThinkController``)
    whether to fire, and while forcing returns logits that allow only the next forced id.

    Attributes:
        controller: the TTI controller (``None``: signal only, never forces).
        forced_ids: token ids of ``</think>\\n<action>``.
        think_open_ids / think_close_ids: the tags' token ids.
        inside: the prompt already opened the thought.
        kind: signal kind, ``"paper"`` or ``"reference"`` (``None``: no signal).
        vocab_size: |V| for the reference signal.
        full_signal: compute M_t for every token (the caller wants ``Generation.signal``);
            otherwise only while the thought is open (all TTI needs).
    """

    controller: DecodeController | None
    forced_ids: list[int]
    think_open_ids: list[int]
    think_close_ids: list[int]
    inside: bool = False
    kind: str | None = "paper"
    vocab_size: int = 0
    full_signal: bool = False
    closed: bool = False
    think_tokens: int = 0
    fired_at: int = -1
    signal: list[float] = field(default_factory=list)
    _force_next: int = -1  # index into forced_ids of the next forced token; -1: not forcing
    _seen: int = 0
    _tracker: Any = None

    def __post_init__(self) -> None:
        from t2po_gym.uncertainty import SignalTracker

        if self.controller is not None:
            if not self.forced_ids:
                raise ValueError("forced_ids is empty: encode the controller's forced_text first")
            self.kind = self.controller.signal_kind
            self.controller.begin(1)
        if self.kind is not None:
            self._tracker = SignalTracker(self.kind, 1, max(self.vocab_size, 2))

    def _advance_phase(self, output_ids: Sequence[int]) -> None:
        """Update inside/closed from the tokens appended since the last call."""
        for n in range(self._seen + 1, len(output_ids) + 1):
            head = output_ids[:n]
            if not self.inside and not self.closed and _ends_with(head, self.think_open_ids):
                self.inside = True
            elif self.inside and _ends_with(head, self.think_close_ids):
                self.inside, self.closed = False, True
                if self.fired_at < 0 and self.think_tokens > 0:
                    # the model closed its thought itself: the token that completed the
                    # tag is not a think token (as in HFPolicy)
                    self.think_tokens -= 1
        self._seen = len(output_ids)

    def __call__(self, output_ids: Sequence[int], logits):
        import torch

        self._advance_phase(output_ids)
        if self._force_next >= 0:
            if self.full_signal and self.signal:
                self.signal.append(self.signal[-1])  # forced tokens carry the last M_t
            return self._force(logits)
        if self._tracker is None or not (self.full_signal or self.controller is None or not self.closed):
            return logits
        logp = torch.log_softmax(logits.float(), dim=-1)[None, :]
        m = self._tracker.update_from_logprobs(logp.cpu())
        self.signal.append(float(m[0]))
        if self.controller is None or not self.inside or self.fired_at >= 0:
            if self.controller is not None and self.fired_at < 0 and getattr(self.controller, "steps_every_token", False):
                self.controller.step(m, np.array([False]), np.array([self.think_tokens]))  # released TTI: every token counts
            return logits
        self.think_tokens += 1
        fire = self.controller.step(m, np.array([True]), np.array([self.think_tokens]))
        if bool(np.asarray(fire)[0]):
            self.think_tokens -= 1  # this token is replaced by the forced ones
            self.fired_at = len(output_ids)
            self._force_next = 0
            return self._force(logits)
        return logits

    def _force(self, logits):
        tok = self.forced_ids[self._force_next]
        self._force_next += 1
        if self._force_next >= len(self.forced_ids):
            self._force_next = -1
        logits.fill_(float("-inf"))
        logits[tok] = 0.0
        return logits


def _adapter_class():
    """The ``AdapterLogitsProcessor`` subclass (built once vLLM is importable)."""
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class T2POTTILogitsProcessor(AdapterLogitsProcessor):
        """Looks up the request's :class:`TTILogitsState` by ``extra_args['t2po_tti']``."""

        def is_argmax_invariant(self) -> bool:
            return False  # it forces tokens

        def new_req_logits_processor(self, params):
            key = (getattr(params, "extra_args", None) or {}).get(EXTRA_KEY)
            if key is None:
                return None
            with _REGISTRY_LOCK:
                return _REGISTRY.get(key)  # None in a worker process: no TTI there

    return T2POTTILogitsProcessor


class VLLMPolicy:
    """Sample from an in-process vLLM engine; TTI runs inside vLLM's sampler. UNTESTED HERE.

    See the module docstring for the vLLM API and versions it targets. Everything that
    does not need vLLM (the TTI state machine) is tested; this class is not.

    ## Arguments
    - ``model``: a model name or local path for ``vllm.LLM``.
    - ``signal``: ``None``, ``"paper"`` or ``"reference"`` (fills ``Generation.signal``).
    - ``top_logprobs``: k of ``SamplingParams(logprobs=k)``, used for the signal when the
      engine runs in another process (default 20).
    - ``in_process``: set ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` before building the engine
      so that the processor's per-request state is visible here (default True).
    - ``llm_kwargs``: passed to ``vllm.LLM`` (``gpu_memory_utilization``, ``max_model_len``...).
    """

    def __init__(
        self,
        model: str,
        *,
        signal: str | None = None,
        top_logprobs: int = 20,
        in_process: bool = True,
        chat_template: bool | None = None,
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise ImportError(VLLM_MISSING) from e
        if signal not in (None, "paper", "reference"):
            raise ValueError(f"unknown signal {signal!r}: use None, 'paper' or 'reference'")
        if in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        from vllm import LLM

        self.signal = signal
        self.top_logprobs = int(top_logprobs)
        self.llm = LLM(model=model, logits_processors=[_adapter_class()], **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        self.use_chat_template = has_template if chat_template is None else chat_template
        self.vocab_size = len(self.tokenizer)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def render_prompt(self, prompt: str) -> str:
        if not self.use_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def generate(
        self,
        prompts: Sequence[str],
        sampling: SamplingConfig | None = None,
        *,
        episode_ids: Sequence[str] | None = None,
        controller: DecodeController | None = None,
        signal: str | None = None,
    ) -> list[Generation]:
        from vllm import SamplingParams

        from t2po_gym.policies.think_state import ThinkState
        from t2po_gym.protocol import THINK_CLOSE, THINK_OPEN

        prompts = check_prompts(prompts)
        sampling = sampling or SamplingConfig()
        want_signal = (signal if signal is not None else self.signal) is not None
        kind = controller.signal_kind if controller is not None else (signal or self.signal)
        texts = [self.render_prompt(p) for p in prompts]
        forced = self._ids(controller.forced_text) if controller is not None else []
        states, keys, params = [], [], []
        for i, text in enumerate(texts):
            state = key = None
            if controller is not None or kind is not None:
                import copy

                state = TTILogitsState(
                    copy.deepcopy(controller) if controller is not None else None,
                    forced,
                    self._ids(THINK_OPEN),
                    self._ids(THINK_CLOSE),
                    inside=ThinkState.for_prompt(text).inside,
                    kind=kind,
                    vocab_size=self.vocab_size,
                    full_signal=want_signal,
                )
                key = f"t2po-{os.getpid()}-{next(_KEYS)}"
                with _REGISTRY_LOCK:
                    _REGISTRY[key] = state
            states.append(state)
            keys.append(key)
            params.append(
                SamplingParams(
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    top_k=sampling.top_k if sampling.top_k > 0 else -1,
                    max_tokens=sampling.max_new_tokens,
                    stop=list(sampling.stop or ()),
                    include_stop_str_in_output=True,
                    seed=None if sampling.seed is None else sampling.seed + i,
                    logprobs=max(self.top_logprobs, 1) if kind else 1,
                    extra_args={EXTRA_KEY: key} if key else None,
                )
            )
        try:
            outs = self.llm.generate(texts, params, use_tqdm=False)
        finally:
            with _REGISTRY_LOCK:
                for k in keys:
                    _REGISTRY.pop(k, None)
        return [self._record(o.outputs[0], st, want_signal, kind, forced) for o, st in zip(outs, states)]

    def _record(self, c: Any, state: TTILogitsState | None, want_signal: bool, kind, forced) -> Generation:
        import torch

        from t2po_gym.uncertainty import SignalTracker, topk_token_stats

        ids = list(c.token_ids)
        lps, tops = [], []
        for t, d in zip(ids, c.logprobs or []):
            lps.append(float(d[t].logprob) if t in d else float("nan"))
            tops.append([float(v.logprob) for v in d.values()])
        # state.signal or fired_at set: the engine ran in this process and used the state
        here = state is not None and (bool(state.signal) or state.fired_at >= 0 or state.think_tokens > 0)
        fired_at = state.fired_at if here else -1
        if state is not None and not here and forced:
            # multiprocess engine: the state stayed in the worker; find the forced ids
            fired_at = next(
                (j for j in range(len(ids) - len(forced) + 1) if ids[j : j + len(forced)] == forced), -1
            )
        fmask = [0] * len(ids)
        if fired_at >= 0:
            end = min(fired_at + len(forced), len(ids))
            fmask[fired_at:end] = [1] * (end - fired_at)
        sig: list[float] = []
        if want_signal and kind:
            if here and len(state.signal) == len(ids):
                sig = list(state.signal)
            else:  # top-k estimate from the returned log-probs (DESIGN §3)
                tr = SignalTracker(kind, 1, self.vocab_size)
                for vals in tops:
                    h, cc, mx = topk_token_stats(torch.tensor([vals], dtype=torch.float64))
                    sig.append(float(tr.update(h.numpy(), cc.numpy(), mx.numpy())[0]))
        finish = {"stop": "stop", "length": "length"}.get(c.finish_reason, "stop")
        if c.finish_reason == "stop" and getattr(c, "stop_reason", None) is None:
            finish = "eos"
        return Generation(
            text=c.text,
            token_ids=ids,
            logprobs=lps,
            signal=sig,
            forced_mask=fmask,
            think_tokens=state.think_tokens if here else 0,
            intervened=fired_at >= 0,
            intervention_position=fired_at,
            finish_reason=finish,
        )
