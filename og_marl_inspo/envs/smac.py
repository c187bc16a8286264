"""SMAC v1 (`env_name = "smac_v1"`): OG-MARL's StarCraft wrapper plus the battle outcome.

Behaves as OG-MARL's `og_marl/wrapped_environments/smacv1.py` (og_marl_contract.md
section 2.1): `StarCraft2Env(map_name=scenario, seed=seed)` with smac's defaults, agents
`agent_0..`, float32 legals from `get_avail_agent_actions`, float32 global state, the
team reward copied to every agent, terminals on smac's `terminated` (time limits
included, section 2.3) and truncations always False. On top of that it keeps
`get_stats()` (smac's own dict) and `battle_won`, the outcome of the latest episode,
and its `batch()` reports a per-episode `win_rate` to the trainer (InSPO Table 4).

smac is imported only when a game is built, so this module (and the package) imports
without it. The game is the `smac` package from github oxwhirl/smac, which needs
StarCraft II under SC2PATH; the registry package named `smac` is SMAC3, unrelated.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from og_marl_inspo.envs.base import BatchEnv, Environment

# (N agents, O observation size, A actions, S state size) with smac's default options
# (og_marl_contract.md 6.1 and 6.2).
SMAC_V1_SHAPES: Dict[str, Tuple[int, int, int, int]] = {
    "2s3z": (5, 80, 11, 120),
    "3s_vs_5z": (3, 48, 11, 68),
    "5m_vs_6m": (5, 55, 12, 98),
    "6h_vs_8z": (6, 78, 14, 140),
    "3m": (3, 30, 9, 48),
    "8m": (8, 80, 14, 168),
    "3s5z_vs_3s6z": (8, 136, 15, 230),
}

# Episode limits (smac's map registry) of the InSPO maps.
SMAC_V1_EPISODE_LIMITS: Dict[str, int] = {"2s3z": 120, "3s_vs_5z": 250, "5m_vs_6m": 70,
                                          "6h_vs_8z": 150}

# The (source, scenario) pairs whose vaults are read through this wrapper.
SMAC_V1_SCENARIOS: Dict[str, Tuple[str, ...]] = {
    "cfcql": ("2s3z", "3s_vs_5z", "5m_vs_6m", "6h_vs_8z"),
    "og_marl": ("2s3z", "3m", "3s5z_vs_3s6z", "5m_vs_6m", "8m"),
}

MISSING_SMAC = (
    "smac_v1 needs two things this machine lacks: the `smac` package from github oxwhirl/smac "
    "(pip install git+https://github.com/oxwhirl/smac.git; NOT the registry package named "
    "`smac`, which is SMAC3) and StarCraft II 4.10 with the SMAC maps, found through the "
    "SC2PATH environment variable")


class SMACUnavailableError(ImportError, ValueError):
    """smac (oxwhirl) is not importable; a ValueError too, so the CLI prints one line."""


def smac_v1_environments() -> List[Tuple[str, str, str]]:
    """Every (source, "smac_v1", scenario) routed to `SMACv1`, sorted."""
    return sorted((source, "smac_v1", scenario)
                  for source, scenarios in SMAC_V1_SCENARIOS.items() for scenario in scenarios)


def starcraft2env_class() -> Callable:
    """`smac.env.StarCraft2Env`, or SMACUnavailableError naming both missing pieces."""
    try:
        from smac.env import StarCraft2Env
    except ImportError as err:
        raise SMACUnavailableError(f"{MISSING_SMAC} ({err})") from None
    return StarCraft2Env


class SMACv1(Environment):
    """One StarCraft II game as an OG-MARL wrapper.

    `env_factory(map_name=..., seed=...)` builds the game; it defaults to smac's
    `StarCraft2Env` (tests inject a fake with the same interface).
    """

    def __init__(self, scenario: str, seed: Optional[int] = None,
                 env_factory: Optional[Callable] = None) -> None:
        super().__init__()
        self.scenario = scenario
        self._seed = seed
        self._factory = env_factory if env_factory is not None else starcraft2env_class()
        self._game = self._factory(map_name=scenario, seed=seed)
        self._environment = self._game  # OG-MARL's BaseEnvironment forwards attributes here

        self.agents = [f"agent_{i}" for i in range(self._game.n_agents)]
        self.num_actions = int(self._game.n_actions)
        self.observation_shape = (int(self._game.get_obs_size()),)
        self.state_shape = (int(self._game.get_state_size()),)
        self.episode_limit = int(getattr(self._game, "episode_limit", 0) or 0)
        self.battle_won = False       # outcome of the latest episode (False while it runs)
        self._episode_done = False
        self._legals = np.ones((len(self.agents), self.num_actions), dtype=np.float32)
        self._pool: List["SMACv1"] = []

    # ------------------------------------------------------------------ contract
    def _reset(self):
        self._game.reset()
        self.battle_won = False
        self._episode_done = False
        return self._observe()

    def _step(self, joint_action: np.ndarray):
        joint = [int(a) for a in np.asarray(joint_action).reshape(-1)]
        if len(joint) != len(self.agents):
            raise ValueError(f"expected {len(self.agents)} actions, got {len(joint)}")
        if self._episode_done:
            raise ValueError("the episode has ended; call reset() first")
        for i, action in enumerate(joint):  # the game asserts on these; refuse first
            if not 0 <= action < self.num_actions or self._legals[i, action] == 0:
                raise ValueError(f"{self.agents[i]} chose illegal action {action}")
        reward, terminated, info = self._game.step(joint)
        if terminated:
            self._episode_done = True
            self.battle_won = bool((info or {}).get("battle_won", False))
        obs, legals, state = self._observe()
        return obs, legals, state, np.float32(reward), bool(terminated)

    def _legals_now(self) -> np.ndarray:
        return self._legals

    def get_stats(self) -> Dict[str, float]:
        """smac's own statistics (battles_won, battles_game, win_rate, ...)."""
        return dict(self._game.get_stats())

    def copy(self, seed: int) -> "SMACv1":
        return SMACv1(self.scenario, seed, env_factory=self._factory)

    # ours: evaluation runs at most this many StarCraft II games at once (one process
    # each); the trainer plays the remaining episodes in further chunks.
    max_parallel_episodes = 8

    def batch(self, num_envs: int, seed: int) -> "SMACBatchEnv":
        """`num_envs` games for evaluation, reporting each episode's win.

        Each game runs its own StarCraft II process, so the games are kept and reused
        by later evaluations of this wrapper (seeded `seed, seed + 1, ...` when first
        built) instead of launching new processes every time; `close()` ends them.
        """
        while len(self._pool) < num_envs:
            self._pool.append(self.copy(seed + len(self._pool)))
        return SMACBatchEnv(self._pool[:num_envs])

    def close(self) -> None:
        for env in self._pool:
            env.close()
        self._pool = []
        close = getattr(self._game, "close", None)
        if callable(close):
            close()

    # ----------------------------------------------------------------- helpers
    def _observe(self):
        game = self._game
        obs = np.asarray(game.get_obs(), dtype=np.float32).reshape(
            len(self.agents), *self.observation_shape)
        self._legals = np.stack([np.asarray(game.get_avail_agent_actions(i), dtype=np.float32)
                                 for i in range(len(self.agents))])
        state = np.asarray(game.get_state(), dtype=np.float32).reshape(self.state_shape)
        return obs, self._legals.copy(), state


class SMACBatchEnv(BatchEnv):
    """SMAC games in lockstep; `stats()` gives each episode's win as `win_rate` (1.0/0.0)."""

    def stats(self) -> Dict[str, np.ndarray]:
        return {"win_rate": np.array([1.0 if env.battle_won else 0.0 for env in self.envs])}


def make_smac_v1(source: str, scenario: str, seed: int = 42,
                 env_factory: Optional[Callable] = None) -> SMACv1:
    """The wrapper `get_environment` returns for (source, "smac_v1", scenario)."""
    return SMACv1(scenario, seed, env_factory=env_factory)
