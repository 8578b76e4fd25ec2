"""ALFWorld: native engine, real-game reader, offline game generator, expert, TextWorld reference engine, env."""

from t2po_gym.envs.alfworld.env import ALFWorldEnv, alfworld_data_games
from t2po_gym.envs.alfworld.real_game import GameFileError, UnsupportedGameError, find_alfworld_games, load_game_file

__all__ = [
    "ALFWorldEnv",
    "alfworld_data_games",
    "find_alfworld_games",
    "load_game_file",
    "GameFileError",
    "UnsupportedGameError",
]
