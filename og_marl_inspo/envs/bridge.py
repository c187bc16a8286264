"""Bridge: two agents cross a one-lane bridge in opposite directions (environments.md section 2).

Rules of AlberDICE's `marl_env/marl/env/bridge.py` (map 4, `start_adjacent=True`), 2 agents:

    row 0:  .  .  #  #  .  .      goal of agent_1: (0,0)
    row 1:  .  .  .  .  .  .      starts: agent_0 (1,2), agent_1 (1,3)
    row 2:  .  .  #  #  .  .      goal of agent_0: (2,5)

Actions 0 stay, 1 up, 2 down, 3 right, 4 left, all legal. Observation = state =
`[r0, c0, gr0, gc0, r1, c1, gr1, gc1]` as raw float32 coordinates, the same for both
agents. Team reward per step: half the sum, over agents not done before the step, of
-0.1 times the Euclidean distance of the post-move position to the goal; 0 on the step
after which every agent is done. Time limit 50.

Also here: the *Optimal* behaviour policy (uniform among joint actions attaining the
minimum sum of arrival times), uniform random play and the episode builders used by the
dataset recipes, plus `rollout`, shared by the other grid games.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Tuple

import numpy as np

from og_marl_inspo.envs.base import Environment

ROWS, COLS = 3, 6
BLOCKED = frozenset({(0, 2), (0, 3), (2, 2), (2, 3)})
STARTS = ((1, 2), (1, 3))
GOALS = ((2, 5), (0, 0))
# action -> (d_row, d_col): stay, up, down, right, left
MOVES = ((0, 0), (-1, 0), (1, 0), (0, 1), (0, -1))
EPISODE_LIMIT = 50

Cell = Tuple[int, int]


def _free(cell: Cell) -> bool:
    r, c = cell
    return 0 <= r < ROWS and 0 <= c < COLS and cell not in BLOCKED


def _target(cell: Cell, action: int) -> Cell:
    """Where `action` leads from `cell`; a move off the grid or into `#` becomes stay."""
    dr, dc = MOVES[int(action)]
    nxt = (cell[0] + dr, cell[1] + dc)
    return nxt if _free(nxt) else cell


def transition(positions: Tuple[Cell, Cell], done: Tuple[bool, bool],
               joint_action) -> Tuple[Cell, Cell]:
    """Post-move positions (section 2, Transition): agent_0 resolved first, then agent_1."""
    targets = [positions[i] if done[i] else _target(positions[i], joint_action[i]) for i in (0, 1)]
    moving = [targets[i] != positions[i] for i in (0, 1)]
    new: List[Cell] = list(positions)
    for i in (0, 1):
        j = 1 - i
        if not moving[i]:
            continue
        if done[j] or targets[i] == GOALS[i]:
            ok = True  # a done other agent is ignored; a move onto one's own goal always succeeds
        elif j < i:  # the other is already resolved
            ok = targets[i] != new[j]
        elif not moving[j] and positions[j] == targets[i]:
            ok = False  # the other stays on the target cell
        elif targets[i] == targets[j]:
            ok = True  # contested cell: the agent resolved first (agent_0) wins
        elif targets[i] == positions[j] and targets[j] == positions[i]:
            ok = False  # swap: both stay
        elif targets[i] == positions[j]:
            # succeeds iff the other's move succeeds (the other moves, not onto this
            # agent's cell, and not onto the same target, so it does succeed)
            ok = _move_succeeds_after(j, targets, i)
        else:
            ok = True
        if ok:
            new[i] = targets[i]
    return new[0], new[1]


def _move_succeeds_after(j: int, targets, i: int) -> bool:
    """Whether agent j's move succeeds once agent i has moved onto j's current cell."""
    if targets[j] == GOALS[j]:
        return True
    return targets[j] != targets[i]


def _distance(a: Cell, b: Cell) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


class Bridge(Environment):
    """The Bridge game of AlberDICE, 2 agents, map 4, adjacent starts."""

    def __init__(self, seed: int = 42, episode_limit: int = EPISODE_LIMIT) -> None:
        super().__init__()
        self.agents = ["agent_0", "agent_1"]
        self.num_actions = 5
        self.observation_shape = (8,)
        self.state_shape = (8,)
        self.seed = seed
        self.episode_limit = episode_limit
        self.rng = np.random.default_rng(seed)  # the rules are deterministic; kept for the contract
        self.positions: Tuple[Cell, Cell] = STARTS
        self.done = (False, False)
        self.t = 0

    def copy(self, seed: int) -> "Bridge":
        return Bridge(seed, self.episode_limit)

    # ------------------------------------------------------------------ rules
    def _state(self) -> np.ndarray:
        (p0, p1), (g0, g1) = self.positions, GOALS
        return np.array([*p0, *g0, *p1, *g1], dtype=np.float32)

    def _observe(self):
        state = self._state()
        return (np.stack([state, state]), np.ones((2, self.num_actions), np.float32), state)

    def _reset(self):
        self.positions, self.done, self.t = STARTS, (False, False), 0
        return self._observe()

    def _step(self, joint_action):
        before = self.done
        self.positions = transition(self.positions, before, joint_action)
        self.t += 1
        reward = 0.5 * sum(-0.1 * _distance(GOALS[i], self.positions[i])
                           for i in (0, 1) if not before[i])
        self.done = tuple(before[i] or self.positions[i] == GOALS[i] or self.t >= self.episode_limit
                          for i in (0, 1))
        finished = all(self.done)
        if finished:
            reward = 0.0
        obs, legals, state = self._observe()
        return obs, legals, state, float(reward), finished

    def render(self) -> np.ndarray:
        """(3, 6, 3) uint8 RGB frame with AlberDICE's colours (InSPO Fig. 4)."""
        frame = np.full((ROWS, COLS, 3), 255, dtype=np.uint8)
        for cell in BLOCKED:
            frame[cell] = 0
        frame[self.positions[0]] = (255, 0, 0)
        frame[GOALS[0]] = (128, 0, 0)
        frame[self.positions[1]] = (0, 0, 255)
        frame[GOALS[1]] = (0, 0, 128)
        return frame


# -------------------------------------------------------------- behaviour policies
FREE_CELLS = [(r, c) for r in range(ROWS) for c in range(COLS) if _free((r, c))]
JOINT_ACTIONS = list(itertools.product(range(5), repeat=2))


def _done_at(positions) -> Tuple[bool, bool]:
    return tuple(positions[i] == GOALS[i] for i in (0, 1))


def arrival_cost_to_go() -> Dict[Tuple[Cell, Cell], int]:
    """C(s): the minimum over future joint actions of the sum of arrival times (value iteration)."""
    states = list(itertools.product(FREE_CELLS, FREE_CELLS))
    cost = {s: (0 if all(_done_at(s)) else 10**6) for s in states}
    changed = True
    while changed:
        changed = False
        for s in states:
            done = _done_at(s)
            if all(done):
                continue
            here = sum(not d for d in done)
            best = min(here + cost[transition(s, done, a)] for a in JOINT_ACTIONS)
            if best < cost[s]:
                cost[s], changed = best, True
    return cost


_OPTIMAL_ACTIONS: Dict[Tuple[Cell, Cell], List[Tuple[int, int]]] = {}


def optimal_actions(positions: Tuple[Cell, Cell]) -> List[Tuple[int, int]]:
    """Joint actions attaining C(s); a done agent only takes actions that leave it in place."""
    if not _OPTIMAL_ACTIONS:
        cost = arrival_cost_to_go()
        for s in cost:
            done = _done_at(s)
            if all(done):
                continue
            here = sum(not d for d in done)
            allowed = [a for a in JOINT_ACTIONS
                       if all(not done[i] or _target(s[i], a[i]) == s[i] for i in (0, 1))]
            q = {a: here + cost[transition(s, done, a)] for a in allowed}
            _OPTIMAL_ACTIONS[s] = [a for a in allowed if q[a] == cost[s]]
    return _OPTIMAL_ACTIONS[tuple(positions)]


def optimal_policy(env: Bridge, rng: np.random.Generator) -> np.ndarray:
    choices = optimal_actions(env.positions)
    return np.array(choices[rng.integers(len(choices))], dtype=np.int64)


def random_policy(env: Environment, rng: np.random.Generator) -> np.ndarray:
    """Every agent, done or not, draws each legal action uniformly."""
    legals = env._legals_now()
    picks = []
    for row in legals:
        options = np.flatnonzero(row)
        picks.append(options[rng.integers(len(options))])
    return np.array(picks, dtype=np.int64)


# ------------------------------------------------------------------ datasets
Policy = Callable[[Environment, np.random.Generator], np.ndarray]


def rollout(env: Environment, policy: Policy, rng: np.random.Generator) -> dict:
    """One episode as per-step arrays: observations, actions, rewards, legals, state."""
    obs, legals, state = env._reset()
    steps = {"observations": [], "actions": [], "rewards": [], "legals": [], "state": []}
    done = False
    while not done:
        action = policy(env, rng)
        steps["observations"].append(obs)
        steps["legals"].append(legals)
        steps["state"].append(state)
        steps["actions"].append(action)
        obs, legals, state, reward, done = env._step(action)
        steps["rewards"].append(reward)
    return {"observations": np.stack(steps["observations"]).astype(np.float32),
            "actions": np.stack(steps["actions"]).astype(np.int32),
            "rewards": np.array(steps["rewards"], dtype=np.float32),
            "legals": np.stack(steps["legals"]).astype(np.float32),
            "state": np.stack(steps["state"]).astype(np.float32)}


def mixed_episodes(policies: List[Tuple[Policy, int]]) -> Callable[..., List[dict]]:
    """A recipe body: `count` episodes of each policy, on a copy seeded from the dataset rng."""

    def build(environment: Environment, rng: np.random.Generator) -> List[dict]:
        env = environment.copy(int(rng.integers(2**31)))
        return [rollout(env, policy, rng) for policy, count in policies for _ in range(count)]

    return build


def optimal_and_random(n_optimal: int, n_random: int) -> Callable[..., List[dict]]:
    return mixed_episodes([(optimal_policy, n_optimal), (random_policy, n_random)])
