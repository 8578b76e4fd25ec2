"""VLLMPolicy: in-process vLLM with TTI inside vLLM's sampler. UNTESTED HERE (no vLLM, no GPU).

vLLM has no CPU wheel and cannot be installed on the development machines (NOTES.md), and
no GPU was lent while this was written, so the vLLM-facing classes below have never run.
What *is* tested (``tests/policies/test_vllm_backend.py``) is everything that does not need
vLLM: :class:`TTILogitsState`, the per-request TTI state machine, and :class:`TTISlotTable`,
the batch bookkeeping of the Model Runner V2 processor (request slots, rows reordered every
step, chunked prefill, preemption refills), driven with fake logits and slot mappings and
compared with HFPolicy's decisions; and VLLMPolicy's own Python (``SamplingParams.extra_args``,
the registry, ``Generation`` records) on a fake engine that steps like Model Runner V2 (a test
of our glue, not of vLLM). ``benchmarks/gpu_check.py`` runs the real engine on a GPU.

## vLLM interfaces used (written against vLLM's source, ``vllm-project/vllm``)

**Model Runner V2** (default of the 0.3x series; the pinned range of the ``vllm`` extra):
``vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor``
(``vllm/v1/worker/gpu/sample/logits_processor/interface.py``):

- ``__init__(vllm_config, req_states)``: ``req_states.prompt_len`` (a ``UvaBackedTensor``, read on
  the host through ``.np``) and ``req_states.all_token_ids`` (committed tokens per slot);
- ``validate_params(sampling_params)`` at admission; ``add_request(req_idx, sampling_params) -> bool``
  when a request takes slot ``req_idx`` (slots are recycled: all per-slot state is reset there);
- ``apply(logits [rows, V] float32, ctx)`` once per step for the whole batch, after bias/penalties
  and *before* temperature/top-k/top-p (so M_t comes from the raw full distribution, as in HFPolicy);
  ``ctx.idx_mapping_np`` maps batch positions to slots on the host, ``ctx.seq_lens_upper_bound_np``
  gives the tokens visible to the token being sampled (exact without speculative decoding),
  ``ctx.input_ids`` the token fed at each row (the request's last committed token).

The class is registered through the ``vllm.logits_processors`` entry point
(``pyproject.toml``: ``t2po_tti = "t2po_gym.policies.vllm_backend:T2POTTILogitsProcessor"``) and also
passed explicitly by :class:`VLLMPolicy` (``LLM(logits_processors=[cls])``). The attribute is built
lazily when vLLM loads it: the V2 class, or the V1 adapter below when ``VLLM_USE_V2_MODEL_RUNNER=0``
(vLLM's V2 loader rejects V1-interface classes and the V1 loader V2 ones, so one name serves both).
Per-request arguments travel in ``SamplingParams.extra_args["t2po_tti"]``: a key into this
process's registry of :class:`TTILogitsState` objects (the engine runs in-process:
``VLLM_ENABLE_V1_MULTIPROCESSING=0`` or ``distributed_executor_backend="external_launcher"``).
Requests without the key are declined in ``add_request`` and cost nothing; ``apply`` returns at
once when no active slot is in the batch (checked on the host, no device sync). Speculative
decoding (several rows per request) is refused with a clear error.

**V1 interface** (kept because it costs ~30 lines): ``vllm.v1.sample.logits_processor.
AdapterLogitsProcessor`` (vLLM 0.10.2 up to the 0.3x series with ``VLLM_USE_V2_MODEL_RUNNER=0``),
``interface="v1"``: a per-request callable ``fn(output_token_ids, logits[V])``.

## Colocated engine per trainer rank

``VLLMPolicy(..., colocate=True)`` builds the engine the way verl / TRL colocate it: one in-process
engine per torch.distributed rank (``distributed_executor_backend="external_launcher"``, so vLLM joins
the trainer's process group instead of spawning workers), ``enable_sleep_mode=True`` so that
:meth:`VLLMPolicy.sleep` frees the weights and KV cache while the trainer updates, and
:meth:`VLLMPolicy.sync_weights` loads the trainer's current weights into the engine
(``LLM.collective_rpc`` running ``model_runner.model.load_weights`` on the in-process worker) before
the next rollout. :class:`SyncedVLLMPolicy` does that automatically when the training module's
weights changed (tensor version counters), so the trainer needs no vLLM-specific code:
``trainer.base_policy = SyncedVLLMPolicy(VLLMPolicy(path, colocate=True), trainer.model)``.

Think tags are tracked on token ids: the thought opens/closes when the output ends with the
tag's own encoding (``tokenizer.encode("<think>")``). That is exact for models whose tags are
single special tokens (Qwen3, DeepSeek-R1 distills); a tokenizer that merges a tag with its
neighbours is not seen.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from t2po_gym.policies.base import DecodeController, Generation, SamplingConfig, check_prompts
from t2po_gym.policies.chat import ChatFormat

__all__ = ["VLLMPolicy", "SyncedVLLMPolicy", "TTILogitsState", "TTISlotTable", "VLLM_MISSING"]

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
    last_forced: int = -1  # the token the last call forced (-1: it forced none)
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
        self.last_forced = -1
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
        self.last_forced = tok
        self._force_next += 1
        if self._force_next >= len(self.forced_ids):
            self._force_next = -1
        logits.fill_(float("-inf"))
        logits[tok] = 0.0
        return logits


@dataclass
class _Slot:
    state: TTILogitsState
    out_ids: list[int] = field(default_factory=list)
    applied: int = -1  # output length at the last apply (a replayed step must not advance TTI twice)
    forced: int = -1  # the token forced at that step


class TTISlotTable:
    """The Model Runner V2 processor's bookkeeping, without vLLM (pure torch; tested on CPU).

    vLLM's V2 runner keeps requests in recycled *slots* and reorders the batch rows every step;
    ``apply`` sees ``[rows, V]`` logits and the row -> slot mapping. This table owns one
    :class:`TTILogitsState` per active slot, rebuilds each request's output ids from the tokens
    fed at each step (``input_ids``; a gap after a preemption refill is read back through
    ``fetch``), and runs the state machine on the row's logits in place.

    Args:
        registry: key -> :class:`TTILogitsState` (the module registry by default).
    """

    def __init__(self, registry: dict[str, TTILogitsState] | None = None):
        self.registry = _REGISTRY if registry is None else registry
        self.slots: dict[int, _Slot] = {}

    def add_request(self, slot: int, extra_args: dict | None) -> bool:
        """A request enters ``slot``: bind its state (True) or decline it (False, slot cleared)."""
        self.slots.pop(int(slot), None)  # the slot may hold a finished request's state
        key = (extra_args or {}).get(EXTRA_KEY)
        if key is None:
            return False
        with _REGISTRY_LOCK:
            state = self.registry.get(key)
        if state is None:  # engine in another process: the state is not here, nothing to drive
            return False
        self.slots[int(slot)] = _Slot(state)
        return True

    def active_in(self, batch_slots: Sequence[int]) -> bool:
        return bool(self.slots) and any(int(s) in self.slots for s in batch_slots)

    def apply(
        self,
        logits,
        batch_slots: Sequence[int],
        seq_lens: Sequence[int],
        prompt_lens: Sequence[int],
        input_ids: Sequence[int] | Any,
        fetch: Any = None,
    ):
        """Run TTI on the rows of active slots, in place.

        Args:
            logits: ``[rows, V]`` float32 (one row per request: no speculative decoding).
            batch_slots: ``[rows]`` slot of each row.
            seq_lens: ``[rows]`` tokens visible to the token being sampled (prompt + committed output).
            prompt_lens: ``[rows]`` prompt length of each row's request.
            input_ids: ``[rows]`` token fed at each row (a sequence, or a tensor read only if needed).
            fetch: ``fetch(slot, start, stop) -> list[int]``: output tokens ``start:stop`` of a slot
                (needed only after a preemption refill skipped steps).
        """
        if logits.shape[0] != len(batch_slots):
            raise RuntimeError(
                f"{logits.shape[0]} logits rows for {len(batch_slots)} requests: speculative decoding "
                "is not supported with TTI (drop speculative_config)")
        rows = [r for r, s in enumerate(batch_slots) if int(s) in self.slots]
        if not rows:
            return logits
        if len({int(batch_slots[r]) for r in rows}) != len(rows):
            raise RuntimeError("a request holds several rows this step: speculative decoding is not supported with TTI")
        if hasattr(input_ids, "device"):  # a tensor: one device read for all active rows
            import torch

            fed = dict(zip(rows, input_ids[torch.tensor(rows, device=input_ids.device)].tolist()))
        else:
            fed = {r: int(input_ids[r]) for r in rows}
        for r in rows:
            slot = self.slots[int(batch_slots[r])]
            n_out = int(seq_lens[r]) - int(prompt_lens[r])
            if n_out < 0:
                continue  # a prefill chunk that ends before the prompt does: nothing is sampled
            have = len(slot.out_ids)
            if n_out == have + 1:
                slot.out_ids.append(int(fed[r]))
            elif n_out > have + 1:
                if fetch is None:
                    raise RuntimeError(f"slot {batch_slots[r]} skipped {n_out - have} tokens and no fetch was given")
                slot.out_ids.extend(int(t) for t in fetch(int(batch_slots[r]), have, n_out))
            elif n_out < have:
                raise RuntimeError(f"slot {batch_slots[r]}: output went back from {have} to {n_out} tokens "
                                   "(speculative decoding or a rollback is not supported with TTI)")
            row = logits[r]
            if slot.applied == n_out:  # the same step again: repeat its decision, do not advance TTI
                if slot.forced >= 0:
                    row.fill_(float("-inf"))
                    row[slot.forced] = 0.0
                continue
            slot.state(slot.out_ids, row)  # in place on the row view
            slot.applied, slot.forced = n_out, slot.state.last_forced
        return logits


def _v2_class():
    """The Model Runner V2 ``LogitsProcessor`` subclass (built once vLLM is importable). UNTESTED."""
    from vllm.v1.worker.gpu.sample.logits_processor import LogitsProcessor

    class T2POTTILogitsProcessor(LogitsProcessor):
        """TTI per request (``SamplingParams.extra_args['t2po_tti']``), on the raw full logits."""

        def __init__(self, vllm_config: Any, req_states: Any = None, *args: Any) -> None:
            self.req_states = req_states if hasattr(req_states, "prompt_len") else None
            self.table = TTISlotTable()
            self._prompt_lens: dict[int, int] = {}

        @classmethod
        def validate_params(cls, sampling_params: Any) -> None:
            key = (getattr(sampling_params, "extra_args", None) or {}).get(EXTRA_KEY)
            if key is not None and not isinstance(key, str):
                raise ValueError(f"extra_args[{EXTRA_KEY!r}] must be a str key, got {type(key).__name__}")

        def is_argmax_invariant(self) -> bool:
            return False  # it forces tokens

        def add_request(self, req_idx: int, sampling_params: Any) -> bool:
            return self.table.add_request(req_idx, getattr(sampling_params, "extra_args", None))

        def _prompt_len(self, slot: int) -> int:
            return int(self.req_states.prompt_len.np[slot])

        def _fetch(self, slot: int, start: int, stop: int) -> list[int]:
            p = self._prompt_len(slot)
            ids = self.req_states.all_token_ids
            t = getattr(ids, "gpu", None)
            t = t if t is not None else getattr(ids, "cpu")
            return [int(x) for x in t[slot, p + start : p + stop].tolist()]

        def apply(self, logits: Any, ctx: Any) -> Any:
            slots = [int(s) for s in ctx.idx_mapping_np]
            if not self.table.active_in(slots):
                return logits  # no TTI request in this batch: no device sync
            if self.req_states is None:
                raise RuntimeError("this vLLM passes no req_states to logits processors: T2PO's TTI processor "
                                   "targets the interface of the pinned range (pip install 't2po-gym[vllm]')")
            lens = [int(x) for x in ctx.seq_lens_upper_bound_np]
            prompts = [self._prompt_len(s) for s in slots]
            return self.table.apply(logits, slots, lens, prompts, ctx.input_ids, fetch=self._fetch)

    return T2POTTILogitsProcessor


def _use_v1_interface() -> bool:
    return os.environ.get("VLLM_USE_V2_MODEL_RUNNER", "1").strip().lower() in ("0", "false")


def __getattr__(name: str) -> Any:
    """``T2POTTILogitsProcessor`` for vLLM's entry-point loader: the class of the running model runner."""
    if name == "T2POTTILogitsProcessor":
        return _adapter_class() if _use_v1_interface() else _v2_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load_weights_on_worker(worker: Any, items: list) -> int:
    """Runs on the engine's (in-process) worker through ``LLM.collective_rpc``: load HF-named tensors."""
    model = worker.model_runner.model
    model.load_weights(weights=iter(items))
    return len(items)


class SyncedVLLMPolicy:
    """A :class:`VLLMPolicy` that reloads the trainer's weights when they changed. UNTESTED HERE.

    Checks the parameters' in-place version counters (bumped by ``optimizer.step``) before each
    ``generate``; when they moved, calls :meth:`VLLMPolicy.sync_weights`. With ``sleep_between``
    the engine sleeps after each rollout so the update has the GPU memory.

    >>> trainer.base_policy = SyncedVLLMPolicy(VLLMPolicy(path, colocate=True), trainer.model)  # doctest: +SKIP
    >>> trainer.policy = wrap_policy(trainer.base_policy, trainer.cfg)                        # doctest: +SKIP
    """

    def __init__(self, engine: VLLMPolicy, module: Any, *, sleep_between: bool = False):
        self.engine = engine
        self.module = module
        self.sleep_between = bool(sleep_between)
        self._version: int | None = None
        self.syncs = 0

    def _current_version(self) -> int:
        return sum(int(p._version) for p in self.module.parameters())

    def generate(self, prompts: Sequence[str], sampling: SamplingConfig | None = None, **kw: Any) -> list[Generation]:
        v = self._current_version()
        if v != self._version:
            self.engine.sync_weights(self.module)
            self._version, self.syncs = v, self.syncs + 1
        elif self.engine.sleeping:
            self.engine.wake_up()
        try:
            return self.engine.generate(prompts, sampling, **kw)
        finally:
            if self.sleep_between:
                self.engine.sleep(level=1)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def _adapter_class():
    """The V1 ``AdapterLogitsProcessor`` subclass (built once vLLM is importable). UNTESTED."""
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
    - ``interface``: ``"v2"`` (Model Runner V2 processor, default) or ``"v1"`` (the V1
      ``AdapterLogitsProcessor``; sets ``VLLM_USE_V2_MODEL_RUNNER=0``).
    - ``chat_template``, ``system_prompt``, ``chat_template_kwargs``, ``assistant_prefill``: the
      prompt side, as in :class:`~t2po_gym.policies.hf.HFPolicy` (one shared
      :class:`~t2po_gym.policies.chat.ChatFormat`); what the template opened (e.g. ``<think>``)
      heads ``Generation.text`` and is kept in ``Generation.prefix``.
    - ``colocate``: one engine per torch.distributed rank inside the trainer's processes
      (``distributed_executor_backend="external_launcher"``, ``enable_sleep_mode=True``, the seed
      offset by the rank); see :meth:`sleep`, :meth:`wake_up`, :meth:`sync_weights`.
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
        system_prompt: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        assistant_prefill: str = "",
        interface: str = "v2",
        colocate: bool = False,
        **llm_kwargs: Any,
    ) -> None:
        if interface not in ("v1", "v2"):
            raise ValueError(f"interface={interface!r}: use 'v2' (Model Runner V2) or 'v1'")
        try:
            import vllm  # noqa: F401
        except ImportError as e:
            raise ImportError(VLLM_MISSING) from e
        if signal not in (None, "paper", "reference"):
            raise ValueError(f"unknown signal {signal!r}: use None, 'paper' or 'reference'")
        if in_process:
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        if interface == "v1":
            os.environ["VLLM_USE_V2_MODEL_RUNNER"] = "0"
        from vllm import LLM

        self.signal = signal
        self.top_logprobs = int(top_logprobs)
        self.interface = interface
        self.colocate = bool(colocate)
        if colocate:
            # verl/TRL's colocation: vLLM joins the trainer's torch.distributed job (one engine per
            # rank, tensor parallel 1) and can hand its GPU memory back while the trainer updates.
            llm_kwargs.setdefault("distributed_executor_backend", "external_launcher")
            llm_kwargs.setdefault("enable_sleep_mode", True)
            llm_kwargs.setdefault("tensor_parallel_size", 1)
            rank = int(os.environ.get("RANK", "0"))
            llm_kwargs["seed"] = int(llm_kwargs.get("seed", 0)) + rank
        proc = _v2_class() if interface == "v2" else _adapter_class()
        self.llm = LLM(model=model, logits_processors=[proc], **llm_kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        self.use_chat_template = has_template if chat_template is None else chat_template
        # the same prompt side as HFPolicy / OpenAIPolicy (t2po_gym/policies/chat.py)
        self.chat = ChatFormat(self.tokenizer, bool(self.use_chat_template), system_prompt,
                               dict(chat_template_kwargs or {}), assistant_prefill)
        self.vocab_size = len(self.tokenizer)
        self.sleeping = False

    # ------------------------------------------------------------ colocation
    def sleep(self, level: int = 1) -> None:
        """Free the engine's GPU memory for the trainer (level 1: weights to CPU, KV cache dropped;
        level 2: weights dropped too, for engines whose weights :meth:`sync_weights` replaces)."""
        if not self.sleeping:
            self.llm.sleep(level=level)
            self.sleeping = True

    def wake_up(self, tags: Sequence[str] | None = None) -> None:
        """Take the memory back (``tags``: ``["weights"]`` first, ``["kv_cache"]`` after a weight sync)."""
        self.llm.wake_up(tags=list(tags) if tags is not None else None)
        if tags is None or "kv_cache" in tags:
            self.sleeping = False

    def sync_weights(self, weights: Any) -> int:
        """Load the trainer's weights into the engine; returns the number of tensors sent.

        ``weights``: an ``nn.Module`` (its ``state_dict``; FSDP2 DTensors are gathered with
        ``full_tensor()``, a collective every rank must join) or an iterable of ``(name, tensor)``.
        Names are Hugging Face's; vLLM's ``load_weights`` maps them onto its fused layers.
        The prefix cache is reset, since cached KV blocks came from the old weights.
        """
        if hasattr(weights, "state_dict"):
            items = []
            for name, t in weights.state_dict().items():
                if hasattr(t, "full_tensor"):
                    t = t.full_tensor()
                items.append((name.removeprefix("module.").removeprefix("_orig_mod."), t.detach()))
        else:
            items = [(n, t.detach()) for n, t in weights]
        if self.sleeping:
            self.wake_up(tags=["weights"])
        self.llm.collective_rpc(_load_weights_on_worker, args=(items,))
        self.llm.reset_prefix_cache()
        if self.sleeping:
            self.wake_up(tags=["kv_cache"])
        return len(items)

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def render_prompt(self, prompt: str) -> str:
        """The text the model is conditioned on (chat template and prefill applied when in use)."""
        return self.chat.render(prompt)[0]

    def response_prefix(self, prompt: str) -> str:
        """The head of the response already in the prompt (template-opened ``<think>``, prefill)."""
        return self.chat.render(prompt)[1]

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
        rendered = [self.chat.render(p) for p in prompts]
        texts = [r[0] for r in rendered]
        prefixes = [r[1] for r in rendered]
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
                    inside=ThinkState.for_prompt(text, prefixes[i]).inside,
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
        return [
            self._record(o.outputs[0], st, want_signal, kind, forced, pre, list(getattr(o, "prompt_token_ids", None) or []))
            for o, st, pre in zip(outs, states, prefixes)
        ]

    def _record(
        self, c: Any, state: TTILogitsState | None, want_signal: bool, kind, forced, prefix: str = "",
        prompt_ids: list[int] | None = None,
    ) -> Generation:
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
            text=prefix + c.text,
            prefix=prefix,
            prompt_ids=list(prompt_ids or []),
            token_ids=ids,
            logprobs=lps,
            signal=sig,
            forced_mask=fmask,
            think_tokens=state.think_tokens if here else 0,
            intervened=fired_at >= 0,
            intervention_position=fired_at,
            finish_reason=finish,
        )
