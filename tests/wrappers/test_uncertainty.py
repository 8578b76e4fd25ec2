"""The uncertainty signals against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from t2po_gym.uncertainty import (  # noqa: E402
    SignalTracker,
    entropy,
    minmax_normalise,
    paper_signal,
    reference_signal,
    numpy_token_stats,
    token_stats,
    topj_confidence,
    topk_token_stats,
)

LN2 = math.log(2)
P = torch.tensor([[0.5, 0.25, 0.125, 0.125]]).log()
U = torch.full((1, 4), 0.25).log()


def test_entropy_and_confidence_by_hand():
    assert entropy(P).item() == pytest.approx(1.75 * LN2)
    assert entropy(U).item() == pytest.approx(2 * LN2)
    # C = -(1/j) sum of the top-j log-probs: j=2 -> (ln 2 + 2 ln 2) / 2
    assert topj_confidence(P, 2).item() == pytest.approx(1.5 * LN2)
    assert topj_confidence(U, 20).item() == pytest.approx(2 * LN2)  # j clipped to |V|
    # a masked (p = 0) token adds nothing to H
    masked = torch.tensor([[0.5, 0.5, 0.0]]).log()
    assert entropy(masked).item() == pytest.approx(LN2)


def test_reference_signal_by_hand():
    # s = 0.6 * ln 0.5 + 0.4 * (1 - 1.75 ln2 / ln 4)
    want = 0.6 * math.log(0.5) + 0.4 * (1 - 1.75 / 2)
    assert reference_signal(P).item() == pytest.approx(want)
    assert reference_signal(U).item() == pytest.approx(0.6 * math.log(0.25))


def test_running_minmax_and_paper_signal_by_hand():
    x = np.array([1.0, 3.0, 2.0])
    lo, hi = np.minimum.accumulate(x), np.maximum.accumulate(x)
    assert minmax_normalise(x, lo, hi).tolist() == [0.0, 1.0, 0.5]
    # three steps: uniform, peaked (P), uniform again
    lp = torch.cat([U, P, U])
    m = paper_signal(lp).tolist()
    # t=1: range closed -> H~ = C~ = 0 -> M = 0.6
    # t=2: H drops to its min, C (j=20 -> 4): (ln2 + 2ln2 + 3ln2 + 3ln2)/4 = 2.25 ln2 > 2 ln2 -> C~ = 1 -> M = 0
    # t=3: H back to max -> H~ = 1; C = 2 ln2 is the min -> C~ = 0 -> M = 0.4 + 0.6 = 1
    assert m == pytest.approx([0.6, 0.0, 1.0])


def test_online_tracker_matches_offline_signal():
    g = torch.Generator().manual_seed(0)
    lp = torch.log_softmax(torch.randn(2, 30, 50, generator=g) * 3, -1)
    for kind, offline in (("paper", paper_signal), ("reference", reference_signal)):
        tr = SignalTracker(kind, 2, 50)
        online = []
        for t in range(30):
            h, c, mx = (v.numpy().astype(np.float64) for v in token_stats(lp[:, t]))
            online.append(tr.update(h, c, mx))
        online = np.stack(online, 1)
        for b in range(2):
            np.testing.assert_allclose(online[b], offline(lp[b]).numpy(), atol=1e-5)
    assert ((online >= -10) & (online <= 1)).all()


def test_topk_estimate_equals_full_when_k_covers_vocab():
    h, c, mx = topk_token_stats(P.exp().log()[:, [2, 0, 3, 1]])  # unsorted top-k
    assert h.item() == pytest.approx(1.75 * LN2)
    assert c.item() == pytest.approx(2.25 * LN2)
    assert mx.item() == pytest.approx(math.log(0.5))
    # with only the top-2, H is the entropy of (2/3, 1/3)
    h2, _, _ = topk_token_stats(P[:, :2])
    assert h2.item() == pytest.approx(-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3))


def test_numpy_stats_equal_torch_stats_and_skip_masked_tokens():
    g = torch.Generator().manual_seed(1)
    lp = torch.log_softmax(torch.randn(3, 70, generator=g) * 4, -1)
    want = torch.stack(token_stats(lp)).double().numpy()
    np.testing.assert_allclose(numpy_token_stats(lp.numpy()), want, rtol=1e-6, atol=1e-6)
    masked = lp.clone()
    masked[1, :30] = float("-inf")  # masked tokens contribute 0 to H, and fall out of the top-j
    masked = torch.log_softmax(masked, -1)
    got = numpy_token_stats(masked.numpy())
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], torch.special.entr(masked.exp()).sum(-1).double().numpy(), rtol=1e-5)


def test_unknown_signal_kind():
    with pytest.raises(ValueError, match="paper"):
        SignalTracker("vibes", 1, 10)


@pytest.mark.parametrize("kind", ["paper", "reference"])
def test_compiled_tracker_equals_numpy_tracker(kind):
    from t2po_gym import _fused

    if _fused.kernels() is None:
        pytest.skip("numba is not installed")
    g = torch.Generator().manual_seed(2)
    fast, slow = SignalTracker(kind, 4, 300, fused=True), SignalTracker(kind, 4, 300, fused=False)
    assert fast.fused and not slow.fused
    for t in range(40):
        lp = torch.log_softmax(torch.randn(4, 300, generator=g) * (1 + t % 6), -1)
        if t % 7 == 3:  # masked tokens (p = 0) add nothing and fall out of the top-j
            lp[t % 4, : 120] = float("-inf")
            lp = torch.log_softmax(lp, -1)
        np.testing.assert_allclose(fast.update_from_logprobs(lp), slow.update_from_logprobs(lp), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fast.lo, slow.lo, rtol=1e-6)
    np.testing.assert_allclose(fast.hi, slow.hi, rtol=1e-6)


def test_tracker_without_numba_uses_numpy(monkeypatch):
    from t2po_gym import _fused

    monkeypatch.setattr(_fused, "kernels", lambda: None)
    tr = SignalTracker("paper", 1, 4)
    assert not tr.fused
    assert tr.update_from_logprobs(U).tolist() == pytest.approx([0.6])
