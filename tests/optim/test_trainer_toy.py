"""The training loop on a toy LM + toy TextEnv: updates, resume equality, NaN guard, checkpoints."""

import json
import math
import os

import pytest
import torch

from optim.checkpoint import latest_checkpoint, list_checkpoints
from optim.sft import collect_expert_examples, train_sft
from optim.trainer import Trainer

from optim_toy import TOY_ENV_ID, ToyPolicyModel, toy_config


def warm_toy(seed=0):
    return ToyPolicyModel(seed)


def test_sft_on_expert_lowers_the_loss():
    pm = ToyPolicyModel(0)
    ex, st = collect_expert_examples(TOY_ENV_ID, 6, split=None, seed=0)
    assert st["expert_success"] == 1.0 and len(ex) == 6
    assert ex[0].response.startswith("<think>") and ex[0].response.endswith("</action>")
    first = train_sft(pm, ex, steps=1, batch_size=6, lr=2e-2, seed=0)
    last = train_sft(pm, ex, steps=40, batch_size=6, lr=2e-2, seed=0)
    assert last["sft/loss"] < 0.7 * first["sft/loss"]


def params(m):
    return torch.cat([p.detach().flatten().clone() for p in m.parameters()])


@pytest.mark.parametrize("algo", ["ppo", "grpo", "gigpo", "t2po"])
def test_one_step_runs_changes_parameters_and_ratio_is_one(tmp_path, algo):
    pm = warm_toy()
    cfg = toy_config(tmp_path, algo, steps=1, group_size=4)
    tr = Trainer(cfg, model=pm)
    before = params(pm.model)
    m = tr.train_step()
    assert m["debug/logprob_diff_max"] < 1e-4
    assert m["losses/updates"] >= 1 and m["losses/skipped_updates"] == 0
    assert not torch.equal(before, params(pm.model))
    assert math.isfinite(m["losses/grad_norm"])
    rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
    assert rows[-1]["step"] == 1 and "charts/success" in rows[-1]


def test_resume_gives_the_same_next_step(tmp_path):
    cfg_a = toy_config(tmp_path / "a", "gigpo", steps=3, checkpoint_every=2, group_size=3)
    a = Trainer(cfg_a, model=warm_toy())
    hist = a.train()
    # a second run stops after 2 steps (checkpoint), a fresh trainer resumes and does step 3
    cfg_b = toy_config(tmp_path / "b", "gigpo", steps=2, checkpoint_every=2, group_size=3)
    Trainer(cfg_b, model=warm_toy()).train()
    cfg_b.steps = 3
    b = Trainer(cfg_b, model=ToyPolicyModel(seed=123))  # other init: the checkpoint must overwrite it
    b.resume()
    assert b.step == 2
    m = b.train_step()
    skip = ("time/", "charts/SPS")
    for k, v in hist[2].items():
        if not k.startswith(skip):
            assert m[k] == pytest.approx(v, rel=1e-6, abs=1e-7), k
    assert torch.equal(params(a.model), params(b.model))


def test_nan_loss_skips_the_update_and_is_logged(tmp_path):
    tr = Trainer(toy_config(tmp_path, "grpo", steps=1, group_size=2), model=warm_toy())
    tr.loss_hook = lambda loss: loss * float("nan")
    before = params(tr.model)
    m = tr.train_step()
    assert m["losses/skipped_updates"] >= 1 and m["losses/updates"] == 0
    assert torch.equal(before, params(tr.model))
    tr.save()  # weights stayed finite, so saving works
    with torch.no_grad():
        next(tr.model.parameters()).fill_(float("nan"))
    with pytest.raises(Exception, match="NaN"):
        tr.save()


def test_cut_off_checkpoint_is_detected_and_previous_used(tmp_path):
    tr = Trainer(toy_config(tmp_path, "grpo", steps=2, checkpoint_every=1), model=warm_toy())
    tr.train()
    ckpts = list_checkpoints(tr.ckpt_dir)
    assert [c.name for c in ckpts] == ["step_00000001", "step_00000002"]
    state = ckpts[-1] / "trainer_state.safetensors"
    data = state.read_bytes()
    state.write_bytes(data[: len(data) // 2])  # cut off mid-write
    with pytest.warns(UserWarning, match="corrupt"):
        assert latest_checkpoint(tr.ckpt_dir) == ckpts[0]
    fresh = Trainer(toy_config(tmp_path, "grpo", steps=2, checkpoint_every=1), model=ToyPolicyModel(5))
    with pytest.warns(UserWarning):
        fresh.resume()
    assert fresh.step == 1
    # a leftover temporary directory of a crashed write is ignored
    os.makedirs(tr.ckpt_dir / ".tmp-step_00000003-1")
    with pytest.warns(UserWarning):
        assert latest_checkpoint(tr.ckpt_dir) == ckpts[0]


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="algo"):
        toy_config(tmp_path, "sac")
    with pytest.raises(ValueError, match="unknown config fields"):
        toy_config(tmp_path, "grpo", learning_rate=1.0)
    with pytest.raises(ValueError, match="group_size"):
        toy_config(tmp_path, "grpo", group_size=1)


@pytest.mark.parametrize("algo", ["grpo", "gigpo", "t2po"])
def test_an_update_moves_logprobs_along_the_advantage(tmp_path, algo):
    """After one update on a rollout, turns with a positive advantage gained log-probability
    and turns with a negative one lost it (the sign of the whole estimator + loss chain)."""
    from optim.loss import token_logprobs
    from optim.trainer import _collate, _forward, build_samples

    pm = warm_toy()
    cfg = toy_config(tmp_path, algo, steps=1, group_size=4, lr=1e-2, max_update_turns=None)
    tr = Trainer(cfg, model=pm)
    samples = [s for s in build_samples(tr.collect(0), cfg) if s.advantage != 0.0]
    assert len({s.advantage > 0 for s in samples}) == 2, "the rollout needs both signs"

    def mean_logprob():
        b = _collate(samples, pm.pad_id, "cpu", tr.left_pad)
        with torch.no_grad():
            lp = token_logprobs(_forward(pm.model, b, False, tr.autocast).logits, b["input_ids"])
        return (lp * b["mask"]).sum(1) / b["mask"].sum(1)

    before = mean_logprob()
    tr.update(samples, 0)
    delta = mean_logprob() - before
    adv = torch.tensor([s.advantage for s in samples])
    assert delta[adv > 0].mean() > 0 > delta[adv < 0].mean()
    assert torch.corrcoef(torch.stack([adv, delta]))[0, 1] > 0.2


def test_evaluate_reset_options_play_every_alfworld_game_once():
    """evaluate(reset_options={"game": "seed"}) plays game k of the split in episode k, so
    episodes 0..n-1 cover n distinct games; without it, seeds pick games at random."""
    import gymnasium as gym

    from optim.trainer import evaluate
    from t2po_gym.policies.base import Generation

    class Recorder:
        def __init__(self):
            self.first = {}

        def generate(self, prompts, sampling=None, *, episode_ids=None):
            for p, e in zip(prompts, episode_ids):
                self.first.setdefault(e, p)
            return [Generation(text="<think>x</think><action>look</action>", token_ids=[1], logprobs=[0.0],
                               prompt_ids=[1]) for _ in prompts]

    kw = {"max_turns": 1}
    rec = Recorder()
    evaluate(ToyPolicyModel(), "T2PO/ALFWorld-v0", split="valid_seen", episodes=6, env_kwargs=kw, batch=3,
             policy=rec, reset_options={"game": "seed"})
    env = gym.make("T2PO/ALFWorld-v0", **kw)
    want = [env.reset(seed=0, options={"split": "valid_seen", "game": k})[0] for k in range(6)]
    got = [rec.first[f"eval{k0}-{i}"] for k0 in (0, 3) for i in range(3)]
    assert got == want and len(set(got)) == 6
