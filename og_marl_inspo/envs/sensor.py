"""Sensor: fifteen fixed sensors scan three moving targets (environments.md section 3).

Rules of MACO's `src/envs/sensors.py` (first version, tiered reward): a 5 x 9 map, sensor
`agent_k` at (2*(k // 5), 2*(k % 5)). Action k in 0..7 scans the neighbouring cell
(row + dy, col + dx) for (dx, dy) in `SCAN_OFFSETS`; action 8 does nothing. A scan is legal
iff its cell is on the map. Team reward per step: -1 per scanning sensor, and per target +3,
+4.5 or +6 when exactly 2, 3 or 4 sensors scan its cell. After the reward the targets move
one by one by a uniform offset in {-2..2}^2 (clipped to the map), redrawn while the cell is
occupied by a sensor or a target (its own cell included). 10 steps.

Observation (11,): the 3 x 3 window around the sensor, row-major from the upper-left
(1 target, 0 empty, -1 off the map), then the sensor's (row, col). State: all 15
observations concatenated (165,).
"""

from __future__ import annotations

import itertools
from typing import Callable, List, Tuple

import numpy as np

from og_marl_inspo.envs.base import Environment
from og_marl_inspo.envs.bridge import mixed_episodes, random_policy

ROWS, COLS = 5, 9
N_SENSORS = 15
N_TARGETS = 3
EPISODE_LIMIT = 10
SCAN_COST = 1.0
# (dx, dy) per scan action: down-right, up-right, right, left, down-left, up-left, down, up
SCAN_OFFSETS = ((1, 1), (1, -1), (1, 0), (-1, 0), (-1, 1), (-1, -1), (0, 1), (0, -1))
IDLE = 8
BONUS = {0: 0.0, 1: 0.0, 2: 3.0, 3: 4.5, 4: 6.0}

SENSOR_CELLS = [(2 * (k // 5), 2 * (k % 5)) for k in range(N_SENSORS)]
SENSOR_SET = frozenset(SENSOR_CELLS)


def _on_map(r: int, c: int) -> bool:
    return 0 <= r < ROWS and 0 <= c < COLS


def scan_cell(sensor: int, action: int) -> Tuple[int, int]:
    r, c = SENSOR_CELLS[sensor]
    dx, dy = SCAN_OFFSETS[action]
    return r + dy, c + dx


LEGALS = np.ones((N_SENSORS, 9), dtype=np.float32)
for _k in range(N_SENSORS):
    for _a in range(8):
        LEGALS[_k, _a] = float(_on_map(*scan_cell(_k, _a)))


def team_reward(targets, joint_action) -> float:
    """-1 per scan, plus the tiered bonus of every target by its number of scanners."""
    scanned = {}
    reward = 0.0
    for k, a in enumerate(joint_action):
        if int(a) != IDLE:
            reward -= SCAN_COST
            cell = scan_cell(k, int(a))
            scanned[cell] = scanned.get(cell, 0) + 1
    for cell in targets:
        reward += BONUS[min(scanned.get(tuple(cell), 0), 4)]
    return reward


class Sensor(Environment):
    """The 3-target, 3 x 5-sensor benchmark of MACO with the tiered reward."""

    def __init__(self, seed: int = 42, episode_limit: int = EPISODE_LIMIT) -> None:
        super().__init__()
        self.agents = [f"agent_{k}" for k in range(N_SENSORS)]
        self.num_actions = 9
        self.observation_shape = (11,)
        self.state_shape = (11 * N_SENSORS,)
        self.seed = seed
        self.episode_limit = episode_limit
        self.rng = np.random.default_rng(seed)
        self.targets: List[Tuple[int, int]] = []
        self.t = 0

    def copy(self, seed: int) -> "Sensor":
        return Sensor(seed, self.episode_limit)

    # ------------------------------------------------------------------ rules
    def _occupied(self, cell, skip: int = -1) -> bool:
        return cell in SENSOR_SET or any(t == cell for i, t in enumerate(self.targets) if i != skip)

    def _observe(self):
        grid = np.zeros((ROWS + 2, COLS + 2), dtype=np.float32) - 1.0
        grid[1:-1, 1:-1] = 0.0
        for r, c in self.targets:
            grid[r + 1, c + 1] = 1.0
        obs = np.zeros((N_SENSORS, 11), dtype=np.float32)
        for k, (r, c) in enumerate(SENSOR_CELLS):
            obs[k, :9] = grid[r:r + 3, c:c + 3].reshape(-1)
            obs[k, 9:] = (r, c)
        return obs, LEGALS.copy(), obs.reshape(-1).copy()

    def _legals_now(self) -> np.ndarray:
        return LEGALS

    def _reset(self):
        self.t = 0
        self.targets = []
        for _ in range(N_TARGETS):
            while True:
                cell = (int(self.rng.integers(ROWS)), int(self.rng.integers(COLS)))
                if not self._occupied(cell):
                    break
            self.targets.append(cell)
        return self._observe()

    def _step(self, joint_action):
        reward = team_reward(self.targets, joint_action)
        for i in range(N_TARGETS):
            r, c = self.targets[i]
            while True:
                dh, dw = self.rng.integers(-2, 3, size=2)
                cell = (int(np.clip(r + dh, 0, ROWS - 1)), int(np.clip(c + dw, 0, COLS - 1)))
                if cell != (r, c) and not self._occupied(cell, skip=i):
                    break
            self.targets[i] = cell
        self.t += 1
        obs, legals, state = self._observe()
        return obs, legals, state, float(reward), self.t >= self.episode_limit


# ------------------------------------------------------------------ experts
def _target_options(cell) -> List[np.ndarray]:
    """Per target: 'no scanner' or any 2-, 3- or 4-subset of its adjacent sensors, as
    per-sensor vectors of the scanned cell index 9*row + col (-1 where not scanning)."""
    r, c = cell
    adjacent = [k for k, (sr, sc) in enumerate(SENSOR_CELLS) if max(abs(sr - r), abs(sc - c)) == 1]
    options = [np.full(N_SENSORS, -1, dtype=np.int64)]
    for size in (2, 3, 4):
        for subset in itertools.combinations(adjacent, size):
            vec = np.full(N_SENSORS, -1, dtype=np.int64)
            vec[list(subset)] = COLS * r + c
            options.append(vec)
    return options


_GAIN = np.array([0.0, np.nan, 1.0, 1.5, 2.0])  # bonus(k) - k by number of scanners k


def expert_assignment(targets, convention: str) -> np.ndarray:
    """Per-step optimal scanning: the best conflict-free combination of target options.

    Ties: convention 'L' takes the lexicographically smallest per-sensor vector of
    scanned cell index (99 if idle), 'H' the largest (-1 if idle). Returns (15,) cell
    indices, -1 for idle sensors.
    """
    per_target = [np.stack(_target_options(cell)) for cell in targets]
    combos = np.stack(np.meshgrid(*[np.arange(len(o)) for o in per_target], indexing="ij"),
                      -1).reshape(-1, len(per_target))
    vectors = np.stack([per_target[t][combos[:, t]] for t in range(len(per_target))])  # (T,C,N)
    busy = (vectors >= 0).sum(0)  # (C, N) number of targets using each sensor
    feasible = (busy <= 1).all(-1)
    counts = (vectors >= 0).sum(-1)  # (T, C) scanners per target
    gains = _GAIN[counts].sum(0)
    gains = np.where(feasible, gains, -np.inf)
    best = np.flatnonzero(gains == gains.max())
    merged = vectors.max(0)[best]  # (B, N): the one target a sensor scans, -1 if idle
    if convention == "L":
        keys = np.where(merged < 0, 99, merged)
        pick = np.lexsort(keys.T[::-1])[0]
    elif convention == "H":
        pick = np.lexsort(merged.T[::-1])[-1]
    else:
        raise ValueError(f"unknown expert convention {convention!r}")
    return merged[pick]


def expert_actions(targets, convention: str) -> np.ndarray:
    """The expert's joint action: scan the assigned cell, unassigned sensors play 8."""
    assigned = expert_assignment(targets, convention)
    actions = np.full(N_SENSORS, IDLE, dtype=np.int64)
    for k, index in enumerate(assigned):
        if index >= 0:
            r, c = divmod(int(index), COLS)
            sr, sc = SENSOR_CELLS[k]
            actions[k] = SCAN_OFFSETS.index((c - sc, r - sr))
    return actions


def expert_l(env: Sensor, rng: np.random.Generator) -> np.ndarray:
    return expert_actions(env.targets, "L")


def expert_h(env: Sensor, rng: np.random.Generator) -> np.ndarray:
    return expert_actions(env.targets, "H")


def expert_and_random(n_expert: int, n_random: int) -> Callable[..., List[dict]]:
    """Recipe body: n_expert episodes (half L, half H) then n_random uniform-legal ones."""
    return mixed_episodes([(expert_l, n_expert // 2), (expert_h, n_expert - n_expert // 2),
                           (random_policy, n_random)])
