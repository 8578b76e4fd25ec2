"""Cold start: behaviour cloning on expert trajectories (and rejection fine-tuning on wins).

The experts of every env (``env.unwrapped.oracle_action()``) give the actions; a short
templated thought goes in front, so every target is in the training format::

    <think> The next step is to go to fridge 1. </think>
    <action> go to fridge 1 </action>

The loss is the token-mean cross-entropy over the response tokens only (the prompt is
context, never a target), i.e. the negative of :func:`optim.loss.token_logprobs` under
:func:`optim.loss.response_mask`.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

import gymnasium as gym
import torch

from optim.loss import masked_mean, response_mask, token_logprobs
from optim.models import PolicyModel
from optim.rollout import Rollout
from optim.window import response_window, takes_position_ids, window_forward

__all__ = ["SFTExample", "THOUGHT_TEMPLATES", "expert_response", "collect_expert_examples", "examples_from_wins", "train_sft"]

#: Short thoughts put before the expert's action; one is drawn per turn.
THOUGHT_TEMPLATES: tuple[str, ...] = (
    "The next step is to {action}.",
    "I should {action} now.",
    "To make progress I will {action}.",
)


@dataclass
class SFTExample:
    """A prompt and the target response (text)."""

    prompt: str
    response: str


def expert_response(
    action: str, rng: random.Random | None = None, tag: str = "action", templates: tuple[str, ...] | None = None
) -> str:
    """The training-format response for an expert command, with a templated thought.

    ``templates`` (default :data:`THOUGHT_TEMPLATES`) are the thoughts to draw from; one
    template makes the target deterministic given the action.
    """
    templates = templates or THOUGHT_TEMPLATES
    template = (rng or random).choice(templates)
    return f"<think>{template.format(action=action)}</think>\n<{tag}>{action}</{tag}>"


def collect_expert_examples(
    env_id: str,
    episodes: int,
    *,
    split: str | None = "train",
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    max_turns: int | None = None,
    noise: float = 0.0,
    invalid_share: float = 0.3,
    expert: Callable[[Any, dict], str | None] | None = None,
    templates: tuple[str, ...] | None = None,
    deadline: float | None = None,
) -> tuple[list[SFTExample], dict[str, float]]:
    """Play ``episodes`` expert episodes (seeds ``seed .. seed+episodes-1``) and record every turn.

    With ``noise > 0`` the played action is, with that probability, not the expert's but a
    random admissible command (or, for a share ``invalid_share`` of those, an inadmissible
    one), while the recorded target is still the expert's command for the state (DART-style
    noise injection). The clone then sees off-expert states and learns how to recover from
    them, including from its own invalid actions. Noisy turns are not recorded.

    ``expert(env, info)`` replaces the env's oracle (e.g. :class:`optim.demo.SearchingExpert`);
    it must answer ``None`` when it has no command. ``templates``: see :func:`expert_response`.
    ``deadline`` (a ``time.perf_counter()`` value): stop after the episode that passes it
    (at least one episode is played).

    Returns:
        ``(examples, stats)``; stats has ``expert_success`` (fraction of the played episodes the
        expert won), ``turns`` (mean turns per episode) and ``episodes`` (episodes played).
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    rng = random.Random(seed)
    examples: list[SFTExample] = []
    wins, turns = 0, 0
    options = {"split": split} if split else {}
    tag = getattr(env.unwrapped, "action_tag", "action")
    played_episodes = 0
    try:
        for k in range(episodes):
            if k > 0 and deadline is not None and time.perf_counter() > deadline:
                break
            obs, info = env.reset(seed=seed + k, options=options)
            done = False
            n = 0
            played: list[str] = []
            if expert is not None and hasattr(expert, "reset"):
                expert.reset(env, info)
            while not done:
                action = expert(env, info) if expert is not None else env.unwrapped.oracle_action()
                if action is None:
                    break
                response = expert_response(action, rng, tag, templates)
                examples.append(SFTExample(obs, response))
                if noise > 0 and rng.random() < noise:
                    admissible = list(info.get("admissible_actions") or [])
                    if rng.random() < invalid_share or not admissible:
                        stale = [a for a in played if a not in admissible]
                        action = rng.choice(stale) if stale else "look around"
                    else:
                        action = rng.choice(admissible)
                    response = expert_response(action, rng, tag, templates)
                played.append(action)
                obs, _, term, trunc, info = env.step(response)
                n += 1
                done = term or trunc or (max_turns is not None and n >= max_turns)
            wins += bool(info.get("won", False))
            turns += n
            played_episodes += 1
    finally:
        env.close()
    n_ep = max(played_episodes, 1)
    return examples, {"expert_success": wins / n_ep, "turns": turns / n_ep, "episodes": float(played_episodes)}


def examples_from_wins(rollout: Rollout, decode: Callable[[list[int]], str] | None = None) -> list[SFTExample]:
    """Rejection fine-tuning data: the turns of won episodes (prompt ids kept as ids)."""
    out = []
    for tr in rollout.trajectories:
        if tr.won:
            for t in tr.turns:
                out.append(SFTExample(prompt=t.prompt_ids, response=t.response_ids))  # type: ignore[arg-type]
    return out


def strip_response_prefix(response: str, prefix: str) -> str:
    """The part of an expert ``response`` the model must write after ``prefix``.

    ``prefix`` is what the rendered prompt already opened of the response (a reasoning
    model's template ending in ``<think>\n``, a prefill: :mod:`t2po_gym.policies.chat`).
    Training on the whole expert text after such a prompt would teach a second ``<think>``.
    The prefix is dropped when the response starts with it, or, whitespace aside, with the
    same tags; a response that contradicts it (e.g. a template that closed an empty thought,
    and an expert that thinks) raises, since no tokens continue that prompt into it.
    """
    if not prefix or response.startswith(prefix):
        return response[len(prefix):]
    head = prefix.strip()
    body = response.lstrip()
    if head and body.startswith(head):
        return body[len(head):].lstrip(" \n")
    raise ValueError(
        f"the prompt opens the response with {prefix!r} but the expert response starts "
        f"{response[:40]!r}: change the chat template settings (e.g. enable_thinking) or the prefill"
    )


def _encode(pm: PolicyModel, ex: SFTExample) -> tuple[list[int], list[int]]:
    p = ex.prompt if isinstance(ex.prompt, list) else pm.encode_prompt(ex.prompt)
    if isinstance(ex.response, list):
        r = ex.response  # token ids from a rollout: already what the model wrote after its prompt
    else:
        text = ex.response
        if isinstance(ex.prompt, str) and hasattr(pm, "response_prefix"):
            text = strip_response_prefix(text, pm.response_prefix(ex.prompt))
        r = pm.encode_response(text)
    return list(p), list(r)


def _grouped_batches(examples: list[SFTExample], batch_size: int, rng: random.Random, mega: int = 50) -> list[list[int]]:
    """One shuffled pass over ``examples``, cut into length-grouped batches (see :func:`train_sft`).

    The length used for grouping is that of the text (or of the token list), so that no
    example has to be encoded before it is drawn.
    """
    idx = list(range(len(examples)))
    rng.shuffle(idx)

    def size(i: int) -> int:
        ex = examples[i]
        return len(ex.prompt) + len(ex.response)

    out: list[list[int]] = []
    for m in range(0, len(idx), batch_size * mega):
        chunk = sorted(idx[m: m + batch_size * mega], key=size)
        batches = [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
        rng.shuffle(batches)
        out += batches
    return out


def _batch_order(n: int, batch_size: int, rng: random.Random, group_by_length: bool = False,
                 examples: list[SFTExample] | None = None) -> Iterator[list[int]]:
    """Endless batches of example indices, as :func:`train_sft` draws them.

    Random batches: shuffled passes over ``range(n)`` laid end to end (a batch may span two
    passes). ``group_by_length``: :func:`_grouped_batches` of ``examples``, pass after pass.
    """
    if group_by_length:
        while True:
            yield from _grouped_batches(examples, batch_size, rng)
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            more = list(range(n))
            rng.shuffle(more)
            order += more
        idx, order = order[:batch_size], order[batch_size:]
        yield idx


def _response_logprobs(model: torch.nn.Module, batch: list[tuple[list[int], list[int]]], pad_id: int, device: str,
                       left: bool = True):
    """Log-probs of the response tokens, from logits at the response positions only (:mod:`optim.window`).

    Returns ``(logp, mask, correct)``, each ``[B, K]`` over the last ``K`` columns of the rows
    (``K = max response length + 1`` when left-padded; the whole row with ``left=False``, the
    right-padded full-logits layout): the log-prob of each token (column 0: none), 1 where
    that token is a response token, and whether the greedy prediction was that token.
    """
    w = response_window(batch, pad_id, left)
    pos = None if w.position_ids is None else w.position_ids.to(device)
    ids = w.input_ids.to(device)
    logits = window_forward(model, ids, w.attention_mask.to(device), pos, w.keep).logits
    target = ids[:, -w.keep:]
    logp = token_logprobs(logits, target)
    mask = response_mask(w.start, torch.tensor([len(r) for _, r in batch]), w.keep).to(logp.device)
    with torch.no_grad():
        correct = torch.nn.functional.pad(logits[:, :-1].argmax(-1), (1, 0)) == target
    return logp, mask, correct


def train_sft(
    pm: PolicyModel,
    examples: Iterable[SFTExample],
    *,
    steps: int = 200,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    max_grad_norm: float = 1.0,
    log: Callable[[int, dict[str, float]], None] | None = None,
    progress: bool = False,
    time_budget_s: float | None = None,
    probe_steps: int = 10,
    progress_postfix: Callable[[], dict[str, str]] | None = None,
    group_by_length: bool = False,
) -> dict[str, float]:
    """Minimise the response-token cross-entropy for ``steps`` AdamW steps.

    The learning rate warms up over 10 steps, then follows a cosine to 0 at the last step.

    Each pass over the examples is shuffled; with ``group_by_length`` every run of 50 batches
    is sorted by text length before it is cut into batches, so a batch pads to about its own
    length instead of the longest of a random draw. This follows Hugging Face's
    ``group_by_length`` (``transformers/trainer_pt_utils.py``, ``get_length_grouped_indices``:
    mega-batches of 50 batches, sorted by length), except that the batches of a mega-batch are
    then shuffled instead of kept in length order with the longest first. On the demo's ALFWorld prompts (156 to
    481 tokens) that halves the time of a step (``benchmarks/sft_speed.py``); the batches differ,
    so the trained model does too. Off by default: the batches then match earlier releases.

    Rows are left-padded and the model is asked for logits only at the last ``max response
    length + 1`` positions (``logits_to_keep``, with ``position_ids`` that skip the padding), so
    the vocabulary projection and softmax never run over prompt tokens; the loss is the same
    as with full right-padded logits (``tests/optim/test_sft.py``). A model whose ``forward``
    takes no ``logits_to_keep`` gets full logits, cut; one that takes no ``position_ids``
    trains on right-padded rows.

    With ``time_budget_s`` (seconds of wall time), the first ``probe_steps`` steps measure
    the speed of this machine as it is now, and the run is resized to the steps that fit
    the budget (the cosine then ends at the new last step, so a short run is a complete
    schedule, not a truncated one); if the machine slows down afterwards, training stops
    at the budget anyway. ``progress_postfix()`` adds fields to the progress line (e.g. the
    job's time left).

    Returns the final metrics: ``sft/loss`` (nats/token), ``sft/token_acc`` (greedy accuracy
    on the batch), ``sft/examples``, ``sft/steps`` (steps run), ``sft/steps_asked``
    (``steps``) and ``sft/s_per_step`` (mean wall seconds per step).
    """
    t_start = time.perf_counter()  # the budget covers encoding too
    examples = list(examples)
    if not examples:
        raise ValueError("no SFT examples: the expert produced no turns (check the env's oracle_action)")
    # Encoded when first drawn: a short (budgeted) run does not pay for encoding thousands
    # of prompts it never trains on. Examples with an empty response are skipped.
    encoded: dict[int, tuple[list[int], list[int]]] = {}

    def draw(idx: list[int]) -> list[tuple[list[int], list[int]]]:
        for i in idx:
            if i not in encoded:
                encoded[i] = _encode(pm, examples[i])
        return [encoded[i] for i in idx if encoded[i][1]]
    rng = random.Random(seed)
    model = pm.model
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    # ``total`` is a list so that the budget can shorten the schedule after the probe.
    total = [steps]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * min(s, total[0]) / max(total[0], 1)))
    )
    model.train()
    last: dict[str, float] = {}
    bar = None
    if progress:
        from optim.metrics import progress_bar

        bar = progress_bar(total=steps, desc="sft", unit="step")
    batches = _batch_order(len(examples), batch_size, rng, group_by_length, examples)
    left = takes_position_ids(model)  # left-padded rows and response-only logits
    t_probe = t_start
    step = 0
    while step < total[0]:
        if time_budget_s is not None and step > 0:
            elapsed = time.perf_counter() - t_start
            if step == 1:
                t_probe = time.perf_counter()  # the first step pays one-off costs: not timed
            elif step == min(probe_steps, steps) and step > 1:
                per_step = (time.perf_counter() - t_probe) / (step - 1)
                fit = step + int(max(time_budget_s - elapsed, 0.0) / max(per_step, 1e-9))
                total[0] = max(step, min(steps, fit))
                if bar is not None:
                    bar.total = total[0]
                if step >= total[0]:
                    break
            if elapsed > time_budget_s:
                break
        batch = draw(next(batches))
        if not batch:
            if len(encoded) == len(examples) and not any(r for _, r in encoded.values()):
                raise ValueError("no SFT examples: every expert response encodes to no tokens")
            continue
        logp, mask, pred_ok = _response_logprobs(model, batch, pm.pad_id, device, left)
        loss = -masked_mean(logp, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
        if math.isfinite(gn) and math.isfinite(float(loss.detach())):
            opt.step()
        sched.step()
        acc = masked_mean(pred_ok.float(), mask)
        last = {"sft/loss": float(loss.detach()), "sft/token_acc": float(acc), "sft/grad_norm": gn, "sft/examples": float(len(examples))}
        step += 1
        if log is not None:
            log(step, last)
        if bar is not None:
            # refresh=False: the bar decides when to draw (rarely, in a log file)
            bar.set_postfix(loss=f"{last['sft/loss']:.3f}", acc=f"{last['sft/token_acc']:.2f}",
                            **(progress_postfix() if progress_postfix else {}), refresh=False)
            bar.update(1)
    if bar is not None:
        bar.close()
    model.eval()
    last["sft/steps"] = float(step)
    last["sft/steps_asked"] = float(steps)
    last["sft/s_per_step"] = (time.perf_counter() - t_start) / max(step, 1)
    return last
