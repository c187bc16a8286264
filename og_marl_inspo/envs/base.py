"""The environment contract of OG-MARL (og_marl_contract.md section 1), stand-alone.

A wrapper exposes `agents`, `num_agents`, `num_actions`, `observation_shape`,
`state_shape`, `reset() -> (observations, info)`,
`step(actions) -> (observations, rewards, terminals, truncations, info)` and
`get_stats()`; every dict is keyed by `agents`, in that order.

When OG-MARL is importable its `BaseEnvironment` is used as the base class, so our
wrappers pass OG-MARL's own isinstance checks; otherwise a local class with the same
defaults stands in.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np


def _og_marl_base():
    for module in ("og_marl.wrapped_environments.base", "og_marl.environment_wrappers.base"):
        try:
            return __import__(module, fromlist=["BaseEnvironment"]).BaseEnvironment
        except Exception:  # OG-MARL absent, or an era without that module
            continue
    return object


class Environment(_og_marl_base()):
    """Base of every og-marl-inspo wrapper.

    Subclasses set `agents`, `num_actions`, `observation_shape`, `state_shape` in
    `__init__` and implement `_reset()` and `_step(joint_action)` on numpy arrays;
    this class turns them into OG-MARL's dicts.
    """

    agents: List[str]
    num_actions: int
    observation_shape: Tuple[int, ...]
    state_shape: Tuple[int, ...]

    def __init__(self) -> None:  # noqa: D107 - OG-MARL's base takes no arguments either
        self._environment = self  # OG-MARL's __getattr__ forwards to this; avoid recursion

    # ------------------------------------------------------------------ contract
    @property
    def num_agents(self) -> int:
        return len(self.agents)

    @property
    def possible_agents(self) -> List[str]:  # OG-MARL v1 name
        return self.agents

    def reset(self) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
        obs, legals, state = self._reset()
        return self._dict(obs), {"legals": self._dict(legals), "state": state}

    def step(self, actions: Dict[str, Any]):
        joint = np.array([int(actions[agent]) for agent in self.agents], dtype=np.int64)
        legal_now = self._legals_now()
        for i, agent in enumerate(self.agents):
            if not 0 <= joint[i] < self.num_actions or legal_now[i, joint[i]] == 0:
                raise ValueError(f"{agent} chose illegal action {joint[i]}")
        obs, legals, state, reward, done = self._step(joint)
        rewards = {a: np.float32(reward) for a in self.agents}
        terminals = {a: np.array(bool(done)) for a in self.agents}
        truncations = {a: np.array(False) for a in self.agents}
        info = {"legals": self._dict(legals), "state": state}
        return self._dict(obs), rewards, terminals, truncations, info

    def get_stats(self) -> Dict[str, float]:
        return {}

    def batch(self, num_envs: int, seed: int) -> "BatchEnv":
        """`num_envs` independent copies seeded `seed, seed + 1, ...` for evaluation."""
        return BatchEnv([self.copy(seed + k) for k in range(num_envs)])

    def copy(self, seed: int) -> "Environment":
        """A fresh environment of the same game, seeded `seed`."""
        raise NotImplementedError

    def render(self) -> np.ndarray:
        return np.zeros((10, 10, 3), dtype=np.float32)

    # ------------------------------------------------------------ to implement
    def _reset(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (obs (N,O) float32, legals (N,A) float32, state (S,) float32)."""
        raise NotImplementedError

    def _step(self, joint_action: np.ndarray):
        """Return (obs, legals, state, team reward, episode done)."""
        raise NotImplementedError

    def _legals_now(self) -> np.ndarray:
        """(N, A) legal mask of the current step; all ones unless overridden."""
        return np.ones((self.num_agents, self.num_actions), dtype=np.float32)

    # ----------------------------------------------------------------- helpers
    def _dict(self, stacked: np.ndarray) -> Dict[str, np.ndarray]:
        return {agent: stacked[i] for i, agent in enumerate(self.agents)}


class BatchEnv:
    """Many copies of one environment stepped in lockstep, on stacked arrays.

    The trainer evaluates many episodes at once through this interface: one policy
    call for every running episode. Games that can vectorise their own rules
    override `Environment.batch`; everything else gets this list of copies.
    """

    def __init__(self, envs: List[Environment]) -> None:
        self.envs = envs

    def reset(self):
        """Return obs (E,N,O), legals (E,N,A), state (E,S)."""
        out = [env._reset() for env in self.envs]
        return tuple(np.stack(x) for x in zip(*out))

    def step(self, joint_actions: np.ndarray, active: np.ndarray):
        """Step the active episodes; return obs, legals, state, rewards (E,), done (E,).

        Inactive (finished) episodes are not stepped; their rows repeat zeros.
        """
        rows = []
        for env, action, live in zip(self.envs, joint_actions, active):
            if live:
                rows.append(env._step(np.asarray(action)))
            else:
                rows.append(None)
        template = next(r for r in rows if r is not None)
        filled = [r if r is not None else tuple(np.zeros_like(np.asarray(x)) for x in template)
                  for r in rows]
        obs, legals, state, reward, done = (np.stack([np.asarray(x) for x in col]) for col in zip(*filled))
        return obs, legals, state, reward.astype(np.float64), done.astype(bool)
