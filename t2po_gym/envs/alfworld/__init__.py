"""ALFWorld: native engine, offline game generator, expert, TextWorld reference engine, env."""

from t2po_gym.envs.alfworld.env import ALFWorldEnv

__all__ = ["ALFWorldEnv"]
