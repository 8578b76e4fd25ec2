"""A toy causal LM, policy and TextEnv for optimizer tests (no transformers needed).

The LM is causal by construction (each position sees its own token, the previous one and
the running mean of the prefix), tiny, and fast; the policy samples from it token by token
and reports exactly what ``HFPolicy`` reports (prompt ids, token ids, per-token log-probs).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any, Sequence

import gymnasium as gym
import torch
from torch import nn

from t2po_gym.policies.base import Generation, SamplingConfig
from t2po_gym.text_env import TextEnv, Transition

SPECIALS = ["<pad>", "<eos>", "<think>", "</think>", "<action>", "</action>"]
CHARS = [chr(i) for i in range(32, 127)] + ["\n"]
VOCAB = SPECIALS + CHARS
INDEX = {s: i for i, s in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    out, i = [], 0
    while i < len(text):
        for sp in SPECIALS[2:]:
            if text.startswith(sp, i):
                out.append(INDEX[sp])
                i += len(sp)
                break
        else:
            out.append(INDEX.get(text[i], INDEX["?"]))
            i += 1
    return out


def decode(ids: Sequence[int]) -> str:
    return "".join(VOCAB[i] for i in ids if i >= 2)


class ToyLM(nn.Module):
    def __init__(self, dim: int = 32, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(len(VOCAB), dim)
        self.w_cur = nn.Linear(dim, dim)
        self.w_prev = nn.Linear(dim, dim)
        self.w_mean = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, len(VOCAB))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.config = SimpleNamespace(hidden_size=dim)

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False):
        e = self.emb(input_ids)
        prev = torch.nn.functional.pad(e[:, :-1], (0, 0, 1, 0))
        counts = torch.arange(1, e.shape[1] + 1, device=e.device).view(1, -1, 1)
        mean = e.cumsum(1) / counts
        h = torch.tanh(self.w_cur(e) + self.w_prev(prev) + self.w_mean(mean))
        return SimpleNamespace(logits=self.head(h), hidden_states=(e, h))


class ToyPolicy:
    def __init__(self, model: ToyLM):
        self.model = model

    @torch.no_grad()
    def generate(self, prompts, sampling: SamplingConfig | None = None, *, episode_ids=None):
        s = sampling or SamplingConfig()
        gen = torch.Generator().manual_seed(s.seed if s.seed is not None else 0)
        outs = []
        for prompt in prompts:
            p_ids = encode(prompt)
            ids, lps = [], []
            stop = INDEX["</action>"]
            reason = "length"
            for _ in range(s.max_new_tokens):
                x = torch.tensor([p_ids + ids])
                logp = torch.log_softmax(self.model(x).logits[0, -1].float(), -1)
                if s.temperature == 0:
                    tok = int(logp.argmax())
                else:
                    tok = int(torch.multinomial((logp / s.temperature).softmax(-1), 1, generator=gen))
                ids.append(tok)
                lps.append(float(logp[tok]))
                if tok == stop:
                    reason = "stop"
                    break
            outs.append(
                Generation(
                    text=decode(ids), token_ids=ids, logprobs=lps, prompt_ids=p_ids,
                    forced_mask=[0] * len(ids), finish_reason=reason,
                )
            )
        return outs


class ToyPolicyModel:
    """The :class:`optim.models.PolicyModel` interface over :class:`ToyLM`."""

    def __init__(self, seed: int = 0):
        self.model = ToyLM(seed=seed)
        self.pad_id = 0
        self.hidden_size = 32

    def make_policy(self):
        return ToyPolicy(self.model)

    def encode_prompt(self, text: str) -> list[int]:
        return encode(text)

    def encode_response(self, text: str) -> list[int]:
        return encode(text)

    def save(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        torch.save(self.model.state_dict(), os.path.join(path, "toy.pt"))

    def load_weights(self, path: str) -> None:
        self.model.load_state_dict(torch.load(os.path.join(path, "toy.pt")))


class DoorEnv(TextEnv):
    """Pick the hinted door among three; reward 1 on the right one, partial credit otherwise.

    Bare commands are accepted (``protocol="strict"``, ``strict_format=False``) so a random toy LM gets varied returns.
    """

    default_max_turns = 3

    def _reset_game(self, seed, options):
        self._door = int(self.np_random.integers(1, 4))
        return f"Hint: door {self._door}.", "open the right door"

    def _admissible_actions(self):
        return [f"open door {k}" for k in (1, 2, 3)]

    def _check_command(self, command: str):
        return None  # every command is played; a wrong one earns partial credit

    def _apply_command(self, command: str) -> Transition:
        if command == f"open door {self._door}":
            return Transition("You win.", reward=1.0, terminated=True, won=True, task_score=1.0)
        # partial credit: share of the target's letters used, so random text gets varied returns
        credit = len(set(command) & set(f"open door {self._door}")) / 10
        return Transition(f"Wrong door. Hint: door {self._door}.", reward=0.1 * credit, task_score=credit)

    def oracle_action(self):
        return f"open door {self._door}"


TOY_ENV_ID = "T2POTest/Door-v0"
if TOY_ENV_ID not in gym.registry:
    gym.register(id=TOY_ENV_ID, entry_point=DoorEnv, kwargs={"observation_mode": "raw", "strict_format": False, "protocol": "strict"})


def toy_config(tmp_path, algo: str = "grpo", **kw: Any):
    from optim.config import preset

    base = dict(
        env_id=TOY_ENV_ID, train_split=None, eval_split=None, n_tasks=2, group_size=2,
        max_new_tokens=12, steps=2, out_dir=str(tmp_path / "run"), progress=False,
        tensorboard=False, checkpoint_every=1, lr=1e-2, minibatch_size=4, microbatch_size=2,
        tti=False, tds=False,
    )
    base.update(kw)
    return preset(algo, **base)
