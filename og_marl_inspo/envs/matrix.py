"""One-shot cooperative matrix games: XOR, M-NE and Permutation (environments.md section 1).

Every episode is one step: both agents act, every agent receives the team payoff and
the episode ends. Observation and state are the constant `[1.0]` (ours: a stateless
game has nothing to observe); all actions are legal; action 0 = A, 1 = B, 2 = C.
"""

from __future__ import annotations

import itertools

import numpy as np

from og_marl_inspo.envs.base import BatchEnv, Environment


def xor_payoff(r_bb: float) -> np.ndarray:
    """XOR: 1 when the agents differ; (A,A) pays 0 and (B,B) pays `r_bb` (InSPO Fig. 1a: -2)."""
    return np.array([[0.0, 1.0], [1.0, r_bb]])


def m_ne_payoff() -> np.ndarray:
    """M-NE (InSPO Fig. 2a): 5, 10, 20 on the diagonal, -20 off it."""
    payoff = np.full((3, 3), -20.0)
    np.fill_diagonal(payoff, [5.0, 10.0, 20.0])
    return payoff


def permutation_payoff(n: int) -> np.ndarray:
    """Permutation game (Fu et al. 2022): n agents, n actions, 1 iff all actions differ."""
    payoff = np.zeros((n,) * n)
    for joint in itertools.permutations(range(n)):
        payoff[joint] = 1.0
    return payoff


class MatrixGame(Environment):
    """A one-step game with an N-dimensional payoff tensor, one axis per agent."""

    def __init__(self, payoff: np.ndarray, seed: int = 42) -> None:
        super().__init__()
        self.payoff = np.asarray(payoff, dtype=np.float64)
        self.agents = [f"agent_{i}" for i in range(self.payoff.ndim)]
        self.num_actions = int(self.payoff.shape[0])
        if any(dim != self.num_actions for dim in self.payoff.shape):
            raise ValueError(f"payoff shape {self.payoff.shape}: every agent needs the same actions")
        self.observation_shape = (1,)
        self.state_shape = (1,)
        self.seed = seed

    def copy(self, seed: int) -> "MatrixGame":
        return MatrixGame(self.payoff, seed)

    def batch(self, num_envs: int, seed: int) -> "BatchEnv":
        return _BatchMatrixGame(self, num_envs)

    def _constant(self, leading=()):
        n, a = self.num_agents, self.num_actions
        return (np.ones(leading + (n, 1), np.float32), np.ones(leading + (n, a), np.float32),
                np.ones(leading + (1,), np.float32))

    def _reset(self):
        return self._constant()

    def _step(self, joint_action):
        obs, legals, state = self._constant()
        return obs, legals, state, float(self.payoff[tuple(joint_action)]), True


class _BatchMatrixGame(BatchEnv):
    """Vectorised evaluation: one numpy gather for every episode at once."""

    def __init__(self, game: MatrixGame, num_envs: int) -> None:
        self.game, self.num_envs = game, num_envs

    def reset(self):
        return self.game._constant((self.num_envs,))

    def step(self, joint_actions, active):
        obs, legals, state = self.game._constant((self.num_envs,))
        rewards = self.game.payoff[tuple(np.asarray(joint_actions).T)] * active
        return obs, legals, state, rewards, np.ones(self.num_envs, dtype=bool)
