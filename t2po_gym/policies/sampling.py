"""Next-token sampling from logits, the same way ``transformers``' ``generate`` does it.

The order of the warpers (temperature, then top-k, then top-p) and the way each one
masks logits follow ``generate``'s logits warpers, so that with the same seed and the
same random stream :class:`~t2po_gym.policies.hf.HFPolicy` draws the same tokens as
``model.generate(do_sample=True)``.
"""

from __future__ import annotations

__all__ = ["warp_logits", "sample_next"]


def warp_logits(logits, temperature: float, top_k: int, top_p: float):
    """Apply temperature, top-k and top-p to ``logits`` ``[B, V]``; masked entries are -inf.

    - temperature: ``logits / temperature`` (skipped when it is 1).
    - top_k > 0: keep the tokens whose logit is >= the k-th largest.
    - top_p < 1: sort ascending, drop the tokens whose cumulative probability is
      <= 1 - top_p, always keeping the most likely token.
    """
    import torch

    scores = logits
    if temperature != 1.0:
        scores = scores / temperature
    if top_k and top_k > 0:
        k = min(int(top_k), scores.shape[-1])
        kth = torch.topk(scores, k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(scores, descending=False, dim=-1)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cum <= (1 - top_p)
        remove_sorted[..., -1:] = False
        remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)
        scores = scores.masked_fill(remove, float("-inf"))
    return scores


def sample_next(logits, temperature: float, top_k: int, top_p: float, generator=None):
    """Draw one token per row of ``logits`` ``[B, V]`` -> ``[B]`` (greedy when temperature == 0)."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = warp_logits(logits, temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
