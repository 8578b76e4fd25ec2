"""Left-padded rows and logits for their last positions only (SFT and the trainer's update).

A turn's prompt is most of its row (on ALFWorld with the released prompt: about 240 of 265
tokens), yet only the response tokens are targets. Rows are therefore left-padded, so that
every response ends at the last column, and the model is asked for logits only at the last
``keep = max response length + 1`` positions (Hugging Face's ``logits_to_keep``), with
``position_ids`` that skip the padding. The vocabulary projection, the softmax and their
backward then run over ``keep`` positions instead of all of them; the log-probs, losses and
gradients equal those of full right-padded logits (``tests/optim/test_sft.py``,
``tests/optim/test_window.py``). ``benchmarks/sft_speed.py`` measures the gain.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import torch

__all__ = ["ResponseWindow", "left_pad", "response_window", "takes_position_ids", "window_forward"]

_NO_KEEP = "_t2po_no_logits_to_keep"


def _pad(rows: list[list[int]], pad_id: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not rows:
        raise ValueError("padding needs at least one row")
    L = max(max(len(r) for r in rows), 1)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), L), dtype=torch.long)
    for b, r in enumerate(rows):
        if r:
            cols = slice(L - len(r), L) if left else slice(0, len(r))
            ids[b, cols] = torch.tensor(r, dtype=torch.long)
            attn[b, cols] = 1
    return ids, attn


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, position_ids)`` of ``rows``, each ``[B, L]``, left-padded.

    Position ids count from 0 at each row's first real token (padding gets 0).
    """
    ids, attn = _pad(rows, pad_id, left=True)
    return ids, attn, (attn.cumsum(-1) - 1).clamp(min=0)


class ResponseWindow(NamedTuple):
    """``prompt + response`` rows laid out for :func:`window_forward`.

    ``input_ids``/``attention_mask`` ``[B, L]``; ``position_ids`` ``[B, L]`` (``None`` for
    right-padded rows); ``keep``: how many last columns get logits; ``start`` ``[B]``: each
    row's first response column within those ``keep`` columns.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor | None
    keep: int
    start: torch.Tensor


def response_window(pairs: list[tuple[list[int], list[int]]], pad_id: int, left: bool = True) -> ResponseWindow:
    """Rows of ``(prompt_ids, response_ids)`` pairs and the columns that need logits.

    ``left``: left-padded rows, every response ending at the last column, ``keep = max
    response length + 1``. ``left=False`` (a model that takes no ``position_ids``, see
    :func:`takes_position_ids`): right-padded rows, and the window is the whole row.
    """
    rows = [list(p) + list(r) for p, r in pairs]
    r_len = torch.tensor([len(r) for _, r in pairs])
    if left:
        ids, attn, pos = left_pad(rows, pad_id)
        keep = min(int(r_len.max()) + 1, ids.shape[1])
        return ResponseWindow(ids, attn, pos, keep, keep - r_len)
    ids, attn = _pad(rows, pad_id, left=False)
    return ResponseWindow(ids, attn, None, ids.shape[1], torch.tensor([len(p) for p, _ in pairs]))


def takes_position_ids(model: torch.nn.Module) -> bool:
    """Whether ``model.forward`` takes ``position_ids`` (or ``**kwargs``, as PEFT and DDP
    wrappers do): left-padded rows need them. Models that do not get right-padded rows."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "position_ids" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def window_forward(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   position_ids: torch.Tensor | None, keep: int, hidden: bool = False) -> Any:
    """The model's output with ``logits`` ``[B, keep, V]`` for the last ``keep`` positions.

    A model whose ``forward`` does not take ``logits_to_keep`` (it raises ``TypeError``, or
    returns every position) computes full logits, which are then cut; the model is marked so
    that the refused call is not tried again. ``position_ids=None`` (right-padded rows, for a
    model that takes none, see :func:`takes_position_ids`) leaves them out. ``hidden``: also return every position's hidden
    states (the PPO critic reads the last prompt token's).
    """
    keep = max(1, min(int(keep), input_ids.shape[1]))
    kw: dict[str, Any] = dict(input_ids=input_ids, attention_mask=attention_mask)
    if position_ids is not None:
        kw["position_ids"] = position_ids
    if hidden:
        kw["output_hidden_states"] = True
    out = None
    try:
        if keep < input_ids.shape[1] and not getattr(model, _NO_KEEP, False):
            try:
                out = model(**kw, logits_to_keep=keep)
            except TypeError as e:
                if "logits_to_keep" not in str(e):
                    raise
                setattr(model, _NO_KEEP, True)
        if out is None:
            out = model(**kw)
    except TypeError as e:
        if "position_ids" in str(e):
            raise TypeError(f"{type(model).__name__}.forward takes no position_ids, which left-padded rows need "
                            f"(every transformers causal LM takes them): {e}") from e
        raise
    if out.logits.shape[1] != keep:
        out.logits = out.logits[:, -keep:]
    return out
