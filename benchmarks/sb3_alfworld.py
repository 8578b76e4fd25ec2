"""stable-baselines3 PPO on ALFWorld through ``AdmissibleDiscrete``: success before and after.

An easy split of ``T2PO/ALFWorld-v0`` (``pick_and_place_simple`` games in rooms of at
most 2 receptacles, 20 turns) is wrapped as ``Discrete(K)`` over the admissible commands
with a hashing bag-of-words ``Box`` observation, and trained with SB3's ``PPO`` for a
fixed number of env steps. Two policies, side by side against the random baseline:

* ``MlpPolicy``: SB3's default MLP on the flat observation (a policy that knows nothing
  of the layout; padded actions are no-ops with a penalty);
* ``SlotPolicy`` (defined here): the same PPO with a candidate-scoring actor, DRRN-style:
  one shared MLP scores each candidate from (state * command, command, similarities), so
  the logit of slot ``k`` depends on what command ``k`` is, and padded slots are masked
  from the mask the wrapper puts in the observation.

Success is measured on held-out games (other seeds) before training (the untrained
policy, sampled) and after (sampled), plus a uniform random policy over the admissible
commands. Prints a table and a last JSON line (the SlotPolicy figures).

    python benchmarks/sb3_alfworld.py           # 120k steps per policy (about 5 min on 2 cores)
    python benchmarks/sb3_alfworld.py --quick   # 50k steps, SlotPolicy only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402
from stable_baselines3.common.policies import ActorCriticPolicy  # noqa: E402
from torch import nn  # noqa: E402

import t2po_gym  # noqa: E402,F401
from t2po_gym.wrappers import AdmissibleDiscrete  # noqa: E402
from t2po_gym.wrappers.encoders import HashingEncoder  # noqa: E402

K, DIM = 20, 64
EASY = dict(task_types=["pick_and_place_simple"], max_receptacles=2, max_turns=20)


def make_env() -> AdmissibleDiscrete:
    inner = gym.make("T2PO/ALFWorld-v0", observation_mode="raw", **EASY)
    return AdmissibleDiscrete(inner, max_actions=K, encoder=HashingEncoder(DIM))


class _SlotNetwork(nn.Module):
    """Actor: one score per candidate slot (shared weights); critic: an MLP on the flat obs."""

    def __init__(self, obs_dim: int, k: int, d: int, hidden: int = 64):
        super().__init__()
        self.k, self.d = k, d
        self.latent_dim_pi, self.latent_dim_vf = k, hidden
        self.scorer = nn.Sequential(nn.Linear(2 * d + 2, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())

    def forward_actor(self, obs: torch.Tensor) -> torch.Tensor:
        k, d = self.k, self.d
        state = obs[:, :d]
        acts = obs[:, d : d + k * d].reshape(-1, k, d)
        sim_t = obs[:, d + k * d : d + k * d + k]
        sim_o = obs[:, d + k * d + k : d + k * d + 2 * k]
        mask = obs[:, -k:]
        x = torch.cat([acts * state[:, None, :], acts, sim_t[..., None], sim_o[..., None]], dim=-1)
        scores = self.scorer(x).squeeze(-1)
        return scores + (mask - 1.0) * 1e4  # padded slots: probability ~0

    def forward_critic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic(obs)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.forward_actor(obs), self.forward_critic(obs)


class SlotPolicy(ActorCriticPolicy):
    """SB3 actor-critic whose logits are the per-slot scores of :class:`_SlotNetwork`."""

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = _SlotNetwork(int(self.features_dim), K, DIM)

    def _build(self, lr_schedule) -> None:
        super()._build(lr_schedule)
        self.action_net = nn.Identity()  # the scores are the logits
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


def success(policy, episodes: int, seed0: int) -> float:
    env = make_env()
    wins = 0
    for ep in range(episodes):
        obs, info = env.reset(seed=seed0 + ep)
        done = False
        while not done:
            obs, _, term, trunc, info = env.step(policy(obs, info))
            done = term or trunc
        wins += bool(info["won"])
    env.close()
    return wins / episodes


def run(policy_cls, steps: int, episodes: int, seed: int) -> dict:
    venv = make_vec_env(make_env, n_envs=8, seed=seed)
    model = PPO(policy_cls, venv, n_steps=64, batch_size=256, n_epochs=10, learning_rate=3e-3,
                ent_coef=0.01, gamma=0.98, seed=seed, device="cpu", verbose=0)

    def act(obs, info):
        return int(model.predict(obs, deterministic=False)[0])

    before = success(act, episodes, seed0=100_000)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    after = success(act, episodes, seed0=100_000)
    venv.close()
    return {"success_before": before, "success_after": after, "steps": int(model.num_timesteps), "wall_s": wall}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k steps, SlotPolicy only")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--episodes", type=int, default=200, help="held-out evaluation episodes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    steps = args.steps or (50_000 if args.quick else 120_000)
    rng = np.random.default_rng(args.seed)
    rand = success(lambda o, i: int(rng.integers(int(i["action_mask"].sum()))), args.episodes, seed0=100_000)
    rows = {}
    policies = [("SlotPolicy", SlotPolicy)] + ([] if args.quick else [("MlpPolicy", "MlpPolicy")])
    for name, cls in policies:
        rows[name] = run(cls, steps, args.episodes, args.seed)
    print(f"ALFWorld easy split {EASY}, K={K}, hashing dim {DIM}, {args.episodes} held-out games\n")
    print("| policy | success before | success after | steps | wall s |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| random admissible | {rand:.3f} | | | |")
    for name, r in rows.items():
        print(f"| PPO {name} | {r['success_before']:.3f} | {r['success_after']:.3f} | {r['steps']} | {r['wall_s']:.1f} |")
    out = dict(rows["SlotPolicy"], success_random=rand, policy="SlotPolicy")
    if "MlpPolicy" in rows:
        out["mlp_success_after"] = rows["MlpPolicy"]["success_after"]
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
