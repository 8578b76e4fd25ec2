"""SFT: response-only logits give the full-logits loss and gradients; length-grouped batches."""

from __future__ import annotations

import copy
import random

import pytest

torch = pytest.importorskip("torch")

from optim.loss import masked_mean  # noqa: E402
from optim.models import HFPolicyModel  # noqa: E402
from optim.sft import SFTExample, _grouped_batches, _response_logprobs, train_sft  # noqa: E402


def _full_logprobs(model, batch, pad_id, device):
    """The right-padded, full-logits layout (models without position_ids)."""
    return _response_logprobs(model, batch, pad_id, device, left=False)


def _batch(seed: int, n: int = 5, vocab: int = 200):
    """Token rows of very different prompt and response lengths (the padding cases)."""
    rng = random.Random(seed)
    return [([rng.randrange(10, vocab) for _ in range(rng.randint(3, 40))],
             [rng.randrange(10, vocab) for _ in range(rng.randint(1, 9))]) for _ in range(n)]


def _loss_and_grads(model, fn, batch, pad_id):
    model.zero_grad(set_to_none=True)
    logp, mask, correct = fn(model, batch, pad_id, "cpu")
    loss = -masked_mean(logp, mask)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    acc = float(masked_mean(correct.float(), mask))
    return float(loss.detach()), grads, float(mask.sum()), acc


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_response_only_logits_equal_full_logits(tiny, seed):
    model, tok = tiny
    model = copy.deepcopy(model).train()
    batch = _batch(seed, vocab=min(len(tok), 200))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    fast_loss, fast_g, fast_n, fast_acc = _loss_and_grads(model, _response_logprobs, batch, pad)
    full_loss, full_g, full_n, full_acc = _loss_and_grads(model, _full_logprobs, batch, pad)
    assert fast_n == full_n == sum(len(r) for _, r in batch)  # every response token is a target, once
    assert fast_loss == pytest.approx(full_loss, rel=1e-5, abs=1e-6)
    assert fast_acc == pytest.approx(full_acc)
    assert fast_g.keys() == full_g.keys()
    for name in full_g:
        assert torch.isfinite(fast_g[name]).all(), name  # left padding never leaks NaN into gradients
        torch.testing.assert_close(fast_g[name], full_g[name], rtol=1e-4, atol=1e-6, msg=name)


class _NoKeepModel(torch.nn.Module):
    """A causal LM whose forward takes neither ``position_ids`` nor ``logits_to_keep``."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.calls: list[int] = []

    def forward(self, input_ids, attention_mask):
        self.calls.append(input_ids.shape[1])
        return self.inner(input_ids=input_ids, attention_mask=attention_mask)


def test_a_model_without_logits_to_keep_trains_on_full_logits(tiny):
    model, tok = tiny
    wrapped = _NoKeepModel(copy.deepcopy(model))
    pm = HFPolicyModel(wrapped, tok)
    pm.set_policy_kwargs(chat_template=False)
    ex = [SFTExample(prompt=f"You are in room {i}.", response="<think>go</think><action>look</action>") for i in range(6)]
    before = {n: p.detach().clone() for n, p in wrapped.named_parameters()}
    m = train_sft(pm, ex, steps=3, batch_size=4, lr=1e-2)
    assert m["sft/steps"] == 3 and len(wrapped.calls) == 3
    assert any(not torch.equal(before[n], p) for n, p in wrapped.named_parameters())


def test_grouped_batches_cover_every_example_once_and_group_lengths():
    rng = random.Random(0)
    ex = [SFTExample(prompt="p" * rng.randint(1, 500), response="r") for _ in range(1003)]
    batches = _grouped_batches(ex, 16, random.Random(1), mega=10)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert all(len(b) == 16 for b in batches[:-1] if len(b) != 1003 % 16) and max(len(b) for b in batches) == 16

    def spread(b):
        lens = [len(ex[i].prompt) for i in b]
        return max(lens) - min(lens)
    grouped = sum(spread(b) for b in batches) / len(batches)
    shuffled = list(range(1003))
    random.Random(1).shuffle(shuffled)
    plain = sum(spread(shuffled[i: i + 16]) for i in range(0, 1003, 16)) / len(range(0, 1003, 16))
    assert grouped < plain / 5  # a grouped batch pads to about its own length
    # the order of the batches is shuffled, not sorted by length
    firsts = [len(ex[b[0]].prompt) for b in batches[:20]]
    assert firsts != sorted(firsts)


def test_group_by_length_trains_and_plain_order_is_unchanged(tiny):
    """group_by_length=False draws the same batches as before the option existed."""
    model, tok = tiny
    ex = [SFTExample(prompt="x " * (3 + 7 * (i % 5)), response="<think>a</think><action>b</action>") for i in range(10)]
    drawn: list[list[str]] = []

    class Recording(HFPolicyModel):
        def encode_prompt(self, prompt):
            drawn.append(prompt)
            return super().encode_prompt(prompt)

    pm = Recording(copy.deepcopy(model), tok)
    pm.set_policy_kwargs(chat_template=False)
    train_sft(pm, ex, steps=2, batch_size=4, seed=3)
    rng = random.Random(3)
    order = list(range(10))
    rng.shuffle(order)
    assert drawn == [ex[i].prompt for i in order[:8]]  # first draws encode in the shuffled order
    pm2 = HFPolicyModel(copy.deepcopy(model), tok)
    pm2.set_policy_kwargs(chat_template=False)
    m = train_sft(pm2, ex, steps=4, batch_size=4, seed=3, group_by_length=True)
    assert m["sft/steps"] == 4 and m["sft/loss"] > 0
