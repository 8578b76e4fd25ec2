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
from typing import Any

import torch

__all__ = ["left_pad", "takes_position_ids", "window_forward"]

_NO_KEEP = "_t2po_no_logits_to_keep"


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, position_ids)`` of ``rows``, each ``[B, L]``, left-padded.

    Position ids count from 0 at each row's first real token (padding gets 0).
    """
    if not rows:
        raise ValueError("left_pad needs at least one row")
    L = max(max(len(r) for r in rows), 1)
    ids = torch.full((len(rows), L), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), L), dtype=torch.long)
    for b, r in enumerate(rows):
        if r:
            ids[b, L - len(r):] = torch.tensor(r, dtype=torch.long)
            attn[b, L - len(r):] = 1
    pos = (attn.cumsum(-1) - 1).clamp(min=0)
    return ids, attn, pos


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
