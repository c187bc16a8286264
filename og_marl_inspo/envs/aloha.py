"""Aloha: ten radio agents share a channel with their neighbours (environments.md section 4).

Rules of MACO's `src/envs/aloha.py` (10 agents, episode limit 20, backlog cap 5). Each agent
holds a backlog b_i in 0..5, initially 1, and chooses 0 wait or 1 transmit. A transmitting
agent with a packet succeeds (b_i -= 1, team reward += s) when no neighbour transmits, and
collides (team reward -= 10) otherwise; transmitting with an empty backlog earns nothing but
still blocks the neighbours. Then every backlog grows by one with probability 0.6, capped
at 5. Observation `[b_i]`, state `b`. s = 1.0 for `cpa` (MACO's 0.1 times the reward scale
10 that it declares but never applies).
"""

from __future__ import annotations

from typing import Callable, List

import numpy as np

from og_marl_inspo.envs.base import BatchEnv, Environment
from og_marl_inspo.envs.bridge import mixed_episodes

NEIGHBOURS = ((1, 5), (0, 2, 6), (1, 3, 7), (2, 4, 8), (3, 5, 9),
              (0, 4, 6), (1, 5, 7), (2, 6, 8), (3, 7, 9), (4, 8))
N_AGENTS = 10
MAX_BACKLOG = 5
ARRIVAL_PROBABILITY = 0.6
COLLISION_PENALTY = 10.0
EPISODE_LIMIT = 20

ADJACENCY = np.zeros((N_AGENTS, N_AGENTS), dtype=np.int64)
for _i, _ns in enumerate(NEIGHBOURS):
    ADJACENCY[_i, list(_ns)] = 1


def outcomes(backlog: np.ndarray, actions: np.ndarray):
    """Which agents deliver and which collide, boolean (..., N) arrays each."""
    transmit = actions.astype(np.int64)
    blocked = (transmit @ ADJACENCY) > 0  # some neighbour transmits (whatever its backlog)
    sending = (transmit == 1) & (backlog > 0)
    return sending & ~blocked, sending & blocked


def channel(backlog: np.ndarray, actions: np.ndarray, success_reward: float):
    """One step of the channel on (..., N) arrays: (backlog after delivery, team reward)."""
    success, collision = outcomes(backlog, actions)
    reward = success_reward * success.sum(-1) - COLLISION_PENALTY * collision.sum(-1)
    return backlog - success.astype(backlog.dtype), reward


class Aloha(Environment):
    """Aloha with success reward `success_reward` (1.0 for `cpa`)."""

    def __init__(self, seed: int = 42, success_reward: float = 1.0,
                 episode_limit: int = EPISODE_LIMIT) -> None:
        super().__init__()
        self.agents = [f"agent_{i}" for i in range(N_AGENTS)]
        self.num_actions = 2
        self.observation_shape = (1,)
        self.state_shape = (N_AGENTS,)
        self.seed = seed
        self.success_reward = success_reward
        self.episode_limit = episode_limit
        self.rng = np.random.default_rng(seed)
        self.backlog = np.ones(N_AGENTS, dtype=np.int64)
        self.t = 0

    def copy(self, seed: int) -> "Aloha":
        return Aloha(seed, self.success_reward, self.episode_limit)

    def batch(self, num_envs: int, seed: int) -> BatchEnv:
        return _BatchAloha(self, num_envs, seed)

    def _observe(self):
        state = self.backlog.astype(np.float32)
        return state[:, None].copy(), np.ones((N_AGENTS, 2), np.float32), state

    def _reset(self):
        self.backlog = np.ones(N_AGENTS, dtype=np.int64)
        self.t = 0
        return self._observe()

    def _step(self, joint_action):
        self.backlog, reward = channel(self.backlog, np.asarray(joint_action), self.success_reward)
        arrivals = self.rng.random(N_AGENTS) < ARRIVAL_PROBABILITY
        self.backlog = np.minimum(self.backlog + arrivals, MAX_BACKLOG)
        self.t += 1
        obs, legals, state = self._observe()
        return obs, legals, state, float(reward), self.t >= self.episode_limit


class _BatchAloha(BatchEnv):
    """Vectorised evaluation: E independent channels, each with its own generator.

    `stats()` gives per-episode counts that say where a return comes from: packets
    delivered, colliding transmissions, and agent-steps spent waiting with a packet.
    """

    def __init__(self, game: Aloha, num_envs: int, seed: int) -> None:
        self.game, self.num_envs = game, num_envs
        self.rngs = [np.random.default_rng(seed + k) for k in range(num_envs)]
        self.backlog = np.ones((num_envs, N_AGENTS), dtype=np.int64)
        self.t = 0
        self._counts = np.zeros((3, num_envs))  # delivered, collisions, waits with a packet

    def _observe(self):
        state = self.backlog.astype(np.float32)
        return state[..., None].copy(), np.ones((self.num_envs, N_AGENTS, 2), np.float32), state

    def reset(self):
        self.backlog[:] = 1
        self.t = 0
        self._counts[:] = 0
        return self._observe()

    def stats(self):
        delivered, collisions, waits = self._counts
        return {"packets_delivered": delivered.copy(), "collisions": collisions.copy(),
                "waits_with_packet": waits.copy()}

    def step(self, joint_actions, active):
        active = np.asarray(active, bool)
        joint_actions = np.asarray(joint_actions)
        success, collision = outcomes(self.backlog, joint_actions)
        waiting = (joint_actions == 0) & (self.backlog > 0)
        self._counts += np.stack([m.sum(-1) for m in (success, collision, waiting)]) * active
        backlog, reward = channel(self.backlog, joint_actions, self.game.success_reward)
        arrivals = np.stack([rng.random(N_AGENTS) < ARRIVAL_PROBABILITY for rng in self.rngs])
        backlog = np.minimum(backlog + arrivals, MAX_BACKLOG)
        self.backlog = np.where(active[:, None], backlog, self.backlog)
        self.t += 1
        obs, legals, state = self._observe()
        done = np.full(self.num_envs, self.t >= self.game.episode_limit)
        return obs, legals, state, np.where(active, reward, 0.0).astype(np.float64), done


# ------------------------------------------------------------------ behaviour policies
def expert_actions(backlog: np.ndarray, even_first: bool) -> np.ndarray:
    """Collision-free greedy schedule: largest backlog first; ties by parity, then index.

    Convention E (`even_first=True`) puts even indices before odd ones, O the reverse. In
    that order an agent transmits iff it has a packet and no neighbour already transmits.
    """
    parity_rank = [(i % 2) if even_first else 1 - (i % 2) for i in range(N_AGENTS)]
    order = sorted(range(N_AGENTS), key=lambda i: (-int(backlog[i]), parity_rank[i], i))
    actions = np.zeros(N_AGENTS, dtype=np.int64)
    for i in order:
        if backlog[i] > 0 and not any(actions[j] for j in NEIGHBOURS[i]):
            actions[i] = 1
    return actions


def expert_e(env: Aloha, rng: np.random.Generator) -> np.ndarray:
    return expert_actions(env.backlog, even_first=True)


def expert_o(env: Aloha, rng: np.random.Generator) -> np.ndarray:
    return expert_actions(env.backlog, even_first=False)


def random_transmit(env: Aloha, rng: np.random.Generator) -> np.ndarray:
    """Every agent transmits with probability 1/2."""
    return rng.integers(0, 2, size=N_AGENTS).astype(np.int64)


def expert_and_random(n_expert: int, n_random: int) -> Callable[..., List[dict]]:
    """Recipe body: n_expert episodes (half E, half O) then n_random random episodes."""
    return mixed_episodes([(expert_e, n_expert // 2), (expert_o, n_expert - n_expert // 2),
                           (random_transmit, n_random)])
