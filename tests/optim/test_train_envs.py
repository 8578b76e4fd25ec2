"""One training step on every registered env with every algorithm, with the tiny HF model."""

import copy

import pytest
import torch

pytest.importorskip("transformers")

from optim.config import preset
from optim.models import HFPolicyModel
from optim.trainer import Trainer

ENVS = {
    "T2PO/ALFWorld-v0": ({}, "train"),
    "T2PO/WebShop-v0": ({"num_products": 200}, None),
    "T2PO/SearchQA-v0": ({"world_passages": 300, "world_questions": 60}, None),
}


@pytest.fixture(scope="module")
def tiny():
    from t2po_gym.policies.tiny import build_tiny_model

    return build_tiny_model(seed=0)


def fresh(tiny):
    model, tok = tiny
    return HFPolicyModel(copy.deepcopy(model), tok)


@pytest.mark.parametrize("env_id", list(ENVS))
@pytest.mark.parametrize("algo", ["ppo", "grpo", "gigpo", "t2po"])
def test_one_step_on_each_env(tmp_path, tiny, env_id, algo):
    env_kwargs, split = ENVS[env_id]
    cfg = preset(
        algo, env_id=env_id, env_kwargs=env_kwargs, train_split=split, n_tasks=1, group_size=2,
        max_turns=1, max_new_tokens=8, steps=1, out_dir=str(tmp_path), progress=False,
        tensorboard=False, entropy_coef=0.01, lr=1e-3,
        # the tiny model thinks for a few tokens only: let TTI fire early
        tti_kwargs={"min_think_tokens": 1, "window": 1, "epsilon": 1.0},
        tds_kwargs={},  # the paper-mode TDS, to match the paper-mode TTI above (same signal)
    )
    pm = fresh(tiny)
    before = [p.detach().clone() for p in pm.model.parameters()]
    tr = Trainer(cfg, model=pm)
    m = tr.train_step()
    # the recomputed log-probs of the sampled tokens equal the rollout's before the update
    assert m["debug/logprob_diff_max"] < 1e-4
    assert m["losses/updates"] >= 1 and m["losses/skipped_updates"] == 0
    assert any(not torch.equal(b, p) for b, p in zip(before, pm.model.parameters()))
    assert m["charts/turns"] == 1.0
    if algo == "t2po":
        assert 0.0 <= m["hesitation/tti_fire_rate"] <= 1.0


def test_lora_step_trains_only_the_adapters(tmp_path):
    pytest.importorskip("peft")
    cfg = preset(
        "grpo", env_id="T2PO/ALFWorld-v0", n_tasks=1, group_size=2, max_turns=1, max_new_tokens=8, steps=1,
        out_dir=str(tmp_path), progress=False, tensorboard=False, entropy_coef=0.01, lr=1e-3, lora_rank=4,
        checkpoint_every=1,
    )
    tr = Trainer(cfg)
    named = dict(tr.model.named_parameters())
    before = {k: p.detach().clone() for k, p in named.items()}
    m = tr.train_step()
    assert m["debug/logprob_diff_max"] < 1e-4
    changed = {k for k, p in named.items() if not torch.equal(before[k], p)}
    assert changed and all("lora_" in k for k in changed)
    assert tr.save().exists()
    # resume: a fresh LoRA run (same base, new adapters) loads the trained adapters
    tr2 = Trainer(cfg)
    tr2.resume()
    assert tr2.step == 1
    for k, p in tr2.model.named_parameters():
        assert torch.equal(p, named[k]), k
