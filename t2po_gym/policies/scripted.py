"""A stand-in causal LM whose next-token logits follow a script: drives TTI/TDS tests exactly."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

__all__ = ["ScriptedLM"]


class ScriptedLM:
    """A stand-in for a ``transformers`` causal LM whose next-token logits follow a script.

    ``script(row, step) -> (token_id, sharpness)``: at decode step ``step`` (0 = the
    logits after the prompt) row ``row`` puts logit ``sharpness`` on ``token_id`` and 0
    elsewhere. With greedy decoding the model emits ``token_id``; ``sharpness`` sets
    the entropy, so the test controls the uncertainty signal exactly.
    """

    def __init__(self, script: Callable[[int, int], tuple[int, float]], vocab_size: int, max_positions: int = 4096):
        import torch

        self.script = script
        self.config = SimpleNamespace(vocab_size=vocab_size, max_position_embeddings=max_positions)
        self.generation_config = None
        self._param = torch.nn.Parameter(torch.zeros(1))
        self.step = 0

    def parameters(self):
        return iter([self._param])

    def eval(self):
        return self

    def to(self, *a, **k):
        return self

    def logits_for(self, rows: int, step: int):
        import torch

        out = torch.zeros(rows, self.config.vocab_size)
        for r in range(rows):
            tok, sharp = self.script(r, step)
            out[r, tok] = sharp
        return out

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, use_cache=True, logits_to_keep=0, **kw):
        if kw.get("past_key_values") is None and kw.get("cache") is None:
            self.step = 0
        else:
            self.step += 1
        logits = self.logits_for(input_ids.shape[0], self.step)[:, None, :]
        return SimpleNamespace(logits=logits, past_key_values=("cache", self.step), cache=None)

    __call__ = forward
