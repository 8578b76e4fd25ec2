"""The trainer's left-padded rows with response-only logits equal right-padded full logits."""

from __future__ import annotations

import copy
import random

import pytest

torch = pytest.importorskip("torch")

from optim.loss import token_logprobs  # noqa: E402
from optim.samples import TurnSample  # noqa: E402
from optim.trainer import _collate, _forward  # noqa: E402
from optim.window import left_pad, takes_position_ids, window_forward  # noqa: E402


def _samples(seed: int, vocab: int, n: int = 6) -> list[TurnSample]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        P, R = rng.randint(2, 30), rng.randint(0 if i == 0 else 1, 8)
        forced = [1 if rng.random() < 0.2 else 0 for _ in range(R)]
        out.append(TurnSample(prompt_ids=[rng.randrange(10, vocab) for _ in range(P)],
                              response_ids=[rng.randrange(10, vocab) for _ in range(R)],
                              old_logprobs=[-rng.random() for _ in range(R)], forced_mask=forced,
                              advantage=rng.uniform(-1, 1)))
    return out


def test_left_pad_positions_and_padding():
    ids, attn, pos = left_pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 0, 0]]
    assert attn.tolist() == [[1, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError):
        left_pad([], 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_collate_layouts_agree_token_for_token(tiny, seed):
    """Per row: the same target tokens, old log-probs, mask and new log-probs, in either layout,
    and the critic reads the same hidden state (the last prompt token's)."""
    model, tok = tiny
    model = copy.deepcopy(model).eval()
    samples = _samples(seed, min(len(tok), 200))
    left = _collate(samples, 0, "cpu", left=True)
    right = _collate(samples, 0, "cpu", left=False)
    assert left["keep"] == max(len(s.response_ids) for s in samples) + 1 < right["keep"]
    with torch.no_grad():
        lo, ro = _forward(model, left, True, False), _forward(model, right, True, False)
    assert lo.logits.shape[1] == left["keep"] and ro.logits.shape[1] == right["keep"]
    lp_left = token_logprobs(lo.logits, left["input_ids"])
    lp_right = token_logprobs(ro.logits, right["input_ids"])
    for b, s in enumerate(samples):
        ml, mr = left["mask"][b].bool(), right["mask"][b].bool()
        sampled = [t for t, f in zip(s.response_ids, s.forced_mask) if not f]
        assert left["input_ids"][b][ml].tolist() == right["input_ids"][b][mr].tolist() == sampled
        assert left["old_logprobs"][b][ml].tolist() == right["old_logprobs"][b][mr].tolist()
        torch.testing.assert_close(lp_left[b][ml], lp_right[b][mr], rtol=1e-4, atol=1e-5)
        hl = lo.hidden_states[-1][b, left["value_index"][b]]
        hr = ro.hidden_states[-1][b, right["value_index"][b]]
        torch.testing.assert_close(hl, hr, rtol=1e-4, atol=1e-5)
        assert right["forward_ids"][b, right["value_index"][b]] == s.prompt_ids[-1]


def test_one_update_is_the_same_in_either_layout(tmp_path, tiny):
    """A GRPO update on the same samples moves the tiny model to the same weights."""
    from optim.config import preset
    from optim.models import HFPolicyModel
    from optim.trainer import Trainer

    model, tok = tiny
    samples = [s for s in _samples(3, min(len(tok), 200), n=8) if s.response_ids]
    weights = []
    for layout in (True, False):
        cfg = preset("grpo", env="alfworld", n_tasks=1, group_size=2, steps=1, out_dir=str(tmp_path / str(layout)),
                     progress=False, tensorboard=False, lr=1e-2, kl_coef=0.0, entropy_coef=0.0,
                     minibatch_size=8, microbatch_size=3, max_update_turns=None)
        tr = Trainer(cfg, model=HFPolicyModel(copy.deepcopy(model), tok))
        assert tr.left_pad  # a transformers model takes position_ids
        tr.left_pad = layout
        tr.update(copy.deepcopy(samples), 0)
        weights.append({n: p.detach().clone() for n, p in tr.model.named_parameters()})
    moved = 0.0
    for n, w in weights[0].items():
        torch.testing.assert_close(w, weights[1][n], rtol=1e-4, atol=2e-5, msg=n)  # Adam steps are ~1e-2
        moved = max(moved, float((w - model.state_dict()[n]).abs().max()) if n in model.state_dict() else 0.0)
    assert moved > 1e-4  # the update did something


class _NoKeep(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, input_ids, attention_mask, position_ids=None, output_hidden_states=False):
        self.calls += 1
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          output_hidden_states=output_hidden_states)


class _NoPositions(torch.nn.Module):
    def forward(self, input_ids, attention_mask):
        raise AssertionError("not called")


def test_window_forward_cuts_full_logits_of_a_model_without_logits_to_keep(tiny):
    model, tok = tiny
    m = _NoKeep(copy.deepcopy(model))
    ids, attn, pos = left_pad([[11, 12, 13, 14], [15, 16]], 0)
    for _ in range(2):
        out = window_forward(m, ids, attn, pos, keep=2)
        assert out.logits.shape[:2] == (2, 2)
    full = model(input_ids=ids, attention_mask=attn, position_ids=pos).logits
    torch.testing.assert_close(out.logits, full[:, -2:])
    assert m.calls == 2 and getattr(m, "_t2po_no_logits_to_keep")  # refused once (marked), then full logits
    assert takes_position_ids(m) and takes_position_ids(model) and not takes_position_ids(_NoPositions())
