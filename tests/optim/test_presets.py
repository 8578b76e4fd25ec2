"""Presets per (algorithm, env) against the released scripts, and docs/presets.md against the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from optim.config import ALGO_ENV_PRESETS, ALGOS, ENV_PRESETS, ENVS, NOT_FOLLOWED, preset, preset_values
from optim.presets_table import DOC_PATH, render

MIRROR = Path("/work/.mirror/WillDreamer+T2PO-ICML/repo")


def test_docs_table_is_generated_from_the_presets():
    """Fails when a preset changes and docs/presets.md does not: run
    ``python -m optim.presets_table --write``."""
    assert DOC_PATH.read_text() == render()


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("algo", ALGOS)
def test_every_preset_value_reaches_the_config(algo, env):
    cfg = preset(algo, env=env)
    for name, pv in preset_values(algo, env).items():
        assert getattr(cfg, name) == pv.value, name
    # the demo's own additions stay off in every preset
    assert (cfg.negative_advantage_scale, cfg.clip_invalid_advantages, cfg.center_turns) == (1.0, False, False)
    assert cfg.advantage_variant == "released" and cfg.format_penalty == 0.0 and cfg.dual_clip_c == 3.0
    assert cfg.tti == cfg.tds == cfg.eval_tti == (algo == "t2po")
    if algo == "t2po":
        assert cfg.tti_kwargs["mode"] == cfg.tds_kwargs["mode"] == "released"


def test_released_values_by_env():
    """The values the issue lists, one by one (train_{alfworld,webshop,search}.sh)."""
    alf, shop, search = (preset("t2po", env=e) for e in ENVS)
    assert (alf.n_tasks, alf.group_size, alf.max_new_tokens, alf.kl_coef, alf.entropy_coef) == (16, 8, 500, 0.01, 0.001)
    assert (shop.n_tasks, shop.max_new_tokens, shop.kl_coef, shop.norm_mode, shop.reward_from_won) == (16, 300, 0.0, "mean_norm", True)
    assert (search.n_tasks, search.group_size, search.kl_coef, search.entropy_coef, search.anchor_similarity) == (256, 5, 0.0, 0.0, 0.9)
    assert alf.reward_scale == 10.0 and alf.norm_mode == search.norm_mode == "mean_std_norm"
    assert (alf.eval_temperature, alf.eval_top_p, alf.eval_top_k) == (0.6, 0.95, 20) and search.eval_temperature == 0.0
    assert alf.tti_kwargs["max_think_tokens"] == 450 and search.tti_kwargs["max_think_tokens"] is None


def test_env_inference_overrides_and_errors():
    assert preset("gigpo").n_tasks == 16  # env_id defaults to ALFWorld
    assert preset("gigpo", env_id="T2PO/WebShop-v0").norm_mode == "mean_norm"
    assert preset("gigpo", env="webshop").env_id == "T2PO/WebShop-v0"
    toy = preset("gigpo", env_id="Other/Env-v0")  # unknown env: bare dataclass defaults
    assert toy.n_tasks == 8 and toy.max_new_tokens == 64
    assert preset("t2po", env="alfworld", n_tasks=2, lr=3e-4).n_tasks == 2
    with pytest.raises(ValueError, match="unknown env"):
        preset("t2po", env="atari")
    with pytest.raises(ValueError, match="advantage_variant"):
        preset("t2po", advantage_variant="episode")
    with pytest.raises(ValueError, match="dual_clip_c"):
        preset("t2po", dual_clip_c=1.0)


def _mirror_lines(path: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(MIRROR), "show", f"HEAD:{path}"], capture_output=True, text=True)
    assert out.returncode == 0, f"{path} is not in the released repository"
    return out.stdout.splitlines()


def _cited(source: str) -> tuple[str, list[int]]:
    path, _, rest = source.partition(":L")
    nums: list[int] = []
    for part in rest.replace("L", "").split(","):
        if "-" in part:
            a, b = part.split("-")
            nums.extend(range(int(a), int(b) + 1))
        elif part.strip():
            nums.append(int(part))
    return path, nums


# numbers that are not written on the cited line (derived: 2 x 128, -1 -> 0, off -> 0, ...)
_DERIVED = {"eval_episodes", "top_k", "eval_top_k", "kl_coef", "format_penalty", "reward_from_won", "lr",
            "advantage_variant", "env_kwargs", "eval_temperature", "eval_top_p", "tti", "tds", "tti_kwargs",
            "tds_kwargs", "eval_tti", "norm_mode", "anchor_similarity"}


@pytest.mark.skipif(not MIRROR.exists(), reason="the released repository is not mirrored on this machine")
def test_cited_lines_exist_and_hold_the_value():
    """Every ``path:Lnn`` cited exists in WillDreamer/T2PO-ICML, and a plain number is written
    on one of its cited lines (kl 0.01 on L71-74, train_data_size=16 on L25, ...)."""
    number = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")
    tables = list(ENV_PRESETS.items()) + [(env, v) for (_, env), v in ALGO_ENV_PRESETS.items()]
    for env, values in tables:
        for name, pv in values.items():
            path, nums = _cited(pv.source.split(" ")[0])
            lines = _mirror_lines(path)
            assert nums and all(1 <= n <= len(lines) for n in nums), (env, name, pv.source)
            if name in _DERIVED or isinstance(pv.value, bool) or not isinstance(pv.value, (int, float)):
                continue
            found = {float(x) for n in nums for x in number.findall(lines[n - 1])}
            assert float(pv.value) in found, (env, name, pv.source, [lines[n - 1] for n in nums])
    for _, _, _, source, _ in NOT_FOLLOWED:
        path, nums = _cited(source)
        if nums:
            assert all(1 <= n <= len(_mirror_lines(path)) for n in nums), source


def test_trainer_evaluates_with_the_eval_settings(tmp_path, monkeypatch):
    """Trainer.evaluate passes eval_temperature / top-p / top-k and wraps TTI when eval_tti."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from optim_toy import ToyPolicyModel, toy_config

    import optim.trainer as trainer_mod
    from t2po_gym.wrappers.tti import ThinkingIntervention

    seen = {}
    monkeypatch.setattr(trainer_mod, "evaluate", lambda pm, env_id, **kw: seen.update(kw) or {"eval/success": 0.0})
    cfg = toy_config(tmp_path, "gigpo", eval_temperature=0.6, eval_top_p=0.95, eval_top_k=20, eval_tti=True,
                     tti_kwargs={"mode": "released"})
    tr = trainer_mod.Trainer(cfg, model=ToyPolicyModel())
    tr.evaluate()
    assert (seen["temperature"], seen["top_p"], seen["top_k"]) == (0.6, 0.95, 20)
    assert isinstance(seen["policy"], ThinkingIntervention) and seen["policy"].config.mode == "released"
    tr.evaluate(temperature=0.0)
    assert seen["temperature"] == 0.0


def test_one_t2po_step_with_the_released_wrappers(tmp_path, tiny):
    """The ALFWorld T2PO preset (TTI and TDS in released mode) runs a training step on the tiny
    model; the released TTI leaves nothing masked out (the forced </think> is trained on)."""
    import copy

    from optim.models import HFPolicyModel
    from optim.trainer import Trainer

    model, tok = tiny
    cfg = preset("t2po", env="alfworld", n_tasks=1, group_size=2, max_turns=1, max_new_tokens=24, steps=1,
                 out_dir=str(tmp_path), progress=False, tensorboard=False, lr=1e-3,
                 tti_kwargs={"mode": "released", "max_think_tokens": 4})
    tr = Trainer(cfg, model=HFPolicyModel(copy.deepcopy(model), tok))
    rollout = tr.collect(0)
    turns = [t for traj in rollout.trajectories for t in traj.turns]
    assert turns and all(sum(t.forced_mask) == 0 for t in turns)
    m = tr.train_step()
    assert m["losses/updates"] >= 1 and 0.0 <= m["hesitation/tti_fire_rate"] <= 1.0
